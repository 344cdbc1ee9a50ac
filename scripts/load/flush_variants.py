"""An experiment for the load runs, never for a database in service: ``webhookfast_flush``
replaced, in a throw-away database, by a copy that writes less, so that one run shows what the
receiver would reach if its ingest transaction did less (issue #12, targets 1 and 5).

- ``events``: only the alert_events insert, one table per alert, as the reference receiver
  writes; label sets, alerts and notification groups are left unwritten.
- ``commit``: no table at all, only a transaction id, so that the commit is still logged and
  synced: the ceiling of the Python server with a database that does nothing but commit.

The server keeps everything else as shipped (its prepared ``SELECT webhookfast_flush(...)``, the
arrays it encodes and sends, the commit it waits for). The copy takes the function's own
argument list and advisory lock from the catalog, so that it follows the migrations.
"""

from __future__ import annotations

import re

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
VARIANTS = {"events": _EVENTS, "commit": _COMMIT}

_LOCK = re.compile(r"PERFORM pg_advisory_xact_lock_shared\(\d+\);")


def apply(url: str, variant: str) -> None:
    """Replace ``webhookfast_flush`` in the (migrated) database at ``url`` by ``variant``."""
    body = VARIANTS[variant]
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
        conn.execute(
            f"CREATE OR REPLACE FUNCTION webhookfast_flush({arguments}) RETURNS void LANGUAGE plpgsql "
            f"AS $fn$ BEGIN {lock.group(0)} {body} END $fn$"
        )
