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
from bench.storage_layouts import PAGE_ARRAYS, LayoutBytes
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
    # The same finds in figure 8d's other layouts (bench.storage_layouts).
    simulated_layouts: list[LayoutBytes]
    dmarket_layouts: list[LayoutBytes]

    @property
    def finds_per_scan(self) -> float:
        return self.rate * ITEMS_PER_SCAN

    def month(self, row: PerRow) -> float:
        return SCANS_PER_MONTH * (self.checkpoint + self.finds_per_scan * row.total)

    def held(self, row: PerRow) -> float:
        return self.month(row) * HELD_DAYS / 30

    @property
    def held_finds(self) -> float:
        """The finds on disk at once: what a shared titles table is spread over."""
        return SCANS_PER_MONTH * HELD_DAYS / 30 * self.finds_per_scan

    def held_checkpoints(self) -> float:
        return SCANS_PER_MONTH * HELD_DAYS / 30 * self.checkpoint

    def held_in(self, layout: LayoutBytes) -> float:
        return self.held_checkpoints() + self.held_finds * layout.per_find(self.held_finds)

    @property
    def find_budget(self) -> float:
        """What a find may cost, titles and pages included, for the month to fit the goal."""
        return (GOAL_BYTES - self.held_checkpoints()) / self.held_finds


def rows(measured: Measured, checkpoints: int, opportunities: int) -> list[Row]:
    m, sim, dm = measured, measured.simulated, measured.dmarket
    return [
        *_row_and_month(m, sim, dm, checkpoints, opportunities),
        _judgement_row(m),
        _layouts_row(m),
    ]


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
    levers, page_rows = m.simulated_layouts
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
        f"{sim.leaf_density:.0%} full. What would close it, measured on the same finds "
        f"(8d): the levers that keep a row per find (each title once, the checkpoint's "
        f"bigint id in the key, the page's timestamps once per page, compact fields) leave "
        f"{m.held_in(levers) / MB:.1f} MB, since a row per find still pays a tuple header, "
        f"a line pointer and an index entry; a page's finds in one row, "
        f"{m.held_in(page_rows) / MB:.1f} MB."
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


def _layouts_row(m: Measured) -> Row:
    levers, page_rows = m.simulated_layouts
    dm_levers, dm_page_rows = m.dmarket_layouts
    held = m.held_finds
    return Row(
        figure="8d what would close 8b: the same finds in two other layouts, per find and "
        "as 8b's month on disk",
        measured=f"named levers {levers.per_find(held):.0f} B/find, "
        f"{m.held_in(levers) / MB:.1f} MB; a page per row {page_rows.per_find(held):.0f} "
        f"B/find, {m.held_in(page_rows) / MB:.1f} MB (today {m.simulated.total:.0f} B/find, "
        f"{m.held(m.simulated) / MB:.1f} MB)",
        floor=f"DMarket ids: named levers {dm_levers.per_find(held):.0f} B, "
        f"{m.held_in(dm_levers) / MB:.1f} MB; a page per row {dm_page_rows.per_find(held):.0f}"
        f" B, {m.held_in(dm_page_rows) / MB:.1f} MB (today {m.dmarket.total:.0f} B, "
        f"{m.held(m.dmarket) / MB:.1f} MB)",
        goal=f"< 10 MB on disk (8b's goal): a find <= {m.find_budget:.0f} B",
        met=None,
        detail=f"{_levers_text(m, levers, page_rows)} {_page_rows_text(m, page_rows)} "
        f"{_both_text(m, levers)} DMarket's UUID ids: named levers {dm_levers.text(held)}; "
        f"a page per row {dm_page_rows.text(held)}.",
    )


def _both_text(m: Measured, levers: LayoutBytes) -> str:
    return (
        f"Both are filled with the finds 8a and 8b measure, in the same run, and stay "
        f"partitioned by day as today (retention drops a day whole, without the WAL and "
        f"bloat of a DELETE), so scan_day stays in each unique key (in the finds' key of "
        f"(1) it costs 8 B an entry with the catalog's 15-byte ids, none with 16-byte "
        f"UUIDs, whose entries it pads anyway); rows go in checkpoint "
        f"id order, as a month writes them. The titles table (id int4 primary key, title "
        f"text unique) holds the {levers.titles:,} distinct titles of the catalog's finds "
        f"in {levers.titles_bytes / 1000:.0f} kB; no retention drops it and every user "
        f"shares it, so charging it whole to the {m.held_finds:,.0f} finds one user holds "
        f"at once is an upper bound."
    )


def _levers_text(m: Measured, levers: LayoutBytes, page_rows: LayoutBytes) -> str:
    parts = dict(levers.table_bytes)
    return (
        f"(1) Named levers, {levers.text(m.held_finds)}: a row per find (checkpoint_id "
        f"bigint, id bigint, scan_day, title_id and seven more int4: both prices, the profit "
        f"in hundredths, the depth, both exits' profits, the last sale in seconds before "
        f"the page's found_at; five smallints: page_seq, the reference kind and fee source "
        f"codes in one, fee_bps, sales_7d, the lock with its days in one; item_id) keyed "
        f"(checkpoint_id, item_id, scan_day), {parts['finds']:.0f} B a find: with lock_days "
        f"folded into the lock, an unlocked find holds no NULL, so its tuple carries no "
        f"null bitmap (24 B header, not 32 B); a row per page (checkpoint_id, found_at, "
        f"reference_fetched_at, scan_day, page_seq) keyed (checkpoint_id, page_seq, "
        f"scan_day), {parts['pages']:.0f} B a find at {1 / page_rows.rows_per_find:.0f} finds "
        f"a page. What it costs the product: an upsert of the page's titles in every page "
        f"commit (one more CTE in the commit's statement) and a join to titles and to the "
        f"page in every read of a find; reference_fetched_at becomes the page's oldest "
        f"fetch, exact only when a page's references are fetched together; the bigint id "
        f"that orders a find for the alert cursor stays (8 B a find)."
    )


def _page_rows_text(m: Measured, page_rows: LayoutBytes) -> str:
    return (
        f"(2) A page per row, {page_rows.text(m.held_finds)}: the page's id, checkpoint_id, "
        f"found_at, reference_fetched_at, scan_day and page_seq once, and its finds as one "
        f"array per field (the arrays a page commit already binds; item_id bytea[], title "
        f"ids, the same compact codes as (1)), keyed (checkpoint_id, page_seq, scan_day): a "
        f"tuple header, a line pointer and an index entry per page, not per find, but 21 "
        f"to 24 B of header per array ({PAGE_ARRAYS} arrays: up to "
        f"{PAGE_ARRAYS * 24 * page_rows.rows_per_find:.0f} B a find at "
        f"{1 / page_rows.rows_per_find:.0f} finds a page); rows this size (under 2 kB) are "
        f"neither compressed nor TOASTed. What it costs the product: the "
        f"unique (scan, item) index is gone, so the ON CONFLICT that drops an item seen "
        f"twice in one scan (a listing that moved to a later page) has nothing to conflict "
        f"with: dedup moves into the page commit, which must read the item ids of the "
        f"scan's earlier pages (or a set kept beside the checkpoint); results and alerts "
        f"unnest the arrays, so ordering a scan's finds by profit reads every page of it; "
        f"the alert cursor walks (page id, place in the page); and the titles upsert of (1)."
    )
