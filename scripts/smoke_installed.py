"""Smoke test of an installed webhookfast (a wheel or an sdist, on any platform it ships to):
start ``webhookfast serve`` on the embedded store, post one real Alertmanager notification, read it
back from the history API, stop the server with its normal signal and check its exit.

    python scripts/smoke_installed.py [--payload tests/fixtures/payloads/firing_single.json]

Only the standard library, so it runs right after ``pip install dist/*.whl`` with nothing else.
Exit status 0 means every step passed; otherwise the server's output is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PAYLOAD = ROOT / "tests" / "fixtures" / "payloads" / "firing_single.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payload", type=Path, default=DEFAULT_PAYLOAD)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server to start")
    args = parser.parse_args()
    body = args.payload.read_bytes()
    expected = len(json.loads(body)["alerts"])

    workdir = Path(tempfile.mkdtemp(prefix="webhookfast-smoke-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    exe = shutil.which("webhookfast") or sys.exit("webhookfast is not on PATH: install the wheel first")
    log_path = workdir / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [exe, "serve", "--port", str(port), "--database-url", f"sqlite:///{(workdir / 'smoke.db').as_posix()}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            # Windows: a group of its own, so that CTRL_BREAK reaches the server and not this script.
            creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
        )
    try:
        check_serving(base, server, args.timeout)
        status, answer = request(f"{base}/webhook", body)
        step("POST /webhook", status == 200 and json.loads(answer).get("alerts") == expected, answer)
        status, answer = request(f"{base}/api/v1/alerts")
        stored = json.loads(answer).get("alerts", []) if status == 200 else []
        step("GET /api/v1/alerts", len(stored) == expected, answer)
        code = stop(server)
        step("graceful stop", code == 0, f"exit code {code}".encode())
    except AssertionError:
        stop(server)
        sys.stderr.write(log_path.read_text(errors="replace"))
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("smoke test passed")
    return 0


def check_serving(base: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            step("server running", False, f"serve exited with {server.returncode}".encode())
        try:
            if request(f"{base}/healthz")[0] == 200:
                print(f"ok: server answers at {base}")
                return
        except OSError:
            pass
        time.sleep(0.2)
    step("server started", False, f"no answer within {timeout:.0f} s".encode())


def step(name: str, ok: bool, detail: bytes) -> None:
    if not ok:
        print(f"FAILED: {name}: {detail[:500]!r}")
        raise AssertionError(name)
    print(f"ok: {name}")


def stop(server: subprocess.Popen[bytes]) -> int | None:
    if server.poll() is None:
        server.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGTERM)  # type: ignore[attr-defined]
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return server.returncode


if __name__ == "__main__":
    sys.exit(main())
