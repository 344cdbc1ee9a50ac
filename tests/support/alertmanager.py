"""pytest plugin: Debian's real ``prometheus-alertmanager`` (0.25) as a subprocess.

The binary is run directly (never the service) on a free loopback port, clustering off, with a
config (written as JSON, which YAML accepts) that routes every alert to one webhook receiver:
``send_resolved: true``, ``max_alerts: 0``, grouped by ``alertname`` with ``group_wait: 100ms``,
``group_interval: 1s``, ``repeat_interval: 1h`` (all overridable), and an optional ``http_config``
(bearer token, basic auth, TLS).

``Alertmanager`` posts alerts (``POST /api/v2/alerts``), reads them back with Alertmanager's own
fingerprints (``GET /api/v2/alerts``), and reads ``/metrics`` to know when its webhook notifications
are done and whether any failed.

Fixture ``alertmanager_factory(webhook_url, **options)`` → a started ``Alertmanager``, stopped at the
end of the test. Without the binary the tests that use it are skipped, unless
``WEBHOOKFAST_TEST_REQUIRE_SERVICES=1`` (set by scripts/test.sh), where that is an error.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import pytest

from support.net import Response, attach_log, free_port, request, tail

BINARY_NAMES = ("prometheus-alertmanager", "alertmanager")
WEBHOOK = 'integration="webhook"'


def find_binary() -> str | None:
    for name in BINARY_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def rfc3339(ts: datetime) -> str:
    """A UTC RFC 3339 time with milliseconds, as Prometheus writes it."""
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def prometheus_fingerprint(labels: Mapping[str, str]) -> str:
    """Reference (pure Python) ``model.LabelSet.Fingerprint()``: FNV-1a 64 over the labels sorted by
    name, each name and value followed by a 0xff byte; 16 lowercase hex digits."""
    h = 0xCBF29CE484222325
    for name in sorted(labels, key=lambda k: k.encode()):
        for part in (name.encode(), b"\xff", labels[name].encode(), b"\xff"):
            for byte in part:
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text exposition → [(name, labels, value)] (enough for Alertmanager's /metrics)."""
    samples = []
    line_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        if not m:
            continue
        labels = {k: v for k, v in label_re.findall(m.group(2) or "")}
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def webhook_config(
    url: str,
    *,
    send_resolved: bool = True,
    max_alerts: int = 0,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    tls_ca_file: str | os.PathLike[str] | None = None,
    tls_insecure_skip_verify: bool = False,
    http_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``webhook_configs`` entry."""
    cfg: dict[str, Any] = {"url": url, "send_resolved": send_resolved, "max_alerts": max_alerts}
    http: dict[str, Any] = dict(http_config or {})
    if bearer_token is not None:
        http["authorization"] = {"type": "Bearer", "credentials": bearer_token}
    if basic_auth is not None:
        http["basic_auth"] = {"username": basic_auth[0], "password": basic_auth[1]}
    if tls_ca_file is not None or tls_insecure_skip_verify:
        tls: dict[str, Any] = {"insecure_skip_verify": tls_insecure_skip_verify}
        if tls_ca_file is not None:
            tls["ca_file"] = str(tls_ca_file)
        http["tls_config"] = tls
    if http:
        cfg["http_config"] = http
    return cfg


def make_config(
    webhook_url: str,
    *,
    receiver: str = "webhookfast",
    group_by: Sequence[str] = ("alertname",),
    group_wait: str = "100ms",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    **webhook_options: Any,
) -> dict[str, Any]:
    return {
        "route": {
            "receiver": receiver,
            "group_by": list(group_by),
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [{"name": receiver, "webhook_configs": [webhook_config(webhook_url, **webhook_options)]}],
    }


_LIVE: weakref.WeakSet[Alertmanager] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for am in list(_LIVE):
        am.stop(timeout=2)


class Alertmanager:
    """One ``prometheus-alertmanager`` process with its own config, storage and port."""

    def __init__(
        self,
        config: Mapping[str, Any],
        workdir: Path,
        *,
        port: int | None = None,
        binary: str | None = None,
        log_level: str = "info",
        ready_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.binary = binary or find_binary()
        if self.binary is None:
            raise FileNotFoundError(
                "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
            )
        self.config = dict(config)
        self.port = port or free_port()
        self.workdir = Path(workdir) / f"alertmanager-{self.port}"
        self.config_path = self.workdir / "alertmanager.yml"
        self.storage_path = self.workdir / "data"
        self.log_path = self.workdir / "alertmanager.log"
        self.log_level = log_level
        self.ready_timeout = ready_timeout
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        assert self.binary is not None
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.storage_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            f"--web.external-url={self.url}/",
            f"--log.level={self.log_level}",
            *self.extra_args,
        ]

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> Alertmanager:
        self.storage_path.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config, indent=2))
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        _LIVE.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop(timeout=2)
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer yet"
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"alertmanager exited with {self.proc.returncode}\n--- {self.log_path}:\n{tail(self.log())}"
                )
            try:
                resp = request(self.url + "/-/ready", timeout=2)
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
            except OSError as exc:
                last = repr(exc)
            if time.monotonic() >= deadline:
                raise RuntimeError(f"alertmanager not ready ({last})\n--- {self.log_path}:\n{tail(self.log())}")
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        _LIVE.discard(self)
        return self.proc.returncode

    def __enter__(self) -> Alertmanager:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- API --------------------------------------------------------------------------------------

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> Response:
        """``POST /api/v2/alerts`` (each alert: labels, annotations, startsAt, endsAt?, generatorURL?)."""
        body = json.dumps(list(alerts)).encode()
        resp = request(self.url + "/api/v2/alerts", "POST", body, {"Content-Type": "application/json"}, timeout=30)
        if resp.status != 200:
            raise AssertionError(f"POST /api/v2/alerts → {resp.status}: {resp.text[:500]}")
        return resp

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (active, not yet resolved alerts, each with its ``fingerprint``)."""
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        resp = request(self.url + "/api/v2/alerts" + (f"?{query}" if query else ""), timeout=30)
        assert resp.status == 200, f"GET /api/v2/alerts → {resp.status}: {resp.text[:500]}"
        data = resp.json()
        assert isinstance(data, list)
        return data

    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        resp = request(self.url + "/metrics", timeout=10)
        assert resp.status == 200, f"GET /metrics → {resp.status}"
        return parse_metrics(resp.text)

    def metric(self, name: str, **labels: str) -> float:
        """The sum of every sample of ``name`` whose labels include ``labels``."""
        return sum(
            value
            for sample, have, value in self.metrics()
            if sample == name and all(have.get(k) == v for k, v in labels.items())
        )

    def notification_stats(self, integration: str = "webhook") -> dict[str, float]:
        """Counters of the webhook integration: notifications (attempted, failed) and HTTP requests."""
        names = {
            "notifications": "alertmanager_notifications_total",
            "notifications_failed": "alertmanager_notifications_failed_total",
            "requests": "alertmanager_notification_requests_total",
            "requests_failed": "alertmanager_notification_requests_failed_total",
        }
        samples = self.metrics()
        return {
            key: sum(v for n, labels, v in samples if n == name and labels.get("integration") == integration)
            for key, name in names.items()
        }

    def wait_notifications(
        self,
        at_least: float,
        *,
        timeout: float = 60.0,
        settle: float = 1.5,
        integration: str = "webhook",
        fail_fast: bool = True,
    ) -> dict[str, float]:
        """Wait until ≥ ``at_least`` notifications were attempted and the counters stayed unchanged for
        ``settle`` seconds (longer than ``group_interval``); returns the final counters.

        With ``fail_fast`` a new failed notification or request raises at once (with the log) instead of
        waiting for counters that a failing receiver keeps moving.
        """
        deadline = time.monotonic() + timeout
        last: dict[str, float] | None = None
        stable_since = time.monotonic()
        baseline = self.notification_stats(integration)
        while True:
            stats = self.notification_stats(integration)
            now = time.monotonic()
            if fail_fast and (
                stats["notifications_failed"] > baseline["notifications_failed"]
                or stats["requests_failed"] > baseline["requests_failed"]
            ):
                raise AssertionError(
                    f"alertmanager: {integration} deliveries failed; counters: {stats}\n"
                    f"--- {self.log_path}:\n{tail(self.log(), 20)}"
                )
            if stats != last:
                last, stable_since = stats, now
            elif stats["notifications"] >= at_least and now - stable_since >= settle:
                return stats
            if now >= deadline:
                raise TimeoutError(
                    f"alertmanager: waited {timeout:.0f}s for {at_least} {integration} notifications; "
                    f"counters: {stats}\n--- {self.log_path}:\n{tail(self.log())}"
                )
            time.sleep(0.2)


def _require_services() -> bool:
    return os.environ.get("WEBHOOKFAST_TEST_REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    binary = find_binary()
    if binary is None:
        message = "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        if _require_services():
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture
def alertmanager_factory(request: pytest.FixtureRequest, tmp_path: Path, alertmanager_binary: str) -> Iterator[Any]:
    """``alertmanager_factory(webhook_url, *, log_level="info", port=None, extra_args=(), **config)``.

    ``config`` options: group_by, group_wait, group_interval, repeat_interval, receiver, send_resolved,
    max_alerts, bearer_token, basic_auth=(user, password), tls_ca_file, tls_insecure_skip_verify,
    http_config (raw). Or ``config=`` a whole config dict.
    """
    started: list[Alertmanager] = []

    def make(
        webhook_url: str | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        log_level: str = "info",
        port: int | None = None,
        extra_args: Sequence[str] = (),
        **options: Any,
    ) -> Alertmanager:
        if config is None:
            if webhook_url is None:
                raise TypeError("give webhook_url or config")
            config = make_config(webhook_url, **options)
        am = Alertmanager(
            config, tmp_path, port=port, binary=alertmanager_binary, log_level=log_level, extra_args=extra_args
        )
        started.append(am)
        attach_log(request.node, f"alertmanager ({am.url})", am.log)
        return am.start()

    try:
        yield make
    finally:
        for am in reversed(started):
            am.stop()
