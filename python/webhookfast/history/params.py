"""Query parameters of the history API: pydantic models, the Prometheus label-matcher parser, times
(RFC 3339 or relative durations such as ``2h``) and the opaque pagination cursor.

Every parse error becomes ``HTTPError(400, "invalid_parameter", message, path=<parameter name>)``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from webhookfast._core import PromRegex
from webhookfast.durations import MAX_DURATION_US, parse_duration_us
from webhookfast.errors import HTTPError
from webhookfast.storage.readers import compile_regex

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_US = timedelta(microseconds=1)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_MATCHERS = 32
MAX_VALUE_LEN = 4096
# A time, a number or a fingerprint is never longer; longer text is refused before it is parsed.
MAX_SCALAR_LEN = 64


def bad(param: str, message: str) -> HTTPError:
    return HTTPError(400, "invalid_parameter", message, path=param)


# -- query string ---------------------------------------------------------------------------------


def query_dict(raw: str | bytes | None) -> dict[str, str]:
    """``a=1&b=2`` → ``{"a": "1", "b": "2"}``; a parameter given twice is an error."""
    if not raw:
        return {}
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    out: dict[str, str] = {}
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, errors="strict", max_num_fields=64)
    except UnicodeDecodeError:
        raise bad("query", "query string is not valid UTF-8") from None
    except ValueError:
        raise bad("query", "too many query parameters") from None
    for name, value in pairs:
        if name in out:
            raise bad(name[:64], f"parameter {name[:64]!r} given more than once")
        # PostgreSQL text cannot hold NUL and no stored value contains one (ingest replaces it).
        if "\x00" in name or "\x00" in value:
            raise bad(name.replace("\x00", "")[:64] or "query", "parameters may not contain NUL (%00)")
        out[name] = value
    return out


# -- times ----------------------------------------------------------------------------------------


def to_us(dt: datetime) -> int:
    return (dt - EPOCH) // ONE_US


def parse_time_us(text: str, now_us: int) -> int:
    """RFC 3339 (``2024-05-01T10:00:00Z``, offset required), ``now``, or a duration before now
    (``2h`` = two hours ago; a leading ``-`` is accepted: ``-2h``). Raises ValueError."""
    t = text.strip()
    if len(t) > MAX_SCALAR_LEN:
        raise ValueError("expected RFC 3339 (2024-05-01T10:00:00Z) or a duration such as 2h")
    if t == "now":
        return now_us
    d = parse_duration_us(t[1:] if t.startswith("-") else t)
    if d is not None:
        if d > MAX_DURATION_US:
            raise ValueError("duration too long")
        return now_us - d
    if len(t) < 20 or t[10] not in "Tt ":
        raise ValueError("expected RFC 3339 (2024-05-01T10:00:00Z) or a duration such as 2h")
    try:
        dt = datetime.fromisoformat(t[:-1] + "+00:00" if t[-1] in "Zz" else t)
    except ValueError:
        raise ValueError("expected RFC 3339 (2024-05-01T10:00:00Z) or a duration such as 2h") from None
    if dt.tzinfo is None:
        raise ValueError("RFC 3339 time needs a UTC offset (Z or +hh:mm)")
    return to_us(dt)


# -- fingerprints ---------------------------------------------------------------------------------

_HEX16 = re.compile(r"[0-9a-fA-F]{16}")


def parse_fingerprint(text: str) -> int:
    """16 hex digits → the signed 64-bit integer the stores keep. Raises ValueError."""
    if not _HEX16.fullmatch(text):
        raise ValueError("a fingerprint is 16 hexadecimal digits")
    v = int(text, 16)
    return v - (1 << 64) if v >= 1 << 63 else v


# -- label matchers -------------------------------------------------------------------------------

Op = Literal["=", "!=", "=~", "!~"]


@dataclass(frozen=True)
class Matcher:
    name: str
    op: Op
    value: str

    @property
    def is_regex(self) -> bool:
        return self.op in ("=~", "!~")

    @property
    def negated(self) -> bool:
        return self.op in ("!=", "!~")

    # The compiled regex of =~ and !~, kept while the query that parsed it runs (compile_regex).
    regex: PromRegex | None = field(default=None, compare=False, repr=False)


_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_HEX = re.compile(r"[0-9a-fA-F]+")


class MatcherSyntaxError(ValueError):
    pass


def parse_selector(text: str) -> tuple[Matcher, ...]:
    """``{severity="critical",job=~"api.*",team!="x"}`` (an optional leading bare name means
    ``alertname="name"``; ``{}`` is no matcher). Raises MatcherSyntaxError."""
    s = text.strip()
    i = 0
    out: list[Matcher] = []
    m = _NAME.match(s)
    if m:
        out.append(Matcher("alertname", "=", m.group()))
        i = m.end()
        if i == len(s):
            return tuple(out)
    i = _skip_ws(s, i)
    if i >= len(s) or s[i] != "{":
        raise MatcherSyntaxError('expected a selector such as {severity="critical",job=~"api.*"}')
    i = _skip_ws(s, i + 1)
    while i < len(s) and s[i] != "}":
        if s[i] in "\"'`":
            name, i = _string(s, i)
        else:
            m = _NAME.match(s, i)
            if not m:
                raise MatcherSyntaxError(f"expected a label name at offset {i}")
            name, i = m.group(), m.end()
        if not name or '"' in name or "\\" in name:
            raise MatcherSyntaxError("label names must be non-empty and contain no quote or backslash")
        i = _skip_ws(s, i)
        op = next((o for o in ("=~", "!~", "!=", "=") if s.startswith(o, i)), None)
        if op is None:
            raise MatcherSyntaxError(f"expected =, !=, =~ or !~ after {name!r}")
        i = _skip_ws(s, i + len(op))
        if i >= len(s) or s[i] not in "\"'`":
            raise MatcherSyntaxError(f"expected a quoted value for {name!r}")
        value, i = _string(s, i)
        if len(value) > MAX_VALUE_LEN:
            raise MatcherSyntaxError(f"value for {name!r} is too long")
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = compile_regex(value)
            except ValueError as exc:
                raise MatcherSyntaxError(f"invalid regex for {name!r}: {exc}") from None
        out.append(Matcher(name, op, value, regex))  # type: ignore[arg-type]
        if len(out) > MAX_MATCHERS:
            raise MatcherSyntaxError(f"at most {MAX_MATCHERS} matchers")
        i = _skip_ws(s, i)
        if i < len(s) and s[i] == ",":
            i = _skip_ws(s, i + 1)
        elif i < len(s) and s[i] != "}":
            raise MatcherSyntaxError(f"expected ',' or '}}' at offset {i}")
    if i >= len(s):
        raise MatcherSyntaxError("missing closing '}'")
    if _skip_ws(s, i + 1) != len(s):
        raise MatcherSyntaxError("unexpected text after '}'")
    return tuple(out)


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t\r\n":
        i += 1
    return i


def _string(s: str, i: int) -> tuple[str, int]:
    quote = s[i]
    i += 1
    buf: list[str] = []
    while i < len(s):
        c = s[i]
        if c == quote:
            return "".join(buf), i + 1
        if c == "\\" and quote != "`":
            i += 1
            if i >= len(s):
                break
            e = s[i]
            if e in _ESCAPES:
                buf.append(_ESCAPES[e])
            elif e in "uU" and i + (5 if e == "u" else 9) <= len(s):
                n = 4 if e == "u" else 8
                digits = s[i + 1 : i + 1 + n]
                code = int(digits, 16) if _HEX.fullmatch(digits) else -1
                # Surrogates are no characters (neither store can hold one) and NUL is in no value.
                if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise MatcherSyntaxError(f"bad \\{e} escape at offset {i}: not a Unicode character other than NUL")
                buf.append(chr(code))
                i += n
            else:
                raise MatcherSyntaxError(f"unknown escape \\{e} at offset {i}")
            i += 1
            continue
        buf.append(c)
        i += 1
    raise MatcherSyntaxError("unterminated string")


# -- cursor ---------------------------------------------------------------------------------------


def encode_cursor(kind: str, key: list[Any]) -> str:
    raw = orjson.dumps([1, kind, *key])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, kind: str, arity: int) -> list[int]:
    """The key a cursor was made from; ValueError if it is not one of ours or of another listing."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise ValueError("not a cursor returned by this API") from None
    if (
        not isinstance(data, list)
        or len(data) != arity + 2
        or data[0] != 1
        or not all(type(v) is int and -(1 << 63) <= v < (1 << 63) for v in data[2:])
    ):
        raise ValueError("not a cursor returned by this API")
    if data[1] != kind:
        raise ValueError("cursor belongs to a different sort order or endpoint")
    return data[2:]


# -- models ---------------------------------------------------------------------------------------


class _Params(BaseModel):
    # arbitrary types: a Matcher carries its compiled regex (_core.PromRegex).
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, arbitrary_types_allowed=True)

    @field_validator("since", "until", mode="before", check_fields=False)
    @classmethod
    def _time(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, str):
            now_us = (info.context or {}).get("now_us")
            if now_us is None:
                now_us = to_us(datetime.now(timezone.utc))
            return parse_time_us(v, now_us)
        return v

    @field_validator("match", mode="before", check_fields=False)
    @classmethod
    def _match(cls, v: Any) -> Any:
        return parse_selector(v) if isinstance(v, str) else v


class ListParams(_Params):
    """``GET /api/v1/alerts``."""

    status: Literal["firing", "resolved"] | None = None
    since: int | None = None  # µs, on starts_at, inclusive
    until: int | None = None  # µs, on starts_at, exclusive
    fingerprint: int | None = None
    match: tuple[Matcher, ...] = ()
    q: str | None = Field(None, min_length=1, max_length=256)
    sort: Literal["starts_at", "last_seen"] = "starts_at"
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None

    @field_validator("fingerprint", mode="before")
    @classmethod
    def _fp(cls, v: Any) -> Any:
        return parse_fingerprint(v) if isinstance(v, str) else v


class AlertParams(_Params):
    """``GET /api/v1/alerts/{fingerprint}``: its episodes, newest first."""

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


class StatsParams(_Params):
    """``GET /api/v1/stats``."""

    since: int | None = None  # default: 24 hours before until
    until: int | None = None  # default: now
    match: tuple[Matcher, ...] = ()
    top: int = Field(10, ge=1, le=MAX_LIMIT)
    flap_min_changes: int = Field(4, ge=2, le=100_000)


DEFAULT_STATS_WINDOW_US = 24 * 3600 * 10**6


def window_us(since: int | None, until: int | None, now_us: int) -> tuple[int, int]:
    """A statistics window (``/api/v1/stats``, ``/api/v1/histogram``): until defaults to now, since
    to 24 hours before until; a window that does not move forward is a 400."""
    until = until if until is not None else now_us
    since = since if since is not None else until - DEFAULT_STATS_WINDOW_US
    if since >= until:
        raise bad("since", "since must be before until")
    return since, until


def parse_params(model: type[BaseModel], query: str | bytes | None, now_us: int) -> Any:
    """Validate the query string against ``model``; the first problem becomes a 400 naming it."""
    data = query_dict(query)
    try:
        params = model.model_validate(data, context={"now_us": now_us})
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        loc = str(err["loc"][0]) if err["loc"] else "query"
        if err["type"] == "extra_forbidden":
            raise bad(loc[:64], f"unknown parameter {loc[:64]!r}") from None
        msg = err["msg"]
        if err["type"] in ("value_error", "assertion_error"):
            ctx_error = (err.get("ctx") or {}).get("error")
            msg = str(ctx_error) if ctx_error is not None else msg.removeprefix("Value error, ")
        raise bad(loc, f"{loc}: {msg}") from None
    since = getattr(params, "since", None)
    until = getattr(params, "until", None)
    if since is not None and until is not None and since >= until:
        raise bad("since", "since must be before until")
    return params
