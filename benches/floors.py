"""Requests that do next to nothing in the allocation benchmark's harness, as floors for
webhookfast's own figure (benches/test_allocations.py):

- ``bare_app``: the bare Granian app of the load tests (``scripts/load/bare_app.py``): it reads the
  body and answers.
- ``HandoffApp``: the bare app plus the one thing that acknowledging after a shared commit needs:
  the request hands a future to a writer task and answers once the writer has resolved it. No
  decoding, no store, no middleware: only asyncio's hand-off between two tasks.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

_BARE_APP = Path(__file__).resolve().parent.parent / "scripts" / "load" / "bare_app.py"


def _load_bare_app() -> Any:
    spec = importlib.util.spec_from_file_location("webhookfast_bench_bare_app", _BARE_APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bare = _load_bare_app()
BODY: bytes = _bare.BODY
HEADERS: list[tuple[str, str]] = _bare.HEADERS


class BareApp:
    """``scripts/load/bare_app.py``'s app behind the harness's ``startup``/``shutdown``."""

    def __init__(self) -> None:
        # The function itself, not a method wrapping it: no coroutine of the harness's own.
        self.__rsgi__: Callable[[Any, Any], Awaitable[None]] = _bare.app

    async def startup(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class HandoffApp:
    """Reads the body, queues a future for the writer task and answers once it is resolved: the
    writer takes everything queued at once, as the batcher's flusher does."""

    def __init__(self) -> None:
        self._queue: deque[asyncio.Future[None]] = deque()
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self.written = 0

    async def startup(self) -> None:
        self._wake = asyncio.Event()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def shutdown(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _write_loop(self) -> None:
        assert self._wake is not None
        queue = self._queue
        while True:
            if not queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            taken = list(queue)
            queue.clear()
            self.written += len(taken)
            for future in taken:
                future.set_result(None)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        assert self._wake is not None
        await proto()
        future = asyncio.get_running_loop().create_future()
        self._queue.append(future)
        self._wake.set()
        await future
        proto.response_bytes(200, HEADERS, BODY)
