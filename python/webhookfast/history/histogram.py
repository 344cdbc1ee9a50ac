"""``GET /api/v1/histogram``: how many alert instances started in each slice of a window, for the
web page's chart of alerts over time. Counting happens in the database (one grouped index scan of
``alerts_starts_at``), so the answer is at most ``buckets`` rows whatever the history's size."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field

from webhookfast._core import format_time
from webhookfast.history import sql as q
from webhookfast.history.params import (
    Matcher,
    StatsParams,
    _Params,
    parse_params,
    window_us,
)
from webhookfast.history.sql import Dialect, Query, dialect_of
from webhookfast.http import Context, Response
from webhookfast.storage.readers import Reader

HISTOGRAM_PATH = "/api/v1/histogram"
DEFAULT_BUCKETS = 60
MAX_BUCKETS = 1000


class HistogramParams(_Params):
    """``GET /api/v1/histogram``: the window as in the statistics (default the last 24 h)."""

    since: int | None = None
    until: int | None = None
    match: tuple[Matcher, ...] = ()
    buckets: int = Field(DEFAULT_BUCKETS, ge=1, le=MAX_BUCKETS)


def bucket_width_us(since: int, until: int, buckets: int) -> int:
    """Whole seconds, so bucket starts are round numbers; enough buckets to cover the window."""
    per = -(-(until - since) // buckets)
    return max(1, -(-per // 10**6)) * 10**6


def histogram_query(
    d: Dialect, match: tuple[Matcher, ...], since: int, until: int, width: int, firing: bool = False
) -> Query:
    """Instances started per bucket (``firing``: only those still firing). Two queries rather than
    one with a conditional sum: each is then an index-only scan (``alerts_starts_at``, or
    ``alerts_status`` for the few firing ones); the sum read every row's status from the table,
    110 ms instead of 1.1 s for 30 days of the 1M-row SQLite benchmark."""
    P = d.p
    conds = [f"a.starts_at >= {P}", f"a.starts_at < {P}"]
    params: list[Any] = [d.t(since), d.t(until)]
    if firing:
        conds.insert(0, "a.status = 'firing'")
    q._matchers(d, match, conds, params)
    join = q._matchers_join(StatsParams.model_construct(match=match))
    # Placeholders are positional: the bucket expression's two come first.
    params = [since, width, *params]
    return (
        f"""SELECT ({d.us("a.starts_at")} - {P}) / {P} AS bucket, count(*)
FROM alerts a {join}
{q._where(conds)}
GROUP BY bucket""",
        params,
    )


class Histogram:
    def __init__(self, reader: Reader, clock: Any) -> None:
        self.reader = reader
        self.clock = clock

    async def handle(self, ctx: Context) -> Response:
        now = self.clock()
        p: HistogramParams = parse_params(HistogramParams, ctx.scope.query_string, now)
        since, until = window_us(p.since, p.until, now)
        width = bucket_width_us(since, until, p.buckets)
        d = dialect_of(self.reader.dialect)
        started, firing = await self.reader.many(
            [
                histogram_query(d, p.match, since, until, width),
                histogram_query(d, p.match, since, until, width, firing=True),
            ]
        )
        counts = {int(b): int(n) for b, n in started}
        still = {int(b): int(n) for b, n in firing}
        n_buckets = -(-(until - since) // width)
        return Response(
            200,
            orjson.dumps(
                {
                    "window": {"since": format_time(since), "until": format_time(until)},
                    "bucket_seconds": width // 10**6,
                    "buckets": [
                        {
                            "start": format_time(since + i * width),
                            "started": counts.get(i, 0),
                            "firing": still.get(i, 0),
                        }
                        for i in range(n_buckets)
                    ],
                },
                option=orjson.OPT_SORT_KEYS,
            ),
        )
