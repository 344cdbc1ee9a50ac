"""An experiment for the load runs, never for a database in service: ``webhookfast_flush``
replaced, in a throw-away database, by a copy that writes less, so that one run shows what the
receiver would reach if its ingest transaction did less (issue #12, targets 1 and 5).

- ``events``: only the alert_events insert, one table per alert, as the reference receiver
  writes; label sets, alerts and notification groups are left unwritten.
- ``events_wide``: only alert_events, each event with its alert's labels and name, and an index
  on the name: one table per alert that still holds what the history reads, the budget of a
  history kept in the events alone.
- ``instances``: one table, ``alerts``, whose row per alert instance also holds its labels, its
  name and what its events held (when it fired and resolved, its annotations, source and
  generator URL), with every index the history reads today plus the label index on the labels:
  the budget of the history's read model kept in one table. ``instances_keyed``: the same
  without the four indexes that list and count instances by time and status;
  ``instances_nogin``: without the labels' GIN index.
- ``commit``: no table at all, only a transaction id, so that the commit is still logged and
  synced: the ceiling of the Python server with a database that does nothing but commit.
- ``journal``: the tables written after the acknowledgement (issue #12's "design change"). The
  flush stores its 26 arrays as one row of ``flush_journal``, durable at the commit that the
  acknowledgement waits for; a ``Folder`` thread of the load run then applies the journal, oldest
  first, with the shipped flush's own body (``webhookfast_apply``), and the run reports how many
  alerts were still waiting at the end of each webhookfast run and how long they took to fold.
  Everything is stored as shipped, later: the history API lags by that time.

The server keeps everything else as shipped (its prepared ``SELECT webhookfast_flush(...)``, the
arrays it encodes and sends, the commit it waits for). The copy takes the function's own
argument list and advisory lock from the catalog, so that it follows the migrations.
"""

from __future__ import annotations

import re
import threading
import time

import psycopg

_EVENTS = """
    INSERT INTO alert_events (fingerprint, starts_at, status, ends_at, received_at, group_id, source,
                              generator_url, annotations)
    SELECT * FROM unnest(e_fingerprint, e_starts_at, e_status, e_ends_at, e_received_at, e_group_id,
                         e_source, e_generator_url, e_annotations) ORDER BY 1, 2, 3
    ON CONFLICT (fingerprint, starts_at, status) DO NOTHING;
"""
_COMMIT = """
    PERFORM pg_current_xact_id();
"""
# Each event with its alert's labels and name, one table and no other: what a history kept in the
# events alone would write per alert (the label sets arrive beside the events, one per fingerprint).
_EVENTS_WIDE = """
    INSERT INTO alert_events (fingerprint, starts_at, status, ends_at, received_at, group_id, source,
                              generator_url, annotations, labels, alertname)
    SELECT e.*, l.labels, l.alertname
    FROM unnest(e_fingerprint, e_starts_at, e_status, e_ends_at, e_received_at, e_group_id,
                e_source, e_generator_url, e_annotations) AS e(fingerprint, starts_at, status, ends_at,
                received_at, group_id, source, generator_url, annotations)
    JOIN unnest(l_fingerprint, l_labels, l_alertname) AS l(fingerprint, labels, alertname) USING (fingerprint)
    ORDER BY 1, 2, 3
    ON CONFLICT (fingerprint, starts_at, status) DO NOTHING;
"""
# One upsert per alert instance, with its labels and its events' columns beside the counts. An
# instance has at most one firing and one resolved event (alert_events' key), so both fit in its
# row; the first of each is kept, as alert_events' ON CONFLICT DO NOTHING keeps it. The groups'
# statements and the rule that merges a notification into its instance are the shipped flush's
# own ({groups}, {alerts_set}: read from the catalog).
_INSTANCES = """
    {groups}
    INSERT INTO alerts AS a (fingerprint, starts_at, status, ends_at, first_seen, last_seen, notifications,
                             group_id, status_from_ends, labels, alertname, severity, fired_at, resolved_at,
                             source, generator_url, annotations)
    SELECT s.*, l.labels, l.alertname, l.severity, f.received_at, r.received_at,
           coalesce(r.source, f.source), coalesce(r.generator_url, f.generator_url),
           coalesce(r.annotations, f.annotations)
    FROM unnest(a_fingerprint, a_starts_at, a_status, a_ends_at, a_first_seen, a_last_seen, a_notifications,
                a_group_id, a_status_from_ends) AS s(fingerprint, starts_at, status, ends_at, first_seen,
                last_seen, notifications, group_id, status_from_ends)
    JOIN unnest(l_fingerprint, l_labels, l_alertname, l_severity) AS l(fingerprint, labels, alertname, severity)
        ON l.fingerprint = s.fingerprint
    LEFT JOIN unnest(e_fingerprint, e_starts_at, e_status, e_received_at, e_source, e_generator_url, e_annotations)
        AS f(fingerprint, starts_at, status, received_at, source, generator_url, annotations)
        ON f.fingerprint = s.fingerprint AND f.starts_at = s.starts_at AND f.status = 'firing'
    LEFT JOIN unnest(e_fingerprint, e_starts_at, e_status, e_received_at, e_source, e_generator_url, e_annotations)
        AS r(fingerprint, starts_at, status, received_at, source, generator_url, annotations)
        ON r.fingerprint = s.fingerprint AND r.starts_at = s.starts_at AND r.status = 'resolved'
    ORDER BY 1, 2
    ON CONFLICT (fingerprint, starts_at) DO UPDATE SET {alerts_set},
        fired_at = coalesce(a.fired_at, excluded.fired_at),
        resolved_at = coalesce(a.resolved_at, excluded.resolved_at),
        source = coalesce(excluded.source, a.source),
        generator_url = coalesce(excluded.generator_url, a.generator_url),
        annotations = coalesce(excluded.annotations, a.annotations);
"""
_BODIES = {
    "events": _EVENTS,
    "commit": _COMMIT,
    "events_wide": _EVENTS_WIDE,
    "instances": _INSTANCES,
    "instances_keyed": _INSTANCES,
    "instances_nogin": _INSTANCES,
}
# What a variant's body needs beside the shipped schema: for events_wide, the columns and the
# index the history's "alerts named X" would need on them; for instances, the columns that take
# the label sets' and the events' place, with the label sets' indexes.
_SCHEMA = {
    "events_wide": (
        "ALTER TABLE alert_events ADD COLUMN labels jsonb, ADD COLUMN alertname text",
        "CREATE INDEX alert_events_alertname ON alert_events (left(alertname, 512))",
    ),
    # The label index keeps its name, so that the store's merge task merges it off the ingest
    # path as it does the shipped one.
    "instances": (
        "ALTER TABLE alerts ADD COLUMN labels jsonb, ADD COLUMN alertname text, ADD COLUMN severity text,"
        " ADD COLUMN fired_at timestamptz, ADD COLUMN resolved_at timestamptz, ADD COLUMN source text,"
        " ADD COLUMN generator_url text, ADD COLUMN annotations jsonb",
        "CREATE INDEX alerts_alertname ON alerts (left(alertname, 512))",
        "DROP INDEX label_sets_labels",
        "CREATE INDEX label_sets_labels ON alerts USING gin (labels jsonb_path_ops)",
    ),
}
# Without the four indexes that list and count instances by time and status: what they cost.
_SCHEMA["instances_keyed"] = (
    *_SCHEMA["instances"],
    "DROP INDEX alerts_starts_at, alerts_last_seen, alerts_status, alerts_resolved_ends_at",
)
# Without the GIN index on the labels, which the label matchers (labels @> ...) use.
_SCHEMA["instances_nogin"] = (*_SCHEMA["instances"], "DROP INDEX label_sets_labels")
# The parts of the shipped flush that the instances variant reuses (each pattern's one group).
_SHIPPED_PARTS = {
    "groups": re.compile(r"(INSERT INTO notification_groups .*?END IF;)", re.S),
    "alerts_set": re.compile(r"ON CONFLICT \(fingerprint, starts_at\) DO UPDATE SET(.*?);", re.S),
}
VARIANTS = (*_BODIES, "journal")

_LOCK = re.compile(r"PERFORM pg_advisory_xact_lock_shared\(\d+\);")


def apply(url: str, variant: str) -> None:
    """Replace ``webhookfast_flush`` in the (migrated) database at ``url`` by ``variant``."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_get_function_arguments(p.oid), p.prosrc FROM pg_proc p WHERE p.proname = 'webhookfast_flush'"
        ).fetchone()
        if row is None:
            raise RuntimeError("webhookfast_flush not found: migrate the database first")
        arguments, source = row
        lock = _LOCK.search(source)
        if lock is None:
            raise RuntimeError("webhookfast_flush takes no advisory lock any more: update flush_variants.py")
        if variant == "journal":
            _apply_journal(conn, arguments, source)
            return
        for statement in _SCHEMA.get(variant, ()):
            conn.execute(statement)
        body = _BODIES[variant].format(**_shipped_parts(source))
        conn.execute(
            f"CREATE OR REPLACE FUNCTION webhookfast_flush({arguments}) RETURNS void LANGUAGE plpgsql "
            f"AS $fn$ BEGIN {lock.group(0)} {body} END $fn$"
        )


def _shipped_parts(source: str) -> dict[str, str]:
    """The statements of the shipped flush's ``source`` that a variant's body may name."""
    parts = {}
    for name, pattern in _SHIPPED_PARTS.items():
        found = pattern.search(source)
        if found is None:
            raise RuntimeError(f"webhookfast_flush's {name} not found: update flush_variants.py")
        parts[name] = found.group(1)
    return parts


def _apply_journal(conn: psycopg.Connection, arguments: str, source: str) -> None:
    columns = [a.strip() for a in arguments.split(",")]  # "g_id bigint[]", ...
    names = [c.split()[0] for c in columns]
    conn.execute(f"CREATE FUNCTION webhookfast_apply({arguments}) RETURNS void LANGUAGE plpgsql AS $fn${source}$fn$")
    conn.execute(f"CREATE TABLE flush_journal (id bigserial PRIMARY KEY, {', '.join(columns)})")
    # No advisory lock here: the journal insert touches none of the tables that prune and the
    # label-index merge guard; webhookfast_apply takes it when the row is folded.
    conn.execute(
        f"CREATE OR REPLACE FUNCTION webhookfast_flush({arguments}) RETURNS void LANGUAGE sql "
        f"AS $fn$ INSERT INTO flush_journal ({', '.join(names)}) VALUES ({', '.join(names)}) $fn$"
    )
    # Up to n journal rows per transaction, oldest first; returns the alerts folded.
    conn.execute(
        "CREATE FUNCTION webhookfast_fold(n integer) RETURNS bigint LANGUAGE plpgsql AS $fn$ "
        "DECLARE r record; folded bigint := 0; BEGIN "
        "FOR r IN DELETE FROM flush_journal WHERE id IN "
        "(SELECT id FROM flush_journal ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED) RETURNING * LOOP "
        f"PERFORM webhookfast_apply({', '.join('r.' + x for x in names)}); "
        "folded := folded + cardinality(r.e_fingerprint); "
        "END LOOP; RETURN folded; END $fn$"
    )


class Folder:
    """Applies ``flush_journal`` (the ``journal`` variant) on a thread of the load run, one
    transaction per ``per_call`` journal rows, while the server goes on acknowledging."""

    def __init__(self, url: str, per_call: int = 4, idle_s: float = 0.02) -> None:
        self.url = url
        self.per_call = per_call
        self.idle_s = idle_s
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="journal-folder", daemon=True)

    def start(self) -> Folder:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self._stop.is_set():
                    row = conn.execute("SELECT webhookfast_fold(%s)", (self.per_call,)).fetchone()
                    if not row or not row[0]:
                        self._stop.wait(self.idle_s)
        except BaseException as exc:  # reported by drain(), never silently lost
            self.error = exc

    def pending(self, conn: psycopg.Connection | None = None) -> int:
        """Alerts in the journal, not yet in the history tables."""
        if conn is None:
            with psycopg.connect(self.url, autocommit=True) as own:
                return self.pending(own)
        row = conn.execute("SELECT coalesce(sum(cardinality(e_fingerprint)), 0) FROM flush_journal").fetchone()
        return int(row[0]) if row else 0

    def drain(self, timeout_s: float = 600.0) -> str:
        """Waits until the journal is empty; a note for the run's row: what was pending when it was
        called, and how long folding it took."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            pending = self.pending(conn)
            t0 = time.monotonic()
            while self.error is None and self.pending(conn) > 0:
                if time.monotonic() - t0 > timeout_s:
                    raise RuntimeError(f"the journal did not drain within {timeout_s:.0f} s")
                time.sleep(0.1)
        if self.error is not None:
            raise RuntimeError(f"the journal folder failed: {self.error!r}")
        took = time.monotonic() - t0
        rate = f", {pending / took:,.0f} alerts/s" if pending and took > 0 else ""
        return f"journal: {pending:,} alerts not yet folded at the end, folded in {took:.1f} s{rate}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
