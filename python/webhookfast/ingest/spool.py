"""The durable local spool: what the database could not take in time waits on local disk.

A request whose batch is not committed within ``spool_after_s`` (or is refused by a database that
is down), or every request with ``--ack spool``, has its raw body appended to the spool (with its
arrival time, so that decoding it again gives the same alerts) and is answered once the group it
belongs to is fsynced. A replayer decodes the records again in arrival order and writes them
through the store's normal, idempotent ``write`` in large transactions; each transaction also moves
this spool's mark in ``spool_marks``, so a record leaves the spool exactly when its alerts are
committed, and a crash in the middle of a replay neither loses nor double-counts anything.

One spool directory per process: ``serve`` locks the directory given, and every worker locks a
``worker-<n>`` directory of its own inside it. The records, framing, CRC, torn-tail cut and
quarantine of damaged records are the Rust core's (``_core.SpoolWriter``, ``_core.spool_read``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from webhookfast import metrics
from webhookfast._core import (
    Batch,
    Limits,
    PayloadError,
    SpoolWriter,
    decode,
    spool_read,
    spool_segments,
)
from webhookfast.dirlock import DirLock, DirLocked
from webhookfast.settings import NO_LIMIT
from webhookfast.storage.base import StoreRejected, WriteResult

if TYPE_CHECKING:
    from webhookfast.settings import Settings

log = logging.getLogger("webhookfast.ingest.spool")

# Bodies were validated when they arrived; a later, stricter configuration must not refuse them.
REPLAY_LIMITS = Limits(
    max_alerts=NO_LIMIT,
    max_labels=NO_LIMIT,
    max_annotations=NO_LIMIT,
    max_name_bytes=NO_LIMIT,
    max_value_bytes=NO_LIMIT,
    max_depth=1024,
)
FRAME_OVERHEAD = 20  # header and arrival time of one record (rust/core/src/spool/frame.rs)
ID_FILE = "id"
WORKER_PREFIX = "worker-"
# A worker adopts the spool directories that no live process holds (left by a worker count that
# shrank) this long after its start, once its siblings have claimed their own.
ADOPT_AFTER_S = 10.0
# After this many failed replay transactions in a row, records are replayed one per transaction;
# a record that still fails while the database answers is set aside (quarantine/), so that one
# record the database refuses for its content never blocks the ones behind it.
ISOLATE_AFTER = 3
SET_ASIDE_AFTER = 6
RETRY_MIN_S = 0.25
RETRY_MAX_S = 5.0


# A record read back: (end offset, arrival time, its alerts or None when they are not to be written, body).
Decoded = tuple[int, int, "Batch | None", bytes]


class SpoolFull(Exception):
    """The spool is at its byte bound, or the disk refused the write: answer 503."""


class MarkedStore(Protocol):
    """The part of PostgresStore the replayer uses."""

    async def write(
        self,
        batches: Sequence[Batch],
        *,
        spool_mark: tuple[str, int, int] | None = None,
        before_send: Callable[[], Sequence[Batch] | None] | None = None,
    ) -> WriteResult: ...
    async def spool_mark(self, spool_id: str) -> tuple[int, int] | None: ...
    async def ping(self) -> bool: ...
    def migrate(self) -> list[str]: ...


class InDoubt(Protocol):
    """A batch spooled while its own flush was still running (batcher._Pending): the replayer
    waits for that flush and skips the record if it committed after all."""

    outcome: bool | None
    settled: asyncio.Event | None


def claim_worker_dir(root: Path, workers: int) -> tuple[Path, DirLock]:
    """The first ``worker-<n>`` directory of ``root`` that no live process holds, locked."""
    root.mkdir(parents=True, exist_ok=True)
    for n in range(max(workers, 1) * 2):  # a respawned worker may briefly overlap its predecessor
        path = root / f"{WORKER_PREFIX}{n}"
        path.mkdir(exist_ok=True)
        try:
            return path, DirLock(path).acquire()
        except DirLocked:
            continue
    raise DirLocked(f"every worker directory of the spool {root} is in use")


def _spool_id(directory: Path) -> str:
    path = directory / ID_FILE
    try:
        return path.read_text("ascii").strip()
    except FileNotFoundError:
        pass
    spool_id = uuid.uuid4().hex
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(spool_id)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return spool_id


class _Append:
    __slots__ = ("body", "future", "pending", "received_at_us")

    def __init__(self, received_at_us: int, body: bytes, future: asyncio.Future[None], pending: InDoubt | None) -> None:
        self.received_at_us = received_at_us
        self.body = body
        self.future = future
        self.pending = pending


class Spool:
    def __init__(
        self,
        root: Path,
        store: MarkedStore,
        *,
        max_bytes: int,
        segment_bytes: int = 8 * 1024 * 1024,
        replay_max_alerts: int = 20_000,
        workers: int = 1,
        migrate: bool = False,
    ) -> None:
        self.root = Path(root)
        # Apply pending migrations when the replay fails: the database may have been down when
        # serve started (and so not migrated), and the spool must drain anyway.
        self.migrate = migrate
        self._migrated = False
        self.store = store
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.replay_max_alerts = replay_max_alerts
        self.workers = workers
        self.directory = self.root
        self.id = ""
        self._lock: DirLock | None = None
        self._writer: SpoolWriter | None = None
        self._segments: dict[int, int] = {}  # seq -> durable length
        self._queue: list[_Append] = []
        self._queued_bytes = 0  # waiting or being written: counted against max_bytes until durable
        self._queued = asyncio.Event()
        self._io = asyncio.Lock()  # appends vs. rotation
        self._work = asyncio.Event()  # something new for the replayer
        self._mark: tuple[int, int] | None = None  # replayed (and committed) up to here
        self._in_doubt: dict[tuple[int, int], InDoubt] = {}
        self._reported: set[tuple[int, int]] = set()  # quarantined stretches already counted
        self._oldest_us: int | None = None
        self._failures = 0  # failed replay transactions in a row
        self._tasks: list[asyncio.Task[None]] = []

    # -- life cycle -------------------------------------------------------------------------------

    async def open(self, orphan: Path | None = None) -> None:
        """Claim a worker directory (or the ``orphan`` one, to drain it) and start replaying."""
        if orphan is None:
            self.directory, self._lock = await asyncio.to_thread(claim_worker_dir, self.root, self.workers)
        else:
            self.directory, self._lock = orphan, await asyncio.to_thread(DirLock(orphan).acquire)
        self.id = await asyncio.to_thread(_spool_id, self.directory)
        self._writer = await asyncio.to_thread(SpoolWriter, self.directory, self.segment_bytes)
        if self._writer.torn_bytes:
            log.warning(
                "spool %s: cut off a torn last record (%d bytes, never acknowledged)",
                self.directory,
                self._writer.torn_bytes,
            )
            metrics.spool_torn_records.inc()
        if self._writer.position[1] > 0:
            # New records go to a new segment: none of them can then lie under a mark that an
            # earlier run committed (its last segment may have lost a damaged tail on open).
            await asyncio.to_thread(self._writer.rotate)
        self._segments = dict(await asyncio.to_thread(spool_segments, self.directory))
        if self.size:
            log.info("spool %s holds %d bytes from before: replaying them first", self.directory, self.size)
            first = min(seq for seq, length in self._segments.items() if length)
            head = await self._read(first, 0, self._segments[first])
            self._oldest_us = head[0][2] if head else None  # for the age gauge while the database is away
            self._work.set()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._write_loop(), name="webhookfast-spool-writer"),
            loop.create_task(self._replay_loop(), name="webhookfast-spool-replayer"),
        ]
        if orphan is None:
            self._tasks.append(loop.create_task(self._gauge_loop(), name="webhookfast-spool-gauges"))
            self._tasks.append(loop.create_task(self._adopt_orphans(), name="webhookfast-spool-adopter"))

    async def close(self) -> None:
        """Finish the appends under way; stop replaying (the rest waits on disk for the next start)."""
        if self._tasks:
            writer, *others = self._tasks
            for task in others:
                task.cancel()
            for _ in range(1000):  # appends under way get their fsync (10 s at most)
                if not self._queue:
                    break
                await asyncio.sleep(0.01)
            async with self._io:
                writer.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
        self._publish_gauges()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- state ------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes in the spool's segments (replayed records included until their segment goes)."""
        return sum(self._segments.values())

    @property
    def backlog(self) -> bool:
        """Whether records wait for replay (new batches then go to the spool too, in order)."""
        if self._queued_bytes:
            return True
        if self._mark is None:
            return self.size > 0
        mark_seq, mark_pos = self._mark
        return any(
            length > (mark_pos if seq == mark_seq else 0) for seq, length in self._segments.items() if seq >= mark_seq
        )

    @property
    def accepting(self) -> bool:
        return self.size + self._queued_bytes < self.max_bytes

    # -- appends ----------------------------------------------------------------------------------

    async def append(self, body: bytes, received_at_us: int, alerts: int, pending: InDoubt | None = None) -> None:
        """Return once ``body`` is fsynced in the spool; SpoolFull when it does not fit."""
        need = len(body) + FRAME_OVERHEAD
        if self._writer is None or self.size + self._queued_bytes + need > self.max_bytes:
            metrics.spool_refused.inc()
            raise SpoolFull("spool is full")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Append(received_at_us, body, future, pending))
        self._queued_bytes += need
        self._queued.set()
        await future
        metrics.count(metrics.spool_appended_alerts, alerts)
        if self._oldest_us is None:
            self._oldest_us = received_at_us

    async def _write_loop(self) -> None:
        writer = self._writer
        assert writer is not None
        while True:
            await self._queued.wait()
            self._queued.clear()
            group, self._queue = self._queue, []
            if not group:
                continue
            size = sum(len(item.body) + FRAME_OVERHEAD for item in group)
            async with self._io:
                started = time.perf_counter()
                try:
                    seq, ends = await asyncio.to_thread(
                        writer.append, [(item.received_at_us, item.body) for item in group]
                    )
                except Exception as exc:  # OSError mostly (disk full); the loop must go on
                    self._queued_bytes -= size
                    log.error("spool write of %d records (%d bytes) failed: %s", len(group), size, exc)
                    metrics.spool_refused.inc(len(group))
                    for item in group:
                        if not item.future.done():
                            item.future.set_exception(SpoolFull(f"spool write failed: {exc}"))
                    continue
                metrics.spool_write_seconds.observe(time.perf_counter() - started)
            # In-doubt records are registered before the replayer can see them.
            for item, end in zip(group, ends, strict=True):
                if item.pending is not None and item.pending.outcome is None:
                    self._in_doubt[(seq, end)] = item.pending
            self._segments[seq] = ends[-1]
            self._queued_bytes -= size
            for item in group:
                if not item.future.done():
                    item.future.set_result(None)
            self._work.set()

    # -- replay -----------------------------------------------------------------------------------

    async def _replay_loop(self) -> None:
        delay = RETRY_MIN_S
        while True:
            try:
                progressed = await self._replay_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failures += 1
                metrics.spool_replay_errors.inc()
                log.warning("spool replay failed, retrying in %.2f s: %s", delay, exc)
                if self.migrate and not self._migrated:
                    self._migrated = await self._try_migrations()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            self._failures = 0
            delay = RETRY_MIN_S
            if not progressed:
                await self._work.wait()
                self._work.clear()

    async def _try_migrations(self) -> bool:
        try:
            applied = await asyncio.to_thread(self.store.migrate)
        except Exception as exc:  # still down: try again after the next failure
            log.debug("migrations still not applied: %s", exc)
            return False
        for name in applied:
            log.info("applied migration %s (the database was away at start)", name)
        return True

    async def _replay_once(self) -> bool:
        """Replay the next segment's records; False when there is nothing to replay."""
        if self._mark is None:
            mark = await self.store.spool_mark(self.id)
            first = min(self._segments, default=1)
            if mark is not None and mark[0] > max(self._segments, default=0):
                # The writer never goes below the segment of a mark: segment files were removed by
                # hand. Replay what is there rather than skip it.
                log.warning("spool %s: its database mark %s is past every segment; replaying all", self.directory, mark)
                mark = None
            self._mark = mark if mark is not None else (first, 0)
        mark_seq, mark_pos = self._mark
        last = max(self._segments, default=0)
        for seq in sorted(self._segments):
            length = self._segments[seq]
            start = length if seq < mark_seq else mark_pos if seq == mark_seq else 0
            if start < length:
                await self._replay_segment(seq, start, length)
                return True
            if seq != last:
                await self._delete(seq)  # sealed and replayed
        await self._rotate_if_drained()
        self._oldest_us = None
        return False

    async def _read(self, seq: int, start: int, end: int) -> list[tuple[int, int, int, bytes]]:
        records, quarantined = await asyncio.to_thread(spool_read, self.directory, seq, start, end)
        for q_start, q_end, path in quarantined:
            if (seq, q_start) not in self._reported:
                self._reported.add((seq, q_start))
                metrics.spool_corrupt_records.inc()
                log.error(
                    "spool %s: damaged bytes %d..%d of segment %d moved aside to %s",
                    self.directory,
                    q_start,
                    q_end,
                    seq,
                    path,
                )
        return records

    async def _replay_segment(self, seq: int, start: int, end: int) -> None:
        records = await self._read(seq, start, end)
        decoded = await asyncio.to_thread(self._decode, seq, records)
        if decoded:
            self._oldest_us = decoded[0][1]
        if self._failures >= ISOLATE_AFTER:
            await self._replay_isolated(seq, decoded, end)
            return
        group: list[Batch] = []
        alerts = 0
        group_end = start  # the mark after the records looked at so far
        for rec_end, received_at_us, batch, _ in decoded:
            if (seq, rec_end) in self._in_doubt:
                if group:
                    await self._commit(seq, group, group_end, received_at_us)
                    group, alerts = [], 0
                if await self._committed_by_its_flush(seq, rec_end):
                    # Its own flush committed it: the mark passes it at once, so that only a crash
                    # within this one transaction can still replay it.
                    await self._commit(seq, [], rec_end, received_at_us)
                    batch = None
            if batch is not None:
                if group and alerts + len(batch) > self.replay_max_alerts:
                    await self._commit(seq, group, group_end, received_at_us)
                    group, alerts = [], 0
                group.append(batch)
                alerts += len(batch)
            group_end = rec_end
        # The mark goes to the segment's end: past skipped records and a damaged tail too.
        if group or self._mark != (seq, end):
            await self._commit(seq, group, end, None)
        else:
            self._oldest_us = None

    async def _replay_isolated(self, seq: int, decoded: list[Decoded], end: int) -> None:
        """One record per transaction, after repeated failures. A record the database refuses
        while the record after it commits is refused for its content, not for an outage: it is
        set aside (quarantine/) instead of blocking the spool for ever."""
        i = 0
        while i < len(decoded):
            rec_end, received_at_us, batch, body = decoded[i]
            if (seq, rec_end) in self._in_doubt and await self._committed_by_its_flush(seq, rec_end):
                batch = None
            try:
                await self._commit(seq, [batch] if batch is not None else [], rec_end, received_at_us)
            except StoreRejected as exc:
                # The store says so itself: this record's content, not an outage (the batcher's split).
                self._refused(seq, rec_end, batch, self._set_aside(seq, rec_end, body), str(exc)[:1000])
                await self._commit(seq, [], rec_end, received_at_us)
            except Exception:
                if self._failures < SET_ASIDE_AFTER or i + 1 == len(decoded):
                    raise
                next_end, next_at, next_batch, _ = decoded[i + 1]
                if next_batch is None or (seq, next_end) in self._in_doubt:
                    raise
                path = self._set_aside(seq, rec_end, body)
                try:
                    await self._commit(seq, [next_batch], next_end, next_at)
                except Exception:
                    path.unlink(missing_ok=True)  # the next one fails too: an outage after all
                    raise
                self._refused(seq, rec_end, batch, path, "while the next one commits")
                i += 1
            i += 1
        await self._commit(seq, [], end, None)

    def _refused(self, seq: int, rec_end: int, batch: Batch | None, path: Path, why: str) -> None:
        metrics.spool_corrupt_records.inc()
        log.error(
            "spool record ending at %d of segment %d (%d alerts) is refused by the database (%s): set aside in %s",
            rec_end,
            seq,
            len(batch or ()),
            why,
            path,
        )

    async def _committed_by_its_flush(self, seq: int, rec_end: int) -> bool:
        """A record spooled while its own flush ran: wait for that flush; True if it committed."""
        doubt = self._in_doubt[(seq, rec_end)]
        if doubt.outcome is None:
            if doubt.settled is None:
                doubt.settled = asyncio.Event()
            await doubt.settled.wait()
        del self._in_doubt[(seq, rec_end)]
        return bool(doubt.outcome)

    async def _commit(self, seq: int, group: list[Batch], end: int, next_at_us: int | None) -> None:
        """Write ``group`` and move the mark to ``end`` of segment ``seq``, in one transaction."""
        await self.store.write(group, spool_mark=(self.id, seq, end))
        self._mark = (seq, end)
        replayed = sum(len(b) for b in group)
        if replayed:
            metrics.spool_replayed_alerts.inc(replayed)
        self._oldest_us = next_at_us

    def _set_aside(self, seq: int, end: int, body: bytes) -> Path:
        path = self.directory / "quarantine" / f"{seq:020d}-{end:012d}.refused.json"
        path.parent.mkdir(exist_ok=True)
        with open(path, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        return path

    def _decode(self, seq: int, records: list[tuple[int, int, int, bytes]]) -> list[Decoded]:
        out: list[Decoded] = []
        for _, end, received_at_us, body in records:
            try:
                batch: Batch | None = decode(body, REPLAY_LIMITS, received_at_us)
            except PayloadError as err:
                # Only accepted bodies are spooled: this is damage the CRC missed, or a decoder
                # that changed its mind. Keep the body aside and go on with the rest.
                path = self.directory / "quarantine" / f"{seq:020d}-{end:012d}.undecodable.json"
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(body)
                metrics.spool_corrupt_records.inc()
                log.error(
                    "spool record ending at %d of segment %d does not decode (%s): moved aside to %s",
                    end,
                    seq,
                    err,
                    path,
                )
                batch = None
            out.append((end, received_at_us, batch, body))
        return out

    async def _delete(self, seq: int) -> None:
        path = self.directory / f"{seq:020d}.wfs"
        await asyncio.to_thread(path.unlink, missing_ok=True)
        self._segments.pop(seq, None)
        self._reported = {r for r in self._reported if r[0] != seq}

    async def _rotate_if_drained(self) -> None:
        """Everything is replayed: start a new segment so that the old one can go."""
        async with self._io:
            if self._queue or self._writer is None or not self._segments:
                return
            last = max(self._segments)
            if self._segments[last] == 0 or self._mark != (last, self._segments[last]):
                return
            await asyncio.to_thread(self._writer.rotate)
            self._segments[last + 1] = 0
        await self._delete(last)

    async def _adopt_orphans(self) -> None:
        await asyncio.sleep(ADOPT_AFTER_S)
        for path in sorted(self.root.glob(WORKER_PREFIX + "*")):
            if path == self.directory or not any(path.glob("*.wfs")):
                continue
            orphan = Spool(
                self.root,
                self.store,
                max_bytes=0,
                segment_bytes=self.segment_bytes,
                replay_max_alerts=self.replay_max_alerts,
                migrate=self.migrate,
            )
            try:
                await orphan.open(orphan=path)
            except (DirLocked, OSError):
                continue  # a live worker's, or not ours to read
            try:
                if orphan.backlog:
                    log.info("spool %s belongs to no running worker: replaying it", path)
                while orphan.backlog:
                    await asyncio.sleep(1.0)
            finally:
                await orphan.close()

    # -- gauges -----------------------------------------------------------------------------------

    async def _gauge_loop(self) -> None:
        while True:
            self._publish_gauges()
            await asyncio.sleep(1.0)

    def _publish_gauges(self) -> None:
        metrics.spool_bytes.set(self.size)
        oldest = self._oldest_us if self.backlog else None
        metrics.spool_oldest_age.set(0 if oldest is None else max(0.0, time.time() - oldest / 1e6))


def spool_for(settings: Settings, store: object) -> Spool | None:
    """The spool of this worker's app: PostgreSQL with the spool on (the default), else None."""
    from webhookfast.settings import AckMode

    # Only a PostgreSQL store spools. Its module is loaded once such a store exists; importing it
    # here would load psycopg and its libraries into every SQLite worker (4.5 MB of RSS).
    postgres = sys.modules.get("webhookfast.storage.postgres")
    if not settings.spool or postgres is None or not isinstance(store, postgres.PostgresStore):
        if settings.ack is AckMode.spool:
            raise ValueError("--ack spool needs the spool: a PostgreSQL database and no --no-spool")
        return None
    return Spool(
        settings.spool_dir,
        store,
        max_bytes=settings.spool_max_bytes,
        segment_bytes=settings.spool_segment_bytes,
        replay_max_alerts=settings.spool_replay_max_alerts,
        workers=settings.workers,
        migrate=settings.migrate_on_start,
    )
