"""Decoding a request body: the Rust core (``webhookfast._core.decode``: parse, validate, parse
times, fingerprint, keep the alerts in Rust memory) beside pure-Python references
(benches/reference.py) doing the same work:

- ``orjson``: orjson + hand-written checks + pure-Python FNV-1a fingerprints;
- ``pydantic``: a pydantic v2 model of the payload + the same fingerprints;
- ``orjson_parse_only``: ``orjson.loads`` alone: a floor no Python decoder can go below.

Bodies: small (1 alert, ~1 KB), medium (100 alerts, ~63 KB), large (1,000 alerts, ~630 KB).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import reference
from conftest import body
from webhookfast._core import Limits, decode

SIZES = {"small": 1, "medium": 100, "large": 1000}
LIMITS = Limits()


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl", ["core", "orjson", "pydantic", "orjson_parse_only"])
def test_decode(benchmark: Any, impl: str, size: str, per_call: Any) -> None:
    n = SIZES[size]
    per_call(requests=1, alerts=n)
    data = body(n)
    if impl == "core":
        result = benchmark(decode, data, LIMITS)
        assert len(result) == n
    elif impl == "orjson":
        result = benchmark(reference.decode_orjson, data)
        assert len(result) == n
    elif impl == "pydantic":
        doc, fps = benchmark(reference.decode_pydantic, data)
        assert len(fps) == n
    else:
        doc = benchmark(orjson.loads, data)
        assert len(doc["alerts"]) == n


def test_core_and_references_agree() -> None:
    """The references compute the same fingerprints as the core (so the comparison is fair)."""
    data = body(10)
    core = decode(data, LIMITS).fingerprints()
    assert [a["fingerprint"] for a in reference.decode_orjson(data)] == core
    assert reference.decode_pydantic(data)[1] == core
