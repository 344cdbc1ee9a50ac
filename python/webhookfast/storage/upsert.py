"""How one delivery merges into an alert instance's current state: the same rule on every store,
and the one the Rust core folds the deliveries of a flush with (rows/collapse.rs, ``merge``).

An explicit status (Alertmanager's webhook, a generic alert's ``status``) keeps a resolved
instance resolved: a late or retried "firing" never reopens it; a new episode has a new startsAt.
A status derived from endsAt (Prometheus' alert list, ``status_from_ends``) follows Alertmanager:
a derived "firing" whose endsAt is later than that of a derived resolution reopens the instance
(NULL: never ends, later than any); an equal or earlier endsAt (a stale retry) does not; two
derived firings keep the later endsAt (a stale retry never makes a firing instance expire early).
first_seen only moves back, last_seen only forward, deliveries add up, the latest group (receiver
and groupKey) wins. The target table is aliased ``a``.
"""

from __future__ import annotations

_REOPENS = """(a.status = 'resolved' AND a.status_from_ends AND excluded.status = 'firing'
              AND excluded.status_from_ends
              AND (excluded.ends_at IS NULL OR a.ends_at IS NULL OR excluded.ends_at > a.ends_at))"""

# Every SET expression reads the row as it was, so the condition is the same in all three.
_ALERTS_CONFLICT = f"""ON CONFLICT (fingerprint, starts_at) DO UPDATE SET
    status = CASE WHEN {_REOPENS} THEN 'firing'
                  WHEN a.status = 'resolved' OR excluded.status = 'resolved' THEN 'resolved'
                  ELSE 'firing' END,
    ends_at = CASE WHEN {_REOPENS} OR excluded.status = 'resolved' THEN excluded.ends_at
                   WHEN a.status = 'resolved' THEN a.ends_at
                   WHEN a.status_from_ends AND excluded.status_from_ends THEN
                        CASE WHEN a.ends_at IS NULL OR excluded.ends_at IS NULL THEN NULL
                             ELSE {{greatest}}(a.ends_at, excluded.ends_at) END
                   ELSE excluded.ends_at END,
    status_from_ends = CASE WHEN {_REOPENS} OR excluded.status = 'resolved'
                                 OR a.status <> 'resolved' THEN excluded.status_from_ends
                            ELSE a.status_from_ends END,
    first_seen = {{least}}(a.first_seen, excluded.first_seen),
    last_seen = {{greatest}}(a.last_seen, excluded.last_seen),
    notifications = a.notifications + excluded.notifications,
    group_id = excluded.group_id,
    receiver = excluded.receiver"""

# SQLite's two-argument min/max are PostgreSQL's LEAST/GREATEST.
SQLITE_ALERTS_CONFLICT = _ALERTS_CONFLICT.format(least="min", greatest="max")
POSTGRES_ALERTS_CONFLICT = _ALERTS_CONFLICT.format(least="LEAST", greatest="GREATEST")

# notification_groups.last_used (migration 0006) keeps a group while rows may refer to it. It is
# raised only when it lags a flush's use by more than this: so a group is written at most once per
# slack, not on every flush (concurrent flushes of one receiver would queue on its row lock, and
# SQLite would rewrite a long receiver with the record). Retention deletes a group only when its
# last_used is more than the slack before the cutoff, when no row it kept can refer to it any more.
GROUP_LAST_USED_SLACK_S = 3600
