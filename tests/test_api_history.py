"""The alert-history API (webhookfast.history) on both stores.

Every test runs on SQLite and on PostgreSQL; the stores are filled through the real write path
(``_core.decode`` → ``store.write``) with one small, hand-checked history, and the handlers are
called in-process with a fake RSGI scope. ``test_same_answers_on_both_stores`` also compares the
complete JSON answers of the two stores for a list of requests.

History (T = 2024-05-01T00:00:00Z, clock = T+10h):

    A  HighCPU critical job=api team=sre    T+0h..T+1h, T+2h..T+2h30m, T+3h..T+3h10m (resolved)
    B  HighCPU warning  job=api-gateway     T+1h.. firing (notified twice)
    C  DiskFull critical job=db (no team)   T+4h..T+6h resolved, annotation "Disk /var is 95% full"
    D  InstanceDown info team=x             T+5h.. firing, endsAt T+5h04m (expired: not firing now)
    E  Watchdog (no severity, no team)      T+30m.. firing
    F  Weird warning note="Ünïcode\\nline2"   T+7h.. firing
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from webhookfast._core import AlertNames, decode, fingerprint
from webhookfast.errors import HTTPError
from webhookfast.history import HistoryApi, handlers
from webhookfast.history.params import DEFAULT_STATS_WINDOW_US, StatsParams, parse_params, to_us
from webhookfast.http import Context
from webhookfast.storage import open_store
from webhookfast.storage.readers import SQLiteReader
from webhookfast.storage.sqlite import SQLiteStore

pytestmark = pytest.mark.timeout(120)

T = to_us(datetime(2024, 5, 1, tzinfo=timezone.utc))
MIN = 60 * 10**6
H = 60 * MIN
CLOCK = T + 10 * H


def iso(us: int) -> str:
    # Written independently of the API's formatter (webhookfast._core.format_time) on purpose.
    return (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


LABELS = {
    "A": {"alertname": "HighCPU", "severity": "critical", "job": "api", "instance": "a1", "team": "sre"},
    "B": {"alertname": "HighCPU", "severity": "warning", "job": "api-gateway", "instance": "b1", "team": "web"},
    "C": {"alertname": "DiskFull", "severity": "critical", "job": "db", "instance": "c1"},
    "D": {"alertname": "InstanceDown", "severity": "info", "job": "node", "instance": "d1", "team": "x"},
    "E": {"alertname": "Watchdog", "job": "prom"},
    "F": {"alertname": "Weird", "severity": "warning", "note": "Ünïcode\nline2"},
}
FP = {k: fingerprint(v) for k, v in LABELS.items()}
ANNOTATIONS = {
    "C": {"summary": "Disk /var is 95% full", "runbook": "https://runbooks/disk"},
}


def _alert(key: str, status: str, starts: int, ends: int | None = None) -> dict[str, Any]:
    a: dict[str, Any] = {
        "status": status,
        "labels": LABELS[key],
        "annotations": ANNOTATIONS.get(key, {"summary": f"{LABELS[key]['alertname']} {status}"}),
        "startsAt": iso(starts),
        "endsAt": iso(ends) if ends is not None else "0001-01-01T00:00:00Z",
        "generatorURL": f"http://prom/{key}",
    }
    return a


def _delivery(receiver: str, alerts: list[dict[str, Any]]) -> bytes:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return orjson.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{receiver="{receiver}"}}',
            "status": status,
            "receiver": receiver,
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://am",
            "alerts": alerts,
        }
    )


# (received_at, receiver, alerts)
DELIVERIES: list[tuple[int, str, list[dict[str, Any]]]] = [
    (T + 1 * MIN, "team-sre", [_alert("A", "firing", T)]),
    (T + 31 * MIN, "team-sre", [_alert("A", "firing", T), _alert("E", "firing", T + 30 * MIN)]),
    (T + H + MIN, "team-sre", [_alert("A", "resolved", T, T + H)]),
    (T + H + MIN, "team-web", [_alert("B", "firing", T + H)]),
    (T + 2 * H + MIN, "team-sre", [_alert("A", "firing", T + 2 * H)]),
    (T + 2 * H + 31 * MIN, "team-sre", [_alert("A", "resolved", T + 2 * H, T + 2 * H + 30 * MIN)]),
    (T + 3 * H + MIN, "team-sre", [_alert("A", "firing", T + 3 * H)]),
    (T + 3 * H + 11 * MIN, "team-sre", [_alert("A", "resolved", T + 3 * H, T + 3 * H + 10 * MIN)]),
    (T + 4 * H + MIN, "team-dba", [_alert("C", "firing", T + 4 * H)]),
    (T + 5 * H, "team-web", [_alert("B", "firing", T + H)]),
    (T + 5 * H + MIN, "team-x", [_alert("D", "firing", T + 5 * H, T + 5 * H + 4 * MIN)]),
    (T + 6 * H + MIN, "team-dba", [_alert("C", "resolved", T + 4 * H, T + 6 * H)]),
    (T + 7 * H + MIN, "team-sre", [_alert("F", "firing", T + 7 * H)]),
]

# Instances, newest start first: (key, starts_at)
ALL = [("F", 7 * H), ("D", 5 * H), ("C", 4 * H), ("A", 3 * H), ("A", 2 * H), ("B", H), ("E", 30 * MIN), ("A", 0)]


class Scope:
    def __init__(self, path: str, query: str) -> None:
        self.method = "GET"
        self.path = path
        self.query_string = query
        self.headers: dict[str, str] = {}
        self.client = "127.0.0.1:12345"


class Env:
    """A filled store, the API over it, and the event loop they live on."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = open_store(url)
        self.loop.run_until_complete(self.store.open())
        self.write(DELIVERIES)
        self.api = HistoryApi(self.store, clock=lambda: CLOCK)
        self.routes = {path: handlers["GET"] for _, path, handlers in self.api.routes()}

    def write(self, deliveries: list[tuple[int, str, list[dict[str, Any]]]]) -> None:
        for received, receiver, alerts in deliveries:
            batch = decode(_delivery(receiver, alerts), received_at_us=received)
            self.loop.run_until_complete(self.store.write([batch]))

    def call(self, path: str, query: str | dict[str, Any] = "") -> tuple[int, Any]:
        if isinstance(query, dict):
            query = urlencode(query)
        handler = self.routes.get(path)
        if handler is None:
            route = self.api.match(path)
            assert route is not None, path
            handler = route.handlers["GET"]
        ctx = Context(Scope(path, query), None, None, 0.0)
        try:
            resp = self.loop.run_until_complete(handler(ctx))
        except HTTPError as err:
            return err.status, {"code": err.code, "message": err.message, "path": err.path}
        assert resp.content_type == "application/json"
        return resp.status, orjson.loads(resp.body)

    def ok(self, path: str, query: str | dict[str, Any] = "") -> Any:
        status, body = self.call(path, query)
        assert status == 200, body
        return body

    def close(self) -> None:
        self.loop.run_until_complete(self.api.close())
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


def _sqlite_url(tmp_path: Any) -> str:
    url = f"sqlite:///{tmp_path}/history.db"
    SQLiteStore(url).migrate()
    return url


@contextlib.contextmanager
def _pg_database(server: Any) -> Iterator[str]:
    """A fresh migrated database on the session's server (like ``pg_url``, but for any scope)."""
    import psycopg
    from psycopg import sql
    from support.postgres import database_url
    from webhookfast.storage.postgres import PostgresStore

    server.ensure_running()
    name = f"test_api_{uuid.uuid4().hex}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = database_url(server.url, name)
        PostgresStore(url).migrate()
        yield url
    finally:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """The history, filled once per store: for tests that only read."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = _sqlite_url(tmp_path_factory.mktemp("history"))
        else:
            url = stack.enter_context(_pg_database(request.getfixturevalue("postgres_server")))
        e = Env(url)
        try:
            yield e
        finally:
            e.close()


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_env(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Env]:
    """The history in a database of this test's own: for tests that write."""
    url = _sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("pg_url")
    e = Env(url)
    try:
        yield e
    finally:
        e.close()


def keys(body: dict[str, Any]) -> list[tuple[str, int]]:
    """The (alert key, start offset) of each listed instance."""
    by_fp = {v: k for k, v in FP.items()}
    out = []
    for a in body["alerts"]:
        starts = to_us(datetime.fromisoformat(a["starts_at"].replace("Z", "+00:00")))
        out.append((by_fp[a["fingerprint"]], starts - T))
    return out


# -- GET /api/v1/alerts ---------------------------------------------------------------------------


def test_list_default_order_and_shape(env: Env) -> None:
    body = env.ok("/api/v1/alerts")
    assert keys(body) == ALL
    assert body["next_cursor"] is None
    c = next(a for a in body["alerts"] if a["fingerprint"] == FP["C"])
    assert c == {
        "fingerprint": FP["C"],
        "labels": LABELS["C"],
        "annotations": ANNOTATIONS["C"],
        "status": "resolved",
        "starts_at": "2024-05-01T04:00:00.000000Z",
        "ends_at": "2024-05-01T06:00:00.000000Z",
        "first_seen": "2024-05-01T04:01:00.000000Z",
        "last_seen": "2024-05-01T06:01:00.000000Z",
        "notifications": 2,
        "receiver": "team-dba",
    }
    b = next(a for a in body["alerts"] if a["fingerprint"] == FP["B"])
    assert (b["status"], b["ends_at"], b["notifications"]) == ("firing", None, 2)
    assert b["last_seen"] == "2024-05-01T05:00:00.000000Z"
    f = next(a for a in body["alerts"] if a["fingerprint"] == FP["F"])
    assert f["labels"]["note"] == "Ünïcode\nline2"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "firing"}, [("F", 7 * H), ("D", 5 * H), ("B", H), ("E", 30 * MIN)]),
        ({"status": "resolved"}, [("C", 4 * H), ("A", 3 * H), ("A", 2 * H), ("A", 0)]),
        ({"match": '{severity="critical"}'}, [("C", 4 * H), ("A", 3 * H), ("A", 2 * H), ("A", 0)]),
        ({"match": '{job=~"api.*"}'}, [("A", 3 * H), ("A", 2 * H), ("B", H), ("A", 0)]),
        ({"match": '{job=~"api"}'}, [("A", 3 * H), ("A", 2 * H), ("A", 0)]),  # anchored
        ({"match": '{job=~"pi"}'}, []),
        ({"match": '{team!="x"}'}, [k for k in ALL if k[0] != "D"]),
        ({"match": '{team=""}'}, [("F", 7 * H), ("C", 4 * H), ("E", 30 * MIN)]),
        ({"match": '{team!~"sre|web"}'}, [("F", 7 * H), ("D", 5 * H), ("C", 4 * H), ("E", 30 * MIN)]),
        ({"match": '{team=~".+"}'}, [k for k in ALL if k[0] in "ABD"]),
        ({"match": '{note=~"Ü.*line2"}'}, [("F", 7 * H)]),  # "." crosses the newline
        ({"match": '{alertname=~"(?i)highcpu"}'}, [("A", 3 * H), ("A", 2 * H), ("B", H), ("A", 0)]),
        ({"match": '{note=~"(?i)ü.*"}'}, [("F", 7 * H)]),  # Unicode case folding, as Prometheus (both stores)
        ({"match": '{note=~"\\\\w+.*"}'}, []),  # \w is ASCII-only: "Ü" is not a word character
        ({"match": '{severity=""}'}, [("E", 30 * MIN)]),
        ({"match": 'HighCPU{severity!="warning"}'}, [("A", 3 * H), ("A", 2 * H), ("A", 0)]),
        (
            {"match": '{alertname=~"High.*|Disk.*", job!~"api-.*"}'},
            [("C", 4 * H), ("A", 3 * H), ("A", 2 * H), ("A", 0)],
        ),
        ({"match": "{}"}, ALL),
        (
            {"since": "2024-05-01T02:00:00Z", "until": "2024-05-01T05:00:00Z"},
            [("C", 4 * H), ("A", 3 * H), ("A", 2 * H)],
        ),
        ({"until": "2024-05-01T04:00:00Z", "since": "2024-05-01T03:00:00+00:00"}, [("A", 3 * H)]),  # until exclusive
        ({"since": "4h"}, [("F", 7 * H)]),  # relative to the clock (T+10h)
        ({"since": "-9h30m", "until": "now"}, [k for k in ALL if k[1] >= 30 * MIN]),
        ({"since": "2024-05-01T06:00:00+02:00"}, [k for k in ALL if k[1] >= 4 * H]),
        ({"fingerprint": FP["A"]}, [("A", 3 * H), ("A", 2 * H), ("A", 0)]),
        ({"fingerprint": FP["A"].upper(), "status": "firing"}, []),
        ({"q": "95%"}, [("C", 4 * H)]),
        ({"q": "DISK /VAR"}, [("C", 4 * H)]),  # ASCII case-insensitive
        ({"q": "HighCPU resolved"}, [("A", 3 * H), ("A", 2 * H), ("A", 0)]),  # latest state's annotations
        ({"sort": "starts_at", "order": "asc"}, ALL[::-1]),
        (
            {"status": "firing", "match": '{severity="warning"}', "since": "2024-05-01T00:00:00Z"},
            [("F", 7 * H), ("B", H)],
        ),
    ],
)
def test_list_filters(env: Env, query: dict[str, str], expected: list[tuple[str, int]]) -> None:
    assert keys(env.ok("/api/v1/alerts", query)) == expected


def test_list_sort_by_last_seen(env: Env) -> None:
    body = env.ok("/api/v1/alerts", {"sort": "last_seen"})
    seen = [a["last_seen"] for a in body["alerts"]]
    assert seen == sorted(seen, reverse=True)
    assert keys(body)[:3] == [("F", 7 * H), ("C", 4 * H), ("D", 5 * H)]
    asc = env.ok("/api/v1/alerts", {"sort": "last_seen", "order": "asc"})
    assert keys(asc) == keys(body)[::-1]


@pytest.mark.parametrize("sort", ["starts_at", "last_seen"])
@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("limit", [1, 3])
def test_pagination_walks_everything_once(env: Env, sort: str, order: str, limit: int) -> None:
    full = keys(env.ok("/api/v1/alerts", {"sort": sort, "order": order}))
    got: list[tuple[str, int]] = []
    query: dict[str, Any] = {"sort": sort, "order": order, "limit": limit}
    for _ in range(20):
        body = env.ok("/api/v1/alerts", query)
        assert len(body["alerts"]) <= limit
        got += keys(body)
        if body["next_cursor"] is None:
            break
        query["cursor"] = body["next_cursor"]
    assert got == full


def test_pagination_is_stable_under_concurrent_inserts(fresh_env: Env) -> None:
    env = fresh_env
    page1 = env.ok("/api/v1/alerts", {"limit": 3})
    assert keys(page1) == ALL[:3]
    # New instances arrive between two pages: one newer than the cursor, one older than page 1 ends.
    env.write(
        [
            (T + 9 * H, "team-sre", [_alert("E", "firing", T + 8 * H)]),
            (T + 9 * H, "team-sre", [_alert("B", "firing", T + 3 * H + 30 * MIN)]),
        ]
    )
    rest: list[tuple[str, int]] = []
    query: dict[str, Any] = {"limit": 3, "cursor": page1["next_cursor"]}
    while True:
        body = env.ok("/api/v1/alerts", query)
        rest += keys(body)
        if body["next_cursor"] is None:
            break
        query["cursor"] = body["next_cursor"]
    # No repeat, nothing skipped; the older newcomer is found, the newer one belongs to page 0.
    assert rest == [
        ("B", 3 * H + 30 * MIN),
        ("A", 3 * H),
        ("A", 2 * H),
        ("B", H),
        ("E", 30 * MIN),
        ("A", 0),
    ]
    assert keys(env.ok("/api/v1/alerts", {"limit": 1})) == [("E", 8 * H)]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"limit": "1001"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"foo": "1"}, "foo"),
        ({"match": '{severity="critical"'}, "match"),
        ({"match": "{severity=critical}"}, "match"),
        ({"match": '{severity=="x"}'}, "match"),
        ({"match": '{job=~"("}'}, "match"),
        ({"match": '{job=~"(a)\\\\1"}'}, "match"),  # backreference: not RE2
        ({"match": '{job=~"(?=a)"}'}, "match"),
        ({"since": "2024-05-01T05:00:00Z", "until": "2024-05-01T04:00:00Z"}, "since"),
        ({"since": "2024-05-01T05:00:00Z", "until": "2024-05-01T05:00:00Z"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-05-01T05:00:00"}, "until"),  # no offset
        ({"since": "2h5x"}, "since"),
        ({"status": "pending"}, "status"),
        ({"sort": "name"}, "sort"),
        ({"order": "up"}, "order"),
        ({"fingerprint": "xyz"}, "fingerprint"),
        ({"fingerprint": "0123456789abcdef0"}, "fingerprint"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"q": ""}, "q"),
    ],
)
def test_list_bad_parameters(env: Env, query: dict[str, str], param: str) -> None:
    status, err = env.call("/api/v1/alerts", query)
    assert status == 400, err
    assert err["code"] == "invalid_parameter"
    assert err["path"] == param, err


def test_list_repeated_parameter_and_foreign_cursor(env: Env) -> None:
    status, err = env.call("/api/v1/alerts", "status=firing&status=resolved")
    assert (status, err["path"]) == (400, "status")
    cursor = env.ok("/api/v1/alerts", {"limit": 1})["next_cursor"]
    status, err = env.call("/api/v1/alerts", {"limit": 1, "cursor": cursor, "sort": "last_seen"})
    assert (status, err["path"]) == (400, "cursor")
    status, err = env.call("/api/v1/alerts", {"limit": 1, "cursor": cursor, "order": "asc"})
    assert (status, err["path"]) == (400, "cursor")


# -- GET /api/v1/alerts/{fingerprint} -------------------------------------------------------------


def test_alert_episodes_and_timeline(env: Env) -> None:
    body = env.ok(f"/api/v1/alerts/{FP['A']}")
    assert body["fingerprint"] == FP["A"]
    assert body["labels"] == LABELS["A"]
    assert body["summary"] == {
        "episodes": 3,
        "firing": 0,
        "notifications": 7,
        "first_started_at": "2024-05-01T00:00:00.000000Z",
        "last_seen": "2024-05-01T03:11:00.000000Z",
    }
    assert [e["starts_at"] for e in body["episodes"]] == [
        "2024-05-01T03:00:00.000000Z",
        "2024-05-01T02:00:00.000000Z",
        "2024-05-01T00:00:00.000000Z",
    ]
    oldest = body["episodes"][-1]
    assert oldest["notifications"] == 3
    assert (oldest["status"], oldest["ends_at"]) == ("resolved", "2024-05-01T01:00:00.000000Z")
    assert oldest["annotations"] == {"summary": "HighCPU resolved"}
    assert oldest["timeline"] == [
        {
            "status": "firing",
            "received_at": "2024-05-01T00:01:00.000000Z",
            "ends_at": None,
            "receiver": "team-sre",
            "group_key": '{}:{receiver="team-sre"}',
            "source": "alertmanager",
            "generator_url": "http://prom/A",
            "annotations": {"summary": "HighCPU firing"},
        },
        {
            "status": "resolved",
            "received_at": "2024-05-01T01:01:00.000000Z",
            "ends_at": "2024-05-01T01:00:00.000000Z",
            "receiver": "team-sre",
            "group_key": '{}:{receiver="team-sre"}',
            "source": "alertmanager",
            "generator_url": "http://prom/A",
            "annotations": {"summary": "HighCPU resolved"},
        },
    ]
    assert body["next_cursor"] is None


def test_alert_firing_and_paging(env: Env) -> None:
    b = env.ok(f"/api/v1/alerts/{FP['B']}")
    assert b["summary"]["firing"] == 1 and b["summary"]["notifications"] == 2
    assert [t["status"] for t in b["episodes"][0]["timeline"]] == ["firing"]
    page = env.ok(f"/api/v1/alerts/{FP['A']}", {"limit": 2})
    assert len(page["episodes"]) == 2 and page["next_cursor"]
    page2 = env.ok(f"/api/v1/alerts/{FP['A']}", {"limit": 2, "cursor": page["next_cursor"]})
    assert [e["starts_at"] for e in page2["episodes"]] == ["2024-05-01T00:00:00.000000Z"]
    assert len(page2["episodes"][0]["timeline"]) == 2
    assert page2["next_cursor"] is None


def test_alert_errors(env: Env) -> None:
    status, err = env.call("/api/v1/alerts/0123456789abcdef")
    assert (status, err["code"]) == (404, "not_found")
    status, err = env.call("/api/v1/alerts/nothex")
    assert (status, err["path"]) == (400, "fingerprint")
    status, err = env.call(f"/api/v1/alerts/{FP['A']}", {"limit": 5000})
    assert (status, err["path"]) == (400, "limit")
    status, err = env.call(f"/api/v1/alerts/{FP['A']}", {"status": "firing"})
    assert (status, err["path"]) == (400, "status")
    assert env.api.match("/api/v1/alerts/") is None
    assert env.api.match("/api/v1/alerts/a/b") is None
    assert env.api.match("/api/v1/other") is None
    route = env.api.match(f"/api/v1/alerts/{FP['A']}")
    assert route is not None and route.protected and route.path == "/api/v1/alerts/{fingerprint}"


# -- GET /api/v1/stats ----------------------------------------------------------------------------


def test_stats(env: Env) -> None:
    body = env.ok("/api/v1/stats", {"since": "2024-05-01T00:00:00Z", "until": "2024-05-01T10:00:00Z"})
    assert body["window"] == {"since": "2024-05-01T00:00:00.000000Z", "until": "2024-05-01T10:00:00.000000Z"}
    # D's endsAt (T+5h04m) has passed: it is not firing now.
    assert body["firing_now"] == {"total": 3, "by_severity": {"": 1, "warning": 2}}
    top = body["top_firing"]
    assert (top[0]["fingerprint"], top[0]["firings"], top[0]["notifications"]) == (FP["A"], 3, 7)
    assert top[0]["labels"] == LABELS["A"]
    assert sorted(t["fingerprint"] for t in top[1:]) == sorted(FP[k] for k in "BCDEF")
    assert all(t["firings"] == 1 for t in top[1:])
    assert body["flapping"] == {
        "min_changes": 4,
        "alerts": [{"fingerprint": FP["A"], "labels": LABELS["A"], "changes": 6, "firing": 3, "resolved": 3}],
    }
    assert body["time_to_resolve"] == [
        {"alertname": "DiskFull", "resolved": 1, "p50_seconds": 7200.0, "p90_seconds": 7200.0, "max_seconds": 7200.0},
        {"alertname": "HighCPU", "resolved": 3, "p50_seconds": 1800.0, "p90_seconds": 3600.0, "max_seconds": 3600.0},
    ]


def test_stats_parameters(env: Env) -> None:
    # Default window: the 24 hours before the clock.
    body = env.ok("/api/v1/stats", {"flap_min_changes": 2, "top": 2})
    assert body["window"]["until"] == "2024-05-01T10:00:00.000000Z"
    assert [a["fingerprint"] for a in body["flapping"]["alerts"]] == [FP["A"], FP["C"]]
    assert len(body["top_firing"]) == 2
    # A window and label matchers narrow every part.
    body = env.ok("/api/v1/stats", {"since": "6h", "match": '{severity=~"critical|warning"}'})  # T+4h..
    assert sorted(t["fingerprint"] for t in body["top_firing"]) == sorted([FP["C"], FP["F"]])
    assert body["time_to_resolve"][0]["alertname"] == "DiskFull"  # resolved at T+6h, inside
    assert body["firing_now"] == {"total": 2, "by_severity": {"warning": 2}}
    body = env.ok("/api/v1/stats", {"since": "2024-05-01T02:00:00Z", "until": "2024-05-01T03:30:00Z"})
    assert body["time_to_resolve"] == [
        {"alertname": "HighCPU", "resolved": 2, "p50_seconds": 600.0, "p90_seconds": 1800.0, "max_seconds": 1800.0}
    ]
    assert body["flapping"]["alerts"][0]["changes"] == 4


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"since": "1h", "until": "2h"}, "since"),
        ({"top": "0"}, "top"),
        ({"top": "100000"}, "top"),
        ({"flap_min_changes": "1"}, "flap_min_changes"),
        ({"limit": "10"}, "limit"),
        ({"match": "{a}"}, "match"),
    ],
)
def test_stats_bad_parameters(env: Env, query: dict[str, str], param: str) -> None:
    status, err = env.call("/api/v1/stats", query)
    assert (status, err["code"], err["path"]) == (400, "invalid_parameter", param)


# -- both stores, one answer ----------------------------------------------------------------------

SAME_ANSWER_REQUESTS = [
    ("/api/v1/alerts", {}),
    ("/api/v1/alerts", {"sort": "last_seen", "limit": 3}),
    ("/api/v1/alerts", {"match": '{job=~"api.*|db", team!~"w.*"}', "status": "resolved"}),
    ("/api/v1/alerts", {"q": "full", "since": "12h"}),
    ("/api/v1/alerts/" + FP["A"], {}),
    ("/api/v1/alerts/" + FP["F"], {}),
    ("/api/v1/stats", {}),
    ("/api/v1/stats", {"since": "2024-05-01T00:00:00Z", "flap_min_changes": 2, "top": 3}),
]


def test_same_answers_on_both_stores(tmp_path: Any, pg_url: str) -> None:
    lite, pg = Env(_sqlite_url(tmp_path)), Env(pg_url)
    try:
        for path, query in SAME_ANSWER_REQUESTS:
            assert lite.call(path, query) == pg.call(path, query), (path, query)
            # Byte for byte: keys are sorted on output, so JSON key order cannot differ either.
            a = lite.loop.run_until_complete(_raw(lite, path, query))
            b = pg.loop.run_until_complete(_raw(pg, path, query))
            assert a == b, (path, query)
    finally:
        lite.close()
        pg.close()


GENERATED_NOW = "2024-05-01T12:00:00Z"
STATS_REQUESTS = [
    "",
    "since=1h&flap_min_changes=2",
    "since=3d&top=50&flap_min_changes=2",
    'match={severity="critical"}&since=2d',
    'match={alertname=~"High.*",team!="payments"}&since=3d&top=5',
    "since=2024-04-01T00:00:00Z&until=2024-04-02T00:00:00Z",  # before the history: nothing at all
]


def test_statistics_agree_on_generated_history(tmp_path: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Realistic history from scripts/gen_history.py, the same on both stores: the statistics are the
    same answer on SQLite (SQL aggregates) and PostgreSQL (window arrays aggregated by
    _core.window_stats), and on PostgreSQL the arrays give exactly what the SQL gives."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import gen_history

    lite_url = _sqlite_url(tmp_path)
    for url in (lite_url, pg_url):
        args = ["--url", url, "--rows", "20000", "--label-sets", "300", "--days", "4", "--now", GENERATED_NOW]
        assert gen_history.main(args) == 0
    clock = to_us(datetime.fromisoformat(GENERATED_NOW.replace("Z", "+00:00")))
    answers = []
    for url in (lite_url, pg_url):
        loop = asyncio.new_event_loop()
        store = open_store(url)
        api = HistoryApi(store, clock=lambda: clock)
        try:
            got = []
            for query in STATS_REQUESTS:
                ctx = Context(Scope("/api/v1/stats", query), None, None, 0.0)
                got.append(loop.run_until_complete(api.stats(ctx)).body)
                if store.dialect == "postgresql":
                    p = parse_params(StatsParams, query, clock)
                    until = p.until if p.until is not None else clock
                    since = p.since if p.since is not None else until - DEFAULT_STATS_WINDOW_US
                    sql = loop.run_until_complete(api._window_sql(p, since, until, clock))
                    want = [[tuple(r) for r in rows] for rows in sql]
                    arrays = loop.run_until_complete(api._window_arrays(p, since, until, clock))
                    assert [[tuple(r) for r in rows] for rows in arrays] == want
                    # Names not kept (a full map) and the aggregation on a thread: the same rows.
                    warm, api.alertnames = api.alertnames, AlertNames(capacity=0)
                    monkeypatch.setattr(handlers, "WINDOW_STATS_THREAD_BYTES", 0)
                    arrays = loop.run_until_complete(api._window_arrays(p, since, until, clock))
                    assert [[tuple(r) for r in rows] for rows in arrays] == want
                    api.alertnames = warm
                    monkeypatch.undo()
            answers.append(got)
        finally:
            loop.run_until_complete(api.close())
            loop.run_until_complete(store.close())
            loop.close()
    lite, pg = answers
    for query, a, b in zip(STATS_REQUESTS, lite, pg, strict=True):
        assert a == b, query
    first = orjson.loads(pg[0])
    # The data set exercises every part (not a comparison of empty lists).
    assert first["top_firing"] and first["flapping"]["alerts"] and first["time_to_resolve"]
    assert orjson.loads(pg[-1])["top_firing"] == []


async def _raw(env: Env, path: str, query: dict[str, Any]) -> bytes:
    handler = env.routes.get(path) or env.api.match(path).handlers["GET"]  # type: ignore[union-attr]
    resp = await handler(Context(Scope(path, urlencode(query)), None, None, 0.0))
    return resp.body


def test_reading_does_not_wait_for_the_writer_sqlite(tmp_path: Any) -> None:
    """A write transaction held open on the store's connection does not block a read."""
    e = Env(_sqlite_url(tmp_path))
    try:
        conn = e.store._conn  # type: ignore[attr-defined]
        e.loop.run_until_complete(
            e.store._thread.run(conn.execute, "BEGIN IMMEDIATE")  # type: ignore[attr-defined]
        )
        try:
            assert keys(e.ok("/api/v1/alerts", {"limit": 2})) == ALL[:2]
        finally:
            e.loop.run_until_complete(
                e.store._thread.run(conn.execute, "ROLLBACK")  # type: ignore[attr-defined]
            )
    finally:
        e.close()


def test_regex_query_deadline_sqlite(tmp_path: Any) -> None:
    """A regex query past the reader's deadline is stopped with the same 503 ``query_timeout`` as
    PostgreSQL's statement_timeout (the regex function checks the deadline on every row), and the
    reader thread is free again afterwards. Regexes are linear-time now, so the deadline is 0 here."""
    e = Env(_sqlite_url(tmp_path))
    try:
        # 100 instances whose label x costs (a|a)*b about 2**21 steps each: well over 10 s in all.
        slow = [{"alertname": "Slow", "x": "a" * 21, "i": str(i)} for i in range(100)]
        for n in range(0, len(slow), 20):
            alerts = [
                {
                    "status": "firing",
                    "labels": labels,
                    "annotations": {},
                    "startsAt": iso(T + 8 * H),
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prom/slow",
                }
                for labels in slow[n : n + 20]
            ]
            e.write([(T + 8 * H + MIN, "team-slow", alerts)])
        e.loop.run_until_complete(e.api.close())
        e.api = HistoryApi(
            e.store, reader=SQLiteReader(e.store.path, threads=1, query_timeout_ms=0), clock=lambda: CLOCK
        )
        e.routes = {path: handlers["GET"] for _, path, handlers in e.api.routes()}

        started = time.monotonic()
        with pytest.raises(HTTPError) as info:
            e.loop.run_until_complete(
                e.routes["/api/v1/alerts"](
                    Context(Scope("/api/v1/alerts", urlencode({"match": '{x=~"(a|a)*b"}'})), None, None, 0.0)
                )
            )
        elapsed = time.monotonic() - started
        err = info.value
        assert (err.status, err.code) == (503, "query_timeout"), err.message
        assert ("retry-after", "1") in err.headers
        assert elapsed < 10, f"took {elapsed:.1f} s"

        # The (single) reader thread is free again, and its next query has a deadline of its own.
        e.api.reader.query_timeout_s = 5.0  # type: ignore[attr-defined]
        assert len(e.ok("/api/v1/alerts", {"match": '{x=~"a+"}', "limit": 1000})["alerts"]) == 100
    finally:
        e.close()


def test_postgres_reader_sessions(pg_url: str) -> None:
    """The API's PostgreSQL sessions: read-only, 5 s statement timeout, and custom plans (after
    five runs psycopg prepares a statement, and a generic plan of the statistics ignores the
    window: 1.6-2x slower on the 1M-row data set, docs/api.md)."""
    e = Env(pg_url)
    try:
        (rows,) = e.loop.run_until_complete(
            e.api.reader.many(
                [
                    (
                        "SELECT current_setting('plan_cache_mode'), current_setting('default_transaction_read_only'),"
                        " current_setting('statement_timeout'), current_setting('application_name')",
                        [],
                    )
                ]
            )
        )
        assert rows == [("force_custom_plan", "on", "5s", "webhookfast-api")]
    finally:
        e.close()


def test_stats_answers_are_cached_per_query(tmp_path: Any) -> None:
    """WEBHOOKFAST_STATS_CACHE_S: the same query string within the TTL is answered from memory
    (even once new alerts have arrived), another query string is not, and after the TTL the
    statistics are computed again."""
    from webhookfast.history.handlers import AnswerCache

    e = Env(_sqlite_url(tmp_path))
    try:
        now = [100.0]
        e.api.stats_cache = AnswerCache(5.0, clock=lambda: now[0])
        calls: list[int] = []
        many = e.api.reader.many

        async def counting(queries: Any) -> Any:
            calls.append(len(queries))
            return await many(queries)

        e.api.reader.many = counting  # type: ignore[method-assign]
        query = {"since": "2024-05-01T00:00:00Z", "until": "2024-05-01T10:00:00Z"}
        first = e.ok("/api/v1/stats", query)
        e.write([(T + 9 * H, "team-sre", [_alert("E", "resolved", T + 30 * MIN, T + 9 * H)])])
        assert e.ok("/api/v1/stats", query) == first and len(calls) == 1
        e.ok("/api/v1/stats", {**query, "top": 3})
        assert len(calls) == 2
        now[0] += 5.0
        fresh = e.ok("/api/v1/stats", query)
        assert len(calls) == 3
        # E (Watchdog) resolved meanwhile: only the recomputed answer knows.
        assert "Watchdog" not in [t["alertname"] for t in first["time_to_resolve"]]
        assert "Watchdog" in [t["alertname"] for t in fresh["time_to_resolve"]]
    finally:
        e.close()


def test_answer_cache_computes_once_for_concurrent_requests() -> None:
    from webhookfast.history.handlers import AnswerCache

    async def scenario() -> None:
        cache = AnswerCache(5.0)
        runs = 0
        gate = asyncio.Event()

        async def compute() -> bytes:
            nonlocal runs
            runs += 1
            await gate.wait()
            return b"answer"

        waiters = [asyncio.ensure_future(cache.get("k", compute)) for _ in range(5)]
        await asyncio.sleep(0)
        gate.set()
        assert await asyncio.gather(*waiters) == [b"answer"] * 5
        assert runs == 1

        async def fail() -> bytes:
            nonlocal runs
            runs += 1
            await asyncio.sleep(0)
            raise HTTPError(400, "bad_parameter", "nope")

        results = await asyncio.gather(*(cache.get("x", fail) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, HTTPError) for r in results) and runs == 2
        with pytest.raises(HTTPError):  # errors are not kept
            await cache.get("x", fail)
        assert runs == 3
        assert await AnswerCache(0).get("k", compute) == b"answer" and runs == 4  # off: always computed

        # The first asker goes away (client gone, task cancelled): the others still get the answer.
        gate.clear()
        first = asyncio.ensure_future(cache.get("c", compute))
        await asyncio.sleep(0)
        others = [asyncio.ensure_future(cache.get("c", compute)) for _ in range(2)]
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        gate.set()
        assert await asyncio.gather(*others) == [b"answer", b"answer"] and runs == 5
        assert first.cancelled()
        assert await cache.get("c", compute) == b"answer" and runs == 5  # kept

    asyncio.run(scenario())
