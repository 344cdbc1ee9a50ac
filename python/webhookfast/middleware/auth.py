"""Authentication: bearer tokens and basic auth, exactly as Alertmanager's ``http_config`` sends
them, and optional HMAC-SHA256 request signatures for senders that can sign. Any configured method
admits a request on its own. Comparisons are constant-time, secrets are never logged, and a refusal
is a 401 with ``WWW-Authenticate`` naming the accepted schemes.

A signature covers the body, which the middleware has not read: it lets a request through to an
ingest handler (``ctx.signature_check``) only when both signature headers are well formed and the
timestamp is inside the window (``check_signature_headers``; anything else is refused before a
byte of the body is read), and the handler checks the signature right after reading the body and
before decoding it (``Auth.verify_signature``), holding at most ``WEBHOOKFAST_HMAC_UNVERIFIED_MAX_BYTES``
of such unverified bodies at once (``ingest.ByteBudget``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from typing import TYPE_CHECKING, Any

from webhookfast import metrics
from webhookfast.credentials import Credentials
from webhookfast.errors import HTTPError
from webhookfast.http import Context

if TYPE_CHECKING:
    from webhookfast.settings import Settings


TIMESTAMP_HEADER = "x-webhookfast-timestamp"
SIGNATURE_HEADER = "x-webhookfast-signature"
_PREFIX = "sha256="


def sign(secret: bytes, timestamp: int | str, body: bytes) -> str:
    """The ``X-Webhookfast-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``f"{timestamp}." + body``.
    The timestamp is inside the MAC so that an old signature cannot be re-dated into the window."""
    return _PREFIX + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}", re.IGNORECASE)  # hex case carries no meaning


def check_signature_headers(
    max_skew_s: int, timestamp: str | None, signature: str | None, now: float
) -> tuple[str, str] | None:
    """What can be judged before the body is read: both headers present and well formed, the
    timestamp inside the window. None when the body is worth reading, else (metric reason,
    message). (The window is public: checking it first tells a forger nothing worth a secret, and
    spares reading his body.)"""
    if timestamp is None or signature is None:
        return "bad_signature", "both X-Webhookfast-Timestamp and X-Webhookfast-Signature are required"
    timestamp = timestamp.strip()
    # Unix seconds, digits only: no sign, no fraction, nothing huge to parse.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return "bad_signature", "X-Webhookfast-Timestamp must be unix seconds"
    if not _SIGNATURE.fullmatch(signature.strip()):
        return "bad_signature", "X-Webhookfast-Signature must be sha256=<64 hex digits>"
    if abs(now - int(timestamp)) > max_skew_s:
        return "stale_signature", "signature timestamp outside the allowed window"
    return None


def check_signature(
    secret: bytes, max_skew_s: int, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> tuple[str, str] | None:
    """None when the signature is valid and fresh, else (metric reason, message). The message says
    what failed, never what was expected."""
    failure = check_signature_headers(max_skew_s, timestamp, signature, now)
    if failure is not None:
        return failure
    assert timestamp is not None and signature is not None
    expected = sign(secret, timestamp.strip(), body).encode()
    given = signature.strip().lower().encode()
    if not hmac.compare_digest(given, expected):
        return "bad_signature", "signature does not match"
    return None


class Auth:
    def __init__(
        self,
        *,
        bearer_tokens: list[str] | None = None,
        basic_user: str | None = None,
        basic_password: str | None = None,
        hmac_secret: str | None = None,
        hmac_max_skew_s: int = 300,
    ) -> None:
        # An empty or half credential would admit more than configured (Credentials refuses them
        # at start; this guards any other caller).
        if any(not t for t in bearer_tokens or []) or hmac_secret == "":
            raise ValueError("empty credential")
        if (basic_user is None) != (basic_password is None) or basic_user == "" or basic_password == "":
            raise ValueError("basic auth needs a user and a password")
        self._tokens = [t.encode() for t in bearer_tokens or []]
        # The header exactly as Alertmanager's http_config sends it, compared whole: a request
        # in that form is admitted without splitting, lowering or encoding its header (a dozen
        # Python allocations per request, benches/test_allocations.py). Other spellings of the
        # scheme or spacing take the general path below. A token with blanks around it never
        # matches there (the credentials are stripped), so it is left out here too.
        self._bearer_lines = tuple(f"Bearer {t}" for t in bearer_tokens or [] if t.isascii() and t == t.strip())
        self._basic: tuple[bytes, bytes] | None = None
        if basic_user is not None and basic_password is not None:
            self._basic = (basic_user.encode(), basic_password.encode())
        self._hmac = hmac_secret.encode() if hmac_secret is not None else None
        self._max_skew_s = hmac_max_skew_s
        schemes = []
        if self._tokens:
            schemes.append('Bearer realm="webhookfast"')
        if self._basic:
            schemes.append('Basic realm="webhookfast", charset="UTF-8"')
        if self._hmac:
            # Not a registered scheme: it tells a client that signed requests are accepted.
            schemes.append('Signature realm="webhookfast", headers="X-Webhookfast-Timestamp X-Webhookfast-Signature"')
        # One header line per challenge: browsers read only the first challenge of a line, so a
        # Basic challenge after a Bearer one on the same line never gets the browser's prompt.
        self._challenge = [("www-authenticate", scheme) for scheme in schemes]

    @classmethod
    def from_settings(cls, settings: Settings) -> Auth:
        creds = Credentials.from_settings(settings)
        return cls(
            bearer_tokens=[creds.bearer_token] if creds.bearer_token else [],
            basic_user=creds.basic_user,
            basic_password=creds.basic_password,
            hmac_secret=creds.hmac_secret,
            hmac_max_skew_s=settings.hmac_max_skew_s,
        )

    @property
    def basic_enabled(self) -> bool:
        return self._basic is not None

    @property
    def enabled(self) -> bool:
        return bool(self._tokens or self._basic or self._hmac)

    def _refuse(self, reason: str, message: str) -> HTTPError:
        metrics.auth_failures.labels(reason).inc()
        return HTTPError(401, "unauthorized", message, headers=self._challenge)

    def verify_signature(self, headers: Any, body: bytes, now: float | None = None) -> None:
        """For a request admitted on its signature headers: raises the 401 unless the signature
        over this body is valid and fresh."""
        if self._hmac is None:  # the middleware hands this out only when a secret is set
            raise self._refuse("missing", "valid credentials are required")
        failure = check_signature(
            self._hmac,
            self._max_skew_s,
            headers.get(TIMESTAMP_HEADER),
            headers.get(SIGNATURE_HEADER),
            body,
            time.time() if now is None else now,
        )
        if failure is not None:
            raise self._refuse(*failure)

    def _bearer_ok(self, credentials: str) -> bool:
        given = credentials.strip().encode()
        ok = False
        for token in self._tokens:  # no early exit: time does not tell which token nearly matched
            ok |= hmac.compare_digest(given, token)
        return ok

    def _basic_ok(self, credentials: str) -> bool:
        assert self._basic is not None
        try:
            raw = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = raw.partition(b":")
        if not sep:
            return False
        user_ok = hmac.compare_digest(user, self._basic[0])
        password_ok = hmac.compare_digest(password, self._basic[1])
        return user_ok & password_ok

    def check(self, header: str | None) -> str | None:
        """None when admitted, else the reason (a bounded metric label)."""
        if header is None:
            return "missing"
        lines = self._bearer_lines
        if lines and header.isascii():
            if len(lines) == 1:  # the usual case, without the loop's iterator object
                ok = hmac.compare_digest(header, lines[0])
            else:
                ok = False
                for line in lines:  # no early exit, as in _bearer_ok
                    ok |= hmac.compare_digest(header, line)
            if ok:
                return None
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self._tokens:
            return None if self._bearer_ok(credentials) else "bad_token"
        if scheme == "basic" and self._basic is not None:
            return None if self._basic_ok(credentials) else "bad_basic"
        return "wrong_scheme"

    def admit(self, ctx: Context) -> None:
        """Raise the 401 of a request to a protected route without valid credentials; admit a
        signed request on its headers, leaving the body's check to its handler."""
        route = ctx.route
        if route is not None and route.protected:
            headers = ctx.scope.headers
            reason = self.check(headers.get("authorization"))
            if reason is not None:
                signed = self._hmac is not None and (
                    headers.get(SIGNATURE_HEADER) is not None or headers.get(TIMESTAMP_HEADER) is not None
                )
                # Only POST handlers read a body (GET /api/v2/alerts shares the ingest path).
                if signed and route.signable and ctx.scope.method == "POST":
                    failure = check_signature_headers(
                        self._max_skew_s, headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER), time.time()
                    )
                    if failure is not None:  # refused before its body is read
                        raise self._refuse(*failure)
                    # Admitted for now: the handler verifies the signature over the body.
                    ctx.signature_check = self.verify_signature
                elif signed:
                    raise self._refuse(reason, "request signatures are accepted on ingest routes only")
                else:
                    raise self._refuse(reason, "valid credentials are required")
