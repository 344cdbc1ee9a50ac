"""Alertmanager's read API on webhookfast (GET /api/v2/alerts, /alerts/groups, /silences, /status).

With real parts: Debian's ``prometheus-alertmanager`` notifies a real ``webhookfast serve`` (basic
auth on both sides), then

- ``amtool`` (Alertmanager's own client, its go-swagger models decoding every answer) reads
  webhookfast and the real Alertmanager with the same matchers and lists the same alerts;
- both ``GET /api/v2/alerts`` answers agree on fingerprints, labels, annotations, startsAt,
  receivers, status and generatorURL, and on every key's presence and JSON type; both
  ``/alerts/groups`` answers group the same alerts under the same receiver and labels;
- alerts resolved through Alertmanager disappear from both.

Then webhookfast's own rules, posted straight to the server: firing now (latest instance per label
set, endsAt), receiver regex, filter forms, Alertmanager's order, flags, refusals, the bound.
Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from support.alertmanager import prometheus_fingerprint, rfc3339
from support.net import request
from support.servers import ServerProcess

pytestmark = [pytest.mark.timeout(240)]

USER, PASSWORD = "grafana", "read-Only_pw.42"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
RECEIVER = "webhookfast"
NAMES = ["DiskFull", "HighLatency", "Température élevée"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/wf.db"
    return str(request.getfixturevalue("pg_url"))


def get_json(server: ServerProcess, path: str, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    resp = server.get(path, headers=AUTH if headers is None else headers)
    assert resp.status == status, f"GET {path} → {resp.status}: {resp.text[:500]}"
    assert resp.headers["content-type"].startswith("application/json")
    return resp.json()


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively (a list by its first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def by_fingerprint(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {a["fingerprint"]: a for a in alerts}
    assert len(out) == len(alerts), "a fingerprint listed twice"
    return out


def assert_same_alerts(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    assert [a["fingerprint"] for a in ours] == [a["fingerprint"] for a in theirs]  # same set, same order
    mine = by_fingerprint(ours)
    for fp, ref in by_fingerprint(theirs).items():
        got = mine[fp]
        assert shape(got) == shape(ref), fp
        for key in ("labels", "annotations", "startsAt", "receivers", "status", "generatorURL"):
            assert got.get(key) == ref.get(key), (fp, key)
        assert fp == prometheus_fingerprint(got["labels"])


def groups_view(groups: list[dict[str, Any]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], list[str]]:
    return {
        (g["receiver"]["name"], tuple(sorted(g["labels"].items()))): sorted(a["fingerprint"] for a in g["alerts"])
        for g in groups
    }


def amtool(url: str, *args: str) -> list[dict[str, Any]]:
    """``amtool alert query -o json`` against ``url``: what Alertmanager's client decoded."""
    binary = shutil.which("amtool")
    assert binary is not None
    proc = subprocess.run(
        [binary, "alert", "query", "-o", "json", f"--alertmanager.url={url}", "--timeout=20s", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"amtool {args}: {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    data = json.loads(proc.stdout)
    assert isinstance(data, list)
    return data


def alert_specs(starts: datetime) -> list[dict[str, Any]]:
    alerts = []
    for n, name in enumerate(NAMES):
        for i in range(3):
            labels = {
                "alertname": name,
                "instance": f"hôte-{i}.example:9100",
                "severity": ["critical", "warning", "info"][(n + i) % 3],
            }
            if i == 1:
                labels["team"] = "db"
            alert: dict[str, Any] = {"labels": labels, "startsAt": rfc3339(starts + timedelta(seconds=n * 7 + i))}
            if i != 2:  # without annotations or generatorURL, Alertmanager prints {} and leaves the URL out
                alert["annotations"] = {"summary": f"{name} on {labels['instance']}", "description": "«quoted» <b>"}
                alert["generatorURL"] = f"http://prometheus.example/graph?g0.expr=up%7Bi%3D%22{i}%22%7D&n={n}"
            alerts.append(alert)
    return alerts


@pytest.mark.alertmanager
def test_alertmanager_clients_read_what_alertmanager_notified(
    store_url: str, server_factory: Any, alertmanager_factory: Any
) -> None:
    server = server_factory(
        store_url, env={"WEBHOOKFAST_BASIC_AUTH_USER": USER, "WEBHOOKFAST_BASIC_AUTH_PASSWORD": PASSWORD}
    )
    am = alertmanager_factory(server.url + "/webhook", receiver=RECEIVER, basic_auth=(USER, PASSWORD))
    starts = datetime.now(timezone.utc).replace(microsecond=123000) - timedelta(minutes=10)
    specs = alert_specs(starts)
    am.post_alerts(specs)
    am.wait_notifications(len(NAMES))

    # Under the history API's authentication.
    assert server.get("/api/v2/alerts").status == 401
    assert server.get("/api/v2/alerts/groups").status == 401
    assert server.get("/api/v2/status").status == 401

    ours, theirs = get_json(server, "/api/v2/alerts"), am.alerts()
    assert len(theirs) == len(specs)
    assert_same_alerts(ours, theirs)

    # amtool, with the same matchers against both (credentials in the URL, as amtool takes them).
    wf_url = f"http://{USER}:{quote(PASSWORD)}@127.0.0.1:{server.url.rsplit(':', 1)[1]}/"
    queries: list[list[str]] = [
        [],
        ["alertname=DiskFull"],
        ["severity=~crit.*"],
        ["DiskFull", "team!=db"],
        ["alertname=~Temp.*", "instance=~.*-[01].*"],
        ["--receiver=webhook.*"],
        ["--receiver=other"],
        ["--silenced", "--inhibited", "alertname=HighLatency"],
    ]
    for args in queries:
        got = sorted(a["fingerprint"] for a in amtool(wf_url, *args))
        want = sorted(a["fingerprint"] for a in amtool(am.url, *args))
        assert got == want, args
        if not args:
            assert want == sorted(prometheus_fingerprint(a["labels"]) for a in specs)
        if args and args != ["--receiver=webhook.*"] and "--silenced" not in args:
            assert 0 <= len(want) < len(specs), args  # the matchers really select
    assert len(amtool(wf_url, "alertname=DiskFull")) == 3

    # Groups: Alertmanager's group_by (alertname) read back from the notifications' group keys.
    am_groups = request(am.url + "/api/v2/alerts/groups").json()
    assert isinstance(am_groups, list)
    our_groups = get_json(server, "/api/v2/alerts/groups")
    assert groups_view(our_groups) == groups_view(am_groups)
    assert {k[1] for k in groups_view(our_groups)} == {(("alertname", n),) for n in NAMES}
    for group in our_groups:
        ref = next(g for g in am_groups if g["labels"] == group["labels"])
        assert shape({**group, "alerts": []}) == shape({**ref, "alerts": []})
        assert_same_alerts(group["alerts"], sorted(ref["alerts"], key=lambda a: a["fingerprint"]))

    # Resolve one alertname through Alertmanager: it disappears from both.
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    resolved = [{**a, "endsAt": rfc3339(past)} for a in specs if a["labels"]["alertname"] == "DiskFull"]
    before = am.notification_stats()["notifications"]
    am.post_alerts(resolved)
    am.wait_notifications(before + 1)
    ours, theirs = get_json(server, "/api/v2/alerts"), am.alerts()
    assert len(theirs) == len(specs) - len(resolved)
    assert_same_alerts(ours, theirs)
    assert amtool(wf_url, "alertname=DiskFull") == []
    assert groups_view(get_json(server, "/api/v2/alerts/groups")) == groups_view(
        request(am.url + "/api/v2/alerts/groups").json()  # type: ignore[arg-type]
    )

    # What Grafana's health check and karma call besides: status and silences.
    status = get_json(server, "/api/v2/status")
    assert shape(status["versionInfo"]) == shape(request(am.url + "/api/v2/status").json()["versionInfo"])  # type: ignore[index]
    assert get_json(server, "/api/v2/silences") == []
    proc = subprocess.run(
        ["amtool", "silence", "query", "-o", "json", f"--alertmanager.url={wf_url}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout or "null") in ([], None)


# -- webhookfast's own rules, posted straight to the server -------------------------------------------


def post(server: ServerProcess, path: str, payload: Any) -> None:
    resp = server.post(path, json.dumps(payload).encode(), headers=AUTH)
    assert resp.status == 200, resp.text


def at(minutes: float) -> str:
    return rfc3339(datetime.now(timezone.utc) + timedelta(minutes=minutes))


def generic(labels: dict[str, str], starts: str, **extra: Any) -> dict[str, Any]:
    return {"labels": labels, "startsAt": starts, **extra}


@pytest.fixture
def server(store_url: str, server_factory: Any) -> ServerProcess:
    return server_factory(
        store_url, env={"WEBHOOKFAST_BASIC_AUTH_USER": USER, "WEBHOOKFAST_BASIC_AUTH_PASSWORD": PASSWORD}
    )


def fps(alerts: list[dict[str, Any]]) -> list[str]:
    return [a["fingerprint"] for a in alerts]


def q(**params: Any) -> str:
    return "?" + urlencode(params, doseq=True)


def test_firing_now_one_alert_per_label_set(server: ServerProcess) -> None:
    stale = {"alertname": "Stale", "job": "x"}
    post(server, "/webhook", generic(stale, at(-60), receiver="cron", annotations={"v": "old"}))
    post(server, "/webhook", generic(stale, at(-5), receiver="cron", annotations={"v": "new"}, generatorURL="http://g"))
    gone = {"alertname": "Gone"}
    gone_starts = at(-9)
    post(server, "/webhook", generic(gone, gone_starts, receiver="cron"))
    post(server, "/webhook", generic(gone, gone_starts, receiver="cron", status="resolved", endsAt=at(-1)))
    # Prometheus' list: firing until its endsAt, no receiver; one already past its endsAt.
    prom = {"alertname": "FromPrometheus", "severity": "critical"}
    past = {"alertname": "PastEndsAt"}
    post(server, "/api/v2/alerts", [{"labels": prom, "startsAt": at(-3), "endsAt": at(4)}])
    post(server, "/api/v2/alerts", [{"labels": past, "startsAt": at(-3), "endsAt": at(-1)}])

    alerts = by_fingerprint(get_json(server, "/api/v2/alerts"))
    assert set(alerts) == {prometheus_fingerprint(stale), prometheus_fingerprint(prom)}
    latest = alerts[prometheus_fingerprint(stale)]
    assert latest["annotations"] == {"v": "new"} and latest["generatorURL"] == "http://g"
    assert latest["receivers"] == [{"name": "cron"}]
    assert latest["endsAt"] == "0001-01-01T00:00:00.000Z"
    assert latest["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    from_prom = alerts[prometheus_fingerprint(prom)]
    assert from_prom["receivers"] == [] and "generatorURL" not in from_prom and from_prom["annotations"] == {}
    assert datetime.fromisoformat(from_prom["endsAt"].replace("Z", "+00:00")) > datetime.now(timezone.utc)
    for a in alerts.values():
        assert a["startsAt"].endswith("Z") and len(a["startsAt"]) == len("2024-05-01T10:00:00.123Z")
        datetime.fromisoformat(a["updatedAt"].replace("Z", "+00:00"))

    # Groups: without a group key, one group per receiver with no labels.
    groups = get_json(server, "/api/v2/alerts/groups")
    assert groups_view(groups) == {
        ("", ()): [prometheus_fingerprint(prom)],
        ("cron", ()): [prometheus_fingerprint(stale)],
    }


@pytest.mark.parametrize("payload", ["firing_edge_controls.json", "firing_single.json"])
def test_group_labels_come_from_the_captured_group_key(server: ServerProcess, payloads_dir: Path, payload: str) -> None:
    """Byte-for-byte notifications of a real Alertmanager whose group keys quote tabs, bells,
    newlines, quotes and backslashes Go-style: the groups carry exactly the payload's groupLabels."""
    notification = json.loads((payloads_dir / payload).read_bytes())
    firing = [a for a in notification["alerts"] if a["status"] == "firing"]
    assert firing and notification["groupLabels"]
    resp = server.post("/webhook", (payloads_dir / payload).read_bytes(), headers=AUTH)
    assert resp.status == 200, resp.text
    groups = get_json(server, "/api/v2/alerts/groups")
    assert [(g["receiver"], g["labels"]) for g in groups] == [
        ({"name": notification["receiver"]}, notification["groupLabels"])
    ]
    assert sorted(fps(groups[0]["alerts"])) == sorted(a["fingerprint"] for a in firing)


def test_filters_receiver_flags_and_order(server: ServerProcess) -> None:
    labelsets = [
        {"alertname": f"A{i}", "severity": ["critical", "warning"][i % 2], **({"team": "db"} if i % 3 == 0 else {})}
        for i in range(12)
    ]
    halves = {prometheus_fingerprint(ls)[0] >= "8" for ls in labelsets}
    assert halves == {True, False}, "the order check needs fingerprints with and without the top bit"
    for i, ls in enumerate(labelsets):
        post(server, "/webhook", generic(ls, at(-i - 1), receiver=["cron", "ops"][i % 2]))
    post(server, "/api/v2/alerts", [{"labels": {"alertname": "NoReceiver"}, "startsAt": at(-1), "endsAt": at(5)}])
    every = get_json(server, "/api/v2/alerts")
    assert fps(every) == sorted(fps(every)) and len(every) == 13  # Alertmanager's order: by fingerprint

    def select(**params: Any) -> set[str]:
        return set(fps(get_json(server, "/api/v2/alerts" + q(**params))))

    def expect(pred: Any) -> set[str]:
        return {prometheus_fingerprint(ls) for i, ls in enumerate(labelsets) if pred(i, ls)}

    assert select(filter='alertname="A3"') == expect(lambda i, ls: i == 3)
    assert select(filter="alertname=A3") == expect(lambda i, ls: i == 3)  # Alertmanager 0.25's unquoted form
    assert select(filter='{alertname=~"A1.*"}') == expect(lambda i, ls: ls["alertname"].startswith("A1"))
    assert select(filter=['severity=~"crit.*"', 'team!="db"']) == expect(
        lambda i, ls: ls["severity"] == "critical" and "team" not in ls
    )
    assert select(filter='team=""') == expect(lambda i, ls: "team" not in ls) | {
        prometheus_fingerprint({"alertname": "NoReceiver"})
    }
    assert select(receiver="cr.*") == expect(lambda i, ls: i % 2 == 0)
    assert select(receiver="cr") == set()  # anchored
    assert select(receiver=".*") == expect(lambda i, ls: True)  # an alert without receiver matches none
    assert select(active="false") == set()
    assert select(active="true", silenced="false", inhibited="false", unprocessed="false") == set(fps(every))
    groups = get_json(server, "/api/v2/alerts/groups" + q(receiver="ops", muted="false"))
    assert groups_view(groups) == {("ops", ()): sorted(expect(lambda i, ls: i % 2 == 1))}
    assert get_json(server, "/api/v2/alerts/groups" + q(active="false")) == []


@pytest.mark.parametrize(
    ("path", "query", "param"),
    [
        ("/api/v2/alerts", "filter=alertname", "filter"),
        ("/api/v2/alerts", "filter=", "filter"),
        ("/api/v2/alerts", "filter=" + quote('a=~"("'), "filter"),
        ("/api/v2/alerts", "filter=" + quote('a=~"(?<=x)y"'), "filter"),
        ("/api/v2/alerts", "filter=" + quote('a="\x00"'), "filter"),
        ("/api/v2/alerts", "&".join(["filter=" + quote(f'l{i}="v"') for i in range(33)]), "filter"),
        ("/api/v2/alerts", "receiver=" + quote("(unclosed"), "receiver"),
        ("/api/v2/alerts", "active=maybe", "active"),
        ("/api/v2/alerts", "active=true&active=false", "active"),
        ("/api/v2/alerts", "muted=true", "muted"),
        ("/api/v2/alerts", "filtr=" + quote('a="b"'), "filtr"),
        ("/api/v2/alerts/groups", "unprocessed=true", "unprocessed"),
        ("/api/v2/silences", "receiver=x", "receiver"),
        ("/api/v2/silences", "filter=" + quote('a=~"["'), "filter"),
        ("/api/v2/status", "filter=" + quote('a="b"'), "filter"),
    ],
)
def test_bad_parameters_are_refused(server: ServerProcess, path: str, query: str, param: str) -> None:
    body = get_json(server, f"{path}?{query}", status=400)
    assert body["error"]["code"] == "invalid_parameter"
    assert body["error"]["path"] == param
    assert body["error"]["message"]


def test_status_silences_and_health(server: ServerProcess) -> None:
    from webhookfast import __version__

    status = get_json(server, "/api/v2/status")
    assert status["versionInfo"]["version"] == __version__
    assert status["cluster"] == {"peers": [], "status": "disabled"}
    assert status["config"] == {"original": ""}
    assert datetime.fromisoformat(status["uptime"].replace("Z", "+00:00")) <= datetime.now(timezone.utc)
    assert get_json(server, "/api/v2/silences" + q(filter='alertname="x"')) == []
    assert get_json(server, "/-/healthy", headers={}) == {"status": "ok"}
    assert get_json(server, "/-/ready", headers={}) == {"status": "ready"}


def test_signatures_do_not_open_the_read_route(server_factory: Any, tmp_path: Path) -> None:
    """GET /api/v2/alerts shares the ingest route, whose POST takes signed requests: a GET never does."""
    server = server_factory(
        env={
            "WEBHOOKFAST_BEARER_TOKEN": "tok-1",
            "WEBHOOKFAST_HMAC_SECRET": "hmac-secret",
            "WEBHOOKFAST_PROTECT_HEALTH": "true",
        },
        health_headers={"Authorization": "Bearer tok-1"},
    )
    from webhookfast.middleware.auth import sign

    ts = int(time.time())
    signed = {"X-Webhookfast-Timestamp": str(ts), "X-Webhookfast-Signature": sign(b"hmac-secret", ts, b"")}
    resp = server.get("/api/v2/alerts", headers=signed)
    assert resp.status == 401 and json.loads(resp.body)["error"]["code"] == "unauthorized"
    body = json.dumps([{"labels": {"alertname": "Signed"}, "startsAt": at(-1), "endsAt": at(5)}]).encode()
    signed_post = {"X-Webhookfast-Timestamp": str(ts), "X-Webhookfast-Signature": sign(b"hmac-secret", ts, body)}
    assert server.post("/api/v2/alerts", body, headers=signed_post).status == 200
    got = get_json(server, "/api/v2/alerts", headers={"Authorization": "Bearer tok-1"})
    assert fps(got) == [prometheus_fingerprint({"alertname": "Signed"})]
    # Alertmanager's health paths follow WEBHOOKFAST_PROTECT_HEALTH, as /healthz and /readyz do.
    for path in ("/-/healthy", "/-/ready"):
        assert server.get(path).status == 401
        assert get_json(server, path, headers={"Authorization": "Bearer tok-1"})["status"] in ("ok", "ready")


def test_answer_is_bounded(server: ServerProcess, store_url: str) -> None:
    """At most ``max_alerts`` (the lowest fingerprints) and a header saying so; the same reader the
    server uses, over the rows the server stored."""
    from webhookfast.history.alertmanager_v2 import TRUNCATED_HEADER, AlertmanagerApi
    from webhookfast.storage.readers import PostgresReader, SQLiteReader

    post(
        server,
        "/api/v2/alerts",
        [{"labels": {"alertname": f"B{i}"}, "startsAt": at(-1), "endsAt": at(5)} for i in range(5)],
    )
    every = fps(get_json(server, "/api/v2/alerts"))
    assert len(every) == 5

    async def read(max_alerts: int, path: str) -> tuple[Any, Any]:
        reader: Any = (
            SQLiteReader(store_url.removeprefix("sqlite:///"))
            if store_url.startswith("sqlite")
            else PostgresReader(store_url)
        )
        api = AlertmanagerApi(reader, max_alerts=max_alerts)
        ctx: Any = SimpleNamespace(scope=SimpleNamespace(query_string=""))
        try:
            handler = api.list_alerts if path == "alerts" else api.alert_groups
            resp = await handler(ctx)
        finally:
            await reader.close()
        return json.loads(resp.body), resp.headers

    alerts, headers = asyncio.run(read(3, "alerts"))
    assert fps(alerts) == every[:3] and headers == [(TRUNCATED_HEADER, "3")]
    groups, headers = asyncio.run(read(2, "groups"))
    assert sum(len(g["alerts"]) for g in groups) == 2 and headers == [(TRUNCATED_HEADER, "2")]
    alerts, headers = asyncio.run(read(5, "alerts"))
    assert fps(alerts) == every and headers is None
