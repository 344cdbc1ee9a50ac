"""README.md is the PyPI page: a relative link there leads nowhere, so every link is absolute, and
every repository file it links to exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The repository named once, in pyproject.toml's [project.urls] (tomllib is 3.11+: a regex will do).
_urls = re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
assert _urls is not None
REPO = _urls.group(1) + "/"
RAW = REPO.replace("https://github.com/", "https://raw.githubusercontent.com/") + "main/"


def test_readme_links_are_absolute_and_exist() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())
    assert links
    for link in links:
        assert link.startswith("https://"), f"relative link in README.md: {link}"
        path = None
        if link.startswith(REPO):
            path = re.sub(r"^(blob|tree|raw)/main/", "", link[len(REPO) :])
        elif link.startswith(RAW):
            path = link[len(RAW) :]
        if path is not None:
            assert (ROOT / path.split("#")[0]).exists(), f"README.md links to a missing file: {link}"
