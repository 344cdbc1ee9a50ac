"""How ``serve`` bounds connections: Granian's options and the process's file-descriptor limit.

What Granian 2.8 (hyper 1.x underneath) really does, read from its source:

- ``HTTP1Settings.header_read_timeout`` starts when a connection opens and again after each answer,
  and stops once a request's head is complete: one timer closes silent connections, headers sent
  byte by byte, and idle keep-alive connections alike. It has no effect in ``http="auto"`` mode on
  a connection that sends nothing: hyper-util's auto builder first waits, without any timeout, for
  the bytes that tell HTTP/1 from HTTP/2. So ``serve`` speaks HTTP/1.1 only (Alertmanager and
  Prometheus use HTTP/1.1 over plain HTTP; over TLS they fall back to it through ALPN).
- ``backpressure`` is a per-worker semaphore held for a connection's whole life: beyond it, the
  worker stops accepting and new connections wait in the kernel's listen backlog.
- There is no write timeout: an answer larger than the kernel's socket buffers, to a client that
  stops reading, holds its connection until the client goes away. Smaller answers are handed to
  the kernel at once, after which the idle timer closes the connection.
- A request body is bounded by the application (``body_timeout_s``), not by Granian.
"""

from __future__ import annotations

import logging
import resource
from typing import Any

from webhookfast.settings import Settings

log = logging.getLogger("webhookfast")

# Descriptors a worker needs besides its connections: the listening socket, the database (SQLite
# files or the PostgreSQL pool), prometheus-client's multiprocess files, pipes, the log.
RESERVED_FDS = 128


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (inherited by Granian's workers); the new soft limit.

    Granian 2.8 happens to do the same in its main process (its ``sysinfo`` dependency does, for the
    RSS collector); done here so that the bound on connections is computed from the limit the workers
    will have, whatever Granian's version.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and soft != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # e.g. an infinite hard limit above fs.nr_open
            log.warning("could not raise the open-file limit from %s to %s: %s", soft, hard, exc)
    return soft


def connections_per_worker(settings: Settings, nofile: int) -> int:
    """``max_connections``, lowered so that a worker cannot run out of file descriptors."""
    if nofile == resource.RLIM_INFINITY:
        return settings.max_connections
    fit = max(1, nofile - RESERVED_FDS)
    if settings.max_connections > fit:
        log.warning(
            "WEBHOOKFAST_MAX_CONNECTIONS=%d does not fit the open-file limit %d: %d connections per worker",
            settings.max_connections, nofile, fit,
        )
        return fit
    return settings.max_connections


def granian_connection_options(settings: Settings, nofile: int) -> dict[str, Any]:
    """Granian's keyword arguments that bound connections (see the module's docstring)."""
    from granian.constants import HTTPModes
    from granian.http import HTTP1Settings

    return {
        "http": HTTPModes.http1,
        "http1_settings": HTTP1Settings(header_read_timeout=round(settings.idle_timeout_s * 1000)),
        "backpressure": connections_per_worker(settings, nofile),
    }
