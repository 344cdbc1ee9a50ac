"""HMAC-SHA256 request signing (WEBHOOKFAST_HMAC_SECRET): the signature helper, and a real
``webhookfast serve`` admitting signed ingest requests next to bearer auth."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

from support.sqlite import query
from webhookfast.middleware.auth import Auth, check_signature, sign

PAYLOADS = Path(__file__).parent / "fixtures" / "payloads"
JSON_HEADERS = {"Content-Type": "application/json"}
SECRET = "hmac-s3cret-9f2c1e"


def signed(body: bytes, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    """Headers as a signing sender computes them, independently of the server's helper."""
    ts = int(time.time()) if ts is None else ts
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {**JSON_HEADERS, "X-Webhookfast-Timestamp": str(ts), "X-Webhookfast-Signature": f"sha256={mac}"}


# -- the helper ---------------------------------------------------------------------------------


def test_sign_matches_the_documented_wire_format() -> None:
    body = b'{"alerts": []}'
    expected = "sha256=" + hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(b"k", 1700000000, body) == expected == sign(b"k", "1700000000", body)


def test_check_signature_reasons() -> None:
    key, body, now = b"k", b"{}", 1_700_000_000.0
    good = sign(key, 1_700_000_000, body)
    assert check_signature(key, 300, "1700000000", good, body, now) is None
    assert check_signature(key, 300, "1700000000", good.upper().replace("SHA256=", "sha256="), body, now) is None
    assert check_signature(key, 300, "1700000000", good, b"{ }", now)[0] == "bad_signature"
    assert check_signature(b"other", 300, "1700000000", good, body, now)[0] == "bad_signature"
    assert check_signature(key, 300, "1700000001", good, body, now)[0] == "bad_signature"  # re-dated
    assert check_signature(key, 300, None, good, body, now)[0] == "bad_signature"
    assert check_signature(key, 300, "1700000000", None, body, now)[0] == "bad_signature"
    for ts in ("-1", "1e9", "abc", "", "1" * 13, "١٢٣"):
        assert check_signature(key, 300, ts, sign(key, ts, body), body, now)[0] == "bad_signature"
    # The window: inclusive at the edge, both directions.
    assert check_signature(key, 300, "1700000000", good, body, now + 300) is None
    assert check_signature(key, 300, "1700000000", good, body, now + 301) == (
        "stale_signature",
        "signature timestamp outside the allowed window",
    )
    assert check_signature(key, 300, "1700000000", good, body, now - 301)[0] == "stale_signature"


def test_auth_enabled_with_only_a_secret() -> None:
    assert Auth(hmac_secret="x").enabled
    assert not Auth().enabled
    assert "Signature" in Auth(hmac_secret="x")._challenge[0][1]


# -- a real server ------------------------------------------------------------------------------


def test_signed_requests(server_factory, tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    server = server_factory(f"sqlite:///{db}", env={"WEBHOOKFAST_HMAC_SECRET": SECRET})
    body = (PAYLOADS / "firing_single.json").read_bytes()

    ok = server.post("/webhook", body, signed(body))
    assert ok.status == 200, ok.text
    assert ok.json()["status"] == "stored"
    assert query(db, "SELECT count(*) FROM alerts") == [(1,)]

    def refused(headers: dict[str, str], message: str, payload: bytes = body, path: str = "/webhook") -> None:
        resp = server.post(path, payload, headers)
        assert resp.status == 401, resp.text
        error = resp.json()["error"]
        assert error["code"] == "unauthorized"
        assert message in error["message"]
        assert 'Signature realm="webhookfast"' in resp.headers["www-authenticate"]

    refused(signed(body, secret="wrong-secret"), "signature does not match")
    refused(signed(body), "signature does not match", payload=body.replace(b"firing", b"resolved", 1))
    refused(signed(body, ts=int(time.time()) - 3600), "outside the allowed window")
    refused(signed(body, ts=int(time.time()) + 3600), "outside the allowed window")
    refused(JSON_HEADERS, "valid credentials are required")
    no_ts = signed(body)
    del no_ts["X-Webhookfast-Timestamp"]
    refused(no_ts, "X-Webhookfast-Timestamp and X-Webhookfast-Signature are required")
    refused(signed(body, ts=-5), "unix seconds")
    # An invalid signature over an invalid body is a 401, not a payload error: nothing is decoded.
    refused(signed(b"{not json"), "signature does not match", payload=b"{not json}")
    # Signatures are for ingest routes only.
    get = server.get("/api/v1/alerts", signed(b""))
    assert get.status == 401
    assert get.json()["error"]["code"] == "unauthorized"
    assert server.get("/api/v1/alerts").status == 401

    # A replay within the window is accepted and collapses into the same rows (idempotent writes).
    headers = signed(body)
    assert server.post("/webhook", body, headers).status == 200
    assert server.post("/webhook", body, headers).status == 200
    assert query(db, "SELECT count(*) FROM alerts") == [(1,)]
    # The Prometheus path takes signed requests too.
    prom = (PAYLOADS / "prometheus_firing.json").read_bytes()
    assert server.post("/api/v2/alerts", prom, signed(prom)).status == 200

    scrape = server.get("/metrics").text
    assert 'webhookfast_auth_failures_total{reason="bad_signature"}' in scrape
    assert 'webhookfast_auth_failures_total{reason="stale_signature"} 2.0' in scrape
    server.stop()
    assert SECRET not in server.log()


def test_signature_or_bearer_either_admits(server_factory, tmp_path: Path) -> None:
    db = tmp_path / "hb.db"
    server = server_factory(
        f"sqlite:///{db}", env={"WEBHOOKFAST_HMAC_SECRET": SECRET, "WEBHOOKFAST_BEARER_TOKEN": "b3arer"}
    )
    body = (PAYLOADS / "firing_single.json").read_bytes()
    assert server.post("/webhook", body, signed(body)).status == 200
    assert server.post("/webhook", body, {**JSON_HEADERS, "Authorization": "Bearer b3arer"}).status == 200
    # A wrong token does not spoil a valid signature, and a bad signature does not spoil a valid token.
    both = {**signed(body), "Authorization": "Bearer nope"}
    assert server.post("/webhook", body, both).status == 200
    both = {**signed(body, secret="nope"), "Authorization": "Bearer b3arer"}
    assert server.post("/webhook", body, both).status == 200
    refused = server.post("/webhook", body, JSON_HEADERS)
    assert refused.status == 401
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="webhookfast"') and "Signature" in challenge
    assert server.post("/webhook", body, {**signed(body, secret="nope"), "Authorization": "Bearer x"}).status == 401
    # The bearer token still opens the history API; a signature does not.
    assert server.get("/api/v1/alerts", {"Authorization": "Bearer b3arer"}).status == 200
    assert server.get("/api/v1/alerts", signed(b"")).status == 401
    server.stop()
    log = server.log()
    assert SECRET not in log and "b3arer" not in log
