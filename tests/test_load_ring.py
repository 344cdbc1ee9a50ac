"""scripts/load/run.py's ring of distinct bodies (``--ring-mb``): as many bodies as the size
allows, none sent twice within the ring, so that a run that does not wrap it writes only new alerts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "load"))

import run  # noqa: E402


def test_the_ring_holds_as_many_distinct_bodies_as_its_size_allows(tmp_path: Path) -> None:
    ring = run.make_payloads(tmp_path, 10, True, 1_000, ring_mb=1)
    bodies = ring.lines_file.read_bytes().splitlines()
    assert ring.count == len(bodies) == 1024 * 1024 // ring.bytes_each
    assert len(set(bodies)) == len(bodies)


def test_the_ring_size_is_bounded() -> None:
    assert run.parse_args(["--ring-mb", "576"]).ring_mb == 576
    for bad in ("0", "5000"):
        with pytest.raises(SystemExit):
            run.parse_args(["--ring-mb", bad])
