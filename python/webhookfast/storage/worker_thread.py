"""One thread that runs blocking calls for the event loop, one at a time, in order.

``loop.run_in_executor`` on a one-thread ``ThreadPoolExecutor`` does the same, but its concurrent
future, the asyncio future chained to it, their locks and callbacks cost the event loop about
50 µs per call (cProfile with ``time.thread_time``): an SQLite flush makes one or two such calls
(BEGIN when another process holds the write lock, COMMIT), a fifth of a 1-alert flush. Here a
call costs the loop an asyncio future, a queue put and one ``call_soon_threadsafe`` back.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")

_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.cancelled():  # its caller stopped waiting (e.g. a flusher cancelled at shutdown)
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class WorkerThread:
    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # A daemon: a store that was never closed must not keep the interpreter from exiting
        # (close() joins it; a call in progress then finishes first).
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self._closed = False

    async def run(self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` on the thread, after the calls queued before it; its result or exception."""
        if self._closed:
            raise RuntimeError("worker thread is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._jobs.put((fn, args, future, loop))
        return await future

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args, future, loop = job
            if future.cancelled():  # not started, and nobody waits for it any more
                continue
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn(*args)
            except BaseException as exc:
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody can be waiting
                loop.call_soon_threadsafe(_settle, future, result, error)
            del job, fn, args, future, result, error  # no reference kept while idle

    def close(self) -> None:
        """Run what is queued, then stop the thread and wait for it."""
        if not self._closed:
            self._closed = True
            self._jobs.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join()
