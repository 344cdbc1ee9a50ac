"""The per-flush histograms that RequestObserver keeps as values until its fold: the fold must add
what prometheus-client's own ``observe`` would have (the same counts in the same buckets, and the
sum up to rounding, since a fold adds its values' total at once), and the values kept stay bounded.
The same for the amounts it keeps for counters."""

from __future__ import annotations

import asyncio
import math

from prometheus_client import CollectorRegistry, Counter, Histogram
from webhookfast import metrics
from webhookfast.metrics import MAX_PENDING_AMOUNTS, MAX_PENDING_VALUES, RequestObserver

BUCKETS = (1, 2, 5, 10, 100, 1000)
# Negative, below, on and between the bounds, past the last one; 0.1 and 1e16 make sums that
# depend on the order of their additions.
VALUES = [-1.5, 0, 0.1, 0.5, 1, 1.5, 2, 3, 5, 9.99, 10, 99, 100, 101, 999, 1000, 1001, 70_000, 2.5e9, 1e16]
# Observed often enough that every bucket's count passes 256, past the small-int cache.
ROUNDS = 300

Samples = list[tuple[str, dict[str, str], float]]


def _samples(h: Histogram, rename: str = "") -> Samples:
    return [
        (s.name.replace(rename, "folded") if rename else s.name, s.labels, s.value)
        for s in h.collect()[0].samples
        if not s.name.endswith("_created")
    ]


def _pair() -> tuple[Histogram, Histogram]:
    registry = CollectorRegistry()
    return (
        Histogram("folded", "observed through RequestObserver", buckets=BUCKETS, registry=registry),
        Histogram("direct", "observed by prometheus-client", buckets=BUCKETS, registry=registry),
    )


def _assert_same(folded: Histogram, direct: Histogram) -> None:
    ours, theirs = _samples(folded), _samples(direct, rename="direct")
    assert [x for x in ours if x[0] != "folded_sum"] == [x for x in theirs if x[0] != "folded_sum"]
    ((_, _, our_sum),) = [x for x in ours if x[0] == "folded_sum"]
    ((_, _, their_sum),) = [x for x in theirs if x[0] == "folded_sum"]
    assert math.isclose(our_sum, their_sum, rel_tol=1e-12), (our_sum, their_sum)


def _count(h: Histogram) -> float:
    return next(s.value for s in h.collect()[0].samples if s.name.endswith("_count"))


def test_a_fold_adds_what_observe_would_have() -> None:
    folded, direct = _pair()

    async def observe() -> None:
        observer = RequestObserver(fold_interval_s=60)
        for r in range(ROUNDS):
            for v in VALUES:
                observer.observe_value(folded, v)
                direct.observe(v)
            if r < ROUNDS - 1:
                observer.fold()  # under the bound: later folds add to what earlier ones wrote
        assert _count(folded) == (ROUNDS - 1) * len(VALUES)  # the last round not written yet
        observer.fold()

    asyncio.run(observe())
    _assert_same(folded, direct)
    assert _count(folded) == ROUNDS * len(VALUES)


def test_one_fold_adds_the_sum_observe_would_have_exactly() -> None:
    # Added one at a time from zero, as observe adds them to a fresh histogram (sum() rounds
    # differently from Python 3.12 on).
    folded, direct = _pair()

    async def observe() -> None:
        observer = RequestObserver(fold_interval_s=60)
        for v in VALUES * 3:
            observer.observe_value(folded, v)
            direct.observe(v)
        observer.fold()

    asyncio.run(observe())
    assert _samples(folded) == _samples(direct, rename="direct")


def test_an_infinite_value_lands_in_the_last_bucket() -> None:
    folded, direct = _pair()

    async def observe() -> None:
        observer = RequestObserver(fold_interval_s=60)
        observer.observe_value(folded, float("inf"))
        observer.fold()

    asyncio.run(observe())
    direct.observe(float("inf"))
    assert _samples(folded) == _samples(direct, rename="direct")


def test_values_kept_between_folds_are_bounded() -> None:
    folded, direct = _pair()

    async def observe() -> int:
        observer = RequestObserver(fold_interval_s=60)
        kept = 0
        for i in range(3 * MAX_PENDING_VALUES + 5):
            observer.observe_value(folded, i % 7)
            direct.observe(i % 7)
            kept = max(kept, sum(len(v) for v in observer._histograms.values()))
        observer.fold()
        return kept

    assert asyncio.run(observe()) == MAX_PENDING_VALUES - 1
    _assert_same(folded, direct)


def test_without_a_loop_a_value_is_written_at_once() -> None:
    folded, direct = _pair()
    observer = RequestObserver()
    observer.observe_value(folded, 3)
    direct.observe(3)
    assert _samples(folded) == _samples(direct, rename="direct")


def test_the_flush_histograms_are_observed_through_the_module() -> None:
    metrics.request_observer.fold()  # what earlier tests left pending
    before = _count(metrics.flush_alerts)
    metrics.observe_value(metrics.flush_alerts, 7)
    metrics.request_observer.fold()
    assert _count(metrics.flush_alerts) == before + 1


def _counter_pair() -> tuple[Counter, Counter]:
    registry = CollectorRegistry()
    return (
        Counter("folded", "added through RequestObserver", registry=registry),
        Counter("direct", "incremented by prometheus-client", registry=registry),
    )


def _total(c: Counter) -> float:
    return next(s.value for s in c.collect()[0].samples if s.name.endswith("_total"))


def test_counter_amounts_fold_into_their_total_and_stay_bounded() -> None:
    folded, direct = _counter_pair()
    # Amounts past the small-int cache and a total far past it.
    amounts = [1, 0, 3, 255, 256, 1000, 70_000] * 600

    async def add() -> int:
        observer = RequestObserver(fold_interval_s=60)
        kept = 0
        for i, amount in enumerate(amounts):
            observer.add(folded, amount)
            direct.inc(amount)
            kept = max(kept, sum(len(a) for a in observer._counts.values()))
            if i == 10:
                assert _total(folded) == 0  # nothing written before a fold
        observer.fold()
        return kept

    assert asyncio.run(add()) == MAX_PENDING_AMOUNTS - 1
    assert _total(folded) == _total(direct) == sum(amounts)


def test_without_a_loop_an_amount_is_written_at_once() -> None:
    folded, direct = _counter_pair()
    RequestObserver().add(folded, 5)
    direct.inc(5)
    assert _total(folded) == _total(direct) == 5
