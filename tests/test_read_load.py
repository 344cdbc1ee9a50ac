"""The read load of ``scripts/load/run.py --scenarios reads`` (scripts/load/read_load.py) against a
real server: every request of its mix must be a valid, answered history query, or the ingest-beside-
reads measurement would measure error pages."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from support.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "load"))

from read_load import ReadLoad, read_paths  # noqa: E402

pytestmark = pytest.mark.timeout(120)

FIXTURES = ROOT / "tests" / "fixtures" / "payloads"


def test_every_read_of_the_mix_answers_200(tmp_path: Path) -> None:
    with ServerProcess(f"sqlite:///{tmp_path}/wf.db", tmp_path / "logs", name="webhookfast-reads") as server:
        for name in ("firing_largest.json", "firing_single.json"):
            resp = server.post("/webhook", (FIXTURES / name).read_bytes(), {"Content-Type": "application/json"})
            assert resp.status == 200, resp
        paths = read_paths(server.port)
        assert any(p.startswith("/api/v1/alerts/") for p in paths)
        load = ReadLoad(server.port, paths, 0).start()
        deadline = time.monotonic() + 30
        while load.stats.requests < 2 * len(paths) and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = load.stop()
    assert stats.requests >= 2 * len(paths)
    assert stats.errors == 0


def test_paced_read_load_keeps_its_rate(tmp_path: Path) -> None:
    with ServerProcess(f"sqlite:///{tmp_path}/wf.db", tmp_path / "logs", name="webhookfast-reads") as server:
        paths = read_paths(server.port)
        load = ReadLoad(server.port, ["/api/v1/alerts", "/api/v1/stats"], 20).start()
        time.sleep(1.5)
        stats = load.stop()
    assert paths and not any(p.startswith("/api/v1/alerts/") for p in paths)  # an empty store
    # 20/s for 1.5 s: the first request goes at once, then one every 50 ms. Never ahead of the
    # schedule (the upper bound); behind it only if the server is slow (a loose lower bound).
    assert 10 <= stats.requests <= 32
    assert stats.errors == 0
