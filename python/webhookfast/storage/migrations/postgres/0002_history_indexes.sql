-- Indexes for the history API (python/webhookfast/api, docs/api.md; plans measured there).
--
-- GET /api/v1/alerts pages with a keyset: ORDER BY (starts_at, fingerprint) or (last_seen,
-- fingerprint, starts_at) and WHERE (…) < (cursor). A single-column index can neither give that
-- order nor start the scan at the cursor (PostgreSQL does not derive starts_at <= x from a row
-- comparison), so a deep page would scan every newer row. The two single-column indexes of 0001
-- are replaced by their keyset versions, which serve their old uses (prune by starts_at, "seen
-- recently") just as well: no extra index per row written.
DROP INDEX alerts_starts_at;
CREATE INDEX alerts_starts_at ON alerts (starts_at, fingerprint);
DROP INDEX alerts_last_seen;
CREATE INDEX alerts_last_seen ON alerts (last_seen, fingerprint, starts_at);

-- Time to resolve: instances resolved in a window (by ends_at). Partial: firing rows never enter.
CREATE INDEX alerts_resolved_ends_at ON alerts (ends_at) WHERE status = 'resolved';

-- Flapping: state changes per fingerprint in a received_at window, answered from the index alone
-- (alert_events is insert-only, so its pages become all-visible and the scan skips the heap).
DROP INDEX alert_events_received_at;
CREATE INDEX alert_events_received_at ON alert_events (received_at) INCLUDE (fingerprint, status);

-- Label matchers name="value": labels @> '{"name": "value"}'. Label sets are written once per
-- fingerprint, so this index costs the write path almost nothing.
CREATE INDEX label_sets_labels ON label_sets USING gin (labels jsonb_path_ops);
