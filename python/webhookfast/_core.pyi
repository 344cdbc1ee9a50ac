"""Type stubs for the Rust extension ``webhookfast._core`` (checked by ``mypy.stubtest``).

The extension does the work on the request bytes: it detects the payload format, parses and
validates it, computes Prometheus fingerprints, keeps the decoded alerts in Rust memory, and
encodes them as storage rows. Python never touches an alert field by field on the hot path.
"""

from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Final, Literal, final

__version__: Final[str]
#: Statistics arrays of at least this many bytes are aggregated by window_stats without the GIL.
WINDOW_STATS_DETACH_BYTES: Final[int]
PAYLOAD_REASONS: tuple[str, ...]
PG_ARRAY_ELEMENT_OIDS: tuple[int, ...]
"""Every ``PayloadError.reason``, in the core's order."""
SYNTAX_REASONS: frozenset[str]
"""The reasons for a body that is not well-formed (400); the others are about its content (422)."""

@final
class Limits:
    """Validation limits for one request body. Every limit is inclusive."""

    max_alerts: int
    max_labels: int
    max_annotations: int
    max_name_bytes: int
    max_value_bytes: int
    max_depth: int
    def __new__(
        cls,
        *,
        max_alerts: int = 10000,
        max_labels: int = 128,
        max_annotations: int = 128,
        max_name_bytes: int = 1024,
        max_value_bytes: int = 65536,
        max_depth: int = 32,
    ) -> Limits: ...

class PayloadError(ValueError):
    """A body that is not a valid alert payload.

    ``reason`` is a stable machine-readable code (see README "Error codes"), ``path`` the JSON path
    of the offending value (``alerts[3].startsAt``; ``None`` when the body is not JSON at all), and
    ``offset`` the byte offset into the body where the problem was found (``None`` when unknown).
    ``str(err)`` is a short human-readable message that never echoes more than a few bytes of input.
    """

    reason: str
    path: str | None
    offset: int | None
    message: str

@final
class Batch:
    """The alerts of one accepted request, decoded and held in Rust memory."""

    @property
    def format(self) -> Literal["alertmanager", "prometheus", "generic"]: ...
    @property
    def receiver(self) -> str: ...
    @property
    def group_key(self) -> str: ...
    @property
    def received_at_us(self) -> int: ...
    @property
    def firing(self) -> int: ...
    @property
    def resolved(self) -> int: ...
    @property
    def fingerprint_mismatches(self) -> int: ...
    @property
    def nul_replaced(self) -> int: ...
    @property
    def body_bytes(self) -> int: ...
    @property
    def decoded_bytes(self) -> int:
        """Bytes of memory the decoded batch holds (what the ingest queue's byte bound counts)."""
    def __len__(self) -> int: ...
    def fingerprints(self) -> list[str]: ...
    def to_dicts(self) -> list[dict[str, object]]:
        """Every alert as a dict (for tests and debugging; not used on the hot path)."""

def decode(
    body: bytes,
    limits: Limits | None = None,
    received_at_us: int | None = None,
    max_decoded_bytes: int | DecodeBudget | None = None,
) -> Batch:
    """Detect the format of ``body``, parse and validate it, and fingerprint every alert.

    Raises ``PayloadError`` for a body that is not an acceptable payload. Releases the GIL while
    parsing large bodies. ``received_at_us`` (microseconds since the Unix epoch) defaults to now;
    it stamps every alert and decides firing/resolved for Prometheus' alert list. With
    ``max_decoded_bytes``, decoding stops with reason ``decoded_too_large`` as soon as the batch
    would hold more (``Batch.decoded_bytes``): memory is checked while decoding, not after. A
    ``DecodeBudget`` is read when decoding starts.
    """

def fingerprint(labels: Mapping[str, str]) -> str:
    """Prometheus ``LabelSet.Fingerprint()`` as 16 lowercase hex digits."""

def fingerprint_to_int(fp: str) -> int:
    """The signed 64-bit integer under which a hex fingerprint is stored."""

def fingerprint_from_int(value: int) -> str:
    """The hex fingerprint of a stored signed 64-bit integer."""

def alert_page(rows: Iterable[tuple[Any, ...]], next_cursor: str | None = None) -> bytes:
    """The JSON body of one ``GET /api/v1/alerts`` page from the rows of its query
    ``(fingerprint, starts_at, status, ends_at, first_seen, last_seen, notifications, receiver,
    labels, annotations)``: what ``orjson.dumps(..., option=OPT_SORT_KEYS)`` gives for the page.
    Labels and annotations must be JSON objects of strings (ValueError otherwise)."""

@final
class AccessRecords:
    """The answered requests of one worker not yet written to the access log, each kept as it is
    added (its strings held, not copied: no Python object made), until ``drain``."""

    def __new__(cls, capacity: int) -> AccessRecords:
        """``capacity`` (at least 1; ValueError otherwise): how many ``add`` keeps before it says
        to drain."""

    def add(
        self,
        method: str,
        path: str,
        route: str,
        status: int,
        started: float,
        ended: float,
        bytes_in: int | bytes,
        bytes_out: int,
        alerts: int,
        request_id: str,
        peer: str | None,
    ) -> bool:
        """Keep one answered request, with ``time.perf_counter()`` times and ``bytes_in`` its
        body's length or the body itself: True once ``capacity`` or more are kept (time to
        ``drain``)."""

    def __len__(self) -> int: ...
    def drain(
        self, wall_offset: float, bounds: Sequence[float], lines: bool = True, stats: bool = True
    ) -> tuple[bytes, list[tuple[str, int, int, float, list[int]]]]:
        """Every request kept, then forgotten.

        With ``lines``, their access-log lines: one JSON object per line, newline-terminated, with the
        fields ``ts`` (``ended + wall_offset``), ``method``, ``path`` (its first 256 characters),
        ``route``, ``status``, ``duration_ms`` (rounded to the microsecond), ``bytes_in``,
        ``bytes_out``, ``alerts``, ``request_id`` and ``peer`` (a lone surrogate written as U+FFFD
        characters). With ``stats``, per (route, status) in order of first
        appearance: ``(route, status, count, sum of seconds, per-bucket counts)``, bucket ``i``
        counting the requests with ``bounds[i-1] < seconds <= bounds[i]`` (``bounds`` ascending,
        +Inf last)."""

def ack_body(status: str, alerts: int, request_id: str) -> bytes:
    """The JSON answer to an accepted ingest request,
    ``{"status":…,"alerts":…,"request_id":…}``, compact and in that order (strings escaped).
    ``alerts`` must fit an unsigned 64-bit integer (else OverflowError)."""

@final
class RequestIds:
    """Ids for requests that came without one: ``prefix`` then a hexadecimal counter from 1."""

    def __new__(cls, prefix: str) -> RequestIds: ...
    def new_id(self) -> str:
        """The next id."""

@final
class QueueBounds:
    """The ingest queue's bounds: the alerts and bytes (``Batch.decoded_bytes`` plus whatever
    is kept with a batch) of the batches queued or being flushed. One step per call, whatever
    thread calls."""

    def __new__(cls, max_alerts: int, max_bytes: int) -> QueueBounds: ...
    def admit(self, batch: Batch, extra_bytes: int = 0) -> bool:
        """Count ``batch`` in and return True if it fits under both bounds, or if the queue is
        empty (the first batch always enters, whatever its size); else count nothing, False."""
    def release(self, batch: Batch, extra_bytes: int = 0) -> None:
        """Count ``batch`` out again, with the ``extra_bytes`` it was admitted with."""
    @property
    def alerts(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def room(self) -> int | None:
        """Bytes a new batch may still hold, None while the queue is empty."""
    @property
    def max_alerts(self) -> int: ...
    @property
    def max_bytes(self) -> int: ...

@final
class DecodeBudget:
    """What a body may decode into, as ``decode``'s ``max_decoded_bytes``: ``lone`` while
    ``queue`` is empty, else its room and never less than ``floor``."""

    def __new__(cls, queue: QueueBounds, floor: int, lone: int) -> DecodeBudget: ...
    @property
    def bytes(self) -> int:
        """The budget now."""

def format_time(us: int | None) -> str | None:
    """Microseconds since the Unix epoch (a signed 64-bit integer, else OverflowError) as
    ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, clamped to years 0001..9999; ``None`` stays ``None``."""

@final
class AlertNames:
    """The alertname of each fingerprint, remembered across statistics requests (a fingerprint's
    alertname never changes). Past ``capacity`` names no new one is kept; none is ever removed."""

    def __new__(cls, capacity: int = 200_000) -> AlertNames: ...
    def missing(self, fingerprints: bytes | None) -> list[int]:
        """The distinct fingerprints of an int8[] (``array_send`` bytes, or ``None``) whose alertname
        is not known, ascending."""
    def add(self, rows: Sequence[tuple[int, str]]) -> None:
        """Remembers ``(fingerprint, alertname)`` pairs (while fewer than ``capacity`` are kept, and
        not while a statistics aggregation reads the map: nothing waits)."""
    def __len__(self) -> int: ...

@final
class PromRegex:
    """A Prometheus label-matcher regex: RE2 syntax as Prometheus reads it, fully anchored
    (``^(?s:pattern)$``), matched in linear time. ``ValueError`` (a message naming the problem)
    for a pattern Prometheus refuses or one the two stores could read differently."""

    @property
    def pattern(self) -> str: ...
    @property
    def postgres(self) -> str:
        """The same regex as an anchored PostgreSQL ARE, for ``value COLLATE "C" ~ postgres``."""
    def __new__(cls, pattern: str) -> PromRegex: ...
    def fullmatch(self, value: str) -> bool: ...

def window_stats(
    started: bytes | None,
    fingerprints: bytes | None,
    starts: bytes | None,
    ends: bytes | None,
    names: AlertNames,
    fetched: Sequence[tuple[int, str]],
    top: int,
    flap_min_changes: int,
) -> tuple[list[tuple[int, int]], list[tuple[int, int, int]], list[tuple[str, int, int, int, int]]]:
    """The aggregates of ``GET /api/v1/stats`` over one window, from PostgreSQL arrays (the bytes of
    ``array_send(array_agg(...))``; ``None`` for the NULL of an aggregate over no rows).
    ``started``: int8[] fingerprints of the instances started in the window; ``fingerprints``
    (int8[]), ``starts`` and ``ends`` (timestamptz[]): the instances resolved in it, grouped for
    time to resolve by alertname, from ``names`` or else ``fetched`` (the ``(fingerprint,
    alertname)`` rows this request looked up); an instance whose fingerprint has a name in neither
    is left out of time to resolve, as the SQL's join with ``label_sets`` leaves it out.
    Returns ``(top_firing, flapping, time_to_resolve)`` as lists of ``(fingerprint, firings)``,
    ``(fingerprint, changes, firing)`` and ``(alertname, resolved, p50_us, p90_us, max_us)``, in
    answer order. Arrays of 1 MiB or more are aggregated without the GIL. ValueError for a
    malformed array or columns of different lengths."""

@final
class PgCopy:
    """One flush encoded as PostgreSQL binary COPY streams (header, tuples and trailer)."""

    @property
    def groups(self) -> bytes: ...
    @property
    def label_sets(self) -> bytes: ...
    @property
    def events(self) -> bytes: ...
    @property
    def alerts(self) -> bytes: ...
    @property
    def group_rows(self) -> int: ...
    @property
    def label_set_rows(self) -> int: ...
    @property
    def event_rows(self) -> int: ...
    @property
    def alert_rows(self) -> int: ...

GroupRow = tuple[int, str, str, int]
LabelSetRow = tuple[int, str, str, str]
EventRow = tuple[int, int, str, int | None, int, int, str, str, str]
AlertRow = tuple[int, int, str, int | None, int, int, int, int, bool]

@final
class RowEncoder:
    """Turns the batches of one flush into storage rows.

    Duplicates across the batches are collapsed first (one event row per fingerprint, startsAt and
    status; one current-state row per fingerprint and startsAt, with the number of deliveries), and
    rows are sorted by key so that concurrent writers lock rows in the same order. Each distinct
    (receiver, groupKey) is one group row; events and current-state rows carry its id.
    With ``reuse_buffers`` the COPY buffers keep their capacity from one flush to the next.
    MemoryError when the rows do not fit in memory (never an abort).
    """

    def __new__(cls, reuse_buffers: bool = True) -> RowEncoder: ...
    def pg_copy(self, batches: Sequence[Batch]) -> PgCopy: ...
    def pg_arrays(self, batches: Sequence[Batch]) -> tuple[tuple[bytes, ...], int, int, int]:
        """The rows as PostgreSQL binary arrays, one per column (``webhookfast_flush``'s 26
        parameters in order), and the label set, event and alert row counts."""
    def row_tuples(
        self, batches: Sequence[Batch]
    ) -> tuple[list[GroupRow], list[LabelSetRow], list[EventRow], list[AlertRow]]: ...

class SqliteError(Exception):
    """A failed SQLite write: ``code`` is SQLite's extended result code, ``refused`` whether SQLite
    refused the rows themselves (a constraint, a value too big) rather than failed."""

    code: int
    refused: bool

@final
class SqliteWriter:
    """Writes flushes to an SQLite database on a connection of its own, with the GIL released,
    through the SQLite library at ``library``, which this process must already have loaded and
    the shared object ``module`` (Python's ``_sqlite3``) must use (ValueError otherwise: two
    copies of SQLite must never open one database). ``database`` must exist; ``setup``
    (the connection's PRAGMAs) runs once; ``statements`` are the INSERTs of the groups, label sets,
    events and alerts, one ``?`` per column of ``webhookfast.storage.rows``. Use from one thread
    at a time."""

    @property
    def library_version(self) -> str: ...
    @property
    def wal_buffered(self) -> bool:
        """Whether the connection gathers its WAL writes into a few per commit (a VFS over the
        default one): only when every commit syncs the WAL (``synchronous`` FULL or EXTRA)."""
    def __new__(
        cls,
        library: str,
        module: str,
        database: str | PathLike[str],
        setup: str,
        statements: tuple[str, str, str, str],
    ) -> SqliteWriter: ...
    def write(self, batches: Sequence[Batch]) -> tuple[int, int, int]:
        """Encode ``batches`` (duplicates collapsed) and write their rows in one transaction
        (``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on failure: SqliteError):
        ``(label_sets, events, alerts)`` written."""
    def close(self) -> None:
        """Close the connection (SQLite may checkpoint then); a later write raises SqliteError."""

@final
class SpoolWriter:
    """Appends request bodies to the segment files of a spool directory (created if missing).

    Opening cuts off a torn last record (``torn_bytes``: the crash came mid-write, so it was never
    acknowledged). ``append`` writes ``(received_at_us, body)`` records as framed, CRC-checked
    records and fsyncs once, with the GIL released; it returns the segment and each record's end
    offset. A failed append (disk full) leaves nothing of its group behind.
    """

    def __new__(cls, directory: str | PathLike[str], segment_bytes: int) -> SpoolWriter: ...
    def append(self, records: Sequence[tuple[int, bytes]]) -> tuple[int, list[int]]: ...
    def rotate(self) -> None: ...
    @property
    def torn_bytes(self) -> int: ...
    @property
    def position(self) -> tuple[int, int]: ...

def spool_segments(directory: str | PathLike[str]) -> list[tuple[int, int]]:
    """The spool's segments as ``(seq, length)``, oldest first."""

def spool_read(
    directory: str | PathLike[str], seq: int, start: int, end: int
) -> tuple[list[tuple[int, int, int, bytes]], list[tuple[int, int, Path]]]:
    """Segment ``seq``'s records in ``[start, end)`` as ``(start, end, received_at_us, body)``, and
    its damaged stretches, copied to ``quarantine/`` and skipped, as ``(start, end, path)``."""
