"""The per-flush histograms that RequestObserver keeps as values until its fold: the fold must
add exactly what prometheus-client's own ``observe`` would have, and the values kept stay bounded."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Histogram
from webhookfast import metrics
from webhookfast.metrics import MAX_PENDING_VALUES, RequestObserver

BUCKETS = (1, 2, 5, 10, 100, 1000)
# Below, on and between the bounds, past the last one, and counts large enough to leave the
# small-int cache.
VALUES = [0, 0.5, 1, 1.5, 2, 3, 5, 9.99, 10, 99, 100, 101, 999, 1000, 1001, 70_000, 2.5e9]


def _samples(h: Histogram) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for s in h.collect()[0].samples if not s.name.endswith("_created")]


def _pair() -> tuple[Histogram, Histogram]:
    registry = CollectorRegistry()
    return (
        Histogram("folded", "observed through RequestObserver", buckets=BUCKETS, registry=registry),
        Histogram("direct", "observed by prometheus-client", buckets=BUCKETS, registry=registry),
    )


def _renamed(samples: list[tuple[str, dict[str, str], float]]) -> list[tuple[str, dict[str, str], float]]:
    return [(name.replace("direct", "folded"), labels, value) for name, labels, value in samples]


def test_a_fold_adds_what_observe_would_have() -> None:
    folded, direct = _pair()

    async def observe() -> None:
        observer = RequestObserver(fold_interval_s=60)
        for _ in range(3):
            for v in VALUES:
                observer.observe_value(folded, v)
                direct.observe(v)
        assert _samples(folded)[-1][2] == 0  # nothing written before the fold
        observer.fold()

    asyncio.run(observe())
    assert _samples(folded) == _renamed(_samples(direct))
    assert dict((n, v) for n, _, v in _samples(folded))["folded_count"] == 3 * len(VALUES)


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
    assert _samples(folded) == _renamed(_samples(direct))


def test_without_a_loop_a_value_is_written_at_once() -> None:
    folded, direct = _pair()
    observer = RequestObserver()
    observer.observe_value(folded, 3)
    direct.observe(3)
    assert _samples(folded) == _renamed(_samples(direct))


def test_the_flush_histograms_are_observed_through_the_module() -> None:
    before = metrics.flush_alerts.collect()[0].samples
    count_before = next(s.value for s in before if s.name.endswith("_count"))
    metrics.observe_value(metrics.flush_alerts, 7)  # no loop here: written at once
    after = metrics.flush_alerts.collect()[0].samples
    assert next(s.value for s in after if s.name.endswith("_count")) == count_before + 1
