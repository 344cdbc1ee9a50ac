"""End to end: a real Alertmanager delivers real webhooks to a real ``webhookfast serve`` subprocess.

200 alerts (10 alert names × 20 instances, Unicode in label values and annotations) are posted to
Debian's ``prometheus-alertmanager``, which groups them by alertname and notifies webhookfast over a
real socket: first firing, then resolved (the same alerts posted again with ``endsAt`` in the past).
Then, read straight from the database (SQLite opened read-only, or PostgreSQL through psycopg):

- every alert is stored under the fingerprint Alertmanager computed (``GET /api/v2/alerts``), with
  its labels;
- each has exactly one firing and one resolved event, with the times Alertmanager sent;
- its current state is resolved;
- Alertmanager counted no failed notification, and the server exits 0 on SIGTERM.

Run for each store and with a bearer token configured on both sides.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from support.alertmanager import rfc3339
from support.servers import ServerProcess

pytestmark = [pytest.mark.alertmanager, pytest.mark.timeout(240)]

ALERTNAMES = 10
INSTANCES = 20
RECEIVER = "webhookfast"
# Token68 characters, as a generated token would have. (A non-ASCII token cannot work: Alertmanager
# sends its UTF-8 bytes, and Granian hides a header value that is not visible ASCII.)
TOKEN = "e2e-Token_42.~+/="
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

ALERTNAME_WORDS = [
    "Température élevée",
    "DiskFull",
    "Задержка репликации",
    "磁盘空间不足",
    "HighLatency <p99> & co",
    'Ωmega "quoted" \\ backslash',
    "ErrorBudgetBurn",
    "रिसाव",
    "emoji 🔥 alert",
    "Tab\tand newline\nin a name",
]


def us(ts: datetime) -> int:
    """Microseconds since the Unix epoch, without float rounding."""
    return (ts - EPOCH) // timedelta(microseconds=1)


def alert_specs(starts: datetime, ends: datetime | None = None) -> list[dict[str, Any]]:
    """The alerts posted to Alertmanager (the same labels and startsAt in both phases)."""
    alerts = []
    for n in range(ALERTNAMES):
        for i in range(INSTANCES):
            labels = {
                "alertname": f"{ALERTNAME_WORDS[n]} #{n}",
                "instance": f"hôte-{i:02d}.例え.example:9100",
                "job": "node-exporter",
                "severity": ["critical", "warning", "info", "page ⚠️"][(n + i) % 4],
                "team": "团队-存储" if i % 2 else "ops",
            }
            if i % 5 == 0:
                labels["zone"] = "eu-west-1a"
            alert: dict[str, Any] = {
                "labels": labels,
                "annotations": {
                    "summary": f"{labels['alertname']} on {labels['instance']}",
                    "description": "Value is 95.90% (threshold 90%).\nSecond line — «quoted» <b>&amp;</b> ✅",
                },
                "startsAt": rfc3339(starts),
                "generatorURL": f"http://prometheus.example.invalid:9090/graph?g0.expr=up%7Bi%3D%22{i}%22%7D",
            }
            if ends is not None:
                alert["endsAt"] = rfc3339(ends)
            alerts.append(alert)
    return alerts


# -- reading the store back -----------------------------------------------------------------------


@dataclass
class Stored:
    label_sets: dict[int, dict[str, Any]]  # fingerprint → {labels, alertname, severity}
    events: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


def _norm(value: Any) -> Any:
    """PostgreSQL gives datetimes and parsed jsonb; SQLite gives µs integers and JSON text."""
    if isinstance(value, datetime):
        return us(value)
    return value


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


EVENT_COLUMNS = (
    "fingerprint, starts_at, status, ends_at, received_at, receiver, group_key, source, generator_url, annotations"
)
ALERT_COLUMNS = "fingerprint, starts_at, status, ends_at, first_seen, last_seen, notifications, receiver"


def _rows_to_dicts(columns: str, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    names = [c.strip() for c in columns.split(",")]
    return [{k: _norm(v) for k, v in zip(names, row, strict=True)} for row in rows]


def read_store(database_url: str) -> Stored:
    # receiver and group_key as the history API reads them (stored once, in notification_groups).
    from webhookfast.history.sql import GROUP_KEY, RECEIVER

    events = EVENT_COLUMNS.replace(", receiver, group_key,", f", {RECEIVER}, {GROUP_KEY},").format(
        row="e", gid="group_id"
    )
    alerts = ALERT_COLUMNS.replace(", receiver", f", {RECEIVER}").format(row="a", gid="group_id")
    queries = (
        "SELECT fingerprint, labels, alertname, severity FROM label_sets",
        f"SELECT {events} FROM alert_events e",
        f"SELECT {alerts} FROM alerts a",
    )
    if database_url.startswith("sqlite:"):
        path = database_url[len("sqlite:///") :]
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            results = [conn.execute(q).fetchall() for q in queries]
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(database_url) as pg:
            results = [pg.execute(q).fetchall() for q in queries]
    label_sets = {
        fp: {"labels": _json(labels), "alertname": alertname, "severity": severity}
        for fp, labels, alertname, severity in results[0]
    }
    events = _rows_to_dicts(EVENT_COLUMNS, results[1])
    for e in events:
        e["annotations"] = _json(e["annotations"])
    return Stored(label_sets, events, _rows_to_dicts(ALERT_COLUMNS, results[2]))


# -- the test -------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/wf.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.parametrize("auth", ["no-auth", "bearer"])
def test_alertmanager_delivers_history(
    store_url: str, auth: str, server_factory: Any, alertmanager_factory: Any, payloads_dir: Path
) -> None:
    from webhookfast import _core

    server_env: dict[str, str] = {}
    am_options: dict[str, Any] = {}
    if auth == "bearer":
        server_env["WEBHOOKFAST_BEARER_TOKEN"] = TOKEN
        am_options["bearer_token"] = TOKEN
    server: ServerProcess = server_factory(store_url, env=server_env)

    if auth == "bearer":
        # The token is really required: without it nothing is accepted.
        body = (payloads_dir / "firing_single.json").read_bytes()
        assert server.post("/webhook", body).status == 401
        assert server.post("/webhook", body, {"Authorization": "Bearer wrong"}).status == 401

    am = alertmanager_factory(server.url + "/webhook", receiver=RECEIVER, **am_options)
    groups = ALERTNAMES  # group_by: [alertname]

    # Millisecond precision, as Prometheus sends; Alertmanager sends the times back unchanged.
    now = datetime.now(timezone.utc)
    starts = (now - timedelta(minutes=10)).replace(microsecond=(now.microsecond // 1000) * 1000)

    # -- firing ---------------------------------------------------------------------------------
    specs = alert_specs(starts)
    am.post_alerts(specs)
    stats = am.wait_notifications(groups)
    assert stats["notifications_failed"] == 0, stats
    assert stats["requests_failed"] == 0, stats

    listed = am.alerts()
    assert len(listed) == ALERTNAMES * INSTANCES
    am_fps = {a["fingerprint"]: a["labels"] for a in listed}
    assert len(am_fps) == ALERTNAMES * INSTANCES
    assert {json.dumps(s["labels"], sort_keys=True) for s in specs} == {
        json.dumps(labels, sort_keys=True) for labels in am_fps.values()
    }
    for fp, labels in am_fps.items():
        assert _core.fingerprint(labels) == fp, labels  # our fingerprint is Alertmanager's
    firing_notifications = stats["notifications"]

    # -- resolved -------------------------------------------------------------------------------
    ends = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
    am.post_alerts(alert_specs(starts, ends))
    stats = am.wait_notifications(firing_notifications + groups)
    assert stats["notifications_failed"] == 0, stats
    assert stats["requests_failed"] == 0, stats
    assert am.alerts() == []  # Alertmanager considers them all resolved

    am.stop()
    assert server.stop() == 0, "webhookfast serve did not exit 0 on SIGTERM"

    # -- what the store holds -------------------------------------------------------------------
    stored = read_store(store_url)
    expected = {_core.fingerprint_to_int(fp): labels for fp, labels in am_fps.items()}
    for fp_hex in am_fps:
        fp_int = _core.fingerprint_to_int(fp_hex)
        assert -(2**63) <= fp_int < 2**63
        assert _core.fingerprint_from_int(fp_int) == fp_hex

    assert set(stored.label_sets) == set(expected), "stored fingerprints differ from Alertmanager's"
    for fp_int, labels in expected.items():
        row = stored.label_sets[fp_int]
        assert row["labels"] == labels
        assert row["alertname"] == labels["alertname"]
        assert row["severity"] == labels["severity"]

    annotations = {
        _core.fingerprint_to_int(_core.fingerprint(s["labels"])): (s["annotations"], s["generatorURL"]) for s in specs
    }
    group_keys: dict[tuple[str, str], set[str]] = {}
    by_fp: dict[int, list[dict[str, Any]]] = {}
    for event in stored.events:
        by_fp.setdefault(event["fingerprint"], []).append(event)
    assert set(by_fp) == set(expected)
    for fp_int, events in by_fp.items():
        statuses = sorted(e["status"] for e in events)
        assert statuses == ["firing", "resolved"], (fp_int, events)
        firing = next(e for e in events if e["status"] == "firing")
        resolved = next(e for e in events if e["status"] == "resolved")
        for e in (firing, resolved):
            assert e["starts_at"] == us(starts)
            assert e["receiver"] == RECEIVER
            group_keys.setdefault((expected[fp_int]["alertname"], e["status"]), set()).add(e["group_key"])
            assert e["source"], e
            assert (e["annotations"], e["generator_url"]) == annotations[fp_int]
        assert firing["ends_at"] is None  # Go's zero time: not ended
        assert resolved["ends_at"] == us(ends)
        assert firing["received_at"] <= resolved["received_at"]
    # One group per alertname (group_by: [alertname]), with Alertmanager's group key on every event.
    assert len(group_keys) == 2 * ALERTNAMES
    assert all(len(keys) == 1 and next(iter(keys)) for keys in group_keys.values()), group_keys
    assert len({k for keys in group_keys.values() for k in keys}) == ALERTNAMES

    assert len(stored.alerts) == len(expected)
    for row in stored.alerts:
        assert row["fingerprint"] in expected
        assert row["starts_at"] == us(starts)
        assert row["status"] == "resolved"
        assert row["ends_at"] == us(ends)
        assert row["receiver"] == RECEIVER
        assert row["notifications"] >= 2
        assert row["first_seen"] <= row["last_seen"]
