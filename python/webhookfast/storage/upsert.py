"""How one delivery merges into an alert instance's current state: the same rule on every store.

A resolved state is final for an instance (a late or retried "firing" never reopens it; a new
episode has a new startsAt), first_seen only moves back, last_seen only forward, deliveries add up,
the latest receiver wins. The target table is aliased ``a``.
"""

from __future__ import annotations

_ALERTS_CONFLICT = """ON CONFLICT (fingerprint, starts_at) DO UPDATE SET
    status = CASE WHEN a.status = 'resolved' OR excluded.status = 'resolved'
                  THEN 'resolved' ELSE 'firing' END,
    ends_at = CASE WHEN excluded.status = 'resolved' THEN excluded.ends_at
                   WHEN a.status = 'resolved' THEN a.ends_at
                   ELSE excluded.ends_at END,
    first_seen = {least}(a.first_seen, excluded.first_seen),
    last_seen = {greatest}(a.last_seen, excluded.last_seen),
    notifications = a.notifications + excluded.notifications,
    receiver = excluded.receiver"""

# SQLite's two-argument min/max are PostgreSQL's LEAST/GREATEST.
SQLITE_ALERTS_CONFLICT = _ALERTS_CONFLICT.format(least="min", greatest="max")
POSTGRES_ALERTS_CONFLICT = _ALERTS_CONFLICT.format(least="LEAST", greatest="GREATEST")
