"""Python allocations per request: N one-alert requests through the full middleware stack and the
batcher, on an in-memory store whose write returns at once (so only webhookfast's own work is
counted, no database driver), inside one ``loop.run_until_complete``.

Printed (also with -q) and written to ``.codspeed/webhookfast-allocations.json``:

- **allocations per request** (the target: ≤ 20 Python allocations per 1-alert request): calls
  into CPython's object and memory allocators (``PyObject_Malloc``/``Calloc``/``Realloc`` and
  ``PyMem_Malloc``/``Calloc``/``Realloc``: objects, their buffers, dict and list storage), counted
  by valgrind's callgrind in a child process that runs the requests and nothing watches from
  inside. A profiler would change the count: memray follows the Python stack with a profile
  function, and under one CPython 3.11 builds a frame object for every Python call and a bound
  method for every C method call, which it does not do otherwise (memray counted 174 per request
  where callgrind counts 75). The child calls ``getppid`` before and after each measured set of
  requests; callgrind writes its counters at each call (``--dump-before=getppid``), so start-up
  and warm-up are left out. Needs valgrind (Debian: ``apt-get install -y valgrind``; the test
  command installs it); without it the test is skipped, and fails under the test command
  (``WEBHOOKFAST_TEST_REQUIRE_SERVICES=1``). The child also makes 10,000 objects between two more
  markers, and the count of them must come out right: a build whose allocator calls callgrind
  cannot see (inlined, say) fails instead of reporting too few. About 25 s.
- **blocks retained per request** (tracemalloc): live blocks after minus before, divided by N — a
  leak check (≈ 0 in steady state).

The count is taken on each event loop installed: uvloop first, the loop a Granian worker runs
(its ``loop="auto"`` takes uvloop when installed, and uvloop is a dependency), then asyncio's own.
Each is driven two ways:

- **one at a time**: each request awaited before the next, so each pays a whole flush of its own
  (the strictest reading of "per 1-alert request"; the target's figure, on uvloop);
- **64 in flight**: each request a task, as Granian runs them, at most 64 at once as ``wrk -c 64``
  keeps them in the load tests, so that flushes carry many requests.

Beside webhookfast with its full stack (bearer auth and the rate limit on), the same app as shipped
(both off by default, the access log and metrics on) and two floors run in the same harness (``benches/floors.py``): the load tests'
bare app, and that app plus a hand-off to a writer task, the core of what acknowledging after a
shared commit needs on asyncio.

``WEBHOOKFAST_ALLOC_SITES=20`` also prints, for webhookfast on the workers' loop, the 20 lines of
code that allocate the most per request, from memray (``pip install memray``). Its counts per
line leave out the frame objects its profiler makes (counted by a profile function of this
module's own, charged to the calling line) but still hold the bound methods it makes for C
method calls: compare lines with them, not the total.

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
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import BuiltinMethodType, CodeType, FrameType
from typing import Any

import pytest
from conftest import body
from fakes import AppHarness, FakeProto, FakeScope, MemoryStore, make_app, webhook_request
from floors import BareApp, HandoffApp
from webhookfast import metrics

N = 1000
WARMUP = 300
IN_FLIGHT = 64
CALIBRATION = 10_000  # objects made between the child's last two markers
TARGET = 20
# WEBHOOKFAST_ALLOC_SITES=20: also print the 20 lines that allocate the most per request (memray).
SITES = int(os.environ.get("WEBHOOKFAST_ALLOC_SITES", "0") or 0)
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".codspeed" / "webhookfast-allocations.json"

ALLOCATORS = frozenset(
    {"PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc", "PyMem_Malloc", "PyMem_Calloc", "PyMem_Realloc"}
)
_MEMRAY_ALLOC = {"PYMALLOC_MALLOC", "PYMALLOC_CALLOC", "PYMALLOC_REALLOC"}

DRIVINGS = {"one at a time": 1, f"{IN_FLIGHT} in flight": IN_FLIGHT}
APPS = ("webhookfast", "as shipped", "hand-off floor", "bare floor")


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


def _configs() -> list[tuple[str, str, str]]:
    """(loop, driving, app) in the order the callgrind child runs them."""
    return [(loop, driving, app) for loop in _loops() for driving in DRIVINGS for app in APPS]


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


class _Measured:
    """One app on a fresh loop of the given kind, warmed up (caches, lazily built metric
    children, interned strings), with a check that its N measured requests all went through."""

    def __init__(self, name: str, loop: str, in_flight: int) -> None:
        self.in_flight = in_flight
        app: Any
        # What the app has written so far (the bare app writes nothing).
        self._written: Callable[[], int] | None
        if name in ("webhookfast", "as shipped"):
            store = MemoryStore()
            # As shipped: no bearer auth and no rate limit (both off by default), the access log on.
            app = make_app(full_stack=name == "webhookfast", store=store, access_log=True)
            self._written = lambda: store.alerts
        elif name == "hand-off floor":
            app = handoff = HandoffApp()
            self._written = lambda: handoff.written
        else:
            app, self._written = BareApp(), None
        self.h = AppHarness(app, _loops()[loop]())
        self.scope, self.proto = webhook_request(body(1))
        self.run(WARMUP)
        self._before = self._written() if self._written is not None else 0

    def run(self, count: int) -> None:
        _requests(self.h, self.scope, self.proto, count, self.in_flight)

    def check(self, count: int) -> None:
        if self._written is not None:
            assert self._written() - self._before == count

    def close(self) -> None:
        self.h.close()


def _child() -> None:
    """Under callgrind: every configuration's N requests between two ``getppid`` markers, then
    CALIBRATION new objects between two more (a count that misses allocator calls, for instance
    in a build that inlines them, shows there)."""
    for loop, driving, name in _configs():
        measured = _Measured(name, loop, DRIVINGS[driving])
        try:
            os.getppid()
            measured.run(N)
            os.getppid()
            measured.check(N)
        finally:
            measured.close()
    os.getppid()
    kept = [object() for _ in itertools.repeat(None, CALIBRATION)]
    os.getppid()
    assert len(kept) == CALIBRATION


_NAMED = re.compile(r"\((\d+)\)(?: (.*))?")
# A symbol's name without what callgrind or the compiler adds: "'2" for a recursion level,
# ".constprop.0" and the like for a specialised copy.
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _allocator_calls(path: str) -> int:
    """Calls into the allocators in one callgrind dump (names are compressed: ``(id) name`` the
    first time an id appears, ``(id)`` after)."""
    names: dict[str, str] = {}
    total = 0
    callee: str | None = None
    with open(path, encoding="utf-8", errors="replace") as dump:
        for line in dump:
            if line.startswith(("fn=", "cfn=")):
                key, _, rest = line.rstrip("\n").partition("=")
                m = _NAMED.fullmatch(rest)
                if m is not None:
                    if m.group(2) is not None:
                        names[m.group(1)] = m.group(2)
                    name = names.get(m.group(1), "")
                else:
                    name = rest
                callee = name if key == "cfn" else None
            elif line.startswith("calls=") and callee is not None:
                symbol = _SYMBOL.match(callee)
                if symbol is not None and symbol.group() in ALLOCATORS:
                    total += int(line[6:].split()[0])
                callee = None
    return total


def _count_with_callgrind() -> dict[str, dict[str, dict[str, float]]]:
    if shutil.which("valgrind") is None:
        message = "valgrind is not installed (apt-get install -y valgrind): allocations not counted"
        if os.environ.get("WEBHOOKFAST_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    configs = _configs()
    with tempfile.TemporaryDirectory(prefix="webhookfast-callgrind-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--dump-instr=no",
            "--dump-before=getppid",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
        ]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-3000:]
        # One dump before each marker (two per configuration, two for the calibration), and the
        # last one at exit.
        dumps = sorted(os.listdir(tmp))
        assert len(dumps) == 2 * (len(configs) + 1) + 1, dumps
        counts: dict[str, dict[str, dict[str, float]]] = {}
        for i, (loop, driving, name) in enumerate(configs):
            # Dump 2i+2 is written at the marker after configuration i's requests.
            counts.setdefault(loop, {}).setdefault(driving, {})[name] = _allocator_calls(f"{out}.{2 * i + 2}") / N
        calibration = _allocator_calls(f"{out}.{2 * len(configs) + 2}")
    # One per object, and the list's own growth (a few hundred reallocations at most).
    assert CALIBRATION <= calibration <= CALIBRATION * 1.05, calibration
    return counts


_FIRST_RESUME: dict[CodeType, int] = {}
# A bound method made for a c_call event: held by the interpreter, the profile function's
# argument and getrefcount's own.
_TEMPORARY_REFS = 3


def _first_resume(code: CodeType) -> int:
    offset = _FIRST_RESUME.get(code)
    if offset is None:
        offset = next((i.offset for i in dis.get_instructions(code) if i.opname == "RESUME"), 0)
        _FIRST_RESUME[code] = offset
    return offset


def _profiler_objects_by_line(drive: Callable[[], None]) -> dict[str, int]:
    """The objects that CPython builds only for a profile function, by the line of code they are
    charged to: a frame object for each Python frame started (a function call or a coroutine's
    first step, not its later steps; seen at its first RESUME, charged to the calling line), and
    a bound method for each call of a C method descriptor (``obj.method()``: the ``c_call``
    event's argument, made for it and so referenced only by the interpreter, the profile
    function and ``getrefcount``)."""
    by_line: dict[str, int] = {}

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            caller = frame.f_back
            if caller is None or frame.f_lasti > _first_resume(frame.f_code):
                return
        elif event == "c_call":
            if type(arg) is not BuiltinMethodType or sys.getrefcount(arg) != _TEMPORARY_REFS:
                return
            caller = frame
        else:
            return
        where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
        by_line[where] = by_line.get(where, 0) + 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        drive()
    finally:
        sys.setprofile(previous)
    return by_line


def _sites_with_memray(loop: str, in_flight: int) -> dict[str, float] | None:
    """The SITES lines that allocate the most per request by memray's count, less the objects
    that only its profiler makes, after their sum over all lines ("all lines")."""
    try:
        import memray
    except ImportError:
        return None
    measured = _Measured("webhookfast", loop, in_flight)
    try:
        with tempfile.TemporaryDirectory(prefix="webhookfast-memray-") as tmp:
            path = os.path.join(tmp, "allocations.bin")
            try:
                with memray.Tracker(path, trace_python_allocators=True, native_traces=False):
                    measured.run(N)
            except RuntimeError:  # e.g. another tracker active (pytest run under memray)
                return None
            lines: dict[str, list[Any]] = {}
            for record in memray.FileReader(path).get_allocation_records():
                if memray.AllocatorType(record.allocator).name in _MEMRAY_ALLOC:
                    frames = record.stack_trace(max_stacks=1)
                    function, where = (frames[0][0], f"{frames[0][1]}:{frames[0][2]}") if frames else ("", "?")
                    lines.setdefault(where, [function, 0])[1] += record.n_allocations
        made = _profiler_objects_by_line(lambda: measured.run(N))
    finally:
        measured.close()
    objects = {f"{where} ({function})": (n - made.get(where, 0)) / N for where, (function, n) in lines.items()}
    top = dict(sorted(objects.items(), key=lambda item: -item[1])[:SITES])
    # Beside callgrind's count, the sum tells how well the profiler's objects were taken out.
    return {"all lines": sum(objects.values()), **top}


def _retained_with_tracemalloc(measured: _Measured) -> dict[str, float]:
    gc.collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        measured.run(N)
        # The access log keeps up to 1,024 requests' records until its next write, and the metrics
        # up to 1,024 flushes' values until their next fold: not a leak.
        measured.h.app.access_log.flush()
        metrics.request_observer.fold()
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
    production = next(iter(_loops()))
    measured = _Measured("webhookfast", production, 1)
    try:
        loop, app, scope, proto = measured.h.loop, measured.h.app, measured.scope, measured.proto
        benchmark(lambda: loop.run_until_complete(app.__rsgi__(scope, proto)))
        assert proto.status == 200
        if _instrumented():
            return
        retained = _retained_with_tracemalloc(measured)
    finally:
        measured.close()

    counts = _count_with_callgrind()
    sites = (
        {driving: _sites_with_memray(production, in_flight) for driving, in_flight in DRIVINGS.items()} if SITES else {}
    )

    lines = [f"webhookfast allocations, 1-alert request, full stack + batcher, in-memory store, N={N}:"]
    headline = counts[production]["one at a time"]["webhookfast"]
    verdict = "meets" if headline <= TARGET else "misses"
    lines.append(
        f"  Python allocations per request on {production}, one at a time: {headline:.1f} "
        f"({verdict} the target of <= {TARGET}; callgrind)"
    )
    lines.append("  Python allocations per request (callgrind: allocator calls):")
    lines.append(f"    {'loop':8} {'driving':14} " + " ".join(f"{name:>15}" for name in APPS))
    for loop, by_driving in counts.items():
        for driving, by_app in by_driving.items():
            lines.append(f"    {loop:8} {driving:14} " + " ".join(f"{by_app[name]:15.1f}" for name in APPS))
    for driving, by_line in sites.items():
        if by_line is None:
            lines.append("  allocation sites: not measured (pip install memray; no other memray tracker active)")
            break
        lines.append(
            f"  where webhookfast allocates per request on {production}, {driving} "
            "(memray less its profiler's frames and bound methods):"
        )
        for where, n in by_line.items():
            lines.append(f"    {n:6.2f}  {where.replace(str(ROOT) + os.sep, '')}")
    lines.append(
        f"  retained after the run on {production} (tracemalloc): {retained['blocks']:+.3f} blocks, "
        f"{retained['bytes']:+.1f} bytes per request"
    )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    record_property("allocations", json.dumps({"callgrind": counts, "tracemalloc": retained}))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "n": N,
                "in_flight": IN_FLIGHT,
                "target_python": TARGET,
                "loop": production,
                "python": headline,
                "callgrind": counts,
                "sites": sites,
                "tracemalloc": retained,
            },
            indent=2,
        )
    )

    # Sanity only.
    assert abs(retained["blocks"]) < 1_000
    for by_driving in counts.values():
        for by_app in by_driving.values():
            app_count, shipped, handoff, bare = (by_app[name] for name in APPS)
            assert 0 < bare < handoff < min(shipped, app_count) <= max(shipped, app_count) < 100_000


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    _child()
