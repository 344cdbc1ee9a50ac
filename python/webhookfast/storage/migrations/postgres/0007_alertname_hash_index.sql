-- Anything the decoder accepts must be storable. A btree entry holds its key and may not exceed
-- about a third of a page (2704 bytes): an alertname of ~3 KB (label values may have 64 KiB)
-- failed the whole flush that carried it ("index row size exceeds btree version 4 maximum").
-- Audit of every index of 0001-0005: the keys are bigint fingerprints, timestamps, and `status`
-- (CHECKed to firing/resolved); the GIN jsonb_path_ops index on labels stores a 4-byte hash per
-- entry; job_runs.name is ours. label_sets (alertname) was the one index over sender text.
--
-- The one query that uses it is the alertname="x" matcher of the history API (`ls.alertname =
-- $1`): equality only, which a hash index serves (it stores a 4-byte hash per entry, whatever the
-- value's size; WAL-logged and crash-safe since PostgreSQL 10). No ORDER BY or range on alertname
-- reads it (time to resolve groups by alertname over a join, not through the index).
DROP INDEX label_sets_alertname;
CREATE INDEX label_sets_alertname ON label_sets USING hash (alertname);
