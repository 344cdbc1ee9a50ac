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


def read_secret(value: SecretStr | None, path: Path | None) -> str | None:
    """A secret given inline or as a file (its content, surrounding blanks removed)."""
    if path is not None:
        return path.read_text("utf-8").strip() or None
    if value is not None:
        return value.get_secret_value() or None
    return None


@dataclass(frozen=True)
class Credentials:
    bearer_token: str | None
    basic_user: str | None
    basic_password: str | None
    hmac_secret: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Credentials:
        """Raises OSError for an unreadable file, ValueError for an unusable credential."""
        token = read_secret(settings.bearer_token, settings.bearer_token_file)
        # Granian hides header values that are not visible ASCII, so such a token could never
        # match: refuse it at start-up rather than answer 401 to every request. (Basic auth
        # travels base64-encoded: any UTF-8 user and password work.)
        if token is not None and not (token.isascii() and token.isprintable()):
            raise ValueError("the bearer token must be printable ASCII (HTTP headers carry nothing else)")
        password = read_secret(settings.basic_auth_password, settings.basic_auth_password_file)
        hmac_secret = read_secret(settings.hmac_secret, settings.hmac_secret_file)
        return cls(token, settings.basic_auth_user, password, hmac_secret)
