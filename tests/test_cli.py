"""The CLI's own logic: durations, settings from options and environment, credential checks."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from webhookfast import cli


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("45m", 2700), ("12h", 43200), ("30d", 2592000), ("2w", 1209600)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert cli.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "1.5h", "-1d", "30 days"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(click.BadParameter):
        cli.parse_duration(text)


def test_options_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOKFAST_PORT", "9999")
    monkeypatch.setenv("WEBHOOKFAST_WORKERS", "3")
    monkeypatch.setenv("WEBHOOKFAST_STATS_CACHE_S", "30")
    settings = cli._settings(port=8081, workers=None, stats_cache_s=0.0)
    assert (settings.port, settings.workers, settings.stats_cache_s) == (8081, 3, 0.0)
    # What the workers rebuild the app from.
    assert settings.env()["WEBHOOKFAST_STATS_CACHE_S"] == "0.0"


def test_bad_settings_are_usage_errors() -> None:
    with pytest.raises(click.UsageError, match="database_url"):
        cli._settings(database_url="mysql://x")


def test_serve_refuses_non_ascii_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOKFAST_BEARER_TOKEN", "sécret")
    result = CliRunner().invoke(cli.main, ["serve", "--no-migrate-on-start"])
    assert result.exit_code == 2
    assert "printable ASCII" in result.output
    assert "sécret" not in result.output


def test_migrate_and_prune_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    runner = CliRunner()
    assert runner.invoke(cli.main, ["migrate", "--database-url", url]).exit_code == 0
    result = runner.invoke(cli.main, ["prune", "--database-url", url, "--older-than", "30d"])
    assert result.exit_code == 0, result.output
    assert "deleted 0 rows" in result.output


def test_stale_metrics_dirs_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead = tmp_path / "webhookfast-metrics-999999999-abc"
    live = tmp_path / f"webhookfast-metrics-{os.getppid()}-abc"
    dead.mkdir()
    live.mkdir()
    fresh = Path(cli._metrics_dir())
    assert not dead.exists()
    assert live.exists()
    assert fresh.name.startswith(f"webhookfast-metrics-{os.getpid()}-")


def test_cli_does_not_import_prometheus_client() -> None:
    """prometheus-client fixes its value class at import: imported in the parent before
    PROMETHEUS_MULTIPROC_DIR is set, forked workers would keep metrics in private memory and
    /metrics would come back empty."""
    import subprocess
    import sys

    code = "import sys, webhookfast.cli; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
