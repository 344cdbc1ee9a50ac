"""Credentials from settings: inline or from files, checked once.

Kept apart from the auth middleware so that ``serve`` can check them in the parent process without
importing prometheus-client there (its value class is fixed at import, before
``PROMETHEUS_MULTIPROC_DIR`` is set for the workers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from webhookfast.settings import Settings


def read_secret(name: str, value: SecretStr | None, path: Path | None) -> str | None:
    """The secret ``WEBHOOKFAST_<name>`` given inline or as ``<name>_FILE`` (the file's content,
    surrounding blanks removed); None when neither is set. Raises ValueError when both are set or
    the secret is empty: an empty credential would leave the receiver open, so it stops the start."""
    if value is not None and path is not None:
        raise ValueError(f"set WEBHOOKFAST_{name} or WEBHOOKFAST_{name}_FILE, not both")
    if path is not None:
        secret = path.read_text("utf-8").strip()
        if not secret:
            raise ValueError(f"WEBHOOKFAST_{name}_FILE ({path}) is empty")
        return secret
    if value is not None:
        secret = value.get_secret_value()
        if not secret.strip():
            raise ValueError(f"WEBHOOKFAST_{name} is empty")
        return secret
    return None


@dataclass(frozen=True)
class Credentials:
    bearer_token: str | None
    basic_user: str | None
    basic_password: str | None
    hmac_secret: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Credentials:
        """Raises OSError for an unreadable file, ValueError for an unusable, empty or half
        credential (each would start the receiver with less authentication than configured)."""
        token = read_secret("BEARER_TOKEN", settings.bearer_token, settings.bearer_token_file)
        # Granian hides header values that are not visible ASCII, so such a token could never
        # match: refuse it at start-up rather than answer 401 to every request. (Basic auth
        # travels base64-encoded: any UTF-8 user and password work.)
        if token is not None and not (token.isascii() and token.isprintable()):
            raise ValueError("the bearer token must be printable ASCII (HTTP headers carry nothing else)")
        password = read_secret("BASIC_AUTH_PASSWORD", settings.basic_auth_password, settings.basic_auth_password_file)
        user = settings.basic_auth_user
        if user is not None and not user.strip():
            raise ValueError("WEBHOOKFAST_BASIC_AUTH_USER is empty")
        if user is not None and ":" in user:
            # Basic auth splits user and password at the first colon: this user could never log in.
            raise ValueError("WEBHOOKFAST_BASIC_AUTH_USER must not contain ':'")
        if (user is None) != (password is None):
            raise ValueError(
                "basic auth needs both WEBHOOKFAST_BASIC_AUTH_USER and WEBHOOKFAST_BASIC_AUTH_PASSWORD (or _FILE)"
            )
        hmac_secret = read_secret("HMAC_SECRET", settings.hmac_secret, settings.hmac_secret_file)
        return cls(token, user, password, hmac_secret)
