"""/metrics of a live server: valid exposition (``promtool check metrics``), the right counts after
good and bad requests, merged across ``--workers 2``; and the dashboard and alerting rules use
only metrics that exist."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from support.servers import ServerProcess
from support.tools import promtool
from webhookfast import metrics as wf_metrics

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "webhookfast-dashboard.json"
RULES = ROOT / "deploy" / "prometheus" / "webhookfast-rules.yml"
JSON = {"Content-Type": "application/json"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples(text).items() if n == name and want <= lab)


def scrape(server: ServerProcess) -> str:
    resp = server.get("/metrics")
    assert resp.status == 200, resp.text[:300]
    assert resp.headers["content-type"].startswith("text/plain"), resp.headers["content-type"]
    assert resp.headers.get("x-content-type-options") == "nosniff"
    return resp.text


def promtool_check(text: str) -> None:
    proc = subprocess.run([promtool(), "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    assert proc.returncode == 0, f"promtool check metrics → {proc.returncode}:\n{output}"
    assert not output.strip(), f"promtool lint findings:\n{output}"


def exposed_names() -> set[str]:
    """Every sample name metrics.py can expose (counters: _total; histograms: _bucket/_sum/_count)."""
    names: set[str] = set()
    for obj in vars(wf_metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        base, kind = obj._name, obj._type
        if kind == "counter":
            names |= {base + "_total", base + "_created"}
        elif kind == "histogram":
            names |= {base + "_bucket", base + "_sum", base + "_count", base + "_created"}
        else:
            names.add(base)
    assert names, "no metric found in webhookfast.metrics"
    return names


METRIC_RE = re.compile(r"\b(webhookfast_[a-zA-Z0-9_:]*)")


def good_and_bad_requests(server: ServerProcess, payloads_dir: Path) -> dict[str, int]:
    """A known mix of requests; returns what they should have counted."""
    single = (payloads_dir / "firing_single.json").read_bytes()
    prom = (payloads_dir / "prometheus_firing.json").read_bytes()
    n_prom = len(json.loads(prom))
    for _ in range(3):
        assert server.post("/webhook", single).status == 200
    assert server.post("/api/v2/alerts", prom).status == 200
    assert server.post("/webhook", b'{"alerts": [').status == 400  # invalid_json
    assert server.post("/webhook", b'{"alerts": [], "version": "3"}').status == 422  # unsupported_version
    assert server.post("/webhook", single, {"Content-Type": "text/plain"}).status == 415
    assert server.get("/webhook").status == 405
    assert server.get("/nope").status == 404
    assert server.get("/readyz").status == 200
    return {"webhook_200": 3, "alerts_v2_200": 1, "am_firing": 3, "prom_firing": n_prom}


def test_metrics_after_good_and_bad_requests(sqlite_server: ServerProcess, payloads_dir: Path) -> None:
    expected = good_and_bad_requests(sqlite_server, payloads_dir)
    text = scrape(sqlite_server)
    promtool_check(text)

    assert value(text, "webhookfast_http_requests_total", route="webhook", status="200") == expected["webhook_200"]
    assert value(text, "webhookfast_http_requests_total", route="alerts_v2", status="200") == expected["alerts_v2_200"]
    assert value(text, "webhookfast_http_requests_total", route="webhook", status="400") == 1
    assert value(text, "webhookfast_http_requests_total", route="webhook", status="422") == 1
    assert value(text, "webhookfast_http_requests_total", route="webhook", status="415") == 1
    assert value(text, "webhookfast_http_requests_total", route="webhook", status="405") == 1
    assert value(text, "webhookfast_http_requests_total", route="unmatched", status="404") == 1
    assert (
        value(text, "webhookfast_http_request_duration_seconds_count", route="webhook") == 7
    )  # 3 × 200, 400, 422, 415, 405
    assert (
        value(text, "webhookfast_alerts_received_total", format="alertmanager", status="firing")
        == expected["am_firing"]
    )
    prom_alerts = value(text, "webhookfast_alerts_received_total", format="prometheus")
    assert prom_alerts == expected["prom_firing"]
    assert value(text, "webhookfast_payload_errors_total", reason="invalid_json") == 1
    assert value(text, "webhookfast_payload_errors_total", reason="unsupported_version") == 1
    assert value(text, "webhookfast_fingerprint_mismatches_total") == 0
    assert value(text, "webhookfast_store_errors_total") == 0
    assert value(text, "webhookfast_flush_alerts_sum") == expected["am_firing"] + expected["prom_firing"]
    assert value(text, "webhookfast_store_up") == 1  # /readyz answered 200 just before


def test_label_values_are_bounded(sqlite_server: ServerProcess) -> None:
    """Unknown paths and methods never become label values (cardinality)."""
    for i in range(20):
        sqlite_server.get(f"/random-{i}")
        sqlite_server.request("DELETE", f"/webhook?x={i}")
    text = scrape(sqlite_server)
    routes = {dict(lab).get("route") for (n, lab) in samples(text) if n == "webhookfast_http_requests_total"}
    assert routes <= {"webhook", "alerts_v2", "healthz", "readyz", "metrics", "openapi", "unmatched"} | {None}
    assert not any("random" in line for line in text.splitlines())


def test_store_up_without_a_readiness_probe(sqlite_server: ServerProcess) -> None:
    """A fresh server whose database works must not report it down: webhookfast_store_up is what
    WebhookfastStoreDown alerts on, and not every deployment probes /readyz."""
    text = scrape(sqlite_server)
    assert value(text, "webhookfast_store_up") == 1, "webhookfast_store_up is 0 while the database is up"


def test_queue_gauge_returns_to_zero_when_idle(sqlite_server: ServerProcess, payloads_dir: Path) -> None:
    """Once every request is answered (ack=commit), nothing is queued: the gauge must say 0."""
    body = (payloads_dir / "firing_largest.json").read_bytes()
    assert sqlite_server.post("/webhook", body).status == 200
    text = scrape(sqlite_server)
    assert value(text, "webhookfast_flush_alerts_count") >= 1
    assert value(text, "webhookfast_queue_alerts") == 0, "queue gauge still counts an already committed flush"


def test_counts_sum_across_two_workers(server_factory, payloads_dir: Path) -> None:
    server = server_factory(workers=2)
    single = (payloads_dir / "firing_single.json").read_bytes()
    n = 40
    for _ in range(n):  # one connection per request: the kernel spreads them over both workers
        assert server.post("/webhook", single).status == 200
    for _ in range(5):
        assert server.post("/webhook", b"not json").status == 400
    # Each worker folds its request counts into the shared files at least every second
    # (metrics.RequestObserver): after that, whichever worker answers, the view is merged.
    time.sleep(1.5)
    scrapes = [scrape(server) for _ in range(6)]
    for text in scrapes:
        promtool_check(text)
        assert value(text, "webhookfast_http_requests_total", route="webhook", status="200") == n
        assert value(text, "webhookfast_http_requests_total", route="webhook", status="400") == 5
        assert value(text, "webhookfast_alerts_received_total", format="alertmanager") == n
        assert value(text, "webhookfast_payload_errors_total", reason="invalid_json") == 5
        assert value(text, "webhookfast_http_request_duration_seconds_count", route="webhook") == n + 5
    # Both workers answered something: the /metrics scrapes themselves are counted per worker and merged.
    time.sleep(1.5)
    final = scrape(server)
    assert value(final, "webhookfast_http_requests_total", route="metrics", status="200") == len(scrapes)


def test_dashboard_uses_only_existing_metrics(sqlite_server: ServerProcess, payloads_dir: Path) -> None:
    good_and_bad_requests(sqlite_server, payloads_dir)
    live = {name for name, _ in samples(scrape(sqlite_server))}
    known = exposed_names() | live
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("expr", "query", "definition") and isinstance(v, str):
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(dashboard)
    assert len(exprs) >= 15
    used = {m for e in exprs for m in METRIC_RE.findall(e)}
    assert used, "the dashboard references no webhookfast metric"
    unknown = used - known
    assert not unknown, f"dashboard uses metrics that do not exist: {sorted(unknown)}"
    # And the dashboard covers every metric family webhookfast has.
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in exposed_names()}
    covered = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in used}
    assert families <= covered, f"metrics missing from the dashboard: {sorted(families - covered)}"


def test_rules_use_only_existing_metrics() -> None:
    used = set(METRIC_RE.findall(RULES.read_text("utf-8")))
    assert used
    unknown = used - exposed_names()
    assert not unknown, f"alerting rules use metrics that do not exist: {sorted(unknown)}"
