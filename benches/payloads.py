"""Alertmanager webhook (version "4") bodies of any size, modelled on
tests/fixtures/payloads/firing_largest.json (a capture of a real Alertmanager 0.25 request):
seven labels, three annotations (one multi-line with non-ASCII text), RFC 3339 times with
milliseconds, the zero ``endsAt`` of a firing alert, and the sender's fingerprint.

Used by the benchmarks (benches/) and by the load runner (scripts/load/run.py), so that both measure
the same bodies. Pure stdlib + orjson (falls back to json), deterministic for a given ``seed``.

``seed`` makes label sets and ``startsAt`` distinct between bodies: the same (n, seed) gives the same
bytes, a different seed gives alerts that are new rows for the database (identical bodies collapse
to one row per alert in the store: idempotent writes).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

try:
    import orjson

    def _dumps(obj: object) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - the load runner may run without orjson
    import json

    def _dumps(obj: object) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


_SEVERITIES = ("critical", "warning", "info")
_BASE = datetime(2026, 11, 27, 20, 0, 0, tzinfo=timezone.utc)
_DESCRIPTION = 'Value is {v:.2f}% (threshold 90%).\nSecond line — «quoted» "double" \\backslash <b>&amp;</b> ✅'


def fnv1a_fingerprint(labels: dict[str, str]) -> str:
    """Prometheus' LabelSet.Fingerprint (FNV-1a 64 over sorted names and values, 0xff after each).
    (The Rust core's ``fingerprint`` replaces this below when it is importable: same result, faster.)"""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name.encode(), labels[name].encode()):
            for byte in part:
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ 0xFF) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


try:
    from webhookfast._core import fingerprint as _core_fingerprint
except ImportError:  # pragma: no cover - generating bodies without the extension
    _fingerprint = fnv1a_fingerprint
else:
    _fingerprint = _core_fingerprint


def _rfc3339_ms(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def alert(i: int, seed: int = 0, status: str = "firing") -> dict[str, object]:
    """The i-th alert of body ``seed``: its label set is unique for each (seed, i)."""
    host = f"storage-{seed % 1000:03d}:9100" if seed else "storage-01:9100"
    labels = {
        "alertname": "DiskPressure",
        "device": f"/dev/nvme{i}n1",
        "instance": host,
        "job": "node",
        "mountpoint": f'/srv/data {seed}-{i} "vol"',
        "severity": _SEVERITIES[(i + seed) % 3],
        "team": "sre",
    }
    starts = _BASE - timedelta(seconds=(i * 7 + seed * 13) % 86_400, milliseconds=(i * 37 + seed) % 1000)
    value = 50.0 + ((i * 7919 + seed * 104729) % 5000) / 100.0
    ends = "0001-01-01T00:00:00Z" if status == "firing" else _rfc3339_ms(starts + timedelta(minutes=5))
    return {
        "status": status,
        "labels": labels,
        "annotations": {
            "description": _DESCRIPTION.format(v=value),
            "runbook_url": "https://runbooks.example.org/diskpressure",
            "summary": f"DiskPressure on {host}",
        },
        "startsAt": _rfc3339_ms(starts),
        "endsAt": ends,
        "generatorURL": f"http://prometheus.example.internal:9090/graph?g0.expr=up%7Bi%3D%22{i}%22%7D",
        "fingerprint": _fingerprint(labels),
    }


def payload(n: int, seed: int = 0, status: str = "firing") -> dict[str, object]:
    """An Alertmanager v4 notification of ``n`` alerts (as a dict)."""
    alerts = [alert(i, seed, status) for i in range(n)]
    host = alerts[0]["labels"]["instance"] if alerts else "storage-01:9100"  # type: ignore[index]
    return {
        "receiver": "webhookfast",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"alertname": "DiskPressure", "instance": host},
        "commonLabels": {"alertname": "DiskPressure", "instance": host, "job": "node", "team": "sre"},
        "commonAnnotations": {
            "runbook_url": "https://runbooks.example.org/diskpressure",
            "summary": f"DiskPressure on {host}",
        },
        "externalURL": "http://alertmanager.example.internal:9093",
        "version": "4",
        "groupKey": f'{{}}:{{alertname="DiskPressure", instance="{host}"}}',
        "truncatedAlerts": 0,
    }


def body(n: int, seed: int = 0, status: str = "firing") -> bytes:
    """``payload(n, seed)`` serialized as the compact JSON Alertmanager sends."""
    return _dumps(payload(n, seed, status))
