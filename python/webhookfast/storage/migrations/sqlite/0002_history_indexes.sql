-- Indexes for the history API (python/webhookfast/api, docs/api.md).
--
-- The tables are WITHOUT ROWID, so every secondary index already ends with the primary key:
-- alerts_starts_at is (starts_at, fingerprint) and alerts_last_seen is (last_seen, fingerprint,
-- starts_at), exactly the keysets of GET /api/v1/alerts; alert_events_received_at covers the
-- flapping statistic. Only two indexes are missing.

-- time to resolve: instances resolved in a window (by ends_at).
CREATE INDEX alerts_resolved_ends_at ON alerts (ends_at) WHERE status = 'resolved';

-- alertname="X" matchers start from the alert name.
CREATE INDEX label_sets_alertname ON label_sets (alertname);
