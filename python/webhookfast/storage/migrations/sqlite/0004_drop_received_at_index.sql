-- alert_events (received_at) served one query, the flapping statistic, which now counts instances
-- started and resolved in the window at their own times from the indexes of alerts (docs/api.md).
-- No query reads alert_events by received_at any more, and every index on it costs each history
-- row written: drop it. (SQLite numbers its migrations like PostgreSQL: 0003 is PostgreSQL's only.)
DROP INDEX alert_events_received_at;
