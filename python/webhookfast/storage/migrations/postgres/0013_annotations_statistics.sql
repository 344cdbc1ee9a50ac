-- No statistics on alert_events.annotations. No query filters on its values in a way the planner
-- could estimate from them (the annotation search goes through json_each), yet ANALYZE sorted
-- 30,000 sampled jsonb documents for them: ~70 of the ~105 ms of CPU that an ANALYZE of
-- alert_events_default took with 60,000 events (docs/performance.md, twentieth pass).
-- Autovacuum runs that ANALYZE as the table grows, on the machine that is ingesting.
--
-- SET STATISTICS on the parent reaches the partitions that exist; webhookfast_ensure_partitions,
-- as in 0001 otherwise, sets it on each partition it creates (PostgreSQL does not copy it).
ALTER TABLE alert_events ALTER COLUMN annotations SET STATISTICS 0;

CREATE OR REPLACE FUNCTION webhookfast_ensure_partitions(months_ahead integer DEFAULT 2)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    first_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    month_start timestamp;
    lo timestamptz;
    hi timestamptz;
    part text;
    created integer := 0;
BEGIN
    FOR i IN 0 .. greatest(months_ahead, 0) LOOP
        month_start := first_month + make_interval(months => i);
        lo := month_start AT TIME ZONE 'UTC';
        hi := (month_start + interval '1 month') AT TIME ZONE 'UTC';
        part := 'alert_events_' || to_char(month_start, 'YYYY"m"MM');
        CONTINUE WHEN to_regclass(quote_ident(part)) IS NOT NULL;
        -- This self-conflicting lock serializes creators, and keeps concurrent inserts from adding
        -- rows to DEFAULT between the check and the move (creating a partition locks the parent
        -- anyway). Taking a table lock also makes this backend read the catalog changes committed
        -- meanwhile (an advisory lock would not: the re-check below could see a stale "missing").
        LOCK TABLE alert_events IN SHARE ROW EXCLUSIVE MODE;
        CONTINUE WHEN to_regclass(quote_ident(part)) IS NOT NULL;
        IF EXISTS (SELECT 1 FROM alert_events_default WHERE starts_at >= lo AND starts_at < hi) THEN
            EXECUTE format('CREATE TABLE %I (LIKE alert_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format(
                'WITH moved AS (DELETE FROM alert_events_default WHERE starts_at >= %L AND starts_at < %L RETURNING *) '
                'INSERT INTO %I SELECT * FROM moved', lo, hi, part);
            EXECUTE format('ALTER TABLE alert_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        ELSE
            EXECUTE format('CREATE TABLE %I PARTITION OF alert_events FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        END IF;
        EXECUTE format('ALTER TABLE %I ALTER COLUMN annotations SET STATISTICS 0', part);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$fn$;
