"""Python allocations per request: N one-alert requests through the full middleware stack and the
batcher, on an in-memory store whose write returns at once (so only webhookfast's own work is
counted, no database driver), inside one ``loop.run_until_complete``.

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

The count is taken on each event loop installed: uvloop first, the loop a Granian worker runs
(its ``loop="auto"`` takes uvloop when installed, and uvloop is a dependency), then asyncio's own.
Each is driven two ways:

- **one at a time**: each request awaited before the next, so each pays a whole flush of its own
  (the strictest reading of "per 1-alert request"; the target's figure, on uvloop);
- **64 in flight**: each request a task, as Granian runs them, at most 64 at once as ``wrk -c 64``
  keeps them in the load tests, so that flushes carry many requests.

Beside webhookfast, two floors run in the same harness (``benches/floors.py``): the load tests'
bare app, and that app plus a hand-off to a writer task, the least that acknowledging after a
shared commit needs on asyncio.

``WEBHOOKFAST_ALLOC_SITES=20`` also prints, for webhookfast on the workers' loop, the 20 lines of
code that allocate the most per request (each allocation charged to its innermost Python frame).

The test is also a benchmark of that same request (so that ``pytest benches --codspeed``, which
runs only benchmarks, runs it too). Under CodSpeed's instrumented CI runner the counting is left
out (the instrumentation would distort it and the run would be slow).

Only sanity is asserted (every request answered 200, counts positive and far below absurd, each
floor below what it is a floor of); the target itself is reported, not asserted: it is a goal for
the code, not a test of it.
"""

from __future__ import annotations

import asyncio
import dis
import gc
import json
import os
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import pytest
from conftest import body
from fakes import AppHarness, FakeProto, FakeScope, MemoryStore, make_app, webhook_request
from floors import BareApp, HandoffApp

N = 1000
WARMUP = 300
IN_FLIGHT = 64
# WEBHOOKFAST_ALLOC_SITES=20: also print the 20 lines that allocate the most per request.
SITES = int(os.environ.get("WEBHOOKFAST_ALLOC_SITES", "0") or 0)
ROOT = Path(__file__).resolve().parent.parent
TARGET = 20
RESULTS = ROOT / ".codspeed" / "webhookfast-allocations.json"

_PY_ALLOC = {"PYMALLOC_MALLOC", "PYMALLOC_CALLOC", "PYMALLOC_REALLOC"}
_NATIVE_ALLOC = {"MALLOC", "CALLOC", "REALLOC", "POSIX_MEMALIGN", "ALIGNED_ALLOC", "MEMALIGN", "VALLOC", "PVALLOC"}

DRIVINGS = {"one at a time": 1, f"{IN_FLIGHT} in flight": IN_FLIGHT}
APPS = ("webhookfast", "hand-off floor", "bare floor")


def _loops() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The event loops to count on, the one Granian's workers run first."""
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {}
    try:
        import uvloop
    except ImportError:
        pass
    else:
        loops["uvloop"] = uvloop.new_event_loop
    loops["asyncio"] = asyncio.new_event_loop
    return loops


def _requests(h: AppHarness, scope: FakeScope, proto: FakeProto, count: int, in_flight: int = 1) -> None:
    app = h.app

    async def one_at_a_time() -> None:
        for _ in range(count):
            await app.__rsgi__(scope, proto)

    async def concurrently() -> None:
        # In waves of ``in_flight`` tasks: awaiting a task that is done allocates nothing, where
        # asyncio.wait's futures and sets would count as much as a bare request.
        loop = asyncio.get_running_loop()
        for start in range(0, count, in_flight):
            tasks = [loop.create_task(app.__rsgi__(scope, proto)) for _ in range(min(in_flight, count - start))]
            for task in tasks:
                await task

    h.loop.run_until_complete(one_at_a_time() if in_flight == 1 else concurrently())
    assert proto.status == 200, proto.response


def _count_with_memray(drive: Callable[[], None], by_line: bool = False) -> dict[str, Any] | None:
    """Allocations per request by allocator; with ``by_line``, also the Python allocations of
    each line of code (``lines``: "file:line" -> [function, count], the innermost Python frame of
    each allocation)."""
    try:
        import memray
    except ImportError:
        return None
    with tempfile.TemporaryDirectory(prefix="webhookfast-memray-") as tmp:
        path = os.path.join(tmp, "allocations.bin")
        try:
            tracker = memray.Tracker(path, trace_python_allocators=True, native_traces=False)
            with tracker:
                drive()
        except RuntimeError as exc:  # e.g. another tracker active (pytest run under memray)
            pytest.skip(f"memray tracker unavailable: {exc}")
        kinds: dict[str, int] = {}
        lines: dict[str, list[Any]] = {}
        for record in memray.FileReader(path).get_allocation_records():
            name = memray.AllocatorType(record.allocator).name
            kinds[name] = kinds.get(name, 0) + record.n_allocations
            if by_line and name in _PY_ALLOC:
                frames = record.stack_trace(max_stacks=1)
                function, where = (frames[0][0], f"{frames[0][1]}:{frames[0][2]}") if frames else ("", "?")
                lines.setdefault(where, [function, 0])[1] += record.n_allocations
    python = sum(v for k, v in kinds.items() if k in _PY_ALLOC)
    native = sum(v for k, v in kinds.items() if k in _NATIVE_ALLOC)
    counted: dict[str, Any] = {
        "python": python / N,
        "native": native / N,
        "by_kind": {k: v / N for k, v in sorted(kinds.items())},
    }
    if by_line:
        counted["lines"] = lines
    return counted


def _retained_with_tracemalloc(h: AppHarness, scope: FakeScope, proto: FakeProto) -> dict[str, float]:
    gc.collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        _requests(h, scope, proto, N)
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


_FIRST_RESUME: dict[CodeType, int] = {}


def _first_resume(code: CodeType) -> int:
    offset = _FIRST_RESUME.get(code)
    if offset is None:
        offset = next((i.offset for i in dis.get_instructions(code) if i.opname == "RESUME"), 0)
        _FIRST_RESUME[code] = offset
    return offset


def _fresh_frames(drive: Callable[[], None]) -> tuple[float, dict[str, int]]:
    """Python frames started per request (function calls and coroutines' first steps, not a
    coroutine's later steps), and how many each line of code started: memray follows the Python
    stack with a profile function, which makes CPython build a frame object for each of them
    (charged to the calling line), an allocation that happens only under a profiler (on 3.11 a
    call's frame lives in the thread's frame stack, and a coroutine's inside the coroutine). A
    frame is fresh when the profiler sees it at its first RESUME."""
    fresh = 0
    callers: dict[str, int] = {}

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal fresh
        if event == "call" and frame.f_lasti <= _first_resume(frame.f_code):
            fresh += 1
            caller = frame.f_back
            if caller is not None:
                where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
                callers[where] = callers.get(where, 0) + 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        drive()
    finally:
        sys.setprofile(previous)
    return fresh / N, callers


def _instrumented() -> bool:
    return os.environ.get("CODSPEED_ENV") is not None and os.environ.get("CODSPEED_RUNNER_MODE") != "walltime"


def _count_app(
    name: str, new_loop: Callable[[], asyncio.AbstractEventLoop], in_flight: int, sites: int = 0
) -> dict[str, Any] | None:
    """One app's allocations per request on a fresh loop, after a warm-up (caches, lazily built
    metric children, interned strings)."""
    store = MemoryStore()
    app: Any = make_app(full_stack=True, store=store) if name == "webhookfast" else None
    if name == "hand-off floor":
        app = HandoffApp()
    elif name == "bare floor":
        app = BareApp()
    h = AppHarness(app, new_loop())
    try:
        scope, proto = webhook_request(body(1))
        _requests(h, scope, proto, WARMUP, in_flight)
        before = (store.alerts, app.written if isinstance(app, HandoffApp) else 0)
        counted = _count_with_memray(lambda: _requests(h, scope, proto, N, in_flight), by_line=sites > 0)
        if counted is None:
            return None
        if name == "webhookfast":
            assert store.alerts - before[0] == N
        if isinstance(app, HandoffApp):
            assert app.written - before[1] == N
        counted["frames"], callers = _fresh_frames(lambda: _requests(h, scope, proto, N, in_flight))
        counted["objects"] = counted["python"] - counted["frames"]
        lines = counted.pop("lines", None)
        if lines:
            objects = {
                f"{where} ({function})": (n - callers.get(where, 0)) / N for where, (function, n) in lines.items()
            }
            counted["sites"] = dict(sorted(objects.items(), key=lambda item: -item[1])[:sites])
        return counted
    finally:
        h.close()


def test_allocations_per_request(benchmark: Any, capsys: pytest.CaptureFixture[str], record_property: Any) -> None:
    loops = _loops()
    production = next(iter(loops))
    store = MemoryStore()
    h = AppHarness(make_app(full_stack=True, store=store), loops[production]())
    try:
        scope, proto = webhook_request(body(1))
        app = h.app
        benchmark(lambda: h.loop.run_until_complete(app.__rsgi__(scope, proto)))
        assert proto.status == 200
        if _instrumented():
            return
        _requests(h, scope, proto, WARMUP)
        retained = _retained_with_tracemalloc(h, scope, proto)
    finally:
        h.close()

    counts: dict[str, dict[str, dict[str, dict[str, Any] | None]]] = {
        loop: {
            driving: {
                name: _count_app(name, new_loop, in_flight, SITES if (loop, name) == (production, APPS[0]) else 0)
                for name in APPS
            }
            for driving, in_flight in DRIVINGS.items()
        }
        for loop, new_loop in loops.items()
    }
    headline = counts[production]["one at a time"]["webhookfast"]

    lines = [f"webhookfast allocations, 1-alert request, full stack + batcher, in-memory store, N={N}:"]
    if headline is None:
        lines.append("  allocations per request: not measured (pip install memray to count them)")
    else:
        verdict = "meets" if headline["objects"] <= TARGET else "misses"
        lines.append(
            f"  Python allocations per request on {production}, one at a time: {headline['objects']:.1f} "
            f"({verdict} the target of <= {TARGET}): memray counted {headline['python']:.1f}, of which "
            f"{headline['frames']:.1f} frame objects that only its profiler makes; "
            f"native (libc malloc): {headline['native']:.1f}"
        )
        lines.append("  Python allocations per request, without the profiler's frame objects [memray's count]:")
        lines.append(f"    {'loop':8} {'driving':14} " + " ".join(f"{name:>22}" for name in APPS))
        for loop, by_driving in counts.items():
            for driving, by_app in by_driving.items():
                cells = " ".join(
                    f"{c['objects']:11.1f} [{c['python']:7.1f}] " if c else f"{'-':>22}" for c in by_app.values()
                )
                lines.append(f"    {loop:8} {driving:14} {cells}")
    for driving, by_app in counts[production].items():
        sites = (by_app[APPS[0]] or {}).get("sites")
        if sites:
            lines.append(
                f"  where webhookfast allocates per request on {production}, {driving} (without the profiler's frames):"
            )
            for where, n in sites.items():
                lines.append(f"    {n:6.2f}  {where.replace(str(ROOT) + os.sep, '')}")
    lines.append(
        f"  retained after the run on {production} (tracemalloc): {retained['blocks']:+.3f} blocks, "
        f"{retained['bytes']:+.1f} bytes per request"
    )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    record_property("allocations", json.dumps({"memray": counts, "tracemalloc": retained}))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "n": N,
                "in_flight": IN_FLIGHT,
                "target_python": TARGET,
                "loop": production,
                "memray": headline,
                "by_loop": counts,
                "tracemalloc": retained,
            },
            indent=2,
        )
    )

    # Sanity only.
    assert abs(retained["blocks"]) < 1_000
    if headline is None:
        return
    for by_driving in counts.values():
        for by_app in by_driving.values():
            app_count, handoff, bare = (by_app[name] for name in APPS)
            assert app_count is not None and handoff is not None and bare is not None
            for kind in ("python", "objects"):
                assert 0 < bare[kind] < handoff[kind] < app_count[kind] < 100_000
            # Each request starts frames of its own (the app's coroutine at least).
            assert 1 <= bare["frames"] < handoff["frames"] < app_count["frames"]
