"""The ingest queue's bounds as the extension keeps them (``_core.QueueBounds``, counted in Rust so
that the request path makes no ``int`` for them) and the decode budget read from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from webhookfast._core import DecodeBudget, PayloadError, QueueBounds, decode

PAYLOADS = Path(__file__).parent / "fixtures" / "payloads"
SINGLE = (PAYLOADS / "firing_single.json").read_bytes()
LARGEST = (PAYLOADS / "firing_largest.json").read_bytes()


def test_a_batch_is_counted_in_and_out_with_what_is_kept_beside_it() -> None:
    batch = decode(SINGLE)
    bounds = QueueBounds(10, 10 * batch.decoded_bytes)
    assert (bounds.alerts, bounds.bytes, bounds.room) == (0, 0, None)
    assert bounds.admit(batch, len(SINGLE))
    assert (bounds.alerts, bounds.bytes) == (1, batch.decoded_bytes + len(SINGLE))
    assert bounds.room == 10 * batch.decoded_bytes - batch.decoded_bytes - len(SINGLE)
    bounds.release(batch, len(SINGLE))
    assert (bounds.alerts, bounds.bytes, bounds.room) == (0, 0, None)
    assert (bounds.max_alerts, bounds.max_bytes) == (10, 10 * batch.decoded_bytes)


def test_a_refused_batch_counts_nothing_and_the_first_always_enters() -> None:
    big = decode(LARGEST)
    small = decode(SINGLE)
    bounds = QueueBounds(len(big) + 2, 2 * small.decoded_bytes)
    assert bounds.admit(big)  # alone: enters whatever its size
    assert not bounds.admit(small)
    assert (bounds.alerts, bounds.bytes) == (len(big), big.decoded_bytes)
    bounds.release(big)
    assert bounds.admit(small)
    assert not bounds.admit(small, 1)  # it would fit by itself: its kept body's bytes count too
    assert bounds.bytes == small.decoded_bytes
    assert bounds.admit(small)


def test_the_alert_bound_refuses_as_the_byte_bound_does() -> None:
    batch = decode(SINGLE)
    bounds = QueueBounds(2, 1 << 40)
    assert bounds.admit(batch) and bounds.admit(batch)
    assert not bounds.admit(batch)
    assert bounds.alerts == 2


def test_decoding_stops_at_the_room_the_queue_leaves() -> None:
    held = decode(LARGEST)
    bounds = QueueBounds(1_000, held.decoded_bytes + 20_000)
    floor = 16 * 1024
    budget = DecodeBudget(bounds, floor, 50 * held.decoded_bytes)
    # Empty: the lone budget, so the largest body decodes.
    assert budget.bytes == 50 * held.decoded_bytes
    assert len(decode(LARGEST, None, None, budget)) == len(held)
    assert bounds.admit(held)
    assert budget.bytes == 20_000
    with pytest.raises(PayloadError) as refused:
        decode(LARGEST, None, None, budget)
    assert refused.value.reason == "decoded_too_large"
    assert len(decode(SINGLE, None, None, budget)) == 1
    # Less room than the floor: the floor.
    single = decode(SINGLE)
    assert bounds.admit(single, 20_000 - single.decoded_bytes - 100)
    assert (bounds.room, budget.bytes) == (100, floor)
    bounds.release(held)
    assert bounds.room is not None and budget.bytes == max(floor, bounds.room)


def test_a_plain_number_is_still_a_budget() -> None:
    with pytest.raises(PayloadError) as refused:
        decode(SINGLE, None, None, 10)
    assert refused.value.reason == "decoded_too_large"
    with pytest.raises(TypeError):
        decode(SINGLE, None, None, "10")  # type: ignore[arg-type]
