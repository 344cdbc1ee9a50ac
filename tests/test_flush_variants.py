"""scripts/load/flush_variants.py: the load runs' experiment that makes webhookfast's flush write
less (``run.py --pg-flush-only``). Each variant must write exactly its tables, or the ceiling it
measures is not the one its name says; and it must never touch a database that is not a
throw-away one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support.postgres import read_tables
from support.stores import write_flushes
from webhookfast._core import decode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "load"))

import flush_variants  # noqa: E402
import run  # noqa: E402


def write_one(payloads_dir: Path, url: str) -> None:
    body = (payloads_dir / "firing_single.json").read_bytes()  # one firing alert, as Alertmanager sent it
    write_flushes(url, [decode(body, received_at_us=1_796_000_000_000_000)])


def tables_written(url: str) -> set[str]:
    return {table for table, rows in read_tables(url).items() if rows}


@pytest.mark.postgres
def test_the_shipped_flush_writes_every_table(payloads_dir: Path, pg_url: str) -> None:
    write_one(payloads_dir, pg_url)
    assert tables_written(pg_url) == {"label_sets", "alert_events", "alerts"}


@pytest.mark.postgres
@pytest.mark.parametrize(("variant", "written"), [("events", {"alert_events"}), ("commit", set())])
def test_a_variant_writes_only_its_tables(payloads_dir: Path, pg_url: str, variant: str, written: set[str]) -> None:
    flush_variants.apply(pg_url, variant)
    write_one(payloads_dir, pg_url)
    assert tables_written(pg_url) == written


def test_every_webhookfast_row_of_the_experiment_says_so() -> None:
    args = run.parse_args(["--postgres-temp", "--pg-flush-only", "events"])
    runner = run.Runner(args, tools=None, wf=None, bare=None, sets={})  # type: ignore[arg-type]
    wf = runner.add(run.Row("max", "webhookfast", 1, "unique/10", 100.0, 1.0, 2.0, 3.0, 0, 60.0, note="wrk"))
    bare = runner.add(run.Row("max", "bare", 1, "unique/10", 100.0, 1.0, 2.0, 3.0, 0, 30.0, note="wrk"))
    assert wf.note == "EXPERIMENT: --pg-flush-only events; wrk"
    assert bare.note == "wrk"


def test_the_experiment_refuses_a_database_that_is_not_throw_away() -> None:
    with pytest.raises(SystemExit):
        run.parse_args(["--database-url", "postgresql://db.example/alerts", "--pg-flush-only", "events"])
    assert run.parse_args(["--postgres-temp", "--pg-flush-only", "commit"]).pg_flush_only == "commit"
