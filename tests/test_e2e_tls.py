"""End to end over TLS served by webhookfast itself (Granian's ``ssl_cert``/``ssl_key``/``ssl_ca``).

A throw-away CA signs a server certificate for 127.0.0.1 (IP SAN) and a client certificate
(``support.certs``). Then, with Debian's real ``prometheus-alertmanager`` delivering the alerts of
``test_e2e_alertmanager`` (firing, then resolved) over https with a bearer token:

1. ``serve --tls-cert/--tls-key``: Alertmanager verifies the server against the CA (``tls_config.ca_file``);
   every alert is stored under Alertmanager's fingerprint with a firing → resolved history, and no
   notification failed.
2. ``--tls-client-ca`` as well: a client without a certificate (or with one from another CA) is refused
   in the TLS handshake, while Alertmanager presenting ``tls_config.cert_file/key_file`` delivers.
3. Plain http to the https port never gets a 200.

SQLite only: the store is not what is under test here.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from support.alertmanager import Alertmanager
from support.certs import Pki, make_pki
from support.net import tail
from support.servers import ServerProcess, ServerStartError
from test_e2e_alertmanager import ALERTNAMES, INSTANCES, RECEIVER, TOKEN, alert_specs, read_store, us

pytestmark = [pytest.mark.alertmanager, pytest.mark.timeout(240)]

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def https_request(
    url: str,
    ctx: ssl.SSLContext,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """One request over a *verifying* TLS context (support.net.request does not verify)."""
    host, _, rest = url.removeprefix("https://").partition("/")
    hostname, _, port = host.partition(":")
    conn = http.client.HTTPSConnection(hostname, int(port), timeout=timeout, context=ctx)
    try:
        conn.request(method, "/" + rest, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def tls_server(server_factory: Any, pki: Pki, tmp_path: Path, *, client_ca: bool = False) -> ServerProcess:
    args = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    if client_ca:
        args += ["--tls-client-ca", str(pki.ca_cert)]
    server: ServerProcess = server_factory(
        f"sqlite:///{tmp_path}/wf-tls.db",
        scheme="https",
        extra_args=args,
        env={"WEBHOOKFAST_BEARER_TOKEN": TOKEN},
        start=False,
    )
    if client_ca:
        # The harness' health check has no client certificate: check with one (verifying the server).
        ctx = pki.client_context(with_client_cert=True)

        def wait_healthy(timeout: float | None = None) -> None:
            deadline = time.monotonic() + (server.health_timeout if timeout is None else timeout)
            last = "no answer yet"
            while time.monotonic() < deadline:
                assert server.proc is not None
                if server.proc.poll() is not None:
                    break
                try:
                    status, _ = https_request(server.url + "/healthz", ctx, timeout=2)
                    if status == 200:
                        return
                    last = f"HTTP {status}"
                except OSError as exc:
                    last = repr(exc)
                time.sleep(0.1)
            raise ServerStartError(f"not healthy over mTLS ({last})\n--- {server.log_path}:\n{tail(server.log())}")

        server.wait_healthy = wait_healthy  # type: ignore[method-assign]
    return server.start()


def deliver_and_check(am: Alertmanager, server: ServerProcess, database_url: str) -> None:
    """Firing then resolved through Alertmanager; then the store holds both events of every alert."""
    from webhookfast import _core

    now = datetime.now(timezone.utc)
    starts = (now - timedelta(minutes=10)).replace(microsecond=(now.microsecond // 1000) * 1000)
    am.post_alerts(alert_specs(starts))
    stats = am.wait_notifications(ALERTNAMES)
    assert stats["notifications_failed"] == 0 and stats["requests_failed"] == 0, stats
    am_fps = {a["fingerprint"]: a["labels"] for a in am.alerts()}
    assert len(am_fps) == ALERTNAMES * INSTANCES
    firing = stats["notifications"]

    ends = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
    am.post_alerts(alert_specs(starts, ends))
    stats = am.wait_notifications(firing + ALERTNAMES)
    assert stats["notifications_failed"] == 0 and stats["requests_failed"] == 0, stats
    assert stats["requests"] >= stats["notifications"] > 0, stats
    assert am.alerts() == []

    am.stop()
    assert server.stop() == 0, "webhookfast serve did not exit 0 on SIGTERM"

    stored = read_store(database_url)
    expected = {_core.fingerprint_to_int(fp): labels for fp, labels in am_fps.items()}
    assert set(stored.label_sets) == set(expected), "stored fingerprints differ from Alertmanager's"
    for fp_int, labels in expected.items():
        assert stored.label_sets[fp_int]["labels"] == labels
    by_fp: dict[int, list[dict[str, Any]]] = {}
    for event in stored.events:
        by_fp.setdefault(event["fingerprint"], []).append(event)
    assert set(by_fp) == set(expected)
    for fp_int, events in by_fp.items():
        events.sort(key=lambda e: (e["received_at"], e["status"]))
        assert [e["status"] for e in events] == ["firing", "resolved"], (fp_int, events)
        assert all(e["starts_at"] == us(starts) and e["receiver"] == RECEIVER for e in events)
        assert events[0]["ends_at"] is None
        assert events[1]["ends_at"] == us(ends)
    assert len(stored.alerts) == len(expected)
    assert all(row["status"] == "resolved" and row["ends_at"] == us(ends) for row in stored.alerts)


def test_alertmanager_delivers_over_tls(
    server_factory: Any, alertmanager_factory: Any, pki: Pki, tmp_path: Path
) -> None:
    server = tls_server(server_factory, pki, tmp_path)
    assert server.url.startswith("https://127.0.0.1:")

    # The server certificate verifies against the CA for the IP 127.0.0.1 (hostname check on) ...
    status, body = https_request(server.url + "/healthz", pki.client_context())
    assert status == 200, body
    # ... and not against the system's trust store.
    with pytest.raises(ssl.SSLCertVerificationError):
        https_request(server.url + "/healthz", ssl.create_default_context())
    # The bearer token is still required over TLS.
    status, _ = https_request(
        server.url + "/webhook", pki.client_context(), "POST", b"{}", {"Content-Type": "application/json"}
    )
    assert status == 401

    am = alertmanager_factory(server.url + "/webhook", receiver=RECEIVER, bearer_token=TOKEN, tls_ca_file=pki.ca_cert)
    deliver_and_check(am, server, f"sqlite:///{tmp_path}/wf-tls.db")


def _handshake_refused(server: ServerProcess, ctx: ssl.SSLContext) -> BaseException | None:
    """Connect, handshake and make one request; the exception that stopped it (None: it worked).

    In TLS 1.3 the client finishes its side of the handshake before the server checks the client
    certificate, so the server's refusal (alert "certificate required") can surface at the first read.
    """
    try:
        with (
            socket.create_connection((server.host, server.port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname=server.host) as tls,
        ):
            tls.sendall(f"GET /healthz HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n".encode())
            data = tls.recv(65536)
            if not data:
                return ConnectionAbortedError("closed without an answer")
            return None
    except (ssl.SSLError, ConnectionError) as exc:
        return exc


def test_client_certificate_required(server_factory: Any, alertmanager_factory: Any, pki: Pki, tmp_path: Path) -> None:
    server = tls_server(server_factory, pki, tmp_path, client_ca=True)

    # Without a client certificate: refused by TLS, never an HTTP answer.
    error = _handshake_refused(server, pki.client_context())
    assert isinstance(error, ssl.SSLError), f"no-certificate client was not refused with a TLS error: {error!r}"
    # A certificate from another CA is refused too.
    stranger = make_pki(tmp_path / "other-pki")
    ctx = pki.client_context()
    ctx.load_cert_chain(str(stranger.client_cert), str(stranger.client_key))
    error = _handshake_refused(server, ctx)
    assert isinstance(error, ssl.SSLError), f"foreign-CA client was not refused with a TLS error: {error!r}"
    # With the right certificate it answers.
    assert _handshake_refused(server, pki.client_context(with_client_cert=True)) is None

    am = alertmanager_factory(
        server.url + "/webhook",
        receiver=RECEIVER,
        bearer_token=TOKEN,
        http_config={
            "tls_config": {
                "ca_file": str(pki.ca_cert),
                "cert_file": str(pki.client_cert),
                "key_file": str(pki.client_key),
            }
        },
    )
    deliver_and_check(am, server, f"sqlite:///{tmp_path}/wf-tls.db")


def test_plain_http_to_https_port_is_not_served(server_factory: Any, pki: Pki, tmp_path: Path) -> None:
    server = tls_server(server_factory, pki, tmp_path)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("POST", "/webhook", body=b"{}", headers={**AUTH, "Content-Type": "application/json"})
        status: int | str = conn.getresponse().status
    except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
        status = repr(exc)
    finally:
        conn.close()
    assert status != 200, "plain http was answered 200 on the https port"
    # The server is still fine over https afterwards.
    status2, _ = https_request(server.url + "/healthz", pki.client_context())
    assert status2 == 200
