"""Prometheus durations (``90s``, ``1h30m``, ``7d``, ``2w``, ``1y``, ``500ms``), the one parser
for the history API's times and the CLI's ``prune --older-than``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?")
_UNIT_US = (365 * 86400 * 10**6, 7 * 86400 * 10**6, 86400 * 10**6, 3600 * 10**6, 60 * 10**6, 10**6, 1000)
MAX_DURATION_US = 100 * 365 * 86400 * 10**6
# Longer digit runs cannot name a duration under MAX_DURATION_US; refusing them first keeps int()
# from converting thousands of digits.
_MAX_DIGITS = 20


def parse_duration_us(text: str) -> int | None:
    """``text`` as a Prometheus duration in µs, or None when it is not one."""
    m = _DURATION.fullmatch(text)
    if not text or m is None or not any(m.groups()):
        return None
    if any(g is not None and len(g) > _MAX_DIGITS for g in m.groups()):
        return MAX_DURATION_US + 1
    return sum(int(g) * u for g, u in zip(m.groups(), _UNIT_US, strict=True) if g)
