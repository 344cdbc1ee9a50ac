use super::*;

fn re(p: &str) -> PromRegex {
    PromRegex::new(p).unwrap_or_else(|e| panic!("{p:?}: {e}"))
}

fn err(p: &str) -> String {
    PromRegex::new(p)
        .err()
        .unwrap_or_else(|| panic!("{p:?} accepted"))
        .message
}

#[test]
fn fully_anchored_and_dot_matches_newline() {
    let r = re("a.c");
    assert!(r.is_match("abc"));
    assert!(r.is_match("a\nc"));
    assert!(!r.is_match("xabc"));
    assert!(!r.is_match("abcx"));
    assert!(
        !r.is_match("abc\n"),
        "$ is the end of the text, not before a final newline"
    );
    assert!(re("a|b").is_match("b"));
    assert!(!re("a|b").is_match("ab"));
    assert!(re("").is_match(""));
    assert!(!re("").is_match("x"));
}

#[test]
fn catastrophic_patterns_run_in_linear_time() {
    let r = re("(.*.*)*#");
    let value = "a".repeat(65536);
    let t = std::time::Instant::now();
    assert!(!r.is_match(&value));
    assert!(t.elapsed().as_secs_f64() < 2.0, "{:?}", t.elapsed());
}

#[test]
fn go_semantics() {
    // POSIX classes, \d \s \w are ASCII as in Go.
    assert!(re("[[:digit:]]+").is_match("0123"));
    assert!(!re(r"\d").is_match("٣"));
    assert!(!re(r"\w").is_match("é"));
    assert!(!re(r"\s").is_match("\x0B"), "Go's \\s has no vertical tab");
    assert!(re(r"[[:space:]]").is_match("\x0B"));
    assert!(re(r"\D").is_match("é"));
    assert!(re(r"[^\d]").is_match("x"));
    // A brace that opens no repetition is a literal.
    assert!(re("a{,3}").is_match("a{,3}"));
    assert!(!re("a{,3}").is_match("aa"));
    assert!(re("a{2}").is_match("aa"));
    assert!(re("x{").is_match("x{"));
    assert!(re("[{]{1,2}").is_match("{{"));
    // \< and \> are literals to Go.
    assert!(re(r"\<a\>").is_match("<a>"));
    assert!(re(r"a\b{start}").is_match("a{start}"));
    assert!(re(r"\p{Greek}{2}").is_match("αβ"));
    assert!(re(r"[\p{Greek}{]+").is_match("α{"));
    // Octal escapes.
    assert!(re(r"\101").is_match("A"));
    // Case folding is Unicode's simple folding, expanded by the parser.
    assert!(!re("(?i)straße").is_match("STRASSE"));
    assert!(re("(?i)é").is_match("É"));
    // ASCII word boundaries: é is not an ASCII word character, so "éb" has one before its b.
    assert!(re(r".*\bb").is_match("a b"));
    assert!(re(r".*\bb").is_match("éb"));
    // Multi-line anchors.
    assert!(re(r"(?m)a$\n^b").is_match("a\nb"));
}

#[test]
fn refuses_what_go_refuses_or_reads_differently() {
    for p in [
        "a*+",
        "a++",
        "a**",
        "a{2}{3}",
        "(?>a)",
        r"\1",
        "(a)\\1",
        "(?=a)",
        "(?<!a)",
        "a{1001}",
        "(a{500}){3}",
        "((a{10}){10}){11}",
        r"\u0041",
        r"\U00000041",
        "(?x)a",
        "(?u)a",
        "(?R)a",
        "[a&&b]",
        "[a--b]",
        "[a[b]]",
        "(",
        ")",
        "[a",
        "*",
        r"\Q.\E",
        r"\pX",
        "(?P<n>a)(?P<n>b)",
    ] {
        let _ = err(p);
    }
    let deep = format!("{}a{}", "(".repeat(1000), ")".repeat(1000));
    assert!(err(&deep).contains("nest"), "{}", err(&deep));
    assert!(err("a{1001}").contains("1000"));
    assert!(PromRegex::new(&"a".repeat(MAX_PATTERN_BYTES + 1)).is_err());
    // Compiling is bounded too.
    assert!(err(r"\pL{1000}").contains("large"));
    // Expanding Unicode classes is bounded too (1300 case-folded \pL took 0.5 s).
    let many = format!("(?i){}", r"\pL".repeat(1300));
    let started = std::time::Instant::now();
    assert!(err(&many).contains("Unicode classes"), "{}", err(&many));
    assert!(
        started.elapsed().as_millis() < 100,
        "{:?}",
        started.elapsed()
    );
    let _ = re(&r"[\p{Greek}x]".repeat(MAX_UNICODE_CLASSES));
}

#[test]
fn accepts_what_go_accepts() {
    for p in [
        "(a{500}){2}",
        "a{1000}",
        "a{0}",
        "(?i)abc",
        "(?i:a)b",
        "(?s-i:a)",
        "(?U)a*",
        "(?P<name>a)",
        "(?<name>a)",
        "[]a]",
        "[^]a]",
        "[[:^alpha:]]",
        r"\pL",
        r"\p{Greek}",
        r"\PN",
        r"\x{10FFFF}",
        r"\x41",
        r"\.",
        r"\%",
        "a|",
        "()",
        r"\A\z",
        "[-a]",
        "[a-]",
        r"[\d-]",
    ] {
        let _ = re(p);
    }
}

#[test]
fn postgres_translation_shapes() {
    assert_eq!(re("a.b").postgres(), r"^a[\u0001-\U0010FFFF]b$");
    assert_eq!(re("a{600}").postgres(), "^(?:a){255}(?:a){255}(?:a){90}$");
    assert_eq!(
        re("a{2,600}").postgres(),
        "^(?:a){2}(?:a){0,255}(?:a){0,255}(?:a){0,88}$"
    );
    assert_eq!(re("(?i)k").postgres(), r"^[Kk\u212A]$");
    assert_eq!(re(r"a\.b|").postgres(), r"^(?:a\u002Eb)?$");
    assert_eq!(re("^*a").postgres(), r"^(?:(?:^)|)a$");
    assert_eq!(re(r"\x00").postgres(), format!("^{}$", PG_NOTHING));
    assert!(!re("a.").postgres().contains("\\u0000"));
    // Repetitions of repetitions become one (PostgreSQL is slow on many copies of a nullable part).
    assert_eq!(re("(.*){1000}").postgres(), re(".*").postgres());
    assert_eq!(re("(a?){1000}").postgres(), re("a{0,1000}").postgres());
    assert_eq!(re("(a{2,}){3,5}").postgres(), re("a{6,}").postgres());
    assert_eq!(
        re("(a|b?){500}").postgres(),
        re("(?:[ab]){0,500}").postgres()
    );
    assert_eq!(re("(a|bc*){500}").postgres(), re("(a|bc*){500}").postgres());
    assert_eq!(re("(ab|c*){2}").postgres(), re("(?:ab|c+){0,2}").postgres());
    assert_eq!(
        re("(?:a{2,3}){2}").postgres(),
        "^(?:(?:a){2}(?:a){0,1}){2}$"
    );
}

#[test]
fn never_panics_on_odd_input() {
    for p in [
        "\\",
        "[",
        "[^",
        "[]",
        "{",
        "}",
        "a{",
        "a{1",
        "a{1,",
        "(?",
        "(?i",
        "(?P<",
        "\\x{",
        "\\p{",
        "[[:",
        "[[:x:]]",
        "\u{10FFFF}",
        "\\\u{e9}",
    ] {
        let _ = PromRegex::new(p);
    }
}

/// The fuzz target's invariants (rust/fuzz/fuzz_targets/promregex.rs) on every sequence of up to
/// three tokens: a clean refusal, or a bounded, anchored translation and a matcher that runs.
#[test]
fn every_short_token_sequence_is_refused_cleanly_or_compiles() {
    const TOKENS: &[&str] = &[
        "a",
        "(",
        ")",
        "(?:",
        "(?i)",
        "[",
        "]",
        "[^",
        "^",
        "$",
        ".",
        "*",
        "+",
        "?",
        "|",
        "{",
        "}",
        "{2}",
        "{,3}",
        "{1001}",
        r"\d",
        r"\b",
        r"\pL",
        r"\x",
        r"\1",
        r"\Q",
        "-",
        "&&",
        "[:alpha:]",
        "\0",
        "é",
    ];
    let mut seen = 0;
    for a in TOKENS {
        for b in TOKENS {
            for c in TOKENS {
                let pattern = format!("{a}{b}{c}");
                match PromRegex::new(&pattern) {
                    Err(e) => assert!(
                        !e.message.is_empty() && e.message.len() < 300,
                        "{pattern:?}: {e:?}"
                    ),
                    Ok(re) => {
                        let pg = re.postgres();
                        assert!(
                            pg.starts_with('^') && pg.ends_with('$') && !pg.contains('\0'),
                            "{pattern:?}: {pg}"
                        );
                        let _ = re.is_match(&pattern);
                        seen += 1;
                    }
                }
            }
        }
    }
    assert!(seen > 1000, "{seen}");
}
