"""Faults under load, through the real server: the database stops, the receiver is killed, two
receivers get the same notifications. A 200 must always mean the rows are there."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import orjson
import psycopg
import pytest
from support.net import request
from support.sqlite import query

JSON_HEADERS = {"Content-Type": "application/json"}


def payload(i: int, n: int = 3, status: str = "firing") -> bytes:
    return orjson.dumps(
        {
            "version": "4",
            "receiver": "faults",
            "status": status,
            "alerts": [
                {
                    "status": status,
                    "labels": {"alertname": "Fault", "request": str(i), "n": str(j)},
                    "startsAt": "2026-11-27T10:00:00Z",
                    **({"endsAt": "2026-11-27T10:05:00Z"} if status == "resolved" else {}),
                }
                for j in range(n)
            ],
        }
    )


class Load:
    """Threads posting distinct payloads as fast as the server answers, recording each status."""

    def __init__(self, url: str, threads: int = 4, n: int = 3) -> None:
        self.url = url
        self.n = n
        self.results: dict[int, int] = {}  # request number -> status (0: connection error)
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                i = self._next
                self._next += 1
            try:
                status = request(self.url + "/webhook", "POST", payload(i, self.n), JSON_HEADERS, timeout=15).status
            except OSError:
                status = 0
            with self._lock:
                self.results[i] = status

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def acknowledged(self) -> set[int]:
        with self._lock:
            return {i for i, s in self.results.items() if s == 200}

    def statuses(self) -> set[int]:
        with self._lock:
            return set(self.results.values())


def stored_requests(url: str, n: int) -> dict[int, int]:
    """request number -> alerts stored for it (labels carry the request number)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT (l.labels->>'request')::int, count(*) FROM alerts a "
            "JOIN label_sets l USING (fingerprint) GROUP BY 1"
        ).fetchall()
    return {int(r): int(c) for r, c in rows}


def stored_requests_sqlite(db: Path) -> dict[int, int]:
    rows = query(
        db,
        "SELECT CAST(json_extract(l.labels, '$.request') AS INTEGER), count(*) FROM alerts a "
        "JOIN label_sets l USING (fingerprint) GROUP BY 1",
    )
    return {int(r): int(c) for r, c in rows}


def wait_for(predicate, timeout: float = 30.0, step: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@pytest.mark.postgres
def test_postgres_stops_during_load(server_factory, postgres_server, pg_url: str) -> None:
    # Without the spool (tests/test_spool.py has the outage with it): 503s while the database is down.
    server = server_factory(pg_url, env={"WEBHOOKFAST_WRITE_DEADLINE_S": "2"}, extra_args=["--no-spool"])
    with Load(server.url) as load:
        assert wait_for(lambda: len(load.acknowledged()) >= 50), "no progress before the fault"
        postgres_server.stop()
        try:
            before = len(load.results)
            assert wait_for(lambda: len(load.results) > before + 20), "requests hang while the database is down"
            assert server.get("/readyz").status == 503
            down_statuses = {s for i, s in load.results.items() if i > before + 5}
        finally:
            postgres_server.start()
        # The pool reconnects by itself: no restart of webhookfast.
        acked_at_restart = len(load.acknowledged())
        assert wait_for(lambda: len(load.acknowledged()) > acked_at_restart + 50, timeout=30), "no recovery"
    assert down_statuses <= {200, 503}, down_statuses
    assert 503 in down_statuses
    assert load.statuses() <= {200, 503}
    assert server.get("/readyz").status == 200
    stored = stored_requests(pg_url, 3)
    missing = [i for i in load.acknowledged() if stored.get(i) != 3]
    assert not missing, f"{len(missing)} acknowledged requests lack rows: {missing[:10]}"


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_kill_9_loses_no_acknowledged_alert(server_factory, tmp_path: Path, store: str, request) -> None:  # type: ignore[no-untyped-def]
    url = request.getfixturevalue("pg_url") if store == "postgres" else f"sqlite:///{tmp_path}/kill.db"
    # "acknowledged" = committed here; the spool's kill -9 tests are in tests/test_spool.py.
    server = server_factory(url, extra_args=["--no-spool"] if store == "postgres" else [])
    with Load(server.url) as load:
        assert wait_for(lambda: len(load.acknowledged()) >= 200), "no progress"
        server.kill()  # SIGKILL to the whole process group: workers die mid-flush
    acked = load.acknowledged()
    stored = stored_requests(url, 3) if store == "postgres" else stored_requests_sqlite(tmp_path / "kill.db")
    missing = [i for i in acked if stored.get(i) != 3]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged requests lack rows"
    # Nothing half-stored: every request is there whole or not at all.
    assert all(count == 3 for count in stored.values())


@pytest.mark.postgres
def test_two_receivers_collapse_duplicate_deliveries(server_factory, pg_url: str) -> None:
    a = server_factory(pg_url, name="replica-a")
    b = server_factory(pg_url, name="replica-b")
    firing = [payload(i, n=5) for i in range(20)]
    resolved = [payload(i, n=5, status="resolved") for i in range(20)]
    deliveries = 3  # each notification reaches each replica this many times

    def deliver(server, bodies) -> None:  # type: ignore[no-untyped-def]
        for _ in range(deliveries):
            for body in bodies:
                assert server.post("/webhook", body, JSON_HEADERS).status == 200

    for bodies in (firing, resolved):
        threads = [threading.Thread(target=deliver, args=(s, bodies)) for s in (a, b) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with psycopg.connect(pg_url) as conn:
        events = conn.execute("SELECT status, count(*) FROM alert_events GROUP BY status ORDER BY 1").fetchall()
        alerts = conn.execute(
            "SELECT count(*), min(notifications), max(notifications), "
            "count(*) FILTER (WHERE status = 'resolved') FROM alerts"
        ).fetchone()
    assert events == [("firing", 100), ("resolved", 100)]
    # 2 phases x 2 replicas x 2 threads x 3 deliveries, every one counted once.
    assert alerts == (100, 24, 24, 100)


def test_sigterm_during_load_answers_or_flushes(server_factory, tmp_path: Path) -> None:
    db = tmp_path / "term.db"
    server = server_factory(f"sqlite:///{db}")
    with Load(server.url) as load:
        assert wait_for(lambda: len(load.acknowledged()) >= 100)
        code = server.stop(signal.SIGTERM)
    assert code == 0
    stored = stored_requests_sqlite(db)
    assert all(stored.get(i) == 3 for i in load.acknowledged())


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_ack_enqueue_flushes_everything_on_sigterm(server_factory, tmp_path: Path, store: str, request) -> None:  # type: ignore[no-untyped-def]
    url = request.getfixturevalue("pg_url") if store == "postgres" else f"sqlite:///{tmp_path}/enqueue.db"
    server = server_factory(url, extra_args=["--ack", "enqueue"])
    with Load(server.url) as load:
        assert wait_for(lambda: len(load.acknowledged()) >= 300)
        code = server.stop(signal.SIGTERM)
    assert code == 0
    acked = load.acknowledged()
    assert load.statuses() <= {200, 503, 0}
    stored = stored_requests(url, 3) if store == "postgres" else stored_requests_sqlite(tmp_path / "enqueue.db")
    missing = [i for i in acked if stored.get(i) != 3]
    assert not missing, f"{len(missing)} of {len(acked)} queued requests were not flushed on SIGTERM"
