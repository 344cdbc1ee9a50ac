"""Shared setup of the benchmarks (pytest-codspeed).

    pytest benches --codspeed                  walltime measurements (codspeed's defaults: 1 s warm-up,
                                               up to 3 s per benchmark)
    pytest benches                             every benchmark body runs once (a correctness check)
    WEBHOOKFAST_BENCH_QUICK=1 pytest benches --codspeed
                                               short budget (20 ms warm-up, 100 ms per benchmark)

The quick budget is also taken under the project's test command (scripts/test.sh exports
WEBHOOKFAST_TEST_RUN_ID and runs ``pytest benches --codspeed``): the test suite checks that the
benchmarks run, not how fast. Explicit ``--codspeed-warmup-time``/``--codspeed-max-time`` options,
``WEBHOOKFAST_BENCH_QUICK=0`` and the CodSpeed CI runner (``CODSPEED_ENV``) always win.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import payloads  # noqa: E402

QUICK_WARMUP_S = 0.02
QUICK_MAX_TIME_S = 0.1


def quick_mode() -> bool:
    flag = os.environ.get("WEBHOOKFAST_BENCH_QUICK")
    if flag is not None:
        return flag not in ("", "0", "false", "no")
    if os.environ.get("CODSPEED_ENV") is not None:
        return False
    return os.environ.get("WEBHOOKFAST_TEST_RUN_ID") is not None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs before pytest-codspeed reads its options (this conftest's hook is registered later,
    # and pluggy calls the latest registered first among tryfirst hooks).
    if not quick_mode():
        return
    if getattr(config.option, "codspeed_warmup_time", None) is None:
        config.option.codspeed_warmup_time = QUICK_WARMUP_S
    if getattr(config.option, "codspeed_max_time", None) is None:
        config.option.codspeed_max_time = QUICK_MAX_TIME_S


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"webhookfast benches: quick={quick_mode()} warmup={getattr(config.option, 'codspeed_warmup_time', None)} "
        f"max_time={getattr(config.option, 'codspeed_max_time', None)}"
    )


# Per-call divisors for the summary table: a benchmark whose call sends several requests (or
# carries several alerts) registers them here, through the ``per_call`` fixture.
REQUESTS_PER_CALL: dict[str, int] = {}
ALERTS_PER_CALL: dict[str, int] = {}


@pytest.fixture
def per_call(request: pytest.FixtureRequest) -> Any:
    """``per_call(requests=N, alerts=M)``: one benchmarked call = N requests carrying M alerts."""

    def register(requests: int = 1, alerts: int | None = None) -> None:
        REQUESTS_PER_CALL[request.node.name] = requests
        if alerts is not None:
            ALERTS_PER_CALL[request.node.name] = alerts

    return register


def _fmt_ns(ns: float) -> str:
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Median time per call, per request and per alert (walltime mode).

    pytest-codspeed's own table shows "Time (best)" divided by the iterations per round twice
    (pytest-codspeed 5.0.4): for fast benchmarks it reads far too low. This table uses the
    median of the per-iteration times as pytest-codspeed computed them (also in .codspeed/*.json).
    """
    plugin = config.pluginmanager.get_plugin("codspeed_plugin")
    benches = getattr(getattr(plugin, "instrument", None), "benchmarks", None)
    if not benches:
        return
    tr = terminalreporter
    tr.write_sep("=", "webhookfast: median per call, per request, per alert")
    width = max(len(b.name) for b in benches)
    tr.write_line(
        f"{'benchmark'.ljust(width)}  {'per call':>11}  {'requests':>8}  {'per request':>11}  {'per alert':>11}  {'rounds x iters':>14}"
    )
    for b in benches:
        st = b.stats
        requests = REQUESTS_PER_CALL.get(b.name, 1)
        alerts = ALERTS_PER_CALL.get(b.name)
        per_alert = _fmt_ns(st.median_ns / alerts) if alerts else "-"
        tr.write_line(
            f"{b.name.ljust(width)}  {_fmt_ns(st.median_ns):>11}  {requests:>8}  {_fmt_ns(st.median_ns / requests):>11}  "
            f"{per_alert:>11}  {f'{st.rounds} x {st.iter_per_round}':>14}"
        )


@cache
def body(n: int, seed: int = 0) -> bytes:
    """An Alertmanager v4 body of ``n`` alerts (cached: the 10,000-alert one takes a second)."""
    return payloads.body(n, seed)


@cache
def unique_bodies(n: int, count: int) -> tuple[bytes, ...]:
    """``count`` bodies of ``n`` alerts each, every alert a new label set and startsAt."""
    return tuple(payloads.body(n, seed) for seed in range(1, count + 1))


@pytest.fixture
def tmp_sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'bench.db'}"


@pytest.fixture(scope="session")
def bench_pg_url() -> Iterator[str]:
    """A throw-away PostgreSQL cluster (fsync on), migrated: the flush path against a real server.
    The test command installs Debian's postgresql, so this runs there; elsewhere it is skipped."""
    sys.path.insert(0, str(BENCH_DIR.parent / "scripts" / "load"))
    from pgtemp import TempPostgres, find_pg_bin
    from webhookfast.storage.postgres import PostgresStore

    if find_pg_bin() is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install -y postgresql)")
    server = TempPostgres().start()
    try:
        PostgresStore(server.url).migrate()
        yield server.url
    finally:
        server.stop()
