"""``webhookfast serve`` as a real subprocess, over a real socket, on the embedded SQLite store."""

from __future__ import annotations

import json
import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.sqlite import query
from webhookfast._core import decode, fingerprint_from_int

PAYLOADS = Path(__file__).parent / "fixtures" / "payloads"
JSON_HEADERS = {"Content-Type": "application/json"}


def payload_files() -> list[Path]:
    return sorted(p for p in PAYLOADS.glob("*.json") if not p.name.endswith(".headers.json"))


@pytest.mark.parametrize("path", payload_files(), ids=lambda p: p.stem)
def test_every_captured_payload_is_stored(sqlite_server, sqlite_db_path: Path, path: Path) -> None:
    body = path.read_bytes()
    route = "/api/v2/alerts" if path.name.startswith("prometheus") else "/webhook"
    resp = sqlite_server.post(route, body, JSON_HEADERS)
    assert resp.status == 200, resp.text
    answer = resp.json()
    assert answer["status"] == "stored"
    assert answer["alerts"] == len(decode(body))
    assert answer["request_id"] == resp.headers["x-request-id"]
    stored = {fingerprint_from_int(fp) for (fp,) in query(sqlite_db_path, "SELECT fingerprint FROM alerts")}
    assert stored == set(decode(body).fingerprints())
    sent = [a.get("fingerprint") for a in (json.loads(body).get("alerts", []) if body.startswith(b"{") else [])]
    for fp in filter(None, sent):  # what Alertmanager computed is what we stored
        assert fp in stored


def test_repeats_collapse_and_count(sqlite_server, sqlite_db_path: Path) -> None:
    body = (PAYLOADS / "firing_largest.json").read_bytes()
    for _ in range(3):
        assert sqlite_server.post("/webhook", body, JSON_HEADERS).status == 200
    n = len(decode(body))
    assert query(sqlite_db_path, "SELECT count(*), min(notifications), max(notifications) FROM alerts") == [(n, 3, 3)]
    assert query(sqlite_db_path, "SELECT count(*) FROM alert_events") == [(n,)]


def test_firing_then_resolved_history(sqlite_server, sqlite_db_path: Path) -> None:
    # Prometheus marks firing alerts by an endsAt in the future; the capture's has passed since.
    alerts = json.loads((PAYLOADS / "prometheus_firing.json").read_bytes())
    later = (datetime.now(timezone.utc) + timedelta(minutes=4)).isoformat().replace("+00:00", "Z")
    for alert in alerts:
        alert["endsAt"] = later
    firing = json.dumps(alerts).encode()
    resolved = (PAYLOADS / "prometheus_resolved.json").read_bytes()
    assert sqlite_server.post("/api/v2/alerts", firing, JSON_HEADERS).status == 200
    assert sqlite_server.post("/api/v2/alerts", resolved, JSON_HEADERS).status == 200
    both = set(decode(firing).fingerprints()) & set(decode(resolved).fingerprints())
    assert both, "the captures share alerts"
    history = query(
        sqlite_db_path,
        "SELECT fingerprint, group_concat(status, ',') FROM "
        "(SELECT fingerprint, status FROM alert_events ORDER BY fingerprint, received_at) GROUP BY fingerprint",
    )
    by_fp = {fingerprint_from_int(fp): states for fp, states in history}
    for fp in both:
        assert by_fp[fp] == "firing,resolved"


def test_health_ready_metrics(sqlite_server) -> None:
    assert sqlite_server.get("/healthz").json() == {"status": "ok"}
    assert sqlite_server.get("/readyz").json() == {"status": "ready"}
    body = (PAYLOADS / "firing_single.json").read_bytes()
    assert sqlite_server.post("/webhook", body, JSON_HEADERS).status == 200
    metrics = sqlite_server.get("/metrics")
    assert metrics.status == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'webhookfast_alerts_received_total{format="alertmanager",status="firing"} 1.0' in metrics.text
    assert 'webhookfast_http_requests_total{route="webhook",status="200"} 1.0' in metrics.text


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "code"),
    [
        ("GET", "/nope", {}, None, 404, "not_found"),
        ("GET", "/webhook", {}, None, 405, "method_not_allowed"),
        ("POST", "/webhook", {"Content-Type": "text/plain"}, b"{}", 415, "unsupported_media_type"),
        ("POST", "/webhook", {}, b"{}", 415, "unsupported_media_type"),
        ("POST", "/webhook", JSON_HEADERS, b"{not json", 400, "invalid_json"),
        ("POST", "/webhook", JSON_HEADERS, b'{"alerts": [', 400, "invalid_json"),
        (
            "POST",
            "/webhook",
            JSON_HEADERS,
            b'{"alerts": [{"status": "firing", "labels": {"a": 1}, "startsAt": "2026-01-01T00:00:00Z"}]}',
            422,
            "wrong_type",
        ),
        (
            "POST",
            "/webhook",
            JSON_HEADERS,
            b'{"alerts": [{"status": "firing", "labels": {}, "startsAt": "yesterday"}]}',
            422,
            "invalid_time",
        ),
        ("POST", "/webhook", JSON_HEADERS, b'{"alerts": [], "alerts": []}', 400, "duplicate_key"),
        ("POST", "/webhook", JSON_HEADERS, b'{"x": "\xff"}', 400, "invalid_utf8"),
        ("POST", "/webhook", JSON_HEADERS, b"[" * 100 + b"]" * 100, 400, "too_deep"),
        ("POST", "/webhook", JSON_HEADERS, b"", 400, "empty_body"),
        ("POST", "/webhook", JSON_HEADERS, b'{"hello": 1}', 422, "unknown_format"),
    ],
)
def test_bad_requests_get_json_errors(
    sqlite_server,
    sqlite_db_path: Path,
    method: str,
    path: str,
    headers: dict,
    body: bytes | None,
    status: int,
    code: str,
) -> None:
    resp = sqlite_server.request(method, path, body=body, headers=headers)
    assert resp.status == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == resp.headers["x-request-id"]
    if status == 405:
        assert resp.headers["allow"] == "POST"
    assert sqlite_server.get("/healthz").status == 200
    assert query(sqlite_db_path, "SELECT count(*) FROM alert_events") == [(0,)]


def test_payload_error_names_the_path(sqlite_server) -> None:
    body = json.loads((PAYLOADS / "firing_largest.json").read_bytes())
    body["alerts"][3]["startsAt"] = "2026-13-01T00:00:00Z"
    resp = sqlite_server.post("/webhook", json.dumps(body).encode(), JSON_HEADERS)
    assert resp.status == 422
    error = resp.json()["error"]
    assert (error["code"], error["path"]) == ("invalid_time", "alerts[3].startsAt")
    assert isinstance(error["offset"], int)


def test_body_over_the_cap_is_refused_before_reading(server_factory, tmp_path: Path) -> None:
    server = server_factory(f"sqlite:///{tmp_path}/cap.db", env={"WEBHOOKFAST_MAX_BODY_BYTES": "1000"})
    body = (PAYLOADS / "firing_largest.json").read_bytes()
    resp = server.post("/webhook", body, JSON_HEADERS)
    assert resp.status == 413
    assert resp.json()["error"]["code"] == "payload_too_large"


def test_sigterm_flushes_and_exits_zero(server_factory, tmp_path: Path) -> None:
    db = tmp_path / "term.db"
    server = server_factory(f"sqlite:///{db}")
    body = (PAYLOADS / "firing_largest.json").read_bytes()
    assert server.post("/webhook", body, JSON_HEADERS).status == 200
    assert server.stop(signal.SIGTERM) == 0
    assert query(db, "SELECT count(*) FROM alerts") == [(len(decode(body)),)]


def test_bearer_token_required_when_configured(server_factory, tmp_path: Path) -> None:
    server = server_factory(f"sqlite:///{tmp_path}/auth.db", env={"WEBHOOKFAST_BEARER_TOKEN": "s3cret"})
    body = (PAYLOADS / "firing_single.json").read_bytes()
    refused = server.post("/webhook", body, JSON_HEADERS)
    assert refused.status == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.json()["error"]["code"] == "unauthorized"
    wrong = server.post("/webhook", body, {**JSON_HEADERS, "Authorization": "Bearer s3cre"})
    assert wrong.status == 401
    ok = server.post("/webhook", body, {**JSON_HEADERS, "Authorization": "Bearer s3cret"})
    assert ok.status == 200
    assert server.get("/healthz").status == 200  # open unless WEBHOOKFAST_PROTECT_HEALTH
    assert "s3cret" not in server.log()


def test_the_access_log_counts_the_bytes_each_body_framing_delivered(server_factory, tmp_path: Path) -> None:
    """``bytes_in`` is the Content-Length already checked (Granian delivers exactly that many bytes;
    what a sender adds past it is not this request's body) or, for a chunked body, what arrived."""
    import http.client
    import socket

    server = server_factory(f"sqlite:///{tmp_path}/framing.db")
    body = (PAYLOADS / "firing_largest.json").read_bytes()
    host, port = "127.0.0.1", int(server.url.rsplit(":", 1)[1])

    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("POST", "/webhook", body, {**JSON_HEADERS, "X-Request-Id": "framing-length"})
    first = conn.getresponse()
    assert (first.status, first.read()) == (200, b'{"status":"stored","alerts":40,"request_id":"framing-length"}')
    half = len(body) // 2
    conn.request(
        "POST", "/webhook", iter([body[:half], body[half:]]), {**JSON_HEADERS, "X-Request-Id": "framing-chunked"}
    )
    assert conn.getresponse().status == 200
    conn.close()

    # Bytes past the Content-Length: the body is the announced bytes, whole and valid; the rest
    # is read as the start of another request, which the server refuses.
    with socket.create_connection((host, port), timeout=10) as sock:
        head = (
            "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-Request-Id: framing-extra\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body + b"garbage that is no request line\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer

    assert server.stop(signal.SIGTERM) == 0
    logged = {}
    for line in server.log().splitlines():
        if line.startswith("{") and '"request_id":"framing-' in line:
            record = json.loads(line)
            logged[record["request_id"]] = record["bytes_in"]
    assert logged == {"framing-length": len(body), "framing-chunked": len(body), "framing-extra": len(body)}
    assert query(tmp_path / "framing.db", "SELECT count(*) FROM alerts") == [(len(decode(body)),)]
