"""scripts/smoke_installed.py is what the wheel workflow runs against every built wheel and the
sdist: it must pass against this installation and fail when the server does not store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "smoke_installed.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_smoke_script_passes_on_this_installation() -> None:
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: POST /webhook" in result.stdout and "ok: graceful stop" in result.stdout


def test_smoke_script_fails_on_a_refused_payload(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"alerts": [{"status": "firing", "labels": {}, "startsAt": "not a time"}], "version": "4"}')
    result = run("--payload", str(bad))
    assert result.returncode == 1
    assert "FAILED: POST /webhook" in result.stdout
