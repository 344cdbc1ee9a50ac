"""The answer to an accepted ingest request and the ids of requests that came without one, both
made in Rust (``_core.ack_body``, ``_core.RequestIds``)."""

from __future__ import annotations

import re

import orjson
import pytest
from webhookfast._core import RequestIds, ack_body
from webhookfast.middleware.request_id import _SAFE, RequestId


@pytest.mark.parametrize("status", ["stored", "queued", "spooled"])
@pytest.mark.parametrize("alerts", [0, 1, 255, 256, 5_000, 2**64 - 1])
def test_ack_body_is_the_compact_json_of_the_answer(status: str, alerts: int) -> None:
    body = ack_body(status, alerts, "0123456789ab-1f")
    assert body == orjson.dumps({"status": status, "alerts": alerts, "request_id": "0123456789ab-1f"})


def test_ack_body_escapes_a_request_id_that_needs_it() -> None:
    # The middleware only lets safe ids through; the answer stays valid JSON even so.
    rid = 'a"b\\c\x01d\u00e9'
    assert orjson.loads(ack_body("stored", 1, rid)) == {"status": "stored", "alerts": 1, "request_id": rid}


def test_ack_body_refuses_a_negative_count() -> None:
    with pytest.raises(OverflowError):
        ack_body("stored", -1, "r")


def test_request_ids_count_up_in_hex_after_their_prefix() -> None:
    ids = RequestIds("p-")
    assert [ids.new_id() for _ in range(17)][-3:] == ["p-f", "p-10", "p-11"]


def test_generated_request_ids_are_unique_safe_and_differ_between_workers() -> None:
    first, second = RequestId(), RequestId()
    a = [first.new_id() for _ in range(10_000)]
    b = [second.new_id() for _ in range(10)]
    assert len(set(a)) == len(a)
    assert not set(a) & set(b)  # another worker's prefix
    assert all(_SAFE.fullmatch(rid) for rid in a + b)
    assert re.fullmatch(r"[0-9a-f]{12}-1", a[0]) and a[-1].endswith("-2710")
