"""Every setting is documented where a PyPI reader sees it: README.md's settings table is exactly
what `webhookfast settings` prints, and every setting has a description."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from webhookfast import cli
from webhookfast.settings import Settings, reference_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_has_a_description() -> None:
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_readme_table_is_the_generated_one() -> None:
    block = re.search(r"<!-- settings:begin[^>]*-->\n(.*?)<!-- settings:end -->", README.read_text(), re.S)
    assert block is not None, "README.md lost its settings markers"
    assert block.group(1) == reference_table(), "README.md's settings table is stale: paste `webhookfast settings`"


def test_cli_prints_the_table() -> None:
    result = CliRunner().invoke(cli.main, ["settings"])
    assert result.exit_code == 0
    assert result.output == reference_table()
    for name in Settings.model_fields:
        assert f"`WEBHOOKFAST_{name.upper()}`" in result.output
