"""What real senders produce passes with the default settings (issue 13): a 4xx is never retried by
Alertmanager or Prometheus, so a default limit that refuses a real alert loses it for good."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import psycopg
import pytest
from support.net import request, wait_until
from support.servers import ServerFactory, ServerProcess
from support.sqlite import query

JSON = {"Content-Type": "application/json"}


def storm(n: int) -> bytes:
    """One Alertmanager notification (``max_alerts: 0``) of ``n`` alerts of a typical shape."""
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": "NodeDown",
                "instance": f"node-{i:05d}.example.internal:9100",
                "job": "node",
                "severity": "critical",
                "cluster": "eu-west-1",
                "team": "infrastructure",
            },
            "annotations": {
                "summary": f"node-{i:05d} is down",
                "description": "The node exporter has not been scraped for 5 minutes.",
                "runbook_url": "https://runbooks.example.internal/NodeDown",
            },
            "startsAt": "2026-11-27T10:00:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.internal:9090/graph?g0.expr=up+%3D%3D+0",
            "fingerprint": "0000000000000000",
        }
        for i in range(n)
    ]
    return orjson.dumps(
        {
            "version": "4",
            "groupKey": '{}:{alertname="NodeDown"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "webhookfast",
            "groupLabels": {"alertname": "NodeDown"},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": alerts,
        }
    )


def stored_alerts(server: ServerProcess, url: str, db: Path) -> int:
    if url.startswith("sqlite"):
        return int(query(db, "SELECT count(*) FROM alerts")[0][0])
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM alerts").fetchone()[0])  # type: ignore[index]


def annotation_lengths(url: str, db: Path) -> list[int]:
    sql = "SELECT annotations FROM alert_events"
    if url.startswith("sqlite"):
        return [len(v) for (a,) in query(db, sql) for v in json.loads(a).values()]
    with psycopg.connect(url) as conn:
        return [len(v) for (a,) in conn.execute(sql).fetchall() for v in a.values()]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path}/limits.db"


def test_a_50000_alert_notification_is_stored_by_default(
    server_factory: ServerFactory, store_url: str, tmp_path: Path
) -> None:
    server = server_factory(store_url)
    body = storm(50_000)
    assert len(body) > 16 * 1024 * 1024  # over the old body cap, and over the old 10,000 alerts
    resp = request(server.url + "/webhook", "POST", body, JSON, timeout=60)
    assert resp.status == 200, resp.text
    answer = resp.json()
    assert answer["alerts"] == 50_000
    # PostgreSQL may take longer than WEBHOOKFAST_SPOOL_AFTER_S for 50,000 rows: then it is spooled.
    assert answer["status"] in ({"stored"} if store_url.startswith("sqlite") else {"stored", "spooled"})
    wait_until(lambda: stored_alerts(server, store_url, tmp_path / "limits.db") == 50_000, 60)


def test_a_1_mb_annotation_and_a_76_kb_label_value_are_stored_by_default(
    server_factory: ServerFactory, store_url: str, tmp_path: Path
) -> None:
    server = server_factory(store_url)
    alert = {
        "labels": {"alertname": "Huge", "query": "q" * 76_000},
        "annotations": {"description": "d" * 1_000_000},
        "startsAt": "2026-11-27T10:00:00Z",
    }
    resp = request(server.url + "/api/v2/alerts", "POST", orjson.dumps([alert]), JSON, timeout=30)
    assert resp.status == 200, resp.text
    assert resp.json()["status"] == "stored"
    assert annotation_lengths(store_url, tmp_path / "limits.db") == [1_000_000]


def test_the_limits_are_still_there_for_those_who_want_them(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory(env={"WEBHOOKFAST_MAX_ALERTS": "10", "WEBHOOKFAST_MAX_VALUE_BYTES": "100"})
    resp = request(server.url + "/webhook", "POST", storm(11), JSON)
    assert (resp.status, resp.json()["error"]["code"]) == (422, "too_many_alerts")
    long_value = orjson.dumps({"labels": {"alertname": "x" * 101}})
    resp = request(server.url + "/webhook", "POST", long_value, JSON)
    assert (resp.status, resp.json()["error"]["code"]) == (422, "value_too_long")
