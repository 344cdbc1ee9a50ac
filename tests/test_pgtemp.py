"""scripts/load/pgtemp.py: the throw-away cluster of the load runs, warmed so that its WAL segments
are recycled as a database in service recycles them (not zero-filled while commits wait)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "load"))

from pgtemp import TempPostgres, find_pg_bin  # noqa: E402

pytestmark = pytest.mark.skipif(find_pg_bin() is None, reason="no PostgreSQL server binaries")


@pytest.mark.parametrize("warm_mb", [0, 64])
def test_a_warmed_cluster_holds_its_segments_for_reuse(warm_mb: int) -> None:
    pg = TempPostgres(warm_wal_mb=warm_mb)
    try:
        pg.start()
        if warm_mb:
            # 64 MB is four 16-MB segments; the checkpoint keeps them (renamed ahead) instead of removing them.
            assert pg.wal_segments() >= 4
        else:
            assert pg.wal_segments() <= 2  # fresh from initdb: the next segment will be created, zero-filled
        base = pg.base
    finally:
        pg.stop()
    assert not base.exists()
