"""The README's curl examples work as printed against a real server (only the port differs), so
a first try from the PyPI page does not fail on a forgotten header."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from support.servers import ServerProcess

README = Path(__file__).resolve().parents[1] / "README.md"


def curl_block() -> str:
    text = README.read_text()
    start = text.index("Try each route with `curl`")
    match = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert match is not None
    return match.group(1)


def test_readme_curl_examples_succeed(sqlite_server: ServerProcess) -> None:
    block = curl_block()
    commands = [line for line in block.splitlines() if line.startswith("curl ")]
    assert len(commands) >= 9, "one example per route"
    port = sqlite_server.url.rsplit(":", 1)[1]
    script = "set -e\n" + block.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("curl -sS", "curl -sSf")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('"status":"stored"') == 3
