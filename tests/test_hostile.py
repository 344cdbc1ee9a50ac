"""Hostile input against a live server over real sockets.

One server for the module (bearer auth on, ``WEBHOOKFAST_BODY_TIMEOUT_S=1``, the optional request
limits of ``LIMITS`` set: by default they are off) gets a battery of bad
requests, most written byte by byte on a raw socket. Each must get the right status and the JSON
error shape of the README (a listed ``code``, a ``request_id`` equal to ``X-Request-ID``, the
security headers); after each the server must still be healthy. At the end its workers' RSS must
not have grown much and nothing may have been stored. Requests that never reach the application
(malformed HTTP, Granian/hyper refuses them itself) only need a 4xx and a live server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import select
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.servers import ServerProcess

TOKEN = "s3cret-t0ken"
AUTH = f"Bearer {TOKEN}"
ROOT = Path(__file__).resolve().parent
PAYLOADS = ROOT / "fixtures" / "payloads"
SINGLE = (PAYLOADS / "firing_single.json").read_bytes()
MAX_BODY = 16 * 1024 * 1024
# Opt-in limits (the defaults let through whatever Alertmanager and Prometheus deliver).
LIMITS = {
    "WEBHOOKFAST_MAX_BODY_BYTES": str(MAX_BODY),
    "WEBHOOKFAST_MAX_ALERTS": "10000",
    "WEBHOOKFAST_MAX_LABELS": "128",
    "WEBHOOKFAST_MAX_ANNOTATIONS": "128",
    "WEBHOOKFAST_MAX_NAME_BYTES": "1024",
    "WEBHOOKFAST_MAX_VALUE_BYTES": "65536",
}
RSS_GROWTH_LIMIT_KB = 96 * 1024

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
ALL_CODES = {
    400: {
        "empty_body",
        "invalid_json",
        "invalid_utf8",
        "duplicate_key",
        "too_deep",
        "bad_content_length",
        "invalid_parameter",
    },
    401: {"unauthorized"},
    404: {"not_found"},
    405: {"method_not_allowed"},
    408: {"request_timeout"},
    413: {"payload_too_large"},
    415: {"unsupported_media_type"},
    422: {
        "unknown_format",
        "unsupported_version",
        "missing_field",
        "wrong_type",
        "invalid_status",
        "invalid_time",
        "invalid_label",
        "invalid_fingerprint",
        "too_many_alerts",
        "too_many_labels",
        "too_many_annotations",
        "name_too_long",
        "value_too_long",
    },
    500: {"internal_error"},
    503: {"overloaded", "store_unavailable", "not_ready"},
}


# -- raw HTTP ---------------------------------------------------------------------------------------


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Reader:
    """Reads HTTP/1.1 answers from a socket, keeping what follows one answer for the next."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                break
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"connection closed mid-line: {self.buf[:200]!r}")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def response(self, timeout: float = 15.0) -> Raw:
        self.sock.settimeout(timeout)
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"connection closed before a full response head: {self.buf[:200]!r}")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        if "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    self._line()
                    break
                body += self._take(size)
                self._line()
        elif 100 <= status < 200 or status in (204, 304):
            body = b""
        else:  # delimited by the end of the connection
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        return Raw(status, headers, body)


def read_response(sock: socket.socket, timeout: float = 15.0) -> Raw:
    """One answer on a connection used for one exchange."""
    return Reader(sock).response(timeout)


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=15)


def exchange(server: ServerProcess, data: bytes, timeout: float = 15.0) -> Raw:
    """Send ``data`` (tolerating an early answer that closes the connection), read one answer."""
    with connect(server) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return read_response(sock, timeout)


def http(
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    content_length: bool = True,
) -> bytes:
    hdrs = {"Host": "127.0.0.1", "User-Agent": "Alertmanager/0.25.0", **(headers or {})}
    if body is not None and content_length and "Content-Length" not in hdrs:
        hdrs["Content-Length"] = str(len(body))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    return head.encode("latin-1") + (body or b"")


def post(body: bytes, headers: dict[str, str] | None = None, path: str = "/webhook") -> bytes:
    return http("POST", path, body, {"Authorization": AUTH, "Content-Type": "application/json", **(headers or {})})


# -- payload builders -------------------------------------------------------------------------------


def am(alerts: str) -> bytes:
    return ('{"version":"4","status":"firing","receiver":"r","alerts":[' + alerts + "]}").encode()


def alert(labels: str = '{"alertname":"A"}', extra: str = "") -> str:
    return '{"status":"firing","labels":' + labels + ',"startsAt":"2026-01-01T00:00:00Z"' + extra + "}"


def many_labels(n: int) -> bytes:
    return ('{"labels":{' + ",".join(f'"l{i}":"v"' for i in range(n)) + "}}").encode()


# -- the battery ------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    status: int
    code: str | None  # None: answered below the application (Granian), only the status is checked
    request: bytes | Callable[[ServerProcess], Raw] = b""
    statuses: set[int] = field(default_factory=set)  # alternatives for transport-level answers
    headers: dict[str, str] = field(default_factory=dict)  # expected response headers (substring)


def slow_body(server: ServerProcess) -> Raw:
    """Headers and half the body, then nothing: 408 after WEBHOOKFAST_BODY_TIMEOUT_S (1 s)."""
    with connect(server) as sock:
        sock.sendall(post(SINGLE)[: -len(SINGLE) // 2])
        started = time.monotonic()
        resp = read_response(sock, timeout=10)
        assert time.monotonic() - started < 8, "the body deadline did not apply"
        return resp


def trickle_body(server: ServerProcess) -> Raw:
    """A byte every 200 ms (each within any per-read timeout): the whole-body deadline must apply."""
    with connect(server) as sock:
        sock.sendall(post(SINGLE)[: -len(SINGLE)])
        started = time.monotonic()
        for byte in SINGLE:
            r, _, _ = select.select([sock], [], [], 0.2)
            if r:
                break
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if time.monotonic() - started > 8:
                break
        return read_response(sock, timeout=10)


def slow_chunked(server: ServerProcess) -> Raw:
    with connect(server) as sock:
        sock.sendall(
            http(
                "POST",
                "/webhook",
                None,
                {"Authorization": AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            )
            + b'f\r\n{"alerts": [   \r\n'
        )
        return read_response(sock, timeout=10)


def oversized_chunked(server: ServerProcess) -> Raw:
    """A chunked body that never ends: 413 once the cap is passed, before we stop sending."""
    with connect(server) as sock:
        sock.sendall(
            http(
                "POST",
                "/webhook",
                None,
                {"Authorization": AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            )
        )
        chunk = b"[" + b" " * (1024 * 1024 - 1)
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        sock.setblocking(False)
        deadline = time.monotonic() + 30
        while sent < 4 * MAX_BODY and time.monotonic() < deadline:
            r, w, _ = select.select([sock], [sock], [], 1)
            if r:
                break
            if w:
                try:
                    sock.sendall(frame)
                    sent += len(chunk)
                except BlockingIOError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
        sock.setblocking(True)
        resp = read_response(sock, timeout=10)
        assert sent < 4 * MAX_BODY, "the server kept reading far past the cap"
        return resp


def oversized_by_length(server: ServerProcess) -> Raw:
    """Content-Length above the cap: refused from the header alone, no body sent at all."""
    with connect(server) as sock:
        sock.sendall(
            http(
                "POST",
                "/webhook",
                None,
                {"Authorization": AUTH, "Content-Type": "application/json", "Content-Length": str(MAX_BODY + 1)},
            )
        )
        return read_response(sock, timeout=5)


def oversized_sent_whole(server: ServerProcess) -> Raw:
    """Content-Length just above the cap and the body sent anyway, as Go's client (Alertmanager)
    does: the sender must read the 413, not a connection reset (the server drops the body)."""
    body = b"[" + b" " * (MAX_BODY - 1) + b"]"
    with connect(server) as sock:
        sock.sendall(
            http(
                "POST",
                "/webhook",
                None,
                {"Authorization": AUTH, "Content-Type": "application/json", "Content-Length": str(len(body))},
            )
            + body
        )
        return read_response(sock, timeout=10)


def expect_continue_oversized(server: ServerProcess, length: int = 10 * MAX_BODY) -> Raw:
    with connect(server) as sock:
        sock.sendall(
            http(
                "POST",
                "/webhook",
                None,
                {
                    "Authorization": AUTH,
                    "Content-Type": "application/json",
                    "Content-Length": str(length),
                    "Expect": "100-continue",
                },
            )
        )
        resp = read_response(sock, timeout=5)
        if resp.status == 100:
            pytest.fail("server asked for a body it is going to refuse (100 Continue before 413)")
        return resp


def pipelined_garbage(server: ServerProcess) -> Raw:
    """A valid-HTTP bad request followed by garbage on the same connection: the first answer is
    the JSON 400; whatever follows, the server survives."""
    with connect(server) as sock:
        sock.sendall(post(b'{"alerts": [') + b"\x00\xff GARBAGE \r\n\r\n" * 50)
        first = read_response(sock, timeout=10)
        try:
            sock.settimeout(5)
            while sock.recv(65536):
                pass
        except OSError:
            pass
        return first


def pipelined_requests(server: ServerProcess) -> Raw:
    """Three bad requests pipelined on one connection: three answers, in order."""
    with connect(server) as sock:
        sock.sendall(post(b"[") + post(b"{}") + http("GET", "/nope"))
        reader = Reader(sock)
        answers = [reader.response(timeout=10) for _ in range(3)]
        assert [a.status for a in answers] == [400, 422, 404]
        return answers[-1]


def header_flood(server: ServerProcess) -> Raw:
    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    headers.update({f"X-Flood-{i}": "x" * 20 for i in range(2000)})
    return exchange(server, http("POST", "/webhook", b"[", headers))


def huge_header(server: ServerProcess) -> Raw:
    return exchange(server, post(b"[", {"X-Huge": "x" * (1024 * 1024)}))


def not_http(server: ServerProcess) -> Raw:
    return exchange(server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 200 + b"\r\n\r\n")


def auth_challenge(server: ServerProcess) -> Raw:
    return exchange(server, http("POST", "/webhook", SINGLE, {"Content-Type": "application/json"}))


CASES: list[Case] = [
    # authentication
    Case("auth-missing", 401, "unauthorized", auth_challenge, headers={"www-authenticate": "Bearer"}),
    Case("auth-wrong-token", 401, "unauthorized", post(SINGLE, {"Authorization": "Bearer nope"})),
    Case("auth-token-prefix", 401, "unauthorized", post(SINGLE, {"Authorization": f"Bearer {TOKEN[:-1]}"})),
    Case("auth-token-suffix", 401, "unauthorized", post(SINGLE, {"Authorization": f"Bearer {TOKEN}x"})),
    Case("auth-empty-bearer", 401, "unauthorized", post(SINGLE, {"Authorization": "Bearer "})),
    Case(
        "auth-basic-not-configured",
        401,
        "unauthorized",
        post(SINGLE, {"Authorization": "Basic " + base64.b64encode(f"u:{TOKEN}".encode()).decode()}),
    ),
    Case("auth-unknown-scheme", 401, "unauthorized", post(SINGLE, {"Authorization": f"Token {TOKEN}"})),
    Case("auth-token-as-raw-header", 401, "unauthorized", post(SINGLE, {"Authorization": TOKEN})),
    Case("auth-lowercase-scheme-admitted", 400, "invalid_json", post(b"{", {"Authorization": f"bearer {TOKEN}"})),
    # syntax: 400
    Case("invalid-json", 400, "invalid_json", post(b'{"alerts": [')),
    Case("truncated-payload", 400, "invalid_json", post(SINGLE[: len(SINGLE) // 2])),
    Case("trailing-garbage", 400, "invalid_json", post(SINGLE.rstrip() + b" }")),
    Case("two-documents", 400, "invalid_json", post(SINGLE + SINGLE)),
    Case("empty-body", 400, "empty_body", post(b"")),
    Case("whitespace-body", 400, "empty_body", post(b" \r\n\t ")),
    Case("deep-arrays-100k", 400, "too_deep", post(b"[" * 100_000)),
    Case("deep-objects-100k", 400, "too_deep", post(b'{"a":' * 100_000)),
    Case("deep-in-unknown-key", 400, "too_deep", post(b'{"alerts":[],"x":' + b"[" * 40 + b"]" * 40 + b"}")),
    Case("invalid-utf8", 400, "invalid_utf8", post(b'{"labels":{"alertname":"\xff\xfe"}}')),
    Case("overlong-utf8", 400, "invalid_utf8", post(b'{"labels":{"a":"\xc0\x80"}}')),
    Case("utf8-encoded-surrogate", 400, "invalid_utf8", post(b'{"labels":{"a":"\xed\xa0\x80"}}')),
    # Lone surrogate escapes are refused by serde_json as bad escapes: invalid_json (rust/core tests pin it).
    Case("lone-surrogate-escape", 400, "invalid_json", post(b'{"labels":{"a":"\\ud800"}}')),
    Case("lone-low-surrogate-escape", 400, "invalid_json", post(b'{"labels":{"a":"x\\udc00y"}}')),
    Case("raw-nul-in-string", 400, "invalid_json", post(b'{"labels":{"a":"x\x00y"}}')),
    Case("raw-nul-outside-string", 400, "invalid_json", post(b'{"labels":\x00{"a":"b"}}')),
    Case("duplicate-label", 400, "duplicate_key", post(b'{"labels":{"a":"1","a":"2"}}')),
    Case("duplicate-top-key", 400, "duplicate_key", post(am(alert()).replace(b'"receiver":"r"', b'"alerts":[]'))),
    Case(
        "huge-exponent",
        400,
        "invalid_json",
        post(am("").replace(b'"receiver"', b'"truncatedAlerts":1e999999,"receiver"')),
    ),
    # meaning: 422
    Case("huge-integer-label", 422, "wrong_type", post(b'{"labels":{"a":123456789012345678901234567890123}}')),
    Case(
        "huge-truncated-alerts",
        422,
        "wrong_type",
        post(am("").replace(b'"receiver"', b'"truncatedAlerts":184467440737095516160,"receiver"')),
    ),
    Case("labels-100k", 422, "too_many_labels", post(many_labels(100_000))),
    Case(
        "annotations-1k",
        422,
        "too_many_annotations",
        post(('{"labels":{"a":"b"},"annotations":{' + ",".join(f'"n{i}":"v"' for i in range(1000)) + "}}").encode()),
    ),
    Case("alerts-20k", 422, "too_many_alerts", post(am(",".join([alert()] * 20_000)))),
    Case("name-too-long", 422, "name_too_long", post(('{"labels":{"' + "n" * 2000 + '":"v"}}').encode())),
    Case("value-too-long", 422, "value_too_long", post(('{"labels":{"a":"' + "v" * 70_000 + '"}}').encode())),
    Case("empty-label-name", 422, "invalid_label", post(b'{"labels":{"":"v"}}')),
    Case(
        "unsupported-version", 422, "unsupported_version", post(am(alert()).replace(b'"version":"4"', b'"version":"5"'))
    ),
    Case("invalid-status", 422, "invalid_status", post(am(alert().replace('"status":"firing"', '"status":"burning"')))),
    Case("invalid-time", 422, "invalid_time", post(am(alert().replace("2026-01-01T00:00:00Z", "yesterday")))),
    Case("impossible-date", 422, "invalid_time", post(am(alert().replace("2026-01-01", "2026-02-30")))),
    Case("missing-labels", 422, "missing_field", post(am('{"status":"firing","startsAt":"2026-01-01T00:00:00Z"}'))),
    Case("alerts-not-array", 422, "wrong_type", post(b'{"alerts":"many"}')),
    Case("labels-not-object", 422, "wrong_type", post(b'{"labels":["a","b"]}')),
    Case("top-level-string", 422, "unknown_format", post(b'"hello"')),
    Case("top-level-number", 422, "unknown_format", post(b"12345")),
    Case("object-without-alerts-or-labels", 422, "unknown_format", post(b'{"hello":"world"}')),
    Case("bad-fingerprint", 422, "invalid_fingerprint", post(am(alert(extra=',"fingerprint":"xyz"')))),
    # media types: 415
    Case("content-type-text", 415, "unsupported_media_type", post(SINGLE, {"Content-Type": "text/plain"})),
    Case(
        "content-type-missing", 415, "unsupported_media_type", http("POST", "/webhook", SINGLE, {"Authorization": AUTH})
    ),
    Case("content-type-jsonx", 415, "unsupported_media_type", post(SINGLE, {"Content-Type": "application/jsonx"})),
    Case(
        "content-type-form",
        415,
        "unsupported_media_type",
        post(SINGLE, {"Content-Type": "application/x-www-form-urlencoded"}),
    ),
    # sizes and framing
    Case("oversized-content-length", 413, "payload_too_large", oversized_by_length),
    Case("oversized-sent-whole", 413, "payload_too_large", oversized_sent_whole),
    Case("oversized-chunked", 413, "payload_too_large", oversized_chunked),
    Case("oversized-expect-continue", 413, "payload_too_large", expect_continue_oversized),
    # Just over the cap (a body the server would otherwise read and drop): no 100 Continue either.
    Case(
        "oversized-expect-continue-near-cap",
        413,
        "payload_too_large",
        lambda server: expect_continue_oversized(server, MAX_BODY + 1),
    ),
    # An unparseable Content-Length never reaches the app: Granian (hyper) answers an empty 400 itself.
    Case("content-length-not-a-number", 400, None, post(SINGLE, {"Content-Length": "12abc"})),
    Case("content-length-negative", 400, None, post(SINGLE, {"Content-Length": "-1"})),
    Case("content-length-twice", 400, None, post(SINGLE, {"Content-Length": f"{len(SINGLE)}\r\nContent-Length: 5"})),
    # Smuggling attempt: Transfer-Encoding wins over Content-Length (RFC 9112), or the request is refused.
    # Chunked, the body is `[1]` (wrong_type); read by Content-Length it would be `3\r\n` (unknown_format).
    Case(
        "content-length-and-chunked",
        422,
        "wrong_type",
        post(b"3\r\n[1]\r\n0\r\n\r\n", {"Transfer-Encoding": "chunked", "Content-Length": "3"}),
    ),
    # The same with Content-Length first: the body is still read chunked (so the body cap, which
    # the handler checks from Content-Length, is checked chunk by chunk instead).
    Case(
        "content-length-then-chunked",
        422,
        "wrong_type",
        post(b"3\r\n[1]\r\n0\r\n\r\n", {"Content-Length": "3", "Transfer-Encoding": "chunked"}),
    ),
    Case("content-length-too-long-for-body", 408, "request_timeout", post(b"[]", {"Content-Length": "100"})),
    Case("slow-body", 408, "request_timeout", slow_body),
    Case("trickled-body", 408, "request_timeout", trickle_body),
    Case("slow-chunked-body", 408, "request_timeout", slow_chunked),
    Case(
        "bad-chunk-size",
        400,
        None,
        http(
            "POST",
            "/webhook",
            None,
            {"Authorization": AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        )
        + b"zz\r\n[]\r\n0\r\n\r\n",
        statuses={400},
    ),
    Case("header-flood", 431, None, header_flood, statuses={400, 413, 431}),
    Case("huge-header", 431, None, huge_header, statuses={400, 413, 431}),
    Case("pipelined-garbage", 400, "invalid_json", pipelined_garbage),
    Case("pipelined-requests", 404, "not_found", pipelined_requests),
    # routing
    Case(
        "wrong-method-put",
        405,
        "method_not_allowed",
        http("PUT", "/webhook", b"[]", {"Authorization": AUTH}),
        headers={"allow": "POST"},
    ),
    Case(
        "wrong-method-delete-healthz", 405, "method_not_allowed", http("DELETE", "/healthz"), headers={"allow": "GET"}
    ),
    Case(
        "get-webhook",
        405,
        "method_not_allowed",
        http("GET", "/webhook", None, {"Authorization": AUTH}),
        headers={"allow": "POST"},
    ),
    Case("unknown-path", 404, "not_found", http("GET", "/admin")),
    Case("trailing-slash", 404, "not_found", post(SINGLE, path="/webhook/")),
    Case("path-traversal", 404, "not_found", http("GET", "/../../etc/passwd")),
    Case("path-case", 404, "not_found", post(SINGLE, path="/WEBHOOK")),
    Case("long-path", 404, "not_found", http("GET", "/" + "a" * 8000)),
]


def test_battery_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


# -- the server under attack ------------------------------------------------------------------------


def worker_pids(server: ServerProcess) -> list[int]:
    assert server.pid is not None
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.pid:
            pids.append(int(stat.parent.name))
    return pids


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("hostile")
    with ServerProcess(
        f"sqlite:///{tmp}/wf.db",
        tmp / "logs",
        name="webhookfast-hostile",
        env={"WEBHOOKFAST_BEARER_TOKEN": TOKEN, "WEBHOOKFAST_BODY_TIMEOUT_S": "1", **LIMITS},
    ) as server:
        server.db_path = tmp / "wf.db"  # type: ignore[attr-defined]
        # Warm up (imports, first flush paths) before taking the RSS baseline.
        for _ in range(3):
            exchange(server, post(b'{"alerts": ['))
        workers = worker_pids(server)
        assert workers, "no worker process found under the serve process"
        server.rss_before = {pid: rss_kb(pid) for pid in workers}  # type: ignore[attr-defined]
        yield server
        if server.is_running():
            server.kill()


def assert_error_shape(resp: Raw, status: int, code: str) -> None:
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == code, f"code {err['code']!r}, expected {code!r}: {err}"
    assert err["code"] in ALL_CODES[status]
    assert isinstance(err["message"], str) and 0 < len(err["message"]) <= 300
    assert set(err) <= {"code", "message", "path", "offset", "request_id"}
    assert err["request_id"] and err["request_id"] == resp.headers.get("x-request-id"), (err, resp.headers)
    if "offset" in err:
        assert isinstance(err["offset"], int) and err["offset"] >= 0
    assert TOKEN not in resp.body.decode("utf-8", "replace")
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, f"missing security header {name}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request(hostile_server: ServerProcess, case: Case) -> None:
    resp = case.request(hostile_server) if callable(case.request) else exchange(hostile_server, case.request)
    if case.code is None:
        assert resp.status in (case.statuses or {case.status}), f"status {resp.status}: {resp.body[:200]!r}"
    else:
        assert resp.status == case.status, f"status {resp.status}, expected {case.status}: {resp.body[:300]!r}"
        assert_error_shape(resp, case.status, case.code)
    for name, value in case.headers.items():
        assert value in resp.headers.get(name, ""), f"header {name}: {resp.headers.get(name)!r}, expected {value!r}"
    health = hostile_server.get("/healthz")
    assert health.status == 200, "the server is not healthy after this request"
    assert hostile_server.is_running()


def test_non_http_bytes(hostile_server: ServerProcess) -> None:
    """A TLS hello (or any binary) on the plain port: refused or dropped, the server lives."""
    try:
        resp = not_http(hostile_server)
        assert 400 <= resp.status < 500
    except (ConnectionError, OSError):
        pass
    assert hostile_server.get("/healthz").status == 200


def test_many_idle_connections(hostile_server: ServerProcess) -> None:
    """200 connections that send half a request head and wait: the server still answers others."""
    socks = []
    try:
        for _ in range(200):
            s = connect(hostile_server)
            s.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        assert hostile_server.get("/healthz", timeout=5).status == 200
    finally:
        for s in socks:
            s.close()


def test_request_id_rules(hostile_server: ServerProcess) -> None:
    good = "Ab0._:-" + "x" * 57  # 64 characters of the allowed set
    for incoming, kept in [
        (good, True),
        ("abc-123", True),
        (good + "y", False),  # 65 characters
        ("has space", False),
        ("semi;colon", False),
        ("ünïcode", False),
        ("", False),
        ("<script>", False),
    ]:
        resp = exchange(hostile_server, post(b"[", {"X-Request-ID": incoming}))
        assert resp.status == 400
        rid = resp.json()["error"]["request_id"]
        assert rid == resp.headers["x-request-id"]
        if kept:
            assert rid == incoming
        else:
            assert rid != incoming and 0 < len(rid) <= 64
            assert all(c.isalnum() or c in "._:-" for c in rid)


def test_health_and_metrics_open_without_protection(hostile_server: ServerProcess) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        resp = hostile_server.get(path)
        assert resp.status == 200, path
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers.get(name) == value, (path, name)


def test_security_headers_on_success(hostile_server: ServerProcess) -> None:
    """(The only accepted request of this module: an empty Alertmanager notification stores nothing.)"""
    resp = exchange(hostile_server, post(b'{"version":"4","status":"firing","alerts":[]}'))
    assert resp.status == 200, resp.body
    assert resp.json()["alerts"] == 0
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value


def test_zz_resources_bounded_and_nothing_stored(hostile_server: ServerProcess) -> None:
    """Runs after the battery (pytest keeps the order of definition)."""
    assert hostile_server.get("/healthz").status == 200
    before: dict[int, int] = hostile_server.rss_before  # type: ignore[attr-defined]
    now = {pid: rss_kb(pid) for pid in worker_pids(hostile_server)}
    assert set(now) == set(before), f"workers changed (crashed and respawned?): {before} → {now}"
    for pid in now:
        growth = now[pid] - before[pid]
        assert growth < RSS_GROWTH_LIMIT_KB, f"worker {pid} RSS grew {growth} kB ({before[pid]} → {now[pid]} kB)"
    with sqlite3.connect(f"file:{hostile_server.db_path}?mode=ro", uri=True) as db:  # type: ignore[attr-defined]
        for table in ("label_sets", "alert_events", "alerts"):
            (n,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert n == 0, f"{n} rows in {table} after only rejected requests"


# -- authentication as Alertmanager sends it, and protected health/metrics -------------------------


@pytest.fixture(scope="module")
def protected_server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("protected")
    with ServerProcess(
        f"sqlite:///{tmp}/wf.db",
        tmp / "logs",
        name="webhookfast-protected",
        env={
            "WEBHOOKFAST_BEARER_TOKEN": TOKEN,
            "WEBHOOKFAST_BASIC_AUTH_USER": "alertmanager",
            "WEBHOOKFAST_BASIC_AUTH_PASSWORD": "pa:ss wörd",
            "WEBHOOKFAST_PROTECT_HEALTH": "true",
            "WEBHOOKFAST_PROTECT_METRICS": "true",
        },
        health_headers={"Authorization": AUTH},
    ) as server:
        yield server


def basic(user: str, password: str) -> str:
    # Go's net/http SetBasicAuth: base64(user ":" password), standard encoding, UTF-8 bytes.
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_alertmanager_bearer_and_basic(protected_server: ServerProcess) -> None:
    for auth in (AUTH, basic("alertmanager", "pa:ss wörd")):
        resp = protected_server.post("/webhook", SINGLE, {"Authorization": auth})
        assert resp.status == 200, (auth[:6], resp.text)
    for auth in (
        basic("alertmanager", "pa:ss"),
        basic("other", "pa:ss wörd"),
        basic("alertmanager", "pa:ss wörd")[:-2],
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
    ):
        resp = protected_server.post("/webhook", SINGLE, {"Authorization": auth})
        assert resp.status == 401, auth
        challenge = resp.headers.get("www-authenticate", "")
        assert "Bearer" in challenge and "Basic" in challenge


def test_protected_health_and_metrics(protected_server: ServerProcess) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        resp = protected_server.get(path)
        assert resp.status == 401, path
        assert resp.json()["error"]["code"] == "unauthorized"
        assert "www-authenticate" in resp.headers
        assert protected_server.get(path, {"Authorization": AUTH}).status == 200
        assert protected_server.get(path, {"Authorization": basic("alertmanager", "pa:ss wörd")}).status == 200


# -- bodies cut short by the client: never decoded as if complete ----------------------------------


def count_rows(db_path: Path) -> int:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        return sum(
            db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("label_sets", "alert_events", "alerts")
        )


def half_closed(server: ServerProcess, data: bytes) -> Raw:
    with connect(server) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # the client is done sending: the body is all there will be
        return read_response(sock, timeout=10)


GENERIC = b'{"labels":{"alertname":"CutShort"},"startsAt":"2026-01-01T00:00:00Z"}'


def test_body_shorter_than_content_length(server_factory, tmp_path: Path) -> None:
    """Content-Length promises more than arrives before the client closes its side: a client error
    (400 bad_content_length), not a 500 — and nothing stored."""
    server = server_factory(f"sqlite:///{tmp_path}/cut.db", env={"WEBHOOKFAST_BODY_TIMEOUT_S": "2"})
    resp = half_closed(server, post(GENERIC, {"Content-Length": str(len(GENERIC) + 50)}))
    assert resp.status == 400, f"status {resp.status}: {resp.body[:200]!r}"
    assert_error_shape(resp, 400, "bad_content_length")
    assert count_rows(tmp_path / "cut.db") == 0
    assert server.get("/healthz").status == 200


@pytest.mark.xfail(
    strict=True,
    reason="known limitation: Granian's body iterator ends silently on a chunk framing error, so a "
    "cut-off chunked body whose received part is complete JSON is judged by that JSON (README, "
    "'Known limitations'); Alertmanager and Prometheus always send Content-Length",
)
@pytest.mark.parametrize(
    "tail",
    [b"", b"zz\r\n[]\r\n0\r\n\r\n", b"5\r\n"],
    ids=["closed-before-last-chunk", "bad-chunk-size-after-valid-chunk", "closed-inside-chunk"],
)
def test_truncated_chunked_body_is_not_accepted(server_factory, tmp_path: Path, tail: bytes) -> None:
    """A chunked body whose framing breaks (or that the client cuts off) after a chunk that is
    valid JSON on its own is an incomplete request: it must not be answered 200 nor stored."""
    server = server_factory(f"sqlite:///{tmp_path}/chunk.db", env={"WEBHOOKFAST_BODY_TIMEOUT_S": "2"})
    head = http("POST", "/webhook", None, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    resp = half_closed(server, head + f"{len(GENERIC):x}\r\n".encode() + GENERIC + b"\r\n" + tail)
    assert 400 <= resp.status < 500, f"status {resp.status}: {resp.body[:200]!r}"
    assert count_rows(tmp_path / "chunk.db") == 0, "an incomplete chunked body was stored"
    assert server.get("/healthz").status == 200
