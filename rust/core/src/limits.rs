//! Validation limits for one request body. Every limit is inclusive.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Alerts per request.
    pub max_alerts: usize,
    /// Labels per alert.
    pub max_labels: usize,
    /// Annotations per alert.
    pub max_annotations: usize,
    /// Bytes in a label or annotation name.
    pub max_name_bytes: usize,
    /// Bytes in a label or annotation value (and in generatorURL).
    pub max_value_bytes: usize,
    /// JSON nesting depth of the whole document (`[]` is depth 1).
    pub max_depth: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_alerts: 10_000,
        max_labels: 128,
        max_annotations: 128,
        max_name_bytes: 1024,
        max_value_bytes: 65_536,
        max_depth: 32,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_stub() {
        let l = Limits::default();
        assert_eq!(
            (
                l.max_alerts,
                l.max_labels,
                l.max_annotations,
                l.max_name_bytes,
                l.max_value_bytes,
                l.max_depth
            ),
            (10000, 128, 128, 1024, 65536, 32)
        );
    }
}
