"""Group commit: requests hand their decoded batch over and wait until the flush that holds it commits.

There is no flush timer. A flusher that is free takes everything waiting (up to ``flush_max_alerts``)
and writes it in one transaction; while it writes, new batches gather for the next flush. So a lone
request is written at once, and under load each transaction carries many requests.

The queue is bounded in alerts and bytes (``QueueFull`` → 503 at once) and counts a batch until its
flush ends, so memory stays bounded even while the database is slow. In ``commit`` mode a request
waits at most ``deadline_s``; in ``enqueue`` mode it is answered as soon as it is queued; a failed
flush's batches then go to the spool when there is one (and what shutdown leaves too), else they are
retried from memory until they succeed or the process stops.

A flush the database refuses for its content (``StoreRejected``: a data or integrity error) is not
retried whole: its requests are written apart, halving the refused part until each refused request
stands alone, so one poison request costs the others a few extra transactions, never their commit.
The refused request gets ``StoreRejected`` (commit mode) or is logged and dropped (enqueue mode).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import cast

from webhookfast._core import Batch, QueueBounds
from webhookfast.deadlines import DeadlineQueue
from webhookfast.ingest.spool import MarkedStore, Spool, SpoolFull
from webhookfast.storage.base import Store, StoreRejected, StoreUnavailable, WriteResult

log = logging.getLogger("webhookfast.ingest.batcher")


class QueueFull(Exception):
    """The ingest queue holds as much as it may: answer 503 and let the sender retry."""


class SpoolRefused(QueueFull):
    """The spool is full, or its disk refused the write: 503 as well."""


class DeadlineExceeded(Exception):
    """The batch was not committed in time (the database is slow or down)."""


_NONE_WITHDRAWN: Sequence[int] = (0, 0)


async def _queued() -> bool:
    return False


class _Pending:
    __slots__ = (
        "alerts",
        "batch",
        "body",
        "extra_bytes",
        "future",
        "outcome",
        "request_id",
        "rescued",
        "sent",
        "settled",
        "spooling",
        "withdrawn",
    )

    def __init__(
        self,
        batch: Batch,
        future: asyncio.Future[bool] | None,
        request_id: str,
        body: bytes | None = None,
    ) -> None:
        self.batch = batch
        # Kept while a spool exists: an acknowledged batch (ack=enqueue) goes there if its flush
        # fails or shutdown comes first, instead of being lost; a waiting one (commit mode) if it
        # is not committed in time.
        self.body = body
        # An acknowledged batch's body counts against the queue's bytes beside what the decoded
        # batch holds (a waiting one's is held by its request anyway).
        self.extra_bytes = 0 if body is None or future is not None else len(body)
        # Ends False once committed, True once spooled instead; None: acknowledged already.
        self.future = future
        self.alerts = len(batch)
        self.request_id = request_id
        # How its flush ended (True: committed), for a spooled batch whose flush was still running.
        self.outcome: bool | None = None
        self.settled: asyncio.Event | None = None
        self.spooling = False  # being appended to the spool after a failed flush
        self.rescued = False  # a waiting one spooled after its deadline or failed flush (_give_up)
        # Whether its flush has sent it to the database: from then on a late commit is possible,
        # so a request that gives up is spooled "in doubt". One that gives up before is withdrawn
        # from its flush instead, and its record is replayed like any other.
        self.sent = False
        self.withdrawn = False

    @property
    def nbytes(self) -> int:
        """What it counts against the queue's bytes: what the decoded batch holds
        (Batch.decoded_bytes), not its body (many short labels take 10x+ their JSON), and the
        body when it is kept."""
        return self.batch.decoded_bytes + self.extra_bytes

    def settle(self, committed: bool) -> None:
        self.outcome = committed
        if self.settled is not None:
            self.settled.set()


class Batcher:
    def __init__(
        self,
        store: Store,
        *,
        ack_enqueue: bool = False,
        max_queue_alerts: int = 200_000,
        max_queue_bytes: int = 256 * 1024 * 1024,
        flush_max_alerts: int = 5_000,
        flush_concurrency: int = 0,
        deadline_s: float = 5.0,
        retry_backoff_s: float = 0.5,
        on_flush: Callable[[int, int, float, WriteResult | None], None] | None = None,
        on_refused: Callable[[int], None] | None = None,
        spool: Spool | None = None,
        ack_spool: bool = False,
    ) -> None:
        if spool is not None and cast(object, spool.store) is not store:
            raise ValueError("the spool must replay into the batcher's own store")
        self.store = store
        self.ack_enqueue = ack_enqueue
        self.flush_max_alerts = flush_max_alerts
        self.flush_concurrency = flush_concurrency or store.default_flush_concurrency
        self.deadline_s = deadline_s
        self.retry_backoff_s = retry_backoff_s
        self.on_flush = on_flush
        #: called with the number of alerts of each request the database refused
        self.on_refused = on_refused
        self.spool = spool
        self.ack_spool = ack_spool
        self._waiting: deque[_Pending] = deque()
        # Alerts and bytes queued or being flushed: what the bounds apply to.
        self.bounds = QueueBounds(max_queue_alerts, max_queue_bytes)
        self._wake = asyncio.Event()
        self._flushers: list[asyncio.Task[None]] = []
        self._in_flight: dict[int, list[_Pending]] = {}  # what each running flush holds, by flusher
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # A request past its deadline whose flush has not gone out yet is withdrawn from it
        # (commit mode with the spool only: the spool's store, PostgresStore, calls ``before_send``;
        # it is the batcher's store).
        self._withdrawing: MarkedStore | None = spool.store if spool and not (ack_enqueue or ack_spool) else None
        self._deadlines: DeadlineQueue[_Pending] = DeadlineQueue(deadline_s, self._expire)
        # Batches being spooled after their commit did not come (see _give_up).
        self._rescues: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        # Kept: on Python 3.11 every get_running_loop() is a getpid() system call.
        loop = self._loop = asyncio.get_running_loop()
        self._flushers = [
            loop.create_task(self._flush_loop(i), name=f"webhookfast-flusher-{i}")
            for i in range(self.flush_concurrency)
        ]

    @property
    def max_queue_alerts(self) -> int:
        return self.bounds.max_alerts

    @property
    def max_queue_bytes(self) -> int:
        return self.bounds.max_bytes

    @property
    def queued_alerts(self) -> int:
        return self.bounds.alerts

    @property
    def queued_bytes(self) -> int:
        return self.bounds.bytes

    def submit(self, batch: Batch, request_id: str = "", body: bytes | None = None) -> Awaitable[bool]:
        """Hand ``batch`` over (QueueFull at once when the queue is full or closing). What it
        returns ends False once the batch is committed (or queued, with ack=enqueue), or True once
        spooled instead, given its ``body`` and a spool (ack=spool, a backlog ahead of it, or a
        commit that did not come in time); it raises DeadlineExceeded, StoreRejected,
        StoreUnavailable or SpoolRefused otherwise. ``request_id`` names the request in the log if
        the database refuses it.

        In commit mode that is the batch's own future, ended by its flush, its deadline or the
        spool (``_give_up``): a coroutine per request to wait for it was one more object
        (benches/test_allocations.py)."""
        if self._closing:
            raise QueueFull("shutting down")
        spool = self.spool
        if spool is not None and body is not None and (self.ack_spool or spool.backlog):
            # While records wait in the spool, new ones follow them there: arrival order is kept.
            return self._spool(spool, batch, body, None)
        if self.ack_enqueue:
            kept = body if spool is not None else None
            item = _Pending(batch, None, request_id, kept)
            # Counted in from here on (the first batch always enters, whatever its size).
            if not self.bounds.admit(batch, item.extra_bytes):
                raise QueueFull("ingest queue is full")
            self._enqueue(item)
            return _queued()
        if not self.bounds.admit(batch):
            raise QueueFull("ingest queue is full")
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        item = _Pending(batch, future, request_id, body if spool is not None else None)
        self._enqueue(item)
        # If the deadline passes first the flush still commits the batch (the sender's retry then
        # collapses into the same rows).
        self._deadlines.add(item)
        return future

    def _expire(self, item: _Pending) -> None:
        """``item`` waited ``deadline_s`` for its commit."""
        future = item.future
        if future is not None and not future.done():
            self._give_up(item, DeadlineExceeded("not committed in time"))

    def _give_up(self, item: _Pending, exc: DeadlineExceeded | StoreUnavailable) -> None:
        """``item``'s request will not see its commit (its deadline passed, or its flush failed):
        it is spooled when it has a body and there is a spool, else answered with ``exc``."""
        future = item.future
        assert future is not None
        if item.rescued:
            return  # its deadline came first: on its way to the spool already
        spool = self.spool
        if spool is None or item.body is None:
            future.set_exception(exc)
            return
        item.rescued = True
        pending: _Pending | None = item
        if not item.sent:
            # Not sent yet (e.g. its flush waits for a connection to a database that is down):
            # withdrawn, it can never be committed twice, even across a crash.
            item.withdrawn = True
            pending = None
        # Else in doubt: the replayer waits for its flush. Spooled by a task of its own: the
        # request keeps waiting on its future, and a sender that goes away meanwhile does not
        # stop the append.
        assert self._loop is not None
        task = self._loop.create_task(self._rescue(spool, item, pending))
        self._rescues.add(task)
        task.add_done_callback(self._rescues.discard)

    async def _rescue(self, spool: Spool, item: _Pending, pending: _Pending | None) -> None:
        future = item.future
        body = item.body
        assert future is not None and body is not None
        if item.outcome:
            return  # its flush committed it (and answered it) just after the deadline
        try:
            await self._spool(spool, item.batch, body, pending)
        except SpoolRefused as exc:
            if not future.done():
                future.set_exception(exc)
            return
        except BaseException as exc:
            if not future.done():
                future.set_exception(StoreUnavailable(f"not spooled: {exc!r}"))
            if isinstance(exc, Exception):
                log.exception("spooling request %s failed", item.request_id or "-")
                return
            raise
        if not future.done():
            future.set_result(True)

    async def _spool(self, spool: Spool, batch: Batch, body: bytes, item: _Pending | None) -> bool:
        """True once ``body`` is fsynced in the spool (what ``submit`` answers for it)."""
        try:
            await spool.append(body, batch.received_at_us, len(batch), pending=item)
        except SpoolFull:
            raise SpoolRefused("spool is full") from None
        return True

    def _enqueue(self, item: _Pending) -> None:
        """Queue ``item``, already counted in by ``bounds.admit``."""
        self._waiting.append(item)
        self._wake.set()

    def _take(self) -> tuple[list[_Pending], list[Batch], int]:
        """The next flush's requests, their batches and their alerts."""
        taken: list[_Pending] = []
        batches: list[Batch] = []
        alerts = 0
        waiting = self._waiting
        while waiting and (not taken or alerts + waiting[0].alerts <= self.flush_max_alerts):
            item = waiting.popleft()
            if item.withdrawn or (item.future is not None and item.future.done()):
                # Its request already gave up (gone, or deadline and spooled instead).
                self._release(item)
                item.settle(False)
                continue
            taken.append(item)
            batches.append(item.batch)
            alerts += item.alerts
        if not waiting:
            self._wake.clear()
        return taken, batches, alerts

    def _release(self, item: _Pending) -> None:
        self.bounds.release(item.batch, item.extra_bytes)
        if item.future is not None:
            self._deadlines.done(item)

    async def _flush_loop(self, flusher: int) -> None:
        in_flight = self._in_flight
        while True:
            if not self._waiting:
                if self._closing:
                    return
                await self._wake.wait()
                continue
            taken, batches, alerts = self._take()
            if not taken:
                continue
            in_flight[flusher] = taken
            try:
                await self._flush(taken, batches, alerts)
            except Exception:  # a flusher must outlive any single failure
                log.exception("flush crashed")
                self._fail(taken, StoreUnavailable("flush crashed"))
            finally:
                del in_flight[flusher]

    async def _flush(self, taken: list[_Pending], batches: list[Batch], alerts: int) -> None:
        """Write ``taken`` (whose ``batches`` hold ``alerts`` alerts) and answer its requests."""
        started = time.perf_counter()
        requests = len(taken)
        # Requests and alerts withdrawn before the flush went out (only a withdrawing store's
        # ``before_send`` adds to them).
        withdrawn = _NONE_WITHDRAWN
        try:
            try:
                if (store := self._withdrawing) is not None:
                    counts = [0, 0]
                    withdrawn = counts
                    result = await store.write(batches, before_send=partial(self._before_send, taken, counts))
                else:
                    result = await self.store.write(batches)
            except StoreRejected as exc:
                result = await self._write_apart(taken, exc)
        except Exception as exc:
            # What is left in ``taken``: requests not yet committed or refused.
            elapsed = time.perf_counter() - started
            if not isinstance(exc, StoreUnavailable):
                log.exception("flush failed")
                exc = StoreUnavailable(str(exc))
            self._report(requests - withdrawn[0], alerts - withdrawn[1], elapsed, None)
            if self.ack_enqueue:
                if self.spool is not None:
                    # Already acknowledged: durable on local disk beats retrying from memory (the
                    # replayer commits them once the database answers; new requests follow them).
                    # What waits behind them goes too, so that arrival order is kept (a later batch
                    # committed before an earlier one would undo "the latest group wins").
                    waiting = [item for item in self._waiting if item.future is None]
                    if waiting:
                        gone = {id(item) for item in waiting}
                        remaining = [item for item in self._waiting if id(item) not in gone]
                        self._waiting.clear()
                        self._waiting.extend(remaining)
                    kept = await self._spool_acknowledged([*taken, *waiting])
                    in_taken = {id(item) for item in taken}
                    self._waiting.extendleft(reversed([item for item in kept if id(item) not in in_taken]))
                    taken[:] = [item for item in kept if id(item) in in_taken]
                    if not taken:
                        return
                # Already acknowledged: keep the batches and try again after a pause. They go back
                # only after it, so that another flusher does not retry them at once.
                log.warning("flush of %d alerts failed, retrying: %s", sum(i.alerts for i in taken), exc)
                await asyncio.sleep(self.retry_backoff_s)
                self._waiting.extendleft(reversed(taken))
                self._wake.set()
                taken.clear()  # handed back: not this flush's any more
                return
            self._fail(taken, exc)
            return
        self._settle(taken, taken)
        self._report(requests - withdrawn[0], alerts - withdrawn[1], time.perf_counter() - started, result)

    def _before_send(self, taken: list[_Pending], counts: list[int]) -> list[Batch] | None:
        """Called by the store just before it sends ``taken``'s flush: drop the requests that
        were withdrawn (spooled after their deadline) while it waited, adding them to ``counts``
        (requests, alerts), and mark the rest sent. The batches to write instead, or None when
        all of them still are."""
        withdrawn = [item for item in taken if item.withdrawn]
        for item in withdrawn:
            self._release(item)
            item.settle(False)
            counts[0] += 1
            counts[1] += item.alerts
        if withdrawn:
            taken[:] = [item for item in taken if not item.withdrawn]
        for item in taken:
            item.sent = True
        return [item.batch for item in taken] if withdrawn else None

    async def _write_apart(self, taken: list[_Pending], exc: StoreRejected) -> WriteResult:
        """The database refused the content of ``taken``'s flush: write its halves apart, halving
        each refused half again, and refuse each request that is refused on its own (about
        2·log2(n) extra writes per refused request). Settled requests leave ``taken``; an
        availability error propagates with the unsettled ones still in it."""
        totals = [0, 0, 0]

        async def split(part: list[_Pending], exc: StoreRejected) -> None:
            if len(part) == 1:
                self._refuse(taken, part[0], exc)
                return
            half = len(part) // 2
            for sub in (part[:half], part[half:]):
                try:
                    r = await self.store.write([item.batch for item in sub])
                except StoreRejected as sub_exc:
                    await split(sub, sub_exc)
                    continue
                self._settle(taken, sub)
                totals[0] += r.label_sets
                totals[1] += r.events
                totals[2] += r.alerts

        await split(list(taken), exc)
        return WriteResult(*totals)

    async def _spool_acknowledged(self, items: list[_Pending]) -> list[_Pending]:
        """Append the acknowledged batches of ``items`` to the spool (in their order, one group
        fsync) and release them; return the items that stay in memory (no body, or refused)."""
        spool = self.spool
        assert spool is not None
        todo = [item for item in items if item.future is None and item.body is not None and not item.spooling]
        if not todo:
            return items
        for item in todo:
            item.spooling = True  # shutdown must not spool it a second time
        results = await asyncio.gather(
            *(spool.append(item.body, item.batch.received_at_us, item.alerts) for item in todo if item.body),
            return_exceptions=True,
        )
        spooled = set()
        for item, result in zip(todo, results, strict=True):
            if isinstance(result, BaseException):
                item.spooling = False
                log.warning("acknowledged request %s stays queued in memory: %s", item.request_id or "-", result)
                continue
            spooled.add(id(item))
            self._release(item)
            item.settle(False)
        if spooled:
            log.warning("moved %d acknowledged requests from memory to the spool", len(spooled))
        return [item for item in items if id(item) not in spooled]

    def _settle(self, taken: list[_Pending], items: list[_Pending]) -> None:
        """``items`` (of ``taken``) are committed: release them and answer their requests."""
        for item in items:
            self._release(item)
            item.settle(True)
            if item.future is not None and not item.future.done():
                item.future.set_result(False)
        if items is taken:
            taken.clear()
        else:
            settled = {id(item) for item in items}
            taken[:] = [item for item in taken if id(item) not in settled]

    def _refuse(self, taken: list[_Pending], item: _Pending, exc: StoreRejected) -> None:
        """The database refuses ``item`` on its own: it can never be stored as it is."""
        if item.future is None:
            fate = "dropped (already acknowledged)"
        elif item.future.done():
            fate = "dropped (its request already gave up at the deadline)"
        else:
            fate = "answered as refused"
        # The database's message may quote the row: bounded, so one alert cannot flood the log.
        reason = str(exc)
        log.error(
            "request %s (%d alerts, %d bytes) refused by the database, %s: %s",
            item.request_id or "-",
            item.alerts,
            item.nbytes,
            fate,
            reason if len(reason) <= 1000 else reason[:1000] + "…",
        )
        if self.on_refused is not None:
            try:
                self.on_refused(item.alerts)
            except Exception:
                log.exception("refusal report failed")
        self._release(item)
        item.settle(False)
        if item.future is not None and not item.future.done():
            item.future.set_exception(exc)
        taken.remove(item)

    def _fail(self, items: list[_Pending], exc: StoreUnavailable) -> None:
        for item in items:
            self._release(item)
            item.settle(False)
            if item.future is not None and not item.future.done():
                self._give_up(item, exc)
        items.clear()

    def _report(self, requests: int, alerts: int, seconds: float, result: WriteResult | None) -> None:
        # After the release, so that the queue depth it reports excludes this flush.
        if self.on_flush is not None:
            try:
                self.on_flush(requests, alerts, seconds, result)
            except Exception:
                log.exception("flush report failed")

    async def close(self, timeout_s: float = 30.0) -> None:
        """Stop taking batches and flush what is queued (graceful shutdown: at most ``timeout_s``
        for the flushes, then as long again for the spool's appends under way)."""
        self._closing = True
        self._wake.set()
        if self._flushers:
            _, pending = await asyncio.wait(self._flushers, timeout=timeout_s)
            # Collected before the cancelled flushers unwind and forget what they held.
            # (Items a failed flush is moving to the spool are on their way there already.)
            left = [
                item
                for item in [*(i for items in self._in_flight.values() for i in items), *self._waiting]
                if not item.spooling
            ]
            self._waiting.clear()
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
            if left and self.spool is not None:
                left = await self._spool_acknowledged(left)
            if left:
                lost = sum(item.alerts for item in left if item.future is None)
                log.error(
                    "shutdown: %d alerts not flushed within %.0f s (%d of them already acknowledged)",
                    sum(item.alerts for item in left),
                    timeout_s,
                    lost,
                )
                # Requests still waiting are spooled or get their 503 now rather than hang.
                self._fail(left, StoreUnavailable("shutting down"))
        if self._rescues:
            # Before the spool closes: what its appends were started for goes in.
            _, late = await asyncio.wait(set(self._rescues), timeout=timeout_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        self._deadlines.close()
