"""External command-line tools the tests use (found on PATH, else the test is skipped)."""

from __future__ import annotations

import os
import shutil

import pytest


def promtool() -> str:
    """Path of Prometheus' ``promtool``; skips the test if it is missing (fails instead when
    ``WEBHOOKFAST_TEST_REQUIRE_SERVICES=1``)."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (apt-get install prometheus)"
        if os.environ.get("WEBHOOKFAST_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
