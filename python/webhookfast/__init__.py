"""webhookfast: a fast, durable receiver for Prometheus Alertmanager webhooks."""

from webhookfast._core import PayloadError, __version__, decode, fingerprint

__all__ = ["PayloadError", "__version__", "decode", "fingerprint"]
