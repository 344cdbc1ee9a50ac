"""Alertmanager's read API (v2) over webhookfast's store, so that clients written for Alertmanager
(amtool, Grafana's Alertmanager data source, karma) can read the alerts firing now.

* ``GET /api/v2/alerts``: the alert instances firing now (status firing and not past their endsAt,
  the history API's rule) as Alertmanager's ``gettableAlerts``, one per label set (its latest
  instance), sorted by fingerprint as Alertmanager sorts them, at most ``max_alerts`` of them.
* ``GET /api/v2/alerts/groups``: the same alerts grouped by receiver and by the group labels
  Alertmanager put in the notification's group key.
* ``GET /api/v2/silences``: always ``[]`` (webhookfast silences nothing).
* ``GET /api/v2/status``: webhookfast's version and uptime, no cluster, no configuration.

Query parameters are Alertmanager's: ``filter`` (repeated label matchers, all must hold),
``receiver`` (a fully anchored regex), ``active``, ``silenced``, ``inhibited``, ``unprocessed``
(``muted`` on groups). webhookfast only sees notified alerts, which are all active, never
silenced, inhibited, unprocessed or muted, so ``active=false`` answers ``[]`` and the other flags
change nothing. Unknown parameters are refused (a misspelt filter must not answer everything).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import orjson

from webhookfast._core import __version__
from webhookfast._core import fingerprint_from_int as format_fingerprint
from webhookfast.errors import read_errors
from webhookfast.history.params import MAX_MATCHERS, Matcher, MatcherSyntaxError, bad, parse_selector
from webhookfast.history.sql import GROUP_KEY, RECEIVER, Dialect, Query, dialect_of, pg_anchored
from webhookfast.http import Context, Response
from webhookfast.storage.readers import Reader

ALERTS_PATH = "/api/v2/alerts"
GROUPS_PATH = "/api/v2/alerts/groups"
SILENCES_PATH = "/api/v2/silences"
STATUS_PATH = "/api/v2/status"

# Alertmanager has no paging: an answer holds at most this many alerts (the lowest fingerprints;
# the header below says when some were left out). The webhook's own default alerts per request.
MAX_ALERTS = 10_000
TRUNCATED_HEADER = "x-webhookfast-truncated"
MAX_QUERY_FIELDS = 64

# Go's zero time, which Alertmanager writes for "no end known"; times as Alertmanager prints them
# (go-openapi's RFC 3339 with milliseconds).
ZERO_TIME = "0001-01-01T00:00:00.000Z"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_ALERT_FLAGS = ("active", "silenced", "inhibited", "unprocessed")
_GROUP_FLAGS = ("active", "silenced", "inhibited", "muted")
# Alertmanager 0.25's matcher syntax also takes an unquoted value: name op rest-of-string.
_UNQUOTED = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*", re.DOTALL)


def am_time(us: int | None) -> str:
    """µs since the epoch → ``2024-05-01T10:00:00.123Z`` (milliseconds truncated, as Go formats)."""
    if us is None:
        return ZERO_TIME
    t = _EPOCH + timedelta(microseconds=us)
    return f"{t.year:04d}-{t:%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_filter(text: str) -> tuple[Matcher, ...]:
    """One ``filter`` value: ``name="v"`` (or ``name=~"re"``, ``!=``, ``!~``; Alertmanager 0.25's
    unquoted ``name=v``; or a whole selector ``{a="1",b=~"2"}``) → its matchers, through the
    history API's parser (same regex rules, same errors)."""
    s = text.strip()
    if not s:
        raise bad("filter", "filter: empty matcher")
    if "\x00" in s:
        raise bad("filter", "filter: NUL is not allowed")
    if not s.startswith("{"):
        m = _UNQUOTED.fullmatch(s)
        if m is not None and m.group(3)[:1] not in ('"', "'", "`"):
            s = m.group(1) + m.group(2) + _quote(m.group(3))
        s = "{" + s + "}"
    try:
        return parse_selector(s)
    except MatcherSyntaxError as exc:
        raise bad("filter", f"filter {text[:64]!r}: {exc}") from None


def parse_receiver(pattern: str) -> str:
    """The ``receiver`` regex, checked by the matcher parser's rules (RE2 subset both stores run)."""
    if "\x00" in pattern:
        raise bad("receiver", "receiver: NUL is not allowed")
    try:
        parse_selector("{receiver=~" + _quote(pattern) + "}")
    except MatcherSyntaxError as exc:
        raise bad("receiver", f"receiver: {exc}") from None
    return pattern


def _flag(name: str, value: str) -> bool:
    low = value.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise bad(name, f"{name} must be true or false")


@dataclass(frozen=True)
class AmQuery:
    matchers: tuple[Matcher, ...] = ()
    receiver: str | None = None
    active: bool = True


def parse_query(
    raw: str | bytes | None, flags: tuple[str, ...] = (), *, filters: bool = True, receiver: bool = True
) -> AmQuery:
    """Alertmanager's query parameters: ``filter`` (may repeat) and ``receiver`` where ``filters``
    and ``receiver`` allow them, and the boolean ``flags``; anything else is refused."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        pairs = parse_qsl(raw or "", keep_blank_values=True, errors="strict", max_num_fields=MAX_QUERY_FIELDS)
    except UnicodeDecodeError:
        raise bad("query", "query string is not valid UTF-8") from None
    except ValueError:
        raise bad("query", "too many query parameters") from None
    matchers: list[Matcher] = []
    seen: dict[str, str] = {}
    for name, value in pairs:
        if name == "filter" and filters:
            matchers.extend(parse_filter(value))
            if len(matchers) > MAX_MATCHERS:
                raise bad("filter", f"at most {MAX_MATCHERS} matchers")
            continue
        if not (name in flags or (name == "receiver" and receiver)):
            raise bad(name[:64], f"unknown parameter {name[:64]!r}")
        if name in seen:
            raise bad(name, f"parameter {name!r} given more than once")
        seen[name] = value
    active = True
    for name in flags:
        if name in seen:
            on = _flag(name, seen[name])
            if name == "active":
                active = on
    pattern = parse_receiver(seen["receiver"]) if "receiver" in seen else None
    return AmQuery(tuple(matchers), pattern, active)


def firing_now(d: Dialect, q: AmQuery, now: int, limit: int) -> Query:
    """The label sets firing now (status firing, not past endsAt), each with its latest such instance,
    in Alertmanager's order (fingerprint as unsigned hex: non-negative stored values first), plus
    the firing event's annotations, generator URL and group key. Selects ``limit + 1`` rows."""
    P = d.p

    def firing(t: str) -> str:
        return f"{t}.status = 'firing' AND ({t}.ends_at IS NULL OR {t}.ends_at > {P})"

    conds = [
        firing("a"),
        "NOT EXISTS (SELECT 1 FROM alerts b WHERE b.fingerprint = a.fingerprint "
        f"AND b.starts_at > a.starts_at AND {firing('b')})",
    ]
    params: list[Any] = [d.t(now), d.t(now)]
    for m in q.matchers:
        sql, ps = d.matcher(m)
        conds.append(sql)
        params.extend(ps)
    receiver = RECEIVER.format(row="a", gid="group_id")
    if q.receiver is not None:
        # An alert without a receiver (sent by Prometheus) has no receiver to match.
        conds.append(f"{receiver} <> ''")
        if d.pg:
            conds.append(f'({receiver} COLLATE "C" ~ {P})')
            params.append(pg_anchored(q.receiver))
        else:
            conds.append(f"wf_regexp({P}, {receiver})")
            params.append(q.receiver)
    params.append(limit + 1)
    # Receiver and group key (stored once, possibly megabytes) are looked up only in the outermost
    # select, which does not sort: a sort would hold them for every row of up to 10,001 before the
    # reader's byte budget could stop the answer (#11).
    sql = f"""
SELECT j.fingerprint, j.starts_at, j.ends_at, j.last_seen, {RECEIVER.format(row="j", gid="group_id")}, j.labels,
       j.annotations, j.generator_url, {GROUP_KEY.format(row="j", gid="e_group_id")}
FROM (
    SELECT k.fingerprint, {d.us("k.starts_at")} AS starts_at, {d.us("k.ends_at")} AS ends_at,
           {d.us("k.last_seen")} AS last_seen, k.group_id, k.receiver, k.labels,
           {d.json("e.annotations")} AS annotations, e.generator_url, e.group_id AS e_group_id,
           e.group_key
    FROM (
        SELECT a.fingerprint, a.starts_at, a.ends_at, a.last_seen, a.group_id, a.receiver,
               {d.json("ls.labels")} AS labels
        FROM alerts a JOIN label_sets ls ON ls.fingerprint = a.fingerprint
        WHERE {" AND ".join(conds)}
        ORDER BY a.fingerprint < 0, a.fingerprint
        LIMIT {P}
    ) k
    LEFT JOIN alert_events e ON e.fingerprint = k.fingerprint AND e.starts_at = k.starts_at AND e.status = 'firing'
    ORDER BY k.fingerprint < 0, k.fingerprint
) j"""
    return sql, params


def group_labels(group_key: str) -> dict[str, str]:
    """The group labels in an Alertmanager group key, ``<route>:{alertname="x", job="y"}`` (Go-quoted
    values); ``{}`` when there is none (alerts not sent by Alertmanager) or it cannot be read."""
    i = group_key.find(":{")
    while i >= 0:
        try:
            ms = parse_selector(group_key[i + 1 :])
        except MatcherSyntaxError:
            pass
        else:
            if all(m.op == "=" for m in ms):
                return {m.name: m.value for m in ms}
        i = group_key.find(":{", i + 1)
    return {}


def _loads(text: str | None) -> Any:
    return orjson.loads(text) if text is not None else {}


def gettable_alert(row: tuple[Any, ...]) -> dict[str, Any]:
    fp, starts, ends, updated, receiver, labels, annotations, url, _group_key = row
    alert: dict[str, Any] = {
        "annotations": _loads(annotations),
        "endsAt": am_time(ends),
        "fingerprint": format_fingerprint(fp),
        "receivers": [{"name": receiver}] if receiver else [],
        "startsAt": am_time(starts),
        "status": {"inhibitedBy": [], "silencedBy": [], "state": "active"},
        "updatedAt": am_time(updated),
        "labels": _loads(labels),
    }
    if url:  # Alertmanager leaves an empty generatorURL out
        alert["generatorURL"] = url
    return alert


class AlertmanagerApi:
    """The routes above over the history API's reader. ``clock`` (µs since the epoch) is for tests."""

    def __init__(
        self,
        reader: Reader,
        *,
        clock: Callable[[], int] = lambda: time.time_ns() // 1000,
        max_alerts: int = MAX_ALERTS,
    ) -> None:
        self.reader = reader
        self.clock = clock
        self.max_alerts = max_alerts
        self.started_us = clock()

    def routes(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(name, path, {method: handler})`` for ``App._add``; ``GET /api/v2/alerts`` shares its
        path with the ingest route, so the app adds ``self.list_alerts`` to that route itself."""
        return [
            ("am_alert_groups", GROUPS_PATH, {"GET": read_errors(self.alert_groups)}),
            ("am_silences", SILENCES_PATH, {"GET": self.silences}),
            ("am_status", STATUS_PATH, {"GET": self.status}),
        ]

    async def _firing(self, q: AmQuery) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]] | None]:
        if not q.active:  # every alert webhookfast knows is active
            return [], None
        query = firing_now(dialect_of(self.reader.dialect), q, self.clock(), self.max_alerts)
        rows, cut = await self.reader.page(query, self.max_alerts + 1)
        if len(rows) > self.max_alerts or cut:
            rows = rows[: self.max_alerts]
            return rows, [(TRUNCATED_HEADER, str(len(rows)))]
        return rows, None

    async def list_alerts(self, ctx: Context) -> Response:
        q = parse_query(ctx.scope.query_string, _ALERT_FLAGS)
        rows, headers = await self._firing(q)
        return Response(200, orjson.dumps([gettable_alert(r) for r in rows]), headers=headers)

    async def alert_groups(self, ctx: Context) -> Response:
        q = parse_query(ctx.scope.query_string, _GROUP_FLAGS)
        rows, headers = await self._firing(q)
        labels_of: dict[str, dict[str, str]] = {}
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            receiver, group_key = row[4], row[8] or ""
            labels = labels_of.get(group_key)
            if labels is None:
                labels = labels_of[group_key] = group_labels(group_key)
            key = (receiver, orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode())
            group = groups.get(key)
            if group is None:
                group = groups[key] = {"alerts": [], "labels": labels, "receiver": {"name": receiver}}
            group["alerts"].append(gettable_alert(row))
        return Response(200, orjson.dumps([groups[k] for k in sorted(groups)]), headers=headers)

    async def silences(self, ctx: Context) -> Response:
        parse_query(ctx.scope.query_string, receiver=False)
        return Response(200, b"[]")

    async def status(self, ctx: Context) -> Response:
        parse_query(ctx.scope.query_string, filters=False, receiver=False)
        return Response(
            200,
            orjson.dumps(
                {
                    "cluster": {"peers": [], "status": "disabled"},
                    "config": {"original": ""},
                    "uptime": am_time(self.started_us),
                    "versionInfo": {
                        "branch": "",
                        "buildDate": "",
                        "buildUser": "",
                        "goVersion": "",
                        "revision": "",
                        "version": __version__,
                    },
                }
            ),
        )
