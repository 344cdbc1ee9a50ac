"""Many waits with the same time limit, watched in coarse slices by one timer.

``asyncio.timeout`` or ``loop.call_later`` per request costs a timer handle, a context object and
a heap operation each (about 20 Python allocations); a deadline object per wait still cost a few
(its float times among them) on every request. Here a wait costs a set insertion and a dict
entry: waits are gathered in the set of the current slice of time (``seconds / (slices + 1)`` long); a
timer, armed only while something waits, starts a new slice at each tick and expires the set that
has aged ``slices`` full slices. A wait therefore expires no later than ``seconds`` after it
began (a documented longest wait stays one) and no earlier than one slice before.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

SLICES = 8


class DeadlineQueue(Generic[T]):
    def __init__(self, seconds: float, on_expire: Callable[[T], None], slices: int = SLICES) -> None:
        self.seconds = seconds
        self.on_expire = on_expire
        self.slices = max(1, slices)
        self._tick = seconds / (self.slices + 1)
        self._current: set[T] = set()
        self._older: deque[set[T]] = deque()  # one set per earlier slice, oldest first
        self._slice_of: dict[T, set[T]] = {}  # each waiting item's slice
        self._expired: set[T] = set()  # expired and not yet ``done``
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, item: T) -> None:
        """Start watching ``item``; call ``done(item)`` when its wait is over, whatever the outcome."""
        current = self._current
        current.add(item)
        self._slice_of[item] = current
        if self._timer is None:
            loop = self._loop
            if loop is None or loop.is_closed():
                # Looked up once: on Python 3.11 every get_running_loop() is a getpid() system call.
                loop = self._loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._tick, self._next_slice)

    def done(self, item: T) -> bool:
        """Stop watching ``item``: whether it expired (``on_expire`` was called for it)."""
        where = self._slice_of.pop(item, None)
        if where is not None:
            where.discard(item)
            return False
        if item in self._expired:
            self._expired.discard(item)
            return True
        return False

    def __len__(self) -> int:
        return len(self._slice_of)

    def _next_slice(self) -> None:
        self._timer = None
        older = self._older
        older.append(self._current)
        self._current = set()
        if len(older) > self.slices:  # the oldest began at least ``slices`` slices ago
            due = older.popleft()
            slice_of = self._slice_of
            for item in due:
                del slice_of[item]
                self._expired.add(item)
                self.on_expire(item)
        if self._slice_of:
            assert self._loop is not None
            self._timer = self._loop.call_later(self._tick, self._next_slice)
        else:
            older.clear()  # nothing waits: the next wait starts a fresh count

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._current = set()
        self._older.clear()
        self._slice_of.clear()
        self._expired.clear()
