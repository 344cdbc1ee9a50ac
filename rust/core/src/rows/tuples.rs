//! Rows as plain tuples, the same columns as the tables: what SQLite inserts and PostgreSQL
//! sends as unnest arrays for small flushes. Timestamps are
//! µs since the Unix epoch, `None` for a NULL `ends_at`, JSON as text.

use std::collections::TryReserveError;

use super::collapse::Collapsed;

/// `(id, receiver, group_key, last_used)`.
pub type GroupTuple<'a> = (i64, &'a str, &'a str, i64);
/// `(fingerprint, labels, alertname, severity)`.
pub type LabelSetTuple<'a> = (i64, &'a str, &'a str, &'a str);
/// `(fingerprint, starts_at, status, ends_at, received_at, group_id, source, generator_url,
/// annotations)`.
pub type EventTuple<'a> = (
    i64,
    i64,
    &'static str,
    Option<i64>,
    i64,
    i64,
    &'static str,
    &'a str,
    &'a str,
);
/// `(fingerprint, starts_at, status, ends_at, first_seen, last_seen, notifications, group_id,
/// status_from_ends)`.
pub type AlertTuple = (
    i64,
    i64,
    &'static str,
    Option<i64>,
    i64,
    i64,
    i32,
    i64,
    bool,
);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RowTuples<'a> {
    pub groups: Vec<GroupTuple<'a>>,
    pub label_sets: Vec<LabelSetTuple<'a>>,
    pub events: Vec<EventTuple<'a>>,
    pub alerts: Vec<AlertTuple>,
}

/// Collect `f` of every row into a vector reserved up front (fallibly: its size comes from the
/// request).
fn rows<T, U>(from: &[T], f: impl Fn(&T) -> U) -> Result<Vec<U>, TryReserveError> {
    let mut out = Vec::new();
    out.try_reserve_exact(from.len())?;
    out.extend(from.iter().map(f));
    Ok(out)
}

pub fn row_tuples<'a>(c: &Collapsed<'a>) -> Result<RowTuples<'a>, TryReserveError> {
    Ok(RowTuples {
        groups: rows(&c.groups, |r| {
            (r.id, r.receiver, r.group_key, r.last_used_us)
        })?,
        label_sets: rows(&c.label_sets, |r| {
            (r.fingerprint, r.labels_json, r.alertname, r.severity)
        })?,
        events: rows(&c.events, |r| {
            (
                r.fingerprint,
                r.starts_at_us,
                r.status.as_str(),
                r.ends_at_us,
                r.received_at_us,
                r.group_id,
                r.source,
                r.generator_url,
                r.annotations_json,
            )
        })?,
        alerts: rows(&c.alerts, |r| {
            (
                r.fingerprint,
                r.starts_at_us,
                r.status.as_str(),
                r.ends_at_us,
                r.first_seen_us,
                r.last_seen_us,
                r.notifications,
                r.group_id,
                r.status_from_ends,
            )
        })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::rows::collapse::collapse;

    #[test]
    fn tuples_follow_the_column_order() {
        let body = r#"{"receiver":"rx","groupKey":"gk","alerts":[{"status":"resolved","labels":{"alertname":"A","severity":"warning"},"annotations":{"s":"x"},"startsAt":"1970-01-01T00:00:01Z","endsAt":"1970-01-01T00:00:02Z","generatorURL":"http://g"}]}"#;
        let b = crate::decode(body.as_bytes(), &Limits::default(), 5_000_000).unwrap();
        let rows = row_tuples(&collapse(&[&b])).unwrap();
        let gid = crate::model::notification_group_id("rx", "gk");
        assert_eq!(rows.groups, vec![(gid, "rx", "gk", 5_000_000)]);
        let fp = crate::fingerprint::fingerprint_to_int(b.alerts[0].fingerprint);
        assert_eq!(
            rows.label_sets,
            vec![(
                fp,
                r#"{"alertname":"A","severity":"warning"}"#,
                "A",
                "warning"
            )]
        );
        assert_eq!(
            rows.events,
            vec![(
                fp,
                1_000_000,
                "resolved",
                Some(2_000_000),
                5_000_000,
                gid,
                "alertmanager",
                "http://g",
                r#"{"s":"x"}"#
            )]
        );
        assert_eq!(
            rows.alerts,
            vec![(
                fp,
                1_000_000,
                "resolved",
                Some(2_000_000),
                5_000_000,
                5_000_000,
                1,
                gid,
                false
            )]
        );
    }
}
