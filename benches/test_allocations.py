"""Python allocations per request: N one-alert requests through the full middleware stack and the
batcher, on an in-memory store whose write returns at once (so only webhookfast's own work is
counted, no database driver), driven back to back inside one ``loop.run_until_complete``.

Two counts, both printed (also with -q) and written to ``.codspeed/webhookfast-allocations.json``:

- **allocations per request** (the target: ≤ 20 Python allocations per 1-alert request): every
  allocation *event* during the N requests, counted by memray's tracker with
  ``trace_python_allocators=True`` — ``python`` = PyMem/PyObject allocator calls (objects, frames,
  buffers), ``native`` = libc malloc and friends (C extensions; a Rust core built with its own
  allocator, e.g. mimalloc, is not seen there). tracemalloc cannot
  count allocation events (it only holds the blocks still alive), so this part needs memray
  (``pip install memray``); without it, it is reported as not measured.
- **blocks retained per request** (tracemalloc): live blocks after minus before, divided by N — a
  leak check (≈ 0 in steady state).

The test is also a benchmark of that same request (so that ``pytest benches --codspeed``, which
runs only benchmarks, runs it too). Under CodSpeed's instrumented CI runner the counting is left
out (the instrumentation would distort it and the run would be slow).

Only sanity is asserted (every request answered 200, counts positive and far below absurd); the
target itself is reported, not asserted: it is a goal for the code, not a test of it.
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from conftest import body
from fakes import AppHarness, MemoryStore, make_app, webhook_request

N = 1000
WARMUP = 300
TARGET = 20
RESULTS = Path(__file__).resolve().parent.parent / ".codspeed" / "webhookfast-allocations.json"

_PY_ALLOC = {"PYMALLOC_MALLOC", "PYMALLOC_CALLOC", "PYMALLOC_REALLOC"}
_NATIVE_ALLOC = {"MALLOC", "CALLOC", "REALLOC", "POSIX_MEMALIGN", "ALIGNED_ALLOC", "MEMALIGN", "VALLOC", "PVALLOC"}


def _requests(h: AppHarness, count: int) -> None:
    app = h.app
    scope, proto = webhook_request(body(1))

    async def many() -> None:
        for _ in range(count):
            await app.__rsgi__(scope, proto)

    h.loop.run_until_complete(many())
    assert proto.status == 200, proto.response


def _count_with_memray(h: AppHarness) -> dict[str, Any] | None:
    try:
        import memray
    except ImportError:
        return None
    with tempfile.TemporaryDirectory(prefix="webhookfast-memray-") as tmp:
        path = os.path.join(tmp, "allocations.bin")
        try:
            tracker = memray.Tracker(path, trace_python_allocators=True, native_traces=False)
            with tracker:
                _requests(h, N)
        except RuntimeError as exc:  # e.g. another tracker active (pytest run under memray)
            pytest.skip(f"memray tracker unavailable: {exc}")
        kinds: dict[str, int] = {}
        for record in memray.FileReader(path).get_allocation_records():
            name = memray.AllocatorType(record.allocator).name
            kinds[name] = kinds.get(name, 0) + record.n_allocations
    python = sum(v for k, v in kinds.items() if k in _PY_ALLOC)
    native = sum(v for k, v in kinds.items() if k in _NATIVE_ALLOC)
    return {"python": python / N, "native": native / N, "by_kind": {k: v / N for k, v in sorted(kinds.items())}}


def _retained_with_tracemalloc(h: AppHarness) -> dict[str, float]:
    gc.collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        _requests(h, N)
        # The access log keeps up to 1,024 requests' records until its next write: not a leak.
        h.app.access_log.flush()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    diff = after.compare_to(before, "lineno")
    blocks = sum(d.count_diff for d in diff)
    size = sum(d.size_diff for d in diff)
    return {"blocks": blocks / N, "bytes": size / N}


def _instrumented() -> bool:
    return os.environ.get("CODSPEED_ENV") is not None and os.environ.get("CODSPEED_RUNNER_MODE") != "walltime"


def test_allocations_per_request(benchmark: Any, capsys: pytest.CaptureFixture[str], record_property: Any) -> None:
    store = MemoryStore()
    h = AppHarness(make_app(full_stack=True, store=store))
    try:
        scope, proto = webhook_request(body(1))
        app = h.app
        benchmark(lambda: h.loop.run_until_complete(app.__rsgi__(scope, proto)))
        assert proto.status == 200
        if _instrumented():
            return
        _requests(h, WARMUP)  # caches, lazily built metric children, interned strings
        before = store.alerts
        counted = _count_with_memray(h)
        retained = _retained_with_tracemalloc(h)
        assert store.alerts - before == N * (2 if counted is not None else 1)
    finally:
        h.close()

    lines = [f"webhookfast allocations, 1-alert request, full stack + batcher, in-memory store, N={N}:"]
    if counted is None:
        lines.append("  allocations per request: not measured (pip install memray to count them)")
    else:
        verdict = "meets" if counted["python"] <= TARGET else "misses"
        lines.append(
            f"  Python allocations per request: {counted['python']:.1f} ({verdict} the target of <= {TARGET}); "
            f"native (libc malloc): {counted['native']:.1f}"
        )
        lines.append("  by allocator: " + ", ".join(f"{k}={v:.1f}" for k, v in counted["by_kind"].items()))
    lines.append(
        f"  retained after the run (tracemalloc): {retained['blocks']:+.3f} blocks, {retained['bytes']:+.1f} bytes per request"
    )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    record_property("allocations", json.dumps({"memray": counted, "tracemalloc": retained}))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"n": N, "target_python": TARGET, "memray": counted, "tracemalloc": retained}, indent=2)
    )

    # Sanity only.
    if counted is not None:
        assert 0 < counted["python"] < 100_000
    assert abs(retained["blocks"]) < 1_000
