"""A real PostgreSQL for the tests (pytest plugin: ``pytest_plugins = ["support.postgres"]``).

``postgres_server`` (session): the server named by ``WEBHOOKFAST_TEST_DATABASE_URL`` if set,
otherwise a throwaway cluster made with the ``initdb``/``pg_ctl`` found on PATH or under
``/usr/lib/postgresql/*/bin`` (highest version), in a temp dir, on a free 127.0.0.1 port, with
``fsync=on`` (the tests check durability). Tests may ``stop()`` and ``start()`` it (same port, same
data). PostgreSQL refuses to run as root, so under root the cluster belongs to the ``postgres``
system user (created if missing) and the binaries run through ``runuser``.

``pg_url`` (function): a fresh, migrated database per test, dropped afterwards.

No server and no binaries is a hard failure, never a skip: CI installs Debian's postgresql package
before running pytest, and a silently skipped storage suite is worse than a red build.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from support.net import free_port

ENV_URL = "WEBHOOKFAST_TEST_DATABASE_URL"
PG_USER = "postgres"


def _version_key(path: str) -> tuple[int, ...]:
    m = re.search(r"/postgresql/([0-9.]+)/bin", path)
    return tuple(int(p) for p in m.group(1).split(".") if p) if m else (0,)


def find_pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH first, then Debian's layout (newest)."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    candidates = [
        d
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "pg_ctl"), os.X_OK)
    ]
    if not candidates:
        return None
    return Path(max(candidates, key=_version_key))


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            "/var/lib/postgresql",
            "--shell",
            "/bin/sh",
            "--comment",
            "PostgreSQL administrator",
            name,
        ],
        check=True,
    )
    return pwd.getpwnam(name)


def wait_until_accepting(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL at {url} did not accept connections within {timeout}s: {last}")


class PostgresServer:
    """A PostgreSQL server for the tests. ``external`` servers cannot be stopped or started."""

    def __init__(
        self, url: str, *, bindir: Path | None = None, base: Path | None = None, port: int | None = None
    ) -> None:
        self.url = url
        self.bindir = bindir
        self.base = base
        self.port = port
        self.external = bindir is None
        self.running = True

    @property
    def pg_ctl(self) -> str | None:
        return str(self.bindir / "pg_ctl") if self.bindir else None

    @property
    def datadir(self) -> Path | None:
        return self.base / "data" if self.base else None

    # -- running the binaries as the non-root owner of the cluster ------------------------------
    def _run(self, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", PG_USER, "--", *argv]
        return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]

    @classmethod
    def create(cls, bindir: Path) -> PostgresServer:
        base = Path(tempfile.mkdtemp(prefix="webhookfast-pg-"))
        try:
            if os.geteuid() == 0:
                user = _ensure_system_user(PG_USER)
                os.chown(base, user.pw_uid, user.pw_gid)
            base.chmod(0o700)
            port = free_port()
            server = cls(f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres", bindir=bindir, base=base, port=port)
            server.running = False
            server._run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(base / "data"),
                    "-U",
                    PG_USER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
            with open(base / "data" / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(
                    "\n# webhookfast tests\n"
                    f"port = {port}\n"
                    "listen_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{base}'\n"
                    "fsync = on\n"
                    "max_connections = 200\n"
                    "log_min_messages = warning\n"
                )
            server.start()
            return server
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise

    def start(self) -> None:
        if self.external:
            raise RuntimeError(f"{ENV_URL} names an external server: it cannot be started by the tests")
        if self.running:
            return
        assert self.base is not None
        try:
            self._run(
                [self.pg_ctl, "start", "-D", str(self.datadir), "-l", str(self.base / "server.log"), "-w", "-t", "60"]
            )
        except subprocess.CalledProcessError as exc:
            log = (self.base / "server.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"pg_ctl start failed: {exc.stderr}\n--- server.log ---\n{log}") from exc
        self.running = True
        wait_until_accepting(self.url)

    def stop(self) -> None:
        if self.external:
            raise RuntimeError(f"{ENV_URL} names an external server: it cannot be stopped by the tests")
        if not self.running:
            return
        self._run([self.pg_ctl, "stop", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "60"])
        self.running = False

    def ensure_running(self) -> None:
        if not self.external and not self.running:
            self.start()

    def destroy(self) -> None:
        try:
            if not self.external and self.running:
                self.stop()
        finally:
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)


def database_url(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    url = os.environ.get(ENV_URL)
    if url:
        wait_until_accepting(url, timeout=10)
        yield PostgresServer(url)
        return
    bindir = find_pg_bin()
    if bindir is None:
        pytest.fail(
            "no PostgreSQL server for the postgres tests: set WEBHOOKFAST_TEST_DATABASE_URL to a "
            "superuser DSN, or install PostgreSQL's server binaries (initdb and pg_ctl on PATH or "
            "under /usr/lib/postgresql/*/bin; on Debian: apt-get install -y postgresql)",
            pytrace=False,
        )
    server = PostgresServer.create(bindir)
    try:
        yield server
    finally:
        server.destroy()


@contextlib.contextmanager
def empty_database(server: PostgresServer, prefix: str = "test") -> Iterator[str]:
    """The URL of a new database on ``server``, without webhookfast's schema; dropped afterwards."""
    # A previous test may have stopped the server and failed before starting it again.
    server.ensure_running()
    dbname = f"{prefix}_{uuid.uuid4().hex}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        yield database_url(server.url, dbname)
    finally:
        server.ensure_running()
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    from webhookfast.storage.postgres import PostgresStore

    with empty_database(postgres_server) as url:
        PostgresStore(url).migrate()
        yield url


# -- helpers for the PostgreSQL tests --------------------------------------------------------------
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def dt_to_us(value: datetime | None) -> int | None:
    """A timestamptz read back by psycopg → microseconds since the Unix epoch (exact)."""
    if value is None:
        return None
    return (value - _EPOCH) // timedelta(microseconds=1)


def read_tables(url: str) -> dict[str, list[dict[str, object]]]:
    """Every row of label_sets, alert_events and alerts, with hex fingerprints and µs times,
    sorted by key. Rows show their group's receiver and group_key (stored once in
    notification_groups) in place of group_id; alerts.status_from_ends is left out (the tests of
    the reopening rule check it through the status)."""
    from webhookfast._core import fingerprint_from_int

    out: dict[str, list[dict[str, object]]] = {}
    # UTC: year 0001 and 9999 must not pass through a local offset (Python's datetime range).
    with psycopg.connect(url, options="-c TimeZone=UTC", row_factory=dict_row) as conn:
        groups = {
            g["id"]: g for g in conn.execute("SELECT id, receiver, group_key FROM notification_groups").fetchall()
        }
        for table, key in (
            ("label_sets", "fingerprint"),
            ("alert_events", "fingerprint, starts_at, status"),
            ("alerts", "fingerprint, starts_at"),
        ):
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
            for row in rows:
                row["fingerprint"] = fingerprint_from_int(row["fingerprint"])
                row.pop("status_from_ends", None)
                group = groups.get(row.pop("group_id", None))
                if group is not None:
                    row["receiver"] = group["receiver"]
                    if "group_key" in row:
                        row["group_key"] = group["group_key"]
                for col, val in list(row.items()):
                    if isinstance(val, datetime):
                        row[col] = dt_to_us(val)
            out[table] = rows
    return out
