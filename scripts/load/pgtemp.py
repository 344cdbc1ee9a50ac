"""A throw-away PostgreSQL cluster for load runs (``run.py --postgres-temp``, ``pg_reference.py
--postgres-temp``): initdb in a temp dir, a free 127.0.0.1 port, trust auth, fsync on (durable
ingest is what is measured). Under root the cluster belongs to the ``postgres`` system user (the
server refuses to run as root). ``stop()`` removes everything; use it in ``finally``.

``warm_wal_mb``: a cluster fresh from initdb has no WAL segment to recycle, so each 16 MB of WAL
starts with a new segment file zero-filled and synced while commits wait: ~50 ms in which no commit
of any connection returns, every ~4.5 s at 2,000 one-alert requests/s on this machine (measured:
the stalls fell on the seconds a segment appeared in ``pg_wal``). A database in service recycles
the segments its checkpoints free instead. The warm-up writes that much WAL and checkpoints, so
that the load runs on recycled segments as such a database does (up to ``max_wal_size``, raised
to twice the warm-up).
"""

from __future__ import annotations

import argparse
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


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the scripts that can start a throw-away cluster (``--postgres-temp``)."""
    p.add_argument("--postgres-temp", action="store_true", help="start a throw-away PostgreSQL cluster")
    p.add_argument(
        "--pg-no-fsync",
        action="store_true",
        help="with --postgres-temp: fsync=off (CPU-bound ceiling; not durable, never the published figure)",
    )
    p.add_argument(
        "--pg-warm-wal",
        type=int,
        default=1024,
        metavar="MB",
        help="with --postgres-temp: write this much WAL and checkpoint before measuring, so that the runs "
        "reuse recycled WAL segments as a database in service does (0: a cluster fresh from initdb, which "
        "zero-fills a new 16 MB segment while every commit waits; see pgtemp.py)",
    )


def start_from_args(a: argparse.Namespace) -> TempPostgres:
    """The cluster that ``add_arguments``' options ask for, started."""
    return TempPostgres(fsync=not a.pg_no_fsync, warm_wal_mb=a.pg_warm_wal).start()


class TempPostgres:
    def __init__(self, fsync: bool = True, warm_wal_mb: int = 0) -> None:
        self.fsync = fsync
        self.warm_wal_mb = warm_wal_mb
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
        if self.warm_wal_mb:
            opts += f" -c max_wal_size={max(1024, 2 * self.warm_wal_mb)}MB"
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
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("temporary PostgreSQL did not accept connections")
        if self.warm_wal_mb:
            self.warm_wal()
        return self

    def warm_wal(self) -> None:
        """Write ``warm_wal_mb`` of WAL and checkpoint: the segments before the checkpoint are renamed
        ahead for reuse."""
        rows = self.warm_wal_mb * 1000  # a ~1 kB row logs ~1 kB
        self._run(
            str(self.bindir / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            f"CREATE TABLE wal_warmup AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, {rows}) g",
            "-c",
            "DROP TABLE wal_warmup",
            "-c",
            "CHECKPOINT",
        )

    def wal_segments(self) -> int:
        """The WAL segment files in pg_wal: the one in use and those ready for reuse."""
        return len([f for f in os.listdir(self.data / "pg_wal") if f[:1].isdigit()])

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
