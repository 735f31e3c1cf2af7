"""8. Storage: bytes on disk per checkpoint row and per opportunity row
(pg_total_relation_size: heap, TOAST and every index; growth over the empty table, divided
by the rows added). Checkpoints look like finished real ones (bench.kit.dataset); opportunities
are the real ones the simulated catalog (seed 42, level standard, fee 7%) yields, judged
again as a DMarket scan judges them (bench.storage_finds: DMarket's fees, both exits'
profits, sales in 7 days, the last sale, not locked) and inserted as page commits insert
them. The same finds with the fields of revision 0014 all NULL, as every row stored before
it holds them, are measured in the same run, so the cost of storing how a find was judged
is the difference. A month of one active user is 100 scans a day for 30 days of the
simulated market's default scan (1,000 items), with the measured opportunity rate. The
same finds, while stored, also fill two other layouts in a scratch schema (8d,
bench.storage_layouts): what a find would cost with the levers that keep a row per find,
and with a page's finds in one row.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bench import storage_finds as finds
from bench import storage_layouts as layouts
from bench import storage_notes as notes
from bench.kit import dataset
from bench.kit.database import Connection, connect
from bench.kit.dataset import catalog_opportunities
from bench.kit.harness import Bench, say
from bench.kit.report import Row
from bench.storage_notes import PerRow
from models import ScanCheckpoint
from worker.db import driver_url, page_sql
from worker.db.opportunity_days import scan_day
from worker.db.pages import opportunity_columns
from worker.domain.opportunities import Opportunity

NAME = "storage"
# About what a 100-listing page of the bench's catalog holds (7.7 % of its items).
FINDS_PER_PAGE = 8


def _insert_pages(session: Session, scan_id: Any, day: Any, found: list[Opportunity]) -> None:
    """The scan's finds, 8 to a page, through the page commit's own statement."""
    for page_seq, first in enumerate(range(0, len(found), FINDS_PER_PAGE)):
        page = found[first : first + FINDS_PER_PAGE]
        session.execute(
            page_sql.INSERT_FOUND,
            {
                "scan_id": scan_id,
                "scan_day": day,
                "page_seq": page_seq,
                **opportunity_columns(page),
            },
        )


def _tuple_bytes(connection: Connection, table: str) -> float:
    """A row's average tuple: header, null bitmap and aligned data (no line pointer)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT avg(pg_column_size(stored.*)) FROM {table} AS stored")
        (average,) = cursor.fetchone()
    return float(average)


def _reindexed_index_bytes(connection: Connection, table: str) -> int:
    """The indexes' bytes once rebuilt (leaves packed to the default fillfactor, 90 %)."""
    with connection.cursor() as cursor:
        cursor.execute(f"REINDEX TABLE {table}")
    return layouts.heap_and_index_bytes(connection, table)[1]


def dmarket_shaped(found: list[Opportunity]) -> list[Opportunity]:
    """The same finds with DMarket's kind of item id, a canonical UUID string."""
    return [replace(hit, item_id=str(uuid.uuid5(uuid.NAMESPACE_URL, hit.item_id))) for hit in found]


def opportunity_bytes(url: str, found: list[Opportunity], wanted: int) -> PerRow:
    """Store about `wanted` finds, `found` again and again for scans of the database, and
    measure them; the rows are deleted after, so the next measure starts empty."""
    return _stored_and_measured(url, found, wanted, also_layouts=False)[0]


def opportunity_and_layout_bytes(
    url: str, found: list[Opportunity], wanted: int
) -> tuple[PerRow, list[layouts.LayoutBytes]]:
    """What opportunity_bytes measures, and the same finds in figure 8d's other layouts."""
    return _stored_and_measured(url, found, wanted, also_layouts=True)


def _stored_and_measured(
    url: str, found: list[Opportunity], wanted: int, *, also_layouts: bool
) -> tuple[PerRow, list[layouts.LayoutBytes]]:
    connection = connect(url)
    empty = dataset.relation_bytes(connection, "scan_opportunities")
    engine = create_engine(driver_url(url))
    with Session(engine) as session:
        scans_and_days = session.execute(
            select(ScanCheckpoint.scan_id, scan_day(ScanCheckpoint.created_at)).limit(
                math.ceil(wanted / len(found))
            )
        ).all()
        for scan_id, day in scans_and_days:
            _insert_pages(session, scan_id, day, found)
        session.commit()
    engine.dispose()
    dataset.vacuum_analyze(connection)
    rows = len(scans_and_days) * len(found)
    total = dataset.relation_bytes(connection, "scan_opportunities") - empty
    heap, index = layouts.heap_and_index_bytes(connection, "scan_opportunities")
    tuple_bytes = _tuple_bytes(connection, "scan_opportunities")
    # Before the REINDEX below packs today's index, which the other layouts' are not.
    alternatives = layouts.measure(connection) if also_layouts else []
    packed_index = _reindexed_index_bytes(connection, "scan_opportunities")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE scan_opportunities")
    connection.close()
    per_row = PerRow(total / rows, heap / rows, index / rows, packed_index / rows, tuple_bytes)
    return per_row, alternatives


def run(bench: Bench) -> list[Row]:
    rows, sample, wanted = bench.size(20_000, 5_000), bench.size(100_000, 20_000), 30_000
    found = finds.judged_on_dmarket(catalog_opportunities(sample))
    before = finds.as_stored_before(found)
    rate = len(found) / sample
    with bench.database(NAME) as url:
        connection = connect(url)
        empty_checkpoints = dataset.relation_bytes(connection, "scan_checkpoints")
        dataset.insert_checkpoints(connection, rows, users=rows // 100)
        checkpoint_bytes = (
            dataset.relation_bytes(connection, "scan_checkpoints") - empty_checkpoints
        ) / rows
        connection.close()
        simulated, simulated_layouts = opportunity_and_layout_bytes(url, found, wanted)
        dmarket, dmarket_layouts = opportunity_and_layout_bytes(url, dmarket_shaped(found), wanted)
        simulated_before = opportunity_bytes(url, before, wanted)
        dmarket_before = opportunity_bytes(url, dmarket_shaped(before), wanted)
    say(
        f"{NAME}: {checkpoint_bytes:.0f} B/checkpoint; per opportunity, simulated ids "
        f"{simulated.text()}, DMarket's UUID ids {dmarket.text()}; stored before revision "
        f"0014, simulated ids {simulated_before.text()}, DMarket's UUID ids "
        f"{dmarket_before.text()}"
    )
    for layout in simulated_layouts:
        say(
            f"{NAME}: {layout.name}, simulated ids: {layout.growing:.0f} B/find and the "
            f"titles table, {layout.titles_bytes:,} B whole"
        )
    measured = notes.Measured(
        checkpoint_bytes,
        simulated,
        dmarket,
        rate,
        len(found),
        sample,
        simulated_before,
        dmarket_before,
        simulated_layouts,
        dmarket_layouts,
    )
    return notes.rows(measured, rows, math.ceil(wanted / len(found)) * len(found))
