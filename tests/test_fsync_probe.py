"""scripts/load/fsync_probe.py: the disk's own sync latency that run.py prints beside its p99s."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "load"))

from fsync_probe import main, probe  # noqa: E402


def test_the_probe_syncs_for_its_time_and_leaves_no_file(tmp_path: Path) -> None:
    result = probe(tmp_path, 0.3, interval_s=0.01)
    # One sync per 10 ms at most, and at least the first even on a disk slower than the window.
    assert 1 <= result.syncs <= 31
    assert 0 < result.p50_ms <= result.p99_ms <= result.p999_ms <= result.max_ms
    assert 0 <= result.over_10ms <= result.syncs
    assert list(tmp_path.iterdir()) == []


def test_one_sync_even_when_the_time_is_already_over(tmp_path: Path) -> None:
    result = probe(tmp_path, 0.0)
    assert result.syncs == 1
    assert result.p50_ms == result.max_ms


def test_the_command_prints_its_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dir", str(tmp_path), "-d", "0.05"]) == 0
    out = capsys.readouterr().out
    assert f"every 10 ms in {tmp_path}:" in out
    assert "syncs: p50" in out and "over 10 ms" in out
    assert list(tmp_path.iterdir()) == []
