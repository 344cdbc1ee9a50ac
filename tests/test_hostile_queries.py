"""Hostile history queries (issue #11, part B) against a real server on each store.

* A catastrophic regex (``(.*.*)*#``) answers at once with the right rows, and the worker keeps
  serving ``/healthz`` and ingest meanwhile (Python's ``re`` once froze it for 24 s per value).
* Both stores match the same strings: the patterns on which SQLite (Python ``re``) and PostgreSQL
  (hand-anchored ARE) used to differ, through the real API.
* Every bad parameter of the three history routes is a 400 ``invalid_parameter`` (never a 500 or
  a 503): percent-escapes of invalid UTF-8 or surrogates, NUL, lone ``\\ud800`` escapes, huge
  numbers and durations, huge repetition counts, deep groups.
* The statistics cache is bounded by bytes and forgets expired answers by itself.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import pytest
from psycopg import sql
from support.postgres import database_url
from support.servers import ServerProcess
from webhookfast._core import PromRegex
from webhookfast.history.handlers import AnswerCache

STARTS = "2026-11-01T10:00:00Z"
SLOW_VALUE = "a" * 16  # (.*.*)*# on 16 characters: 24 s of Python's re
SLOW_ROWS = 40

# Values of the label "v": each parity pattern below is matched against all of them.
VALUES = [
    "42",
    "x",
    "٣",
    "a{,3}",
    "a",
    "aaa",
    "a\n",
    "STRAßE",
    "STRASSE",
    "straße",
    "k",
    "K",
    "\u212a",
    "Éa",
    "é",
    "e",
    "a_1",
    "a-b",
    " ",
    "\t",
    "\x0b",
    "a b",
    "ab",
    "_b",
    "<a>",
    "Ünïcode\nline2",
    "a" * 300,
    "a" * 299,
    "#",
]
PARITY = [
    "[[:digit:]]+",
    "a{,3}",
    "a$",
    "(?i)straße",
    "(?i)k",
    "(?i)é.*",
    "\\w+",
    "\\s",
    "[[:space:]]",
    "a{300}",
    ".*\\bb",
    "\\<a\\>",
    "(?i)ü.*line2",
    "a{1,3}",
    "[^a]",
    ".",
    "(.*.*)*#",
    "\\d+|e",
    "(?s:.*)\\n.*",
    "(?-s:.+)",
    "\\pL+",
    "[\\p{Greek}\\d]",
    "(a|aa)*",
]


def _alerts(labels: list[dict[str, str]]) -> bytes:
    return json.dumps(
        {
            "version": "4",
            "groupKey": "hostile-queries",
            "status": "firing",
            "receiver": "r",
            "alerts": [{"status": "firing", "labels": ls, "startsAt": STARTS} for ls in labels],
        }
    ).encode()


def _pg_database(postgres_server: Any) -> str:
    postgres_server.ensure_running()
    name = f"test_{uuid.uuid4().hex}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per store, with the slow values and the parity values stored."""
    tmp: Path = tmp_path_factory.mktemp(f"hostile-queries-{request.param}")
    dbname = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp}/wf.db"
    else:
        postgres_server = request.getfixturevalue("postgres_server")
        dbname = _pg_database(postgres_server)
        url = database_url(postgres_server.url, dbname)
    srv = ServerProcess(url, tmp, name=f"webhookfast-{request.param}")
    try:
        srv.start()
        labels = [{"alertname": SLOW_VALUE, "i": str(i)} for i in range(SLOW_ROWS)]
        labels += [{"alertname": "Parity", "v": v} for v in VALUES]
        r = srv.post("/webhook", _alerts(labels))
        assert r.status == 200, r.text
        yield srv
    finally:
        srv.stop(timeout=15)
        if srv.is_running():
            srv.kill()
        if dbname is not None:
            with psycopg.connect(postgres_server.url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def _get(server: ServerProcess, path: str, params: dict[str, str] | str, timeout: float = 30.0) -> Any:
    query = params if isinstance(params, str) else urlencode(params)
    return server.get(f"{path}?{query}", timeout=timeout)


def _matched(server: ServerProcess, selector: str) -> list[str]:
    r = _get(server, "/api/v1/alerts", {"match": selector, "limit": "1000"})
    assert r.status == 200, (selector, r.text)
    return sorted(a["labels"].get("v", a["labels"]["alertname"]) for a in r.json()["alerts"])


def _selector_string(pattern: str) -> str:
    return json.dumps(pattern)  # a Go/JSON double-quoted string: what the matcher parser reads


# -- 1. catastrophic regexes --------------------------------------------------------------------


def test_catastrophic_regex_answers_at_once_and_the_worker_keeps_serving(server: ServerProcess) -> None:
    answer: dict[str, Any] = {}

    def query() -> None:
        started = time.monotonic()
        answer["response"] = _get(server, "/api/v1/alerts", {"match": '{alertname=~"(.*.*)*#"}', "limit": "1000"})
        answer["elapsed"] = time.monotonic() - started

    worker = threading.Thread(target=query)
    worker.start()
    health: list[float] = []
    while worker.is_alive() and len(health) < 200:
        started = time.monotonic()
        assert server.get("/healthz", timeout=10).status == 200
        assert (
            server.post("/webhook", _alerts([{"alertname": "During", "n": str(len(health))}]), timeout=10).status == 200
        )
        health.append(time.monotonic() - started)
    worker.join(60)
    r = answer["response"]
    assert r.status == 200, r.text
    assert r.json()["alerts"] == []  # no alertname ends with '#'
    assert answer["elapsed"] < 3.0, answer
    assert max(health, default=0.0) < 2.0, health
    # The same pattern on the label that holds "#" finds it.
    assert _matched(server, '{v=~"(.*.*)*#"}') == ["#"]


# -- 2. both stores match the same strings ------------------------------------------------------


@pytest.mark.parametrize("pattern", PARITY)
def test_stores_match_what_the_rust_matcher_matches(server: ServerProcess, pattern: str) -> None:
    regex = PromRegex(pattern)
    expected = sorted(v for v in VALUES if regex.fullmatch(v))
    assert _matched(server, '{alertname="Parity",v=~' + _selector_string(pattern) + "}") == expected
    rest = sorted(v for v in VALUES if not regex.fullmatch(v))
    assert _matched(server, '{alertname="Parity",v!~' + _selector_string(pattern) + "}") == rest


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[[:digit:]]+", ["42"]),
        ("a{,3}", ["a{,3}"]),  # literal braces, as in Go
        ("a$", ["a"]),  # not "a\n"
        ("(?i)straße", ["STRAßE", "straße"]),
        ("(?i)k", ["K", "k", "\u212a"]),
        ("\\s", ["\t", " "]),  # Go's \s has no \v
        ("a{300}", ["a" * 300]),
    ],
)
def test_listed_examples(server: ServerProcess, pattern: str, expected: list[str]) -> None:
    assert _matched(server, '{alertname="Parity",v=~' + _selector_string(pattern) + "}") == sorted(expected)


# -- 3. bad parameters --------------------------------------------------------------------------

DEEP = "(" * 1000 + "a" + ")" * 1000
FP = "0123456789abcdef"
BAD = [
    # path, raw query string, the parameter named in the error
    ("/api/v1/alerts", "match=" + quote('{a=~"\\ud800"}'), "match"),
    ("/api/v1/alerts", "match=" + quote('{a="\\udfff"}'), "match"),
    ("/api/v1/alerts", "match=" + quote('{"\\ud800"="x"}'), "match"),
    ("/api/v1/alerts", "match=" + quote('{a="\\u0000"}'), "match"),
    ("/api/v1/alerts", "match=" + quote('{a="\\U00110000"}'), "match"),
    ("/api/v1/alerts", "match=" + quote('{a="\\u+123"}'), "match"),
    ("/api/v1/alerts", "match=%7Ba%3D%22x%00%22%7D", "match"),
    ("/api/v1/alerts", "q=a%00b", "q"),
    ("/api/v1/alerts", "q=%ff", "query"),
    ("/api/v1/alerts", "q=%ed%a0%80", "query"),  # an encoded surrogate
    ("/api/v1/alerts", "match=%c3", "query"),
    ("/api/v1/alerts", "match=" + quote('{a=~"a{1001}"}'), "match"),
    ("/api/v1/alerts", "match=" + quote('{a=~"a{99999999999999999999}"}'), "match"),
    ("/api/v1/alerts", "match=" + quote('{a=~"(a{100}){11}"}'), "match"),
    ("/api/v1/alerts", "match=" + quote('{a=~"' + DEEP + '"}'), "match"),
    ("/api/v1/alerts", "match=" + quote('{a=~"\\\\pX"}'), "match"),
    ("/api/v1/alerts", "match=" + quote('{a=~"a*+"}'), "match"),
    ("/api/v1/alerts", "match=" + quote('{a=~"\\\\pL{1000}"}'), "match"),  # compiles too large
    ("/api/v1/alerts", "match=" + quote('{a=~"(?i)' + "\\\\pL" * 1000 + '"}'), "match"),  # expanding is bounded
    ("/api/v1/alerts", "limit=" + "9" * 5000, "limit"),
    ("/api/v1/alerts", "limit=1e999", "limit"),
    ("/api/v1/alerts", "limit=-0x10", "limit"),
    ("/api/v1/alerts", "since=" + "9" * 5000 + "h", "since"),
    ("/api/v1/alerts", "since=99999999999999999999y", "since"),
    ("/api/v1/alerts", "until=9999-12-31T23:59:59-23:59x", "until"),
    ("/api/v1/alerts", "since=0000-01-01T00:00:00Z", "since"),
    ("/api/v1/alerts", "fingerprint=%00", "fingerprint"),
    ("/api/v1/alerts", "cursor=%00", "cursor"),
    ("/api/v1/alerts", "cursor=%ff", "query"),
    ("/api/v1/alerts", "cursor=" + "W" * 4000, "cursor"),
    ("/api/v1/alerts", "sort=%00", "sort"),
    ("/api/v1/alerts", "a%00b=1", "ab"),
    (f"/api/v1/alerts/{FP}", "limit=" + "1" * 5000, "limit"),
    (f"/api/v1/alerts/{FP}", "cursor=%ed%a0%80", "query"),
    (f"/api/v1/alerts/{FP}", "cursor=WzEsImVwaXNvZGVzIiw5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTld", "cursor"),
    ("/api/v1/alerts/%00%00", "", "fingerprint"),
    ("/api/v1/stats", "top=" + "9" * 30, "top"),
    ("/api/v1/stats", "flap_min_changes=" + "9" * 5000, "flap_min_changes"),
    ("/api/v1/stats", "since=" + "9" * 100 + "y", "since"),
    ("/api/v1/stats", "until=-" + "1" * 4000 + "ms", "until"),
    ("/api/v1/stats", "match=" + quote('{a=~"\\ud800"}'), "match"),
    ("/api/v1/stats", "match=" + quote('{a=~"' + DEEP + '"}'), "match"),
    ("/api/v1/stats", "match=%00", "match"),
]


@pytest.mark.parametrize(("path", "query", "param"), BAD, ids=[f"{i}" for i in range(len(BAD))])
def test_bad_parameters_are_400_invalid_parameter(server: ServerProcess, path: str, query: str, param: str) -> None:
    r = server.get(f"{path}?{query}" if query else path, timeout=30)
    assert r.status == 400, r.text
    body: Any = r.json()
    err = body["error"]
    assert err["code"] == "invalid_parameter", err
    assert err.get("path") == param, err
    assert 0 < len(err["message"]) <= 300, err
    assert server.get("/healthz").status == 200


# -- 4. the statistics cache ---------------------------------------------------------------------


def test_stats_cache_is_bounded_by_bytes() -> None:
    async def scenario() -> None:
        cache = AnswerCache(60.0, max_bytes=1000)
        runs = 0

        async def answer(size: int) -> bytes:
            nonlocal runs
            runs += 1
            return b"x" * size

        for key in ("a", "b", "c"):
            await cache.get(key, lambda: answer(400))
        assert len(cache) == 2 and cache.bytes <= 1000  # "a" went to make room
        assert await cache.get("c", lambda: answer(400)) == b"x" * 400 and runs == 3  # kept
        await cache.get("a", lambda: answer(400))
        assert runs == 4
        await cache.get("big", lambda: answer(5000))  # larger than the cache: never kept
        await cache.get("big", lambda: answer(5000))
        assert runs == 6 and cache.bytes <= 1000
        cache.close()

    asyncio.run(scenario())


def test_stats_cache_drops_expired_answers_without_further_requests() -> None:
    async def scenario() -> None:
        cache = AnswerCache(0.05)

        async def answer() -> bytes:
            return b"y" * 100_000

        for key in ("a", "b", "c"):
            await cache.get(key, answer)
        assert len(cache) == 3 and cache.bytes >= 300_000
        await asyncio.sleep(0.2)
        assert len(cache) == 0 and cache.bytes == 0
        cache.close()

    asyncio.run(scenario())


# -- compiled once ----------------------------------------------------------------------------------


def test_a_pattern_is_compiled_once_while_in_use_and_few_are_kept() -> None:
    """A query's matchers hold their compiled regexes; SQLite's wf_regexp(pattern, value), called
    per row with the pattern text, finds that object instead of compiling again. Callers that pass
    only the text on (pg_anchored) reuse the last few compiled; no more are kept."""
    from webhookfast.history import params
    from webhookfast.history.sql import pg_anchored
    from webhookfast.storage import readers as params_store
    from webhookfast.storage.readers import _regexp

    (m,) = params.parse_selector('{a=~"held+ by (a )?query"}')
    assert m.regex is not None
    assert params.compile_regex(m.value) is m.regex
    assert _regexp(m.value, "held by query") == 1 and _regexp(m.value, "held by") == 0
    assert pg_anchored("only (the )?text") == params.compile_regex("only (the )?text").postgres
    for i in range(3 * params_store._RECENT_MAX):
        params.compile_regex(f"pattern-{i}")
    assert len(params_store._RECENT_REGEXES) == params_store._RECENT_MAX
    assert params.compile_regex(m.value) is m.regex  # still held by the matcher
    del m
    assert "held+ by (a )?query" not in params_store._LIVE_REGEXES
