"""Figure 8's rows: what a row costs, what a month of one active user writes, and what a
month of use leaves on disk with the retention the system runs by default.

The seed promises "Storage Growth: <10MB/month per active user". Rows are deleted after
the retention (`MARKETSCAN_RETENTION_DAYS`, 7 by default, by the daily cleanup), so a
user's storage stops growing after about a week: what it holds then is the growth the
promise can be judged on. The written month is printed beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.kit.report import Row
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


@dataclass(frozen=True)
class PerRow:
    """Bytes per opportunity row, and how they split between the heap and the index."""

    total: float
    heap: float
    index: float
    packed_index: float

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

    @property
    def finds_per_scan(self) -> float:
        return self.rate * ITEMS_PER_SCAN

    def month(self, row: PerRow) -> float:
        return SCANS_PER_MONTH * (self.checkpoint + self.finds_per_scan * row.total)

    def held(self, row: PerRow) -> float:
        return self.month(row) * HELD_DAYS / 30


def rows(measured: Measured, checkpoints: int, opportunities: int) -> list[Row]:
    m, sim, dm = measured, measured.simulated, measured.dmarket
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
            f"{ITEMS_PER_SCAN:,}-item scan. Per opportunity with the catalog's ids "
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
        f"the seed never stored. A row holds what cannot be derived (fee and profit follow "
        f"from the prices and the scan's frozen fee; prices are 4-byte cents; a UUID item "
        f"id takes 16 bytes), and the unique (scan_id, item_id, scan_day) index that keeps "
        f"a find once per scan, which scans' random uuids leave about "
        f"{sim.leaf_density:.0%} full. What would shrink it further: the title once per "
        f"distinct title rather than once per find (about 30 B a row, at one more "
        f"statement per page commit), the per-page timestamps once per page."
    )
