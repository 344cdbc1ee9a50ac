"""``webhookfast serve | migrate | prune``.

Options are parsed by click (already a dependency of Granian) and validated by the pydantic Settings;
an option not given on the command line comes from its ``WEBHOOKFAST_*`` environment variable.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from webhookfast.credentials import Credentials
from webhookfast.dirlock import DirLock, DirLocked, is_locked
from webhookfast.durations import MAX_DURATION_US, parse_duration_us
from webhookfast.logs import configure_logging
from webhookfast.settings import Settings, reference_table
from webhookfast.storage import describe_url, open_store

log = logging.getLogger("webhookfast")

F = TypeVar("F", bound=Callable[..., Any])


class ConfigError(click.ClickException):
    """A setting that must stop the start: one line on stderr, exit status 2 (as a usage error)."""

    exit_code = 2


def _settings(**given: Any) -> Settings:
    overrides = {k: v for k, v in given.items() if v is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise click.UsageError(problems) from None


def _env_option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    name = decls[0].lstrip("-").split("/")[0].replace("-", "_")
    return click.option(*decls, envvar=f"WEBHOOKFAST_{name.upper()}", show_envvar=True, **kwargs)


database_option = _env_option("--database-url", help="sqlite:///path.db (default ./webhookfast.db) or postgresql://…")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="webhookfast")
def main() -> None:
    """webhookfast: receive Alertmanager webhooks and keep every alert's history."""


@main.command()
@_env_option("--host", help="Address to listen on.  [default: 127.0.0.1]")
@_env_option("--port", type=int, help="Port to listen on.  [default: 8080]")
@_env_option("--workers", type=int, help="Worker processes.  [default: 1]")
@database_option
@_env_option(
    "--ack",
    type=click.Choice(["commit", "enqueue", "spool"]),
    help="Answer after the commit (default), "
    "after the local spool's fsync (spool), or as soon as queued: enqueue can lose acknowledged alerts on a crash.",
)
@_env_option(
    "--spool/--no-spool",
    default=None,
    help="PostgreSQL: spool what the database cannot take in time to local disk and answer 200.  [default: on]",
)
@_env_option(
    "--spool-dir",
    type=click.Path(file_okay=False),
    help="The spool's directory, one per server.  [default: ./webhookfast-spool]",
)
@_env_option("--migrate-on-start/--no-migrate-on-start", default=None, help="Apply migrations first.  [default: on]")
@_env_option("--access-log/--no-access-log", default=None, help="JSON access log on stderr.  [default: on]")
@_env_option("--log-level", type=click.Choice(["debug", "info", "warning", "error", "critical"]))
@_env_option("--max-body-bytes", type=int, help="Largest request body.  [default: 16 MiB]")
@_env_option(
    "--flush-concurrency",
    type=int,
    help="Flushes in flight at once (0: the store's default, 1 for SQLite, 2 for PostgreSQL).",
)
@_env_option("--retention-days", type=int, help="Prune history older than this, hourly (0 = keep all).")
@_env_option(
    "--stats-cache-s", type=float, help="Reuse a GET /api/v1/stats answer this long per query (0: never).  [default: 5]"
)
@_env_option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Serve HTTPS with this certificate.")
@_env_option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Private key of --tls-cert.")
@_env_option(
    "--tls-client-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="Require client certificates signed by this CA.",
)
def serve(**options: Any) -> None:
    """Serve the webhook receiver (Granian, RSGI). SIGTERM: stop accepting, flush, exit 0.

    Every other setting (limits, queue bounds, auth) is read from its WEBHOOKFAST_* variable; see the README.
    """
    settings = _settings(**options)
    configure_logging(settings.log_level)
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    try:  # fail here, once, rather than in every worker
        Credentials.from_settings(settings)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"credentials: {exc}") from None
    _check_store(settings)
    _check_port_free(settings.host, settings.port)
    if settings.migrate_on_start:
        _migrate(settings, required=False)
    spool_lock = _lock_spool(settings)

    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from webhookfast.connections import granian_connection_options, raise_nofile_limit

    # Workers are fresh processes: they rebuild the app from these variables.
    os.environ.update(settings.env())
    metrics_dir, metrics_lock = _metrics_dir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    tls: dict[str, Any] = {}
    if settings.tls_cert is not None:
        tls = {"ssl_cert": Path(settings.tls_cert), "ssl_key": Path(settings.tls_key)}  # type: ignore[arg-type]
        if settings.tls_client_ca is not None:
            tls.update(ssl_ca=Path(settings.tls_client_ca), ssl_client_verify=True)
    connection_options = granian_connection_options(settings, raise_nofile_limit())
    try:
        Granian(
            "webhookfast.app:create_app",
            factory=True,
            address=settings.host,
            port=settings.port,
            interface=Interfaces.RSGI,
            workers=settings.workers,
            log_access=False,
            log_level=LogLevels(settings.log_level),
            log_dictconfig=GRANIAN_LOG_CONFIG,
            **connection_options,
            **tls,
        ).serve()
    finally:
        if spool_lock is not None:
            spool_lock.release()
        metrics_lock.release()
        shutil.rmtree(metrics_dir, ignore_errors=True)


# Granian's own lines (start, workers, errors) in webhookfast's JSON format, on stderr like ours.
GRANIAN_LOG_CONFIG: dict[str, Any] = {
    "formatters": {"json": {"()": "webhookfast.logs.JsonFormatter"}},
    "handlers": {"console": {"formatter": "json", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
    "loggers": {"_granian": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}


def _check_store(settings: Settings) -> None:
    """Refuse a malformed database URL (or a SQLite file in a missing folder) in one line, and say
    which store this process will write to."""
    try:
        store = describe_url(settings.database_url)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    log.info("store: %s", store)


def _lock_spool(settings: Settings) -> DirLock | None:
    """One spool directory belongs to one server (its workers take sub-directories of it)."""
    postgres = settings.database_url.startswith(("postgresql:", "postgres:"))
    if settings.ack.value == "spool" and not (postgres and settings.spool):
        raise click.UsageError("--ack spool needs the spool: a PostgreSQL database and no --no-spool")
    if not (postgres and settings.spool):
        return None
    directory = Path(settings.spool_dir).absolute()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = DirLock(directory).acquire()
    except DirLocked:
        raise click.ClickException(
            f"spool directory {directory} is in use by another webhookfast: give each server its own "
            "(WEBHOOKFAST_SPOOL_DIR)"
        ) from None
    except OSError as exc:
        raise click.ClickException(f"spool directory {directory}: {exc.strerror or exc}") from None
    log.info("spool: %s (up to %d bytes)", directory, settings.spool_max_bytes)
    return lock


def _check_port_free(host: str, port: int) -> None:
    """Granian shares its listening socket (SO_REUSEPORT): a second server on a taken port would
    start and silently take half of the traffic into its own database. A probe bind without that
    option fails while any server listens there."""
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    with socket.socket(family, kind, proto) as probe:
        if sys.platform != "win32":  # there SO_REUSEADDR would let the probe share a bound port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            detail = (
                "address already in use (another server is listening there)"
                if exc.errno == errno.EADDRINUSE
                else exc.strerror
            )
            raise click.ClickException(f"cannot listen on {host}:{port}: {detail}") from None


_METRICS_PREFIX = "webhookfast-metrics-"
# A directory younger than this may belong to a server that has not locked it yet.
_METRICS_DIR_GRACE_S = 60.0


# Where the metric files go when one of these is in memory (tmpfs) with room to spare, else the
# temp directory. A full tmpfs would kill a worker with SIGBUS on its next metric write (the files
# are sparse and grow page by page): a container's small /dev/shm is passed over.
_MEMORY_DIRS = ("/dev/shm",)
_MEMORY_FS_TYPES = frozenset({"tmpfs", "ramfs"})
_MEMORY_DIR_MIN_FREE = 64 << 20


def _mount_type(path: str, mounts: str = "/proc/self/mounts") -> str | None:
    """The file-system type of the mount that holds ``path`` (None when unknown)."""
    try:
        with open(mounts, encoding="utf-8", errors="replace") as fh:
            table = [line.split() for line in fh]
    except OSError:
        return None
    real = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for fields in table:
        if len(fields) < 3:
            continue
        # /proc/mounts escapes spaces and the like as octal (\040).
        point = fields[1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), fields[2])
    return None if best is None else best[1]


def _metrics_base() -> Path:
    """Where the metric directory is made. prometheus_client's multiprocess files are mmap'd and
    written several times a second, and deleted at exit: on a disk the kernel keeps writing them
    back (and journalling their inodes) beside the database's fsyncs, for nothing. In memory they
    cost no I/O."""
    for candidate in _MEMORY_DIRS:
        try:
            usable = (
                os.access(candidate, os.W_OK | os.X_OK) and shutil.disk_usage(candidate).free >= _MEMORY_DIR_MIN_FREE
            )
        except OSError:
            continue
        if usable and _mount_type(candidate) in _MEMORY_FS_TYPES:
            return Path(candidate)
    return Path(tempfile.gettempdir())


def _metrics_dir() -> tuple[str, DirLock]:
    """A private PROMETHEUS_MULTIPROC_DIR, locked for this process's life; the directories of
    processes that died without cleaning up (SIGKILL) are removed first."""
    base = _metrics_base()
    # The temp directory too: where they were made before, or while /dev/shm was short of room.
    for root in dict.fromkeys((base, Path(tempfile.gettempdir()))):
        for old in root.glob(_METRICS_PREFIX + "*"):
            try:
                young = time.time() - old.stat().st_mtime < _METRICS_DIR_GRACE_S
            except OSError:
                continue
            if not young and not is_locked(old):
                shutil.rmtree(old, ignore_errors=True)
    path = tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-", dir=base)
    return path, DirLock(path).acquire()


def _migrate(settings: Settings, *, required: bool) -> None:
    store = open_store(settings.database_url, connect_timeout_s=settings.connect_timeout_s)
    try:
        applied = store.migrate()
    except Exception as exc:
        if required:
            raise click.ClickException(f"migration failed: {exc}") from None
        # Serve anyway: /readyz reports the database, and writes answer 503 until it is back.
        log.error("migrations not applied (database unreachable?): %s", exc)
        return
    for name in applied:
        log.info("applied migration %s", name)


@main.command()
@database_option
def migrate(database_url: str | None) -> None:
    """Create or upgrade the schema."""
    settings = _settings(database_url=database_url)
    configure_logging(settings.log_level)
    _check_store(settings)
    _migrate(settings, required=True)
    click.echo("schema is up to date")


def parse_duration(text: str) -> int:
    """A Prometheus duration (``30d``, ``1h30m``, ``2w``: the history API's parser) → whole seconds."""
    us = parse_duration_us(text.strip())
    if us is None or us < 1_000_000:
        raise click.BadParameter("use a Prometheus duration of at least 1s: 90s, 45m, 1h30m, 30d, 2w, 1y")
    if us > MAX_DURATION_US:
        raise click.BadParameter("at most 100 years")
    return us // 1_000_000


@main.command()
@database_option
@click.option(
    "--older-than",
    required=True,
    help="Delete alert instances that started before now minus this (a Prometheus duration: 30d, 1h30m).",
)
def prune(database_url: str | None, older_than: str) -> None:
    """Delete old history (retention)."""
    seconds = parse_duration(older_than)
    settings = _settings(database_url=database_url)
    configure_logging(settings.log_level)
    _check_store(settings)
    cutoff_us = int((time.time() - seconds) * 1_000_000)

    async def run() -> int:
        store = open_store(settings.database_url, connect_timeout_s=settings.connect_timeout_s)
        await store.open()
        try:
            return await store.prune(cutoff_us)
        finally:
            await store.close()

    deleted = asyncio.run(run())
    click.echo(f"deleted {deleted} rows")


@main.command("settings")
def settings_reference() -> None:
    """Print every setting (WEBHOOKFAST_* variable), its default and meaning, as a Markdown table."""
    click.echo(reference_table(), nl=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
