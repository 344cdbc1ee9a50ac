"""The OpenAPI 3.1 document served at ``GET /openapi.json``, in one package: ``contract`` holds the
error contract, the shared responses and headers, ingest and the operational routes; ``history``
the history API and Alertmanager's read API, which reuse the contract's error responses."""

from __future__ import annotations

from typing import Any

from webhookfast.openapi.contract import ALL_ERROR_CODES, ERROR_CODES, OPENAPI_VERSION, document

__all__ = ["ALL_ERROR_CODES", "ERROR_CODES", "OPENAPI_VERSION", "document", "served_document"]


def served_document() -> dict[str, Any]:
    """Every route the app serves: the contract's and the history part's."""
    from webhookfast.openapi.history import AM_PATHS, AM_SCHEMAS, PATHS, SCHEMAS

    return document(extra_paths={**PATHS, **AM_PATHS}, extra_schemas={**SCHEMAS, **AM_SCHEMAS})
