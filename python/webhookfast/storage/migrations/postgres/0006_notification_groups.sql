-- A notification's receiver and groupKey are stored once per distinct pair, in notification_groups,
-- keyed by webhookfast._core's group id (a SHA-256 prefix of the pair, computed in Rust): both
-- can be as long as a request body, and copying them into every event and current-state row made
-- one request of 10,000 alerts cost 10,000 times their size in memory and on disk. New rows carry
-- group_id and leave the old receiver/group_key columns empty; rows written before this migration
-- keep their text there (readers take the group's text when there is one, else the row's own), so
-- upgrading rewrites nothing.
--
-- last_used: the latest starts_at or received_at of a row that refers to the group, kept within
-- a slack (storage/upsert.py: GROUP_LAST_USED_SLACK_S). Retention deletes rows by starts_at, so a
-- group last used more than the slack before the cutoff has no row left and is deleted with them:
-- no index on group_id is needed.
--
-- alerts.status_from_ends: the instance's status was derived from endsAt (Prometheus' alert list
-- format), so a later send with a later endsAt may reopen it (storage/upsert.py).
CREATE TABLE notification_groups (
    id        bigint PRIMARY KEY,
    receiver  text NOT NULL,
    group_key text NOT NULL,
    last_used timestamptz NOT NULL
);
ALTER TABLE alert_events
    ADD COLUMN group_id bigint,
    ALTER COLUMN receiver SET DEFAULT '',
    ALTER COLUMN group_key SET DEFAULT '';
ALTER TABLE alerts
    ADD COLUMN group_id bigint,
    ADD COLUMN status_from_ends boolean NOT NULL DEFAULT false,
    ALTER COLUMN receiver SET DEFAULT '';
