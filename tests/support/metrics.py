"""Reading an exposition the way Prometheus does, and what the rows say it must show."""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN, ScanCheckpoint, ScanOpportunity
from worker.db import driver_url

Labels = frozenset[tuple[str, str]]


def exposition(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
    return body.decode()


def samples(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample of an exposition, by series name and labels."""
    found: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def scrape(url: str) -> dict[tuple[str, Labels], float]:
    return samples(exposition(url))


def wait_until_served(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            exposition(url, timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def total(scraped: dict[tuple[str, Labels], float], name: str) -> float:
    """The sum of a series over all its label sets."""
    return sum(value for (series, _), value in scraped.items() if series == name)


@dataclass(frozen=True)
class RowTotals:
    pages: int
    items: int
    skipped: int
    opportunities: int
    recoveries: int


def row_totals(database_url: str) -> RowTotals:
    """What the chain's rows say, summed: the truth the counters must equal."""
    engine = create_engine(driver_url(database_url))
    chain = ScanCheckpoint.runner == RUNNER_CHAIN
    with Session(engine) as session:
        pages, items, skipped, recoveries = session.execute(
            select(
                func.coalesce(func.sum(ScanCheckpoint.page_seq), 0),
                func.coalesce(func.sum(ScanCheckpoint.processed_items), 0),
                func.coalesce(func.sum(ScanCheckpoint.skipped_items), 0),
                func.coalesce(func.sum(ScanCheckpoint.recoveries), 0),
            ).where(chain)
        ).one()
        opportunities = session.scalar(select(func.count()).select_from(ScanOpportunity))
    engine.dispose()
    return RowTotals(int(pages), int(items), int(skipped), int(opportunities or 0), int(recoveries))


def identifying_values(database_url: str) -> tuple[set[str], set[str], set[str]]:
    """The titles, user ids and scan ids stored: values no label may carry."""
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        titles = set(session.scalars(select(ScanOpportunity.title)))
        users = {str(user) for user in session.scalars(select(ScanCheckpoint.user_id))}
        scan_ids = {str(scan) for scan in session.scalars(select(ScanCheckpoint.scan_id))}
    engine.dispose()
    return titles, users, scan_ids


def assert_no_identifying_label(text: str, database_url: str) -> None:
    """Every label is one the catalogue declares, and none carries a scan id, a user id, a
    title or free text (a space, or a value longer than any fixed one)."""
    from worker.metrics import catalogue

    titles, users, scan_ids = identifying_values(database_url)
    for (name, labels), _ in samples(text).items():
        base = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        allowed = set(catalogue.BY_NAME[base].labels)
        if name.endswith("_bucket"):
            allowed.add("le")
        for label, value in labels:
            assert label in allowed, (name, label)
            assert value not in titles and value not in users, (name, label, value)
            assert not any(scan_id in value for scan_id in scan_ids), (name, value)
            assert len(value) <= 40 and " " not in value, (name, label, value)
