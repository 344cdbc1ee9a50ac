"""The OpenAPI document (python/webhookfast/openapi/): a valid OpenAPI 3.1 document that
describes every route of the app and the README's error contract, served at GET /openapi.json."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from webhookfast import openapi
from webhookfast.app import App
from webhookfast.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def doc() -> dict:
    return openapi.document()


@pytest.fixture
def app(tmp_path: Path) -> App:
    """An App as a worker builds it (the store is not opened)."""
    return App(Settings(database_url=f"sqlite:///{tmp_path}/openapi.db"))


def served_by(app: App) -> dict:
    """The document the app serves at GET /openapi.json (through its own route table)."""
    route = app.routes.get("/openapi.json")
    assert route is not None and "GET" in route.handlers, "GET /openapi.json is not routed"
    response = asyncio.run(route.handlers["GET"](None))  # type: ignore[arg-type]
    assert response.status == 200
    return orjson.loads(response.body)


def readme_error_table() -> dict[int, set[str]]:
    """README "Errors" table → {status: {codes}}."""
    table: dict[int, set[str]] = {}
    for line in README.read_text("utf-8").splitlines():
        m = re.match(r"^\|\s*(\d{3})\s*\|(.*)\|\s*$", line)
        if m:
            table[int(m.group(1))] = set(re.findall(r"`([a-z0-9_]+)`", m.group(2)))
    return table


def test_document_is_valid_openapi_3_1(doc: dict) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema
    orjson.dumps(doc)  # serialisable as served


def test_extra_paths_are_added_and_clashes_refused() -> None:
    item = {"get": {"responses": {"200": {"description": "history"}}}}
    doc = openapi.document({"/api/v1/alerts": item}, extra_schemas={"Thing": {"type": "object"}})
    assert doc["paths"]["/api/v1/alerts"] == item
    assert doc["components"]["schemas"]["Thing"] == {"type": "object"}
    validate(doc)
    with pytest.raises(ValueError):
        openapi.document({"/webhook": {"post": item["get"]}})
    # Another method of a described path joins it (GET /api/v2/alerts beside the ingest POST).
    merged = openapi.document({"/webhook": item})["paths"]["/webhook"]
    assert merged["get"] == item["get"] and "post" in merged
    with pytest.raises(ValueError):
        openapi.document(extra_schemas={"Error": {"type": "object"}})


def test_served_document_keeps_the_error_contract(app: App) -> None:
    """Merging other modules' schemas must not replace the README's Error schema."""
    served = served_by(app)
    assert served["components"]["schemas"]["Error"] == openapi.document()["components"]["schemas"]["Error"]
    assert served["components"]["responses"] == openapi.document()["components"]["responses"]


def test_an_invalid_document_is_detected(doc: dict) -> None:
    """The validator is not a no-op: a broken copy is refused."""
    broken = orjson.loads(orjson.dumps(doc))
    broken["paths"]["/webhook"]["post"]["responses"]["200"].pop("description")
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_every_app_route_and_method_is_described(app: App) -> None:
    doc = served_by(app)
    validate(doc)
    for path, route in app.routes.items():
        assert path in doc["paths"], f"route {path} ({route.name}) is missing from the OpenAPI document"
        for method in route.handlers:
            assert method.lower() in doc["paths"][path], f"{method} {path} is missing from the OpenAPI document"
    assert "get" in doc["paths"]["/openapi.json"]


def test_document_describes_nothing_the_app_does_not_serve(app: App) -> None:
    served = {path: {m.lower() for m in route.handlers} for path, route in app.routes.items()}
    for path, item in served_by(app)["paths"].items():
        methods = {k for k in item if k in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}}
        if "{" in path:  # templated paths are matched by their module (e.g. the history API), not the table
            continue
        assert path in served, f"{path} is described but not routed"
        assert methods <= served[path], f"{path}: described {methods}, served {served[path]}"


def test_error_codes_match_the_readme(doc: dict) -> None:
    table = readme_error_table()
    assert table, "README error table not found"
    assert {s: set(c) for s, c in openapi.ERROR_CODES.items()} == table
    code_enum = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    assert set(code_enum) == set().union(*table.values())
    for status in table:
        assert f"E{status}" in doc["components"]["responses"], f"no response object for {status}"


def test_ingest_operations(doc: dict) -> None:
    for path in ("/webhook", "/api/v2/alerts"):
        op = doc["paths"][path]["post"]
        body = op["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/AlertPayload"}
        responses = op["responses"]
        assert set(responses) == {"200", "400", "401", "408", "413", "415", "422", "500", "503"}
        assert responses["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Accepted"}
        assert {"bearerAuth": []} in op["security"] and {"basicAuth": []} in op["security"]
    formats = doc["components"]["schemas"]["AlertPayload"]["oneOf"]
    assert {f["$ref"].rsplit("/", 1)[1] for f in formats} == {
        "AlertmanagerWebhook",
        "PrometheusAlertList",
        "GenericAlert",
    }
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["basicAuth"] == {**schemes["basicAuth"], "type": "http", "scheme": "basic"}
    assert "text/plain" in doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


def test_payload_schemas_accept_the_captured_payloads(doc: dict, payloads_dir: Path) -> None:
    """Every real capture validates against AlertPayload (exactly one of the three formats)."""
    import jsonschema

    schema = {"$ref": "#/components/schemas/AlertPayload", "components": doc["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    files = [p for p in sorted(payloads_dir.glob("*.json")) if not p.name.endswith(".headers.json")]
    assert files
    for path in files:
        errors = list(validator.iter_errors(orjson.loads(path.read_bytes())))
        assert not errors, f"{path.name}: {errors[0].message}"


def test_served_document(sqlite_server) -> None:
    """GET /openapi.json serves the same document, as JSON, open to all, with the security headers."""
    resp = sqlite_server.get("/openapi.json")
    assert resp.status == 200, f"GET /openapi.json → {resp.status}: {resp.text[:200]}"
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers.get("x-content-type-options") == "nosniff"
    served = orjson.loads(resp.body)
    validate(served)
    assert set(openapi.document()["paths"]) <= set(served["paths"])
