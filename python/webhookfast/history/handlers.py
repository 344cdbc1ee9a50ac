"""HTTP handlers of the alert-history API (``/api/v1/alerts``, ``/api/v1/alerts/{fingerprint}``,
``/api/v1/stats``). They parse parameters, run the queries of :mod:`webhookfast.history.sql` through a
read-only :mod:`reader <webhookfast.storage.readers>` and shape JSON; see docs/api.md."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import orjson

from webhookfast._core import WINDOW_STATS_DETACH_BYTES, AlertNames, alert_page, format_time, window_stats
from webhookfast._core import fingerprint_from_int as format_fingerprint
from webhookfast.errors import not_found, read_errors
from webhookfast.history import sql as q
from webhookfast.history.histogram import HISTOGRAM_PATH, Histogram
from webhookfast.history.params import (
    AlertParams,
    ListParams,
    StatsParams,
    bad,
    decode_cursor,
    encode_cursor,
    parse_fingerprint,
    parse_params,
    window_us,
)
from webhookfast.http import Context, Response, Route
from webhookfast.storage.readers import Reader, Rows, reader_for

ALERTS_PATH = "/api/v1/alerts"
ALERT_PREFIX = "/api/v1/alerts/"
STATS_PATH = "/api/v1/stats"
# 1 MiB: arrays of about 22k started and 22k resolved instances, ~3 ms of window_stats (a 24 h
# window of the 1M-row benchmark: ~800 kB, ~2 ms). Past that window_stats releases the GIL and the
# aggregation runs off the event loop, on one thread of the API's (so wide requests queue there
# instead of taking every core from ingest).
WINDOW_STATS_THREAD_BYTES = WINDOW_STATS_DETACH_BYTES

_DUMPS_OPTS = orjson.OPT_SORT_KEYS


def _json(obj: Any) -> Response:
    return Response(200, orjson.dumps(obj, option=_DUMPS_OPTS))


def _loads(text: str | None) -> Any:
    return orjson.loads(text) if text is not None else {}


def _now_us() -> int:
    return time.time_ns() // 1000


class AnswerCache:
    """Answers reused for ``ttl_s`` seconds per key, and computed once when several requests ask
    the same question at the same time (a dashboard opened by a whole team). The computation runs
    in a task of the cache's own, so a request that goes away does not take the answer from the
    others waiting for it. Only successful answers are kept; an error reaches every request that
    waited for it, and is not kept. Bounded by bytes (keys and answers, ``max_bytes``; an answer
    larger than that is not kept) and by ``max_entries``: past either the oldest entries go. An
    expired answer is dropped when it expires, not when the next request comes."""

    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 256,
        max_bytes: int = 32 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        # Insertion order is expiry order (one ttl for all): the oldest entry expires first.
        self._done: dict[str, tuple[float, bytes]] = {}
        self._pending: dict[str, asyncio.Task[bytes]] = {}
        self._sweep: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._done)

    async def get(self, key: str, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        if self.ttl_s <= 0:
            return await compute()
        self.drop_expired()
        hit = self._done.get(key)
        if hit is not None:
            return hit[1]
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fill(key, compute))
            # Retrieved even when every asker has gone: no "exception was never retrieved".
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._pending[key] = task
        return await asyncio.shield(task)

    def drop_expired(self) -> None:
        now = self.clock()
        while self._done:
            key, (expires, _) = next(iter(self._done.items()))
            if now < expires:
                break
            self._pop(key)

    def _pop(self, key: str) -> None:
        _, body = self._done.pop(key)
        self.bytes -= len(key) + len(body)

    def _swept(self) -> None:
        self._sweep = None
        self.drop_expired()
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        if self._sweep is None and self._done:
            oldest = next(iter(self._done.values()))[0]
            delay = max(0.0, oldest - self.clock()) + 0.001
            self._sweep = asyncio.get_running_loop().call_later(delay, self._swept)

    async def _fill(self, key: str, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            body = await compute()
        finally:
            del self._pending[key]
        size = len(key) + len(body)
        if size > self.max_bytes:
            return body
        self.drop_expired()
        if key in self._done:
            self._pop(key)
        while self._done and (len(self._done) >= self.max_entries or self.bytes + size > self.max_bytes):
            self._pop(next(iter(self._done)))
        self._done[key] = (self.clock() + self.ttl_s, body)
        self.bytes += size
        self._schedule_sweep()
        return body

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        self._done.clear()
        self.bytes = 0


class HistoryApi:
    """The history endpoints over one store. ``clock`` (µs since the epoch) is for tests.

    PostgreSQL: queries go through a small pool of the API's own (``pg_pool_size`` connections) so
    that they never take a connection the ingest path waits for. SQLite: a few reader threads with
    their own connections. ``stats_cache_s``: how long a statistics answer is reused (0: never).
    """

    def __init__(
        self,
        store: Any,
        *,
        reader: Reader | None = None,
        clock: Callable[[], int] = _now_us,
        pg_pool_size: int = 2,
        stats_cache_s: float = 0.0,
    ) -> None:
        self.store = store
        self.reader = reader if reader is not None else reader_for(store, pg_max_size=pg_pool_size)
        self.d = q.dialect_of(self.reader.dialect)
        self.clock = clock
        self.stats_cache = AnswerCache(stats_cache_s)
        self.alertnames = AlertNames()  # fingerprint → alertname, for the statistics on PostgreSQL
        self._aggregator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhookfast-stats")
        self._alert_route_args = ("alert", ALERT_PREFIX + "{fingerprint}")
        self._get_alert = read_errors(self.get_alert)

    # -- routing -------------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(name, path, {method: handler})`` of the fixed paths, for ``App._add``."""
        return [
            ("alerts_list", ALERTS_PATH, {"GET": read_errors(self.list_alerts)}),
            ("stats", STATS_PATH, {"GET": read_errors(self.stats)}),
            ("histogram", HISTOGRAM_PATH, {"GET": read_errors(Histogram(self.reader, self.clock).handle)}),
        ]

    def match(self, path: str) -> Route | None:
        """The route of ``/api/v1/alerts/{fingerprint}`` (handler bound to the fingerprint), or None."""
        if not path.startswith(ALERT_PREFIX):
            return None
        fp = path[len(ALERT_PREFIX) :]
        if not fp or "/" in fp or len(fp) > 64:
            return None
        return Route("alert", ALERT_PREFIX + "{fingerprint}", {"GET": partial(self._get_alert, fingerprint=fp)}, True)

    async def open(self) -> None:
        await self.reader.open()

    async def close(self) -> None:
        self.stats_cache.close()
        await self.reader.close()
        self._aggregator.shutdown(wait=False)  # an aggregation still running finishes on its own

    # -- GET /api/v1/alerts --------------------------------------------------------------------

    async def list_alerts(self, ctx: Context) -> Response:
        p: ListParams = parse_params(ListParams, ctx.scope.query_string, self.clock())
        kind = f"alerts:{p.sort}:{p.order}"
        after = None
        if p.cursor is not None:
            try:
                after = decode_cursor(p.cursor, kind, len(q.SORT_KEYS[p.sort]))
            except ValueError as exc:
                raise bad("cursor", str(exc)) from None
        rows, cut = await self.reader.page(q.list_alerts(self.d, p, after), p.limit + 1)
        more = len(rows) > p.limit or cut
        rows = rows[: p.limit]
        next_cursor = None
        if more and rows:
            fp, starts, last = rows[-1][0], rows[-1][1], rows[-1][5]
            key = [starts, fp] if p.sort == "starts_at" else [last, fp, starts]
            next_cursor = encode_cursor(kind, key)
        # Shaped in Rust: up to 1,000 rows of four timestamps and two JSON objects each took as
        # long in Python as the query itself. Same bytes as _json() of the dicts (tests compare).
        return Response(200, alert_page(rows, next_cursor))

    # -- GET /api/v1/alerts/{fingerprint} ------------------------------------------------------

    async def get_alert(self, ctx: Context, fingerprint: str) -> Response:
        try:
            fp = parse_fingerprint(fingerprint)
        except ValueError as exc:
            raise bad("fingerprint", str(exc)) from None
        p: AlertParams = parse_params(AlertParams, ctx.scope.query_string, self.clock())
        before = None
        if p.cursor is not None:
            try:
                (before,) = decode_cursor(p.cursor, "episodes", 1)
            except ValueError as exc:
                raise bad("cursor", str(exc)) from None
        d = self.d
        ls_rows, summary, eps, evs = await self.reader.many(
            [
                q.label_set(d, fp),
                q.alert_summary(d, fp),
                q.episodes(d, fp, before, p.limit),
                q.episode_events(d, fp, before, p.limit),
            ]
        )
        if not ls_rows:
            raise not_found("no alert with this fingerprint", path="fingerprint")
        more = len(eps) > p.limit
        eps = eps[: p.limit]
        timelines: dict[int, list[dict[str, Any]]] = {}
        for starts, status, ends, received, receiver, group_key, source, url, annotations_json in evs:
            timelines.setdefault(starts, []).append(
                {
                    "status": status,
                    "received_at": format_time(received),
                    "ends_at": format_time(ends),
                    "receiver": receiver,
                    "group_key": group_key,
                    "source": source,
                    "generator_url": url,
                    "annotations": _loads(annotations_json),
                }
            )
        episodes = []
        for starts, status, ends, first, last, notifications, receiver in eps:
            timeline = timelines.get(starts, [])
            episodes.append(
                {
                    "starts_at": format_time(starts),
                    "status": status,
                    "ends_at": format_time(ends),
                    "first_seen": format_time(first),
                    "last_seen": format_time(last),
                    "notifications": notifications,
                    "receiver": receiver,
                    "annotations": timeline[-1]["annotations"] if timeline else {},
                    "timeline": timeline,
                }
            )
        count, notifications, firing, first_start, last_seen = summary[0]
        return _json(
            {
                "fingerprint": format_fingerprint(fp),
                "labels": _loads(ls_rows[0][0]),
                "summary": {
                    "episodes": count,
                    "firing": firing,
                    "notifications": notifications,
                    "first_started_at": format_time(first_start),
                    "last_seen": format_time(last_seen),
                },
                "episodes": episodes,
                "next_cursor": encode_cursor("episodes", [eps[-1][0]]) if more and eps else None,
            }
        )

    # -- GET /api/v1/stats ---------------------------------------------------------------------

    async def stats(self, ctx: Context) -> Response:
        return Response(200, await self.stats_cache.get(ctx.scope.query_string, partial(self._stats, ctx)))

    async def _stats(self, ctx: Context) -> bytes:
        now = self.clock()
        p: StatsParams = parse_params(StatsParams, ctx.scope.query_string, now)
        since, until = window_us(p.since, p.until, now)
        if self.d.pg:
            ttr, flaps, top, sev = await self._window_arrays(p, since, until, now)
        else:
            ttr, flaps, top, sev = await self._window_sql(p, since, until, now)
        return orjson.dumps(
            {
                "window": {"since": format_time(since), "until": format_time(until)},
                "firing_now": {"total": sum(n for _, n in sev), "by_severity": {s: n for s, n in sev}},
                "top_firing": [
                    {
                        "fingerprint": format_fingerprint(fp),
                        "labels": _loads(labels),
                        "firings": firings,
                        "notifications": notifications,
                    }
                    for fp, firings, notifications, labels in top
                ],
                "flapping": {
                    "min_changes": p.flap_min_changes,
                    "alerts": [
                        {
                            "fingerprint": format_fingerprint(fp),
                            "labels": _loads(labels),
                            "changes": changes,
                            "firing": firing,
                            "resolved": changes - firing,
                        }
                        for fp, changes, firing, labels in flaps
                    ],
                },
                "time_to_resolve": [
                    {
                        "alertname": name,
                        "resolved": n,
                        "p50_seconds": p50 / 1e6,
                        "p90_seconds": p90 / 1e6,
                        "max_seconds": mx / 1e6,
                    }
                    for name, n, p50, p90, mx in ttr
                ],
            },
            option=_DUMPS_OPTS,
        )

    async def _window_sql(self, p: StatsParams, since: int, until: int, now: int) -> list[Rows]:
        """The window's aggregates in SQL (SQLite; on PostgreSQL the tests' reference): rows of
        time to resolve, flapping, top firing and firing by severity, in one snapshot."""
        d = self.d
        return await self.reader.many(
            [
                q.time_to_resolve(d, p, since, until),
                q.flapping(d, p, since, until),
                q.top_firing(d, p, since, until),
                q.firing_by_severity(d, p, now),
            ]
        )

    async def _window_arrays(self, p: StatsParams, since: int, until: int, now: int) -> list[Rows]:
        """The same rows on PostgreSQL at half the work: the window's instances arrive as arrays,
        ``_core.window_stats`` aggregates them, alertnames come from ``self.alertnames`` (docs/api.md,
        "GET /api/v1/stats"). Independent reads run in parallel on the reader's connections, each on
        its own snapshot: under live ingest a top row's deliveries (read last) may count a few that
        arrived after its firings were counted."""
        d = self.d
        # Longest first: with two connections the resolved instances run beside the other two
        # reads instead of after one of them.
        (resolved,), (started,), sev = await asyncio.gather(
            self.reader.many([q.resolved_arrays(d, p, since, until)], binary=True),
            self.reader.many([q.started_array(d, p, since, until)], binary=True),
            self.reader.many([q.firing_by_severity(d, p, now)]),
        )
        fingerprints, starts, ends = resolved[0]
        missing = self.alertnames.missing(fingerprints)
        fetched: Rows = []
        if missing:  # label sets not seen before (all of the window's on the first request)
            (fetched,) = await self.reader.many([q.alertnames(d, missing)])
            self.alertnames.add(fetched)  # not kept past its capacity: `fetched` still counts
        args = (started[0][0], fingerprints, starts, ends, self.alertnames, fetched, p.top, p.flap_min_changes)
        size = sum(len(b) for b in (started[0][0], fingerprints, starts, ends) if b is not None)
        # A wide window takes tens of ms of Rust: off the event loop.
        if size >= WINDOW_STATS_THREAD_BYTES:
            top, flaps, ttr = await asyncio.get_running_loop().run_in_executor(self._aggregator, window_stats, *args)
        else:
            top, flaps, ttr = window_stats(*args)
        wanted = sorted({fp for fp, _ in top} | {fp for fp, _, _ in flaps})
        details: dict[int, tuple[str, int | None]] = {}
        if wanted:
            (rows,) = await self.reader.many([q.window_details(d, wanted, since, until)])
            details = {fp: (labels, notifications) for fp, labels, notifications in rows}
        # A label set pruned meanwhile drops out, as the SQL's join with label_sets drops it.
        return [
            ttr,
            [(fp, changes, firing, details[fp][0]) for fp, changes, firing in flaps if fp in details],
            [(fp, firings, details[fp][1], details[fp][0]) for fp, firings in top if fp in details],
            sev[0],
        ]
