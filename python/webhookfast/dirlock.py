"""An exclusive lock on a directory, held for the life of the process that took it.

The operating system holds the lock on an open file, so it is released however the process ends
(``kill -9`` included), and another process tells a live directory from an orphaned one by trying
the lock. Process ids are no substitute: they are reused, and ``os.kill(pid, 0)``, the usual
liveness probe, terminates the process on Windows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

LOCK_FILE = ".lock"


class DirLocked(Exception):
    """Another process holds the directory's lock."""


class DirLock:
    """``DirLock(path).acquire()`` locks ``path`` until ``release()`` or the end of the process."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._fd: int | None = None

    def acquire(self) -> DirLock:
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            raise DirLocked(f"{self.directory} is in use by another process") from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the lock on every platform

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(directory: str | os.PathLike[str]) -> bool:
    """Whether a live process holds ``directory``'s lock (a directory that never had one is not)."""
    try:
        DirLock(directory).acquire().release()
    except DirLocked:
        return True
    except OSError:  # gone, or not ours to lock: nobody we know holds it
        return False
    return False


if sys.platform == "win32":  # pragma: no cover - exercised by the Windows wheel's smoke test
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
