"""Checks of the ``webhookfast serve`` subprocess harness (tests/support/servers.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from support.net import wait_until
from support.servers import ServerProcess, ServerStartError


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the command name "(…)": state ppid pgrp …
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def test_sqlite_server_is_healthy(sqlite_server: ServerProcess, sqlite_db_path: Path) -> None:
    assert sqlite_server.get("/healthz").status == 200
    assert sqlite_server.is_running()
    assert sqlite_db_path.exists()


def test_sigterm_exits_zero_and_kill_reaches_workers(server_factory: Any) -> None:
    graceful = server_factory(workers=2)
    assert graceful.stop(signal.SIGTERM) == 0
    assert group_members(graceful.proc.pid) == []

    crashed = server_factory(workers=2)
    pgid = crashed.pid
    assert crashed.kill() == -signal.SIGKILL
    wait_until(lambda: group_members(pgid) == [], timeout=5, message="workers outlived SIGKILL")


def test_start_failure_shows_the_log(tmp_path: Path) -> None:
    server = ServerProcess("mysql://nope", tmp_path, health_timeout=20)
    with pytest.raises(ServerStartError) as err:
        server.start()
    assert "exited with" in str(err.value)
    assert not server.is_running()
