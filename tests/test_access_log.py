"""The access log's lines: one JSON object per request, every field present and every string
escaped, whatever the path, method and peer; written and counted in the metrics in bulk, on a timer,
every ``max_records`` requests and at once when asked."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from types import SimpleNamespace
from typing import Any

import pytest
from webhookfast import metrics
from webhookfast._core import AccessRecords
from webhookfast.http import Context, Response, Route
from webhookfast.middleware.access_log import AccessLog, LineSink

FIELDS = {
    "ts",
    "method",
    "path",
    "route",
    "status",
    "duration_ms",
    "bytes_in",
    "bytes_out",
    "alerts",
    "request_id",
    "peer",
}


async def _noop(ctx: Context) -> Response:
    return Response(200, b"{}")


WEBHOOK = Route("webhook", "/webhook", {"POST": _noop}, protected=True)
SERIES = Route("alert", "/api/v1/alerts/{fingerprint}", {"GET": _noop}, protected=True)


def _lines(records: list[tuple[Any, Route | None, Response]]) -> list[dict[str, Any]]:
    async def record_all(log: AccessLog) -> None:  # the sink's timer needs a running loop
        for scope, route, response in records:
            ctx = Context(scope, None, route, 0.0)
            ctx.request_id = "abc-1"
            ctx.bytes_in = 12
            ctx.alerts = 3
            log.record(ctx, response.status, response.body)
        log.flush()

    with tempfile.TemporaryFile() as out:
        asyncio.run(record_all(AccessLog(observe_metrics=False, sink=LineSink(fd=out.fileno()))))
        out.seek(0)
        raw = out.read()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode().splitlines()]


def _scope(method: str, path: str, client: str = "127.0.0.1:40000") -> SimpleNamespace:
    return SimpleNamespace(method=method, path=path, client=client)


def test_a_fixed_route_logs_every_field() -> None:
    first, second = _lines([(_scope("POST", "/webhook"), WEBHOOK, Response(200, b'{"status":"stored"}'))] * 2)
    for line in (first, second):
        assert set(line) == FIELDS
        assert (line["method"], line["path"], line["route"], line["status"]) == ("POST", "/webhook", "webhook", 200)
        assert (line["bytes_in"], line["bytes_out"], line["alerts"]) == (12, 19, 3)
        assert (line["request_id"], line["peer"]) == ("abc-1", "127.0.0.1:40000")
        assert isinstance(line["ts"], float) and line["duration_ms"] > 0


@pytest.mark.parametrize(
    ("scope", "route"),
    [
        (_scope("GET", '/no/such/"path"\\\n\u00e9\u0000'), None),  # unmatched: escaped by orjson
        (_scope("GET", "/api/v1/alerts/00ff"), SERIES),  # a pattern route: the path is the request's
        (_scope("DELETE", "/webhook"), WEBHOOK),  # a method the route does not serve (405)
        (_scope("POST", "/webhook", client='evil"\\peer\n'), WEBHOOK),  # a peer that needs escaping
    ],
)
def test_other_requests_are_logged_as_valid_json(scope: SimpleNamespace, route: Route | None) -> None:
    (line,) = _lines([(scope, route, Response(404, b"{}"))])
    assert set(line) == FIELDS
    assert line["path"] == scope.path and line["peer"] == scope.client and line["method"] == scope.method
    assert line["route"] == (route.name if route is not None else "unmatched")


def test_a_path_with_lone_surrogates_is_still_logged() -> None:
    (line,) = _lines([(_scope("GET", "/a\udcff"), None, Response(404, b"{}"))])
    assert line["path"].startswith("/a\ufffd") and line["status"] == 404


def _record(log: AccessLog, route: Route, status: int, started: float) -> None:
    ctx = Context(_scope("POST", "/webhook"), None, route, started)
    ctx.request_id = "r"
    log.record(ctx, status, b"{}")


def test_lines_are_written_on_the_timer_and_every_max_records() -> None:
    async def run(log: AccessLog, out: Any) -> list[int]:
        sizes = []
        for _ in range(3):
            _record(log, WEBHOOK, 200, time.perf_counter())
        sizes.append(os.fstat(out.fileno()).st_size)  # 3 < max_records: nothing yet
        _record(log, WEBHOOK, 200, time.perf_counter())  # the 4th: written at once
        sizes.append(len(os.pread(out.fileno(), 1 << 20, 0).splitlines()))
        _record(log, WEBHOOK, 200, time.perf_counter())
        await asyncio.sleep(0.1)  # past flush_interval_s: the timer writes it
        sizes.append(len(os.pread(out.fileno(), 1 << 20, 0).splitlines()))
        return sizes

    with tempfile.TemporaryFile() as out:
        log = AccessLog(observe_metrics=False, sink=LineSink(fd=out.fileno()), flush_interval_s=0.02, max_records=4)
        assert asyncio.run(run(log, out)) == [0, 4, 5]


def test_requests_are_counted_per_route_and_status_into_the_histogram() -> None:
    observer = metrics.request_observer
    observer.fold()  # what earlier tests left pending

    def counts() -> tuple[float, ...]:
        child = metrics.request_seconds.labels("webhook")
        le = {s.labels.get("le"): s.value for s in child.collect()[0].samples if s.name.endswith("_bucket")}
        return (
            metrics.requests_total.labels("webhook", "200")._value.get(),
            metrics.requests_total.labels("webhook", "503")._value.get(),
            le["1.0"],
            le["2.5"],
            le["+Inf"],
        )

    before = counts()
    log = AccessLog(log=False)
    now = time.perf_counter()
    for status, started in ((200, now), (200, now - 2.0), (503, now)):
        _record(log, WEBHOOK, status, started)
    log.flush()
    observer.fold()
    # Two requests under a second, all three under 2.5 s (the exposition's buckets are cumulative).
    assert [a - b for a, b in zip(counts(), before, strict=True)] == [2, 1, 2, 3, 3]


def test_records_are_kept_until_drained_and_say_when_to_drain() -> None:
    records = AccessRecords(2)
    fields = ("GET", "/healthz", "healthz", 200, 1.0, 1.5, 0, 15, 0)
    assert records.add(*fields, "id-1", None) is False  # one of two
    assert records.add(*fields, "id-\udcff", "peer") is True  # full: time to drain
    assert len(records) == 2
    lines, stats = records.drain(100.0, [1.0, float("inf")])
    first, second = (json.loads(line) for line in lines.decode().splitlines())
    assert (first["ts"], first["duration_ms"], first["peer"]) == (101.5, 500.0, None)
    assert second["request_id"].startswith("id-\ufffd") and second["peer"] == "peer"  # a lone surrogate
    assert stats == [("healthz", 200, 2, 1.0, [2, 0])]
    assert len(records) == 0 and records.drain(0.0, [float("inf")]) == (b"", [])  # forgotten
    with pytest.raises(ValueError, match="capacity"):
        AccessRecords(0)
