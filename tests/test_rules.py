"""deploy/prometheus: the alerting rules pass ``promtool check rules`` and their unit tests
(``promtool test rules``), and every rule has a unit test that makes it fire."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from support import tools

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
RULES = DEPLOY / "webhookfast-rules.yml"
RULE_TESTS = DEPLOY / "webhookfast-rules.test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    return tools.promtool()


def run(promtool: str, *args: str) -> str:
    proc = subprocess.run([promtool, *args], cwd=DEPLOY, capture_output=True, timeout=120)
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    assert proc.returncode == 0, f"promtool {' '.join(args)} → {proc.returncode}:\n{output}"
    return output


def test_check_rules(promtool: str) -> None:
    output = run(promtool, "check", "rules", RULES.name)
    assert "SUCCESS" in output


def test_rule_unit_tests(promtool: str) -> None:
    output = run(promtool, "test", "rules", RULE_TESTS.name)
    assert "SUCCESS" in output


def test_every_rule_has_a_firing_unit_test() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]
    names = {r["alert"] for r in rules}
    assert len(names) == len(rules), "duplicate alert names"
    fired: set[str] = set()
    quiet: set[str] = set()
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in test.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert names - fired == set(), f"rules never shown to fire: {sorted(names - fired)}"
    assert names - quiet == set(), f"rules never shown to stay quiet: {sorted(names - quiet)}"
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert {"summary", "description"} <= set(rule["annotations"])
