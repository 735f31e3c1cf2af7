-- Moving the upstream module's scan_checkpoints table to marketscan, step 1 of 3.
-- docs/python-api.md, "Coming from the upstream module", says when and how to run each step.
--
-- Renames the upstream table to upstream_scan_checkpoints, with its indexes, constraints
-- and id sequence, so that `marketscan migrate` (step 2) can create marketscan's own
-- scan_checkpoints: upstream's names (scan_checkpoints_id_seq, ix_scan_checkpoints_user_id
-- from its model, ...) would otherwise collide with ours. Nothing is copied or dropped.
-- Run it once: psql -v ON_ERROR_STOP=1 -f migrations/upstream/1_set_aside.sql "$DATABASE_URL"

BEGIN;

ALTER TABLE scan_checkpoints RENAME TO upstream_scan_checkpoints;

DO $$
DECLARE
    index_name text;
    sequence_name text;
BEGIN
    -- Renaming an index renames the primary key or unique constraint it backs.
    FOR index_name IN
        SELECT indexname FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename = 'upstream_scan_checkpoints'
    LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', index_name, 'upstream_' || index_name);
    END LOOP;
    sequence_name := pg_get_serial_sequence('upstream_scan_checkpoints', 'id');
    IF sequence_name IS NOT NULL THEN
        EXECUTE format(
            'ALTER SEQUENCE %s RENAME TO upstream_scan_checkpoints_id_seq', sequence_name
        );
    END IF;
END
$$;

COMMIT;
