"""The on-disk form of a local checkpoint: one JSON file, replaced atomically, read strictly.

A torn or hand-edited file is reported as CorruptCheckpoint naming the file and the
problem; it is never read as "no checkpoint". The file carries the keys upstream's module
reads (`scan_id`, `cursor`, `processed_items`, `total_items`, `timestamp`, `extra_data`,
`status`) beside ours.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import suppress
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, overload

from worker.domain import validation
from worker.domain.checkpoint import Checkpoint
from worker.domain.status import ScanStatus
from worker.errors import CorruptCheckpoint, InvalidInput
from worker.state.upstream import decode_upstream_checkpoint

FORMAT_VERSION = 1
# Temp files start with a dot and end in .tmp, so the `<scan_id>.json` listing never sees them.
TEMP_SUFFIX = ".tmp"
# Checkpoints hold user ids and the caller's metadata: the owner alone reads them. Passed to
# open(2), so no umask can widen them.
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
T = TypeVar("T")
_FIELD_NAMES = frozenset(field.name for field in fields(Checkpoint))
# Fields added after format 1 was first written: a file without them takes the default.
_LATER_FIELDS = {"total_is_lower_bound": False}
# Upstream's name for metadata, written beside it so that a program (or a rollback) reading the
# file upstream's way finds the scan's metadata; a file written before it has none.
UPSTREAM_METADATA_KEY = "extra_data"


def read_checkpoint_file(path: Path) -> Checkpoint | None:
    """The checkpoint in `path`; None if the file is gone; CorruptCheckpoint if unreadable.

    A file without `format_version` is one the upstream module wrote
    (worker.state.upstream); the next save rewrites it in this format.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise CorruptCheckpoint(f"checkpoint file {path} is not valid JSON: {exc}") from None
    try:
        if isinstance(data, dict) and "format_version" not in data:
            written_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            checkpoint = decode_upstream_checkpoint(data, written_at)
        else:
            checkpoint = decode_checkpoint(data)
    except ValueError as exc:  # InvalidInput from a validator, or a bad date string
        raise CorruptCheckpoint(f"checkpoint file {path} has a bad field: {exc}") from None
    if path.name != f"{checkpoint.scan_id}.json":
        raise CorruptCheckpoint(f"checkpoint file {path} holds scan_id {checkpoint.scan_id}")
    return checkpoint


def write_checkpoint_file(target: Path, checkpoint: Checkpoint) -> None:
    """Replace `target` with `checkpoint`: temp file, fsync, atomic rename, directory fsync."""
    payload = {"format_version": FORMAT_VERSION, **checkpoint.to_json()}
    payload[UPSTREAM_METADATA_KEY] = payload["metadata"]
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
    try:
        with os.fdopen(open_private(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY), "wb") as file:
            file.write(json.dumps(payload, allow_nan=False, indent=2).encode())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    finally:
        with suppress(FileNotFoundError):
            temp.unlink()
    fsync_directory(target.parent)


def decode_checkpoint(data: object) -> Checkpoint:
    """A Checkpoint from a parsed file, checked by the validators that check the input."""
    if not isinstance(data, dict):
        raise InvalidInput(f"the top level must be a JSON object, got {type(data).__name__}")
    if (version := data.get("format_version")) != FORMAT_VERSION:
        raise InvalidInput(f"format_version is {version!r}, not {FORMAT_VERSION}")
    data = {**_LATER_FIELDS, **data}
    mirrored = data.pop(UPSTREAM_METADATA_KEY, data.get("metadata"))
    if (names := set(data) - {"format_version"}) != _FIELD_NAMES:
        missing, unknown = sorted(_FIELD_NAMES - names), sorted(names - _FIELD_NAMES)
        raise InvalidInput(f"missing fields {missing}, unknown fields {unknown}")
    lower_bound = validation.lower_bound_of(data["total_is_lower_bound"])
    processed, total = validation.counts_of(data["processed_items"], data["total_items"])
    checkpoint = Checkpoint(
        scan_id=validation.scan_id_of(data["scan_id"]),
        user_id=validation.user_id_of(data["user_id"]),
        operation_type=validation.operation_type_of(data["operation_type"]),
        cursor=validation.cursor_of(data["cursor"]),
        processed_items=processed,
        total_items=total,
        timestamp=_time(data, "timestamp"),
        metadata=validation.metadata_of(_field(data, "metadata", dict)),
        status=ScanStatus(data["status"]),
        error_message=_field(data, "error_message", str, optional=True),
        params=_field(data, "params", dict, optional=True),
        page_seq=_count(data, "page_seq"),
        page_offset=_count(data, "page_offset"),
        lease_owner=_field(data, "lease_owner", str, optional=True),
        lease_expires_at=_time(data, "lease_expires_at", optional=True),
        recoveries=_count(data, "recoveries"),
        total_is_lower_bound=lower_bound,
        created_at=_time(data, "created_at", optional=True),
        updated_at=_time(data, "updated_at", optional=True),
    )
    if mirrored != checkpoint.metadata:
        raise InvalidInput(f"{UPSTREAM_METADATA_KEY} must equal metadata, whose copy it is")
    return checkpoint


@overload
def _field(data: dict[str, Any], name: str, kind: type[T]) -> T: ...
@overload
def _field(data: dict[str, Any], name: str, kind: type[T], optional: bool) -> T | None: ...
def _field(data: dict[str, Any], name: str, kind: type[T], optional: bool = False) -> T | None:
    value = data[name]
    if optional and value is None:
        return None
    if not isinstance(value, kind):
        raise InvalidInput(f"{name} must be a {kind.__name__}, got {value!r}")
    return value


def _count(data: dict[str, Any], name: str) -> int:
    validation.count_of(name, data[name])
    return _field(data, name, int)


@overload
def _time(data: dict[str, Any], name: str) -> datetime: ...
@overload
def _time(data: dict[str, Any], name: str, optional: bool) -> datetime | None: ...
def _time(data: dict[str, Any], name: str, optional: bool = False) -> datetime | None:
    text = _field(data, name, str, optional)
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} must carry a UTC offset, got {text!r}")
    return moment.astimezone(UTC)


def open_private(path: Path, flags: int) -> int:
    """A descriptor of `path` opened with `flags`; a file it creates is FILE_MODE."""
    return os.open(path, flags, FILE_MODE)


def make_private_directory(directory: Path) -> None:
    """Create `directory` (and its parents) unless it exists; one it creates is DIRECTORY_MODE.

    An existing directory is the caller's own choice and keeps its mode.
    """
    if directory.is_dir():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir(mode=DIRECTORY_MODE)
    except FileExistsError:  # another process made it first; it set the mode too
        return
    # mkdir's mode is masked by the umask, which may also take bits the owner needs.
    os.chmod(directory, DIRECTORY_MODE)


def fsync_directory(directory: Path) -> None:
    # A rename or unlink is durable only once the directory entry itself is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
