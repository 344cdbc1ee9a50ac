"""Every setting of webhookfast, read from ``WEBHOOKFAST_*`` environment variables.

The CLI passes its options through the environment too, so that Granian's worker processes (which
build the app from scratch) see exactly what the parent was given.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from webhookfast._core import Limits

#: A per-field request limit of 0 means none; the decoder is given this instead.
NO_LIMIT = 2**62


class AckMode(str, Enum):
    commit = "commit"
    enqueue = "enqueue"
    spool = "spool"  # answer after the local spool's fsync; the replayer ships to the database


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKFAST_", extra="ignore")

    host: str = Field("127.0.0.1", description="address to listen on (`0.0.0.0` for every interface)")
    port: int = Field(
        8080, ge=0, le=65535, description="port to listen on; `serve` refuses a port another server holds"
    )
    workers: int = Field(1, ge=1, le=256, description="Granian worker processes")
    database_url: str = Field(
        "sqlite:///./webhookfast.db",
        description="`sqlite:///relative.db`, `sqlite:////absolute.db` (the folder must exist) or `postgresql://user:pw@host/db`",
    )
    migrate_on_start: bool = Field(True, description="`serve` applies pending migrations before starting its workers")
    log_level: str = Field(
        "info", description="`debug`, `info`, `warning`, `error` or `critical`; logs are JSON lines on stderr"
    )
    access_log: bool = Field(True, description="one JSON line per request on stderr")

    # Request limits. The body cap is enforced while reading (Content-Length and chunked bodies).
    # What Alertmanager and Prometheus deliver must pass by default (a 4xx is never retried, so it
    # loses the alert): the body cap holds a 50,000-alert notification, and the per-field limits
    # are off (0) unless set; memory is bounded by the body cap and the queue's byte bound.
    max_body_bytes: int = Field(
        128 * 1024 * 1024,
        ge=1,
        description=(
            "larger bodies get 413, judged from Content-Length (a body sent anyway is read and dropped, up to twice "
            "this, so that the sender sees the 413) or, chunked, as soon as they pass it"
        ),
    )
    body_timeout_s: float = Field(10.0, gt=0, description="a body not received in time gets 408")
    # Connections (see connections.py). Granian has one timer for a request head: from a connection's
    # opening or its last answer until a whole head arrived; longer than Prometheus' one-minute
    # resend so that its keep-alive connection usually survives.
    idle_timeout_s: float = Field(
        75.0,
        ge=0.1,
        le=3600,
        description="a connection that has not sent a whole request head this long after it opened or after its last answer is closed (silent, slow-header and idle keep-alive connections alike)",
    )
    max_connections: int = Field(
        1024,
        ge=1,
        description="open connections per worker (lowered to fit the open-file limit, which `serve` raises to the hard limit); beyond it, new connections wait in the listen backlog",
    )
    # Granian has no write timeout of its own.
    write_timeout_s: float = Field(
        30.0,
        ge=0.1,
        le=3600,
        description="an answer the client does not take (nothing acknowledged, or its receive window shut) this long aborts the connection (Linux `TCP_USER_TIMEOUT`)",
    )
    max_alerts: int = Field(0, ge=0, description="alerts per request (0: no limit; beyond it 422 `too_many_alerts`)")
    max_labels: int = Field(0, ge=0, description="labels per alert (0: no limit)")
    max_annotations: int = Field(0, ge=0, description="annotations per alert (0: no limit)")
    max_name_bytes: int = Field(0, ge=0, description="bytes per label or annotation name (0: no limit)")
    max_value_bytes: int = Field(0, ge=0, description="bytes per label or annotation value (0: no limit)")
    # The core's own default (Limits.DEFAULT in Rust): the other limits are off by default here (#13:
    # what real senders send must pass), depth keeps the decoder's stack bounded.
    max_depth: int = Field(Limits().max_depth, ge=4, description="JSON nesting depth, unknown keys included")

    # Batching and backpressure.
    ack: AckMode = Field(
        AckMode.commit,
        description='`commit`: answer 200 once committed; `enqueue`: once queued in memory (see "Acknowledgement modes")',
    )
    queue_max_alerts: int = Field(
        200_000, ge=1, description="alerts queued or being written, per worker; beyond it 503 at once"
    )
    queue_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1,
        description=(
            "memory held by queued or in-flight alerts, per worker; beyond it 503 at once. A body is decoded only "
            "as far as this leaves room (checked while decoding); one that would not fit an empty queue (nor in twice "
            "WEBHOOKFAST_MAX_BODY_BYTES) gets 413"
        ),
    )
    flush_max_alerts: int = Field(5_000, ge=1, description="most alerts written in one transaction")
    sqlite_native_writer: bool = Field(
        True,
        description="with SQLite, flushes are inserted by the Rust core through the SQLite library Python's sqlite3 "
        "loaded, the GIL released (used only where that library is a shared one of its own); `false`: through sqlite3",
    )
    flush_concurrency: int = Field(
        0,
        ge=0,
        le=32,
        description="transactions in flight at once (0: the store's default, 1 for SQLite, 2 for PostgreSQL)",
    )
    write_deadline_s: float = Field(
        5.0,
        gt=0,
        description="longest wait for a commit before 503, well under Alertmanager's 10 s timeout (also PostgreSQL's pool and statement timeouts)",
    )
    shutdown_flush_timeout_s: float = Field(
        30.0,
        gt=0,
        description="on SIGTERM, longest wait for the last flushes (then as long again for spool appends under way)",
    )
    retry_after_s: int = Field(1, ge=0, description="the `Retry-After` of a 503")

    # Durable local spool (PostgreSQL only; webhookfast.ingest.spool): a batch not committed within
    # spool_after_s (or refused by a database that is down) is fsynced here and answered 200.
    spool: bool = Field(
        True,
        description="with PostgreSQL, spool batches the database cannot take in time to a local directory and answer 200 `spooled` (`--no-spool`: answer 503 instead)",
    )
    spool_dir: Path = Field(
        Path("webhookfast-spool"),
        description="the spool directory (one `worker-<n>` directory per worker inside; locked by one server at a time)",
    )
    spool_after_s: float = Field(
        2.0,
        gt=0,
        description="a batch not committed this long is spooled instead (well under Alertmanager's and Prometheus' 10 s timeout)",
    )
    spool_max_bytes: int = Field(
        1024 * 1024 * 1024, ge=1, description="the spool's bound; when it is full (or its disk is), 503 `overloaded`"
    )
    spool_segment_bytes: int = Field(
        8 * 1024 * 1024, ge=4096, description="size of one spool segment file (drained segments are deleted)"
    )
    spool_replay_max_alerts: int = Field(20_000, ge=1, description="most alerts per replay transaction")

    # PostgreSQL pool.
    pool_min_size: int = Field(
        1,
        ge=0,
        description="PostgreSQL connections kept open per worker (the writer keeps at least one per flush in flight)",
    )
    pool_max_size: int = Field(4, ge=1, description="most PostgreSQL connections per worker")
    connect_timeout_s: float = Field(2.0, gt=0, description="PostgreSQL connection timeout")
    label_index_merge_s: float = Field(
        5.0,
        ge=0,
        description="PostgreSQL: seconds between merges of the label-set index's new entries off the ingest path "
        "(0: the flush that overflows GIN's pending list merges it, ~0.2 s at a time)",
    )

    # Retention: prune history older than this many days every prune_interval_s (0 = never).
    retention_days: int = Field(
        0,
        ge=0,
        description="prune history older than this (0: keep all), once per interval for all workers and replicas of a database",
    )
    prune_interval_s: int = Field(3600, ge=60, description="how often retention pruning runs")

    # Auth (all optional). Tokens/passwords may be given inline or as files.
    bearer_token: SecretStr | None = Field(
        None, description="require `Authorization: Bearer <token>` (printable ASCII)"
    )
    bearer_token_file: Path | None = Field(None, description="the bearer token, read from this file")
    basic_auth_user: str | None = Field(None, description="require HTTP basic auth with this user (and a password)")
    basic_auth_password: SecretStr | None = Field(None, description="the basic-auth password")
    basic_auth_password_file: Path | None = Field(None, description="the basic-auth password, read from this file")
    # HMAC-SHA256 request signing, for senders that can sign (Alertmanager cannot). A signed
    # request older or newer than hmac_max_skew_s is refused: the replay window.
    hmac_secret: SecretStr | None = Field(
        None, description='also accept HMAC-signed requests on the ingest routes (see "Signed requests")'
    )
    hmac_secret_file: Path | None = Field(None, description="the HMAC secret, read from this file")
    hmac_max_skew_s: int = Field(
        300,
        ge=1,
        description="a signature's timestamp may differ from the server's clock by this much (the replay window)",
    )
    # A signed body is read before its signature can be checked: what forged requests can make a
    # worker buffer at once (never less than one body of max_body_bytes).
    hmac_unverified_max_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1,
        description="bytes of signed bodies awaiting verification a worker holds at once; beyond, 503 at once",
    )
    protect_health: bool = Field(
        False, description="require auth on /healthz, /readyz, /-/healthy, /-/ready and /openapi.json too"
    )
    protect_metrics: bool = Field(False, description="require auth on /metrics too")

    # TLS served by Granian.
    tls_cert: Path | None = Field(None, description="serve HTTPS with this certificate (PEM)")
    tls_key: Path | None = Field(None, description="the private key of `tls_cert`")
    tls_client_ca: Path | None = Field(None, description="require client certificates signed by this CA")

    # GET /api/v1/stats answers are reused for this long per query string (0 = never): a 24 h
    # window reads every instance of the day, and dashboards ask the same question many times.
    stats_cache_s: float = Field(
        5.0, ge=0, le=3600, description="`GET /api/v1/stats` answers are reused this long per query string (0: never)"
    )

    # The built-in web page over the history (/, /overview, /alerts/<fingerprint>, /ui/*).
    ui: bool = Field(
        True, description='serve the history web page at `/` (see "Web page"); `false` leaves only the API'
    )

    # Per-client rate limit (requests per second, 0 = off), answered with 503 + Retry-After.
    rate_limit_rps: float = Field(
        0.0, ge=0, description="per-client requests per second (0: off), answered 503 + `Retry-After`"
    )
    rate_limit_burst: int = Field(100, ge=1, description="requests a client may send at once before its rate applies")
    # Clients (IPv4 addresses, IPv6 /64s) tracked at once; only refilled buckets are forgotten.
    rate_limit_max_clients: int = Field(
        10_000,
        ge=1,
        description="clients the rate limit tracks at once; a new one beyond them waits (503) until a bucket has refilled",
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite:", "postgresql:", "postgres:")):
            raise ValueError("database_url must start with sqlite:// or postgresql://")
        return url

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        level = level.lower()
        if level not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("log_level must be debug, info, warning, error or critical")
        return level

    def env(self) -> dict[str, str]:
        """This configuration as ``WEBHOOKFAST_*`` variables, for the worker processes."""
        out: dict[str, str] = {}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, Enum):
                value = value.value
            out[f"WEBHOOKFAST_{name.upper()}"] = str(value)
        return out


def reference_table() -> str:
    """Every setting as a Markdown table (README.md's "Settings" section is this table, checked by
    tests/test_settings_doc.py; `webhookfast settings` prints it)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `WEBHOOKFAST_{name.upper()}` | {_shown(name, field.default)} | {field.description} |")
    return "\n".join(rows) + "\n"


def _shown(name: str, default: object) -> str:
    if default is None:
        return "—"
    if isinstance(default, Enum):
        default = default.value
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if name.endswith("_bytes") and isinstance(default, int) and default >= 1024 and default % 1024 == 0:
        size, unit = default // 1024, "KiB"
        if size % 1024 == 0:
            size, unit = size // 1024, "MiB"
        return f"{size} {unit}"
    return f"`{default}`"
