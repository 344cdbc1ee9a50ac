//! [`PayloadError`]: why a body was refused, where (JSON path and byte offset), in a short message.

use std::fmt;

/// Stable, machine-readable error codes (`PayloadError::reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    EmptyBody,
    InvalidUtf8,
    InvalidJson,
    TooDeep,
    UnknownFormat,
    UnsupportedVersion,
    WrongType,
    MissingField,
    DuplicateKey,
    InvalidStatus,
    InvalidTime,
    InvalidFingerprint,
    InvalidLabel,
    TooManyAlerts,
    TooManyLabels,
    TooManyAnnotations,
    NameTooLong,
    ValueTooLong,
    /// Decoded, the body would hold more memory than the caller allowed (its queue's free bytes).
    DecodedTooLarge,
}

impl Reason {
    pub const ALL: [Reason; 19] = [
        Reason::EmptyBody,
        Reason::InvalidUtf8,
        Reason::InvalidJson,
        Reason::TooDeep,
        Reason::UnknownFormat,
        Reason::UnsupportedVersion,
        Reason::WrongType,
        Reason::MissingField,
        Reason::DuplicateKey,
        Reason::InvalidStatus,
        Reason::InvalidTime,
        Reason::InvalidFingerprint,
        Reason::InvalidLabel,
        Reason::TooManyAlerts,
        Reason::TooManyLabels,
        Reason::TooManyAnnotations,
        Reason::NameTooLong,
        Reason::ValueTooLong,
        Reason::DecodedTooLarge,
    ];

    /// The body is not well-formed (empty, not UTF-8, not JSON, too deep, a duplicate key), as
    /// opposed to well-formed but not an acceptable alert payload: HTTP's 400 against 422.
    pub fn is_syntax(self) -> bool {
        matches!(
            self,
            Reason::EmptyBody
                | Reason::InvalidUtf8
                | Reason::InvalidJson
                | Reason::TooDeep
                | Reason::DuplicateKey
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::EmptyBody => "empty_body",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::InvalidJson => "invalid_json",
            Reason::TooDeep => "too_deep",
            Reason::UnknownFormat => "unknown_format",
            Reason::UnsupportedVersion => "unsupported_version",
            Reason::WrongType => "wrong_type",
            Reason::MissingField => "missing_field",
            Reason::DuplicateKey => "duplicate_key",
            Reason::InvalidStatus => "invalid_status",
            Reason::InvalidTime => "invalid_time",
            Reason::InvalidFingerprint => "invalid_fingerprint",
            Reason::InvalidLabel => "invalid_label",
            Reason::TooManyAlerts => "too_many_alerts",
            Reason::TooManyLabels => "too_many_labels",
            Reason::TooManyAnnotations => "too_many_annotations",
            Reason::NameTooLong => "name_too_long",
            Reason::ValueTooLong => "value_too_long",
            Reason::DecodedTooLarge => "decoded_too_large",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A body that is not an acceptable payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    pub reason: Reason,
    /// JSON path of the offending value (`alerts[3].startsAt`), `None` when the body is not
    /// parseable at the top.
    pub path: Option<String>,
    /// Byte offset into the body where the problem was detected.
    pub offset: Option<usize>,
    /// Short human-readable message; never echoes more than ~40 bytes of input.
    pub message: String,
}

impl PayloadError {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        PayloadError {
            reason,
            path: None,
            offset: None,
            message: message.into(),
        }
    }

    pub fn at(mut self, offset: usize) -> Self {
        self.offset = Some(offset);
        self
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PayloadError {}

/// At most `max` bytes of `s` (cut at a char boundary), with "…" when cut: for messages.
pub fn excerpt(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_snake_case_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let s = r.as_str();
            assert!(s
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()));
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn excerpt_cuts_at_char_boundary() {
        assert_eq!(excerpt("abc", 40), "abc");
        assert_eq!(excerpt("ééé", 3), "é…");
        assert_eq!(excerpt(&"x".repeat(100), 40).len(), 40 + "…".len());
    }

    #[test]
    fn display_is_message() {
        let e = PayloadError::new(Reason::InvalidTime, "bad time")
            .at(3)
            .with_path("a");
        assert_eq!(e.to_string(), "bad time");
        assert_eq!(e.offset, Some(3));
        assert_eq!(e.path.as_deref(), Some("a"));
    }
}
