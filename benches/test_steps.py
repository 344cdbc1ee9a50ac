"""The small hot steps of a request, one at a time.

- fingerprint: ``_core.fingerprint`` of a 7-label set (as in the captured Alertmanager request),
  beside the pure-Python FNV-1a of benches/reference.py;
- request id: ``RequestId().new_id()``;
- response building: what ingest and ``App.__rsgi__`` do after the commit (the JSON answer, the
  Response, the header list, ``proto.response_bytes``), mirrored here step by step;
- row encoding for a flush of 1, 100 and 5,000 alerts (5,000 = the default ``flush_max_alerts``,
  as 50 batches of 100): ``RowEncoder(reuse_buffers=True/False).pg_copy``, ``.pg_arrays`` (what a
  PostgreSQL flush sends) and ``.row_tuples`` (what SQLite inserts).
"""

from __future__ import annotations

from typing import Any

import pytest
import reference
from conftest import body, unique_bodies
from fakes import FakeProto, webhook_request
from webhookfast._core import Limits, RowEncoder, ack_body, decode, fingerprint
from webhookfast.http import SECURITY_HEADERS, Context, Response
from webhookfast.middleware.request_id import RequestId

LABELS = {
    "alertname": "DiskPressure",
    "device": "/dev/nvme0n1",
    "instance": "storage-01:9100",
    "job": "node",
    "mountpoint": '/srv/data 0 "vol"',
    "severity": "critical",
    "team": "sre",
}


@pytest.mark.parametrize("impl", ["core", "python"])
def test_fingerprint(benchmark: Any, impl: str) -> None:
    fn = fingerprint if impl == "core" else reference.fnv1a_fingerprint
    assert benchmark(fn, LABELS) == "dab8e40633120e0d"


def test_request_id(benchmark: Any) -> None:
    rid = RequestId()
    assert benchmark(rid.new_id)


def test_response_building(benchmark: Any) -> None:
    scope, _ = webhook_request(body(1))
    proto = FakeProto(b"")
    ctx = Context(scope, proto, None, 0.0)
    ctx.request_id = "0123456789ab-1f"

    def build() -> None:
        # ingest.Ingest.__call__'s answer ...
        response = Response(200, ack_body("stored", 1, ctx.request_id))
        # ... and App.__rsgi__'s headers and send.
        headers = [("content-type", response.content_type), ("x-request-id", ctx.request_id), *SECURITY_HEADERS]
        if response.headers:
            headers.extend(response.headers)
        proto.response_bytes(response.status, headers, response.body)

    benchmark(build)
    assert proto.status == 200


FLUSHES = {1: (1, 1), 100: (100, 1), 5000: (100, 50)}  # alerts per flush → (alerts per batch, batches)


def _batches(alerts: int) -> list[Any]:
    per_batch, count = FLUSHES[alerts]
    return [decode(b, Limits()) for b in unique_bodies(per_batch, count)]


@pytest.mark.parametrize("alerts", list(FLUSHES))
@pytest.mark.parametrize("reuse", [True, False], ids=["reuse", "fresh"])
def test_pg_copy(benchmark: Any, alerts: int, reuse: bool, per_call: Any) -> None:
    per_call(requests=1, alerts=alerts)
    batches = _batches(alerts)
    encoder = RowEncoder(reuse_buffers=reuse)
    copy = benchmark(encoder.pg_copy, batches)
    assert copy.event_rows == alerts


@pytest.mark.parametrize("alerts", list(FLUSHES))
@pytest.mark.parametrize("reuse", [True, False], ids=["reuse", "fresh"])
def test_pg_arrays(benchmark: Any, alerts: int, reuse: bool, per_call: Any) -> None:
    per_call(requests=1, alerts=alerts)
    batches = _batches(alerts)
    encoder = RowEncoder(reuse_buffers=reuse)
    arrays, label_sets, events, current = benchmark(encoder.pg_arrays, batches)
    assert len(arrays) == 26 and events == alerts and label_sets >= 1 and current >= 1


@pytest.mark.parametrize("alerts", list(FLUSHES))
@pytest.mark.parametrize("reuse", [True, False], ids=["reuse", "fresh"])
def test_row_tuples(benchmark: Any, alerts: int, reuse: bool, per_call: Any) -> None:
    per_call(requests=1, alerts=alerts)
    batches = _batches(alerts)
    encoder = RowEncoder(reuse_buffers=reuse)
    groups, label_sets, events, current = benchmark(encoder.row_tuples, batches)
    assert len(events) == alerts
    assert len(groups) >= 1 and len(current) >= 1 and len(label_sets) >= 1
