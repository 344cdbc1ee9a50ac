"""The stored-row layout, written down once: the columns, in order, of the rows the Rust core
encodes for each table (``RowEncoder.pg_copy``'s COPY streams and ``RowEncoder.row_tuples``'
tuples, see ``rust/core/src/rows/``). Both stores' INSERTs and COPYs name these columns.

receiver and group_key live in notification_groups (migration 0006): the event and alert rows'
own columns of those names keep their default '' and only hold what was written before it.
Timestamps are microseconds since the Unix epoch in the tuples (SQLite stores them so; PostgreSQL
converts them to timestamptz), JSON is text.
"""

from __future__ import annotations

GROUP_COLUMNS = ("id", "receiver", "group_key", "last_used")
LABEL_SET_COLUMNS = ("fingerprint", "labels", "alertname", "severity")
EVENT_COLUMNS = (
    "fingerprint",
    "starts_at",
    "status",
    "ends_at",
    "received_at",
    "group_id",
    "source",
    "generator_url",
    "annotations",
)
ALERT_COLUMNS = (
    "fingerprint",
    "starts_at",
    "status",
    "ends_at",
    "first_seen",
    "last_seen",
    "notifications",
    "group_id",
    "status_from_ends",
)


def names(columns: tuple[str, ...]) -> str:
    """``a, b, c``: a column list for SQL."""
    return ", ".join(columns)


def placeholders(columns: tuple[str, ...], mark: str = "?") -> str:
    """``?, ?, ?``: one parameter per column."""
    return ", ".join([mark] * len(columns))
