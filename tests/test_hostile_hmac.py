"""Issue #11: with an HMAC secret set, what an unauthenticated client can make the server buffer is
bounded. Requests without well-formed, in-window signature headers are refused before their body is
read; bodies that claim a signature are read only within a shared byte budget."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
from pathlib import Path

import pytest
from support.servers import ServerFactory

SECRET = "hmac-s3cret-hostile"
TOKEN = "b3arer-hostile"
PAYLOAD = (Path(__file__).parent / "fixtures" / "payloads" / "firing_single.json").read_bytes()
MiB = 1024 * 1024


def sig(body: bytes, ts: int, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()


def open_request(port: int, headers: dict[str, str], length: int, body_part: bytes = b"") -> socket.socket:
    """Send a POST /webhook's head announcing ``length`` body bytes, then only ``body_part``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {length}\r\n\r\n"
    sock.sendall(head.encode() + body_part)
    return sock


def status_within(sock: socket.socket, seconds: float) -> int | None:
    """The status of the answer if one arrives within ``seconds`` (None if not)."""
    sock.settimeout(seconds)
    try:
        data = sock.recv(4096)
    except TimeoutError:
        return None
    finally:
        sock.close()
    return int(data.split(b" ", 2)[1]) if data else None


@pytest.fixture
def server(server_factory: ServerFactory):  # type: ignore[no-untyped-def]
    return server_factory(
        env={
            "WEBHOOKFAST_HMAC_SECRET": SECRET,
            "WEBHOOKFAST_BEARER_TOKEN": TOKEN,
            # A body not sent would otherwise be waited for: long enough to tell the two apart.
            "WEBHOOKFAST_BODY_TIMEOUT_S": "30",
            "WEBHOOKFAST_MAX_BODY_BYTES": str(MiB),
            "WEBHOOKFAST_HMAC_UNVERIFIED_MAX_BYTES": str(MiB),
        }
    )


def header_cases() -> dict[str, dict[str, str]]:
    now = int(time.time())
    good = sig(b"x", now)
    return {
        "timestamp only": {"X-Webhookfast-Timestamp": str(now)},
        "signature only": {"X-Webhookfast-Signature": good},
        "timestamp not a number": {"X-Webhookfast-Timestamp": "soon", "X-Webhookfast-Signature": good},
        "signature not hex": {"X-Webhookfast-Timestamp": str(now), "X-Webhookfast-Signature": "sha256=zz"},
        "signature too short": {"X-Webhookfast-Timestamp": str(now), "X-Webhookfast-Signature": good[:-2]},
        "stale": {"X-Webhookfast-Timestamp": str(now - 3600), "X-Webhookfast-Signature": sig(b"x", now - 3600)},
        "from the future": {
            "X-Webhookfast-Timestamp": str(now + 3600),
            "X-Webhookfast-Signature": sig(b"x", now + 3600),
        },
        "wrong token": {"Authorization": "Bearer nope"},
    }


@pytest.mark.parametrize("case", list(header_cases()))
def test_unsigned_or_malformed_requests_are_refused_before_the_body(server, case: str) -> None:  # type: ignore[no-untyped-def]
    # A whole body is announced but never sent: the answer must not wait for it.
    sock = open_request(server.port, header_cases()[case], MiB)
    assert status_within(sock, 3.0) == 401


def test_signature_claiming_bodies_share_a_byte_budget(server) -> None:  # type: ignore[no-untyped-def]
    now = int(time.time())
    forged = {"X-Webhookfast-Timestamp": str(now), "X-Webhookfast-Signature": sig(b"not this body", now)}
    # A forger with well-formed, in-window headers holds the whole budget with a slow body ...
    slow = open_request(server.port, forged, MiB, b" " * 1000)
    time.sleep(0.5)
    # ... so another one is refused at once (503: back-pressure a signing sender retries) ...
    second = open_request(server.port, forged, 1000)
    assert status_within(second, 3.0) == 503
    # ... a valid signature too, for the moment; a bearer token is not affected.
    ts = int(time.time())
    busy = server.post(
        "/webhook", PAYLOAD, {"X-Webhookfast-Timestamp": str(ts), "X-Webhookfast-Signature": sig(PAYLOAD, ts)}
    )
    assert busy.status == 503 and busy.json()["error"]["code"] == "overloaded"
    assert "retry-after" in busy.headers
    assert server.post("/webhook", PAYLOAD, {"Authorization": f"Bearer {TOKEN}"}).status == 200
    # The slow body ends: its signature fails, and the budget is free again.
    slow.sendall(b" " * (MiB - 1000))
    assert status_within(slow, 10.0) == 401
    ts = int(time.time())
    ok = server.post(
        "/webhook", PAYLOAD, {"X-Webhookfast-Timestamp": str(ts), "X-Webhookfast-Signature": sig(PAYLOAD, ts)}
    )
    assert ok.status == 200, ok.text
    scrape = server.get("/metrics", {"Authorization": f"Bearer {TOKEN}"}).text
    assert 'webhookfast_ingest_rejected_total{reason="unverified_bytes"} 2.0' in scrape
