"""Schemathesis against the live server: every operation of the OpenAPI document gets generated
requests, valid (positive mode) and invalid (negative mode), and every answer must be no 5xx, a
documented status, with the documented content type, headers and body schema.

The document is the one the server serves at /openapi.json (falling back to
``openapi.document()`` while that route is not wired in; tests/test_openapi.py checks it is).
Bounded: 50 examples per operation and mode, no deadline.

The operations are driven with Hypothesis directly (``APIOperation.as_strategy``) rather than
``schemathesis.pytest.from_fixture``: that integration reads ``Function._nodeid``, which pytest 9.2
no longer has (schemathesis 4.32).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.servers import ServerProcess
from webhookfast import openapi

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 50


def served_document() -> dict:
    """The document the app serves at GET /openapi.json, built in-process for the parametrization
    (core routes and the history API alike)."""
    import asyncio
    import tempfile

    import orjson
    from webhookfast.app import App
    from webhookfast.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        app = App(Settings(database_url=f"sqlite:///{tmp}/doc.db"))
        route = app.routes.get("/openapi.json")
        if route is None:
            return openapi.document()
        return orjson.loads(asyncio.run(route.handlers["GET"](None)).body)  # type: ignore[arg-type]


# (path, METHOD, mode): negative mode only where there is something to make invalid (a body or
# constrained parameters); the core GET operations have only an optional free-form header.
def _negatable(op: dict) -> bool:
    return "requestBody" in op or any(p.get("in") == "query" for p in op.get("parameters", []))


CASES = [
    (path, method.upper(), mode)
    for path, item in served_document()["paths"].items()
    for method, op in item.items()
    if method in {"get", "post", "put", "patch", "delete"}
    for mode in ([GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if _negatable(op) else [GenerationMode.POSITIVE])
]


def load_schema(server: ServerProcess) -> schemathesis.BaseSchema:
    resp = server.get("/openapi.json")
    if resp.status == 200:
        return schemathesis.openapi.from_url(server.url + "/openapi.json")
    return schemathesis.openapi.from_dict(served_document())


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    """One server for the whole module (the schemathesis runs only add rows)."""
    from support.servers import ServerProcess

    tmp = tmp_path_factory.mktemp("schemathesis")
    with ServerProcess(f"sqlite:///{tmp}/wf.db", tmp / "logs", name="webhookfast-schemathesis") as server:
        yield server


@pytest.mark.parametrize(("path", "method", "mode"), CASES, ids=[f"{m} {p} {g.value}" for p, m, g in CASES])
def test_operation_conforms(live_server: ServerProcess, path: str, method: str, mode: GenerationMode) -> None:
    operation = load_schema(live_server)[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        print_blob=True,
        # No shrinking: against a live server it can take minutes; the failing example is printed as is.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=live_server.url, checks=CHECKS, timeout=15)

    try:
        run()
    finally:
        assert live_server.is_running(), "the server died"
    assert live_server.get("/healthz").status == 200
