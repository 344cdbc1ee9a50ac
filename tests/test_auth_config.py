"""Issue #11: authentication never fails open. An empty or half credential (empty token or token
file, a basic-auth user without password or password without user, an empty HMAC secret) stops
``webhookfast serve`` with one line on stderr and a non-zero exit, instead of serving without it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from support.net import free_port
from support.servers import ServerFactory, server_command

SECRET = "s3cret-value"


def serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``webhookfast serve`` as a subprocess with only ``env`` as its WEBHOOKFAST_* settings."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKFAST_")}
    full.update(env)
    full["TMPDIR"] = str(tmp_path)
    cmd = [
        *server_command(),
        "serve",
        "--no-migrate-on-start",
        "--port",
        str(free_port()),
        "--database-url",
        f"sqlite:///{tmp_path}/wf.db",
    ]
    # Its own session: if it does start (the bug), the whole group, workers included, is killed.
    proc = subprocess.Popen(
        cmd, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"serve started with a broken credential: {err[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def empty_file(tmp_path: Path, text: str = " \n") -> str:
    path = tmp_path / "secret"
    path.write_text(text)
    return str(path)


CASES = {
    "empty token": ({"WEBHOOKFAST_BEARER_TOKEN": ""}, "WEBHOOKFAST_BEARER_TOKEN is empty"),
    "blank token": ({"WEBHOOKFAST_BEARER_TOKEN": "   "}, "WEBHOOKFAST_BEARER_TOKEN is empty"),
    "empty token file": ({"WEBHOOKFAST_BEARER_TOKEN_FILE": "{file}"}, "WEBHOOKFAST_BEARER_TOKEN_FILE"),
    "token and token file": (
        {"WEBHOOKFAST_BEARER_TOKEN": SECRET, "WEBHOOKFAST_BEARER_TOKEN_FILE": "{file}"},
        "not both",
    ),
    "user without password": ({"WEBHOOKFAST_BASIC_AUTH_USER": "alice"}, "needs both"),
    "password without user": ({"WEBHOOKFAST_BASIC_AUTH_PASSWORD": SECRET}, "needs both"),
    "password file without user": ({"WEBHOOKFAST_BASIC_AUTH_PASSWORD_FILE": "{secret_file}"}, "needs both"),
    "empty user": (
        {"WEBHOOKFAST_BASIC_AUTH_USER": "", "WEBHOOKFAST_BASIC_AUTH_PASSWORD": SECRET},
        "WEBHOOKFAST_BASIC_AUTH_USER is empty",
    ),
    "empty password": (
        {"WEBHOOKFAST_BASIC_AUTH_USER": "alice", "WEBHOOKFAST_BASIC_AUTH_PASSWORD": ""},
        "WEBHOOKFAST_BASIC_AUTH_PASSWORD is empty",
    ),
    "empty password file": (
        {"WEBHOOKFAST_BASIC_AUTH_USER": "alice", "WEBHOOKFAST_BASIC_AUTH_PASSWORD_FILE": "{file}"},
        "WEBHOOKFAST_BASIC_AUTH_PASSWORD_FILE",
    ),
    "user with a colon": (
        {"WEBHOOKFAST_BASIC_AUTH_USER": "al:ice", "WEBHOOKFAST_BASIC_AUTH_PASSWORD": SECRET},
        "must not contain ':'",
    ),
    "empty hmac secret": ({"WEBHOOKFAST_HMAC_SECRET": ""}, "WEBHOOKFAST_HMAC_SECRET is empty"),
    "empty hmac secret file": ({"WEBHOOKFAST_HMAC_SECRET_FILE": "{file}"}, "WEBHOOKFAST_HMAC_SECRET_FILE"),
    "good token, empty hmac secret": (
        {"WEBHOOKFAST_BEARER_TOKEN": SECRET, "WEBHOOKFAST_HMAC_SECRET": ""},
        "WEBHOOKFAST_HMAC_SECRET is empty",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_serve_refuses_empty_or_half_credentials(tmp_path: Path, case: str) -> None:
    env, expected = CASES[case]
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET)
    env = {k: v.format(file=empty_file(tmp_path), secret_file=secret_file) for k, v in env.items()}
    result = serve(tmp_path, env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: credentials: ") and expected in lines[0], lines[0]
    assert SECRET not in result.stderr + result.stdout


def test_complete_credentials_start_and_are_enforced(server_factory: ServerFactory, tmp_path: Path) -> None:
    """The counterpart: the same settings, complete, serve and protect the ingest route."""
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET + "\n")
    server = server_factory(
        env={"WEBHOOKFAST_BASIC_AUTH_USER": "alice", "WEBHOOKFAST_BASIC_AUTH_PASSWORD_FILE": str(secret_file)}
    )
    resp = server.post("/webhook", b"{}")
    assert resp.status == 401
    assert resp.json()["error"]["code"] == "unauthorized"  # type: ignore[index]
