"""Many waits with the same time limit, watched by one timer.

``asyncio.timeout`` or ``loop.call_later`` per request costs a timer handle, a context object and
a heap operation each (about 20 Python allocations). Since every wait here has the same length,
deadlines arrive in order: a deque holds them, and a single timer armed for the oldest one
expires everything due when it fires.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Deadline(Generic[T]):
    __slots__ = ("active", "expired", "item", "when")

    def __init__(self, when: float, item: T) -> None:
        self.when = when
        self.item = item
        self.active = True
        self.expired = False


class DeadlineQueue(Generic[T]):
    def __init__(self, seconds: float, on_expire: Callable[[T], None]) -> None:
        self.seconds = seconds
        self.on_expire = on_expire
        self._entries: deque[Deadline[T]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, item: T) -> Deadline[T]:
        """Start watching ``item``; call ``entry.active = False`` (or ``cancel``) when it is done."""
        loop = self._loop
        if loop is None or loop.is_closed():
            # Looked up once: on Python 3.11 every get_running_loop() is a getpid() system call.
            loop = self._loop = asyncio.get_running_loop()
        entries = self._entries
        while entries and not entries[0].active:  # drop finished heads: keeps the deque short
            entries.popleft()
        entry = Deadline(loop.time() + self.seconds, item)
        entries.append(entry)
        if self._timer is None:
            self._timer = loop.call_at(entries[0].when, self._expire_due, loop)
        return entry

    def _expire_due(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        entries = self._entries
        while entries and (not entries[0].active or entries[0].when <= now):
            entry = entries.popleft()
            if entry.active:
                entry.active = False
                entry.expired = True
                self.on_expire(entry.item)
        if entries:
            self._timer = loop.call_at(entries[0].when, self._expire_due, loop)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._entries.clear()
