-- Moving the upstream module's scan_checkpoints table to marketscan, step 3 of 3.
-- docs/python-api.md, "Coming from the upstream module", says when and how to run each step.
--
-- Copies every row of upstream_scan_checkpoints (step 1) into marketscan's scan_checkpoints
-- (created by `marketscan migrate`, step 2), in one transaction: all rows or none.
--   * metadata: upstream's migration made a `metadata` column, its model wrote `extra_data`;
--     whichever of the two the table has is copied (both: merged, extra_data winning). A
--     value that is not a JSON object is kept under {"upstream_value": ...}.
--   * status: NULL is in_progress, upstream's `interrupted` is paused; any other value that
--     is not one of ours stops the copy, naming it.
--   * times: upstream wrote naive UTC (datetime.utcnow); they become timestamptz in UTC.
--   * error_message: a failed row's metadata "error", where upstream kept it.
--   * runner: caller. The rows belong to the program's own loop; recovery never touches them.
-- The upstream table is left in place; drop it once the copy is checked.
-- Run it once: psql -v ON_ERROR_STOP=1 -f migrations/upstream/3_copy.sql "$DATABASE_URL"

BEGIN;

CREATE FUNCTION pg_temp.upstream_as_object(value jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN value IS NULL OR jsonb_typeof(value) = 'null' THEN '{}'::jsonb
        WHEN jsonb_typeof(value) = 'object' THEN value
        ELSE jsonb_build_object('upstream_value', value)
    END
$$;

-- An upstream time column as timestamptz: naive values are UTC; an absent column is NULL.
CREATE FUNCTION pg_temp.upstream_time(name text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        (SELECT CASE data_type
                    WHEN 'timestamp without time zone' THEN format('(%I AT TIME ZONE ''UTC'')', name)
                    ELSE format('%I::timestamptz', name)
                END
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'upstream_scan_checkpoints'
           AND column_name = name),
        'NULL::timestamptz'
    )
$$;

DO $$
DECLARE
    columns text[];
    meta text := '''{}''::jsonb';
    bad text;
    taken bigint;
    copied bigint;
BEGIN
    SELECT array_agg(column_name::text) INTO columns
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'upstream_scan_checkpoints';
    IF columns IS NULL THEN
        RAISE EXCEPTION 'upstream_scan_checkpoints not found: run 1_set_aside.sql first';
    END IF;
    IF 'metadata' = ANY (columns) THEN
        meta := meta || ' || pg_temp.upstream_as_object(upstream.metadata::jsonb)';
    END IF;
    IF 'extra_data' = ANY (columns) THEN
        meta := meta || ' || pg_temp.upstream_as_object(upstream.extra_data::jsonb)';
    END IF;

    SELECT string_agg(DISTINCT status, ', ') INTO bad
    FROM upstream_scan_checkpoints
    WHERE status NOT IN ('in_progress', 'paused', 'completed', 'failed', 'cancelled',
                         'interrupted');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'upstream statuses marketscan does not know: %; nothing copied', bad;
    END IF;

    SELECT count(*) INTO taken
    FROM upstream_scan_checkpoints JOIN scan_checkpoints USING (scan_id);
    IF taken > 0 THEN
        RAISE EXCEPTION '% upstream scan_ids are in scan_checkpoints already; nothing copied',
            taken;
    END IF;

    EXECUTE format(
        $copy$
        INSERT INTO scan_checkpoints (
            scan_id, user_id, operation_type, cursor, processed_items, total_items,
            "timestamp", metadata, status, error_message, runner, created_at, updated_at
        )
        SELECT
            scan_id, user_id, operation_type, cursor, COALESCE(processed_items, 0),
            total_items, moment, meta,
            CASE COALESCE(status, 'in_progress')
                WHEN 'interrupted' THEN 'paused'
                ELSE COALESCE(status, 'in_progress')
            END,
            CASE WHEN status = 'failed' THEN NULLIF(meta ->> 'error', '') END,
            'caller',
            COALESCE(created, moment),
            COALESCE(updated, moment)
        FROM (
            SELECT upstream.*, %s AS meta, COALESCE(%s, now()) AS moment,
                   %s AS created, %s AS updated
            FROM upstream_scan_checkpoints AS upstream
        ) AS converted
        ORDER BY id
        $copy$,
        meta,
        pg_temp.upstream_time('timestamp'),
        pg_temp.upstream_time('created_at'),
        pg_temp.upstream_time('updated_at')
    );
    GET DIAGNOSTICS copied = ROW_COUNT;
    RAISE NOTICE 'copied % upstream checkpoints into scan_checkpoints', copied;
END
$$;

COMMIT;
