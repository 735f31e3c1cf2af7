"""8. Storage: bytes on disk per checkpoint row and per opportunity row
(pg_total_relation_size: heap, TOAST and every index; growth over the empty table, divided
by the rows added). Checkpoints look like finished real ones (bench.dataset); opportunities
are the real ones the simulated catalog (seed 42, level standard, fee 7%) yields, inserted
as page commits insert them. A month of one active user is 100 scans a day for 30 days of
the simulated market's default scan (1,000 items), with the measured opportunity rate.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session

from bench import dataset, scans
from bench.harness import Bench, connect, say
from bench.report import Row
from models import ScanCheckpoint, ScanOpportunity
from worker.db import driver_url
from worker.db.opportunity_days import scan_day
from worker.domain.opportunities import Opportunity, percent_hundredths
from worker.domain.reference import REFERENCE_CODES, SUGGESTED
from worker.markets.simulated import SimulatedOptions, catalog_item

NAME = "storage"
SCANS_PER_MONTH = 100 * 30
ITEMS_PER_SCAN = SimulatedOptions().items
RETENTION_DAYS = 7
MB = 1_000_000
GOAL_BYTES = 10 * MB


def catalog_opportunities(items: int) -> list[Opportunity]:
    """What a scan of the first `items` items of the bench's catalog finds."""
    scan_params = scans.params(items)
    judged = (scan_params.judge(catalog_item(scans.SEED, index)) for index in range(items))
    return [hit for hit in judged if hit is not None]


def _opportunity_rows(scan_id: Any, day: Any, found: list[Opportunity]) -> list[dict[str, Any]]:
    return [
        {
            "scan_id": scan_id,
            "scan_day": day,
            "page_seq": index // 8,
            "item_id": hit.item_id,
            "title": hit.title,
            "price_cents": hit.price_cents,
            "reference_price_cents": hit.reference_price_cents,
            "profit_hundredths": percent_hundredths(hit.profit_percent),
            "reference_kind": REFERENCE_CODES[SUGGESTED],
        }
        for index, hit in enumerate(found)
    ]


def run(bench: Bench) -> list[Row]:
    rows, sample, wanted = bench.size(20_000, 5_000), bench.size(100_000, 20_000), 30_000
    found = catalog_opportunities(sample)
    rate = len(found) / sample
    with bench.database(NAME) as url:
        connection = connect(url)
        empty_checkpoints = dataset.relation_bytes(connection, "scan_checkpoints")
        empty_opportunities = dataset.relation_bytes(connection, "scan_opportunities")
        dataset.insert_checkpoints(connection, rows, users=rows // 100)
        checkpoint_bytes = (
            dataset.relation_bytes(connection, "scan_checkpoints") - empty_checkpoints
        ) / rows
        engine = create_engine(driver_url(url))
        with Session(engine) as session:
            scan_count = math.ceil(wanted / len(found))
            scans_and_days = session.execute(
                select(ScanCheckpoint.scan_id, scan_day(ScanCheckpoint.created_at)).limit(
                    scan_count
                )
            ).all()
            for scan_id, day in scans_and_days:
                session.execute(insert(ScanOpportunity), _opportunity_rows(scan_id, day, found))
            session.commit()
        engine.dispose()
        dataset.vacuum_analyze(connection)
        opportunity_rows = len(scans_and_days) * len(found)
        opportunity_bytes = (
            dataset.relation_bytes(connection, "scan_opportunities") - empty_opportunities
        ) / opportunity_rows
        connection.close()
    per_scan = checkpoint_bytes + rate * ITEMS_PER_SCAN * opportunity_bytes
    month = SCANS_PER_MONTH * per_scan
    checkpoints_only = SCANS_PER_MONTH * checkpoint_bytes
    standing = month * RETENTION_DAYS / 30
    say(
        f"{NAME}: {checkpoint_bytes:.0f} B/checkpoint, {opportunity_bytes:.0f} B/opportunity, "
        f"{month / MB:.1f} MB/month"
    )
    return [
        Row(
            figure="8a storage per row",
            measured=f"{checkpoint_bytes:.0f} B/checkpoint, {opportunity_bytes:.0f} B/opportunity",
            floor=f"{rows:,} checkpoints, {opportunity_rows:,} opportunities",
            goal="none set (report)",
            met=None,
            detail=f"Opportunity rate of the simulated catalog: {rate:.2%} of items "
            f"({len(found):,} in {sample:,}), so {rate * ITEMS_PER_SCAN:.0f} per "
            f"{ITEMS_PER_SCAN:,}-item scan.",
        ),
        Row(
            figure=f"8b storage per active user and month ({SCANS_PER_MONTH:,} scans of "
            f"{ITEMS_PER_SCAN:,} items)",
            measured=f"{month / MB:.1f} MB/month",
            floor=f"checkpoints alone {checkpoints_only / MB:.1f} MB; standing with "
            f"{RETENTION_DAYS}-day retention {standing / MB:.1f} MB",
            goal="< 10 MB/month",
            met=month < GOAL_BYTES,
            note=f"Checkpoints alone ({checkpoint_bytes:.0f} B each) are "
            f"{checkpoints_only / MB:.1f} MB a month, well inside the seed's 10 MB; the "
            f"month is {rate * ITEMS_PER_SCAN:.0f} opportunities x {opportunity_bytes:.0f} B "
            f"per scan, which the seed never stored. Fee and profit are no longer stored "
            f"(derived from the prices and the scan's fee), prices are 4-byte cents; what "
            f"is left is the heap row (ids, prices, the title) and the unique (scan_id, "
            f"item_id, scan_day) index, which scans' random uuids leave about half full. "
            f"Retention (whole days dropped) caps what stays on disk at about "
            f"{RETENTION_DAYS} days, {standing / MB:.1f} MB per user. Closing the monthly "
            f"figure itself: key the finds by the checkpoint's bigint id (8 B less in row "
            f"and index, and inserts in key order that fill the index), keep each title "
            f"once per item rather than once per find, or keep only a scan's best finds.",
            detail=f"Per scan: one checkpoint + {rate * ITEMS_PER_SCAN:.0f} opportunities = "
            f"{per_scan / 1024:.1f} KiB.",
        ),
    ]
