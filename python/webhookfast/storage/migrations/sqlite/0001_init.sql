-- Times are integer microseconds since the Unix epoch (UTC); fingerprints are the 64-bit
-- Prometheus fingerprint stored as a signed integer; labels/annotations are JSON text.
-- Wide rows (label sets, events with annotations) live in rowid tables: new rows append at the
-- end, and only the narrow unique index takes the random fingerprint order. Keyed WITHOUT ROWID,
-- every flush dirtied pages all over the table and the WAL grew by megabytes per commit.
CREATE TABLE label_sets (
    fingerprint INTEGER NOT NULL UNIQUE,
    labels      TEXT NOT NULL,
    alertname   TEXT NOT NULL,
    severity    TEXT NOT NULL
);

CREATE TABLE alert_events (
    fingerprint   INTEGER NOT NULL,
    starts_at     INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    ends_at       INTEGER,
    received_at   INTEGER NOT NULL,
    receiver      TEXT NOT NULL,
    group_key     TEXT NOT NULL,
    source        TEXT NOT NULL,
    generator_url TEXT NOT NULL,
    annotations   TEXT NOT NULL,
    UNIQUE (fingerprint, starts_at, status)
);
CREATE INDEX alert_events_received_at ON alert_events (received_at);

CREATE TABLE alerts (
    fingerprint   INTEGER NOT NULL,
    starts_at     INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    ends_at       INTEGER,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    notifications INTEGER NOT NULL,
    receiver      TEXT NOT NULL,
    PRIMARY KEY (fingerprint, starts_at)
) WITHOUT ROWID;
CREATE INDEX alerts_starts_at ON alerts (starts_at);
CREATE INDEX alerts_last_seen ON alerts (last_seen);
CREATE INDEX alerts_status ON alerts (status, starts_at);
