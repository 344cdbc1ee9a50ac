"""Both stores match a label-matcher regex against exactly the same strings.

``_core.PromRegex`` parses a pattern once (RE2 syntax, Prometheus' ``^(?s:re)$``); SQLite runs its
Rust matcher and PostgreSQL runs its translation (``.postgres``) with ``~``. Hypothesis draws
patterns from a grammar of what Prometheus accepts (classes, Perl and POSIX classes, case folding,
anchors, word boundaries, repetitions past PostgreSQL's bound of 255) and values from a small
alphabet that hits those features, and a real PostgreSQL must agree with the Rust matcher on every
pair. Plus the patterns on which the old Python-``re`` and hand-anchored PostgreSQL paths differed.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webhookfast._core import PromRegex

ALPHABET = "aAbB019_ -.{},\n\t\x0bkKK\u212aséÉſß\u0130ıα\U0001f600"


@pytest.fixture(scope="module")
def pg(postgres_server: object) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    postgres_server.ensure_running()  # type: ignore[attr-defined]
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("SET statement_timeout = 5000")  # as the API's sessions: a slow ARE fails the test
        yield conn


def pg_matches(conn: psycopg.Connection[tuple[object, ...]], regex: PromRegex, values: list[str]) -> list[bool]:
    rows = conn.execute(
        'SELECT v COLLATE "C" ~ %s FROM unnest(%s::text[]) WITH ORDINALITY AS t(v, i) ORDER BY i',
        [regex.postgres, values],
    ).fetchall()
    return [bool(r[0]) for r in rows]


def check(conn: psycopg.Connection[tuple[object, ...]], pattern: str, values: list[str]) -> None:
    regex = PromRegex(pattern)
    rust = [regex.fullmatch(v) for v in values]
    assert pg_matches(conn, regex, values) == rust, (pattern, regex.postgres, values, rust)


# -- a grammar of RE2 patterns ---------------------------------------------------------------------

ATOMS = st.sampled_from(
    [
        "a",
        "b",
        "A",
        "k",
        "s",
        "é",
        "ß",
        "1",
        "_",
        " ",
        "\\.",
        "\\{",
        "\\}",
        "-",
        ",",
        "\\n",
        "\\t",
        "\\x{212A}",
        "\\x41",
        "\\101",
        ".",
        "[ab]",
        "[^a]",
        "[a-z]",
        "[A-Z0-9]",
        "[^\\n]",
        "[-a]",
        "[]a]",
        "[^]a]",
        "\\d",
        "\\D",
        "\\w",
        "\\W",
        "\\s",
        "\\S",
        "[\\d_]",
        "[^\\w]",
        "[[:alpha:]]",
        "[[:^digit:]]",
        "[[:space:]]",
        "[[:word:]]",
        "[[:upper:]]",
        "\\pL",
        "\\PL",
        "\\p{Greek}",
        "\\pN",
        "(?i:k)",
        "(?i:s)",
        "(?i:é)",
        "(?i:[a-c])",
        "(?i:\\w)",
        "^",
        "$",
        "\\A",
        "\\z",
        "\\b",
        "\\B",
        "(?m:^)",
        "(?m:$)",
        "(?s:.)",
        "(?-s:.)",
        "{",
        "a{,2}",
        "x{",
        "\\<",
        "\\>",
        "",
    ]
)
REPEATS = st.sampled_from(
    ["*", "+", "?", "*?", "+?", "{2}", "{0,1}", "{1,3}", "{2,}", "{0}", "{256}", "{0,300}", "{250,260}"]
)
SMALL_REPEATS = st.sampled_from(["*", "+", "?", "{0}", "{2}", "{0,2}", "{1,3}", "{2,}", "{0,}", "{3,5}"])


def patterns() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(inner, min_size=2, max_size=4).map("".join),
            st.lists(inner, min_size=2, max_size=3).map("|".join),
            st.tuples(inner, inner, SMALL_REPEATS).map(lambda t: f"(?:{t[0]}|(?:{t[1]}){t[2]})"),
            inner.map(lambda p: f"({p})"),
            inner.map(lambda p: f"(?:{p})"),
            inner.map(lambda p: f"(?i:{p})"),
            st.tuples(inner, REPEATS).map(lambda t: f"(?:{t[0]}){t[1]}"),
            # repetitions of repetitions (flattened into one in the PostgreSQL translation)
            st.tuples(inner, SMALL_REPEATS, SMALL_REPEATS).map(lambda t: f"((?:{t[0]}){t[1]}){t[2]}"),
        )

    return st.recursive(ATOMS, extend, max_leaves=8)


VALUES = st.lists(
    st.one_of(
        st.text(ALPHABET, max_size=8),
        st.tuples(st.sampled_from("aAkK"), st.integers(250, 305)).map(lambda t: t[0] * t[1]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=patterns(), values=VALUES)
def test_postgres_translation_matches_rust(
    pg: psycopg.Connection[tuple[object, ...]], pattern: str, values: list[str]
) -> None:
    try:
        PromRegex(pattern)
    except ValueError:
        return  # refused on both stores alike (the parameters' 400)
    check(pg, pattern, values)


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.text(ALPHABET + "()[]^$*+?|\\{}:-dwsbpLQEx", max_size=12),
    values=st.lists(st.text(ALPHABET, max_size=6), min_size=1, max_size=6),
)
def test_arbitrary_text_is_refused_or_agrees(
    pg: psycopg.Connection[tuple[object, ...]], pattern: str, values: list[str]
) -> None:
    """Any text: a clean refusal (ValueError, a message), or a pattern both engines read alike."""
    try:
        PromRegex(pattern)
    except ValueError as exc:
        assert str(exc)
        return
    check(pg, pattern, values)


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("[[:digit:]]+", ["0", "42"], ["x", "٣"]),
        ("a{,3}", ["a{,3}"], ["", "a", "aaa"]),  # Go: a brace that opens no repetition is literal
        ("a$", ["a"], ["a\n"]),  # $ is the end of the text, not before a final newline
        ("(?i)straße", ["STRAßE", "straße"], ["STRASSE"]),  # simple case folding only
        ("(?i)k", ["k", "K", "\u212a"], ["x"]),
        ("(?i)é.*", ["Éa", "é"], ["e"]),
        ("\\w+", ["a_1"], ["é", "a-b"]),  # \w is ASCII, as in Go
        ("\\s", [" ", "\n", "\t"], ["\x0b"]),  # Go's \s has no vertical tab
        ("[[:space:]]", ["\x0b"], ["a"]),
        ("a{300}", ["a" * 300], ["a" * 299, "a" * 301]),
        ("(?:ab){2,300}", ["abab", "ab" * 300], ["ab", "ab" * 301]),
        (".*\\bb", ["a b", "b"], ["ab", "éb" * 0 + "_b"]),
        ("(?m)a$\\n^b", ["a\nb"], ["ab"]),
        ("\\<a\\>", ["<a>"], ["a"]),
        ("(.*.*)*#", ["#", "aaaa#"], ["a" * 16]),
        ("", [""], ["a"]),
        ("a|", ["a", ""], ["b"]),
        ("\\x00|b", ["b"], ["a"]),
        ("(.*){1000}", ["", "a" * 40], []),  # PostgreSQL took 47 s on 1000 copies of (.*)
        ("(a?){1000}", ["", "a" * 1000], ["a" * 1001]),
        ("(a|b?){500}", ["", "ab" * 250], ["ab" * 251, "c"]),  # the whole statement timeout before
        ("(ab|c*){2}x", ["x", "abccx", "cccx"], ["ababab"]),
        ("(a{2,}){3,5}", ["a" * 6, "a" * 40], ["a" * 5]),
        ("(a*){0,3}b", ["b", "aab"], ["a"]),
        ("((a){0,2}){2}", ["", "aaaa"], ["aaaaa"]),
    ],
)
def test_examples_agree(
    pg: psycopg.Connection[tuple[object, ...]], pattern: str, matching: list[str], not_matching: list[str]
) -> None:
    regex = PromRegex(pattern)
    values = matching + not_matching
    expected = [True] * len(matching) + [False] * len(not_matching)
    assert [regex.fullmatch(v) for v in values] == expected
    assert pg_matches(pg, regex, values) == expected, regex.postgres


@pytest.mark.parametrize(
    "pattern",
    [
        "a*+",
        "a++",
        "(?>a)",
        "(a)\\1",
        "(?=a)",
        "(?<=a)b",
        "a{1001}",
        "(a{100}){11}",
        "\\u0041",
        "(?x)a b",
        "[a&&b]",
        "[a[b]]",
        "\\Qa\\E",
        "(",
        "[a",
        "*a",
        "(" * 300 + ")" * 300,
    ],
)
def test_refused_patterns(pattern: str) -> None:
    with pytest.raises(ValueError) as info:
        PromRegex(pattern)
    assert 0 < len(str(info.value)) < 200
