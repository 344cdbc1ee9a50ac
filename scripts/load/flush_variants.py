"""An experiment for the load runs, never for a database in service: ``webhookfast_flush``
replaced, in a throw-away database, by a copy that writes less, so that one run shows what the
receiver would reach if its ingest transaction did less (issue #12, targets 1 and 5).

- ``events``: only the alert_events insert, one table per alert, as the reference receiver
  writes; label sets, alerts and notification groups are left unwritten.
- ``events_wide``: only alert_events, each event with its alert's labels and name, and an index
  on the name: one table per alert that still holds what the history reads, the budget of a
  history kept in the events alone.
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
_BODIES = {"events": _EVENTS, "commit": _COMMIT, "events_wide": _EVENTS_WIDE}
# What a variant's body needs beside the shipped schema: for events_wide, the columns and the
# index the history's "alerts named X" would need on them.
_SCHEMA = {
    "events_wide": (
        "ALTER TABLE alert_events ADD COLUMN labels jsonb, ADD COLUMN alertname text",
        "CREATE INDEX alert_events_alertname ON alert_events (left(alertname, 512))",
    ),
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
        conn.execute(
            f"CREATE OR REPLACE FUNCTION webhookfast_flush({arguments}) RETURNS void LANGUAGE plpgsql "
            f"AS $fn$ BEGIN {lock.group(0)} {_BODIES[variant]} END $fn$"
        )


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
