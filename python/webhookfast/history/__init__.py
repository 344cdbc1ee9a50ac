"""The alert-history API: list alert instances, one alert's episodes and timeline, statistics.

``HistoryApi(store)`` serves ``GET /api/v1/alerts``, ``GET /api/v1/alerts/{fingerprint}`` and
``GET /api/v1/stats`` from either store; ``openapi.PATHS`` describes them. See docs/api.md.
"""

from webhookfast.history.handlers import HistoryApi

__all__ = ["HistoryApi"]
