"""The CLI's own logic: durations, settings from options and environment, credential checks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner
from webhookfast import cli
from webhookfast.dirlock import DirLock, DirLocked, is_locked
from webhookfast.storage import describe_url


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("45m", 2700),
        ("12h", 43200),
        ("30d", 2592000),
        ("2w", 1209600),
        ("1h30m", 5400),
        ("1y", 31536000),
        ("1500ms", 1),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert cli.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "1.5h", "-1d", "30 days", "500ms", "101y", "9" * 4000 + "d"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(click.BadParameter):
        cli.parse_duration(text)


def test_cli_and_api_share_one_duration_parser() -> None:
    """`prune --older-than 1h30m` means what `since=1h30m` means in the history API."""
    from webhookfast.history.params import parse_time_us

    now = 10**15
    assert now - parse_time_us("1h30m", now) == cli.parse_duration("1h30m") * 1_000_000


def test_options_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOKFAST_PORT", "9999")
    monkeypatch.setenv("WEBHOOKFAST_WORKERS", "3")
    monkeypatch.setenv("WEBHOOKFAST_STATS_CACHE_S", "30")
    settings = cli._settings(port=8081, workers=None, stats_cache_s=0.0)
    assert (settings.port, settings.workers, settings.stats_cache_s) == (8081, 3, 0.0)
    # What the workers rebuild the app from.
    assert settings.env()["WEBHOOKFAST_STATS_CACHE_S"] == "0.0"


def test_bad_settings_are_usage_errors() -> None:
    with pytest.raises(click.UsageError, match="database_url"):
        cli._settings(database_url="mysql://x")


def test_serve_refuses_non_ascii_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOKFAST_BEARER_TOKEN", "sécret")
    result = CliRunner().invoke(cli.main, ["serve", "--no-migrate-on-start"])
    assert result.exit_code == 2
    assert "printable ASCII" in result.output
    assert "sécret" not in result.output


def test_migrate_and_prune_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    runner = CliRunner()
    assert runner.invoke(cli.main, ["migrate", "--database-url", url]).exit_code == 0
    result = runner.invoke(cli.main, ["prune", "--database-url", url, "--older-than", "30d"])
    assert result.exit_code == 0, result.output
    assert "deleted 0 rows" in result.output


def test_stale_metrics_dirs_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_metrics_base", lambda: tmp_path)
    temp = tmp_path / "tmp"  # where older versions (or a /dev/shm short of room) made them
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    old = time.time() - 3600
    dead_in_temp = temp / "webhookfast-metrics-999999998-abc"
    dead_in_temp.mkdir()
    os.utime(dead_in_temp, (old, old))
    dead = tmp_path / "webhookfast-metrics-999999999-abc"  # never locked: its server died
    live = tmp_path / "webhookfast-metrics-1-abc"
    young = tmp_path / "webhookfast-metrics-2-abc"  # a server that has not locked it yet
    for d in (dead, live, young):
        d.mkdir()
    for d in (dead, live):
        os.utime(d, (old, old))
    holder = _hold_lock(live)
    try:
        fresh, lock = cli._metrics_dir()
        try:
            assert not dead.exists()
            assert not dead_in_temp.exists()
            assert live.exists()
            assert young.exists()
            assert Path(fresh).name.startswith(f"webhookfast-metrics-{os.getpid()}-")
            assert is_locked(fresh)
        finally:
            lock.release()
        assert not is_locked(fresh)
    finally:
        holder.kill()
        holder.wait()
    assert not is_locked(live)  # kill -9 releases it


def test_mount_type_is_the_longest_mount_that_holds_the_path(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw,relatime 0 0\n"
        "tmpfs /dev/shm tmpfs rw 0 0\n"
        "tmpfs /srv/with\\040space tmpfs rw 0 0\n"
        "/dev/vdb /srv ext4 rw 0 0\n"
    )
    assert cli._mount_type("/dev/shm", str(mounts)) == "tmpfs"
    assert cli._mount_type("/dev/shm/x/y", str(mounts)) == "tmpfs"
    assert cli._mount_type("/dev/shmem", str(mounts)) == "ext4"  # a prefix of the name is not inside
    assert cli._mount_type("/srv/with space/m", str(mounts)) == "tmpfs"
    assert cli._mount_type("/srv/data", str(mounts)) == "ext4"
    assert cli._mount_type("/", str(mounts)) == "ext4"
    assert cli._mount_type("/x", str(tmp_path / "missing")) is None


def test_metric_files_go_to_memory_when_there_is_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = tmp_path / "shm"
    memory.mkdir()
    monkeypatch.setattr(cli, "_MEMORY_DIRS", (str(tmp_path / "absent"), str(memory)))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "disk"))
    kinds = {str(memory): "tmpfs"}
    monkeypatch.setattr(cli, "_mount_type", lambda path: kinds.get(path, "ext4"))
    assert cli._metrics_base() == memory
    # Too little room (a container's 64 MB /dev/shm, mostly used): a full tmpfs would be a SIGBUS.
    monkeypatch.setattr("shutil.disk_usage", lambda path: SimpleNamespace(free=cli._MEMORY_DIR_MIN_FREE - 1))
    assert cli._metrics_base() == tmp_path / "disk"
    monkeypatch.undo()
    monkeypatch.setattr(cli, "_MEMORY_DIRS", (str(memory),))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "disk"))
    monkeypatch.setattr(cli, "_mount_type", lambda path: "ext4")  # on a disk: no better than the temp dir
    assert cli._metrics_base() == tmp_path / "disk"


@pytest.mark.skipif(cli._metrics_base() != Path("/dev/shm"), reason="no tmpfs with room at /dev/shm here")
def test_a_served_worker_keeps_its_metric_files_in_memory(tmp_path: Path) -> None:
    fresh, lock = cli._metrics_dir()
    try:
        assert Path(fresh).parent == Path("/dev/shm")
    finally:
        lock.release()
        shutil.rmtree(fresh, ignore_errors=True)


def _hold_lock(directory: Path) -> subprocess.Popen[str]:
    """Another process that holds ``directory``'s lock until killed."""
    code = "import sys, time; from webhookfast.dirlock import DirLock; DirLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_dir_lock_is_exclusive(tmp_path: Path) -> None:
    holder = _hold_lock(tmp_path)
    try:
        assert is_locked(tmp_path)
        with pytest.raises(DirLocked):
            DirLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with DirLock(tmp_path):
        assert is_locked(tmp_path)
    assert not is_locked(tmp_path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://x.db", "use sqlite:///relative/path.db or sqlite:////absolute/path.db"),
        ("sqlite:///", "use sqlite:///"),
        ("sqlite:///x.db?mode=ro", "use sqlite:///"),
        ("sqlite:///:memory:", "use sqlite:///"),
        ("sqlite:///{tmp}/missing/x.db", "/missing' does not exist"),
        ("postgresql://u@h/db?sslmode=a=b", "bad PostgreSQL URL"),
    ],
)
@pytest.mark.parametrize("command", [["serve", "--no-migrate-on-start"], ["migrate"], ["prune", "--older-than", "1d"]])
def test_bad_database_urls_are_one_line_errors(tmp_path: Path, url: str, message: str, command: list[str]) -> None:
    url = url.replace("{tmp}", str(tmp_path))
    result = CliRunner().invoke(cli.main, [*command, "--database-url", url])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "missing").exists()  # no folder made up on the way


def test_describe_url_names_the_store_without_password(tmp_path: Path) -> None:
    assert describe_url(f"sqlite:///{tmp_path}/h.db") == f"SQLite file {tmp_path}/h.db"
    described = describe_url("postgresql://alice:s3cret@db.example:6543/history")
    assert described == "PostgreSQL database history on db.example:6543"


def test_serve_refuses_a_taken_port(tmp_path: Path) -> None:
    """Granian listens with SO_REUSEPORT; so does this stand-in. A second server must not share it."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "webhookfast",
                "serve",
                "--port",
                str(port),
                "--database-url",
                f"sqlite:///{tmp_path}/p.db",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"Error: cannot listen on 127.0.0.1:{port}: address already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "p.db").exists()  # refused before migrating anything


def test_cli_does_not_import_prometheus_client() -> None:
    """prometheus-client fixes its value class at import: imported in the parent before
    PROMETHEUS_MULTIPROC_DIR is set, forked workers would keep metrics in private memory and
    /metrics would come back empty."""

    code = "import sys, webhookfast.cli; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
