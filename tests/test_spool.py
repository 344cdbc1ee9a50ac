"""The durable local spool through the real server, on a real PostgreSQL that the tests stop and
start: outages, kill -9 (with records waiting, and in the middle of a replay), slow commits,
``--ack spool``, a full spool, damaged spool files and the directory lock."""

from __future__ import annotations

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
        if line.startswith((name + " ", name + "{")):
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
    wait_until(
        lambda: metric(server, "webhookfast_spool_replayed_alerts_total") == 120,
        10,
        message=lambda: request(server.url + "/metrics").text,
    )
    # Drained: the replayed segment is gone and new requests are committed directly again.
    wait_until(lambda: segment_bytes(tmp_path / "spool") == 0, 10)
    assert post(server, notification(99))[1]["status"] == "stored"
    assert request(server.url + "/readyz").json() == {"status": "ready"}


def restart_after_kill(server: ServerProcess) -> None:
    server.kill()
    server.proc = None
    server.returncode = None
    server.start()


@pytest.mark.parametrize("end", ["kill -9", "SIGTERM"])
def test_records_waiting_at_kill_9_or_stop_are_replayed_after_the_restart(
    server_factory: ServerFactory, pg_url: str, database_down: PostgresServer, tmp_path: Path, end: str
) -> None:
    server = spool_server(server_factory, pg_url, tmp_path, WEBHOOKFAST_SPOOL_AFTER_S="0.5")
    database_down.stop()
    acked = [i for i in range(60) if post(server, notification(i))[0] == 200]
    assert acked == list(range(60))
    if end == "SIGTERM":
        assert server.stop() == 0
        server.proc = None
        server.start()
    else:
        restart_after_kill(server)  # the database is still down: the spool waits on disk
    assert request(server.url + "/readyz").status == 200
    database_down.start()
    wait_until(lambda: len(deliveries(pg_url)) == 120, 30, message=lambda: str(len(deliveries(pg_url))))
    assert set(deliveries(pg_url).values()) == {("firing", 1)}
    assert events(pg_url) == 120
    wait_until(lambda: segment_bytes(tmp_path / "spool") == 0, 10)


def test_ack_enqueue_keeps_what_it_acknowledged_through_an_outage_and_a_stop(
    server_factory: ServerFactory, pg_url: str, database_down: PostgresServer, tmp_path: Path
) -> None:
    """--ack enqueue answers before the commit: while the database is down those batches move to
    the spool, and a stop that comes first spools what is still in memory."""
    server = spool_server(
        server_factory, pg_url, tmp_path, "--ack", "enqueue", WEBHOOKFAST_SHUTDOWN_FLUSH_TIMEOUT_S="1"
    )
    database_down.stop()
    answers = [post(server, notification(i)) for i in range(40)]
    assert {status for status, _ in answers} == {200}
    assert {body["status"] for _, body in answers} <= {"queued", "spooled"}
    assert server.stop() == 0  # right away: some may still be in memory
    server.proc = None
    server.start()
    database_down.start()
    wait_until(lambda: len(deliveries(pg_url)) == 80, 30, message=lambda: str(len(deliveries(pg_url))))
    assert set(deliveries(pg_url).values()) == {("firing", 1)}
    assert events(pg_url) == 80
    wait_until(lambda: segment_bytes(tmp_path / "spool") == 0, 10)


def test_kill_9_in_the_middle_of_a_replay_counts_every_delivery_once(
    server_factory: ServerFactory, pg_url: str, database_down: PostgresServer, tmp_path: Path
) -> None:
    # One request per replay transaction, so that the replay takes long enough to be cut.
    server = spool_server(
        server_factory, pg_url, tmp_path, WEBHOOKFAST_SPOOL_AFTER_S="0.5", WEBHOOKFAST_SPOOL_REPLAY_MAX_ALERTS="2"
    )
    database_down.stop()
    total = 1500
    for i in range(total):
        assert post(server, notification(i))[0] == 200
    for i in range(0, total, 3):  # some instances are delivered twice: two deliveries each
        assert post(server, notification(i))[0] == 200
    database_down.start()
    wait_until(lambda: 0 < len(deliveries(pg_url)) < total, 30, interval=0.01)
    server.kill()
    cut_at = len(deliveries(pg_url))
    assert 0 < cut_at < 2 * total, "the replay was not cut in the middle"
    server.proc = None
    server.returncode = None
    server.start()
    wait_until(lambda: segment_bytes(tmp_path / "spool") == 0, 60, message=lambda: str(len(deliveries(pg_url))))
    stored = deliveries(pg_url)
    assert len(stored) == 2 * total
    twice = {(i, n) for i in range(0, total, 3) for n in range(2)}
    wrong = {k: v for k, v in stored.items() if v != ("firing", 2 if k in twice else 1)}
    assert not wrong, f"{len(wrong)} instances with wrong delivery counts, e.g. {list(wrong.items())[:5]}"
    assert events(pg_url) == 2 * total


def test_slow_commit_is_spooled_and_counted_once(server_factory: ServerFactory, pg_url: str, tmp_path: Path) -> None:
    server = spool_server(server_factory, pg_url, tmp_path, WEBHOOKFAST_SPOOL_AFTER_S="0.5")
    assert post(server, notification(0))[1]["status"] == "stored"
    with psycopg.connect(pg_url) as blocker:
        blocker.execute("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")  # commits now wait
        started = time.monotonic()
        status, body = post(server, notification(1))
        assert (status, body["status"]) == (200, "spooled")
        assert 0.4 < time.monotonic() - started < 2.5
        # The first spooled batch's own flush still waits on the lock: later ones queue behind it.
        for i in range(2, 6):
            assert post(server, notification(i))[1]["status"] == "spooled"
        blocker.rollback()  # the flush of request 1 commits now, late
    wait_until(lambda: len(deliveries(pg_url)) == 12, 30, message=lambda: str(deliveries(pg_url)))
    wait_until(lambda: segment_bytes(tmp_path / "spool") == 0, 10)
    assert set(deliveries(pg_url).values()) == {("firing", 1)}, "a late commit was replayed again"
    assert events(pg_url) == 12
    assert metric(server, "webhookfast_spool_replayed_alerts_total") == 8  # requests 2-5
    assert metric(server, "webhookfast_spool_appended_alerts_total") == 10


def test_ack_spool_answers_after_the_fsync_and_ships_in_batches(
    server_factory: ServerFactory, pg_url: str, tmp_path: Path
) -> None:
    server = spool_server(server_factory, pg_url, tmp_path, "--ack", "spool")
    answers = [post(server, notification(i, n=3)) for i in range(100)]
    assert {(s, b["status"]) for s, b in answers} == {(200, "spooled")}
    wait_until(lambda: len(deliveries(pg_url)) == 300, 30)
    assert set(deliveries(pg_url).values()) == {("firing", 1)}
    wait_until(lambda: metric(server, "webhookfast_spool_replayed_alerts_total") == 300, 10)
    assert request(server.url + "/readyz").json() == {"status": "ready"}


def test_ack_spool_needs_postgresql(tmp_path: Path) -> None:
    done = subprocess.run(
        [*server_command(), "serve", "--database-url", f"sqlite:///{tmp_path}/x.db", "--ack", "spool"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--ack spool needs the spool" in done.stderr


def fill_until_refused(server: ServerProcess, body_of, limit: int) -> tuple[list[int], dict]:  # type: ignore[no-untyped-def, type-arg]
    """Post body_of(i) until the first 503; return the acknowledged request numbers and the 503's body."""
    acked = []
    for i in range(limit):
        status, body = post(server, body_of(i))
        if status == 503:
            return acked, body
        assert (status, body["status"]) == (200, "spooled"), body
        acked.append(i)
    raise AssertionError(f"still accepting after {limit} requests")


def big_notification(i: int) -> bytes:
    alert = orjson.loads(notification(i, n=1))
    alert["alerts"][0]["annotations"] = {"description": "x" * 50_000}
    return orjson.dumps(alert)


@pytest.mark.parametrize("bound", ["max_bytes", "tmpfs"])
def test_a_full_spool_answers_503_keeps_what_it_acknowledged_and_accepts_again_once_drained(
    server_factory: ServerFactory, pg_url: str, database_down: PostgresServer, tmp_path: Path, bound: str
) -> None:
    spool_dir = tmp_path / "spool"
    env = {"WEBHOOKFAST_SPOOL_AFTER_S": "0.5", "WEBHOOKFAST_WRITE_DEADLINE_S": "1"}
    if bound == "tmpfs":
        spool_dir.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(spool_dir)],
            check=False,
            capture_output=True,
            text=True,
        )
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a 2 MiB tmpfs (needs root): {mounted.stderr.strip()}")
    else:
        env["WEBHOOKFAST_SPOOL_MAX_BYTES"] = str(1_000_000)
    try:
        server = spool_server(server_factory, pg_url, tmp_path, **env)
        database_down.stop()
        acked, refusal = fill_until_refused(server, big_notification, 100)
        assert 10 < len(acked) < 45, len(acked)
        assert (refusal["error"]["code"], refusal["error"]["message"]) == ("overloaded", "spool is full, retry later")
        assert post(server, big_notification(1000))[0] == 503  # still full
        assert (
            metric(server, "webhookfast_ingest_rejected_total") == metric(server, "webhookfast_spool_refused_total") > 0
        )
        time.sleep(1.2)  # the first request's flush has given up on the pool by now
        database_down.start()
        wait_until(lambda: len(deliveries(pg_url)) == len(acked), 30, message=lambda: str(len(deliveries(pg_url))))
        assert set(deliveries(pg_url)) == {(i, 0) for i in acked}
        wait_until(lambda: segment_bytes(spool_dir) == 0, 10)
        database_down.stop()
        again, _ = fill_until_refused(server, lambda i: big_notification(10_000 + i), 100)
        assert len(again) >= len(acked) - 1
        database_down.start()
        wait_until(lambda: len(deliveries(pg_url)) == len(acked) + len(again), 30)
        server.stop()
    finally:
        if bound == "tmpfs":
            subprocess.run(["umount", "-l", str(spool_dir)], check=False)


def test_a_torn_last_record_is_cut_and_a_damaged_middle_record_moved_aside(
    server_factory: ServerFactory, pg_url: str, tmp_path: Path
) -> None:
    from webhookfast._core import SpoolWriter

    worker = tmp_path / "spool" / "worker-0"
    writer = SpoolWriter(worker, 8 * 1024 * 1024)
    now_us = int(time.time() * 1e6)
    seq, ends = writer.append([(now_us + i, notification(i)) for i in range(6)])
    del writer
    segment = worker / f"{seq:020d}.wfs"
    data = bytearray(segment.read_bytes())
    data[ends[2] + 40] ^= 0x01  # inside record 3's body: its CRC no longer matches
    segment.write_bytes(bytes(data[: ends[5] - 7]))  # record 5 cut mid-write: a torn tail
    server = spool_server(server_factory, pg_url, tmp_path)
    wait_until(lambda: len(deliveries(pg_url)) == 8, 30, message=lambda: str(deliveries(pg_url)))
    wait_until(lambda: segment_bytes(tmp_path / "spool") == 0, 10)
    assert {i for i, _ in deliveries(pg_url)} == {0, 1, 2, 4}
    assert metric(server, "webhookfast_spool_torn_records_total") == 1
    assert metric(server, "webhookfast_spool_corrupt_records_total") == 1
    (quarantined,) = (worker / "quarantine").iterdir()
    assert quarantined.read_bytes() == bytes(data[ends[2] : ends[3]])
    log = server.log()
    assert "cut off a torn last record" in log
    assert "moved aside to" in log and str(quarantined) in log


def test_two_servers_on_one_spool_directory_the_second_refuses_to_start(
    server_factory: ServerFactory, pg_url: str, tmp_path: Path, free_port
) -> None:  # type: ignore[no-untyped-def]
    spool_server(server_factory, pg_url, tmp_path)
    done = subprocess.run(
        [
            *server_command(),
            "serve",
            "--port",
            str(free_port()),
            "--database-url",
            pg_url,
            "--spool-dir",
            str(tmp_path / "spool"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"spool directory {tmp_path / 'spool'} is in use by another webhookfast" in done.stderr


def test_a_spool_left_by_a_worker_that_is_gone_is_adopted_and_drained(
    server_factory: ServerFactory, pg_url: str, tmp_path: Path
) -> None:
    from webhookfast._core import SpoolWriter

    # As if the server had run with 6 workers and now runs with 2.
    left = tmp_path / "spool" / "worker-5"
    now_us = int(time.time() * 1e6)
    SpoolWriter(left, 8 * 1024 * 1024).append([(now_us + i, notification(i)) for i in range(10)])
    server = spool_server(server_factory, pg_url, tmp_path)
    server.stop()
    server.workers = 2
    server.proc = None
    server.start()
    assert post(server, notification(100))[1]["status"] == "stored"
    wait_until(lambda: len(deliveries(pg_url)) == 22, 40, message=lambda: str(len(deliveries(pg_url))))
    wait_until(lambda: segment_bytes(tmp_path / "spool") == 0, 10)
    assert set(deliveries(pg_url).values()) == {("firing", 1)}
    assert sorted(p.name for p in (tmp_path / "spool").glob("worker-*")) == ["worker-0", "worker-1", "worker-5"]
    assert "belongs to no running worker: replaying it" in server.log()


def test_started_while_the_database_is_down_on_a_new_database_the_spool_still_drains(
    server_factory: ServerFactory, database_down: PostgresServer, tmp_path: Path
) -> None:
    import uuid

    from psycopg import sql
    from support.postgres import database_url

    name = f"fresh_{uuid.uuid4().hex}"
    with psycopg.connect(database_down.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(database_down.url, name)
    try:
        database_down.stop()
        server = spool_server(server_factory, url, tmp_path, WEBHOOKFAST_SPOOL_AFTER_S="0.5")
        assert "migrations not applied" in server.log()
        assert {post(server, notification(i))[1]["status"] for i in range(5)} == {"spooled"}
        database_down.start()

        def stored() -> int:
            try:
                return len(deliveries(url))
            except psycopg.errors.UndefinedTable:
                return -1  # not migrated yet

        wait_until(lambda: stored() == 10, 30)
        assert "(the database was away at start)" in server.log()
        server.stop()
    finally:
        database_down.ensure_running()
        with psycopg.connect(database_down.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_spool_directory_that_cannot_be_made_is_a_clear_refusal_to_start(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    done = subprocess.run(
        [*server_command(), "serve", "--database-url", pg_url, "--spool-dir", str(tmp_path / "file" / "spool")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"spool directory {tmp_path / 'file' / 'spool'}: " in done.stderr
