"""``GET /api/v1/histogram`` (the web page's alerts-over-time chart) on both stores, over the hand-checked
history of test_api_history (its module docstring lists the instances)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import test_api_history
from test_api_history import CLOCK, Env, H, T, iso
from webhookfast.openapi.history import PATHS, SCHEMAS

pytestmark = pytest.mark.timeout(120)

# test_api_history's fixture (the same hand-checked history, filled once per store), bound to a
# module-level name so that pytest collects it for this module too.
env = test_api_history.env

PATH = "/api/v1/histogram"


def counts(body: dict[str, Any]) -> list[tuple[int, int]]:
    return [(b["started"], b["firing"]) for b in body["buckets"]]


def test_hourly_buckets_count_started_and_still_firing(env: Env) -> None:
    body = env.ok(PATH, {"since": iso(T), "until": iso(T + 8 * H), "buckets": 8})
    assert body["bucket_seconds"] == 3600
    assert body["window"] == {"since": iso(T), "until": iso(T + 8 * H)}
    assert [b["start"] for b in body["buckets"]] == [iso(T + i * H) for i in range(8)]
    # A+E | B | A | A | C | D | - | F ; E, B, D and F are still firing (D's status, though expired).
    assert counts(body) == [(2, 1), (1, 1), (1, 0), (1, 0), (1, 0), (1, 1), (0, 0), (1, 1)]
    jsonschema.validate(body, SCHEMAS["Histogram"])


def test_matchers_restrict_the_counts(env: Env) -> None:
    window = {"since": iso(T), "until": iso(T + 8 * H), "buckets": 8}
    crit = env.ok(PATH, {**window, "match": '{severity="critical"}'})
    assert counts(crit) == [(1, 0), (0, 0), (1, 0), (1, 0), (1, 0), (0, 0), (0, 0), (0, 0)]
    regex = env.ok(PATH, {**window, "match": '{job=~"api.*",team!="sre"}'})
    assert counts(regex) == [(0, 0), (1, 1)] + [(0, 0)] * 6


def test_default_window_and_whole_second_buckets(env: Env) -> None:
    body = env.ok(PATH)
    assert body["window"] == {"since": iso(CLOCK - 24 * H), "until": iso(CLOCK)}
    assert body["bucket_seconds"] == 24 * 3600 // 60 and len(body["buckets"]) == 60
    assert sum(b["started"] for b in body["buckets"]) == 8
    # 8 h in 7 buckets: 4114.29 s rounds up to 4115 s, so 7 buckets still cover the window.
    odd = env.ok(PATH, {"since": iso(T), "until": iso(T + 8 * H), "buckets": 7})
    assert odd["bucket_seconds"] == 4115 and len(odd["buckets"]) == 7
    assert sum(b["started"] for b in odd["buckets"]) == 8
    # A window shorter than a second per bucket still gets one-second buckets.
    tiny = env.ok(PATH, {"since": iso(T), "until": iso(T + 30 * 10**6), "buckets": 60})
    assert tiny["bucket_seconds"] == 1 and len(tiny["buckets"]) == 30
    assert sum(b["started"] for b in tiny["buckets"]) == 1


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ({"buckets": "0"}, "buckets"),
        ({"buckets": "1001"}, "buckets"),
        ({"since": "1h", "until": "2h"}, "since"),
        ({"match": '{job=~"("}'}, "match"),
        ({"since": "yesterday"}, "since"),
        ({"bucket": "5"}, "bucket"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(env: Env, query: dict[str, str], path: str) -> None:
    status, body = env.call(PATH, query)
    assert (status, body["code"], body["path"]) == (400, "invalid_parameter", path)


def test_described_in_openapi() -> None:
    op = PATHS[PATH]["get"]
    assert {p["name"] for p in op["parameters"]} == {"since", "until", "match", "buckets"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Histogram"}
