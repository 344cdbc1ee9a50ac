"""End to end, issue 13: PostgreSQL is stopped for longer than the senders' retry windows while real
senders deliver 200 alerts firing, then resolved; it comes back and, without a restart of
webhookfast, every firing and every resolution is in PostgreSQL, each once.

- A real Alertmanager (it retries a failed notification only for max(group_interval, 10 s)).
- A real Prometheus posting to ``/api/v2/alerts`` (it never retries): its rules fire on series of
  a small exporter that the test serves and flips.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.alertmanager import parse_metrics, rfc3339
from support.net import free_port, request, tail, wait_until
from support.postgres import PostgresServer
from support.servers import ServerFactory, ServerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.alertmanager, pytest.mark.timeout(400)]

INSTANCES = 200
OUTAGE_S = 65.0  # longer than Alertmanager's retry window (max(group_interval, 10 s)) and Prometheus' resend


def history(url: str) -> dict[str, list[str]]:
    """``host`` label -> statuses of its events, and its current status, from PostgreSQL."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT l.labels->>'host', e.status FROM alert_events e JOIN label_sets l USING (fingerprint)"
        ).fetchall()
        current = conn.execute(
            "SELECT l.labels->>'host', a.status FROM alerts a JOIN label_sets l USING (fingerprint)"
        ).fetchall()
    out: dict[str, list[str]] = {}
    for instance, status in rows:
        out.setdefault(instance, []).append(status)
    for instance, status in current:
        out.setdefault(instance, []).append(f"now {status}")
    return {k: sorted(v) for k, v in out.items()}


def each_fired_and_resolved_once(url: str) -> bool:
    got = history(url)
    return len(got) == INSTANCES and all(v == ["firing", "now resolved", "resolved"] for v in got.values())


def server_metric(server: ServerProcess, name: str, **labels: str) -> float:
    samples = parse_metrics(request(server.url + "/metrics").text)
    return sum(v for n, ls, v in samples if n == name and all(ls.get(k) == x for k, x in labels.items()))


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    try:
        yield postgres_server
    finally:
        postgres_server.ensure_running()


def test_alertmanager_outage_longer_than_its_retries_loses_nothing(
    server_factory: ServerFactory, pg_url: str, database: PostgresServer, alertmanager_factory: Any
) -> None:
    server = server_factory(pg_url)
    am = alertmanager_factory(server.url + "/webhook", group_by=["alertname"])
    now = datetime.now(timezone.utc)
    starts = rfc3339(now - timedelta(minutes=5))
    specs = [
        {"labels": {"alertname": f"Outage{i % 10}", "host": f"host-{i:03d}"}, "startsAt": starts}
        for i in range(INSTANCES)
    ]
    database.stop()
    stopped = time.monotonic()
    am.post_alerts(specs)
    stats = am.wait_notifications(10)

    def accepted(status: str) -> float:
        return server_metric(server, "webhookfast_alerts_received_total", format="alertmanager", status=status)

    # Alertmanager may notify a group twice (alerts added to it after its first flush): at least.
    wait_until(lambda: accepted("firing") >= INSTANCES, 10, message=lambda: f"{accepted('firing')} firing; {stats}")
    ends = rfc3339(datetime.now(timezone.utc) - timedelta(seconds=1))
    am.post_alerts([{**s, "endsAt": ends} for s in specs])
    stats = am.wait_notifications(stats["notifications"] + 10)
    assert stats["notifications_failed"] == 0 and stats["requests_failed"] == 0, stats
    wait_until(lambda: accepted("resolved") >= INSTANCES, 10)
    # Every one of them was spooled: the database has been down all along.
    assert server_metric(server, "webhookfast_spool_appended_alerts_total") == accepted("firing") + accepted("resolved")
    assert request(server.url + "/readyz").status == 200
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    assert server_metric(server, "webhookfast_spool_oldest_record_age_seconds") >= OUTAGE_S - 15
    database.start()
    wait_until(lambda: each_fired_and_resolved_once(pg_url), 60, message=lambda: str(history(pg_url))[:2000])
    wait_until(lambda: server_metric(server, "webhookfast_spool_bytes") == 0, 10)
    assert am.notification_stats()["notifications_failed"] == 0
    assert server.is_running()


class Exporter:
    """``/metrics`` with one ``outage_test_up`` series per instance, set by the test."""

    def __init__(self) -> None:
        self.value = 0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = "".join(
                    f'outage_test_up{{host="host-{i:03d}"}} {exporter.value}\n' for i in range(INSTANCES)
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Exporter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Prometheus:
    """Debian's ``prometheus`` scraping the exporter every second, with one rule (an alert per
    host that is down) and webhookfast as its only Alertmanager."""

    def __init__(self, workdir: Path, exporter_port: int, receiver_port: int) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.skip("prometheus is not installed (apt-get install prometheus)")
        self.port = free_port()
        self.dir = workdir / f"prometheus-{self.port}"
        self.dir.mkdir(parents=True)
        (self.dir / "rules.yml").write_text(
            "groups:\n- name: outage\n  interval: 1s\n  rules:\n"
            "  - alert: HostDown\n    expr: outage_test_up == 0\n    labels: {severity: critical}\n"
        )
        (self.dir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [rules.yml]\n"
            "scrape_configs:\n"
            f"- job_name: outage\n  static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
            "alerting:\n  alertmanagers:\n"
            f"  - api_version: v2\n    static_configs: [{{targets: ['127.0.0.1:{receiver_port}']}}]\n"
        )
        self.log_path = self.dir / "prometheus.log"
        self.command = [
            binary,
            f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Prometheus:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True
            )
        wait_until(lambda: self._ready(), 30, message=lambda: tail(self.log_path.read_text(errors="replace")))
        return self

    def _ready(self) -> bool:
        try:
            return request(f"http://127.0.0.1:{self.port}/-/ready", timeout=2).status == 200
        except OSError:
            return False

    def metric(self, name: str) -> float:
        samples = parse_metrics(request(f"http://127.0.0.1:{self.port}/metrics").text)
        return sum(v for n, _, v in samples if n == name)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def test_prometheus_posting_directly_during_an_outage_loses_nothing(
    server_factory: ServerFactory, pg_url: str, database: PostgresServer, tmp_path: Path
) -> None:
    server = server_factory(pg_url)
    database.stop()
    stopped = time.monotonic()
    with Exporter() as exporter, Prometheus(tmp_path, exporter.port, server.port) as prometheus:

        def received(status: str) -> float:
            return server_metric(server, "webhookfast_alerts_received_total", format="prometheus", status=status)

        wait_until(lambda: received("firing") >= INSTANCES, 60)
        exporter.value = 1  # every host is up again: Prometheus sends the resolutions
        wait_until(lambda: received("resolved") >= INSTANCES, 60)
        assert prometheus.metric("prometheus_notifications_errors_total") == 0
        assert prometheus.metric("prometheus_notifications_dropped_total") == 0
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        assert server_metric(server, "webhookfast_spool_replayed_alerts_total") == 0
        database.start()
        wait_until(lambda: each_fired_and_resolved_once(pg_url), 60, message=lambda: str(history(pg_url))[:2000])
        assert prometheus.metric("prometheus_notifications_errors_total") == 0
