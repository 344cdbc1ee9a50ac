"""``Auth.check``, the bearer and basic credentials of one request's Authorization header: the
whole-header comparison of Alertmanager's own spelling admits exactly what the general parse admits."""

from __future__ import annotations

import base64

import pytest
from webhookfast.middleware.auth import Auth

TOKEN = "tok-0123456789abcdef"
OTHER = "second-token-fedcba"
NON_ASCII = "jeton-\u00e9t\u00e9"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {TOKEN}", None),  # as Alertmanager sends it
        (f"Bearer {OTHER}", None),  # any configured token
        (f"bearer {TOKEN}", None),  # scheme names are case-insensitive
        (f"BEARER {OTHER}", None),
        (f"Bearer  {TOKEN}", None),  # extra spacing around the credentials
        (f"Bearer {TOKEN} ", None),
        (f"Bearer {NON_ASCII}", None),  # a token outside ASCII takes the general path
        (None, "missing"),
        ("", "wrong_scheme"),
        ("Bearer", "bad_token"),
        ("Bearer ", "bad_token"),
        (f"Bearer {TOKEN[:-1]}", "bad_token"),
        (f"Bearer {TOKEN}x", "bad_token"),
        (f"Bearer {TOKEN},{OTHER}", "bad_token"),
        (f"Bearer {TOKEN}\u00e9", "bad_token"),
        (f"Token {TOKEN}", "wrong_scheme"),
        (f"Bearer{TOKEN}", "wrong_scheme"),
        (basic("alertmanager", "pw"), None),
        (basic("alertmanager", "nope"), "bad_basic"),
    ],
)
def test_check(header: str | None, expected: str | None) -> None:
    auth = Auth(bearer_tokens=[TOKEN, OTHER, NON_ASCII], basic_user="alertmanager", basic_password="pw")
    assert auth.check(header) == expected


def test_bearer_header_without_bearer_tokens_is_the_wrong_scheme() -> None:
    auth = Auth(basic_user="alertmanager", basic_password="pw")
    assert auth.check(f"Bearer {TOKEN}") == "wrong_scheme"
    assert auth.check(basic("alertmanager", "pw")) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {TOKEN}", None),
        (f"bearer {TOKEN}", None),
        (f"Bearer {TOKEN[:-1]}", "bad_token"),
        (f"Bearer {TOKEN}x", "bad_token"),
        (f"Bearer {OTHER}", "bad_token"),
        (f"Token {TOKEN}", "wrong_scheme"),
    ],
)
def test_check_with_one_token(header: str, expected: str | None) -> None:
    """One configured token, as ``serve`` builds it: compared without the loop over tokens."""
    assert Auth(bearer_tokens=[TOKEN]).check(header) == expected


def test_token_with_blanks_around_it_matches_on_neither_path() -> None:
    """The general path strips the credentials, so such a token can never match there; the
    whole-header comparison must not admit it either."""
    auth = Auth(bearer_tokens=[" padded-token "])
    assert auth.check("Bearer  padded-token ") == "bad_token"
    assert auth.check("Bearer padded-token") == "bad_token"
