"""POST /webhook and POST /api/v2/alerts: read the body under a cap and a deadline, decode it in
Rust, hand the batch to the batcher, answer once it is committed."""

from __future__ import annotations

import asyncio
import contextlib
from asyncio import current_task
from collections.abc import Awaitable
from typing import Any

from granian._granian import RSGIProtocolClosed as ProtocolClosed

from webhookfast import metrics
from webhookfast._core import Batch, DecodeBudget, Limits, PayloadError, ack_body, decode
from webhookfast.deadlines import DeadlineQueue
from webhookfast.errors import DECODED_TOO_LARGE, HTTPError, overloaded, payload_status, unavailable, unstorable
from webhookfast.http import Context
from webhookfast.ingest.batcher import Batcher, DeadlineExceeded, QueueFull, SpoolRefused
from webhookfast.storage.base import StoreRejected, StoreUnavailable


def is_json(content_type: str | None) -> bool:
    if content_type == "application/json":  # what Alertmanager and Prometheus send
        return True
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


# What a batch handed to the batcher may meet instead of being stored: each has its answer (refused).
REFUSALS = (QueueFull, DeadlineExceeded, StoreUnavailable, StoreRejected)


def _not_json() -> HTTPError:
    return HTTPError(415, "unsupported_media_type", "Content-Type must be application/json")


def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()


class BudgetExceeded(Exception):
    """The bytes of unverified bodies in flight would pass their budget."""


# More than a batch of no alerts holds (its structs and a receiver and group key of a few KB).
EMPTY_BATCH_BYTES = 16 * 1024

# How long a refused body may pause before its 413 goes out without the rest of it.
DISCARD_PAUSE_S = 0.5

# A largest body of one value also holds its other fields and the batch's structs.
LONE_BODY_SLACK = 1 << 20


class ByteBudget:
    """Bytes that requests not yet authenticated may make this worker hold at once: a signed
    request's body must be read before its signature can be checked, so without a shared bound
    every forged request could make the server buffer a whole body."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def hold(self) -> ByteHold:
        return ByteHold(self)


class ByteHold:
    """One request's share of a ByteBudget, given back all at once by ``release``."""

    __slots__ = ("budget", "bytes")

    def __init__(self, budget: ByteBudget) -> None:
        self.budget = budget
        self.bytes = 0

    def take(self, n: int) -> None:
        budget = self.budget
        if budget.used + n > budget.limit:
            raise BudgetExceeded
        budget.used += n
        self.bytes += n

    def release(self) -> None:
        self.budget.used -= self.bytes
        self.bytes = 0


class BodyReader:
    """Reads a request body whole, refusing it as soon as it is known to exceed ``max_bytes``:
    from Content-Length before reading anything, or while streaming a chunked body."""

    def __init__(self, max_bytes: int, timeout_s: float) -> None:
        self.max_bytes = max_bytes
        self._cap_digits = len(str(max_bytes))
        self.timeout_s = timeout_s
        # A slow body's reading task is cancelled at its deadline and answered 408.
        self._deadlines: DeadlineQueue[asyncio.Task[Any]] = DeadlineQueue(timeout_s, _cancel)
        self._loop: asyncio.AbstractEventLoop | None = None

    def too_large(self) -> HTTPError:
        return HTTPError(413, "payload_too_large", f"body exceeds {self.max_bytes} bytes")

    def framed(self, ctx: Context) -> bool:
        """Whether the body's Content-Length is a number within the cap: such a body is read by
        awaiting ``ctx.proto()`` between ``watch`` and ``unwatch``; ``read`` takes every other."""
        length = ctx.scope.headers.get("content-length")
        if length is None or not (length.isascii() and length.isdigit()):
            return False
        # Fewer digits than the cap has is within it, and makes no int (one past 256 is an object).
        return len(length) < self._cap_digits or int(length) <= self.max_bytes

    async def read(self, ctx: Context, hold: ByteHold | None = None) -> bytes:
        """The body, its length set as ``ctx.bytes_in``; with ``hold``, every byte is taken from
        its budget before it is read (BudgetExceeded when it would pass)."""
        scope = ctx.scope
        proto = ctx.proto
        length = scope.headers.get("content-length")
        over = False
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                raise HTTPError(400, "bad_content_length", "Content-Length is not a number")
            announced = int(length)
            if announced > self.max_bytes:
                # A sender that sends the whole body anyway (Go's client, Alertmanager's) sees a
                # connection reset instead of the 413 if the server closes with the body unread:
                # read and drop a body up to twice the cap (as long as a legitimate one costs, in
                # chunks, under the body deadline); a bigger one is refused at once.
                # A sender that waits for "100 Continue" must get the 413 instead of an invitation.
                if announced > 2 * self.max_bytes or "100-continue" in scope.headers.get("expect", "").lower():
                    raise self.too_large()
                over = True
            elif hold is not None:
                hold.take(announced)
        task = self.watch()
        try:
            if over:
                await self._discard(proto)
                raise self.too_large()
            if length is None:
                return await self._read_chunked(ctx, hold)
            body: bytes = await proto()
            ctx.bytes_in = announced  # the length Granian framed it by (see Ingest.framed)
            return body
        except (ProtocolClosed, asyncio.CancelledError) as exc:
            raise self.failed(exc, task) from None
        finally:
            self.unwatch(task)

    def watch(self) -> asyncio.Task[Any]:
        """Start the body's deadline: the current task (the request's), to pass to ``unwatch``
        once the body is read, and to ``failed``."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        # Given its loop: current_task() looks the running loop up, a getpid() system call per
        # request on Python 3.11.
        task = current_task(loop)
        assert task is not None  # Granian (asyncio task mode) runs every request as a task
        self._deadlines.add(task)
        return task

    def unwatch(self, task: asyncio.Task[Any]) -> None:
        self._deadlines.done(task)

    def failed(self, exc: ProtocolClosed | asyncio.CancelledError, task: asyncio.Task[Any]) -> BaseException:
        """What to raise instead of ``exc``, met while awaiting the body: 400 for a body cut
        short, 408 when the deadline cancelled the task; the cancellation itself when the client
        went away."""
        if isinstance(exc, ProtocolClosed):
            # The client closed before sending the body its Content-Length announced.
            return HTTPError(400, "bad_content_length", "body ended before its Content-Length")
        if not self._deadlines.done(task):
            return exc  # the client went away
        if hasattr(task, "uncancel"):  # Python 3.11+: this cancellation is handled
            task.uncancel()
        return self.timed_out()

    def close(self) -> None:
        self._deadlines.close()

    def timed_out(self) -> HTTPError:
        return HTTPError(408, "request_timeout", "request body not received in time")

    async def _discard(self, proto: Any) -> None:
        """Read and drop what the sender is sending; stop once it pauses (a sender that waits for
        an answer first, as with ``Expect: 100-continue``, gets its 413 after the pause)."""
        chunks = proto.__aiter__()
        with contextlib.suppress(ProtocolClosed, StopAsyncIteration, asyncio.TimeoutError):
            while True:
                await asyncio.wait_for(chunks.__anext__(), DISCARD_PAUSE_S)

    async def _read_chunked(self, ctx: Context, hold: ByteHold | None) -> bytes:
        chunks = []
        total = 0
        async for chunk in ctx.proto:
            total += len(chunk)
            if total > self.max_bytes:
                raise self.too_large()
            if hold is not None:
                hold.take(len(chunk))
            chunks.append(chunk)
        ctx.bytes_in = total
        return b"".join(chunks)


class Ingest:
    def __init__(
        self,
        batcher: Batcher,
        limits: Limits,
        reader: BodyReader,
        retry_after_s: int,
        *,
        durable: bool = True,
        unverified: ByteBudget | None = None,
    ) -> None:
        self.batcher = batcher
        # "stored": committed before this answer; "queued": ack=enqueue answered before the commit.
        self.status_word = "stored" if durable else "queued"
        self.limits = limits
        self.reader = reader
        self.retry_after_s = retry_after_s
        # Bodies read before their signature is checked (at least one largest body fits).
        self.unverified = unverified or ByteBudget(reader.max_bytes)
        # What one body may decode into when the queue is empty: the queue's bound, and never less
        # than a largest body made of one value (held twice: the value and its canonical JSON), so
        # that any real alert under the body cap passes with default settings.
        self.lone_decode_bytes = max(batcher.max_queue_bytes, 2 * reader.max_bytes + LONE_BODY_SLACK)
        # Else the room the queue leaves, read by the decoder itself (at least what a batch of
        # no alerts takes: such a request never reaches the queue).
        self.decode_budget = DecodeBudget(batcher.bounds, EMPTY_BATCH_BYTES, self.lone_decode_bytes)

    async def __call__(self, ctx: Context) -> bytes:
        """The answer's body: a 200 JSON answer (see ``http.Answer``). ``App.__rsgi__`` runs the
        same steps in its own coroutine, reading a framed body itself (one object fewer)."""
        body = await self.read(ctx)
        batch, waiting = self.take(ctx, body)
        try:
            spooled = waiting is not None and await waiting
        except REFUSALS as exc:
            raise self.refused(exc) from None
        return self.answer(ctx, batch, spooled)

    def framed(self, ctx: Context) -> bool:
        """Whether the body can be read by awaiting ``ctx.proto()`` between ``reader.watch`` and
        ``reader.unwatch`` (set as ``ctx.bytes_in``, ``reader.failed`` mapping what that raises):
        an unsigned body whose Content-Length is within the cap. HTTPError 415 for a body that is
        not JSON."""
        if not is_json(ctx.scope.headers.get("content-type")):
            raise _not_json()
        # Granian frames such a body by its Content-Length (hyper's decoder, h2's length check):
        # exactly that many bytes arrive, or ProtocolClosed; with Transfer-Encoding as well, in
        # either order, hyper drops the Content-Length and the body comes chunked. So the body's
        # length is the one announced; the access log takes it from the body itself
        # (ctx.bytes_in), as an int past 256 is one more object.
        return ctx.signature_check is None and self.reader.framed(ctx)

    async def read(self, ctx: Context) -> bytes:
        """The body, whatever its framing (413 over the cap; a signed one checked before it is
        decoded); 415 when it is not JSON."""
        if not is_json(ctx.scope.headers.get("content-type")):
            raise _not_json()
        if ctx.signature_check is None:
            return await self.reader.read(ctx)
        hold = self.unverified.hold()
        try:
            body = await self.reader.read(ctx, hold)
            # Before decoding: an unsigned body must not reach the decoder, its errors or the store.
            ctx.signature_check(ctx.scope.headers, body)
        except BudgetExceeded:
            metrics.rejected.labels("unverified_bytes").inc()
            raise overloaded(self.retry_after_s, "too many signed bodies awaiting verification, retry later") from None
        finally:
            hold.release()
        return body

    def take(self, ctx: Context, body: bytes) -> tuple[Batch, Awaitable[bool] | None]:
        """Decode ``body`` and hand its alerts to the batcher: the batch, and what to await until
        it is stored (None for no alerts), which ends True when it was spooled instead and raises
        one of ``REFUSALS`` (``refused`` gives its answer). HTTPError for a body refused now."""
        # Memory is checked while decoding: a body stops decoding once it would hold more than
        # the queue can take.
        try:
            batch = decode(body, self.limits, None, self.decode_budget)
        except PayloadError as err:
            if err.reason == DECODED_TOO_LARGE:
                # Decoding runs on the loop's thread, the only one that admits to the queue or
                # releases from it: the queue is as the decoder found it.
                raise self._decoded_too_large(err, self.batcher.queued_alerts == 0) from None
            metrics.payload_errors.labels(err.reason).inc()
            raise HTTPError(
                payload_status(err.reason), err.reason, err.message, path=err.path, offset=err.offset
            ) from None
        n = ctx.alerts = len(batch)  # set before it is stored: a refused request logs it too
        if not n:
            return batch, None
        try:
            return batch, self.batcher.submit(batch, ctx.request_id, body)
        except REFUSALS as exc:
            raise self.refused(exc) from None

    def refused(self, exc: Exception) -> HTTPError:
        """The answer to a batch the batcher or the store did not take (one of ``REFUSALS``)."""
        if isinstance(exc, SpoolRefused):
            metrics.rejected.labels("spool_full").inc()
            return overloaded(self.retry_after_s, "spool is full, retry later")
        if isinstance(exc, QueueFull):
            metrics.rejected.labels("queue_full").inc()
            return overloaded(self.retry_after_s)
        if isinstance(exc, DeadlineExceeded):
            metrics.rejected.labels("deadline").inc()
            return unavailable(self.retry_after_s, "database too slow, retry later")
        if isinstance(exc, StoreUnavailable):
            metrics.rejected.labels("store_unavailable").inc()
            return unavailable(self.retry_after_s)
        return unstorable()  # StoreRejected

    def answer(self, ctx: Context, batch: Batch, spooled: bool) -> bytes:
        """The body of the 200 answer to a batch stored (or spooled, or queued with ack=enqueue);
        its alerts counted in the metrics."""
        n = ctx.alerts
        if n:
            firing, resolved = metrics.alert_children(batch.format)
            if n_firing := batch.firing:
                metrics.count(firing, n_firing)
            if n_resolved := batch.resolved:
                metrics.count(resolved, n_resolved)
            if batch.fingerprint_mismatches:
                metrics.count(metrics.fingerprint_mismatches, batch.fingerprint_mismatches)
            if batch.nul_replaced:
                metrics.count(metrics.nul_replaced, batch.nul_replaced)
        # "spooled": fsynced in the local spool; the replayer commits it.
        return ack_body("spooled" if spooled else self.status_word, n, ctx.request_id)

    def _decoded_too_large(self, err: PayloadError, alone: bool) -> HTTPError:
        if alone:
            # It would not fit in an empty queue either: a retry cannot help (413 is not retried).
            metrics.payload_errors.labels(err.reason).inc()
            return HTTPError(
                413,
                "payload_too_large",
                f"{err.message}: more than WEBHOOKFAST_QUEUE_MAX_BYTES ({self.lone_decode_bytes}) allows for one request",
                path=err.path,
            )
        metrics.rejected.labels("queue_full").inc()
        return overloaded(self.retry_after_s)
