"""The OpenAPI 3.1 description of webhookfast's HTTP interface (served at ``GET /openapi.json``).

Built from plain dicts (no dependency): every route of ``app.App``, the three accepted payload
formats (README "Accepted formats"), the success answer, and the error contract of
``errors.py`` (README "Errors") with every status and code. ``extra_paths`` lets other modules
(e.g. the history API) add their own path items or methods; they win over nothing here (a clash is an error).
"""

from __future__ import annotations

import copy
from typing import Any

from webhookfast._core import PAYLOAD_REASONS, SYNTAX_REASONS
from webhookfast.errors import CONTENT_REASONS

OPENAPI_VERSION = "3.1.0"

# README "Errors": status → codes. Kept here as the one machine-readable copy of that table.
ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: (*(r for r in PAYLOAD_REASONS if r in SYNTAX_REASONS), "bad_content_length", "invalid_parameter"),
    401: ("unauthorized",),
    404: ("not_found",),
    405: ("method_not_allowed",),
    408: ("request_timeout",),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    422: (*CONTENT_REASONS, "unstorable"),
    500: ("internal_error",),
    503: ("overloaded", "store_unavailable", "query_timeout", "not_ready"),
}

ALL_ERROR_CODES: tuple[str, ...] = tuple(code for codes in ERROR_CODES.values() for code in codes)

_ERROR_DESCRIPTIONS = {
    400: "The body is not JSON (or not UTF-8, nested too deep, has a duplicate key), or a bad Content-Length.",
    401: "Authentication is configured and the request lacks valid credentials (or a valid, fresh signature).",
    404: "No such route.",
    405: "The route exists but not with this method.",
    408: "The request body was not received in time.",
    413: "The body is larger than the configured limit (judged from Content-Length; a body sent anyway is dropped, never stored), or decoded it would hold more memory than the queue's byte bound (WEBHOOKFAST_QUEUE_MAX_BYTES).",
    415: "The body is not `application/json` (or `application/*+json`).",
    422: "Valid JSON, but not an acceptable alert payload (`unstorable`: one whose rows the database refuses).",
    500: "An unexpected error (details only in the server log, under the request id).",
    503: (
        "Back-pressure: queue full or rate limited, database down or too slow, a history query over "
        "its time limit, or not ready. Retry later."
    ),
}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _schemas() -> dict[str, Any]:
    time = {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 with any precision and offset, within years 0001-9999 in UTC; "
        "`0001-01-01T00:00:00Z` (Go's zero time) means unset. endsAt must not be before startsAt.",
        "examples": ["2026-01-10T10:00:00.123Z"],
    }
    string_map = {
        "type": "object",
        "additionalProperties": {"type": "string", "description": "At most WEBHOOKFAST_MAX_VALUE_BYTES bytes."},
        "propertyNames": {"maxLength": 1024},
    }
    labels = {
        **copy.deepcopy(string_map),
        "description": "Label name → value (at most WEBHOOKFAST_MAX_LABELS; names not empty, at most "
        "WEBHOOKFAST_MAX_NAME_BYTES bytes). They alone make the Prometheus fingerprint.",
        "maxProperties": 128,
        "propertyNames": {"minLength": 1, "maxLength": 1024},
        "examples": [{"alertname": "HighCPU", "instance": "server-1", "severity": "warning"}],
    }
    annotations = {
        **copy.deepcopy(string_map),
        "description": "Annotation name → value (at most WEBHOOKFAST_MAX_ANNOTATIONS).",
        "maxProperties": 128,
    }
    return {
        "Labels": labels,
        "Annotations": annotations,
        "Time": time,
        "AlertStatus": {"type": "string", "enum": ["firing", "resolved"]},
        "AlertmanagerAlert": {
            "type": "object",
            "description": "One alert of an Alertmanager webhook notification.",
            "required": ["status", "labels", "startsAt"],
            "properties": {
                "status": _ref("schemas", "AlertStatus"),
                "labels": _ref("schemas", "Labels"),
                "annotations": _ref("schemas", "Annotations"),
                "startsAt": _ref("schemas", "Time"),
                "endsAt": _ref("schemas", "Time"),
                "generatorURL": {"type": "string"},
                "fingerprint": {
                    "type": "string",
                    "pattern": "^[0-9a-fA-F]{16}$",
                    "description": "Ignored (always recomputed); a different value is counted in "
                    "webhookfast_fingerprint_mismatches_total.",
                },
            },
            "additionalProperties": True,
        },
        "AlertmanagerWebhook": {
            "type": "object",
            "title": "Alertmanager webhook (version 4)",
            "description": "What Alertmanager's webhook_configs sends. Unknown keys are ignored.",
            "required": ["alerts"],
            "properties": {
                "version": {"type": "string", "enum": ["4"]},
                "receiver": {"type": "string"},
                "status": _ref("schemas", "AlertStatus"),
                "alerts": {
                    "type": "array",
                    "maxItems": 10000,
                    "items": _ref("schemas", "AlertmanagerAlert"),
                    "description": "At most WEBHOOKFAST_MAX_ALERTS.",
                },
                "groupLabels": _ref("schemas", "Labels"),
                "commonLabels": _ref("schemas", "Labels"),
                "commonAnnotations": _ref("schemas", "Annotations"),
                "externalURL": {"type": "string"},
                "groupKey": {"type": "string"},
                "truncatedAlerts": {"type": "integer", "minimum": 0},
            },
            "additionalProperties": True,
        },
        "PrometheusAlert": {
            "type": "object",
            "description": "One alert as Prometheus posts it; firing unless endsAt has passed on arrival.",
            "required": ["labels"],
            "properties": {
                "labels": _ref("schemas", "Labels"),
                "annotations": _ref("schemas", "Annotations"),
                "startsAt": _ref("schemas", "Time"),
                "endsAt": _ref("schemas", "Time"),
                "generatorURL": {"type": "string"},
            },
            "additionalProperties": True,
        },
        "PrometheusAlertList": {
            "type": "array",
            "title": "Prometheus alert list",
            "description": "What Prometheus posts to an Alertmanager's /api/v2/alerts.",
            "maxItems": 10000,
            "items": _ref("schemas", "PrometheusAlert"),
        },
        "GenericAlert": {
            "type": "object",
            "title": "Generic single alert",
            "description": "One alert, for scripts. Without startsAt it starts at endsAt if given, else at "
            "arrival (then every post is a new instance).",
            "required": ["labels"],
            "not": {"required": ["alerts"]},
            "properties": {
                "labels": _ref("schemas", "Labels"),
                "annotations": _ref("schemas", "Annotations"),
                "status": _ref("schemas", "AlertStatus"),
                "startsAt": _ref("schemas", "Time"),
                "endsAt": _ref("schemas", "Time"),
                "generatorURL": {"type": "string"},
                "receiver": {"type": "string"},
            },
            "additionalProperties": True,
        },
        "AlertPayload": {
            "description": "Auto-detected: an array is a Prometheus alert list; an object with `alerts` an "
            "Alertmanager webhook; an object with `labels` (and no `alerts`) a generic alert.",
            "oneOf": [
                _ref("schemas", "AlertmanagerWebhook"),
                _ref("schemas", "PrometheusAlertList"),
                _ref("schemas", "GenericAlert"),
            ],
        },
        "Accepted": {
            "type": "object",
            "required": ["status", "alerts", "request_id"],
            "properties": {
                "status": {
                    "type": "string",
                    "enum": ["stored", "queued", "spooled"],
                    "description": "`stored`: committed; `queued`: accepted in memory (--ack enqueue); "
                    "`spooled`: fsynced in the local spool, committed by its replayer later.",
                },
                "alerts": {"type": "integer", "minimum": 0},
                "request_id": {"type": "string", "minLength": 1},
            },
            "additionalProperties": False,
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok"]}},
            "additionalProperties": False,
        },
        "Ready": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["ready"]},
                "database": {
                    "type": "string",
                    "enum": ["down"],
                    "description": "Present when the spool takes the traffic.",
                },
                "spool": {"type": "string", "enum": ["accepting"]},
            },
            "additionalProperties": False,
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "request_id"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string", "enum": list(ALL_ERROR_CODES)},
                        "message": {"type": "string", "description": "Short; never echoes secrets."},
                        "path": {"type": "string", "description": "JSON path of the offending value."},
                        "offset": {"type": "integer", "minimum": 0, "description": "Byte offset in the body."},
                        "request_id": {"type": "string", "minLength": 1},
                    },
                }
            },
        },
    }


def _error_schema(status: int) -> dict[str, Any]:
    """The Error schema with ``code`` narrowed to the codes of this status."""
    return {
        "allOf": [
            _ref("schemas", "Error"),
            {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"code": {"type": "string", "enum": list(ERROR_CODES[status])}},
                    }
                },
            },
        ]
    }


def _headers() -> dict[str, Any]:
    return {
        "X-Request-ID": {
            "description": "The request id (the caller's X-Request-ID when it is 1–64 characters of "
            "[A-Za-z0-9._:-], else a new one); the same as `request_id` in the body.",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
        },
        "WWW-Authenticate": {
            "description": "The accepted schemes (Bearer, Basic and/or Signature).",
            "required": True,
            "schema": {"type": "string"},
        },
        "Allow": {"description": "The methods of this route.", "required": True, "schema": {"type": "string"}},
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        },
    }


def _responses() -> dict[str, Any]:
    extra_header = {401: "WWW-Authenticate", 405: "Allow", 503: "Retry-After"}
    out: dict[str, Any] = {}
    for status in ERROR_CODES:
        headers = {"X-Request-ID": _ref("headers", "X-Request-ID")}
        if status in extra_header:
            name = extra_header[status]
            headers[name] = _ref("headers", name)
        out[f"E{status}"] = {
            "description": _ERROR_DESCRIPTIONS[status] + " Codes: " + ", ".join(ERROR_CODES[status]) + ".",
            "headers": headers,
            "content": {"application/json": {"schema": _error_schema(status)}},
        }
    return out


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _ref("responses", f"E{s}") for s in statuses}


def _ok(description: str, schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-ID": _ref("headers", "X-Request-ID")},
        "content": {media: {"schema": schema}},
    }


_REQUEST_ID_PARAM = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Kept and echoed when 1–64 characters of [A-Za-z0-9._:-]; otherwise replaced.",
    "schema": {"type": "string"},
}

# Authentication applies when configured; without it the empty requirement admits anyone.
_AUTH: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"basicAuth": []}, {}]
# Ingest routes also take a signed request: both headers together (one requirement object).
_INGEST_AUTH: list[dict[str, list[str]]] = [*_AUTH[:2], {"hmacTimestamp": [], "hmacSignature": []}, {}]


def _ingest(summary: str, operation_id: str, description: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "tags": ["ingest"],
            "security": _INGEST_AUTH,
            "parameters": [_REQUEST_ID_PARAM],
            "requestBody": {
                "required": True,
                "description": "At most WEBHOOKFAST_MAX_BODY_BYTES, JSON nested at most WEBHOOKFAST_MAX_DEPTH levels.",
                "content": {"application/json": {"schema": _ref("schemas", "AlertPayload")}},
            },
            "responses": {
                "200": _ok(
                    "Accepted: committed (`stored`), fsynced in the local spool (`spooled`), or queued with "
                    "--ack enqueue (`queued`).",
                    _ref("schemas", "Accepted"),
                ),
                **_errors(400, 401, 408, 413, 415, 422, 500, 503),
            },
        }
    }


def _get(operation_id: str, summary: str, ok: dict[str, Any], *errors: int, tag: str = "ops") -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": [tag],
            "security": _AUTH,
            "parameters": [_REQUEST_ID_PARAM],
            "responses": {"200": ok, **_errors(*errors)},
        }
    }


def _paths() -> dict[str, Any]:
    return {
        "/webhook": _ingest(
            "Receive alerts (Alertmanager webhook, Prometheus list or generic alert)",
            "postWebhook",
            "The URL for Alertmanager's webhook_configs. 200 once the alerts are committed; 503 (which "
            "Alertmanager retries) when they cannot be committed in time. A rejected request stores nothing.",
        ),
        "/api/v2/alerts": _ingest(
            "Receive alerts at the path Prometheus posts to",
            "postAlertsV2",
            "The same as POST /webhook, for a Prometheus `alerting.alertmanagers` entry.",
        ),
        "/healthz": _get(
            "getHealthz",
            "The process is up (open unless WEBHOOKFAST_PROTECT_HEALTH)",
            _ok("Up.", _ref("schemas", "Health")),
            401,
            500,
            503,
        ),
        "/readyz": _get(
            "getReadyz",
            "Can take traffic: the database answers, or the spool accepts (open unless WEBHOOKFAST_PROTECT_HEALTH)",
            _ok("Ready.", _ref("schemas", "Ready")),
            401,
            500,
            503,
        ),
        "/-/healthy": _get(
            "getAlertmanagerHealthy",
            "Alertmanager's liveness path, for probes written for Alertmanager: the same as /healthz",
            _ok("Up.", _ref("schemas", "Health")),
            401,
            500,
            503,
        ),
        "/-/ready": _get(
            "getAlertmanagerReady",
            "Alertmanager's readiness path, for probes written for Alertmanager: the same as /readyz",
            _ok("Ready.", _ref("schemas", "Ready")),
            401,
            500,
            503,
        ),
        "/metrics": _get(
            "getMetrics",
            "Prometheus metrics, merged across workers (open unless WEBHOOKFAST_PROTECT_METRICS)",
            _ok("Prometheus text exposition format 0.0.4.", {"type": "string"}, "text/plain"),
            401,
            500,
            503,
        ),
        "/openapi.json": _get(
            "getOpenapi",
            "This document",
            _ok("The OpenAPI 3.1 document.", {"type": "object"}),
            500,
            503,
            tag="meta",
        ),
    }


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("webhookfast")
    except Exception:  # not installed (e.g. running from a source tree)
        return "0.0.0"


def document(extra_paths: dict[str, Any] | None = None, extra_schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document; ``extra_paths`` (path → path item) are added to the core routes and
    ``extra_schemas`` to ``components.schemas``; an extra path item may add methods to a described
    path. A method or schema already described is an error (an extra ``Error`` must not replace
    the contract's), unless the schema's definition is identical."""
    paths = _paths()
    for path, item in (extra_paths or {}).items():
        described = paths.get(path, {})
        if set(item) & set(described):  # another method of a described path is welcome
            raise ValueError(f"path {path!r} is already described")
        paths[path] = {**described, **item}
    schemas = _schemas()
    for name, schema in (extra_schemas or {}).items():
        if name in schemas and schemas[name] != schema:
            raise ValueError(f"schema {name!r} is already described (use #/components/schemas/{name})")
        schemas[name] = schema
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "webhookfast",
            "version": _version(),
            "summary": "A fast, durable receiver for Prometheus Alertmanager webhooks, with alert history.",
            "description": 'Every error answer is `{"error": {"code", "message", "path"?, "offset"?, '
            '"request_id"}}`. Any route answers 404 (`not_found`) for an unknown path and 405 '
            "(`method_not_allowed`, with `Allow`) for a method it does not serve. webhookfast never answers "
            "429: back-pressure is a 503 with Retry-After, which Alertmanager retries.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "ingest", "description": "Alert intake"},
            {"name": "ops", "description": "Health and metrics"},
            {"name": "meta", "description": "This description"},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": _responses(),
            "headers": _headers(),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "WEBHOOKFAST_BEARER_TOKEN; Alertmanager: http_config.authorization.credentials.",
                },
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "WEBHOOKFAST_BASIC_AUTH_USER/_PASSWORD; Alertmanager: http_config.basic_auth.",
                },
                "hmacTimestamp": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Webhookfast-Timestamp",
                    "description": "Unix seconds, within WEBHOOKFAST_HMAC_MAX_SKEW_S of the server's clock. "
                    "Ingest routes only, with X-Webhookfast-Signature.",
                },
                "hmacSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Webhookfast-Signature",
                    "description": "`sha256=` + lowercase hex HMAC-SHA256(WEBHOOKFAST_HMAC_SECRET, "
                    'timestamp + "." + raw body). Ingest routes only, with X-Webhookfast-Timestamp.',
                },
            },
        },
    }
