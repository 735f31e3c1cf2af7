"""Figure 8's rows: what a row costs, what a month of one active user writes, what a
month of use leaves on disk with the retention the system runs by default, and what storing
how a find was judged (revision 0014) adds to a find.

The seed promises "Storage Growth: <10MB/month per active user". Rows are deleted after
the retention (`MARKETSCAN_RETENTION_DAYS`, 7 by default, by the daily cleanup), so a
user's storage stops growing after about a week: what it holds then is the growth the
promise can be judged on. The written month is printed beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.kit.report import Row
from models import ScanOpportunity
from worker.markets.simulated import SimulatedOptions
from worker.settings import Settings

SCANS_PER_MONTH = 100 * 30
ITEMS_PER_SCAN = SimulatedOptions().items
MB = 1_000_000
GOAL_BYTES = 10 * MB
_DEFAULTS = Settings()
RETENTION_DAYS = _DEFAULTS.retention_days
# The most days of writes held at once: a day's finds are dropped whole by the first
# cleanup (daily, at cleanup_hour_utc) after its last scan passed the retention, so just
# before that drop the retention's days, the day itself and the hours to the cleanup are held.
HELD_DAYS = RETENTION_DAYS + 1 + _DEFAULTS.cleanup_hour_utc / 24
# A find's tuple: one null-bitmap bit per column, and a 23-byte header padded to 8 bytes.
COLUMNS = len(ScanOpportunity.__table__.columns)
BITMAP_BYTES = -(-COLUMNS // 8)
HEADER_BYTES = -(-(23 + BITMAP_BYTES) // 8) * 8
# What revision 0014's fields hold in an unlocked find: fee_bps, fee_source, sales_7d
# (smallint), both profits (integer), last_sale_at (timestamptz), locked (boolean);
# lock_days stays NULL.
SET_BYTES = 3 * 2 + 2 * 4 + 8 + 1


@dataclass(frozen=True)
class PerRow:
    """Bytes per opportunity row, and how they split between the heap and the index."""

    total: float
    heap: float
    index: float
    packed_index: float
    # A row's average tuple (pg_column_size): header, null bitmap, aligned data.
    tuple: float

    @property
    def leaf_density(self) -> float:
        # Rebuilt leaves are 90 % full; how full the grown ones were follows from the ratio.
        return 0.9 * self.packed_index / self.index

    def text(self) -> str:
        return (
            f"{self.total:.0f} B (heap {self.heap:.0f} B, unique index {self.index:.0f} B "
            f"with its leaves {self.leaf_density:.0%} full; rebuilt, {self.packed_index:.0f} B)"
        )


@dataclass(frozen=True)
class Measured:
    checkpoint: float
    simulated: PerRow
    dmarket: PerRow
    rate: float
    found: int
    sample: int
    # The same finds with revision 0014's fields all NULL, as rows stored before it.
    simulated_before: PerRow
    dmarket_before: PerRow

    @property
    def finds_per_scan(self) -> float:
        return self.rate * ITEMS_PER_SCAN

    def month(self, row: PerRow) -> float:
        return SCANS_PER_MONTH * (self.checkpoint + self.finds_per_scan * row.total)

    def held(self, row: PerRow) -> float:
        return self.month(row) * HELD_DAYS / 30


def rows(measured: Measured, checkpoints: int, opportunities: int) -> list[Row]:
    m, sim, dm = measured, measured.simulated, measured.dmarket
    return [*_row_and_month(m, sim, dm, checkpoints, opportunities), _judgement_row(m)]


def _row_and_month(
    m: Measured, sim: PerRow, dm: PerRow, checkpoints: int, opportunities: int
) -> list[Row]:
    return [
        Row(
            figure="8a storage per row",
            measured=f"{m.checkpoint:.0f} B/checkpoint, {sim.total:.0f} B/opportunity "
            f"({dm.total:.0f} B with DMarket's UUID ids)",
            floor=f"{checkpoints:,} checkpoints, {opportunities:,} opportunities",
            goal="none set (report)",
            met=None,
            detail=f"Opportunity rate of the simulated catalog: {m.rate:.2%} of items "
            f"({m.found:,} in {m.sample:,}), so {m.finds_per_scan:.0f} per "
            f"{ITEMS_PER_SCAN:,}-item scan, each stored as a DMarket scan judges it. Per "
            f"opportunity with the catalog's ids "
            f"(15 characters): {sim.text()}; with DMarket's ids (canonical UUIDs, stored "
            f"in 16 bytes): {dm.text()}.",
        ),
        Row(
            figure=f"8b storage per active user, a month of use ({SCANS_PER_MONTH:,} scans "
            f"of {ITEMS_PER_SCAN:,} items) at the default {RETENTION_DAYS}-day retention",
            measured=f"{m.held(sim) / MB:.1f} MB on disk (written: {m.month(sim) / MB:.1f} "
            f"MB/month)",
            floor=f"checkpoints alone {SCANS_PER_MONTH * m.checkpoint / MB:.1f} MB written; "
            f"DMarket ids: {m.held(dm) / MB:.1f} MB on disk, {m.month(dm) / MB:.1f} MB "
            "written",
            goal="< 10 MB on disk",
            met=m.held(sim) < GOAL_BYTES,
            note=_note(m),
            detail=f"Per scan: one checkpoint + {m.finds_per_scan:.0f} opportunities = "
            f"{m.month(sim) / SCANS_PER_MONTH / 1024:.1f} KiB.",
        ),
    ]


def _note(m: Measured) -> str:
    sim = m.simulated
    return (
        f"Judged: what a month of use leaves on disk, since the daily cleanup deletes "
        f"every finished scan {RETENTION_DAYS} days after its last update and drops its "
        f"day of finds whole, so a user's storage grows for about a week and then stays: "
        f"at most {HELD_DAYS:.1f} days of writes ({RETENTION_DAYS} days, the day being "
        f"dropped and the hours to the cleanup), {m.held(sim) / MB:.1f} MB. Written in a "
        f"month, before any deletion: {m.month(sim) / MB:.1f} MB, of which checkpoints "
        f"({m.checkpoint:.0f} B each) are {SCANS_PER_MONTH * m.checkpoint / MB:.1f} MB and "
        f"the rest {m.finds_per_scan:.0f} opportunities x {sim.total:.0f} B per scan, which "
        f"the seed never stored. A row holds what cannot be derived (prices are 4-byte "
        f"cents; a UUID item id takes 16 bytes; how a find was judged, 8c, takes "
        f"{m.dmarket.total - m.dmarket_before.total:.0f} B), and the unique (scan_id, "
        f"item_id, scan_day) index that keeps a find once per scan, which scans' random "
        f"uuids leave about "
        f"{sim.leaf_density:.0%} full. What would shrink it further: the title once per "
        f"distinct title rather than once per find (about 30 B a row, at one more "
        f"statement per page commit), the per-page timestamps once per page."
    )


def _judgement_row(m: Measured) -> Row:
    before, after = m.dmarket_before, m.dmarket
    added = after.total - before.total
    return Row(
        figure="8c storage of how a find was judged (revision 0014's 8 fields), per find",
        measured=f"+{added:.1f} B/find: {before.total:.1f} B with them NULL (stored before), "
        f"{after.total:.1f} B set as DMarket finds set them (DMarket's UUID ids)",
        floor=f"catalog ids: {m.simulated_before.total:.1f} B NULL, {m.simulated.total:.1f} "
        f"B set (+{m.simulated.total - m.simulated_before.total:.1f} B)",
        goal="none set (report)",
        met=None,
        detail=f"{_why_that_size(before, after)} With them NULL: {before.text()}; set: "
        f"{after.text()}. Catalog ids, NULL: {m.simulated_before.text()}; set: "
        f"{m.simulated.text()}.",
    )


def _why_that_size(before: PerRow, after: PerRow) -> str:
    return (
        f"Why that size: a NULL column takes no data, only its bit in the row's null "
        f"bitmap, which a row carries as soon as one column is NULL (lock_days is NULL in "
        f"an unlocked find, so both rows carry it: {COLUMNS} columns, {BITMAP_BYTES} B, the "
        f"23 B header padded to {HEADER_BYTES} B either way; a row written before the "
        f"columns existed, with none NULL, has no bitmap and a 24 B header); set, the 7 "
        f"fields add their {SET_BYTES} B of data (three smallints, two int profits, a "
        f"timestamptz, a boolean) plus the padding that aligns each int to 4 B and the "
        f"timestamptz to 8 B: a tuple of {before.tuple:.0f} B on average becomes "
        f"{after.tuple:.0f} B (pg_column_size), which the page rounds up to 8 B beside its "
        f"4 B line pointer; the primary-key index is unchanged."
    )
