-- alert_events (received_at) served one query, the flapping statistic, which now counts instances
-- started and resolved in the window at their own times from the indexes of alerts (docs/api.md).
-- No query reads alert_events by received_at any more, and every index on it costs each history
-- row written (alert_events is the table that grows fastest): drop it. Dropping the partitioned
-- index drops the index of every partition.
DROP INDEX alert_events_received_at;
