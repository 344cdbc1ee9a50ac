-- Periodic jobs shared by every worker and every replica writing to this database (retention
-- pruning). A job's row says when it last started; a worker runs the job only when one atomic
-- upsert moves that time forward by at least the job's interval (Store.claim_job), so N workers
-- on M replicas prune once per interval instead of N x M times. The database's clock decides,
-- so replicas with skewed clocks still agree.
CREATE TABLE job_runs (
    name       text PRIMARY KEY,
    started_at timestamptz NOT NULL
);
