//! Prometheus label-matcher regexes (`=~`, `!~`) for both stores.
//!
//! Prometheus parses a matcher's value with Go's `regexp/syntax` (RE2 syntax, `Perl|DotNL`) and
//! matches `^(?s:value)$`. [`PromRegex::new`] parses the value once with `regex-syntax`, refuses
//! what Go refuses or reads differently, and then keeps two renderings of the *same* parsed form:
//!
//! * a `regex-automata` matcher (linear time in the value, compile size bounded) for SQLite, and
//! * an equivalent PostgreSQL ARE ([`PromRegex::postgres`]) built from the parsed form only:
//!   explicit escapes, bracket classes from the class ranges (case folding already expanded),
//!   repetition bounds split under ARE's limit of 255, anchors as constraints.
//!
//! So both stores match exactly the same strings by construction, whatever PostgreSQL's locale.

use std::fmt::{self, Write as _};

use regex_automata::meta;
use regex_syntax::ast::{
    self, Assertion, AssertionKind, Ast, ClassAscii, ClassAsciiKind, ClassBracketed, ClassPerl,
    ClassPerlKind, ClassSet, ClassSetItem, ClassSetUnion, Flag, FlagsItemKind, GroupKind,
    LiteralKind, RepetitionKind, RepetitionRange,
};
use regex_syntax::hir::{self, Class, Hir, HirKind, Look};

/// Longest pattern accepted, in bytes (the API's matcher values are at most 4096 characters).
pub const MAX_PATTERN_BYTES: usize = 16 * 1024;
/// Deepest nesting of groups, classes and repetitions (Go allows 1000; a label matcher needs few).
pub const NEST_LIMIT: u32 = 64;
/// Largest repetition count, and largest product of nested counts (Go's `repeatIsValid`).
pub const MAX_REPEAT: u32 = 1000;
/// Compiled-size bounds: the NFA, and the lazy DFA's cache (per matcher).
const NFA_SIZE_LIMIT: usize = 1 << 20;
const DFA_CACHE_BYTES: usize = 1 << 20;
/// Longest PostgreSQL translation (a `\p{L}` under `(?i)` is ~8 kB).
pub const MAX_POSTGRES_BYTES: usize = 256 * 1024;
/// Most Unicode classes (`\pL`, `\p{Greek}`) in one pattern: each costs up to ~0.4 ms to expand
/// (case folding), and a few dozen already exceed MAX_POSTGRES_BYTES.
pub const MAX_UNICODE_CLASSES: usize = 32;
/// PostgreSQL's largest repetition bound (`DUPMAX`).
const PG_DUPMAX: u32 = 255;

/// A pattern Prometheus would refuse, or one this receiver refuses to keep both stores equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexError {
    pub message: String,
}

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RegexError {}

fn refuse(message: impl Into<String>) -> RegexError {
    RegexError {
        message: message.into(),
    }
}

fn refuse_at(what: &str, span: &ast::Span) -> RegexError {
    refuse(format!("{what} at offset {}", span.start.offset))
}

/// A compiled, fully anchored Prometheus regex.
#[derive(Clone, Debug)]
pub struct PromRegex {
    matcher: meta::Regex,
    postgres: String,
}

impl PromRegex {
    pub fn new(pattern: &str) -> Result<PromRegex, RegexError> {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(refuse(format!(
                "regex longer than {MAX_PATTERN_BYTES} bytes"
            )));
        }
        let pattern = escape_literal_braces(pattern);
        let mut ast = ast::parse::ParserBuilder::new()
            .nest_limit(NEST_LIMIT)
            .octal(true) // Go reads \0, \012 as octal; a lone \1..\7 is refused below
            .build()
            .parse(&pattern)
            .map_err(|e| refuse_at(&e.kind().to_string(), e.span()))?;
        let mut unicode_classes = 0;
        go_compatible(&mut ast, MAX_REPEAT, &mut unicode_classes)?;
        let inner = hir::translate::TranslatorBuilder::new()
            .utf8(true)
            .unicode(true)
            .dot_matches_new_line(true) // the (?s: of ^(?s:re)$
            .build()
            .translate(&pattern, &ast)
            .map_err(|e| refuse_at(&e.kind().to_string(), e.span()))?;
        let hir = Hir::concat(vec![
            Hir::look(Look::Start),
            ascii_word_boundaries(&inner),
            Hir::look(Look::End),
        ]);
        let mut postgres = String::new();
        to_postgres(&hir, &mut postgres)?;
        if postgres.len() > MAX_POSTGRES_BYTES {
            return Err(refuse("regex too large once its classes are expanded"));
        }
        let config = meta::Config::new()
            .nfa_size_limit(Some(NFA_SIZE_LIMIT))
            .onepass_size_limit(Some(NFA_SIZE_LIMIT))
            .dfa_size_limit(Some(NFA_SIZE_LIMIT))
            .hybrid_cache_capacity(DFA_CACHE_BYTES);
        let matcher = meta::Regex::builder()
            .configure(config)
            .build_from_hir(&hir)
            .map_err(|e| match e.size_limit() {
                Some(_) => refuse("regex too large (its compiled form exceeds 1 MiB)"),
                None => refuse(format!("invalid regex: {e}")),
            })?;
        Ok(PromRegex { matcher, postgres })
    }

    /// Whether the whole of `value` matches (Prometheus' `^(?s:re)$`). Linear in `value`.
    pub fn is_match(&self, value: &str) -> bool {
        self.matcher.is_match(value)
    }

    /// The equivalent PostgreSQL ARE, anchored, for `value COLLATE "C" ~ re`.
    pub fn postgres(&self) -> &str {
        &self.postgres
    }
}

// -- Go compatibility ------------------------------------------------------------------------------

/// Go reads a `{` that does not open `{n}`, `{n,}` or `{n,m}` as a literal (`a{,3}` matches the
/// text "a{,3}"); regex-syntax refuses it. Escape those braces first. Classes and escapes are
/// skipped as Go's parser skips them.
fn escape_literal_braces(pattern: &str) -> std::borrow::Cow<'_, str> {
    let b = pattern.as_bytes();
    let mut out: Option<String> = None;
    let mut i = 0;
    let mut copied = 0;
    // \p{Greek}, \P{L}, \x{41}: the braces belong to the escape.
    let skip_escape = |i: usize| match (b.get(i + 1), b.get(i + 2)) {
        (Some(b'p' | b'P' | b'x'), Some(b'{')) => {
            pattern[i..].find('}').map_or(b.len(), |end| i + end + 1)
        }
        _ => i + 2,
    };
    while i < b.len() {
        match b[i] {
            b'\\' => i = skip_escape(i),
            b'[' => {
                i += 1;
                if b.get(i) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i) == Some(&b']') {
                    i += 1; // a leading ] is a literal
                }
                while i < b.len() && b[i] != b']' {
                    if b[i] == b'\\' {
                        i = skip_escape(i);
                        continue;
                    } else if b[i] == b'[' && b.get(i + 1) == Some(&b':') {
                        if let Some(end) = pattern[i + 2..].find(":]") {
                            i += end + 3;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            b'{' => {
                if !is_repeat(&b[i..]) {
                    let o = out.get_or_insert_with(|| String::with_capacity(b.len() + 8));
                    o.push_str(&pattern[copied..i]);
                    o.push_str("\\{");
                    copied = i + 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    match out {
        Some(mut o) => {
            o.push_str(&pattern[copied..]);
            o.into()
        }
        None => pattern.into(),
    }
}

/// `{n}`, `{n,}` or `{n,m}` (decimal digits only) at the start of `b`.
fn is_repeat(b: &[u8]) -> bool {
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let n = digits(1);
    if n == 0 {
        return false;
    }
    let mut i = 1 + n;
    if b.get(i) == Some(&b',') {
        i += 1;
        i += digits(i);
    }
    b.get(i) == Some(&b'}')
}

/// Refuses what Go's parser refuses or reads differently, and rewrites `\d`, `\s`, `\w` to Go's
/// ASCII classes. `budget` is Go's `repeatIsValid`: nested counted repetitions may not expand the
/// innermost expression more than MAX_REPEAT times.
fn go_compatible(
    ast: &mut Ast,
    budget: u32,
    unicode_classes: &mut usize,
) -> Result<(), RegexError> {
    match ast {
        Ast::Empty(_) | Ast::Dot(_) => Ok(()),
        Ast::ClassUnicode(class) => count_unicode_class(&class.span, unicode_classes),
        Ast::Literal(lit) => go_literal(lit),
        Ast::Flags(set) => go_flags(&set.flags),
        Ast::Assertion(a) => {
            if let Some(lit) = go_assertion(a)? {
                *ast = Ast::Literal(Box::new(lit));
            }
            Ok(())
        }
        Ast::ClassPerl(perl) => {
            let class = perl_class(perl);
            *ast = Ast::ClassBracketed(Box::new(class));
            Ok(())
        }
        Ast::ClassBracketed(class) => go_class_set(&mut class.kind, true, unicode_classes),
        Ast::Repetition(rep) => {
            if let Ast::Repetition(_) = *rep.ast {
                return Err(refuse_at(
                    "invalid nested repetition operator",
                    &rep.op.span,
                ));
            }
            let mut budget = budget;
            if let RepetitionKind::Range(range) = &rep.op.kind {
                let (min, max) = match *range {
                    RepetitionRange::Exactly(n) => (n, Some(n)),
                    RepetitionRange::AtLeast(n) => (n, None),
                    RepetitionRange::Bounded(m, n) => (m, Some(n)),
                };
                if min > MAX_REPEAT || max.is_some_and(|n| n > MAX_REPEAT) {
                    return Err(refuse_at(
                        &format!("repetition count above {MAX_REPEAT}"),
                        &rep.op.span,
                    ));
                }
                let m = max.unwrap_or(min);
                if m == 0 {
                    return go_compatible(&mut rep.ast, MAX_REPEAT, unicode_classes);
                }
                if m > budget {
                    return Err(refuse_at(
                        &format!("nested repetitions expand to more than {MAX_REPEAT} copies"),
                        &rep.op.span,
                    ));
                }
                budget /= m;
            }
            go_compatible(&mut rep.ast, budget, unicode_classes)
        }
        Ast::Group(group) => {
            if let GroupKind::NonCapturing(flags) = &group.kind {
                go_flags(flags)?;
            }
            go_compatible(&mut group.ast, budget, unicode_classes)
        }
        Ast::Alternation(alt) => alt
            .asts
            .iter_mut()
            .try_for_each(|a| go_compatible(a, budget, unicode_classes)),
        Ast::Concat(cat) => cat
            .asts
            .iter_mut()
            .try_for_each(|a| go_compatible(a, budget, unicode_classes)),
    }
}

fn count_unicode_class(span: &ast::Span, seen: &mut usize) -> Result<(), RegexError> {
    *seen += 1;
    if *seen > MAX_UNICODE_CLASSES {
        return Err(refuse_at(
            &format!("more than {MAX_UNICODE_CLASSES} Unicode classes (\\p...)"),
            span,
        ));
    }
    Ok(())
}

fn go_literal(lit: &ast::Literal) -> Result<(), RegexError> {
    match lit.kind {
        // Go has \x7F and \x{10FFFF} but neither \u nor \U.
        LiteralKind::HexFixed(
            ast::HexLiteralKind::UnicodeShort | ast::HexLiteralKind::UnicodeLong,
        )
        | LiteralKind::HexBrace(
            ast::HexLiteralKind::UnicodeShort | ast::HexLiteralKind::UnicodeLong,
        ) => Err(refuse_at(
            "\\u and \\U escapes are not RE2 syntax (use \\x{...})",
            &lit.span,
        )),
        // A single non-zero digit is a backreference to Go, which it does not support.
        LiteralKind::Octal if lit.c != '\0' && lit.span.end.offset - lit.span.start.offset == 2 => {
            Err(refuse_at("backreferences are not supported", &lit.span))
        }
        _ => Ok(()),
    }
}

fn go_flags(flags: &ast::Flags) -> Result<(), RegexError> {
    for item in &flags.items {
        if let FlagsItemKind::Flag(flag) = item.kind {
            match flag {
                Flag::CaseInsensitive
                | Flag::MultiLine
                | Flag::DotMatchesNewLine
                | Flag::SwapGreed => {}
                Flag::Unicode | Flag::CRLF | Flag::IgnoreWhitespace => {
                    return Err(refuse_at(
                        "unknown flag (RE2 has i, m, s and U)",
                        &item.span,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `\b`, `\B`, `^`, `$`, `\A`, `\z` are Go's; `\<` and `\>` are the literals `<` and `>` to Go.
fn go_assertion(a: &Assertion) -> Result<Option<ast::Literal>, RegexError> {
    let literal = |c| ast::Literal {
        span: a.span,
        kind: LiteralKind::Superfluous,
        c,
    };
    match a.kind {
        AssertionKind::StartLine
        | AssertionKind::EndLine
        | AssertionKind::StartText
        | AssertionKind::EndText
        | AssertionKind::WordBoundary
        | AssertionKind::NotWordBoundary => Ok(None),
        AssertionKind::WordBoundaryStartAngle => Ok(Some(literal('<'))),
        AssertionKind::WordBoundaryEndAngle => Ok(Some(literal('>'))),
        AssertionKind::WordBoundaryStart
        | AssertionKind::WordBoundaryEnd
        | AssertionKind::WordBoundaryStartHalf
        | AssertionKind::WordBoundaryEndHalf => {
            Err(refuse_at("\\b{...} is not RE2 syntax", &a.span))
        }
    }
}

fn go_class_set(
    set: &mut ClassSet,
    top: bool,
    unicode_classes: &mut usize,
) -> Result<(), RegexError> {
    match set {
        ClassSet::BinaryOp(op) => Err(refuse_at(
            "class set operations (&&, --, ~~) are not RE2 syntax; escape the characters",
            &op.span,
        )),
        ClassSet::Item(item) => go_class_item(item, top, unicode_classes),
    }
}

fn go_class_item(
    item: &mut ClassSetItem,
    top: bool,
    unicode_classes: &mut usize,
) -> Result<(), RegexError> {
    match item {
        ClassSetItem::Unicode(class) => count_unicode_class(&class.span, unicode_classes),
        ClassSetItem::Empty(_) | ClassSetItem::Literal(_) | ClassSetItem::Range(_) => {
            if let ClassSetItem::Literal(lit) = item {
                go_literal(lit)?;
            }
            if let ClassSetItem::Range(r) = item {
                go_literal(&r.start)?;
                go_literal(&r.end)?;
            }
            Ok(())
        }
        ClassSetItem::Ascii(_) => Ok(()),
        ClassSetItem::Perl(perl) => {
            *item = ClassSetItem::Bracketed(Box::new(perl_class(perl)));
            Ok(())
        }
        ClassSetItem::Bracketed(b) if top => Err(refuse_at(
            "nested classes are not RE2 syntax; escape the [ inside the class",
            &b.span,
        )),
        ClassSetItem::Bracketed(b) => go_class_set(&mut b.kind, false, unicode_classes),
        ClassSetItem::Union(u) => u
            .items
            .iter_mut()
            .try_for_each(|i| go_class_item(i, top, unicode_classes)),
    }
}

/// Go's Perl classes are ASCII: `\d` = `[0-9]`, `\s` = `[\t\n\f\r ]`, `\w` = `[0-9A-Za-z_]`.
fn perl_class(perl: &ClassPerl) -> ClassBracketed {
    let span = perl.span;
    let lit = |c| ast::Literal {
        span,
        kind: LiteralKind::Verbatim,
        c,
    };
    let items = match perl.kind {
        ClassPerlKind::Digit => vec![ClassSetItem::Ascii(ClassAscii {
            span,
            kind: ClassAsciiKind::Digit,
            negated: false,
        })],
        ClassPerlKind::Word => vec![ClassSetItem::Ascii(ClassAscii {
            span,
            kind: ClassAsciiKind::Word,
            negated: false,
        })],
        ClassPerlKind::Space => ['\t', '\n', '\x0C', '\r', ' ']
            .into_iter()
            .map(|c| ClassSetItem::Literal(lit(c)))
            .collect(),
    };
    ClassBracketed {
        span,
        negated: perl.negated,
        kind: ClassSet::union(ClassSetUnion { span, items }),
    }
}

/// Go's `\b` and `\B` are ASCII word boundaries.
fn ascii_word_boundaries(h: &Hir) -> Hir {
    match h.kind() {
        HirKind::Look(Look::WordUnicode) => Hir::look(Look::WordAscii),
        HirKind::Look(Look::WordUnicodeNegate) => Hir::look(Look::WordAsciiNegate),
        HirKind::Repetition(r) => Hir::repetition(hir::Repetition {
            sub: Box::new(ascii_word_boundaries(&r.sub)),
            ..r.clone()
        }),
        HirKind::Capture(c) => Hir::capture(hir::Capture {
            sub: Box::new(ascii_word_boundaries(&c.sub)),
            ..c.clone()
        }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(ascii_word_boundaries).collect()),
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.iter().map(ascii_word_boundaries).collect())
        }
        _ => h.clone(),
    }
}

// -- PostgreSQL ARE --------------------------------------------------------------------------------

/// One character as an ARE escape of fixed width, so the next character can never extend it.
fn pg_char(c: char, out: &mut String) {
    let n = c as u32;
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else if n <= 0xFFFF {
        let _ = write!(out, "\\u{n:04X}");
    } else {
        let _ = write!(out, "\\U{n:08X}");
    }
}

/// Matches no text: the only character outside it is NUL, which no stored value holds (decoding
/// replaces it) and which PostgreSQL text cannot hold.
const PG_NOTHING: &str = r"[^\u0001-\U0010FFFF]";

fn to_postgres(h: &Hir, out: &mut String) -> Result<(), RegexError> {
    if out.len() > MAX_POSTGRES_BYTES {
        return Err(refuse("regex too large once its classes are expanded"));
    }
    match h.kind() {
        HirKind::Empty => out.push_str("(?:)"),
        HirKind::Literal(lit) => {
            let text = std::str::from_utf8(&lit.0)
                .map_err(|_| refuse("regex matches bytes that are not UTF-8"))?;
            for c in text.chars() {
                if c == '\0' {
                    out.push_str(PG_NOTHING);
                } else {
                    pg_char(c, out);
                }
            }
        }
        HirKind::Class(Class::Unicode(class)) => {
            let ranges: Vec<(char, char)> = class
                .ranges()
                .iter()
                .filter_map(|r| {
                    let start = if r.start() == '\0' {
                        '\u{1}'
                    } else {
                        r.start()
                    };
                    (start <= r.end()).then_some((start, r.end()))
                })
                .collect();
            if ranges.is_empty() {
                out.push_str(PG_NOTHING);
            } else {
                out.push('[');
                for (start, end) in ranges {
                    pg_char(start, out);
                    if end != start {
                        out.push('-');
                        pg_char(end, out);
                    }
                }
                out.push(']');
            }
        }
        HirKind::Class(Class::Bytes(_)) => {
            return Err(refuse("regex matches bytes that are not UTF-8"))
        }
        HirKind::Look(look) => out.push_str(match look {
            Look::Start => "^",
            Look::End => "$",
            Look::StartLF => r"(?<![^\u000A])",
            Look::EndLF => r"(?![^\u000A])",
            Look::WordAscii => {
                "(?:(?<=[0-9A-Za-z_])(?![0-9A-Za-z_])|(?<![0-9A-Za-z_])(?=[0-9A-Za-z_]))"
            }
            Look::WordAsciiNegate => {
                "(?:(?<=[0-9A-Za-z_])(?=[0-9A-Za-z_])|(?<![0-9A-Za-z_])(?![0-9A-Za-z_]))"
            }
            _ => return Err(refuse(format!("unsupported assertion {look:?}"))),
        }),
        HirKind::Repetition(rep) => {
            if let Some(flat) = flatten_repetition(rep) {
                return to_postgres(&flat, out);
            }
            let mut sub = String::new();
            to_postgres(&rep.sub, &mut sub)?;
            let sub = format!("(?:{sub})");
            if rep.sub.properties().maximum_len() == Some(0) {
                // A repeated assertion is the assertion once, or optional: ARE refuses quantifiers
                // on constraints.
                if rep.min == 0 {
                    let _ = write!(out, "(?:{sub}|)");
                } else {
                    out.push_str(&sub);
                }
                return Ok(());
            }
            pg_repetition(&sub, rep.min, rep.max, out);
        }
        HirKind::Capture(cap) => {
            out.push_str("(?:");
            to_postgres(&cap.sub, out)?;
            out.push(')');
        }
        HirKind::Concat(subs) => subs.iter().try_for_each(|s| to_postgres(s, out))?,
        HirKind::Alternation(_) if optional_alternation(h).is_some() => {
            let opt = optional_alternation(h).unwrap_or_else(Hir::empty);
            to_postgres(
                &Hir::repetition(hir::Repetition {
                    min: 0,
                    max: Some(1),
                    greedy: true,
                    sub: Box::new(opt),
                }),
                out,
            )?;
        }
        HirKind::Alternation(subs) => {
            out.push_str("(?:");
            for (i, s) in subs.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                to_postgres(s, out)?;
            }
            out.push(')');
        }
    }
    Ok(())
}

/// A repetition of a repetition as one repetition of the same strings, when one exists:
/// `(x{0,b}){m,n}` = `x{0,b*n}` and `(x{a,}){m,n}` = `x{a*m,}` (`m >= 1`). PostgreSQL's engine is
/// slow on hundreds of copies of an expression that matches the empty string (`(.*){1000}` took
/// 47 s, `(a?){1000}` and `(a|b?){500}` the whole statement timeout); these rewrites take most such patterns down to
/// one copy or to copies of a non-empty expression. Counts stay within MAX_REPEAT squared.
fn flatten_repetition(rep: &hir::Repetition) -> Option<Hir> {
    let mut sub = &*rep.sub;
    while let HirKind::Capture(cap) = sub.kind() {
        sub = &cap.sub;
    }
    let optional;
    let inner = match sub.kind() {
        HirKind::Repetition(inner) => inner,
        _ => {
            let sub = optional_alternation(sub)?;
            optional = hir::Repetition {
                min: 0,
                max: Some(1),
                greedy: true,
                sub: Box::new(sub),
            };
            &optional
        }
    };
    if inner.max == Some(0) || rep.max == Some(0) {
        return Some(Hir::empty());
    }
    let (min, max) = match (inner.min, inner.max) {
        (0, b) => (0, b.zip(rep.max).map(|(b, n)| b.saturating_mul(n))),
        (a, None) if rep.min >= 1 => (a.saturating_mul(rep.min), None),
        _ => return None,
    };
    Some(Hir::repetition(hir::Repetition {
        min,
        max,
        greedy: true,
        sub: inner.sub.clone(),
    }))
}

/// `x` such that the alternation `h` = `x?`, when a branch can match the empty string by being empty
/// or a repetition from 0: `a|b?` = `(?:a|b)?`, `a|b*` = `(?:a|b+)?`, `a|` = `a?` (so that
/// `(a|b?){500}` flattens too).
fn optional_alternation(h: &Hir) -> Option<Hir> {
    let HirKind::Alternation(subs) = h.kind() else {
        return None;
    };
    let optional = |s: &Hir| {
        matches!(s.kind(), HirKind::Empty)
            || matches!(s.kind(), HirKind::Repetition(r) if r.min == 0)
    };
    if !subs.iter().any(optional) {
        return None;
    }
    let rest: Vec<Hir> = subs
        .iter()
        .filter_map(|s| match s.kind() {
            HirKind::Empty => None,
            HirKind::Repetition(r) if r.min == 0 && r.max == Some(0) => None,
            HirKind::Repetition(r) if r.min == 0 => Some(Hir::repetition(hir::Repetition {
                min: 1,
                ..r.clone()
            })),
            _ => Some(s.clone()),
        })
        .collect();
    Some(if rest.is_empty() {
        Hir::empty()
    } else {
        Hir::alternation(rest)
    })
}

/// `sub{min,max}` with every bound at most 255: `x{600}` = `x{255}x{255}x{90}` and
/// `x{0,600}` = `x{0,255}x{0,255}x{0,90}` (the same strings; greediness does not change whether a
/// fully anchored pattern matches).
fn pg_repetition(sub: &str, min: u32, max: Option<u32>, out: &mut String) {
    let short = match (min, max) {
        (0, None) => "*",
        (1, None) => "+",
        (0, Some(1)) => "?",
        _ => "",
    };
    if !short.is_empty() {
        out.push_str(sub);
        out.push_str(short);
        return;
    }
    let mut left = min;
    while left > 0 {
        let n = left.min(PG_DUPMAX);
        let _ = write!(out, "{sub}{{{n}}}");
        left -= n;
    }
    match max {
        None => {
            let _ = write!(out, "{sub}*");
        }
        Some(max) => {
            let mut left = max - min;
            while left > 0 {
                let n = left.min(PG_DUPMAX);
                let _ = write!(out, "{sub}{{0,{n}}}");
                left -= n;
            }
        }
    }
}

#[cfg(test)]
mod tests;
