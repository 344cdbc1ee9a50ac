"""The durable local spool through the real server, on a real PostgreSQL that the tests stop and
start: outages, kill -9 (with records waiting, and in the middle of a replay), slow commits,
``--ack spool``, a full spool, damaged spool files and the directory lock."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from support.net import request, wait_until
from support.postgres import PostgresServer
from support.servers import ServerFactory, ServerProcess, server_command

pytestmark = pytest.mark.postgres

JSON = {"Content-Type": "application/json"}
STARTS = "2026-11-27T10:00:00Z"


def notification(i: int, n: int = 2, status: str = "firing") -> bytes:
    """Request ``i`` of a test: ``n`` alerts labelled with ``i``, firing or resolved."""
    return orjson.dumps(
        {
            "version": "4",
            "receiver": "spool",
            "status": status,
            "alerts": [
                {
                    "status": status,
                    "labels": {"alertname": "Spooled", "request": str(i), "n": str(j)},
                    "startsAt": STARTS,
                    **({"endsAt": "2026-11-27T10:05:00Z"} if status == "resolved" else {}),
                }
                for j in range(n)
            ],
        }
    )


def post(server: ServerProcess, body: bytes, path: str = "/webhook") -> tuple[int, dict]:  # type: ignore[type-arg]
    resp = request(server.url + path, "POST", body, JSON, timeout=15)
    return resp.status, orjson.loads(resp.body) if resp.body else {}


def deliveries(url: str) -> dict[tuple[int, int], tuple[str, int]]:
    """(request, n) -> (status, notifications) of every stored alert instance."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT (l.labels->>'request')::int, (l.labels->>'n')::int, a.status, a.notifications "
            "FROM alerts a JOIN label_sets l USING (fingerprint)"
        ).fetchall()
    return {(r, n): (status, count) for r, n, status, count in rows}


def events(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM alert_events").fetchone()[0])  # type: ignore[index]


def metric(server: ServerProcess, name: str) -> float:
    text = request(server.url + "/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def segment_bytes(spool_dir: Path) -> int:
    return sum(p.stat().st_size for p in spool_dir.glob("worker-*/*.wfs"))


@pytest.fixture
def database_down(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """The throw-away PostgreSQL server, started again at the end whatever happens."""
    try:
        yield postgres_server
    finally:
        postgres_server.ensure_running()


def spool_server(server_factory: ServerFactory, pg_url: str, tmp_path: Path, *args: str, **env: str) -> ServerProcess:
    environment = {"WEBHOOKFAST_SPOOL_DIR": str(tmp_path / "spool"), **env}
    return server_factory(pg_url, extra_args=list(args), env=environment, name="spooling")


def test_outage_is_spooled_and_replayed_without_a_restart(
    server_factory: ServerFactory, pg_url: str, database_down: PostgresServer, tmp_path: Path
) -> None:
    # The first request's flush gives up on the pool after 1 s (the database is down); had it still
    # been waiting when the database came back, it would have committed the batch itself and the
    # replayer would have skipped that record (test_slow_commit_is_spooled_and_counted_once).
    server = spool_server(
        server_factory, pg_url, tmp_path, WEBHOOKFAST_WRITE_DEADLINE_S="1", WEBHOOKFAST_SPOOL_AFTER_S="0.5"
    )
    assert post(server, notification(0))[1]["status"] == "stored"
    database_down.stop()
    answers = [post(server, notification(i)) for i in range(1, 41)]
    resolved = [post(server, notification(i, status="resolved")) for i in range(1, 21)]
    assert {status for status, _ in answers + resolved} == {200}
    assert {body["status"] for _, body in answers + resolved} == {"spooled"}
    ready = request(server.url + "/readyz")
    assert ready.status == 200, ready.text
    assert ready.json() == {"status": "ready", "database": "down", "spool": "accepting"}
    assert metric(server, "webhookfast_spool_appended_alerts_total") == 120
    assert segment_bytes(tmp_path / "spool") > 0
    time.sleep(1.5)
    database_down.start()
    wait_until(lambda: len(deliveries(pg_url)) == 82, 30, message=lambda: str(deliveries(pg_url)))
    stored = deliveries(pg_url)
    assert all(stored[(i, n)] == ("resolved", 2) for i in range(1, 21) for n in range(2))
    assert all(stored[(i, n)] == ("firing", 1) for i in range(21, 41) for n in range(2))
    assert events(pg_url) == 2 + 40 * 2 + 20 * 2
    wait_until(lambda: metric(server, "webhookfast_spool_replayed_alerts_total") == 120, 10, message=lambda: request(server.url + "/metrics").text)
    # Drained: the replayed segment is gone and new requests are committed directly again.
    wait_until(lambda: segment_bytes(tmp_path / "spool") == 0, 10)
    assert post(server, notification(99))[1]["status"] == "stored"
    assert request(server.url + "/readyz").json() == {"status": "ready"}
