"""The history queries, written once for both stores.

Each builder returns ``(sql, params)`` for a :class:`Dialect`. Only a few fragments differ between
SQLite and PostgreSQL (placeholders, how a time column becomes integer µs, JSON label access,
regex matching), so one text per query keeps the two stores' answers identical by construction:

* every time leaves the database as integer microseconds since the epoch (``Dialect.us``);
* labels/annotations leave it as JSON text, parsed by orjson;
* text is ordered bytewise (SQLite ``BINARY`` = PostgreSQL ``COLLATE "C"``);
* a regex matcher is parsed once (``_core.PromRegex``): SQLite runs that parse (``wf_regexp``),
  PostgreSQL its translation into an equivalent anchored ARE, so both match the same strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from webhookfast.history.params import ListParams, Matcher, StatsParams
from webhookfast.storage.postgres_time import timestamptz
from webhookfast.storage.readers import compile_regex

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The alertname characters PostgreSQL's label_sets_alertname index keys on (migration 0011).
ALERTNAME_KEY_CHARS = 512

Query = tuple[str, list[Any]]

# ASCII-only lower-casing, the one SQLite's lower() and PostgreSQL's lower(... COLLATE "C") agree on.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(s: str) -> str:
    return s.translate(_ASCII_LOWER)


@dataclass(frozen=True)
class Dialect:
    name: str  # "sqlite" | "postgresql"

    @property
    def pg(self) -> bool:
        return self.name == "postgresql"

    @property
    def p(self) -> str:
        """The placeholder."""
        return "%s" if self.pg else "?"

    def us(self, col: str) -> str:
        """A time column as integer µs since the epoch."""
        return f"(extract(epoch FROM {col}) * 1000000)::int8" if self.pg else col

    def t(self, us: int) -> Any:
        """A µs time as a parameter compared with a time column (exactly: a cursor must continue
        right after its row, wherever the row lies)."""
        return timestamptz(us) if self.pg else us

    def us_interval(self, col: str) -> str:
        """A duration (PostgreSQL interval, SQLite µs) as integer µs."""
        return f"(extract(epoch FROM {col}) * 1000000)::int8" if self.pg else col

    def json(self, col: str) -> str:
        return f"{col}::text" if self.pg else col

    @property
    def c(self) -> str:
        """Bytewise text ordering."""
        return ' COLLATE "C"' if self.pg else ""

    # -- label matchers ------------------------------------------------------------------------

    def matcher(self, m: Matcher, ls: str = "ls") -> Query:
        """One Prometheus matcher on the label set ``ls``: a missing label counts as ""."""
        p = self.p
        if m.name in ("alertname", "severity"):  # real columns ("" when the label is missing)
            if self.pg and m.name == "alertname" and m.op == "=":
                # What the index holds (migration 0011): the first ALERTNAME_KEY_CHARS characters.
                k = ALERTNAME_KEY_CHARS
                return f"left({ls}.alertname, {k}) = left({p}, {k}) AND {ls}.alertname = {p}", [m.value, m.value]
            expr, params = f"{ls}.{m.name}", []
        elif self.pg:
            if m.op == "=" and m.value:  # containment: can use a GIN index on labels
                return f"{ls}.labels @> {p}::jsonb", [orjson.dumps({m.name: m.value}).decode()]
            expr, params = f"coalesce({ls}.labels ->> {p}, '')", [m.name]
        else:
            expr, params = f"coalesce(json_extract({ls}.labels, {p}), '')", ['$."' + m.name + '"']
        if m.op == "=":
            return f"{expr} = {p}", [*params, m.value]
        if m.op == "!=":
            return f"{expr} <> {p}", [*params, m.value]
        neg = "NOT " if m.op == "!~" else ""
        if self.pg:
            # COLLATE "C": ranges by code point whatever the database locale (the translation
            # spells every class out and needs no case folding of PostgreSQL's).
            are = m.regex.postgres if m.regex is not None else pg_anchored(m.value)
            return f'{neg}(({expr}) COLLATE "C" ~ {p})', [*params, are]
        return f"{neg}wf_regexp({p}, {expr})", [m.value, *params]

    def annotations_contain(self, e: str) -> str:
        """Some annotation value of event ``e`` contains the (ASCII-lower-cased) parameter."""
        if self.pg:
            return (
                f"EXISTS (SELECT 1 FROM jsonb_each_text({e}.annotations) j "
                f'WHERE strpos(lower(j.value COLLATE "C"), {self.p}) > 0)'
            )
        return f"EXISTS (SELECT 1 FROM json_each({e}.annotations) j WHERE instr(lower(j.value), {self.p}) > 0)"


def pg_anchored(pattern: str) -> str:
    """Prometheus' ``^(?s:pattern)$`` as the equivalent PostgreSQL ARE (``_core.PromRegex.postgres``);
    SQLite's ``wf_regexp(pattern, value)`` matches the same strings."""
    return compile_regex(pattern).postgres


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgresql")


def dialect_of(name: str) -> Dialect:
    """The dialect of a store or reader, by the name they give themselves."""
    return POSTGRES if name == POSTGRES.name else SQLITE


def _where(conds: list[str]) -> str:
    return ("WHERE " + " AND ".join(conds)) if conds else ""


def _matchers_join(p: StatsParams) -> str:
    """The join with ``label_sets`` that a statistic over ``alerts a`` needs for its matchers only."""
    return "JOIN label_sets ls ON ls.fingerprint = a.fingerprint" if p.match else ""


def _matchers(d: Dialect, matchers: tuple[Matcher, ...], conds: list[str], params: list[Any]) -> None:
    for m in matchers:
        sql, ps = d.matcher(m)
        conds.append(sql)
        params.extend(ps)


# -- GET /api/v1/alerts ---------------------------------------------------------------------------

# The keyset of each sort: (sort key, fingerprint, starts_at), minus the repetition for starts_at.
SORT_KEYS = {"starts_at": ("starts_at", "fingerprint"), "last_seen": ("last_seen", "fingerprint", "starts_at")}


def list_alerts(d: Dialect, p: ListParams, after: list[int] | None) -> Query:
    """One page of alert instances; selects ``limit + 1`` rows (the extra one says "more")."""
    P = d.p
    conds: list[str] = []
    params: list[Any] = []
    if p.status is not None:
        conds.append(f"a.status = {P}")
        params.append(p.status)
    if p.since is not None:
        conds.append(f"a.starts_at >= {P}")
        params.append(d.t(p.since))
    if p.until is not None:
        conds.append(f"a.starts_at < {P}")
        params.append(d.t(p.until))
    if p.fingerprint is not None:
        conds.append(f"a.fingerprint = {P}")
        params.append(p.fingerprint)
    _matchers(d, p.match, conds, params)
    if p.q is not None:
        conds.append(
            "EXISTS (SELECT 1 FROM alert_events e WHERE e.fingerprint = a.fingerprint "
            f"AND e.starts_at = a.starts_at AND {d.annotations_contain('e')})"
        )
        params.append(ascii_lower(p.q))
    cols = SORT_KEYS[p.sort]
    if after is not None:
        cmp = "<" if p.order == "desc" else ">"
        lhs = ", ".join(f"a.{c}" for c in cols)
        rhs = ", ".join([P] * len(cols))
        conds.append(f"({lhs}) {cmp} ({rhs})")
        params.extend(d.t(v) if c != "fingerprint" else v for c, v in zip(cols, after, strict=True))
    direction = " DESC" if p.order == "desc" else ""
    order = ", ".join(f"k.{c}{direction}" for c in cols)
    inner_order = ", ".join(f"a.{c}{direction}" for c in cols)
    params.append(p.limit + 1)
    # The page is chosen first (index order + LIMIT); only its rows then fetch their annotations.
    # The receiver (stored once, possibly megabytes) is looked up in the outermost select only,
    # which does not sort: a sort would hold it for every row of the page (#11).
    sql = f"""
SELECT j.fingerprint, j.starts_at, j.status, j.ends_at, j.first_seen, j.last_seen, j.notifications,
       {RECEIVER.format(row="j", gid="group_id")}, j.labels, j.annotations
FROM (
    SELECT k.fingerprint, {d.us("k.starts_at")} AS starts_at, k.status, {d.us("k.ends_at")} AS ends_at,
           {d.us("k.first_seen")} AS first_seen, {d.us("k.last_seen")} AS last_seen, k.notifications,
           k.receiver, k.group_id, k.labels,
           (SELECT {d.json("e.annotations")} FROM alert_events e
             WHERE e.fingerprint = k.fingerprint AND e.starts_at = k.starts_at
             ORDER BY e.status DESC LIMIT 1) AS annotations
    FROM (
        SELECT a.fingerprint, a.starts_at, a.status, a.ends_at, a.first_seen, a.last_seen,
               a.notifications, a.receiver, a.group_id, {d.json("ls.labels")} AS labels
        FROM alerts a JOIN label_sets ls ON ls.fingerprint = a.fingerprint
        {_where(conds)}
        ORDER BY {inner_order}
        LIMIT {P}
    ) k
    ORDER BY {order}
) j"""
    return sql, params


# receiver and groupKey are stored once per distinct pair (notification_groups, migration 0006);
# rows written before it hold their own text. A scalar subquery by primary key, run only for the
# rows of the answer (not a join the planner could place before the page's LIMIT).
# ``{gid}`` names the row's group id column (``group_id`` unless a query renamed it).
RECEIVER = "coalesce((SELECT g.receiver FROM notification_groups g WHERE g.id = {row}.{gid}), {row}.receiver)"
GROUP_KEY = "coalesce((SELECT g.group_key FROM notification_groups g WHERE g.id = {row}.{gid}), {row}.group_key)"


# -- GET /api/v1/alerts/{fingerprint} -------------------------------------------------------------


def label_set(d: Dialect, fp: int) -> Query:
    return f"SELECT {d.json('labels')} FROM label_sets WHERE fingerprint = {d.p}", [fp]


def alert_summary(d: Dialect, fp: int) -> Query:
    return (
        f"""SELECT count(*), coalesce(sum(notifications), 0),
       coalesce(sum(CASE WHEN status = 'firing' THEN 1 ELSE 0 END), 0),
       {d.us("min(starts_at)")}, {d.us("max(last_seen)")}
FROM alerts WHERE fingerprint = {d.p}""",
        [fp],
    )


def _episode_page(d: Dialect, fp: int, before: int | None, limit: int) -> Query:
    cond, params = "", [fp]
    if before is not None:
        cond = f" AND starts_at < {d.p}"
        params.append(d.t(before))
    params.append(limit + 1)
    return f"fingerprint = {d.p}{cond} ORDER BY starts_at DESC LIMIT {d.p}", params


def episodes(d: Dialect, fp: int, before: int | None, limit: int) -> Query:
    tail, params = _episode_page(d, fp, before, limit)
    return (
        f"""SELECT {d.us("a.starts_at")}, a.status, {d.us("a.ends_at")}, {d.us("a.first_seen")}, {d.us("a.last_seen")},
       a.notifications, {RECEIVER.format(row="a", gid="group_id")}
FROM alerts a WHERE {tail}""",
        params,
    )


def episode_events(d: Dialect, fp: int, before: int | None, limit: int) -> Query:
    """The events of the episodes on the same page (same snapshot, same subquery)."""
    tail, params = _episode_page(d, fp, before, limit)
    return (
        f"""SELECT {d.us("e.starts_at")}, e.status, {d.us("e.ends_at")}, {d.us("e.received_at")},
       {RECEIVER.format(row="e", gid="group_id")}, {GROUP_KEY.format(row="e", gid="group_id")}, e.source, e.generator_url, {d.json("e.annotations")}
FROM alert_events e
WHERE e.fingerprint = {d.p} AND e.starts_at IN (SELECT starts_at FROM alerts WHERE {tail})
ORDER BY e.starts_at DESC, e.received_at, e.status""",
        [fp, *params],
    )


# -- GET /api/v1/stats ----------------------------------------------------------------------------


def top_firing(d: Dialect, p: StatsParams, since: int, until: int) -> Query:
    """Label sets with the most instances started in the window (the count needs only the
    (starts_at, fingerprint) index; deliveries are summed for the top rows alone)."""
    P = d.p
    conds = [f"a.starts_at >= {P}", f"a.starts_at < {P}"]
    params: list[Any] = [d.t(since), d.t(until)]
    _matchers(d, p.match, conds, params)
    join = _matchers_join(p)
    # Placeholders are positional: the select list's two come first.
    params = [d.t(since), d.t(until), *params, p.top]
    return (
        f"""SELECT t.fingerprint, t.firings,
       (SELECT sum(x.notifications) FROM alerts x
         WHERE x.fingerprint = t.fingerprint AND x.starts_at >= {P} AND x.starts_at < {P}),
       {d.json("l.labels")}
FROM (
    SELECT a.fingerprint, count(*) AS firings
    FROM alerts a {join}
    {_where(conds)}
    GROUP BY a.fingerprint
    ORDER BY firings DESC, a.fingerprint
    LIMIT {P}
) t JOIN label_sets l ON l.fingerprint = t.fingerprint
ORDER BY t.firings DESC, t.fingerprint""",
        params,
    )


def flapping(d: Dialect, p: StatsParams, since: int, until: int) -> Query:
    """Label sets with at least ``flap_min_changes`` state changes in the window: instances that
    started in it (firing) plus instances that resolved in it, counted at the alert's own times
    (``starts_at``, ``ends_at``), not at the delivery's."""
    P = d.p
    join = _matchers_join(p)
    params: list[Any] = []
    branches = []
    for firing, conds in (
        (1, [f"a.starts_at >= {P}", f"a.starts_at < {P}"]),
        (0, ["a.status = 'resolved'", f"a.ends_at >= {P}", f"a.ends_at < {P}"]),
    ):
        params += [d.t(since), d.t(until)]
        _matchers(d, p.match, conds, params)
        branches.append(f"SELECT a.fingerprint, {firing} AS firing FROM alerts a {join} {_where(conds)}")
    params += [p.flap_min_changes, p.top]
    union = "\n        UNION ALL\n        ".join(branches)
    return (
        f"""SELECT t.fingerprint, t.changes, t.firing, {d.json("l.labels")}
FROM (
    SELECT c.fingerprint, count(*) AS changes, sum(c.firing) AS firing
    FROM (
        {union}
    ) c
    GROUP BY c.fingerprint
    HAVING count(*) >= {P}
    ORDER BY changes DESC, c.fingerprint
    LIMIT {P}
) t JOIN label_sets l ON l.fingerprint = t.fingerprint
ORDER BY t.changes DESC, t.fingerprint""",
        params,
    )


def time_to_resolve(d: Dialect, p: StatsParams, since: int, until: int) -> Query:
    """Per alertname, over the instances resolved in the window (by ends_at): count, p50, p90 and
    max of ends_at - starts_at. Percentiles are nearest-rank: the value at rank ceil(p·n).

    PostgreSQL: percentile_disc over the interval (it takes rank ceil(p·n) exactly). SQLite: the
    same rank picked with window functions, ceil(p·n) written as (100·p·n + 99) / 100 in integers
    (equal to PostgreSQL's float ceil(0.9·n) for every n checked, 1..2,000,000)."""
    P = d.p
    conds = ["a.status = 'resolved'", f"a.ends_at >= {P}", f"a.ends_at < {P}"]
    params: list[Any] = [d.t(since), d.t(until)]
    _matchers(d, p.match, conds, params)
    params.append(p.top)
    if d.pg:
        return (
            f"""SELECT alertname, n, {d.us_interval("p50")}, {d.us_interval("p90")}, {d.us_interval("mx")}
FROM (
    SELECT ls.alertname, count(*) AS n,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY a.ends_at - a.starts_at) AS p50,
           percentile_disc(0.9) WITHIN GROUP (ORDER BY a.ends_at - a.starts_at) AS p90,
           max(a.ends_at - a.starts_at) AS mx
    FROM alerts a JOIN label_sets ls ON ls.fingerprint = a.fingerprint
    {_where(conds)}
    GROUP BY ls.alertname
) t
ORDER BY p90 DESC, alertname{d.c}
LIMIT {P}""",
            params,
        )
    return (
        f"""WITH d AS (
    SELECT ls.alertname, a.ends_at - a.starts_at AS dur
    FROM alerts a JOIN label_sets ls ON ls.fingerprint = a.fingerprint
    {_where(conds)}
), r AS (
    SELECT alertname, dur,
           row_number() OVER (PARTITION BY alertname ORDER BY dur) AS rn,
           count(*) OVER (PARTITION BY alertname) AS n
    FROM d
)
SELECT alertname, max(n) AS n,
       max(CASE WHEN rn = (50 * n + 99) / 100 THEN dur END) AS p50,
       max(CASE WHEN rn = (90 * n + 99) / 100 THEN dur END) AS p90,
       max(dur) AS mx
FROM r
GROUP BY alertname
ORDER BY p90 DESC, alertname
LIMIT {P}""",
        params,
    )


def firing_by_severity(d: Dialect, p: StatsParams, now: int) -> Query:
    """Instances firing now: status firing and not past their endsAt."""
    P = d.p
    conds = ["a.status = 'firing'", f"(a.ends_at IS NULL OR a.ends_at > {P})"]
    params: list[Any] = [d.t(now)]
    _matchers(d, p.match, conds, params)
    return (
        f"""SELECT ls.severity, count(*)
FROM alerts a JOIN label_sets ls ON ls.fingerprint = a.fingerprint
{_where(conds)}
GROUP BY ls.severity
ORDER BY ls.severity{d.c}""",
        params,
    )


# -- GET /api/v1/stats on PostgreSQL: the window's rows as arrays, aggregated by _core.window_stats --


def started_array(d: Dialect, p: StatsParams, since: int, until: int) -> Query:
    """The fingerprints of the instances started in the window, as one int8[] (``array_send``)."""
    P = d.p
    conds = [f"a.starts_at >= {P}", f"a.starts_at < {P}"]
    params: list[Any] = [d.t(since), d.t(until)]
    _matchers(d, p.match, conds, params)
    join = _matchers_join(p)
    return f"SELECT array_send(array_agg(a.fingerprint)) FROM alerts a {join} {_where(conds)}", params


def resolved_arrays(d: Dialect, p: StatsParams, since: int, until: int) -> Query:
    """The instances resolved in the window as three parallel arrays (one aggregate sees the rows in
    one order): fingerprint int8[], starts_at and ends_at timestamptz[]. Without matchers this is
    an index-only scan: alertnames come from ``_core.AlertNames``, not from a join per instance."""
    P = d.p
    conds = ["a.status = 'resolved'", f"a.ends_at >= {P}", f"a.ends_at < {P}"]
    params: list[Any] = [d.t(since), d.t(until)]
    _matchers(d, p.match, conds, params)
    join = _matchers_join(p)
    return (
        f"""SELECT array_send(array_agg(a.fingerprint)), array_send(array_agg(a.starts_at)),
       array_send(array_agg(a.ends_at))
FROM alerts a {join}
{_where(conds)}""",
        params,
    )


def alertnames(d: Dialect, fingerprints: list[int]) -> Query:
    """The alertnames of label sets the API has not seen yet (for ``_core.AlertNames``)."""
    return f"SELECT fingerprint, alertname FROM label_sets WHERE fingerprint = ANY({d.p}::int8[])", [fingerprints]


def window_details(d: Dialect, fingerprints: list[int], since: int, until: int) -> Query:
    """Labels of the given label sets, and the deliveries of their instances started in the window."""
    P = d.p
    return (
        f"""SELECT l.fingerprint, {d.json("l.labels")},
       (SELECT sum(x.notifications) FROM alerts x
         WHERE x.fingerprint = l.fingerprint AND x.starts_at >= {P} AND x.starts_at < {P})
FROM label_sets l WHERE l.fingerprint = ANY({P}::int8[])""",
        [d.t(since), d.t(until), fingerprints],
    )
