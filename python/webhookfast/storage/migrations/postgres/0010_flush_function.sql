-- One flush in one call: the rows of every table as binary arrays, one per column (encoded by the
-- Rust core, rows/pgarrays.rs), merged in one statement's transaction. One round trip, and no
-- client work per alert, at any flush size (storage/postgres.py). The statements and their order
-- are those of the staging merge (MERGE_SQL there): the shared lock that keeps prune from deleting
-- a label set or group this flush relies on, groups (inserted, or last_used raised when it lags
-- by more than storage/upsert.py's slack), label sets, events, then current state by the rule in
-- storage/upsert.py (a test checks both are the same text). Rows are inserted in key order so that
-- concurrent writers lock them in the same order.
CREATE FUNCTION webhookfast_flush(
    g_id bigint[], g_receiver text[], g_group_key text[], g_last_used timestamptz[],
    l_fingerprint bigint[], l_labels jsonb[], l_alertname text[], l_severity text[],
    e_fingerprint bigint[], e_starts_at timestamptz[], e_status text[], e_ends_at timestamptz[],
    e_received_at timestamptz[], e_group_id bigint[], e_source text[], e_generator_url text[],
    e_annotations jsonb[],
    a_fingerprint bigint[], a_starts_at timestamptz[], a_status text[], a_ends_at timestamptz[],
    a_first_seen timestamptz[], a_last_seen timestamptz[], a_notifications integer[],
    a_group_id bigint[], a_status_from_ends boolean[]
) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(8604239648117580396);
    INSERT INTO notification_groups (id, receiver, group_key, last_used)
    SELECT * FROM unnest(g_id, g_receiver, g_group_key, g_last_used) ORDER BY 1
    ON CONFLICT (id) DO NOTHING;
    UPDATE notification_groups g SET last_used = s.last_used
    FROM unnest(g_id, g_last_used) AS s(id, last_used)
    WHERE g.id = s.id AND g.last_used < s.last_used - interval '3600 seconds';
    INSERT INTO label_sets (fingerprint, labels, alertname, severity)
    SELECT * FROM unnest(l_fingerprint, l_labels, l_alertname, l_severity) ORDER BY 1
    ON CONFLICT (fingerprint) DO NOTHING;
    INSERT INTO alert_events (fingerprint, starts_at, status, ends_at, received_at, group_id, source,
                              generator_url, annotations)
    SELECT * FROM unnest(e_fingerprint, e_starts_at, e_status, e_ends_at, e_received_at, e_group_id,
                         e_source, e_generator_url, e_annotations) ORDER BY 1, 2, 3
    ON CONFLICT (fingerprint, starts_at, status) DO NOTHING;
    INSERT INTO alerts AS a (fingerprint, starts_at, status, ends_at, first_seen, last_seen,
                             notifications, group_id, status_from_ends)
    SELECT * FROM unnest(a_fingerprint, a_starts_at, a_status, a_ends_at, a_first_seen, a_last_seen,
                         a_notifications, a_group_id, a_status_from_ends) ORDER BY 1, 2
    ON CONFLICT (fingerprint, starts_at) DO UPDATE SET
        status = CASE WHEN (a.status = 'resolved' AND a.status_from_ends AND excluded.status = 'firing'
                  AND excluded.status_from_ends
                  AND (excluded.ends_at IS NULL OR a.ends_at IS NULL OR excluded.ends_at > a.ends_at)) THEN 'firing'
                      WHEN a.status = 'resolved' OR excluded.status = 'resolved' THEN 'resolved'
                      ELSE 'firing' END,
        ends_at = CASE WHEN (a.status = 'resolved' AND a.status_from_ends AND excluded.status = 'firing'
                  AND excluded.status_from_ends
                  AND (excluded.ends_at IS NULL OR a.ends_at IS NULL OR excluded.ends_at > a.ends_at)) OR excluded.status = 'resolved' THEN excluded.ends_at
                       WHEN a.status = 'resolved' THEN a.ends_at
                       WHEN a.status_from_ends AND excluded.status_from_ends THEN
                            CASE WHEN a.ends_at IS NULL OR excluded.ends_at IS NULL THEN NULL
                                 ELSE GREATEST(a.ends_at, excluded.ends_at) END
                       ELSE excluded.ends_at END,
        status_from_ends = CASE WHEN (a.status = 'resolved' AND a.status_from_ends AND excluded.status = 'firing'
                  AND excluded.status_from_ends
                  AND (excluded.ends_at IS NULL OR a.ends_at IS NULL OR excluded.ends_at > a.ends_at)) OR excluded.status = 'resolved'
                                     OR a.status <> 'resolved' THEN excluded.status_from_ends
                                ELSE a.status_from_ends END,
        first_seen = LEAST(a.first_seen, excluded.first_seen),
        last_seen = GREATEST(a.last_seen, excluded.last_seen),
        notifications = a.notifications + excluded.notifications,
        group_id = excluded.group_id,
        receiver = excluded.receiver;
END
$fn$;
