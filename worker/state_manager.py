"""The upstream module's import, for programs moving from it (the seed guide's
`src/utils/state_manager.py`): `from worker.state_manager import StateManager,
LocalStateManager, CheckpointData, ScanCheckpoint`.

The same classes as worker.state.manager, worker.state.local, worker.state.upstream and
models, under upstream's names; docs/python-api.md's "Coming from the upstream module" says
where ours behaves differently and why.
"""

from models import Base as StateManagerBase
from models import ScanCheckpoint
from worker.state.local import LocalStateManager
from worker.state.manager import StateManager
from worker.state.upstream import CheckpointData

__all__ = [
    "CheckpointData",
    "LocalStateManager",
    "ScanCheckpoint",
    "StateManager",
    "StateManagerBase",
]
