"""pytest plugin: ``webhookfast serve`` as a real subprocess on a real socket.

``ServerProcess`` runs ``python -m webhookfast serve --host 127.0.0.1 --port P --database-url URL
[extra args]`` (or the ``webhookfast`` script when there is no ``__main__``), with the caller's
environment plus overrides (any ``WEBHOOKFAST_*`` setting of the caller's shell is dropped first, so a
developer's settings never leak into a test). Its stdout and stderr go to a file; ``start()`` waits
until ``GET /healthz`` answers 200 and fails with the log otherwise. The server runs in its own
process group so that ``stop()``/``kill()`` also reach Granian's worker processes.

Fixtures:
- ``sqlite_server``: a started server on ``sqlite:///{tmp_path}/wf.db``.
- ``server_factory(database_url=..., extra_args=..., env=..., start=True)``: custom servers, all stopped
  at the end of the test.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from support.net import Response, attach_log, free_port, request, tail

HEALTH_TIMEOUT_S = 30.0

# Settings that the test harness itself uses; everything else named WEBHOOKFAST_* is dropped.
_KEEP_ENV = ("WEBHOOKFAST_TEST_",)


class ServerStartError(RuntimeError):
    pass


def server_command() -> list[str]:
    """How to start the CLI: ``python -m webhookfast`` if it has a ``__main__``, else the script."""
    try:
        has_main = importlib.util.find_spec("webhookfast.__main__") is not None
    except ImportError:
        has_main = False
    if has_main:
        return [sys.executable, "-m", "webhookfast"]
    script = shutil.which("webhookfast") or str(Path(sys.executable).with_name("webhookfast"))
    return [script]


_LIVE: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:  # last resort, e.g. after a KeyboardInterrupt
    for server in list(_LIVE):
        server.kill()


class ServerProcess:
    """One ``webhookfast serve`` subprocess. Use as a context manager, or call start()/stop()."""

    def __init__(
        self,
        database_url: str,
        log_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        workers: int | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
        scheme: str = "http",
        health_path: str = "/healthz",
        health_headers: Mapping[str, str] | None = None,
        health_timeout: float = HEALTH_TIMEOUT_S,
        name: str = "webhookfast",
    ) -> None:
        self.database_url = database_url
        self.host = host
        self.port = port or free_port(host)
        self.workers = workers
        self.extra_args = list(extra_args)
        self.env_overrides = dict(env or {})
        self.scheme = scheme
        self.health_path = health_path
        self.health_headers = dict(health_headers or {})
        self.health_timeout = health_timeout
        self.name = name
        self.log_path = Path(log_dir) / f"{name}-{self.port}.log"
        self.tmp_dir = Path(log_dir) / f"{name}-{self.port}.tmp"
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self._log_file: IO[bytes] | None = None

    # -- info -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self) -> list[str]:
        cmd = [*server_command(), "serve", "--host", self.host, "--port", str(self.port)]
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        cmd += ["--database-url", self.database_url, *self.extra_args]
        return cmd

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKFAST_") or k.startswith(_KEEP_ENV)}
        env["PYTHONUNBUFFERED"] = "1"
        # Whatever the server puts in its temp dir (e.g. prometheus-client's multiprocess files) stays
        # under the test's tmp_path, even when a test SIGKILLs it.
        env["TMPDIR"] = str(self.tmp_dir)
        # A PostgreSQL server's spool (on by default) stays there too, one per server.
        env["WEBHOOKFAST_SPOOL_DIR"] = str(self.tmp_dir / "spool")
        for key, value in self.env_overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> ServerProcess:
        if self.proc is not None:
            raise RuntimeError("already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 (closed in _reap)
        self._log_file.write(f"$ {' '.join(self.command())}\n".encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            start_new_session=True,  # own process group: reach the workers too
        )
        _LIVE.add(self)
        try:
            self.wait_healthy()
        except BaseException:
            self.kill()
            raise
        return self

    def wait_healthy(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (self.health_timeout if timeout is None else timeout)
        last = "no answer yet"
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with {self.proc.returncode} before it was healthy\n"
                    f"--- {self.log_path}:\n{tail(self.log())}"
                )
            try:
                resp = request(self.url + self.health_path, headers=self.health_headers, timeout=2)
                if resp.status == 200:
                    self._wait_workers_started(deadline)
                    return
                last = f"HTTP {resp.status}: {resp.text[:200]}"
            except OSError as exc:
                last = repr(exc)
            if time.monotonic() >= deadline:
                raise ServerStartError(
                    f"{self.name} not healthy at {self.url}{self.health_path} within "
                    f"{self.health_timeout:.0f}s (last: {last})\n--- {self.log_path}:\n{tail(self.log())}"
                )
            time.sleep(0.1)

    def _wait_workers_started(self, deadline: float) -> None:
        """With several workers, /healthz answers as soon as one of them runs. Wait (best effort, by
        Granian's "Started worker-N" log lines) until all have started: a SIGTERM that reaches Granian
        while a worker is still starting can leave it hanging (seen with Granian 2.x).
        """
        if not self.workers or self.workers < 2:
            return
        wanted = [f"Started worker-{n}\n" for n in range(1, self.workers + 1)]
        until = min(deadline, time.monotonic() + 15)
        while time.monotonic() < until:
            text = self.log()
            if all(w in text for w in wanted):
                return
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Send ``sig`` to the server (its main process) and wait; SIGKILL after ``timeout`` s.

        Returns the exit code (negative: killed by that signal), None if it never started.
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._killpg()
                self.proc.wait(10)
        self._reap()
        return self.returncode

    def kill(self) -> int | None:
        """SIGKILL the server and its workers at once (a crash, as far as the server can tell)."""
        if self.proc is None:
            return None
        self._killpg()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self._reap()
        return self.returncode

    def _killpg(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _reap(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            # Workers that outlived the main process (they share its process group) go too.
            self._killpg()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        _LIVE.discard(self)

    def restart(self) -> ServerProcess:
        """Stop (SIGTERM) and start again on the same port and database."""
        self.stop()
        self.proc = None
        self.returncode = None
        return self.start()

    # -- requests ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Response:
        return request(self.url + path, method, body, headers, timeout)

    def post(self, path: str, body: bytes, headers: Mapping[str, str] | None = None, **kw: Any) -> Response:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        return self.request("POST", path, body, hdrs, **kw)

    def get(self, path: str, headers: Mapping[str, str] | None = None, **kw: Any) -> Response:
        return self.request("GET", path, None, headers, **kw)

    # -- context manager --------------------------------------------------------------------------

    def __enter__(self) -> ServerProcess:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.is_running():
            self.kill()

    def __repr__(self) -> str:
        return f"<ServerProcess {self.url} db={self.database_url} pid={self.pid}>"


ServerFactory = Callable[..., ServerProcess]


@pytest.fixture
def server_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerFactory]:
    """``server_factory(database_url=None, *, start=True, **ServerProcess kwargs)`` → ServerProcess.

    Without a database_url the server gets a fresh SQLite file in tmp_path. Every server is stopped
    (SIGTERM, then SIGKILL) at the end of the test; a failing test shows their logs.
    """
    servers: list[ServerProcess] = []

    def make(database_url: str | None = None, *, start: bool = True, **kwargs: Any) -> ServerProcess:
        if database_url is None:
            database_url = f"sqlite:///{tmp_path}/wf-{len(servers)}.db"
        kwargs.setdefault("name", f"webhookfast-{len(servers)}")
        server = ServerProcess(database_url, tmp_path / "logs", **kwargs)
        servers.append(server)
        attach_log(request.node, f"{server.name} ({server.url})", server.log)
        if start:
            server.start()
        return server

    try:
        yield make
    finally:
        for server in reversed(servers):
            try:
                server.stop(timeout=15)
            finally:
                if server.is_running():
                    server.kill()


@pytest.fixture
def sqlite_db_path(tmp_path: Path) -> Path:
    return tmp_path / "wf.db"


@pytest.fixture
def sqlite_server(server_factory: ServerFactory, sqlite_db_path: Path) -> ServerProcess:
    """A running ``webhookfast serve`` on ``sqlite:///{tmp_path}/wf.db`` (path: ``sqlite_db_path``)."""
    return server_factory(f"sqlite:///{sqlite_db_path}", name="webhookfast-sqlite")
