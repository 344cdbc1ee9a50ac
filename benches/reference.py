"""Pure-Python reference decoders, to show what the Rust core (``webhookfast._core.decode``) saves.

Both do the work ``_core.decode`` does for an Alertmanager v4 body, in Python: parse, check the
shape and types, parse ``startsAt``/``endsAt`` (RFC 3339) to microseconds, and compute each alert's
Prometheus fingerprint (FNV-1a 64 over label names and values sorted by name, each followed by
0xff). They keep every alert as Python objects (dicts or models), as a pure-Python receiver would.

- ``decode_orjson``: orjson parse + hand-written checks + pure-Python FNV-1a.
- ``decode_pydantic``: a pydantic v2 model of the payload (``model_validate_json``, its Rust parser
  and validators) + the same pure-Python FNV-1a.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def fnv1a_fingerprint(labels: dict[str, str]) -> str:
    """Prometheus ``model.LabelSet.Fingerprint()`` in pure Python, as 16 lowercase hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for byte in name.encode():
            h = ((h ^ byte) * _FNV_PRIME) & _MASK
        h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK
        for byte in labels[name].encode():
            h = ((h ^ byte) * _FNV_PRIME) & _MASK
        h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def parse_time_us(text: str) -> int | None:
    """RFC 3339 → microseconds since the epoch; Go's zero time (``0001-01-01T00:00:00Z``) → None."""
    if text.startswith("0001-01-01"):
        return None
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        raise ValueError("time without offset")
    return (ts - _EPOCH) // _ONE_US


_ONE_US = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc) - _EPOCH


class ReferenceError(ValueError):
    pass


def _str_map(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ReferenceError(f"{where}: not an object")
    for k, v in value.items():
        if not isinstance(v, str):
            raise ReferenceError(f"{where}.{k}: not a string")
    return value


def decode_orjson(body: bytes) -> list[dict[str, object]]:
    """orjson + hand-written validation + pure-Python fingerprints."""
    doc = orjson.loads(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("alerts"), list):
        raise ReferenceError("not an Alertmanager webhook")
    if doc.get("version") != "4":
        raise ReferenceError("version")
    receiver = doc.get("receiver")
    if not isinstance(receiver, str):
        raise ReferenceError("receiver")
    out = []
    for i, a in enumerate(doc["alerts"]):
        if not isinstance(a, dict):
            raise ReferenceError(f"alerts[{i}]")
        status = a.get("status")
        if status not in ("firing", "resolved"):
            raise ReferenceError(f"alerts[{i}].status")
        labels = _str_map(a.get("labels"), f"alerts[{i}].labels")
        annotations = _str_map(a.get("annotations", {}), f"alerts[{i}].annotations")
        starts = parse_time_us(a["startsAt"])
        if starts is None:
            raise ReferenceError(f"alerts[{i}].startsAt")
        fp = fnv1a_fingerprint(labels)
        out.append(
            {
                "fingerprint": fp,
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "starts_at": starts,
                "ends_at": parse_time_us(a.get("endsAt", "0001-01-01T00:00:00Z")),
                "generator_url": a.get("generatorURL", ""),
                "fingerprint_mismatch": a.get("fingerprint") not in (None, fp),
                "receiver": receiver,
            }
        )
    return out


class AlertModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str | None = None


class WebhookModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    receiver: str
    status: Literal["firing", "resolved"]
    alerts: list[AlertModel]
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0


def decode_pydantic(body: bytes) -> tuple[WebhookModel, list[str]]:
    """A pydantic v2 model of the payload + pure-Python fingerprints."""
    doc = WebhookModel.model_validate_json(body)
    return doc, [fnv1a_fingerprint(a.labels) for a in doc.alerts]
