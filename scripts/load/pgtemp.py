"""A throw-away PostgreSQL cluster for load runs (``run.py --postgres-temp``, ``pg_reference.py
--postgres-temp``): initdb in a temp dir, a free 127.0.0.1 port, trust auth, fsync on (durable
ingest is what is measured). Under root the cluster belongs to the ``postgres`` system user (the
server refuses to run as root). ``stop()`` removes everything; use it in ``finally``.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_pg_bin() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    dirs = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.access(os.path.join(d, "pg_ctl"), os.X_OK)]
    if not dirs:
        return None

    def version(d: str) -> tuple[int, ...]:
        m = re.search(r"/postgresql/([0-9.]+)/bin", d)
        return tuple(int(p) for p in m.group(1).split(".") if p) if m else (0,)

    return Path(max(dirs, key=version))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    def __init__(self, fsync: bool = True) -> None:
        self.fsync = fsync
        bindir = find_pg_bin()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries: apt-get install -y postgresql")
        self.bindir = bindir
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="webhookfast-load-pg-"))
        self.data = self.base / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
                user = pwd.getpwnam("postgres")
            os.chown(self.base, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.started = False

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.prefix, *argv], check=True, capture_output=True, text=True)

    def start(self) -> TempPostgres:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.base} "
            f"-c fsync={'on' if self.fsync else 'off'} -c synchronous_commit={'on' if self.fsync else 'off'} "
            "-c shared_buffers=256MB -c max_connections=100"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "start",
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.base / "server.log"),
            "-o",
            opts,
        )
        self.started = True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("temporary PostgreSQL did not accept connections")

    def stop(self) -> None:
        try:
            if self.started:
                self._run(
                    str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30"
                )
        except subprocess.CalledProcessError:
            pass
        finally:
            self.started = False
            shutil.rmtree(self.base, ignore_errors=True)
