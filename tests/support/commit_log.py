"""A trigger-fed log of every page commit, so tests can prove no page was committed twice.

It watches the table from the outside (a PostgreSQL trigger installed by the test); the
code under test is not touched.
"""

from __future__ import annotations

import uuid
from collections import Counter

import psycopg2

from tests.support.services import plain_url

INSTALL = """
CREATE TABLE test_page_commits (
    scan_id uuid NOT NULL,
    page_seq int NOT NULL,
    page_offset int NOT NULL,
    items int NOT NULL,
    owner text
);
CREATE FUNCTION test_log_page_commit() RETURNS trigger AS $$
BEGIN
    IF NEW.page_seq <> OLD.page_seq OR NEW.page_offset <> OLD.page_offset THEN
        INSERT INTO test_page_commits
        VALUES (OLD.scan_id, OLD.page_seq, OLD.page_offset,
                NEW.processed_items - OLD.processed_items, OLD.lease_owner);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER test_page_commits AFTER UPDATE ON scan_checkpoints
    FOR EACH ROW EXECUTE FUNCTION test_log_page_commit();
"""


def install(database_url: str) -> None:
    with psycopg2.connect(plain_url(database_url)) as connection, connection.cursor() as cursor:
        cursor.execute(INSTALL)


def commits(database_url: str, scan_id: uuid.UUID) -> list[tuple[int, int, int, str | None]]:
    """(page_seq, page_offset, items, owner) of every commit, in commit order."""
    with psycopg2.connect(plain_url(database_url)) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT page_seq, page_offset, items, owner FROM test_page_commits"
            " WHERE scan_id = %s ORDER BY ctid",
            (str(scan_id),),
        )
        return list(cursor.fetchall())


def assert_each_position_committed_once(database_url: str, scan_id: uuid.UUID, total: int) -> None:
    log = commits(database_url, scan_id)
    twice = [pos for pos, n in Counter((seq, off) for seq, off, _, _ in log).items() if n > 1]
    assert twice == [], f"positions committed more than once: {twice}"
    assert sum(items for _, _, items, _ in log) == total
