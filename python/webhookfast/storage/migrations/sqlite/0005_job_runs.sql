-- Periodic jobs shared by every worker writing to this database (retention pruning). A job's row
-- says when it last started (µs since the epoch); a worker runs the job only when one atomic
-- upsert moves that time forward by at least the job's interval (Store.claim_job), so N workers
-- prune once per interval instead of N times, each holding the write lock.
CREATE TABLE job_runs (
    name       TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL
) WITHOUT ROWID;
