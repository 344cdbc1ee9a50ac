"""Small networking helpers shared by the test plugins (stdlib only)."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it; tiny race until it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def json(self) -> object:
        import json

        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def request(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Response:
    """One HTTP request on a fresh connection (https is not verified: tests use self-signed certs)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(parts.hostname or "127.0.0.1", port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", port, timeout=timeout)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        conn.request(method, target, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        merged: dict[str, str] = {}
        for name, value in resp.getheaders():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return Response(resp.status, merged, data)
    finally:
        conn.close()


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    interval: float = 0.1,
    message: str | Callable[[], str] = "condition not met",
) -> None:
    """Poll ``predicate`` until it is true; raise ``TimeoutError`` with ``message`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(message() if callable(message) else message)
        time.sleep(interval)


def tail(text: str, lines: int = 80) -> str:
    return "\n".join(text.splitlines()[-lines:])


# -- logs of helper processes, shown in the report of a failing test ------------------------------

import pytest  # noqa: E402

LOGS_KEY: pytest.StashKey[list[tuple[str, Callable[[], str]]]] = pytest.StashKey()


def attach_log(node: pytest.Item | None, name: str, read: Callable[[], str]) -> None:
    """Show ``read()`` (the tail of a helper process' log) in the report if the test fails."""
    if node is None:
        return
    node.stash.setdefault(LOGS_KEY, []).append((name, read))
