"""The Rust binary-COPY encoder (and the unnest path) against what a real PostgreSQL reads back.

Payloads are bytes (captured from Alertmanager/Prometheus, or built here), decoded by the Rust core,
encoded with ``RowEncoder.pg_copy`` and written by ``PostgresStore.write``; every stored column is
compared with ``Batch.to_dicts()`` (and, for the edge cases, with values computed independently).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.postgres import read_tables
from webhookfast._core import Batch, RowEncoder, decode, fingerprint

pytestmark = pytest.mark.postgres

PAYLOADS = Path(__file__).resolve().parent / "fixtures" / "payloads"
RECEIVED_AT_US = 1_795_000_000_123_456  # 2026-11-19, fixed so that Prometheus payloads classify alike


@pytest.fixture(autouse=True, params=["copy", "unnest"])
def merge(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every round trip runs through both merge paths of PostgresStore: binary COPY into staging
    and webhookfast_flush with the binary arrays of pg_arrays (what every flush uses)."""
    global MERGE
    MERGE = request.param
    yield request.param
    MERGE = "copy"


MERGE = "copy"


def write(url: str, batches: Sequence[Batch]) -> None:
    from webhookfast.storage.postgres import PostgresStore

    async def run() -> None:
        store = PostgresStore(url, merge=MERGE)
        await store.open()
        try:
            await store.write(batches)
        finally:
            await store.close()

    asyncio.run(run())


def am_payload(alerts: list[dict[str, object]], receiver: str = "pg-copy", group_key: str = "{}:{}") -> bytes:
    body = {
        "receiver": receiver,
        "status": "firing",
        "alerts": alerts,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def alert(
    labels: dict[str, str],
    starts_at: str,
    *,
    status: str = "firing",
    ends_at: str = "0001-01-01T00:00:00Z",
    annotations: dict[str, str] | None = None,
    generator_url: str = "http://prom/graph",
) -> dict[str, object]:
    return {
        "status": status,
        "labels": labels,
        "annotations": annotations or {},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": generator_url,
        "fingerprint": fingerprint(labels) if "\x00" not in "".join(labels.values()) else "",
    }


def merge_state(prev: tuple, nxt: tuple) -> tuple:  # type: ignore[type-arg]
    """(status, ends_at, status_from_ends) after a later delivery: README's "A resolved instance
    stays resolved" (explicit statuses) and Alertmanager's merge (statuses derived from endsAt)."""
    (ps, pe, pf), (ns, ne, nf) = prev, nxt
    if ps == "resolved" and pf and ns == "firing" and nf and (ne is None or pe is None or ne > pe):
        return nxt
    if ns == "resolved":
        return nxt
    if ps == "resolved":
        return prev
    if pf and nf:
        return ns, None if pe is None or ne is None else max(pe, ne), nf
    return nxt


def expected_rows(batches: Sequence[Batch]) -> dict[str, dict[tuple, dict[str, object]]]:
    """What the three tables must hold after one flush of ``batches`` into an empty database,
    from ``to_dicts`` (the decoder's view), independently of the encoder."""
    label_sets: dict[tuple, dict[str, object]] = {}
    events: dict[tuple, dict[str, object]] = {}
    alerts: dict[tuple, dict[str, object]] = {}
    from_ends_state: dict[tuple, bool] = {}
    for batch in batches:
        seen_in_batch: set[tuple] = set()
        for d in batch.to_dicts():
            fp = d["fingerprint"]
            labels = d["labels"]
            label_sets.setdefault(
                (fp,),
                {
                    "fingerprint": fp,
                    "labels": labels,
                    "alertname": labels.get("alertname", ""),
                    "severity": labels.get("severity", ""),
                },
            )
            events.setdefault(
                (fp, d["starts_at_us"], d["status"]),
                {
                    "fingerprint": fp,
                    "starts_at": d["starts_at_us"],
                    "status": d["status"],
                    "ends_at": d["ends_at_us"],
                    "received_at": batch.received_at_us,
                    "receiver": batch.receiver,
                    "group_key": batch.group_key,
                    "source": batch.format,
                    "generator_url": d["generator_url"],
                    "annotations": d["annotations"],
                },
            )
            key = (fp, d["starts_at_us"])
            from_ends = batch.format == "prometheus"
            if key in alerts:
                a = alerts[key]
                if key not in seen_in_batch:
                    a["notifications"] += 1
                a["status"], a["ends_at"], from_ends_state[key] = merge_state(
                    (a["status"], a["ends_at"], from_ends_state[key]), (d["status"], d["ends_at_us"], from_ends)
                )
                a["last_seen"] = max(a["last_seen"], batch.received_at_us)
                a["receiver"] = batch.receiver
            else:
                from_ends_state[key] = from_ends
                alerts[key] = {
                    "fingerprint": fp,
                    "starts_at": d["starts_at_us"],
                    "status": d["status"],
                    "ends_at": d["ends_at_us"],
                    "first_seen": batch.received_at_us,
                    "last_seen": batch.received_at_us,
                    "notifications": 1,
                    "receiver": batch.receiver,
                }
            seen_in_batch.add(key)
    return {"label_sets": label_sets, "alert_events": events, "alerts": alerts}


def assert_stored(url: str, batches: Sequence[Batch]) -> dict[str, list[dict[str, object]]]:
    got = read_tables(url)
    want = expected_rows(batches)
    for table, key_cols in (
        ("label_sets", ("fingerprint",)),
        ("alert_events", ("fingerprint", "starts_at", "status")),
        ("alerts", ("fingerprint", "starts_at")),
    ):
        got_by_key = {tuple(r[c] for c in key_cols): r for r in got[table]}
        assert got_by_key.keys() == want[table].keys(), table
        for key, row in want[table].items():
            assert got_by_key[key] == row, (table, key)
    return got


def test_counts_match_the_encoder(pg_url: str) -> None:
    batches = [decode((PAYLOADS / "firing_largest.json").read_bytes(), received_at_us=RECEIVED_AT_US)]
    copy = RowEncoder().pg_copy(batches)
    for stream in (copy.label_sets, copy.events, copy.alerts):
        assert stream.startswith(b"PGCOPY\n\xff\r\n\x00")  # binary COPY signature
        assert stream.endswith(b"\xff\xff")  # trailer
    write(pg_url, batches)
    got = assert_stored(pg_url, batches)
    assert (len(got["label_sets"]), len(got["alert_events"]), len(got["alerts"])) == (
        copy.label_set_rows,
        copy.event_rows,
        copy.alert_rows,
    )


@pytest.mark.parametrize(
    "name", sorted(p.name for p in PAYLOADS.glob("*.json") if not p.name.endswith(".headers.json"))
)
def test_captured_payloads_round_trip(pg_url: str, name: str) -> None:
    batch = decode((PAYLOADS / name).read_bytes(), received_at_us=RECEIVED_AT_US)
    assert len(batch) > 0
    write(pg_url, [batch])
    assert_stored(pg_url, [batch])


def test_all_captured_payloads_in_one_flush(pg_url: str) -> None:
    batches = [
        decode(p.read_bytes(), received_at_us=RECEIVED_AT_US + i)
        for i, p in enumerate(sorted(PAYLOADS.glob("*.json")))
        if not p.name.endswith(".headers.json")
    ]
    write(pg_url, batches)
    assert_stored(pg_url, batches)


def test_nul_in_label_value_is_stored_as_replacement_char(pg_url: str) -> None:
    batch = decode((PAYLOADS / "firing_edge_nul.json").read_bytes(), received_at_us=RECEIVED_AT_US)
    assert batch.fingerprints() == ["50005477a8757573"]  # Alertmanager's, from the original bytes
    assert batch.nul_replaced == 1
    write(pg_url, [batch])
    got = assert_stored(pg_url, [batch])
    (ls,) = got["label_sets"]
    assert ls["fingerprint"] == "50005477a8757573"
    assert ls["labels"] == {"alertname": "Nul", "v": "a\ufffdb\x01c\x1f"}
    assert got["alert_events"][0]["fingerprint"] == "50005477a8757573"


def test_unicode_labels_and_annotations(pg_url: str) -> None:
    labels = {
        "alertname": "Température élevée ⚠️",
        "team": "团队-存储",
        "rtl": "שלום עולם",
        "combining": "e\u0301",  # not normalised: differs from "é"
        "emoji": "🔥👩‍💻",
        "quotes": "\"double\" 'single' \\backslash <b>&amp;</b>",
        "controls": "\x01\x1f\t\n\u2028\u2029",
        "astral": "\U0001d11e\U0010fffd",
        "severity": "critique",
    }
    annotations = {"description": "Ligne 1\nLigne 2 — «citation» ✅", "ключ": "значение"}
    body = am_payload(
        [
            alert(
                labels,
                "2026-11-27T20:07:30.543223Z",
                annotations=annotations,
                generator_url="http://prom/graph?g0.expr=up%7B%7D&é=1",
            )
        ],
        receiver="récepteur 📟",
        group_key='{}:{alertname="Température élevée ⚠️"}',
    )
    batch = decode(body, received_at_us=RECEIVED_AT_US)
    assert batch.fingerprints() == [fingerprint(labels)]
    write(pg_url, [batch])
    got = assert_stored(pg_url, [batch])
    assert got["label_sets"][0]["labels"] == labels
    assert got["label_sets"][0]["alertname"] == "Température élevée ⚠️"
    assert got["label_sets"][0]["severity"] == "critique"
    assert got["alert_events"][0]["annotations"] == annotations
    assert got["alert_events"][0]["receiver"] == "récepteur 📟"
    assert got["alert_events"][0]["generator_url"] == "http://prom/graph?g0.expr=up%7B%7D&é=1"


_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def expected_us(text: str) -> int:
    """Independent expectation: whole seconds, plus the fraction floored to microseconds."""
    m = _RFC3339.match(text)
    assert m, text
    y, mo, d, h, mi, s, frac, off = m.groups()
    tz = timezone.utc
    if off != "Z":
        sign = -1 if off[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(off[1:3]), minutes=int(off[4:6])))
    dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=tz)
    seconds = (dt - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(seconds=1)
    return seconds * 1_000_000 + int(((frac or "") + "000000")[:6])


MAX_US = expected_us("9999-12-31T23:59:59.999999999Z")


@pytest.mark.parametrize(
    ("starts_at", "anchor_us"),
    [
        # year 0001 (just after Go's zero time, which means "not ended" only for endsAt)
        ("0001-01-01T00:00:01Z", -62135596799_000000),
        ("0001-01-01T00:00:00.000001Z", -62135596800_000000 + 1),
        # year 9999, nanoseconds floored
        ("9999-12-31T23:59:59.999999999Z", 253402300799_999999),
        # before 1970: flooring goes towards the past
        ("1969-12-31T23:59:59.9999999Z", -1),
        ("1969-12-31T23:59:59.0000001Z", -1_000000),
        ("1900-01-01T00:00:00.123456789+05:30", None),
        ("1970-01-01T00:00:00Z", 0),
        # nanosecond precision and offsets
        ("2026-11-27T20:07:30.543223999Z", None),
        ("2026-11-28T00:09:21.835-02:00", None),
        ("2026-11-28T00:09:21.8+05:30", None),
    ],
)
def test_extreme_and_precise_timestamps(pg_url: str, starts_at: str, anchor_us: int | None) -> None:
    want_us = expected_us(starts_at)
    if anchor_us is not None:
        assert want_us == anchor_us
    labels = {"alertname": "Times", "case": starts_at}
    body = am_payload(
        [
            alert(labels, starts_at),
            alert(labels, starts_at, status="resolved", ends_at="9999-12-31T23:59:59.999999999Z"),
        ]
    )
    batch = decode(body, received_at_us=RECEIVED_AT_US)
    write(pg_url, [batch])
    got = assert_stored(pg_url, [batch])
    firing, resolved = got["alert_events"]
    assert firing["starts_at"] == resolved["starts_at"] == want_us
    assert (firing["status"], firing["ends_at"]) == ("firing", None)
    assert (resolved["status"], resolved["ends_at"]) == ("resolved", MAX_US)
    (current,) = got["alerts"]
    assert current["status"] == "resolved" and current["notifications"] == 1
    assert current["ends_at"] == MAX_US


def test_empty_label_set(pg_url: str) -> None:
    batch = decode(am_payload([alert({}, "2026-11-27T20:07:30Z")]), received_at_us=RECEIVED_AT_US)
    assert batch.fingerprints() == ["cbf29ce484222325"]
    write(pg_url, [batch])
    got = assert_stored(pg_url, [batch])
    assert got["label_sets"] == [{"fingerprint": "cbf29ce484222325", "labels": {}, "alertname": "", "severity": ""}]
    assert got["alert_events"][0]["annotations"] == {}


def test_large_label_set(pg_url: str) -> None:
    # 128 labels (the default limit) with 64 KiB values: an 8 MiB jsonb, well past TOAST thresholds
    labels = {f"label_{i:03d}": (chr(ord("a") + i % 26) * 65536) for i in range(127)}
    labels["alertname"] = "Big"
    annotations = {f"a{i}": "é" * 32768 for i in range(4)}  # 64 KiB of UTF-8 each
    batch = decode(
        am_payload([alert(labels, "2026-11-27T20:07:30Z", annotations=annotations)]), received_at_us=RECEIVED_AT_US
    )
    write(pg_url, [batch])
    got = assert_stored(pg_url, [batch])
    assert got["label_sets"][0]["labels"] == labels
    assert got["alert_events"][0]["annotations"] == annotations


def test_many_alerts_many_batches(pg_url: str) -> None:
    # Several requests in one flush, overlapping alerts, both states: exercises collapse + order.
    batches = []
    for r in range(6):
        alerts = [
            alert(
                {"alertname": f"A{i % 5}", "instance": f"h{i}", "severity": "warning"},
                f"2026-11-27T20:{i % 60:02d}:00Z",
                status="resolved" if (r + i) % 4 == 0 else "firing",
                ends_at="2026-11-27T21:00:00Z" if (r + i) % 4 == 0 else "0001-01-01T00:00:00Z",
            )
            for i in range(r * 40, r * 40 + 120)
        ]
        batches.append(decode(am_payload(alerts, receiver=f"r{r}"), received_at_us=RECEIVED_AT_US + r))
    write(pg_url, batches)
    assert_stored(pg_url, batches)
