-- webhookfast schema for PostgreSQL (same tables, columns and keys as sqlite/0001_init.sql).
--
-- Types: times are timestamptz (microsecond precision, the precision the Rust core keeps: it floors
-- nanoseconds exactly as the SQLite store does); the fingerprint is the 64-bit Prometheus fingerprint
-- stored as a signed bigint (webhookfast._core.fingerprint_to_int), which is 8 bytes in every key
-- instead of 16 bytes of hex text; labels and annotations are jsonb so that history queries can
-- filter on them (labels @> '{"team": "dba"}') without parsing JSON per row.
--
-- Write path: every flush COPYs its rows into per-connection temp staging tables and merges them
-- with INSERT ... SELECT ... ON CONFLICT (see storage/postgres.py). PostgreSQL's cost per inserted
-- row grows with every index on the table, so each table carries only its key plus the few indexes
-- the history API needs. Add an index here only with a query that needs it and a measurement.
--
-- Label sets are stored once per fingerprint: an alert that fires and resolves a hundred times has
-- a hundred narrow event rows but one copy of its labels.
CREATE TABLE label_sets (
    fingerprint bigint PRIMARY KEY,
    labels      jsonb NOT NULL,
    alertname   text NOT NULL,
    severity    text NOT NULL
);
-- "history of alert X" starts from the alert name.
CREATE INDEX label_sets_alertname ON label_sets (alertname);

-- The history: one row per state change of an alert instance. Repeated notifications of the same
-- state (Alertmanager repeats, retries, HA pairs) hit the primary key and are dropped by
-- ON CONFLICT DO NOTHING, so history is never duplicated and never overwritten.
--
-- Partitioned by month of starts_at so that retention drops whole partitions (no DELETE, no
-- vacuum debt) and so that time-bounded history queries touch only the months they ask for. The
-- partition key has to be part of the primary key, and starts_at already is (an alert instance is
-- fingerprint + startsAt). Partitions are created ahead of time by webhookfast_ensure_partitions
-- (run by `webhookfast migrate` and by the store when it opens and then hourly); the DEFAULT
-- partition catches whatever has no monthly partition (alerts that started before the install,
-- absurd timestamps such as year 0001/9999) so that an insert never fails for want of a
-- partition. It is expected to stay small: creating a partition scans it.
CREATE TABLE alert_events (
    fingerprint   bigint NOT NULL,
    starts_at     timestamptz NOT NULL,
    status        text NOT NULL CHECK (status IN ('firing', 'resolved')),
    ends_at       timestamptz,
    received_at   timestamptz NOT NULL,
    receiver      text NOT NULL,
    group_key     text NOT NULL,
    source        text NOT NULL,
    generator_url text NOT NULL,
    annotations   jsonb NOT NULL,
    PRIMARY KEY (fingerprint, starts_at, status)
) PARTITION BY RANGE (starts_at);
-- "what arrived in the last hour" (recent activity, debugging deliveries).
CREATE INDEX alert_events_received_at ON alert_events (received_at);
CREATE TABLE alert_events_default PARTITION OF alert_events DEFAULT;

-- The current state of each alert instance, upserted in the same transaction as its events. Not
-- partitioned: it is much smaller than the history and its upsert needs a global unique key.
-- Note that every repeated notification moves last_seen, an indexed column, so those updates are
-- not HOT; the last_seen index is kept because "alerts seen recently" is the main dashboard query.
CREATE TABLE alerts (
    fingerprint   bigint NOT NULL,
    starts_at     timestamptz NOT NULL,
    status        text NOT NULL CHECK (status IN ('firing', 'resolved')),
    ends_at       timestamptz,
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    notifications integer NOT NULL,
    receiver      text NOT NULL,
    PRIMARY KEY (fingerprint, starts_at)
);
-- Time-range listings and retention (prune deletes by starts_at).
CREATE INDEX alerts_starts_at ON alerts (starts_at);
-- "Alerts seen recently" / stale-alert detection.
CREATE INDEX alerts_last_seen ON alerts (last_seen);
-- "What is firing now" (status = 'firing' ordered by start) without scanning resolved history.
CREATE INDEX alerts_status ON alerts (status, starts_at);

-- Creates the monthly partitions of alert_events for the current UTC month and the months_ahead
-- following ones; returns how many it created. Cheap when they exist (a catalog lookup per month),
-- so callers may run it often. Creators are serialized by a lock on alert_events (two receivers
-- starting together must not race on CREATE TABLE). If rows of a month already sit in the DEFAULT partition
-- (the receiver was down across a month boundary, or a sender's clock is ahead), they are moved
-- into the new partition, because PostgreSQL refuses to create a partition whose range still has
-- rows in DEFAULT.
CREATE FUNCTION webhookfast_ensure_partitions(months_ahead integer DEFAULT 2)
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
        created := created + 1;
    END LOOP;
    RETURN created;
END
$fn$;
