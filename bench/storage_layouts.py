"""Figure 8d's two other layouts of a scan's finds, built in a scratch schema of the bench's
database and filled, in the same run, with the very finds `scan_opportunities` holds then.

"Named levers" keeps a row per find but stores each title once (`titles`, referenced by
an int4), keys a find by its checkpoint's bigint id instead of the scan's 16-byte uuid,
moves the per-page timestamps (found_at, reference_fetched_at) to a row per page, and
packs the small fields: both reference and fee source codes in one smallint, the lock
and its days in one, the last sale as int4 seconds before the page's found_at. "A page per
row" stores a committed page's finds as arrays in one row, keyed (checkpoint id, page_seq).
Both layouts stay partitioned by scan_day: retention drops a day of finds whole, writing
almost no WAL (worker.db.opportunity_days), and a layout that had to DELETE a week-old
day instead would pay that in WAL and in bloat. The price is scan_day in every unique key.

Rows are written in checkpoint id order, then page order, as a month writes them: a
checkpoint's id comes from a sequence at the scan's start, so a bigint key grows at the
right edge of its index. The rows are read back through pg_table_size (heap, TOAST) and
pg_indexes_size over every partition, after the VACUUM ANALYZE the bench gives the
checkpoints and the finds. `titles` is not dropped by retention and is shared by every
user; it is reported whole, for the month's finds to share.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.kit.database import Connection

SCHEMA = "layouts"
TITLES_DDL = f"""
CREATE TABLE {SCHEMA}.titles (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title text NOT NULL UNIQUE
)"""
# Codes start at 1 (worker.domain.reference, worker.domain.fees), so 0 honestly means none.
CODES_SQL = "coalesce(found.reference_kind, 0) + 16 * coalesce(found.fee_source, 0)"
# 0 not locked, n > 0 locked n days, -1 locked for days unknown; NULL: never judged.
LOCK_SQL = (
    "CASE WHEN found.locked IS NULL THEN NULL WHEN NOT found.locked THEN 0"
    " ELSE coalesce(found.lock_days, -1) END"
)
LAST_SALE_SQL = "extract(epoch FROM found.found_at - found.last_sale_at)::integer"
# The bench's finds, each beside its checkpoint's id and its title's, in the order a month
# writes them. scan_id is unique across days (models.checkpoint), so it joins alone.
_SOURCE = f"""
    SELECT checkpoint.id AS checkpoint_id, title.id AS title_id, found.*
    FROM scan_opportunities AS found
    JOIN scan_checkpoints AS checkpoint USING (scan_id)
    JOIN {SCHEMA}.titles AS title USING (title)"""


@dataclass(frozen=True)
class Layout:
    """Tables that grow with the finds (the first holds a find or a page), and their fill."""

    name: str
    ddl: tuple[str, ...]
    tables: tuple[str, ...]
    fill: tuple[str, ...]


NAMED_LEVERS = Layout(
    "named levers",
    ddl=(
        f"""
        CREATE TABLE {SCHEMA}.finds (
            checkpoint_id bigint NOT NULL,
            id bigint NOT NULL,
            scan_day date NOT NULL,
            title_id integer NOT NULL,
            price_cents integer NOT NULL,
            reference_price_cents integer NOT NULL,
            profit_hundredths integer NOT NULL,
            order_count integer,
            sell_now_profit_cents integer,
            listing_profit_cents integer,
            last_sale_age_s integer,
            page_seq smallint NOT NULL,
            codes smallint NOT NULL,
            fee_bps smallint,
            sales_7d smallint,
            lock smallint,
            item_id bytea NOT NULL,
            PRIMARY KEY (checkpoint_id, item_id, scan_day)
        ) PARTITION BY RANGE (scan_day)""",
        f"""
        CREATE TABLE {SCHEMA}.pages (
            checkpoint_id bigint NOT NULL,
            found_at timestamptz NOT NULL,
            reference_fetched_at timestamptz,
            scan_day date NOT NULL,
            page_seq smallint NOT NULL,
            PRIMARY KEY (checkpoint_id, page_seq, scan_day)
        ) PARTITION BY RANGE (scan_day)""",
    ),
    tables=("finds", "pages"),
    fill=(
        f"""
        INSERT INTO {SCHEMA}.finds
        SELECT checkpoint_id, found.id, scan_day, title_id, price_cents,
            reference_price_cents, profit_hundredths, order_count, sell_now_profit_cents,
            listing_profit_cents, {LAST_SALE_SQL}, page_seq, {CODES_SQL}, fee_bps, sales_7d,
            {LOCK_SQL}, item_id
        FROM ({_SOURCE}) AS found
        ORDER BY checkpoint_id, page_seq, found.id""",
        # A page keeps the oldest of its finds' reference fetches: exact only when a page's
        # references are fetched together.
        f"""
        INSERT INTO {SCHEMA}.pages
        SELECT checkpoint_id, max(found_at), min(reference_fetched_at), scan_day, page_seq
        FROM ({_SOURCE}) AS found
        GROUP BY checkpoint_id, scan_day, page_seq
        ORDER BY checkpoint_id, page_seq""",
    ),
)
# One array per field, in the shape a page commit already binds them (page_sql.INSERT_FOUND
# unnests arrays of the same names); the page's id is the alert cursor's commit order.
_PAGE_ARRAYS = (
    ("item_ids", "bytea[]", "item_id"),
    ("title_ids", "integer[]", "title_id"),
    ("price_cents", "integer[]", "price_cents"),
    ("reference_price_cents", "integer[]", "reference_price_cents"),
    ("profit_hundredths", "integer[]", "profit_hundredths"),
    ("order_counts", "integer[]", "order_count"),
    ("sell_now_profit_cents", "integer[]", "sell_now_profit_cents"),
    ("listing_profit_cents", "integer[]", "listing_profit_cents"),
    ("last_sale_ages_s", "integer[]", LAST_SALE_SQL),
    ("codes", "smallint[]", CODES_SQL),
    ("fee_bps", "smallint[]", "fee_bps"),
    ("sales_7d", "smallint[]", "sales_7d"),
    ("locks", "smallint[]", LOCK_SQL),
)
PAGE_ARRAYS = len(_PAGE_ARRAYS)
PAGE_PER_ROW = Layout(
    "a page per row",
    ddl=(
        f"""
        CREATE TABLE {SCHEMA}.pages (
            checkpoint_id bigint NOT NULL,
            id bigint NOT NULL,
            found_at timestamptz NOT NULL,
            reference_fetched_at timestamptz,
            scan_day date NOT NULL,
            page_seq smallint NOT NULL,
            {", ".join(f"{name} {kind} NOT NULL" for name, kind, _ in _PAGE_ARRAYS)},
            PRIMARY KEY (checkpoint_id, page_seq, scan_day)
        ) PARTITION BY RANGE (scan_day)""",
    ),
    tables=("pages",),
    fill=(
        f"""
        INSERT INTO {SCHEMA}.pages
        SELECT checkpoint_id, min(found.id), max(found_at), min(reference_fetched_at),
            scan_day, page_seq,
            {", ".join(f"array_agg({value} ORDER BY found.id)" for _, _, value in _PAGE_ARRAYS)}
        FROM ({_SOURCE}) AS found
        GROUP BY checkpoint_id, scan_day, page_seq
        ORDER BY checkpoint_id, page_seq""",
    ),
)
LAYOUTS = (NAMED_LEVERS, PAGE_PER_ROW)


@dataclass(frozen=True)
class LayoutBytes:
    """What a layout needs for the finds it was filled with, per find."""

    name: str
    # Heap with TOAST, and indexes, of the tables that grow with the finds, per find.
    heap: float
    index: float
    # The first table's average tuple (pg_column_size) and its rows per find.
    tuple_bytes: float
    rows_per_find: float
    # The titles table and its two indexes, whole, and how many titles it holds.
    titles_bytes: int
    titles: int
    # Each growing table's heap, TOAST and indexes, per find.
    table_bytes: tuple[tuple[str, float], ...]

    @property
    def growing(self) -> float:
        return self.heap + self.index

    def per_find(self, finds_sharing_titles: float) -> float:
        """Bytes per find, the titles table shared by `finds_sharing_titles` finds."""
        return self.growing + self.titles_bytes / finds_sharing_titles

    def text(self, finds_sharing_titles: float) -> str:
        return (
            f"{self.per_find(finds_sharing_titles):.0f} B (heap {self.heap:.0f} B, indexes "
            f"{self.index:.0f} B, titles {self.titles_bytes / finds_sharing_titles:.1f} B; "
            f"{self._rows()})"
        )

    def _rows(self) -> str:
        finds_per_row = 1 / self.rows_per_find
        if round(finds_per_row) == 1:
            return f"a tuple of {self.tuple_bytes:.0f} B a find"
        return f"a tuple of {self.tuple_bytes:.0f} B per row of {finds_per_row:.0f} finds"


def measure(connection: Connection) -> list[LayoutBytes]:
    """Each layout filled with the finds `scan_opportunities` holds now, then dropped."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM scan_opportunities")
        (finds,) = cursor.fetchone()
    return [_measured(connection, layout, int(finds)) for layout in LAYOUTS]


def _measured(connection: Connection, layout: Layout, finds: int) -> LayoutBytes:
    _build(connection, layout)
    sizes = [heap_and_index_bytes(connection, f"{SCHEMA}.{table}") for table in layout.tables]
    titles_heap, titles_index = heap_and_index_bytes(connection, f"{SCHEMA}.titles")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT avg(pg_column_size(stored.*)), count(*)"
            f" FROM {SCHEMA}.{layout.tables[0]} AS stored"
        )
        tuple_bytes, rows = cursor.fetchone()
        cursor.execute(f"SELECT count(*) FROM {SCHEMA}.titles")
        (titles,) = cursor.fetchone()
        cursor.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    return LayoutBytes(
        layout.name,
        heap=sum(heap for heap, _ in sizes) / finds,
        index=sum(index for _, index in sizes) / finds,
        tuple_bytes=float(tuple_bytes),
        rows_per_find=int(rows) / finds,
        titles_bytes=titles_heap + titles_index,
        titles=int(titles),
        table_bytes=tuple(
            (table, (heap + index) / finds)
            for table, (heap, index) in zip(layout.tables, sizes, strict=True)
        ),
    )


def _build(connection: Connection, layout: Layout) -> None:
    """The schema, the titles (in no order, as finds bring them), the layout's tables with a
    partition for each day the finds were made, filled and vacuumed."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {SCHEMA}")
        cursor.execute(TITLES_DDL)
        cursor.execute(
            f"INSERT INTO {SCHEMA}.titles (title) SELECT title"
            " FROM (SELECT DISTINCT title FROM scan_opportunities) AS distinct_titles"
            " ORDER BY md5(title)"
        )
        for ddl in layout.ddl:
            cursor.execute(ddl)
        cursor.execute("SELECT DISTINCT scan_day FROM scan_opportunities ORDER BY scan_day")
        days = [day for (day,) in cursor.fetchall()]
        for table in layout.tables:
            for day in days:
                cursor.execute(
                    f"CREATE TABLE {SCHEMA}.{table}_{day:%Y%m%d} PARTITION OF {SCHEMA}.{table}"
                    " FOR VALUES FROM (%s) TO (%s::date + 1)",
                    (day, day),
                )
        for fill in layout.fill:
            cursor.execute(fill)
        for table in ("titles", *layout.tables):
            cursor.execute(f"VACUUM ANALYZE {SCHEMA}.{table}")


def heap_and_index_bytes(connection: Connection, table: str) -> tuple[int, int]:
    """Bytes of `table`'s heap (TOAST included) and of its indexes, over its partitions if
    it has any (pg_partition_tree knows no plain table, hence the union)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_table_size(relid)), 0),"
            " coalesce(sum(pg_indexes_size(relid)), 0)"
            " FROM (SELECT relid FROM pg_partition_tree(%s::regclass)"
            " UNION SELECT %s::regclass) AS tree",
            (table, table),
        )
        heap, index = cursor.fetchone()
    return int(heap), int(index)
