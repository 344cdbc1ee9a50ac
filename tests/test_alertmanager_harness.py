"""Checks of the Alertmanager test harness itself, against a tiny stdlib receiver (no webhookfast).

They pin down what the end-to-end tests rely on: the config is accepted, alerts arrive grouped by
alertname, resolved alerts arrive with send_resolved, Alertmanager's fingerprints match ours, the
bearer token is sent, and /metrics tells when the notifications are done.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support.alertmanager import parse_metrics, prometheus_fingerprint, rfc3339
from support.net import wait_until

pytestmark = pytest.mark.alertmanager


class Receiver:
    """Records every webhook request; answers ``status`` (200 unless told otherwise)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                    status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhook"

    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def make_alerts(names: int, instances: int, starts: datetime, ends: datetime | None = None) -> list[dict[str, Any]]:
    alerts = []
    for n in range(names):
        for i in range(instances):
            alert: dict[str, Any] = {
                "labels": {"alertname": f"Harness{n}", "instance": f"hôte-{i}", "severity": "warning"},
                "annotations": {"summary": f"harness {n}/{i}"},
                "startsAt": rfc3339(starts),
                "generatorURL": "http://prometheus.invalid/graph",
            }
            if ends is not None:
                alert["endsAt"] = rfc3339(ends)
            alerts.append(alert)
    return alerts


def test_parse_metrics() -> None:
    text = (
        "# HELP x y\n"
        'alertmanager_notifications_total{integration="webhook"} 3\n'
        'alertmanager_notifications_failed_total{integration="webhook",reason="other"} 1\n'
        "go_goroutines 12\n"
    )
    assert parse_metrics(text) == [
        ("alertmanager_notifications_total", {"integration": "webhook"}, 3.0),
        ("alertmanager_notifications_failed_total", {"integration": "webhook", "reason": "other"}, 1.0),
        ("go_goroutines", {}, 12.0),
    ]


def test_reference_fingerprint() -> None:
    # The examples of shared/alertmanager-facts.md.
    assert prometheus_fingerprint({"alertname": "Alert1"}) == "0f8c8eae06af0c03"
    labels = {"alertname": "HighCPU", "instance": "server-1", "job": "node-exporter", "severity": "warning"}
    assert prometheus_fingerprint(labels) == "47173f03a36b568e"
    assert prometheus_fingerprint({}) == "cbf29ce484222325"


def test_delivers_firing_then_resolved_grouped(receiver: Receiver, alertmanager_factory: Any) -> None:
    am = alertmanager_factory(receiver.url, bearer_token="harness-token")
    starts = datetime.now(timezone.utc) - timedelta(minutes=5)
    am.post_alerts(make_alerts(3, 4, starts))
    stats = am.wait_notifications(3)
    assert stats["notifications_failed"] == 0 and stats["requests_failed"] == 0

    firing = receiver.payloads()
    assert {p["groupLabels"]["alertname"] for p in firing} == {"Harness0", "Harness1", "Harness2"}
    assert all(p["status"] == "firing" and p["version"] == "4" for p in firing)
    assert all(r["headers"].get("Authorization") == "Bearer harness-token" for r in receiver.requests)
    sent = {a["fingerprint"] for p in firing for a in p["alerts"]}
    assert len(sent) == 12

    # Alertmanager's own fingerprints (GET /api/v2/alerts) are the ones it sends, and Prometheus'.
    listed = am.alerts()
    assert {a["fingerprint"] for a in listed} == sent
    for a in listed:
        assert prometheus_fingerprint(a["labels"]) == a["fingerprint"]

    am.post_alerts(make_alerts(3, 4, starts, ends=datetime.now(timezone.utc) - timedelta(seconds=1)))
    stats = am.wait_notifications(6)
    assert stats["notifications_failed"] == 0
    resolved = receiver.payloads()[len(firing) :]
    assert {a["fingerprint"] for p in resolved for a in p["alerts"] if a["status"] == "resolved"} == sent
    assert am.alerts() == []  # resolved alerts are no longer listed


def test_failures_are_counted(receiver: Receiver, alertmanager_factory: Any) -> None:
    receiver.status = 500
    am = alertmanager_factory(receiver.url)
    am.post_alerts(make_alerts(1, 1, datetime.now(timezone.utc)))
    # A 5xx is retried within the notification until max(group_interval, 10 s), then the
    # notification counts as failed.
    wait_until(
        lambda: am.notification_stats()["notifications_failed"] >= 1,
        timeout=40,
        interval=0.5,
        message=lambda: f"no failed notification counted: {am.notification_stats()}",
    )
    stats = am.notification_stats()
    assert stats["requests_failed"] >= 2  # retried at least once
    assert len(receiver.requests) >= 2
