"""OpenAPI 3.1 description of the history routes, merged by the app into /openapi.json:
``PATHS`` goes under ``paths`` and ``SCHEMAS`` under ``components.schemas``."""

from __future__ import annotations

from typing import Any

from webhookfast.history.histogram import DEFAULT_BUCKETS, MAX_BUCKETS
from webhookfast.history.params import DEFAULT_LIMIT, MAX_LIMIT

_REF = "#/components/schemas/"
_TIME = {"type": "string", "format": "date-time", "examples": ["2024-05-01T10:00:00.000000Z"]}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_FP = {"type": "string", "pattern": "^[0-9a-f]{16}$", "examples": ["5a3c1e9b0f2d4c77"]}
_STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}


def _q(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_TIME_PARAM = {"type": "string", "examples": ["2024-05-01T10:00:00Z", "2h", "7d", "now"]}
_MATCH = _q(
    "match",
    'Prometheus label matchers, all must hold: `{severity="critical",job=~"api.*",team!="x"}` '
    "(=, !=, =~, !~; regexes in RE2 syntax as Prometheus reads them, fully anchored; a missing label "
    'is ""; a leading bare name means alertname="name").',
    {"type": "string"},
)
_LIMIT = _q(
    "limit",
    f"Page size (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
)
_CURSOR = _q("cursor", "Opaque `next_cursor` of the previous page (same other parameters).", {"type": "string"})
# The contract's shared error responses (each with its codes, X-Request-ID and, for 503,
# Retry-After): #/components/responses/E<status>, defined once in contract.py.
_RESPONSES_4XX = {str(status): {"$ref": f"#/components/responses/E{status}"} for status in (400, 401, 503)}

# "Error" is the contract's own schema (openapi/contract.py), referenced, never redefined here.
SCHEMAS: dict[str, Any] = {
    "AlertInstance": {
        "type": "object",
        "required": [
            "fingerprint",
            "labels",
            "annotations",
            "status",
            "starts_at",
            "ends_at",
            "first_seen",
            "last_seen",
            "notifications",
            "receiver",
        ],
        "properties": {
            "fingerprint": _FP,
            "labels": _STRMAP,
            "annotations": {**_STRMAP, "description": "Of the instance's latest state (resolved, else firing)."},
            "status": {"enum": ["firing", "resolved"]},
            "starts_at": _TIME,
            "ends_at": _TIME_OR_NULL,
            "first_seen": _TIME,
            "last_seen": _TIME,
            "notifications": {"type": "integer", "description": "Deliveries received for this instance."},
            "receiver": {"type": "string"},
        },
    },
    "AlertList": {
        "type": "object",
        "required": ["alerts", "next_cursor"],
        "properties": {
            "alerts": {"type": "array", "items": {"$ref": _REF + "AlertInstance"}},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "TimelineEvent": {
        "type": "object",
        "properties": {
            "status": {"enum": ["firing", "resolved"]},
            "received_at": _TIME,
            "ends_at": _TIME_OR_NULL,
            "receiver": {"type": "string"},
            "group_key": {"type": "string"},
            "source": {"type": "string"},
            "generator_url": {"type": "string"},
            "annotations": _STRMAP,
        },
    },
    "Episode": {
        "type": "object",
        "properties": {
            "starts_at": _TIME,
            "status": {"enum": ["firing", "resolved"]},
            "ends_at": _TIME_OR_NULL,
            "first_seen": _TIME,
            "last_seen": _TIME,
            "notifications": {"type": "integer"},
            "receiver": {"type": "string"},
            "annotations": _STRMAP,
            "timeline": {"type": "array", "items": {"$ref": _REF + "TimelineEvent"}},
        },
    },
    "AlertHistory": {
        "type": "object",
        "required": ["fingerprint", "labels", "summary", "episodes", "next_cursor"],
        "properties": {
            "fingerprint": _FP,
            "labels": _STRMAP,
            "summary": {
                "type": "object",
                "properties": {
                    "episodes": {"type": "integer"},
                    "firing": {"type": "integer"},
                    "notifications": {"type": "integer"},
                    "first_started_at": _TIME_OR_NULL,
                    "last_seen": _TIME_OR_NULL,
                },
            },
            "episodes": {"type": "array", "items": {"$ref": _REF + "Episode"}},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "Stats": {
        "type": "object",
        "properties": {
            "window": {"type": "object", "properties": {"since": _TIME, "until": _TIME}},
            "firing_now": {
                "type": "object",
                "properties": {
                    "total": {"type": "integer"},
                    "by_severity": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
            "top_firing": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "fingerprint": _FP,
                        "labels": _STRMAP,
                        "firings": {"type": "integer"},
                        "notifications": {"type": "integer"},
                    },
                },
            },
            "flapping": {
                "type": "object",
                "properties": {
                    "min_changes": {"type": "integer"},
                    "alerts": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "fingerprint": _FP,
                                "labels": _STRMAP,
                                "changes": {"type": "integer"},
                                "firing": {"type": "integer"},
                                "resolved": {"type": "integer"},
                            },
                        },
                    },
                },
            },
            "time_to_resolve": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "alertname": {"type": "string"},
                        "resolved": {"type": "integer"},
                        "p50_seconds": {"type": "number"},
                        "p90_seconds": {"type": "number"},
                        "max_seconds": {"type": "number"},
                    },
                },
            },
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/alerts": {
        "get": {
            "operationId": "listAlerts",
            "summary": "Alert instances, newest first, with filters and cursor pagination.",
            "tags": ["history"],
            "parameters": [
                _q("status", "Only firing or only resolved instances.", {"enum": ["firing", "resolved"]}),
                _q(
                    "since",
                    "starts_at ≥ since: RFC 3339 with offset, `now`, or a duration before now (`2h`).",
                    _TIME_PARAM,
                ),
                _q("until", "starts_at < until (same forms as since).", _TIME_PARAM),
                _q("fingerprint", "One label set (16 hex digits).", _FP),
                _MATCH,
                _q(
                    "q",
                    "Substring of an annotation value (ASCII case-insensitive).",
                    {"type": "string", "minLength": 1, "maxLength": 256},
                ),
                _q("sort", "Sort key.", {"enum": ["starts_at", "last_seen"], "default": "starts_at"}),
                _q("order", "Sort order.", {"enum": ["desc", "asc"], "default": "desc"}),
                _LIMIT,
                _CURSOR,
            ],
            "responses": {
                "200": {
                    "description": "A page.",
                    "content": {"application/json": {"schema": {"$ref": _REF + "AlertList"}}},
                },
                **_RESPONSES_4XX,
            },
        }
    },
    "/api/v1/alerts/{fingerprint}": {
        "get": {
            "operationId": "getAlert",
            "summary": "Every instance (episode) of one label set, newest first, with its timeline.",
            "tags": ["history"],
            "parameters": [
                {"name": "fingerprint", "in": "path", "required": True, "schema": _FP},
                _LIMIT,
                _CURSOR,
            ],
            "responses": {
                "200": {
                    "description": "The alert's history.",
                    "content": {"application/json": {"schema": {"$ref": _REF + "AlertHistory"}}},
                },
                "404": {"$ref": "#/components/responses/E404"},
                **_RESPONSES_4XX,
            },
        }
    },
    "/api/v1/stats": {
        "get": {
            "operationId": "alertStats",
            "summary": "Top firing alerts, flapping alerts, time to resolve, firing now by severity.",
            "description": "An answer is reused for the same query string for WEBHOOKFAST_STATS_CACHE_S "
            "seconds (default 5); its window says when it was computed.",
            "tags": ["history"],
            "parameters": [
                _q("since", "Window start (default: 24 h before until).", _TIME_PARAM),
                _q("until", "Window end, exclusive (default: now).", _TIME_PARAM),
                _MATCH,
                _q(
                    "top",
                    "Rows per list (default 10).",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10},
                ),
                _q(
                    "flap_min_changes",
                    "State changes in the window (instances started plus instances resolved in it, at "
                    "their startsAt/endsAt) that make an alert flapping (default 4).",
                    {"type": "integer", "minimum": 2, "maximum": 100000, "default": 4},
                ),
            ],
            "responses": {
                "200": {
                    "description": "Statistics.",
                    "content": {"application/json": {"schema": {"$ref": _REF + "Stats"}}},
                },
                **_RESPONSES_4XX,
            },
        }
    },
    "/api/v1/histogram": {
        "get": {
            "operationId": "alertHistogram",
            "summary": "Alert instances started per time bucket (the web page's alerts-over-time chart).",
            "tags": ["history"],
            "parameters": [
                _q("since", "Window start (default: 24 h before until).", _TIME_PARAM),
                _q("until", "Window end, exclusive (default: now).", _TIME_PARAM),
                _MATCH,
                _q(
                    "buckets",
                    f"At most this many buckets (default {DEFAULT_BUCKETS}); each is a whole number of seconds.",
                    {"type": "integer", "minimum": 1, "maximum": MAX_BUCKETS, "default": DEFAULT_BUCKETS},
                ),
            ],
            "responses": {
                "200": {
                    "description": "Counts per bucket, oldest first, empty buckets included.",
                    "content": {"application/json": {"schema": {"$ref": _REF + "Histogram"}}},
                },
                **_RESPONSES_4XX,
            },
        }
    },
}

SCHEMAS["Histogram"] = {
    "type": "object",
    "required": ["window", "bucket_seconds", "buckets"],
    "properties": {
        "window": {"type": "object", "required": ["since", "until"], "properties": {"since": _TIME, "until": _TIME}},
        "bucket_seconds": {"type": "integer", "minimum": 1},
        "buckets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["start", "started", "firing"],
                "properties": {
                    "start": _TIME,
                    "started": {"type": "integer", "description": "Instances whose startsAt is in the bucket."},
                    "firing": {"type": "integer", "description": "Of those, the ones still firing."},
                },
            },
        },
    },
}


# -- Alertmanager's read API (webhookfast.history.alertmanager_v2) ------------------------------------

_AM_TIME = {"type": "string", "format": "date-time", "examples": ["2024-05-01T10:00:00.123Z"]}
_AM_FILTER = {
    "name": "filter",
    "in": "query",
    "required": False,
    "description": 'Label matchers, all must hold; repeat the parameter for more: `alertname="x"`, '
    '`severity=~"crit.*"`, `team!="db"` (Alertmanager\'s syntax; an unquoted value and a whole '
    "`{...}` selector are accepted too; the regex rules of the history API's `match`).",
    "schema": {"type": "array", "items": {"type": "string"}},
    "style": "form",
    "explode": True,
}
_AM_RECEIVER = _q("receiver", "Only alerts whose receiver matches this regex (fully anchored).", {"type": "string"})


def _am_flag(name: str, effect: str) -> dict[str, Any]:
    return _q(name, f"Alertmanager's `{name}` flag: {effect}", {"type": "boolean", "default": True})


_AM_FLAGS = {
    "active": _am_flag("active", "every alert webhookfast knows is active, so `false` answers `[]`."),
    "silenced": _am_flag("silenced", "webhookfast silences nothing; no effect."),
    "inhibited": _am_flag("inhibited", "webhookfast inhibits nothing; no effect."),
    "unprocessed": _am_flag("unprocessed", "every alert webhookfast knows is processed; no effect."),
    "muted": _am_flag("muted", "webhookfast mutes no group; no effect."),
}
_AM_TRUNCATED = {
    "x-webhookfast-truncated": {
        "description": "Present when more alerts fire than an answer holds: the number it holds.",
        "schema": {"type": "string"},
    }
}

AM_SCHEMAS: dict[str, Any] = {
    "AmGettableAlert": {
        "type": "object",
        "description": "Alertmanager's `gettableAlert`: the latest instance firing now of one label set.",
        "required": ["labels", "annotations", "startsAt", "endsAt", "updatedAt", "fingerprint", "receivers", "status"],
        "properties": {
            "labels": _STRMAP,
            "annotations": _STRMAP,
            "startsAt": _AM_TIME,
            "endsAt": {**_AM_TIME, "description": "`0001-01-01T00:00:00.000Z` (Go's zero time) when not known."},
            "updatedAt": {**_AM_TIME, "description": "When webhookfast last received the alert."},
            "generatorURL": {"type": "string", "description": "Left out when empty, as Alertmanager does."},
            "fingerprint": _FP,
            "receivers": {
                "type": "array",
                "items": {"$ref": _REF + "AmReceiver"},
                "description": "The receiver of the last notification; empty for alerts Prometheus posted.",
            },
            "status": {
                "type": "object",
                "required": ["state", "silencedBy", "inhibitedBy"],
                "properties": {
                    "state": {"const": "active"},
                    "silencedBy": {"type": "array", "maxItems": 0},
                    "inhibitedBy": {"type": "array", "maxItems": 0},
                },
            },
        },
    },
    "AmReceiver": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
    "AmAlertGroup": {
        "type": "object",
        "required": ["labels", "receiver", "alerts"],
        "properties": {
            "labels": {**_STRMAP, "description": "The group labels of the notification's group key ({} without one)."},
            "receiver": {"$ref": _REF + "AmReceiver"},
            "alerts": {"type": "array", "items": {"$ref": _REF + "AmGettableAlert"}},
        },
    },
    "AmStatus": {
        "type": "object",
        "required": ["cluster", "config", "uptime", "versionInfo"],
        "properties": {
            "cluster": {
                "type": "object",
                "required": ["status", "peers"],
                "properties": {"status": {"const": "disabled"}, "peers": {"type": "array", "maxItems": 0}},
            },
            "config": {
                "type": "object",
                "required": ["original"],
                "properties": {
                    "original": {"type": "string", "description": "Empty: webhookfast has no routing configuration."}
                },
            },
            "uptime": _AM_TIME,
            "versionInfo": {
                "type": "object",
                "required": ["version", "revision", "branch", "buildUser", "buildDate", "goVersion"],
                "properties": {
                    "version": {"type": "string", "description": "webhookfast's version."},
                    **{k: {"type": "string"} for k in ("revision", "branch", "buildUser", "buildDate", "goVersion")},
                },
            },
        },
    },
}


def _am_get(
    operation_id: str,
    summary: str,
    description: str,
    params: list[dict[str, Any]],
    schema: dict[str, Any],
    truncates: bool = False,
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": summary, "content": {"application/json": {"schema": schema}}}
    if truncates:
        ok["headers"] = _AM_TRUNCATED
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "tags": ["alertmanager"],
            "parameters": params,
            "responses": {"200": ok, **_RESPONSES_4XX},
        }
    }


_AM_LIMIT = "At most 10,000 alerts (the lowest fingerprints); `X-Webhookfast-Truncated` says when more fire."

AM_PATHS: dict[str, Any] = {
    "/api/v2/alerts": _am_get(
        "getAlertmanagerAlerts",
        "The alerts firing now, in Alertmanager's format.",
        "Alert instances with status firing and not past their endsAt, one per label set (its latest "
        "instance), sorted by fingerprint, for Alertmanager's clients (amtool, Grafana, karma). " + _AM_LIMIT,
        [_AM_FILTER, _AM_RECEIVER, *(_AM_FLAGS[k] for k in ("active", "silenced", "inhibited", "unprocessed"))],
        {"type": "array", "items": {"$ref": _REF + "AmGettableAlert"}},
        truncates=True,
    ),
    "/api/v2/alerts/groups": _am_get(
        "getAlertmanagerAlertGroups",
        "The alerts firing now, grouped as Alertmanager notified them.",
        "The alerts of GET /api/v2/alerts grouped by receiver and by the group labels of their last "
        "notification's group key (alerts Prometheus posted: one group per receiver, labels {}). " + _AM_LIMIT,
        [_AM_FILTER, _AM_RECEIVER, *(_AM_FLAGS[k] for k in ("active", "silenced", "inhibited", "muted"))],
        {"type": "array", "items": {"$ref": _REF + "AmAlertGroup"}},
        truncates=True,
    ),
    "/api/v2/silences": _am_get(
        "getAlertmanagerSilences",
        "Silences: always none.",
        "webhookfast silences nothing; the answer is `[]` (filter matchers are checked all the same).",
        [_AM_FILTER],
        {"type": "array", "maxItems": 0},
    ),
    "/api/v2/status": _am_get(
        "getAlertmanagerStatus",
        "Alertmanager's status: webhookfast's version and uptime.",
        "What Alertmanager's clients call first (Grafana's data-source health check, amtool's version "
        "check, karma): no cluster, no configuration.",
        [],
        {"$ref": _REF + "AmStatus"},
    ),
}
