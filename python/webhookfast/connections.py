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
  stops reading, would hold its connection until the client goes away. So each worker sets Linux's
  ``TCP_USER_TIMEOUT`` on its listening socket (accepted sockets inherit it): the kernel aborts a
  connection whose sent data stays unacknowledged, or whose receive window stays shut, that long
  (Linux >= 5.10 for the shut window). Granian creates that socket inside the worker once it
  serves, after the app is built, so the worker looks for it among its descriptors.
- A request body is bounded by the application (``body_timeout_s``), not by Granian.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import stat
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
            settings.max_connections,
            nofile,
            fit,
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


def bound_unacknowledged_writes(port: int, timeout_s: float) -> int:
    """Set TCP_USER_TIMEOUT on this process's listening TCP sockets on ``port`` (any port if 0);
    how many were found."""
    timeout_ms = max(1, round(timeout_s * 1000))
    found = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))  # a duplicate: closing it leaves Granian's open
        except (ValueError, OSError):
            continue
        with sock:
            try:
                if (
                    sock.family not in (socket.AF_INET, socket.AF_INET6)
                    or sock.type != socket.SOCK_STREAM
                    or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                    or (port and sock.getsockname()[1] != port)
                ):
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, timeout_ms)
                found += 1
            except OSError:
                continue
    return found


async def bound_writes_once_listening(port: int, timeout_s: float, wait_s: float = 10.0) -> None:
    """``bound_unacknowledged_writes`` as soon as Granian's listener exists in this worker."""
    if not hasattr(socket, "TCP_USER_TIMEOUT"):
        log.warning("no TCP_USER_TIMEOUT on this platform: answers to clients that stop reading are not bounded")
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while loop.time() < deadline:
        if bound_unacknowledged_writes(port, timeout_s):
            return
        await asyncio.sleep(0.05)
    log.warning("listening socket not found: answers to clients that stop reading are not bounded")
