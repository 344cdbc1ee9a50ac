"""Every setting of webhookfast, read from ``WEBHOOKFAST_*`` environment variables.

The CLI passes its options through the environment too, so that Granian's worker processes (which
build the app from scratch) see exactly what the parent was given.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


#: A per-field request limit of 0 means none; the decoder is given this instead.
NO_LIMIT = 2**62


class AckMode(str, Enum):
    commit = "commit"
    enqueue = "enqueue"
    spool = "spool"  # answer after the local spool's fsync; the replayer ships to the database


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKFAST_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=256)
    database_url: str = "sqlite:///./webhookfast.db"
    migrate_on_start: bool = True
    log_level: str = "info"
    access_log: bool = True

    # Request limits. The body cap is enforced while reading (Content-Length and chunked bodies).
    # What Alertmanager and Prometheus deliver must pass by default (a 4xx is never retried, so it
    # loses the alert): the body cap holds a 50,000-alert notification, and the per-field limits
    # are off (0) unless set; memory is bounded by the body cap and the queue's byte bound.
    max_body_bytes: int = Field(128 * 1024 * 1024, ge=1)
    body_timeout_s: float = Field(10.0, gt=0)
    max_alerts: int = Field(0, ge=0)
    max_labels: int = Field(0, ge=0)
    max_annotations: int = Field(0, ge=0)
    max_name_bytes: int = Field(0, ge=0)
    max_value_bytes: int = Field(0, ge=0)
    max_depth: int = Field(32, ge=4)

    # Batching and backpressure.
    ack: AckMode = AckMode.commit
    queue_max_alerts: int = Field(200_000, ge=1)
    queue_max_bytes: int = Field(256 * 1024 * 1024, ge=1)
    flush_max_alerts: int = Field(5_000, ge=1)
    flush_concurrency: int = Field(0, ge=0, le=32)  # 0 = the store's own default
    write_deadline_s: float = Field(5.0, gt=0)  # well under Alertmanager's 10 s timeout
    shutdown_flush_timeout_s: float = Field(30.0, gt=0)  # SIGTERM: longest wait for the last flushes
    retry_after_s: int = Field(1, ge=0)

    # Durable local spool (PostgreSQL only; webhookfast.spool): a batch not committed within
    # spool_after_s (or refused by a database that is down) is fsynced here and answered 200.
    spool: bool = True
    spool_dir: Path = Path("webhookfast-spool")
    spool_after_s: float = Field(2.0, gt=0)  # well under Alertmanager's and Prometheus' 10 s timeout
    spool_max_bytes: int = Field(1024 * 1024 * 1024, ge=1)
    spool_segment_bytes: int = Field(8 * 1024 * 1024, ge=4096)
    spool_replay_max_alerts: int = Field(20_000, ge=1)  # alerts per replay transaction

    # PostgreSQL pool.
    pool_min_size: int = Field(1, ge=0)
    pool_max_size: int = Field(4, ge=1)
    connect_timeout_s: float = Field(2.0, gt=0)

    # Retention: prune history older than this many days every prune_interval_s (0 = never).
    retention_days: int = Field(0, ge=0)
    prune_interval_s: int = Field(3600, ge=60)

    # Auth (all optional). Tokens/passwords may be given inline or as files.
    bearer_token: SecretStr | None = None
    bearer_token_file: Path | None = None
    basic_auth_user: str | None = None
    basic_auth_password: SecretStr | None = None
    basic_auth_password_file: Path | None = None
    # HMAC-SHA256 request signing, for senders that can sign (Alertmanager cannot). A signed
    # request older or newer than hmac_max_skew_s is refused: the replay window.
    hmac_secret: SecretStr | None = None
    hmac_secret_file: Path | None = None
    hmac_max_skew_s: int = Field(300, ge=1)
    protect_health: bool = False
    protect_metrics: bool = False

    # TLS served by Granian.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None

    # GET /api/v1/stats answers are reused for this long per query string (0 = never): a 24 h
    # window reads every instance of the day, and dashboards ask the same question many times.
    stats_cache_s: float = Field(5.0, ge=0, le=3600)

    # Per-client rate limit (requests per second, 0 = off), answered with 503 + Retry-After.
    rate_limit_rps: float = Field(0.0, ge=0)
    rate_limit_burst: int = Field(100, ge=1)

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
