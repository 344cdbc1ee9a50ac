//! Collapse the alerts of all batches of one flush into the rows of the four tables, deduplicated
//! by key and sorted by key (so concurrent writers lock rows in the same order).
//!
//! - `notification_groups`: one row per distinct (receiver, group key) of the batches, keyed by
//!   [`Batch::group_id`]: these strings can be as long as the body, so rows refer to them by key
//!   instead of repeating them (memory and disk stay proportional to the request).
//! - `label_sets`: one row per fingerprint, the first in payload order.
//! - `alert_events`: one row per (fingerprint, starts_at, status), the earliest received.
//! - `alerts`: one row per (fingerprint, starts_at): the deliveries folded in order by [`merge`],
//!   the rule storage/upsert.py applies to the stored row; first/last seen; the number of distinct
//!   batches that carried it; the latest delivery's group.
//!
//! "Earliest"/"latest" order deliveries by (received_at, batch index, alert index).

use crate::fingerprint::fingerprint_to_int;
use crate::model::{Alert, Batch, Format, Status};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow<'a> {
    pub id: i64,
    pub receiver: &'a str,
    pub group_key: &'a str,
    /// The latest `starts_at` or `received_at` of the rows referring to it (retention keeps the
    /// group while a row may remain).
    pub last_used_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSetRow<'a> {
    pub fingerprint: i64,
    pub labels_json: &'a str,
    pub alertname: &'a str,
    pub severity: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow<'a> {
    pub fingerprint: i64,
    pub starts_at_us: i64,
    pub status: Status,
    pub ends_at_us: Option<i64>,
    pub received_at_us: i64,
    pub group_id: i64,
    pub source: &'static str,
    pub generator_url: &'a str,
    pub annotations_json: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub fingerprint: i64,
    pub starts_at_us: i64,
    pub status: Status,
    pub ends_at_us: Option<i64>,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    pub notifications: i32,
    pub group_id: i64,
    /// The status was derived from `endsAt` (Prometheus' alert list), so a later `endsAt` may
    /// reopen a resolved instance.
    pub status_from_ends: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collapsed<'a> {
    pub groups: Vec<GroupRow<'a>>,
    pub label_sets: Vec<LabelSetRow<'a>>,
    pub events: Vec<EventRow<'a>>,
    pub alerts: Vec<AlertRow>,
}

/// One delivery of an alert: which batch and which alert in it.
#[derive(Clone, Copy)]
struct Ref<'a> {
    /// (fingerprint, starts_at, status) then the delivery order (received_at, batch index, alert
    /// index): unique, so an unstable sort is deterministic. Kept inline (not read through
    /// `alert`) so that sorting compares plain integers instead of chasing pointers.
    sort_key: (i64, i64, Status, i64, u32, u32),
    batch: &'a Batch,
    alert: &'a Alert,
}

impl<'a> Ref<'a> {
    #[inline]
    fn fingerprint(&self) -> i64 {
        self.sort_key.0
    }

    /// (received_at, batch index, alert index): the delivery order.
    #[inline]
    fn order(&self) -> (i64, u32, u32) {
        (self.sort_key.3, self.sort_key.4, self.sort_key.5)
    }

    #[inline]
    fn batch_idx(&self) -> u32 {
        self.sort_key.4
    }
}

/// The current state of an alert instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    pub ends_at_us: Option<i64>,
    pub status_from_ends: bool,
}

/// How a later delivery `next` changes an instance's state `prev` (storage/upsert.py is the same
/// rule in SQL).
///
/// An explicit status (Alertmanager's webhook, a generic alert's `status`) keeps a resolved
/// instance resolved: HA duplicates and retries of an older "firing" never reopen it. A status
/// derived from `endsAt` (Prometheus' alert list) follows Alertmanager, for which an alert is
/// resolved iff its `endsAt` has passed and a new send of it takes the later `endsAt`: a derived
/// "firing" whose `endsAt` is later than that of a derived resolution reopens the instance (the
/// resolution came from a late or backlogged send); one with an earlier or equal `endsAt` (a stale
/// retry) does not, and a firing instance keeps the later of two derived `endsAt`. No `endsAt` is
/// later than any.
pub fn merge(prev: State, next: State) -> State {
    let reopens = prev.status == Status::Resolved
        && prev.status_from_ends
        && next.status == Status::Firing
        && next.status_from_ends
        && match (next.ends_at_us, prev.ends_at_us) {
            (Some(n), Some(p)) => n > p,
            _ => true,
        };
    if reopens || next.status == Status::Resolved {
        return next;
    }
    if prev.status == Status::Resolved {
        return prev;
    }
    if prev.status_from_ends && next.status_from_ends {
        // Both firing by their endsAt: as in Alertmanager, a send never moves a firing alert's
        // end back (a stale retry must not make it expire early).
        let ends_at_us = match (prev.ends_at_us, next.ends_at_us) {
            (Some(p), Some(n)) => Some(p.max(n)),
            _ => None,
        };
        return State { ends_at_us, ..next };
    }
    next
}

pub fn collapse<'a>(batches: &[&'a Batch]) -> Collapsed<'a> {
    let total: usize = batches.iter().map(|b| b.alerts.len()).sum();
    let mut refs: Vec<Ref<'a>> = Vec::with_capacity(total);
    for (bi, b) in batches.iter().enumerate() {
        for (ai, a) in b.alerts.iter().enumerate() {
            refs.push(Ref {
                sort_key: (
                    fingerprint_to_int(a.fingerprint),
                    a.starts_at_us,
                    a.status,
                    b.received_at_us,
                    bi as u32,
                    ai as u32,
                ),
                batch: b,
                alert: a,
            });
        }
    }
    // Sort by key, then by delivery order: the first of each group is the earliest.
    refs.sort_unstable_by_key(|r| r.sort_key);

    let group_ids: Vec<i64> = batches.iter().map(|b| b.group_id()).collect();
    let mut groups: Vec<GroupRow<'a>> = batches
        .iter()
        .zip(&group_ids)
        .filter(|(b, _)| !b.is_empty()) // no row would refer to it
        .map(|(b, &id)| GroupRow {
            id,
            receiver: &b.receiver,
            group_key: &b.group_key,
            last_used_us: b
                .alerts
                .iter()
                .map(|a| a.starts_at_us)
                .fold(b.received_at_us, i64::max),
        })
        .collect();
    // Sorted by id, the latest use first within an id: dedup keeps that one.
    groups.sort_unstable_by_key(|g| (g.id, std::cmp::Reverse(g.last_used_us)));
    groups.dedup_by_key(|g| g.id);
    let mut out = Collapsed {
        groups,
        label_sets: Vec::new(),
        events: Vec::with_capacity(refs.len()),
        alerts: Vec::with_capacity(refs.len()),
    };
    let mut batch_ids: Vec<u32> = Vec::new();
    let mut ordered: Vec<Ref<'a>> = Vec::new();
    let mut i = 0;
    while i < refs.len() {
        let fp = refs[i].fingerprint();
        // Label set: the first delivery (payload order) of this fingerprint.
        let mut j = i;
        let mut first = refs[i];
        while j < refs.len() && refs[j].fingerprint() == fp {
            if (refs[j].sort_key.4, refs[j].sort_key.5) < (first.sort_key.4, first.sort_key.5) {
                first = refs[j];
            }
            j += 1;
        }
        out.label_sets.push(LabelSetRow {
            fingerprint: fp,
            labels_json: &first.alert.labels_json,
            alertname: &first.alert.alertname,
            severity: &first.alert.severity,
        });
        // Within the fingerprint: instances (starts_at), each with its statuses.
        let mut k = i;
        while k < j {
            let starts = refs[k].sort_key.1;
            let mut m = k;
            while m < j && refs[m].sort_key.1 == starts {
                m += 1;
            }
            let group = &refs[k..m];
            // Events: first of each status run.
            for (n, r) in group.iter().enumerate() {
                if n == 0 || group[n - 1].sort_key.2 != r.sort_key.2 {
                    out.events.push(EventRow {
                        fingerprint: fp,
                        starts_at_us: starts,
                        status: r.alert.status,
                        ends_at_us: r.alert.ends_at_us,
                        received_at_us: r.batch.received_at_us,
                        group_id: group_ids[r.batch_idx() as usize],
                        source: r.batch.format.as_str(),
                        generator_url: &r.alert.generator_url,
                        annotations_json: &r.alert.annotations_json,
                    });
                }
            }
            // Current state: the deliveries folded in delivery order.
            ordered.clear();
            ordered.extend_from_slice(group);
            ordered.sort_unstable_by_key(|r| r.order());
            let state = ordered
                .iter()
                .map(|r| State {
                    status: r.alert.status,
                    ends_at_us: r.alert.ends_at_us,
                    status_from_ends: r.batch.format == Format::Prometheus,
                })
                .reduce(merge)
                .unwrap_or(State {
                    status: Status::Firing,
                    ends_at_us: None,
                    status_from_ends: false,
                });
            let latest = ordered[ordered.len() - 1];
            batch_ids.clear();
            batch_ids.extend(group.iter().map(|r| r.batch_idx()));
            batch_ids.sort_unstable();
            batch_ids.dedup();
            out.alerts.push(AlertRow {
                fingerprint: fp,
                starts_at_us: starts,
                status: state.status,
                ends_at_us: state.ends_at_us,
                first_seen_us: group
                    .iter()
                    .map(|r| r.batch.received_at_us)
                    .min()
                    .unwrap_or(0),
                last_seen_us: group
                    .iter()
                    .map(|r| r.batch.received_at_us)
                    .max()
                    .unwrap_or(0),
                notifications: batch_ids.len().min(i32::MAX as usize) as i32,
                group_id: group_ids[latest.batch_idx() as usize],
                status_from_ends: state.status_from_ends,
            });
            k = m;
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    const T0: i64 = 1_736_503_200_000_000; // 2025-01-10T10:00:00Z

    fn batch(body: &str, received_at: i64, receiver: &str) -> Batch {
        let mut b = crate::decode(body.as_bytes(), &Limits::default(), received_at).unwrap();
        b.receiver = receiver.to_owned();
        b
    }

    fn alert(name: &str, status: &str, starts: &str, ends: &str) -> String {
        format!(
            r#"{{"status":"{status}","labels":{{"alertname":"{name}"}},"annotations":{{"r":"{status}{ends}"}},"startsAt":"{starts}","endsAt":"{ends}"}}"#
        )
    }

    fn gid(receiver: &str) -> i64 {
        crate::model::notification_group_id(receiver, "")
    }

    fn am(alerts: &[String]) -> String {
        format!(r#"{{"alerts":[{}]}}"#, alerts.join(","))
    }

    const S1: &str = "2025-01-10T10:00:00Z";
    const S2: &str = "2025-01-10T10:05:00Z";
    const ZERO: &str = "0001-01-01T00:00:00Z";
    const E1: &str = "2025-01-10T10:30:00Z";
    const E2: &str = "2025-01-10T10:40:00Z";

    #[test]
    fn empty() {
        assert_eq!(collapse(&[]), Collapsed::default());
        let b = batch(r#"{"alerts":[]}"#, T0, "r");
        assert_eq!(collapse(&[&b]), Collapsed::default());
    }

    #[test]
    fn duplicates_in_one_batch_count_once() {
        let a = alert("A", "firing", S1, ZERO);
        let b = batch(&am(&[a.clone(), a.clone(), a]), T0, "r");
        let c = collapse(&[&b]);
        assert_eq!(c.label_sets.len(), 1);
        assert_eq!(c.events.len(), 1);
        assert_eq!(c.alerts.len(), 1);
        assert_eq!(c.alerts[0].notifications, 1);
        assert_eq!(c.alerts[0].first_seen_us, T0);
        assert_eq!(c.alerts[0].last_seen_us, T0);
    }

    #[test]
    fn firing_then_resolved_across_batches() {
        let f = batch(&am(&[alert("A", "firing", S1, ZERO)]), T0, "first");
        let f2 = batch(
            &am(&[alert("A", "firing", S1, ZERO)]),
            T0 + 60_000_000,
            "second",
        );
        let r = batch(
            &am(&[alert("A", "resolved", S1, E1)]),
            T0 + 120_000_000,
            "third",
        );
        let r2 = batch(
            &am(&[alert("A", "resolved", S1, E2)]),
            T0 + 180_000_000,
            "fourth",
        );
        let c = collapse(&[&r2, &f, &r, &f2]);
        assert_eq!(c.events.len(), 2);
        assert_eq!(c.events[0].status, Status::Firing);
        assert_eq!(c.events[0].received_at_us, T0);
        assert_eq!(c.events[0].group_id, gid("first"));
        assert_eq!(c.events[1].status, Status::Resolved);
        assert_eq!(c.events[1].received_at_us, T0 + 120_000_000);
        assert_eq!(
            c.events[1].annotations_json,
            format!(r#"{{"r":"resolved{E1}"}}"#)
        );
        assert_eq!(c.alerts.len(), 1);
        let a = &c.alerts[0];
        assert_eq!(a.status, Status::Resolved);
        assert_eq!(
            a.ends_at_us,
            Some(crate::rfc3339::parse_rfc3339_us(E2).unwrap())
        );
        assert_eq!(a.first_seen_us, T0);
        assert_eq!(a.last_seen_us, T0 + 180_000_000);
        assert_eq!(a.notifications, 4);
        assert_eq!(a.group_id, gid("fourth"));
        assert!(!a.status_from_ends);
        assert_eq!(c.groups.len(), 4);
    }

    #[test]
    fn resolved_wins_even_if_an_older_firing_arrives_later() {
        let r = batch(&am(&[alert("A", "resolved", S1, E1)]), T0, "r");
        let f = batch(&am(&[alert("A", "firing", S1, ZERO)]), T0 + 1, "f");
        let c = collapse(&[&r, &f]);
        assert_eq!(c.alerts[0].status, Status::Resolved);
        assert_eq!(
            c.alerts[0].ends_at_us,
            Some(crate::rfc3339::parse_rfc3339_us(E1).unwrap())
        );
        assert_eq!(c.alerts[0].group_id, gid("f"));
    }

    #[test]
    fn firing_ends_at_is_the_latest_firing_one() {
        let p1 = r#"[{"labels":{"alertname":"P"},"startsAt":"2025-01-10T10:00:00Z","endsAt":"2025-01-10T10:04:00Z"}]"#;
        let p2 = r#"[{"labels":{"alertname":"P"},"startsAt":"2025-01-10T10:00:00Z","endsAt":"2025-01-10T10:05:00Z"}]"#;
        let b1 = batch(p1, T0 + 1_000_000, "");
        let b2 = batch(p2, T0 + 61_000_000, "");
        let c = collapse(&[&b2, &b1]);
        assert_eq!(c.alerts[0].status, Status::Firing);
        assert_eq!(c.alerts[0].ends_at_us, Some(T0 + 300_000_000));
        assert_eq!(c.events.len(), 1);
        assert_eq!(c.events[0].ends_at_us, Some(T0 + 240_000_000));
        assert_eq!(c.events[0].source, "prometheus");
    }

    #[test]
    fn sorted_by_signed_fingerprint_then_starts_at_then_status() {
        let mut alerts = Vec::new();
        for i in 0..30 {
            alerts.push(alert(&format!("N{i}"), "firing", S2, ZERO));
            alerts.push(alert(&format!("N{i}"), "resolved", S1, E1));
            alerts.push(alert(&format!("N{i}"), "firing", S1, ZERO));
        }
        // The empty label set's fingerprint (cbf29ce484222325) is negative as int8.
        alerts.push(format!(
            r#"{{"status":"firing","labels":{{}},"startsAt":"{S2}"}}"#
        ));
        let b = batch(&am(&alerts), T0, "r");
        let c = collapse(&[&b]);
        assert_eq!(c.label_sets.len(), 31);
        assert_eq!(c.events.len(), 91);
        assert_eq!(c.alerts.len(), 61);
        assert!(c
            .label_sets
            .windows(2)
            .all(|w| w[0].fingerprint < w[1].fingerprint));
        assert!(
            c.label_sets.iter().any(|r| r.fingerprint < 0),
            "want some negative fingerprints"
        );
        assert!(c
            .events
            .windows(2)
            .all(|w| (w[0].fingerprint, w[0].starts_at_us, w[0].status)
                < (w[1].fingerprint, w[1].starts_at_us, w[1].status)));
        assert!(
            c.alerts
                .windows(2)
                .all(|w| (w[0].fingerprint, w[0].starts_at_us)
                    < (w[1].fingerprint, w[1].starts_at_us))
        );
        // (fp, S1) saw firing and resolved → resolved; (fp, S2) only firing.
        for a in &c.alerts {
            let want = if a.starts_at_us == T0 {
                Status::Resolved
            } else {
                Status::Firing
            };
            assert_eq!(a.status, want);
            assert_eq!(a.notifications, 1);
        }
    }

    #[test]
    fn label_set_is_first_in_payload_order() {
        let b1 = batch(&am(&[alert("A", "firing", S2, ZERO)]), T0 + 5, "r");
        let b2 = batch(&am(&[alert("A", "firing", S1, ZERO)]), T0, "r");
        let c = collapse(&[&b1, &b2]);
        assert_eq!(c.label_sets.len(), 1);
        assert_eq!(c.label_sets[0].alertname, "A");
        assert_eq!(c.label_sets[0].labels_json, r#"{"alertname":"A"}"#);
        assert_eq!(c.label_sets[0].severity, "");
        assert_eq!(c.alerts.len(), 2);
    }

    fn prom(starts: &str, ends: &str) -> String {
        format!(r#"[{{"labels":{{"alertname":"P"}},"startsAt":"{starts}","endsAt":"{ends}"}}]"#)
    }

    #[test]
    fn a_derived_firing_with_a_later_end_reopens_a_derived_resolution() {
        // A backlogged send arrives after its endsAt (resolved), then the next send with a later,
        // still future endsAt: Alertmanager would call it firing again, and so does the row.
        let late = batch(&prom(S1, "2025-01-10T10:04:00Z"), T0 + 300_000_000, "");
        let next = batch(&prom(S1, "2025-01-10T10:09:00Z"), T0 + 301_000_000, "");
        assert_eq!(late.alerts[0].status, Status::Resolved);
        let c = collapse(&[&next, &late]);
        assert_eq!(c.alerts[0].status, Status::Firing);
        assert_eq!(c.alerts[0].ends_at_us, Some(T0 + 540_000_000));
        assert!(c.alerts[0].status_from_ends);
        assert_eq!(c.events.len(), 2);
        // A stale retry (an earlier endsAt, still in the future at its arrival) does not reopen.
        let resolved = batch(&prom(S1, "2025-01-10T10:02:00Z"), T0 + 150_000_000, "");
        let stale = batch(&prom(S1, "2025-01-10T10:01:30Z"), T0 + 60_000_000, "");
        let mut stale = stale;
        stale.received_at_us = T0 + 160_000_000;
        let c = collapse(&[&resolved, &stale]);
        assert_eq!(c.alerts[0].status, Status::Resolved);
        assert_eq!(c.alerts[0].ends_at_us, Some(T0 + 120_000_000));
    }

    #[test]
    fn an_explicit_resolution_is_final_even_for_a_later_derived_firing() {
        let r = batch(&am(&[alert("P", "resolved", S1, E1)]), T0, "r");
        let f = batch(&prom(S1, "2025-01-10T11:00:00Z"), T0 + 1, "");
        let c = collapse(&[&r, &f]);
        assert_eq!(c.alerts[0].status, Status::Resolved);
        assert_eq!(
            c.alerts[0].ends_at_us,
            Some(crate::rfc3339::parse_rfc3339_us(E1).unwrap())
        );
    }

    #[test]
    fn merge_rule() {
        let st = |status, ends: Option<i64>, from_ends| State {
            status,
            ends_at_us: ends,
            status_from_ends: from_ends,
        };
        let (f, r) = (Status::Firing, Status::Resolved);
        // explicit resolved stays resolved
        assert_eq!(
            merge(st(r, Some(5), false), st(f, Some(9), true)),
            st(r, Some(5), false)
        );
        assert_eq!(
            merge(st(r, Some(5), false), st(f, None, false)),
            st(r, Some(5), false)
        );
        // derived resolved: later end reopens, equal or earlier does not, none is later than any
        assert_eq!(
            merge(st(r, Some(5), true), st(f, Some(9), true)),
            st(f, Some(9), true)
        );
        assert_eq!(
            merge(st(r, Some(5), true), st(f, Some(5), true)),
            st(r, Some(5), true)
        );
        assert_eq!(
            merge(st(r, Some(5), true), st(f, None, true)),
            st(f, None, true)
        );
        // an explicit firing never reopens
        assert_eq!(
            merge(st(r, Some(5), true), st(f, Some(9), false)),
            st(r, Some(5), true)
        );
        // resolved always resolves; firing follows the latest
        assert_eq!(
            merge(st(f, Some(9), true), st(r, Some(3), true)),
            st(r, Some(3), true)
        );
        assert_eq!(
            merge(st(f, Some(9), true), st(f, Some(7), false)),
            st(f, Some(7), false)
        );
    }

    #[test]
    fn each_group_is_stored_once_however_many_alerts_carry_it() {
        let alerts: Vec<String> = (0..50)
            .map(|i| alert(&format!("A{i}"), "firing", S1, ZERO))
            .collect();
        let mut b = batch(&am(&alerts), T0, "");
        b.receiver = "r".repeat(100_000);
        b.group_key = "g".repeat(100_000);
        let b2 = b.clone();
        let c = collapse(&[&b, &b2]);
        assert_eq!(c.groups.len(), 1);
        assert_eq!(c.groups[0].receiver.len(), 100_000);
        assert_eq!(c.groups[0].last_used_us, T0);
        assert_eq!(c.groups[0].id, b.group_id());
        assert!(c.events.iter().all(|e| e.group_id == b.group_id()));
        assert!(c.alerts.iter().all(|a| a.group_id == b.group_id()));
    }
}
