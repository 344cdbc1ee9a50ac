-- Time to resolve reads (fingerprint, starts_at, ends_at) of every instance resolved in the window.
-- With fingerprint and starts_at in the index it can be an index-only scan: on the 1,000,000-event
-- data set of scripts/gen_history.py (vacuumed), a 24 h window (16.6k instances) read 86 index
-- pages instead of 11.7k heap pages (docs/api.md). Under live ingest the newest pages are not
-- all-visible until autovacuum has passed (repeated notifications still update resolved rows, and
-- pages are shared with firing rows), so the last hours may still visit the heap. Partial: firing
-- rows never enter.
--
-- Upgrading: CREATE INDEX (not CONCURRENTLY: migrations run in a transaction) blocks writes to
-- alerts while it builds; on a large alerts table run `webhookfast migrate` in a quiet moment.
DROP INDEX alerts_resolved_ends_at;
CREATE INDEX alerts_resolved_ends_at ON alerts (ends_at) INCLUDE (fingerprint, starts_at) WHERE status = 'resolved';
