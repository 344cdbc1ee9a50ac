"""The RSGI application: routes, the middleware chain, and the store's life cycle in a worker."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
from typing import Any

import orjson
from granian._granian import RSGIProtocolClosed as ProtocolClosed

from webhookfast import metrics
from webhookfast._core import Limits
from webhookfast.connections import bound_writes_once_listening
from webhookfast.errors import HTTPError, internal_error, read_errors
from webhookfast.history import HistoryApi
from webhookfast.history.alertmanager_v2 import AlertmanagerApi
from webhookfast.http import JSON, SECURITY_HEADERS, Context, Handler, Response, Route
from webhookfast.ingest.batcher import Batcher
from webhookfast.ingest.handler import REFUSALS, BodyReader, ByteBudget, Ingest
from webhookfast.ingest.spool import spool_for
from webhookfast.middleware import AccessLog, Auth, Middleware, RateLimit, error_response, recover
from webhookfast.settings import NO_LIMIT, AckMode, Settings
from webhookfast.storage import Store, WriteResult, open_store
from webhookfast.ui import WebUI

log = logging.getLogger("webhookfast")

_OK = orjson.dumps({"status": "ok"})
_READY = orjson.dumps({"status": "ready"})
_READY_SPOOLING = orjson.dumps({"status": "ready", "database": "down", "spool": "accepting"})
# A worker wakes every prune interval; a claim succeeds once 90 % of it has passed since the last
# prune started, so timer jitter does not make a due prune wait a whole extra interval.
PRUNE_CLAIM_SLACK = 0.9


class App:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        # The header list of every answer without headers of its own, its first two entries set
        # per answer: Granian copies the list into its own response at once (response_bytes takes
        # a Vec of string pairs), so one list serves every request instead of a new one each.
        self._answer_headers: list[tuple[str, str]] = [_JSON_HEADER, ("x-request-id", ""), *SECURITY_HEADERS]
        self.store = (
            store
            if store is not None
            else open_store(
                settings.database_url,
                pool_min_size=settings.pool_min_size,
                pool_max_size=settings.pool_max_size,
                connect_timeout_s=settings.connect_timeout_s,
                write_deadline_s=settings.write_deadline_s,
                sqlite_native_writer=settings.sqlite_native_writer,
                label_index_merge_s=settings.label_index_merge_s,
            )
        )
        self.spool = spool_for(settings, self.store)
        self.batcher = Batcher(
            self.store,
            ack_enqueue=settings.ack is AckMode.enqueue,
            max_queue_alerts=settings.queue_max_alerts,
            max_queue_bytes=settings.queue_max_bytes,
            flush_max_alerts=settings.flush_max_alerts,
            flush_concurrency=settings.flush_concurrency,
            # With a spool, a batch not committed by spool_after_s is spooled instead of refused.
            deadline_s=settings.spool_after_s if self.spool is not None else settings.write_deadline_s,
            on_flush=self._on_flush,
            on_refused=_on_refused,
            spool=self.spool,
            ack_spool=settings.ack is AckMode.spool,
        )
        limits = Limits(
            max_alerts=settings.max_alerts or NO_LIMIT,
            max_labels=settings.max_labels or NO_LIMIT,
            max_annotations=settings.max_annotations or NO_LIMIT,
            max_name_bytes=settings.max_name_bytes or NO_LIMIT,
            max_value_bytes=settings.max_value_bytes or NO_LIMIT,
            max_depth=settings.max_depth,
        )
        self.body_reader = BodyReader(settings.max_body_bytes, settings.body_timeout_s)
        auth = Auth.from_settings(settings)
        auth_layer = auth if auth.enabled else None
        ingest = self._ingest = Ingest(
            self.batcher,
            limits,
            self.body_reader,
            settings.retry_after_s,
            durable=settings.ack is not AckMode.enqueue,
            unverified=ByteBudget(max(settings.hmac_unverified_max_bytes, settings.max_body_bytes)),
        )
        self.routes: dict[str, Route] = {}
        self.history = HistoryApi(self.store, stats_cache_s=settings.stats_cache_s)
        am = AlertmanagerApi(self.history.reader)
        # The ingest routes are the only ones whose handler reads (and so can verify) a signed body.
        self._add("webhook", "/webhook", {"POST": ingest}, protected=True, signable=True)
        self._add(
            "alerts_v2",
            "/api/v2/alerts",
            {"POST": ingest, "GET": read_errors(am.list_alerts)},
            protected=True,
            signable=True,
        )
        for name, path in (("healthz", "/healthz"), ("am_healthy", "/-/healthy")):
            self._add(name, path, {"GET": self.healthz}, protected=settings.protect_health)
        for name, path in (("readyz", "/readyz"), ("am_ready", "/-/ready")):
            self._add(name, path, {"GET": self.readyz}, protected=settings.protect_health)
        self._add("metrics", "/metrics", {"GET": self.metrics}, protected=settings.protect_metrics)
        self._add("openapi", "/openapi.json", {"GET": self.openapi}, protected=settings.protect_health)
        for name, path, handlers in [*self.history.routes(), *am.routes()]:
            self._add(name, path, handlers, protected=True)
        # The page is protected only when the browser can authenticate its navigation (basic auth).
        self.ui = WebUI(protected=auth.basic_enabled) if settings.ui else None
        self._openapi: bytes | None = None
        self.access_log = AccessLog(log=settings.access_log)
        self.middleware = Middleware(
            auth=auth_layer,
            rate_limit=RateLimit(settings.rate_limit_rps, settings.rate_limit_burst, settings.rate_limit_max_clients)
            if settings.rate_limit_rps > 0
            else None,
            access_log=self.access_log,
        )
        self._prune_task: asyncio.Task[None] | None = None

    def _add(self, name: str, path: str, handlers: dict[str, Handler], protected: bool, signable: bool = False) -> None:
        self.routes[path] = Route(name, path, handlers, protected, signable)

    # -- life cycle -------------------------------------------------------------------------------

    async def startup(self) -> None:
        await self.store.open()
        metrics.set_gauge(metrics.store_up, 1 if await self.store.ping() else 0)
        await self.history.open()
        if self.spool is not None:
            await self.spool.open()  # replays what an earlier run left, as soon as the database answers
        self.batcher.start()
        if self.settings.retention_days > 0:
            self._prune_task = asyncio.get_running_loop().create_task(self._prune_loop())

    async def shutdown(self) -> None:
        if self._prune_task is not None:
            self._prune_task.cancel()
        await self.batcher.close(self.settings.shutdown_flush_timeout_s)
        if self.spool is not None:
            await self.spool.close()
        await self.history.close()
        await self.store.close()
        self.body_reader.close()
        self.access_log.flush()
        metrics.request_observer.fold()

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.startup())
        tune_gc()
        # Granian opens this worker's listening socket only once it serves: see connections.py.
        self._write_bound = loop.create_task(
            bound_writes_once_listening(self.settings.port, self.settings.write_timeout_s)
        )

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Granian calls this after in-flight requests finished: flush what is queued, then close.
        loop.run_until_complete(self.shutdown())

    async def _prune_loop(self) -> None:
        interval = self.settings.prune_interval_s
        await asyncio.sleep(random.uniform(0, interval))  # workers spread out their wake-ups
        while True:
            try:
                await self.prune_if_due()
            except Exception:
                log.exception("prune failed")
            await asyncio.sleep(interval)

    async def prune_if_due(self) -> int | None:
        """Prune history past the retention if no worker or replica has in this interval: the
        rows deleted, or None when another one has claimed this interval's prune."""
        if not await self.store.claim_job("prune", self.settings.prune_interval_s * PRUNE_CLAIM_SLACK):
            return None
        cutoff = int((time.time() - self.settings.retention_days * 86400) * 1e6)
        n = await self.store.prune(cutoff)
        log.info("pruned %d rows older than %d days", n, self.settings.retention_days)
        return n

    def _on_flush(self, requests: int, alerts: int, seconds: float, result: WriteResult | None) -> None:
        # Folded with the request metrics (each write to a multi-process metric is a locked mmap
        # write: a few of them cost as much as a small flush's own Python).
        metrics.observe_value(metrics.flush_seconds, seconds)
        metrics.observe_value(metrics.flush_alerts, alerts)
        metrics.observe_value(metrics.flush_requests, requests)
        metrics.set_gauge(metrics.queue_alerts, self.batcher.queued_alerts)
        metrics.set_gauge(metrics.store_up, 0 if result is None else 1)
        if result is None:
            metrics.count(metrics.store_errors, 1)

    # -- routing ----------------------------------------------------------------------------------

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        path = scope.path
        route = self.routes.get(path)
        if route is None:
            route = self.history.match(path)
        if route is None and self.ui is not None:
            route = self.ui.match(path)
        ctx = Context(scope, proto, route, time.perf_counter())
        middleware = self.middleware
        response: Response | None
        try:
            try:
                handler = middleware.begin(ctx)
                if handler is not (ingest := self._ingest) or not ingest.framed(ctx):
                    answer = await handler(ctx)
                else:
                    # The common ingest request, Ingest.__call__'s steps in this coroutine: the
                    # handler's own coroutine was one more object per request.
                    reader = ingest.reader
                    task = reader.watch()
                    try:
                        body = await proto()
                    except (ProtocolClosed, asyncio.CancelledError) as err:
                        raise reader.failed(err, task) from None
                    finally:
                        reader.unwatch(task)
                    ctx.bytes_in = body
                    batch, waiting = ingest.take(ctx, body)
                    try:
                        spooled = waiting is not None and await waiting
                    except REFUSALS as err:
                        raise ingest.refused(err) from None
                    answer = ingest.answer(ctx, batch, spooled)
            except Exception as exc:
                answer = recover(exc, ctx.request_id)
            if isinstance(answer, bytes):  # a plain 200 JSON answer
                response, status, body = None, 200, answer
            else:
                response, status, body = answer, answer.status, answer.body
            middleware.end(ctx, status, body)
        except Exception:  # last resort: the middleware's own recovery failed
            log.exception("unhandled error outside the middleware")
            response = error_response(internal_error(), ctx.request_id)
            status, body = response.status, response.body
        content_type = (
            _JSON_HEADER
            if response is None or response.content_type is JSON
            else ("content-type", response.content_type)
        )
        if response is None or not response.headers:
            headers = self._answer_headers
            headers[0] = content_type
            headers[1] = ("x-request-id", ctx.request_id)
            proto.response_bytes(status, headers, body)
            return
        # A response's own header replaces the default of the same name (the web page's CSP).
        own = {name for name, _ in response.headers}
        headers = [content_type, ("x-request-id", ctx.request_id)]
        headers.extend(h for h in SECURITY_HEADERS if h[0] not in own)
        headers.extend(response.headers)
        proto.response_bytes(status, headers, body)

    # -- small endpoints --------------------------------------------------------------------------

    async def healthz(self, ctx: Context) -> bytes:
        return _OK  # a 200 JSON answer (http.Answer)

    async def readyz(self, ctx: Context) -> Response:
        try:
            up = await asyncio.wait_for(self.store.ping(), 2.0)
        except asyncio.TimeoutError:
            up = False
        metrics.set_gauge(metrics.store_up, 1 if up else 0)
        if not up and self.spool is not None and self.spool.accepting:
            # "Can take traffic": the spool keeps every alert until the database is back.
            return Response(200, _READY_SPOOLING)
        if not up:
            raise HTTPError(503, "not_ready", "database unreachable", headers=[("retry-after", "1")])
        return Response(200, _READY)

    async def openapi(self, ctx: Context) -> Response:
        if self._openapi is None:
            from webhookfast.openapi import served_document

            self._openapi = orjson.dumps(served_document())
        return Response(200, self._openapi)

    async def metrics(self, ctx: Context) -> Response:
        self.access_log.flush()  # this worker's requests so far, counted
        body, content_type = metrics.render()
        return Response(200, body, content_type)


_JSON_HEADER = ("content-type", JSON)

# A request allocates a few hundred short-lived objects, almost none in cycles: with CPython's
# default threshold (700) a young collection ran every few requests (4 % of the event loop's time
# under load, and pauses in the tail). Collections now come every few hundred requests.
GC_THRESHOLD = (50_000, 20, 20)


def tune_gc() -> None:
    """For a worker process, once started: what startup built (modules, pools, routes) is moved
    out of the collector's sight (``gc.freeze``), and young collections come less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def _on_refused(alerts: int) -> None:
    metrics.store_refused_requests.inc()
    metrics.store_refused_alerts.inc(alerts)


def create_app() -> App:
    """Granian's factory target: each worker process builds its app from WEBHOOKFAST_* variables."""
    from webhookfast.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    return App(settings)
