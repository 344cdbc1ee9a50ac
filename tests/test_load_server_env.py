"""scripts/load/run.py's ``--server-env``: only WEBHOOKFAST_* settings, as NAME=VALUE, reach the
server (the caller's own WEBHOOKFAST_* variables never do)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "load"))

import run  # noqa: E402


def test_server_settings_are_taken_as_name_and_value() -> None:
    a = run.parse_args(["--server-env", "WEBHOOKFAST_LABEL_INDEX_MERGE_S=1", "--server-env", "WEBHOOKFAST_X=a=b"])
    assert a.server_env == ["WEBHOOKFAST_LABEL_INDEX_MERGE_S=1", "WEBHOOKFAST_X=a=b"]


@pytest.mark.parametrize("bad", ["PATH=/tmp", "WEBHOOKFAST_ACK", "LABEL_INDEX_MERGE_S=1"])
def test_anything_else_is_refused(bad: str) -> None:
    with pytest.raises(SystemExit):
        run.parse_args(["--server-env", bad])
