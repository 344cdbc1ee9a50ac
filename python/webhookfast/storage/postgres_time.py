"""Microseconds since the Unix epoch as a PostgreSQL ``timestamptz`` parameter, exactly, for every
value a column can hold: one conversion for the writer (retention's cutoff) and the history
queries (a cursor must continue right after its row, wherever the row lies)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# 400 Gregorian years: the calendar (leap days included) repeats after them.
_CYCLE_US = 146_097 * 86_400_000_000
_Y2000_US = 946_684_800_000_000


MIN_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
MAX_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


def clamped(us: int) -> datetime:
    """An aware UTC datetime within years 1-9999 (for a cutoff, where a bound beyond them means
    the same as the bound itself)."""
    return EPOCH + timedelta(microseconds=min(max(us, MIN_US), MAX_US))


def timestamptz(us: int) -> datetime | str:
    """An aware UTC datetime; outside Python's years 1-9999 (times stored before they were
    refused), PostgreSQL's own text form of the instant, which it parses exactly."""
    try:
        return EPOCH + timedelta(microseconds=us)
    except OverflowError:
        return _text(us)


def _text(us: int) -> str:
    # Computed within a 400-year cycle that Python can represent, then the cycles put back.
    cycles = (us - _Y2000_US) // _CYCLE_US
    t = EPOCH + timedelta(microseconds=us - cycles * _CYCLE_US)
    year = t.year + 400 * cycles
    rest = t.strftime("%m-%d %H:%M:%S.%f+00")
    return f"{year:04d}-{rest}" if year >= 1 else f"{1 - year:04d}-{rest} BC"
