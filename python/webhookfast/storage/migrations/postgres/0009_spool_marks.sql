-- How far each local spool has been replayed (one spool per worker process, named by the random
-- id kept in its directory). The mark is written in the same transaction as the replayed alerts,
-- so a replay cut short by a crash resumes right after what was committed: no alert is lost and
-- none is counted twice.
CREATE TABLE spool_marks (
    spool_id   text PRIMARY KEY,
    segment    bigint NOT NULL,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
