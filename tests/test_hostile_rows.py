"""Issue #11, part A: the decode → rows → store path under requests built to hurt it, on both stores.

- per-notification strings (receiver, groupKey) as long as the body are stored once, not per row;
- the ingest queue's byte bound counts what decoded batches hold, not their bodies;
- times whose offset moves them outside years 0001-9999 are refused; cursors page over the edges;
- endsAt before startsAt is refused; a Prometheus alert list's later endsAt reopens an instance
  its own late send resolved, while explicit statuses and stale retries never reopen one.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from support.net import wait_until
from support.sqlite import query
from support.stores import write_flushes
from webhookfast._core import Batch, Limits, PayloadError, decode, fingerprint, fingerprint_to_int
from webhookfast.ingest.batcher import Batcher, QueueFull
from webhookfast.storage import open_store
from webhookfast.storage.sqlite import SQLiteStore

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/rows.db"
        SQLiteStore(url).migrate()
        return url
    return request.getfixturevalue("pg_url")


def stored_bytes(url: str) -> int:
    """Bytes the database takes (SQLite: its files; PostgreSQL: every table with its TOAST and
    indexes)."""
    if url.startswith("sqlite:"):
        path = Path(url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
        ).fetchone()
    return int(row[0]) if row and row[0] else 0


def notifications(url: str, fp: str) -> int:
    """The notifications counted for the alert instances of fingerprint ``fp``, from the database."""
    key = fingerprint_to_int(fp)
    sql = "SELECT coalesce(sum(notifications), 0) FROM alerts WHERE fingerprint = {}"
    if url.startswith("sqlite:"):
        ((total,),) = query(Path(url.removeprefix("sqlite:///")), sql.format("?"), (key,))
        return int(total)
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.format("%s"), (key,)).fetchone()
    return int(row[0]) if row else 0


def rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def am_body(alerts: list[dict[str, Any]], receiver: str = "r", group_key: str = "{}:{}") -> bytes:
    return json.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": receiver,
            "groupKey": group_key,
            "truncatedAlerts": 0,
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://am:9093",
            "alerts": alerts,
        }
    ).encode()


def am_alert(
    labels: dict[str, str], starts: str, status: str = "firing", ends: str = "0001-01-01T00:00:00Z"
) -> dict[str, Any]:
    return {"status": status, "labels": labels, "annotations": {}, "startsAt": starts, "endsAt": ends}


def instances(server: Any, fp: str) -> list[dict[str, Any]]:
    resp = server.get(f"/api/v1/alerts?fingerprint={fp}")
    assert resp.status == 200, resp.body[:300]
    return resp.json()["alerts"]  # type: ignore[no-any-return,index]


def assert_error(resp: Any, status: int, code: str, path: str | None = None) -> None:
    assert resp.status == status, (resp.status, resp.body[:300])
    err = resp.json()["error"]
    assert err["code"] == code, err
    if path is not None:
        assert err["path"] == path, err


# -- 1. per-notification strings are stored once ---------------------------------------------------


def test_long_receiver_and_group_key_are_stored_once(server_factory: Any, store_url: str) -> None:
    """Before: receiver and groupKey were copied into every event and current-state row, so one
    request of N alerts cost N times their size (a 14.7 MiB body asked the encoder for ~147 GB
    and aborted the worker; a 0.35 MiB body grew SQLite by 755 MiB)."""
    server = server_factory(store_url)
    # The example: 7 MiB of receiver, 7 MiB of group key, 10,000 tiny alerts (14.7 MiB).
    receiver = "r" * (7 << 20)
    group_key = '{}:{alertname="' + "g" * (7 << 20) + '"}'
    start = rfc3339(datetime.now(timezone.utc) - timedelta(minutes=5))
    alerts = [
        {"status": "firing", "labels": {"alertname": "Long", "i": str(i)}, "startsAt": start} for i in range(10_000)
    ]
    body = json.dumps({"receiver": receiver, "groupKey": group_key, "alerts": alerts}, separators=(",", ":")).encode()
    assert 14 << 20 < len(body) < 16 << 20
    before = stored_bytes(store_url)
    resp = server.post("/webhook", body)
    assert resp.status == 200, resp.body[:300]
    assert resp.json()["alerts"] == 10_000  # type: ignore[index]
    # Again, as a retry or an HA twin would: nothing new to store.
    again = server.post("/webhook", body)
    assert again.status == 200
    # PostgreSQL may take longer than WEBHOOKFAST_SPOOL_AFTER_S for these rows (a slow disk): the
    # request is then answered "spooled", and the spool's replayer commits it soon after.
    answered = {resp.json()["status"], again.json()["status"]}  # type: ignore[index]
    assert answered <= ({"stored"} if store_url.startswith("sqlite") else {"stored", "spooled"}), answered
    fp = fingerprint({"alertname": "Long", "i": "7"})
    wait_until(lambda: notifications(store_url, fp) == 2, 60, message=lambda: f"{notifications(store_url, fp)} of 2")
    grown = stored_bytes(store_url) - before
    # The two strings once plus 10,000 narrow rows (before: 140 GB asked of the encoder).
    assert grown < 4 * len(body), (grown, len(body))
    assert server.is_running()

    # The history API answers as before: every row still shows its receiver and group key.
    page = server.get("/api/v1/alerts?limit=2").json()
    assert [a["receiver"] for a in page["alerts"]] == [receiver] * 2  # type: ignore[index]
    detail = server.get(f"/api/v1/alerts/{fp}").json()
    (episode,) = detail["episodes"]  # type: ignore[index]
    assert episode["receiver"] == receiver and episode["notifications"] == 2
    (event,) = episode["timeline"]
    assert event["receiver"] == receiver and event["group_key"] == group_key

    # A page stops once its rows hold 32 MiB (each row shows the 7 MiB receiver): fewer rows than
    # asked for, and a cursor that goes on from there.
    first = server.get("/api/v1/alerts?limit=1000").json()
    shown = [a["fingerprint"] for a in first["alerts"]]  # type: ignore[index]
    assert 1 <= len(shown) < 20 and first["next_cursor"], len(shown)  # type: ignore[index]
    second = server.get(f"/api/v1/alerts?limit=20&cursor={quote(first['next_cursor'])}").json()  # type: ignore[index]
    more = [a["fingerprint"] for a in second["alerts"]]  # type: ignore[index]
    assert more and not set(more) & set(shown)
    # Alertmanager's read API (no paging) says how many it holds.
    am = server.get("/api/v2/alerts")
    assert am.status == 200
    assert 1 <= len(am.json()) < 20  # type: ignore[arg-type]
    assert am.headers["x-webhookfast-truncated"] == str(len(am.json()))  # type: ignore[arg-type]


def test_rows_written_before_the_groups_table_keep_their_receiver(store_url: str) -> None:
    """Rows from before migration 0006 carry their receiver inline (group_id NULL): readers fall
    back to it, and a new delivery of the same instance takes the group's."""
    start_us = 1_790_000_000_000_000
    fpi = fingerprint_to_int(fingerprint({"alertname": "Legacy"}))
    if store_url.startswith("sqlite:"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as conn:
            conn.execute("INSERT INTO label_sets VALUES (?, '{\"alertname\":\"Legacy\"}', 'Legacy', '')", (fpi,))
            conn.execute(
                "INSERT INTO alert_events (fingerprint, starts_at, status, ends_at, received_at, receiver, group_key, "
                "source, generator_url, annotations) VALUES (?, ?, 'firing', NULL, ?, 'old-rx', 'old-gk', "
                "'alertmanager', '', '{}')",
                (fpi, start_us, start_us),
            )
            conn.execute(
                "INSERT INTO alerts (fingerprint, starts_at, status, ends_at, first_seen, last_seen, notifications, "
                "receiver) VALUES (?, ?, 'firing', NULL, ?, ?, 1, 'old-rx')",
                (fpi, start_us, start_us, start_us),
            )
    else:
        ts = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=start_us)
        with psycopg.connect(store_url) as conn:
            conn.execute("INSERT INTO label_sets VALUES (%s, '{\"alertname\":\"Legacy\"}', 'Legacy', '')", (fpi,))
            conn.execute(
                "INSERT INTO alert_events (fingerprint, starts_at, status, ends_at, received_at, receiver, group_key, "
                "source, generator_url, annotations) VALUES (%s, %s, 'firing', NULL, %s, 'old-rx', 'old-gk', "
                "'alertmanager', '', '{}')",
                (fpi, ts, ts),
            )
            conn.execute(
                "INSERT INTO alerts (fingerprint, starts_at, status, ends_at, first_seen, last_seen, notifications, "
                "receiver) VALUES (%s, %s, 'firing', NULL, %s, %s, 1, 'old-rx')",
                (fpi, ts, ts, ts),
            )

    eps, evs = _read_history(store_url, fpi)
    assert [e[6] for e in eps] == ["old-rx"]
    assert [(e[4], e[5]) for e in evs] == [("old-rx", "old-gk")]

    starts = rfc3339(datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=start_us))
    body = am_body(
        [am_alert({"alertname": "Legacy"}, starts, "resolved", "2026-09-21T18:00:00Z")],
        receiver="new-rx",
        group_key="new-gk",
    )
    write_flushes(store_url, [decode(body, received_at_us=start_us + 10**9)])
    eps, evs = _read_history(store_url, fpi)
    assert [e[6] for e in eps] == ["new-rx"]
    assert sorted((e[1], e[4], e[5]) for e in evs) == [("firing", "old-rx", "old-gk"), ("resolved", "new-rx", "new-gk")]


def _read_history(url: str, fpi: int) -> tuple[list[Any], list[Any]]:
    """The episode and event rows of the history API's queries for one fingerprint."""
    from webhookfast.history import sql as q

    if url.startswith("sqlite:"):
        d = q.SQLITE
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return (
                conn.execute(*q.episodes(d, fpi, None, 10)).fetchall(),
                conn.execute(*q.episode_events(d, fpi, None, 10)).fetchall(),
            )
    d = q.POSTGRES
    with psycopg.connect(url) as conn:
        return (
            conn.execute(*q.episodes(d, fpi, None, 10)).fetchall(),  # type: ignore[call-overload]
            conn.execute(*q.episode_events(d, fpi, None, 10)).fetchall(),
        )  # type: ignore[call-overload]


# -- 2. the queue's byte bound counts decoded memory -------------------------------------------------


def many_short_labels(n_alerts: int = 200, n_labels: int = 60) -> bytes:
    alerts = [
        am_alert({f"l{j}": "v" for j in range(n_labels)} | {"alertname": f"S{i}"}, "2026-01-01T00:00:00Z")
        for i in range(n_alerts)
    ]
    return json.dumps({"receiver": "r", "alerts": alerts}, separators=(",", ":")).encode()


def test_decoded_bytes_count_what_the_batch_holds() -> None:
    body = many_short_labels()
    batch = decode(body)
    # Each 8-byte label ("l7":"v",) becomes two Strings, a tuple and two JSON copies in memory.
    assert batch.decoded_bytes > 8 * batch.body_bytes, (batch.decoded_bytes, batch.body_bytes)
    # It grows with what is held: twice the alerts, about twice the bytes.
    double = decode(many_short_labels(n_alerts=400))
    assert 1.8 < double.decoded_bytes / batch.decoded_bytes < 2.2


def test_queue_bound_refuses_by_decoded_size(tmp_path: Path) -> None:
    """Before: the bound counted body bytes, so a stalled database could hold 11-14x the bound."""
    batch = decode(many_short_labels())

    class Stalled(SQLiteStore):
        async def write(self, batches: Sequence[Batch]) -> Any:
            await asyncio.sleep(3600)

    async def main() -> None:
        store = Stalled(f"sqlite:///{tmp_path}/q.db")
        # Room for three bodies, not for two decoded batches.
        batcher = Batcher(store, ack_enqueue=True, max_queue_bytes=3 * batch.body_bytes + batch.decoded_bytes)
        batcher.start()
        await batcher.submit(batch)
        assert batcher.queued_bytes == batch.decoded_bytes
        with pytest.raises(QueueFull):
            await batcher.submit(decode(many_short_labels()))
        for task in batcher._flushers:
            task.cancel()
        await asyncio.gather(*batcher._flushers, return_exceptions=True)

    asyncio.run(main())


def test_a_body_is_decoded_only_as_far_as_the_queue_has_room(tmp_path: Path) -> None:
    """Before: a body was decoded whole and only then weighed against the queue, so one
    adversarial body near the cap could take 10-15x its size before the bound said no."""
    from webhookfast.errors import HTTPError
    from webhookfast.http import Context
    from webhookfast.ingest.handler import BodyReader, Ingest

    small = many_short_labels(n_alerts=20)
    big = many_short_labels(n_alerts=400)
    held_small = decode(small).decoded_bytes
    held_big = decode(big).decoded_bytes

    class Stalled(SQLiteStore):
        async def write(self, batches: Sequence[Batch]) -> Any:
            await asyncio.sleep(3600)

    class Scope:
        def __init__(self, body: bytes) -> None:
            self.headers = {"content-type": "application/json", "content-length": str(len(body))}

    class Proto:
        def __init__(self, body: bytes) -> None:
            self.body = body

        async def __call__(self) -> bytes:
            return self.body

    async def post(ingest: Ingest, body: bytes) -> tuple[int, str]:
        try:
            answer = await ingest(Context(Scope(body), Proto(body), None, 0.0))
        except HTTPError as err:
            return err.status, err.code
        return 200, json.loads(answer)["status"]

    async def main() -> None:
        store = Stalled(f"sqlite:///{tmp_path}/q.db")
        # The queue has room for the small body twice, not three times; the big body passes the
        # body cap but, decoded, not what one request may take (two copies of a largest body).
        bound = 2 * held_small + held_small // 2
        batcher = Batcher(store, ack_enqueue=True, max_queue_bytes=bound)
        batcher.start()
        ingest = Ingest(batcher, Limits(), BodyReader(len(big), 5.0), 1, durable=False)
        assert ingest.lone_decode_bytes < held_big
        # Alone in an empty queue it would never fit: 413, not a retry for ever.
        assert await post(ingest, big) == (413, "payload_too_large")
        assert batcher.queued_bytes == 0
        assert await post(ingest, small) == (200, "queued")
        assert await post(ingest, small) == (200, "queued")
        # Now the room left is less than a small body: 503 (retry later), nothing queued.
        queued = batcher.queued_bytes
        assert await post(ingest, small) == (503, "overloaded")
        assert batcher.queued_bytes == queued
        # A notification of no alerts never reaches the queue: 200 even when the queue is past
        # its bound (the first batch always enters; here a bound of one byte).
        full = Batcher(store, ack_enqueue=True, max_queue_bytes=1)
        full.start()
        tiny = Ingest(full, Limits(), BodyReader(len(big), 5.0), 1, durable=False)
        assert await post(tiny, small) == (200, "queued")
        assert full.queued_bytes > full.max_queue_bytes
        assert await post(tiny, b'{"receiver":"r","alerts":[]}') == (200, "queued")
        assert await post(tiny, b"[]") == (200, "queued")
        for task in full._flushers:
            task.cancel()
        await asyncio.gather(*full._flushers, return_exceptions=True)
        tiny.reader.close()
        for task in batcher._flushers:
            task.cancel()
        await asyncio.gather(*batcher._flushers, return_exceptions=True)
        ingest.reader.close()

    asyncio.run(main())


# -- 3. times outside years 0001-9999 in UTC; cursors over the edges ---------------------------------


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:30:00+01:00",  # 0000-12-31T23:30:00Z
        "0001-01-01T00:00:00.5+00:01",
        "9999-12-31T23:59:59-00:01",  # 10000-01-01T00:00:59Z
        "9999-12-31T12:00:00-23:59",
    ],
)
def test_times_outside_the_four_digit_years_are_refused(sqlite_server: Any, when: str) -> None:
    for body, path in (
        (am_body([am_alert({"alertname": "Edge"}, when)]), "alerts[0].startsAt"),
        (
            json.dumps(
                [{"labels": {"alertname": "Edge"}, "startsAt": "2026-01-01T00:00:00Z", "endsAt": when}]
            ).encode(),
            "[0].endsAt" if when.startswith("9999") else None,
        ),
    ):
        resp = sqlite_server.post("/webhook", body)
        if path is None:  # an endsAt in year 0000 is also before startsAt: refused either way
            assert_error(resp, 422, "invalid_time")
        else:
            assert_error(resp, 422, "invalid_time", path)
    assert sqlite_server.get("/api/v1/alerts").json()["alerts"] == []


EDGE_STARTS = [
    "0001-01-01T00:00:00.000001Z",
    "0001-01-01T01:00:00.000001+01:00",
    "0001-01-02T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2026-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T22:59:59.999999-01:00",
    "9999-12-31T23:59:59.999998Z",
]


@pytest.mark.parametrize(
    "sort,order", [("starts_at", "desc"), ("starts_at", "asc"), ("last_seen", "desc"), ("last_seen", "asc")]
)
def test_cursor_pages_over_edge_times_make_progress(server_factory: Any, store_url: str, sort: str, order: str) -> None:
    server = server_factory(store_url)
    # Several label sets on every edge time (ties on starts_at are broken by fingerprint).
    alerts = [am_alert({"alertname": "Edge", "i": str(i)}, s) for i, s in enumerate(EDGE_STARTS)]
    alerts += [am_alert({"alertname": "Twin", "i": str(i)}, s) for i, s in enumerate(EDGE_STARTS)]
    resp = server.post("/webhook", am_body(alerts))
    assert resp.status == 200, resp.body[:300]
    seen: list[tuple[str, str]] = []
    cursor = None
    for _ in range(len(alerts) + 2):
        url = f"/api/v1/alerts?limit=3&sort={sort}&order={order}"
        if cursor:
            url += "&cursor=" + quote(cursor)
        page = server.get(url).json()
        seen += [(a["fingerprint"], a["starts_at"]) for a in page["alerts"]]  # type: ignore[index]
        cursor = page["next_cursor"]  # type: ignore[index]
        if cursor is None:
            break
    assert cursor is None, "paging did not end"
    assert len(seen) == len(set(seen)) == len(alerts)
    starts = [s for _, s in seen]
    assert "0001-01-01T00:00:00.000001Z" in starts and "9999-12-31T23:59:59.999999Z" in starts
    if sort == "starts_at":
        assert starts == sorted(starts, reverse=order == "desc")


# -- 4. endsAt before startsAt; the Prometheus format's reopening rule -------------------------------


@pytest.mark.parametrize(
    "body,path",
    [
        (
            am_body(
                [am_alert({"alertname": "Neg"}, "2026-01-01T10:00:00Z", "resolved", "2026-01-01T09:59:59.999999Z")]
            ),
            "alerts[0].endsAt",
        ),
        (
            json.dumps(
                [
                    {
                        "labels": {"alertname": "Neg"},
                        "startsAt": "2026-01-01T10:00:00+02:00",
                        "endsAt": "2026-01-01T07:59:59Z",
                    }
                ]
            ).encode(),
            "[0].endsAt",
        ),
        (
            json.dumps(
                {
                    "labels": {"alertname": "Neg"},
                    "status": "resolved",
                    "startsAt": "2026-01-01T10:00:00Z",
                    "endsAt": "2026-01-01T09:00:00Z",
                }
            ).encode(),
            "endsAt",
        ),
    ],
)
def test_ends_before_starts_is_refused(sqlite_server: Any, body: bytes, path: str) -> None:
    with pytest.raises(PayloadError) as err:
        decode(body)
    assert err.value.reason == "invalid_time" and err.value.path == path  # type: ignore[attr-defined]
    assert_error(sqlite_server.post("/webhook", body), 422, "invalid_time", path)
    assert sqlite_server.get("/api/v1/alerts").json()["alerts"] == []


def test_go_zero_end_and_missing_start_are_still_accepted() -> None:
    zero = decode(am_body([am_alert({"alertname": "Z"}, "2026-01-01T10:00:00Z")]))
    assert zero.to_dicts()[0]["ends_at_us"] is None
    # Without startsAt an ended alert starts at its end (as in Alertmanager's API), not at arrival.
    ended = decode(json.dumps({"labels": {"alertname": "Z"}, "endsAt": "2026-01-01T10:00:00Z"}).encode())
    (a,) = ended.to_dicts()
    assert a["starts_at_us"] == a["ends_at_us"] == 1_767_261_600_000_000 and a["status"] == "resolved"


def prom_body(starts: datetime, ends: datetime, labels: dict[str, str] | None = None) -> bytes:
    return json.dumps(
        [{"labels": labels or {"alertname": "Late"}, "startsAt": rfc3339(starts), "endsAt": rfc3339(ends)}]
    ).encode()


def test_a_later_prometheus_send_reopens_what_its_late_send_resolved(server_factory: Any, store_url: str) -> None:
    """Prometheus' list format has no status: firing iff endsAt is still ahead. A send that arrives
    after its own endsAt (a backlog, clock skew) is resolved; the next send, with a later endsAt
    still ahead, must make the instance firing again, as Alertmanager would."""
    server = server_factory(store_url)
    fp = fingerprint({"alertname": "Late"})
    now = datetime.now(timezone.utc)
    starts = now - timedelta(minutes=10)
    assert server.post("/api/v2/alerts", prom_body(starts, now - timedelta(minutes=1))).status == 200
    (inst,) = instances(server, fp)
    assert inst["status"] == "resolved"

    ahead = now + timedelta(minutes=4)
    assert server.post("/api/v2/alerts", prom_body(starts, ahead)).status == 200
    (inst,) = instances(server, fp)
    assert inst["status"] == "firing" and inst["ends_at"] == rfc3339(ahead), inst

    # A stale retry (an earlier endsAt, still ahead) neither resolves it nor moves its end back.
    assert server.post("/api/v2/alerts", prom_body(starts, now + timedelta(minutes=2))).status == 200
    (inst,) = instances(server, fp)
    assert inst["status"] == "firing" and inst["ends_at"] == rfc3339(ahead), inst

    # It resolves as usual afterwards (endsAt just past), once.
    assert server.post("/api/v2/alerts", prom_body(starts, now - timedelta(seconds=1))).status == 200
    (inst,) = instances(server, fp)
    assert inst["status"] == "resolved" and inst["ends_at"] == rfc3339(now - timedelta(seconds=1))
    assert inst["notifications"] == 4


T0 = 1_800_000_000_000_000  # µs


def at(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)


def status_of(url: str, labels: dict[str, str]) -> tuple[str, int | None]:
    fpi = fingerprint_to_int(fingerprint(labels))
    eps, _ = _read_history(url, fpi)
    ((_, status, ends, *_),) = eps
    return status, ends


def test_a_stale_prometheus_retry_does_not_reopen(store_url: str) -> None:
    """The resolution (received later, endsAt E) commits first; then a retry of an older firing
    send whose endsAt is before E (it was still ahead when it was sent): it stays resolved."""
    starts = at(T0)
    resolved = decode(prom_body(starts, at(T0 + 100_000_000)), received_at_us=T0 + 110_000_000)
    stale = decode(prom_body(starts, at(T0 + 90_000_000)), received_at_us=T0 + 30_000_000)
    assert (resolved.resolved, stale.firing) == (1, 1)
    write_flushes(store_url, [resolved], [stale])
    assert status_of(store_url, {"alertname": "Late"}) == ("resolved", T0 + 100_000_000)
    # In one flush, the same.
    write_flushes(
        store_url,
        [
            decode(prom_body(starts, at(T0 + 95_000_000), {"alertname": "One"}), received_at_us=T0 + 200_000_000),
            decode(prom_body(starts, at(T0 + 90_000_000), {"alertname": "One"}), received_at_us=T0 + 201_000_000),
        ],
    )
    assert status_of(store_url, {"alertname": "One"})[0] == "resolved"


def test_an_explicit_resolution_is_never_reopened(store_url: str) -> None:
    """Alertmanager's webhook says resolved: HA twins, retries and even a Prometheus send with a
    later endsAt leave it resolved."""
    labels = {"alertname": "Explicit"}
    starts = at(T0)
    ends = at(T0 + 60_000_000)
    resolved = decode(
        am_body([am_alert(labels, rfc3339(starts), "resolved", rfc3339(ends))]), received_at_us=T0 + 61_000_000
    )
    retry = decode(am_body([am_alert(labels, rfc3339(starts))]), received_at_us=T0 + 62_000_000)
    prom = decode(prom_body(starts, at(T0 + 900_000_000), labels), received_at_us=T0 + 63_000_000)
    assert prom.firing == 1
    write_flushes(store_url, [resolved], [retry], [prom])
    assert status_of(store_url, labels) == ("resolved", T0 + 60_000_000)


# -- retention of notification groups ----------------------------------------------------------------

DAY = 86_400_000_000
HOUR = 3_600_000_000


def groups_of(url: str) -> dict[str, int]:
    """receiver → last_used (µs) of every stored notification group."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return dict(conn.execute("SELECT receiver, last_used FROM notification_groups").fetchall())
    with psycopg.connect(url, options="-c TimeZone=UTC") as conn:
        rows = conn.execute("SELECT receiver, last_used FROM notification_groups").fetchall()
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return {r: (t - epoch) // timedelta(microseconds=1) for r, t in rows}


def test_retention_deletes_groups_no_kept_row_refers_to(store_url: str) -> None:
    old, new = T0 - 10 * DAY, T0

    def batch(receiver: str, name: str, at_us: int) -> Batch:
        return decode(
            am_body([am_alert({"alertname": name}, rfc3339(at(at_us)))], receiver=receiver), received_at_us=at_us
        )

    write_flushes(
        store_url,
        [batch("gone", "Old", old), batch("shared", "OldShared", old)],
        [batch("shared", "NewShared", new), batch("kept", "New", new)],
    )
    assert groups_of(store_url) == {"gone": old, "shared": new, "kept": new}

    async def prune() -> int:
        store = open_store(store_url)
        await store.open()
        try:
            return await store.prune(T0 - DAY)
        finally:
            await store.close()

    asyncio.run(prune())
    assert set(groups_of(store_url)) == {"shared", "kept"}
    for name, receiver in (("NewShared", "shared"), ("New", "kept")):
        eps, evs = _read_history(store_url, fingerprint_to_int(fingerprint({"alertname": name})))
        assert [e[6] for e in eps] == [receiver] and [e[4] for e in evs] == [receiver]


def test_a_group_is_touched_once_per_slack_not_per_flush(store_url: str) -> None:
    def batch(at_us: int) -> Batch:
        return decode(
            am_body([am_alert({"alertname": "Busy"}, rfc3339(at(T0)))], receiver="busy"), received_at_us=at_us
        )

    write_flushes(store_url, [batch(T0)], [batch(T0 + HOUR // 2)], [batch(T0 + HOUR)])
    assert groups_of(store_url) == {"busy": T0}  # within the slack: left alone
    write_flushes(store_url, [batch(T0 + HOUR + 1)])
    assert groups_of(store_url) == {"busy": T0 + HOUR + 1}


@pytest.mark.parametrize("groups", [2, 4, 5, 12])  # PostgreSQL: a statement per group up to 4, a join above
def test_a_flush_of_many_groups_touches_each_lagging_one(store_url: str, groups: int) -> None:
    def batch(receiver: str, at_us: int) -> Batch:
        return decode(
            am_body([am_alert({"alertname": "Many", "r": receiver}, rfc3339(at(T0)))], receiver=receiver),
            received_at_us=at_us,
        )

    names = [f"r{i:02d}" for i in range(groups)]
    lagging = set(names[::2])
    write_flushes(store_url, [batch(r, T0 if r in lagging else T0 + HOUR) for r in names])
    write_flushes(store_url, [batch(r, T0 + HOUR + 1) for r in names])  # one flush, every group in it
    assert groups_of(store_url) == {r: T0 + HOUR + 1 if r in lagging else T0 + HOUR for r in names}


@pytest.mark.postgres
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_cursors_progress_over_out_of_range_rows_stored_before_0006(
    server_factory: Any, pg_url: str, order: str
) -> None:
    """Times outside years 0001-9999 in UTC were accepted before, and PostgreSQL keeps them; the
    cursor once clamped them to year 0001/9999 and repeated or skipped rows for ever."""
    starts = [
        "0001-12-31 23:00:00+00 BC",
        "0001-12-31 23:00:00.5+00 BC",
        "0001-01-01 00:00:00.000001+00",
        "2026-01-01 00:00:00+00",
        "9999-12-31 23:59:59.999999+00",
        "10000-01-01 00:00:59+00",
    ]
    with psycopg.connect(pg_url) as conn:
        for i, s in enumerate(starts):
            for name in ("A", "B"):
                labels = {"alertname": name, "i": str(i)}
                fpi = fingerprint_to_int(fingerprint(labels))
                conn.execute("INSERT INTO label_sets VALUES (%s, %s, %s, '')", (fpi, json.dumps(labels), name))
                conn.execute(
                    "INSERT INTO alerts (fingerprint, starts_at, status, ends_at, first_seen, last_seen, "
                    "notifications, receiver) VALUES (%s, %s::timestamptz, 'firing', NULL, now(), now(), 1, 'old')",
                    (fpi, s),
                )
    server = server_factory(pg_url)
    seen: list[str] = []
    cursor = None
    for _ in range(2 * len(starts) + 2):
        url = f"/api/v1/alerts?limit=1&order={order}" + ("&cursor=" + quote(cursor) if cursor else "")
        resp = server.get(url)
        assert resp.status == 200, resp.body[:300]
        page = resp.json()
        seen += [a["fingerprint"] for a in page["alerts"]]  # type: ignore[index]
        cursor = page["next_cursor"]  # type: ignore[index]
        if cursor is None:
            break
    assert cursor is None, "paging did not end"
    assert len(seen) == len(set(seen)) == 2 * len(starts)


@pytest.fixture(params=STORES)
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/upgrade.db"
        return
    from support.postgres import empty_database

    with empty_database(request.getfixturevalue("postgres_server")) as url:
        yield url


def test_upgrade_to_0006_keeps_old_rows_readable(unmigrated_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database with history from before 0006 (receiver inline, in a monthly partition on
    PostgreSQL) is migrated in place; old and new rows then read back with their receivers."""
    from webhookfast.storage import migrations

    url = unmigrated_url
    load = migrations.load
    monkeypatch.setattr(migrations, "load", lambda dialect: [m for m in load(dialect) if m.version < 6])
    open_store(url).migrate()  # type: ignore[attr-defined]
    monkeypatch.setattr(migrations, "load", load)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    old_fp = fingerprint_to_int(fingerprint({"alertname": "Before"}))
    if url.startswith("sqlite:"):
        start: Any = (now - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        p = "?"
    else:
        start = now
        conn = psycopg.connect(url)
        p = "%s"
    with conn:
        conn.execute(f"INSERT INTO label_sets VALUES ({p}, '{{\"alertname\":\"Before\"}}', 'Before', '')", (old_fp,))
        conn.execute(
            f"INSERT INTO alert_events VALUES ({p}, {p}, 'firing', NULL, {p}, 'rx-before', 'gk-before', "
            "'alertmanager', '', '{}')",
            (old_fp, start, start),
        )
        conn.execute(
            f"INSERT INTO alerts VALUES ({p}, {p}, 'firing', NULL, {p}, {p}, 1, 'rx-before')",
            (old_fp, start, start, start),
        )
    conn.close()

    assert open_store(url).migrate()[0] == "0006_notification_groups"  # later migrations may follow
    write_flushes(
        url,
        [decode(am_body([am_alert({"alertname": "After"}, rfc3339(now))], receiver="rx-after", group_key="gk-after"))],
    )
    eps, evs = _read_history(url, old_fp)
    assert [e[6] for e in eps] == ["rx-before"] and [(e[4], e[5]) for e in evs] == [("rx-before", "gk-before")]
    eps, evs = _read_history(url, fingerprint_to_int(fingerprint({"alertname": "After"})))
    assert [e[6] for e in eps] == ["rx-after"] and [(e[4], e[5]) for e in evs] == [("rx-after", "gk-after")]


def test_a_page_passes_its_byte_bound_by_one_row_at_most_on_sqlite(tmp_path: Path) -> None:
    """Small rows first, then large ones: the reader must not fetch a run of large rows at once
    because the first rows were small (100 rows of 1 MiB against a 4 MiB bound before)."""
    from webhookfast.storage.readers import SQLiteReader, row_bytes

    path = tmp_path / "page.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (i INTEGER, s TEXT)")
        conn.execute("INSERT INTO t VALUES (0, 'x')")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, "y" * (1 << 20)) for i in range(1, 200)])

    async def main() -> None:
        reader = SQLiteReader(str(path), threads=1)
        try:
            rows, cut = await reader.page(("SELECT i, s FROM t ORDER BY i", []), 1000, 4 << 20)
        finally:
            await reader.close()
        assert cut
        held = sum(row_bytes(r) for r in rows)
        assert 4 << 20 < held <= (4 << 20) + (1 << 20) + 64, (len(rows), held)
        assert [r[0] for r in rows] == list(range(len(rows)))

    asyncio.run(main())
