"""Shared test setup: puts tests/ on sys.path (for ``support.*``) and loads the test plugins.

Plugins:
- ``support.postgres``: a throw-away PostgreSQL server (``postgres_server``) and a fresh migrated
  database per test (``pg_url``).
- ``support.servers``: ``webhookfast serve`` as a real subprocess (``sqlite_server``, ``server_factory``).
- ``support.alertmanager``: Debian's real ``prometheus-alertmanager`` (``alertmanager_factory``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from support.net import LOGS_KEY, tail  # noqa: E402
from support.net import free_port as _free_port  # noqa: E402

pytest_plugins = ["support.postgres", "support.servers", "support.alertmanager"]

PAYLOADS_DIR = TESTS_DIR / "fixtures" / "payloads"


@pytest.fixture(scope="session")
def payloads_dir() -> Path:
    """tests/fixtures/payloads: byte-for-byte captures of real Alertmanager and Prometheus requests."""
    return PAYLOADS_DIR


@pytest.fixture(name="free_port")
def free_port_fixture() -> Callable[[], int]:
    """``free_port()`` → a free TCP port on 127.0.0.1."""
    return _free_port


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Append the logs of the helper processes a failing test used (server, Alertmanager) to its report."""
    report = yield
    if report.when not in ("setup", "call") or not report.failed:
        return report
    for name, read in item.stash.get(LOGS_KEY, []):
        try:
            text = tail(read(), 60)
        except Exception as exc:  # the log must never hide the real failure
            text = f"(could not read the log: {exc!r})"
        report.sections.append((f"log of {name} (last 60 lines)", text))
    return report
