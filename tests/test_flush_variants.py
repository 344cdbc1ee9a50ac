"""scripts/load/flush_variants.py: the load runs' experiment that makes webhookfast's flush write
less, or later (``run.py --pg-flush-only``). Each variant must write exactly its tables, or the
ceiling it measures is not the one its name says; the journal, once folded, must hold exactly
what the shipped flush stores; and no variant may touch a database that is not a throw-away one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psycopg
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
@pytest.mark.parametrize(
    ("variant", "written"),
    [
        ("events", {"alert_events"}),
        ("events_wide", {"alert_events"}),
        ("instances", {"alerts"}),
        ("instances_keyed", {"alerts"}),
        ("instances_nogin", {"alerts"}),
        ("commit", set()),
    ],
)
def test_a_variant_writes_only_its_tables(payloads_dir: Path, pg_url: str, variant: str, written: set[str]) -> None:
    flush_variants.apply(pg_url, variant)
    write_one(payloads_dir, pg_url)
    assert tables_written(pg_url) == written


@pytest.mark.postgres
def test_the_wide_events_carry_their_alerts_labels(payloads_dir: Path, pg_url: str) -> None:
    flush_variants.apply(pg_url, "events_wide")
    body = (payloads_dir / "firing_largest.json").read_bytes()  # 40 alerts, as Alertmanager sent them
    write_flushes(pg_url, [decode(body, received_at_us=1_796_000_000_000_000)])
    events = read_tables(pg_url)["alert_events"]
    assert all(e["alertname"] == e["labels"]["alertname"] for e in events)  # type: ignore[index]
    labels = sorted(json.dumps(e["labels"], sort_keys=True) for e in events)
    sent = sorted(json.dumps(a["labels"], sort_keys=True) for a in json.loads(body)["alerts"])
    assert labels == sent and len(sent) == 40


def write_history(payloads_dir: Path, url: str) -> None:
    """Flushes that exercise every table and their order: a group firing, then part of it resolved."""
    t = 1_796_000_000_000_000
    write_flushes(
        url,
        [decode((payloads_dir / "prometheus_firing.json").read_bytes(), received_at_us=t)],
        [decode((payloads_dir / "prometheus_resolved.json").read_bytes(), received_at_us=t + 60_000_000)],
        [decode((payloads_dir / "resolved_group.json").read_bytes(), received_at_us=t + 120_000_000)],
    )


def clear_history(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE label_sets, alert_events, alerts, notification_groups")


@pytest.mark.postgres
def test_the_instances_hold_what_the_shipped_tables_hold(payloads_dir: Path, pg_url: str) -> None:
    def write(url: str) -> None:
        # Instances still firing (40 Alertmanager alerts; a firing and a resolved one in one
        # body), then the history of write_history, which ends resolved.
        t = 1_796_000_000_000_000
        write_flushes(
            url,
            [
                decode((payloads_dir / name).read_bytes(), received_at_us=t)
                for name in ("firing_largest.json", "handwritten_minimal_v4.json")
            ],
        )
        write_history(payloads_dir, url)

    write(pg_url)
    shipped = read_tables(pg_url)
    clear_history(pg_url)

    flush_variants.apply(pg_url, "instances")
    write(pg_url)
    instances = read_tables(pg_url)["alerts"]
    assert len(instances) == len(shipped["alerts"]) > 1
    label_sets = {row["fingerprint"]: row for row in shipped["label_sets"]}
    events = {(e["fingerprint"], e["starts_at"], e["status"]): e for e in shipped["alert_events"]}
    fired = resolved = 0
    for alert, row in zip(shipped["alerts"], instances, strict=True):
        assert {k: row[k] for k in alert} == alert  # the counts, as the shipped upsert keeps them
        label_set = label_sets[alert["fingerprint"]]
        assert (row["labels"], row["alertname"], row["severity"]) == (
            label_set["labels"],
            label_set["alertname"],
            label_set["severity"],
        )
        firing = events.get((alert["fingerprint"], alert["starts_at"], "firing"))
        ended = events.get((alert["fingerprint"], alert["starts_at"], "resolved"))
        assert row["fired_at"] == (firing["received_at"] if firing else None)
        assert row["resolved_at"] == (ended["received_at"] if ended else None)
        assert row["annotations"] == (ended or firing or {}).get("annotations")
        fired += firing is not None
        resolved += ended is not None
    assert fired > 0 and resolved > 0  # both events' columns were compared


HISTORY_INDEXES = {"alerts_starts_at", "alerts_last_seen", "alerts_status", "alerts_resolved_ends_at"}


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("variant", "dropped"),
    [("instances", set()), ("instances_keyed", HISTORY_INDEXES), ("instances_nogin", {"label_sets_labels"})],
)
def test_an_instances_variant_keeps_the_indexes_its_name_says(pg_url: str, variant: str, dropped: set[str]) -> None:
    flush_variants.apply(pg_url, variant)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'alerts'").fetchall()
    every = {"alerts_pkey", "alerts_alertname", "label_sets_labels", *HISTORY_INDEXES}
    assert {name for (name,) in rows} == every - dropped


@pytest.mark.postgres
def test_the_journal_stores_what_the_shipped_flush_stores_once_folded(payloads_dir: Path, pg_url: str) -> None:
    write_history(payloads_dir, pg_url)
    shipped = read_tables(pg_url)
    assert all(shipped.values())
    clear_history(pg_url)

    flush_variants.apply(pg_url, "journal")
    write_history(payloads_dir, pg_url)
    assert tables_written(pg_url) == set()  # acknowledged, in the journal only
    folder = flush_variants.Folder(pg_url, idle_s=0.005)
    assert folder.pending() > 0
    folder.start()
    try:
        note = folder.drain(timeout_s=60)
    finally:
        folder.stop()
    assert folder.pending() == 0
    assert note.startswith("journal: ") and "alerts not yet folded at the end" in note
    assert read_tables(pg_url) == shipped


@pytest.mark.postgres
def test_a_failing_fold_is_reported_not_waited_for(pg_url: str) -> None:
    flush_variants.apply(pg_url, "journal")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION webhookfast_apply")
        conn.execute("INSERT INTO flush_journal (e_fingerprint) VALUES ('{1}')")
    folder = flush_variants.Folder(pg_url).start()
    try:
        with pytest.raises(RuntimeError, match="folder failed"):
            folder.drain(timeout_s=60)
    finally:
        folder.stop()


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
    assert run.parse_args(["--postgres-temp", "--pg-flush-only", "journal"]).pg_flush_only == "journal"
    assert run.parse_args(["--postgres-temp", "--pg-flush-only", "instances"]).pg_flush_only == "instances"
