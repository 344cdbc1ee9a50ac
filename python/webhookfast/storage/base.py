"""What the batcher needs from a store, whatever the database behind it."""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from webhookfast._core import Batch

log = logging.getLogger("webhookfast")


class StoreUnavailable(Exception):
    """The database cannot take writes right now (down, slow, or refusing): answer 503."""


class StoreRejected(Exception):
    """The database refused the rows themselves (a data or integrity error, a size limit): the
    same rows fail the same way on every retry, so the batcher isolates the requests they came
    from instead of retrying the flush."""


class QueryTimeout(Exception):
    """A read ran past its time limit (the history API answers 503 query_timeout)."""


class QueryRefused(ValueError):
    """The database refused a read for its parameters (a regex its engine rejects): ``field``
    names the parameter (the history API answers 400 invalid_parameter)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class WriteResult:
    label_sets: int  # rows offered (after collapsing duplicates inside the flush)
    events: int
    alerts: int


class Store(abc.ABC):
    """One database. ``write`` stores the batches of one flush in one transaction."""

    dialect: str
    #: flushes that may run at once (each on its own connection); the batcher may be told otherwise
    default_flush_concurrency: int = 1

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def write(self, batches: Sequence[Batch]) -> WriteResult:
        """Commit every alert of ``batches`` or nothing; raise StoreRejected when the database
        refuses their content, StoreUnavailable on any other database fault."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """Whether the database answers now (for /readyz)."""

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending migrations (synchronously); return the names applied."""

    @abc.abstractmethod
    async def prune(self, older_than_us: int) -> int:
        """Delete history of alert instances that started before ``older_than_us``; return rows deleted."""

    @abc.abstractmethod
    async def claim_job(self, name: str, every_s: float) -> bool:
        """Whether this caller should run the periodic job ``name`` now: true for exactly one
        caller per ``every_s`` seconds across every worker and process sharing the database (the
        claim records the start, so a job that then fails waits for the next interval)."""


def job_runs_missing(name: str) -> bool:
    """``claim_job`` on a database not migrated to 0005 (``--no-migrate-on-start``, or the database
    was down at start): every caller runs the job, as before job_runs existed."""
    log.warning("table job_runs is missing (run `webhookfast migrate`): every worker runs %r", name)
    return True
