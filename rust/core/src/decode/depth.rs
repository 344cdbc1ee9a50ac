//! Nesting-depth pre-scan: a cheap byte scan (aware of strings and escapes) that refuses a document
//! nested deeper than the limit *before* any parser recurses into it.

/// `Err(offset)` of the bracket that goes deeper than `max_depth`. `[]` has depth 1.
/// The scan does not validate JSON; it only tracks strings so that brackets inside them don't count.
pub fn check_depth(body: &[u8], max_depth: usize) -> Result<(), usize> {
    let mut depth: usize = 0;
    let mut i = 0;
    let n = body.len();
    while i < n {
        match body[i] {
            b'"' => {
                // Skip the string: find the closing quote that is not escaped.
                i += 1;
                while i < n {
                    match memchr::memchr2(b'"', b'\\', &body[i..]) {
                        None => return Ok(()),
                        Some(p) if body[i + p] == b'"' => {
                            i += p;
                            break;
                        }
                        Some(p) => i += p + 2,
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nesting() {
        assert_eq!(check_depth(b"1", 0), Ok(()));
        assert_eq!(check_depth(b"[]", 1), Ok(()));
        assert_eq!(check_depth(b"[]", 0), Err(0));
        assert_eq!(check_depth(b"{\"a\":[{}]}", 3), Ok(()));
        assert_eq!(check_depth(b"{\"a\":[{}]}", 2), Err(6));
        assert_eq!(check_depth(b"[[],[],[[]]]", 3), Ok(()));
        assert_eq!(check_depth(b"[[],[],[[]]]", 2), Err(8));
    }

    #[test]
    fn ignores_brackets_in_strings() {
        assert_eq!(check_depth(br#"{"a":"[[[[{{{{"}"#, 1), Ok(()));
        assert_eq!(check_depth(br#"{"a":"\"[[[[\\"}"#, 1), Ok(()));
        assert_eq!(check_depth(br#"{"a\\":["x"]}"#, 1), Err(7));
    }

    #[test]
    fn deep_input_does_not_recurse() {
        let deep = "[".repeat(100_000);
        assert_eq!(check_depth(deep.as_bytes(), 32), Err(32));
        let ok = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(check_depth(ok.as_bytes(), 100_000), Ok(()));
    }

    #[test]
    fn unterminated_string_is_fine() {
        assert_eq!(check_depth(b"[\"abc", 1), Ok(()));
        assert_eq!(check_depth(b"[\"abc\\", 1), Ok(()));
    }
}
