"""Connections that never end: silent, slow-header, idle keep-alive and slow-body connections are
closed, connections per worker are bounded below the file-descriptor limit, and that limit is raised
at start. Real ``webhookfast serve`` processes on loopback sockets (issue #11, part D).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from support.certs import make_pki
from support.net import request
from support.servers import ServerFactory, ServerProcess
from webhookfast import cli
from webhookfast.connections import RESERVED_FDS, bound_unacknowledged_writes

IDLE_S = 2.0
FAST_CLOSE = {"WEBHOOKFAST_IDLE_TIMEOUT_S": str(IDLE_S), "WEBHOOKFAST_ACCESS_LOG": "false"}
SLACK_S = 3.0  # scheduling on a busy two-core machine


def closed_after(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closes ``sock`` (EOF or reset), reading and dropping what it sends;
    None if it is still open after ``limit`` seconds."""
    start = time.monotonic()
    while True:
        left = limit - (time.monotonic() - start)
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except TimeoutError:
            return None
        except OSError:  # reset
            return time.monotonic() - start


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=5)


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """One HTTP/1.1 answer with a Content-Length: (status, body)."""
    buf = b""
    sock.settimeout(10)
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {buf!r}"
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(lines[0].split()[1]), body


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    return server_factory(env={**FAST_CLOSE, "WEBHOOKFAST_BODY_TIMEOUT_S": "1"})


def test_silent_connection_is_closed(server: ServerProcess) -> None:
    sock = connect(server)
    try:
        elapsed = closed_after(sock, IDLE_S + SLACK_S)
    finally:
        sock.close()
    assert elapsed is not None, "a connection that never sent a byte is still open"
    assert elapsed >= IDLE_S * 0.8
    assert server.get("/healthz").status == 200


def test_headers_sent_byte_by_byte_are_cut_off(server: ServerProcess) -> None:
    """The idle timer covers the whole request head, not each read: trickling bytes does not extend it."""
    head = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Pad: " + b"a" * 200
    sock = connect(server)
    stop = threading.Event()

    def trickle() -> None:
        for byte in head:
            if stop.wait(0.1):
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                return

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        elapsed = closed_after(sock, IDLE_S + SLACK_S)
    finally:
        stop.set()
        sender.join(5)
        sock.close()
    assert elapsed is not None, "a header sent byte by byte kept its connection open"
    assert server.get("/healthz").status == 200


def test_keep_alive_survives_busy_use_and_closes_when_idle(server: ServerProcess) -> None:
    sock = connect(server)
    try:
        # Requests closer together than the idle timeout share one connection (what Prometheus does).
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _ = read_answer(sock)
            assert status == 200
            time.sleep(IDLE_S / 2)
        elapsed = closed_after(sock, IDLE_S + SLACK_S)
    finally:
        sock.close()
    assert elapsed is not None, "an idle keep-alive connection is still open"


def test_slow_body_gets_408_and_the_connection_ends(server: ServerProcess) -> None:
    sock = connect(server)
    try:
        sock.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"alerts"'
        )
        started = time.monotonic()
        status, body = read_answer(sock)
        assert time.monotonic() - started < 1 + SLACK_S
        assert status == 408
        assert json.loads(body)["error"]["code"] == "request_timeout"
        assert closed_after(sock, IDLE_S + SLACK_S) is not None
    finally:
        sock.close()


# -- bounds on connections and file descriptors -------------------------------------------------


class LimitedServer(ServerProcess):
    """``webhookfast serve`` started under ``prlimit --nofile=SOFT:HARD``."""

    def __init__(self, *args: object, nofile: tuple[int, int], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.nofile = nofile

    def command(self) -> list[str]:
        return ["prlimit", f"--nofile={self.nofile[0]}:{self.nofile[1]}", "--", *super().command()]


def worker_pids(server: ServerProcess) -> list[int]:
    """Granian's worker processes: the descendants of the server's process group other than itself."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == server.pid:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == server.pid and fields[0] != "Z":  # the process group (started in a new session)
            pids.append(int(entry.name))
    return pids


def nofile_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit")


@pytest.fixture
def limited_server(tmp_path: Path, request: pytest.FixtureRequest):
    servers: list[LimitedServer] = []

    def make(nofile: tuple[int, int], env: dict[str, str]) -> LimitedServer:
        server = LimitedServer(
            f"sqlite:///{tmp_path}/wf.db", tmp_path / "logs", nofile=nofile, env=env, name="webhookfast-limited"
        )
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop(timeout=15)
        if server.is_running():
            server.kill()


def test_soft_open_file_limit_is_raised_to_the_hard_limit(limited_server) -> None:
    server = limited_server((300, 4096), FAST_CLOSE)
    workers = worker_pids(server)
    assert workers
    for pid in workers:
        assert nofile_limits(pid) == (4096, 4096)


def test_more_connections_than_file_descriptors_keep_healthz_answering(limited_server) -> None:
    """Hard limit 256: the worker takes at most 256 - RESERVED_FDS connections, the rest wait in the
    listen backlog, the silent ones are closed after the idle timeout, and /healthz answers in time."""
    nofile = 256
    server = limited_server((nofile, nofile), {**FAST_CLOSE, "WEBHOOKFAST_MAX_CONNECTIONS": "100000"})
    (worker,) = worker_pids(server)
    silent = [connect(server) for _ in range(2 * nofile)]
    try:
        time.sleep(0.5)
        fds = len(os.listdir(f"/proc/{worker}/fd"))
        assert fds <= nofile
        # Every silent connection ahead of it in the backlog is served (closed) within the idle
        # timeout per batch of (nofile - RESERVED_FDS).
        batches = len(silent) / (nofile - RESERVED_FDS) + 1
        started = time.monotonic()
        resp = request(server.url + "/healthz", timeout=batches * IDLE_S + 2 * SLACK_S)
        assert resp.status == 200
        assert time.monotonic() - started < batches * IDLE_S + 2 * SLACK_S
        assert "does not fit the open-file limit" in server.log()
    finally:
        for sock in silent:
            sock.close()
    assert server.is_running()
    assert server.get("/healthz", timeout=IDLE_S + SLACK_S).status == 200


@pytest.mark.parametrize(
    "name, value",
    [("IDLE_TIMEOUT_S", "0"), ("IDLE_TIMEOUT_S", "-1"), ("MAX_CONNECTIONS", "0"), ("WRITE_TIMEOUT_S", "0")],
)
def test_bad_connection_settings_refuse_to_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"WEBHOOKFAST_{name}", value)
    result = CliRunner().invoke(cli.main, ["serve", "--no-migrate-on-start"])
    assert result.exit_code == click.UsageError.exit_code, result.output
    assert name.lower() in result.output


# -- TLS ---------------------------------------------------------------------------------------------

TLS_HANDSHAKE_TIMEOUT_S = 10.0  # tls-listener's default in Granian 2.8: not configurable


def test_tls_silent_connections_are_closed_and_alpn_offers_http11(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    server = server_factory(
        scheme="https",
        extra_args=["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)],
        env=FAST_CLOSE,
    )
    before_handshake = connect(server)
    ctx = pki.client_context()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    after_handshake = ctx.wrap_socket(connect(server), server_hostname="127.0.0.1")
    try:
        # A Go client (Alertmanager, Prometheus) offering h2 falls back to HTTP/1.1.
        assert after_handshake.selected_alpn_protocol() == "http/1.1"
        assert closed_after(after_handshake, IDLE_S + SLACK_S) is not None, "a silent TLS connection is still open"
        assert closed_after(before_handshake, TLS_HANDSHAKE_TIMEOUT_S + SLACK_S) is not None, (
            "a connection that never starts its TLS handshake is still open"
        )
    finally:
        before_handshake.close()
        after_handshake.close()


# -- answers to clients that stop reading --------------------------------------------------------------


def big_history_body(alerts: int, value_bytes: int) -> bytes:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return json.dumps(
        [
            {"labels": {"alertname": "Big", "i": str(i), "pad": "p" * value_bytes}, "startsAt": now}
            for i in range(alerts)
        ]
    ).encode()


def server_side_open(server_port: int, client_port: int) -> bool:
    """Whether the server's end of the connection from ``client_port`` still exists (ss, from iproute2)."""
    out = subprocess.run(
        ["ss", "-tnH", "state", "all", f"( sport = :{server_port} and dport = :{client_port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return any(line and not line.startswith(("TIME-WAIT", "CLOSED")) for line in out.splitlines())


def test_answer_to_a_client_that_stops_reading_is_aborted(server_factory: ServerFactory) -> None:
    """An answer far larger than the socket buffers, to a client that never reads: the kernel aborts
    the connection after WEBHOOKFAST_WRITE_TIMEOUT_S (TCP_USER_TIMEOUT), freeing its slot."""
    write_timeout = 2.0
    server = server_factory(
        env={**FAST_CLOSE, "WEBHOOKFAST_IDLE_TIMEOUT_S": "300", "WEBHOOKFAST_WRITE_TIMEOUT_S": str(write_timeout)}
    )
    assert server.post("/api/v2/alerts", big_history_body(200, 60_000), timeout=30).status == 200
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    client_port = sock.getsockname()[1]
    try:
        sock.sendall(b"GET /api/v1/alerts?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(1)
        assert server_side_open(server.port, client_port)  # the answer is being written
        deadline = time.monotonic() + write_timeout + 2 * SLACK_S
        while server_side_open(server.port, client_port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not server_side_open(server.port, client_port), "the stalled answer still holds its connection"
        # What the client still gets is a cut-off answer, not the whole of it.
        received = b""
        sock.settimeout(5)
        try:
            while chunk := sock.recv(1 << 20):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        head, _, body = received.partition(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        assert len(body) < length
    finally:
        sock.close()
    assert server.get("/healthz").status == 200


def test_write_bound_is_set_on_the_listener_of_the_port_only() -> None:
    with socket.create_server(("127.0.0.1", 0)) as ours, socket.create_server(("127.0.0.1", 0)) as other:
        assert bound_unacknowledged_writes(ours.getsockname()[1], 1.5) == 1
        assert ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 1500
        assert other.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 0
        with socket.create_connection(ours.getsockname()) as client:
            accepted, _ = ours.accept()
            with accepted:  # what the workers rely on: accepted sockets inherit it
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 1500
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 0
