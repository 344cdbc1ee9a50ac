"""Property tests of the Rust core (``webhookfast._core``) with Hypothesis.

- ``decode`` raises nothing but ``PayloadError`` (with a README code, a bounded message and an
  offset inside the body) on arbitrary bytes and on mutated real payloads;
- the fingerprint does not depend on label order and matches a reference implementation;
- round trip: valid payloads built from strategies (all three formats) decode to exactly the
  labels, annotations, times and statuses they were built from.
"""

from __future__ import annotations

import collections
import json
import math
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.alertmanager import prometheus_fingerprint
from webhookfast._core import (
    AlertNames,
    Limits,
    PayloadError,
    alert_page,
    decode,
    fingerprint,
    format_time,
    window_stats,
)

PAYLOADS = Path(__file__).resolve().parent / "fixtures" / "payloads"
FIXTURES = [p.read_bytes() for p in sorted(PAYLOADS.glob("*.json")) if not p.name.endswith(".headers.json")]
NOW_US = 1_795_800_000_000_000  # 2026-11-27, fixed: decides firing/resolved of Prometheus alerts
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

CODES = {
    "empty_body",
    "invalid_json",
    "invalid_utf8",
    "duplicate_key",
    "too_deep",
    "unknown_format",
    "unsupported_version",
    "missing_field",
    "wrong_type",
    "invalid_status",
    "invalid_time",
    "invalid_label",
    "invalid_fingerprint",
    "too_many_alerts",
    "too_many_labels",
    "too_many_annotations",
    "name_too_long",
    "value_too_long",
}

PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Round trips build whole payloads: fewer, bigger examples.
ROUND = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def decode_or_error(body: bytes, limits: Limits | None = None) -> None:
    """decode(body) succeeds or raises a well-formed PayloadError; anything else fails the test."""
    try:
        batch = decode(body, limits, NOW_US)
    except PayloadError as err:
        assert err.reason in CODES, err.reason
        assert isinstance(err.message, str) and 0 < len(err.message) <= 200, err.message
        assert str(err)
        if err.offset is not None:
            assert 0 <= err.offset <= len(body), (err.offset, len(body))
        assert err.path is None or (isinstance(err.path, str) and len(err.path) <= 1024)
        return
    assert len(batch) == batch.firing + batch.resolved
    dicts = batch.to_dicts()
    assert len(dicts) == len(batch)
    for d in dicts:
        assert len(d["fingerprint"]) == 16


# -- decode never raises anything but PayloadError ---------------------------------------------------


@PROFILE
@given(st.binary(max_size=4096))
def test_decode_arbitrary_bytes(body: bytes) -> None:
    decode_or_error(body)


@PROFILE
@given(
    st.binary(max_size=2048),
    st.builds(
        Limits,
        max_alerts=st.integers(1, 5),
        max_labels=st.integers(1, 5),
        max_annotations=st.integers(1, 5),
        max_name_bytes=st.integers(1, 16),
        max_value_bytes=st.integers(1, 16),
        max_depth=st.integers(1, 8),
    ),
)
def test_decode_arbitrary_bytes_tight_limits(body: bytes, limits: Limits) -> None:
    decode_or_error(body, limits)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


@PROFILE
@given(JSONISH)
def test_decode_arbitrary_json(value: object) -> None:
    decode_or_error(json.dumps(value).encode())


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FIXTURES)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate", "splice_token"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 16))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[i:]
        elif op == "duplicate":
            j = draw(st.integers(i, min(len(data), i + 64)))
            data[i:i] = data[i:j]
        else:
            token = draw(
                st.sampled_from(
                    [
                        b"{",
                        b"}",
                        b"[",
                        b"]",
                        b'"',
                        b",",
                        b":",
                        b"null",
                        b"\\u0000",
                        b"\\ud800",
                        b"1e999",
                        b'"alerts"',
                        b'"labels"',
                        b'"0001-01-01T00:00:00Z"',
                        b"\xff",
                        b"\xed\xa0\x80",
                        b"\x00",
                    ]
                )
            )
            data[i:i] = token
    return bytes(data)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_fixture())
def test_decode_mutated_real_payloads(body: bytes) -> None:
    decode_or_error(body)


def test_real_payloads_decode() -> None:
    for body in FIXTURES:
        batch = decode(body, None, NOW_US)
        assert len(batch) >= 1
        for d in batch.to_dicts():
            assert d["fingerprint"] == prometheus_fingerprint(d["labels"]) or batch.nul_replaced


# -- fingerprints -----------------------------------------------------------------------------------

NAME = st.text(min_size=1, max_size=24).filter(lambda s: "\x00" not in s)
VALUE = st.text(max_size=48).filter(lambda s: "\x00" not in s)
LABELS = st.dictionaries(NAME, VALUE, max_size=12)


def json_object(pairs: list[tuple[str, str]], ensure_ascii: bool) -> str:
    return (
        "{"
        + ",".join(
            f"{json.dumps(k, ensure_ascii=ensure_ascii)}:{json.dumps(v, ensure_ascii=ensure_ascii)}" for k, v in pairs
        )
        + "}"
    )


@PROFILE
@given(st.data(), LABELS, st.booleans())
def test_fingerprint_independent_of_label_order(data: st.DataObject, labels: dict[str, str], ascii_: bool) -> None:
    expected = prometheus_fingerprint(labels)
    assert fingerprint(labels) == expected
    for _ in range(3):
        order = data.draw(st.permutations(list(labels.items())))
        body = f'{{"labels":{json_object(order, ascii_)},"startsAt":"2026-01-01T00:00:00Z"}}'.encode()
        (alert,) = decode(body, None, NOW_US).to_dicts()
        assert alert["fingerprint"] == expected
        assert alert["labels"] == labels


@PROFILE
@given(LABELS, st.dictionaries(NAME, VALUE, max_size=5), st.text(max_size=30))
def test_fingerprint_ignores_annotations_and_receiver(
    labels: dict[str, str], annotations: dict[str, str], receiver: str
) -> None:
    body = json.dumps({"labels": labels, "annotations": annotations, "receiver": receiver}).encode()
    (alert,) = decode(body, None, NOW_US).to_dicts()
    assert alert["fingerprint"] == prometheus_fingerprint(labels)


def test_fingerprint_known_values() -> None:
    assert fingerprint({"alertname": "Alert1"}) == "0f8c8eae06af0c03"
    assert (
        fingerprint({"alertname": "HighCPU", "instance": "server-1", "job": "node-exporter", "severity": "warning"})
        == "47173f03a36b568e"
    )
    assert fingerprint({}) == "cbf29ce484222325"


@PROFILE
@given(LABELS.filter(bool), st.data())
def test_nul_in_a_label_value_keeps_the_original_fingerprint(labels: dict[str, str], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(labels)))
    labels = {**labels, name: labels[name] + "\x00" + "x"}
    batch = decode(json.dumps({"labels": labels}).encode(), None, NOW_US)
    (alert,) = batch.to_dicts()
    assert alert["fingerprint"] == prometheus_fingerprint(labels)
    assert alert["labels"][name] == labels[name].replace("\x00", "\ufffd")
    assert batch.nul_replaced == 1


# -- round trip -------------------------------------------------------------------------------------


@st.composite
def rfc3339(draw: st.DrawFn) -> tuple[str, int]:
    """An RFC 3339 time (any precision 0-9 digits, any offset) and its µs since the epoch, floored."""
    seconds = draw(
        st.integers(
            int((datetime(1900, 1, 2, tzinfo=timezone.utc) - EPOCH).total_seconds()),
            int((datetime(2200, 1, 1, tzinfo=timezone.utc) - EPOCH).total_seconds()),
        )
    )
    digits = draw(st.text(alphabet="0123456789", min_size=0, max_size=9))
    offset_min = draw(st.one_of(st.just(None), st.integers(-(23 * 60 + 59), 23 * 60 + 59)))
    utc = EPOCH + timedelta(seconds=seconds)
    local = utc + timedelta(minutes=offset_min or 0)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + digits
    if offset_min is None:
        text += draw(st.sampled_from(["Z", "z"])) if draw(st.booleans()) else "Z"
    else:
        sign = "-" if offset_min < 0 else "+"
        text += f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    micros = int(digits[:6].ljust(6, "0")) if digits else 0
    return text, seconds * 1_000_000 + micros


@st.composite
def alert_spec(draw: st.DrawFn) -> dict:
    starts, starts_us = draw(rfc3339())
    ends = draw(st.one_of(st.none(), rfc3339(), st.just(("0001-01-01T00:00:00Z", None))))
    if ends is not None and ends[1] is not None and ends[1] < starts_us:
        # endsAt before startsAt is refused (tests/test_hostile_rows.py): keep the pair ordered.
        (starts, starts_us), ends = ends, (starts, starts_us)
    return {
        "labels": draw(LABELS),
        "annotations": draw(st.dictionaries(NAME, VALUE, max_size=6)),
        "status": draw(st.sampled_from(["firing", "resolved"])),
        "startsAt": starts,
        "starts_us": starts_us,
        "endsAt": None if ends is None else ends[0],
        "ends_us": None if ends is None else ends[1],
        "generatorURL": draw(st.one_of(st.none(), VALUE)),
    }


def wire(spec: dict, keys: tuple[str, ...]) -> dict:
    out = {k: spec[k] for k in keys if spec.get(k) is not None}
    return out


def check_alert(got: dict, spec: dict, status: str) -> None:
    assert got["labels"] == spec["labels"]
    assert got["annotations"] == spec["annotations"]
    assert got["starts_at_us"] == spec["starts_us"], (spec["startsAt"], got["starts_at_us"], spec["starts_us"])
    assert got["ends_at_us"] == spec["ends_us"], (spec["endsAt"], got["ends_at_us"], spec["ends_us"])
    assert got["status"] == status
    assert got["generator_url"] == (spec["generatorURL"] or "")
    assert got["fingerprint"] == prometheus_fingerprint(spec["labels"])


@ROUND
@given(st.lists(alert_spec(), min_size=0, max_size=5), st.booleans(), st.text(max_size=20))
def test_round_trip_alertmanager(specs: list[dict], ascii_: bool, receiver: str) -> None:
    body = {
        "version": "4",
        "status": "firing",
        "receiver": receiver,
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "alerts": [
            {
                **wire(s, ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL")),
                "fingerprint": prometheus_fingerprint(s["labels"]),
            }
            for s in specs
        ],
    }
    batch = decode(json.dumps(body, ensure_ascii=ascii_).encode(), None, NOW_US)
    assert batch.format == "alertmanager" and batch.receiver == receiver.replace(
        "\x00", "\ufffd"
    )  # README: NUL → U+FFFD
    assert batch.fingerprint_mismatches == 0
    got = batch.to_dicts()
    assert len(got) == len(specs)
    for g, s in zip(got, specs, strict=True):
        check_alert(g, s, s["status"])


@ROUND
@given(st.lists(alert_spec(), min_size=0, max_size=5))
def test_round_trip_prometheus(specs: list[dict]) -> None:
    body = [wire(s, ("labels", "annotations", "startsAt", "endsAt", "generatorURL")) for s in specs]
    batch = decode(json.dumps(body).encode(), None, NOW_US)
    assert batch.format == "prometheus"
    got = batch.to_dicts()
    assert len(got) == len(specs)
    for g, s in zip(got, specs, strict=True):
        resolved = s["ends_us"] is not None and s["ends_us"] <= NOW_US
        check_alert(g, s, "resolved" if resolved else "firing")


@ROUND
@given(alert_spec(), st.booleans())
def test_round_trip_generic(spec: dict, with_status: bool) -> None:
    keys = ("labels", "annotations", "startsAt", "endsAt", "generatorURL") + (("status",) if with_status else ())
    batch = decode(json.dumps(wire(spec, keys)).encode(), None, NOW_US)
    assert batch.format == "generic"
    (got,) = batch.to_dicts()
    if with_status:
        status = spec["status"]
    else:
        status = "resolved" if spec["ends_us"] is not None and spec["ends_us"] <= NOW_US else "firing"
    check_alert(got, spec, status)


@PROFILE
@given(LABELS)
def test_generic_without_starts_at_uses_arrival_time(labels: dict[str, str]) -> None:
    (got,) = decode(json.dumps({"labels": labels}).encode(), None, NOW_US).to_dicts()
    assert got["starts_at_us"] == NOW_US and got["status"] == "firing" and got["ends_at_us"] is None


@PROFILE
@given(LABELS.filter(bool), st.data())
def test_rejected_labels_report_their_path(labels: dict[str, str], data: st.DataObject) -> None:
    """A bad value deep in a valid payload is reported at its JSON path."""
    name = data.draw(st.sampled_from(sorted(labels)))
    pairs = [(k, v) for k, v in labels.items()]
    text = "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v) if k != name else '42'}" for k, v in pairs) + "}"
    body = ('{"alerts":[{"status":"firing","labels":' + text + ',"startsAt":"2026-01-01T00:00:00Z"}]}').encode()
    try:
        decode(body, None, NOW_US)
    except PayloadError as err:
        assert err.reason == "wrong_type"
        assert err.path is not None and err.path.startswith("alerts[0].labels")
        assert err.offset is not None and 0 <= err.offset <= len(body)
    else:
        raise AssertionError("a number as a label value was accepted")


def test_nul_replacement_never_duplicates_a_label_name() -> None:
    """``a\\u0000`` and ``a\\ufffd`` are different labels; after NUL → U+FFFD they would be one name
    twice: the stored label set would be a JSON object with a duplicate key (jsonb keeps the last,
    SQLite both — the stores diverge). Either refuse the alert or store distinct names."""
    from webhookfast._core import RowEncoder

    body = b'{"labels":{"alertname":"x","a\\u0000":"1","a\\ufffd":"2"}}'
    try:
        batch = decode(body, None, NOW_US)
    except PayloadError as err:
        assert err.reason == "invalid_label"
        return

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict:
        names = [k for k, _ in pairs]
        assert len(names) == len(set(names)), f"duplicate names in a stored object: {names}"
        return dict(pairs)

    _, label_sets, _, _ = RowEncoder().row_tuples([batch])
    for row in label_sets:
        json.loads(row[1], object_pairs_hook=no_duplicates)
    (alert,) = batch.to_dicts()
    assert len(alert["labels"]) == 3, alert["labels"]


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MIN_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
_MAX_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


@given(st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.integers(_MIN_US - 2, _MAX_US + 2)))
def test_format_time_matches_datetime_and_clamps(us: int) -> None:
    """The history API's timestamps: what datetime says inside years 0001..9999, the nearest end
    outside (PostgreSQL stores years up to 294276)."""
    clamped = min(max(us, _MIN_US), _MAX_US)
    expected = (_EPOCH + timedelta(microseconds=clamped)).isoformat(timespec="microseconds")
    assert format_time(us) == expected.replace("+00:00", "Z")
    assert format_time(None) is None


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(
    st.lists(
        st.tuples(
            _I64,
            _I64,
            st.sampled_from(["firing", "resolved"]),
            st.none() | _I64,
            _I64,
            _I64,
            st.integers(0, 2**31 - 1),
            _TEXT,
            st.dictionaries(_TEXT, _TEXT, max_size=6),
            st.none() | st.dictionaries(_TEXT, _TEXT, max_size=6),
            st.booleans(),
        ),
        max_size=5,
    ),
    st.none() | _TEXT,
)
def test_alert_page_is_what_orjson_gives_for_the_dicts(rows: list[tuple], cursor: str | None) -> None:
    """GET /api/v1/alerts pages are written by Rust (webhookfast._core.alert_page); the bytes must be
    those of the dicts the handler used to build, dumped by orjson with sorted keys. Labels and
    annotations are objects of strings (all the decoder stores); anything else is refused."""
    import orjson

    stored = []
    expected = []
    for fp, starts, status, ends, first, last, n, receiver, labels, ann, ascii_ in rows:
        # Stored JSON text in any key order and either escaping style (SQLite keeps what was written).
        labels_text = json.dumps(dict(reversed(list(labels.items()))), ensure_ascii=ascii_)
        ann_text = None if ann is None else json.dumps(ann, ensure_ascii=ascii_)
        stored.append((fp, starts, status, ends, first, last, n, receiver, labels_text, ann_text))
        expected.append(
            {
                "fingerprint": format(fp & 0xFFFF_FFFF_FFFF_FFFF, "016x"),
                "labels": labels,
                "annotations": {} if ann is None else ann,
                "status": status,
                "starts_at": format_time(starts),
                "ends_at": format_time(ends),
                "first_seen": format_time(first),
                "last_seen": format_time(last),
                "notifications": n,
                "receiver": receiver,
            }
        )
    want = orjson.dumps({"alerts": expected, "next_cursor": cursor}, option=orjson.OPT_SORT_KEYS)
    assert alert_page(stored, cursor) == want
    if stored:
        bad = (*stored[0][:9], '{"n": 1.5}')
        with pytest.raises(ValueError, match="annotations are not a JSON object of strings"):
            alert_page([bad])


def _pg_array(oid: int, elems: list[bytes]) -> bytes:
    """What PostgreSQL's array_send writes for a one-dimensional array without NULLs."""
    if not elems:
        return struct.pack(">iiI", 0, 0, oid)
    head = struct.pack(">iiIii", 1, 0, oid, len(elems), 1)
    return head + b"".join(struct.pack(">i", len(e)) + e for e in elems)


def _int8s(oid: int, values: list[int]) -> bytes | None:
    # An aggregate over no rows is NULL (None), not an empty array; accept both.
    return _pg_array(oid, [struct.pack(">q", v) for v in values]) if values else None


def _window_stats_reference(
    started: list[int],
    resolved: list[tuple[str, int, int, int]],
    named: dict[int, str],
    unnamed: int | None,
    top: int,
    min_changes: int,
) -> tuple[list, list, list]:
    """The SQL of api/sql.py (what SQLite runs) in Python, over the rows window_stats gets."""
    firings = collections.Counter(started)
    top_firing = sorted(firings.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    resolutions = collections.Counter(r[1] for r in resolved)
    changes = [(fp, firings[fp] + resolutions[fp], firings[fp]) for fp in firings.keys() | resolutions.keys()]
    flaps = sorted((c for c in changes if c[1] >= min_changes), key=lambda c: (-c[1], c[0]))
    by_name: dict[str, list[int]] = collections.defaultdict(list)
    for _, fp, starts, ends in resolved:
        if fp != unnamed:
            by_name[named[fp]].append(ends - starts)

    def rank(p: int, n: int) -> int:
        return math.ceil(p * n / 100)  # nearest rank, in exact arithmetic

    ttr = []
    for name, durations in by_name.items():
        durations.sort()
        n = len(durations)
        ttr.append((name, n, durations[rank(50, n) - 1], durations[rank(90, n) - 1], durations[-1]))
    ttr.sort(key=lambda r: (-r[3], r[0].encode()))
    return top_firing, flaps[:top], ttr[:top]


_FP = st.integers(-4, 4) | _I64  # few distinct values, so that counts and ties happen
_WHEN = st.integers(-(2**40), 2**40)


@given(
    st.lists(_FP, max_size=40),
    st.lists(st.tuples(st.sampled_from(["HighCPU", "DiskFull", "a", "Z", "é", ""]), _FP, _WHEN, _WHEN), max_size=40),
    st.integers(1, 6),
    st.integers(2, 5),
)
def test_window_stats_is_the_sql_definition(
    started: list[int], resolved: list[tuple[str, int, int, int]], top: int, min_changes: int
) -> None:
    """GET /api/v1/stats on PostgreSQL aggregates the window's rows in Rust
    (webhookfast._core.window_stats); this is the SQL of api/sql.py (what SQLite runs) in Python:
    orders, ties (signed fingerprints, alertname bytes) and nearest-rank percentiles included."""
    # Every resolved fingerprint gets one alertname (the first one drawn for it), known to the map
    # or fetched by this request, except one that has none: the SQL's join with label_sets drops
    # such instances from time to resolve.
    named = {fp: name for name, fp, _, _ in reversed(resolved)}
    unnamed = resolved[0][1] if len(named) > 1 else None
    pairs = [(fp, name) for fp, name in named.items() if fp != unnamed]
    names = AlertNames()
    names.add(pairs[::2])
    fetched = pairs[1::2]
    assert names.missing(_int8s(20, [r[1] for r in resolved])) == sorted(
        {fp for fp, _ in fetched} | ({unnamed} if unnamed is not None else set())
    )
    args = (
        _int8s(20, started),
        _int8s(20, [r[1] for r in resolved]),
        _int8s(1184, [r[2] for r in resolved]),
        _int8s(1184, [r[3] for r in resolved]),
        names,
        fetched,
    )
    assert window_stats(*args, top, min_changes) == _window_stats_reference(
        started, resolved, named, unnamed, top, min_changes
    )
    # The empty array (ndim 0) reads as nothing, like NULL.
    assert window_stats(_pg_array(20, []), None, None, None, names, [], top, min_changes) == ([], [], [])


def test_window_stats_refuses_malformed_arrays() -> None:
    one = _pg_array(20, [struct.pack(">q", 1)])
    when = _pg_array(1184, [struct.pack(">q", 1)])
    names = AlertNames()
    with pytest.raises(ValueError, match="element type 1184, expected 20"):
        window_stats(when, None, None, None, names, [], 10, 2)
    with pytest.raises(ValueError, match="truncated"):
        window_stats(one[:-1], None, None, None, names, [], 10, 2)
    with pytest.raises(ValueError, match="truncated"):
        names.missing(one[:-1])
    with pytest.raises(ValueError, match="differ in length"):
        window_stats(None, one, when, None, names, [], 10, 2)


def test_alert_names_keep_no_more_than_their_capacity() -> None:
    names = AlertNames(capacity=2)
    names.add([(1, "a"), (2, "b"), (3, "c")])
    # Full: the third name is not kept, and none of the first two is ever dropped.
    assert len(names) == 2 and names.missing(_int8s(20, [1, 2, 3])) == [3]


def test_window_stats_of_a_wide_window() -> None:
    """Arrays past 1 MiB are aggregated with the GIL released (what the history API runs on its own
    thread): the same answer as the definition."""
    import random

    rnd = random.Random(5)
    fps = [rnd.getrandbits(64) - (1 << 63) for _ in range(3000)]
    started = [rnd.choice(fps) for _ in range(30_000)]
    resolved = []
    for _ in range(30_000):
        start = rnd.randrange(-(2**40), 2**40)
        resolved.append(("", rnd.choice(fps), start, start + rnd.randrange(10**10)))
    named = {fp: f"Alert{fp % 37}" for fp in fps}
    names = AlertNames()
    names.add(list(named.items())[:2000])
    fetched = list(named.items())[2000:]
    args = [
        _int8s(20, started),
        _int8s(20, [r[1] for r in resolved]),
        _int8s(1184, [r[2] for r in resolved]),
        _int8s(1184, [r[3] for r in resolved]),
    ]
    assert sum(len(a) for a in args if a is not None) >= 1 << 20
    got = window_stats(*args, names, fetched, 25, 20)
    assert got == _window_stats_reference(started, resolved, named, None, 25, 20)
    assert got[0] and got[1] and got[2]
