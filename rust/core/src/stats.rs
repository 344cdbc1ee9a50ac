//! The aggregates of `GET /api/v1/stats` over one window, computed from the window's rows.
//!
//! Why here and not in SQL: on PostgreSQL the three aggregates cost about 40 ms of executor time
//! per request on 1,000,000 history rows (sorting and grouping 16k-33k rows at a few hundred ns per
//! row and operator). Two index-only scans that only collect their columns into arrays
//! ([`crate::pgarray`]) cost about a third of that, and the aggregation below about 2 ms for the
//! ~16k started and ~16k resolved instances of a 24 h window, parsing included.
//!
//! The SQL versions in `python/webhookfast/api/sql.py` remain the definition: SQLite runs them,
//! and the tests check that both give the same answers. The maps are keyed by fingerprints, which
//! senders choose through their labels: foldhash's per-process random seed keeps them from aiming
//! many keys at one bucket.
//!
//! The window has two sets of alert instances:
//! * *started*: instances whose `starts_at` is in the window (one firing each);
//! * *resolved*: instances with status resolved whose `ends_at` is in the window.
//!
//! From them: the label sets that started most often ([`top_firing`]), the label sets with at
//! least N state changes (starts plus resolutions, [`flapping`]), and per alertname the count,
//! p50, p90 and maximum of `ends_at - starts_at` ([`time_to_resolve`]). Orders and ties are the
//! SQL's: counts descending then fingerprint ascending (as a signed 64-bit integer); p90
//! descending then alertname in byte order.

use foldhash::{HashMap, HashMapExt};

/// A label set and how many of its instances started in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub fingerprint: i64,
    pub firings: u64,
}

/// A label set whose instances started or resolved at least N times in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flapping {
    pub fingerprint: i64,
    pub changes: u64,
    pub firing: u64,
}

/// Time to resolve of one alertname, in microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve<'a> {
    pub alertname: &'a str,
    pub resolved: u64,
    pub p50_us: i64,
    pub p90_us: i64,
    pub max_us: i64,
}

/// Instances per fingerprint: what [`top_firing`] ranks and [`flapping`] adds resolutions to.
pub fn counts(fingerprints: &[i64]) -> HashMap<i64, u64> {
    let mut by_fp: HashMap<i64, u64> = HashMap::with_capacity(fingerprints.len() / 2);
    for &fp in fingerprints {
        *by_fp.entry(fp).or_default() += 1;
    }
    by_fp
}

/// The first `top` items in `cmp` order; sorts only what it keeps.
fn best<T>(mut items: Vec<T>, top: usize, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<T> {
    if items.len() > top {
        if top == 0 {
            return Vec::new();
        }
        items.select_nth_unstable_by(top - 1, &cmp);
        items.truncate(top);
    }
    items.sort_unstable_by(cmp);
    items
}

/// Label sets by instances started in the window (`started`: [`counts`] of their fingerprints),
/// most first, at most `top`.
pub fn top_firing(started: &HashMap<i64, u64>, top: usize) -> Vec<Firing> {
    let items = started
        .iter()
        .map(|(&fingerprint, &firings)| Firing {
            fingerprint,
            firings,
        })
        .collect();
    best(items, top, |a, b| {
        b.firings
            .cmp(&a.firings)
            .then(a.fingerprint.cmp(&b.fingerprint))
    })
}

/// Label sets with at least `min_changes` starts (`started`: [`counts`] of their fingerprints)
/// plus resolutions in the window, most first.
pub fn flapping(
    started: &HashMap<i64, u64>,
    resolved: &[i64],
    min_changes: u64,
    top: usize,
) -> Vec<Flapping> {
    let mut by_fp: HashMap<i64, (u64, u64)> =
        started.iter().map(|(&fp, &n)| (fp, (n, 0))).collect();
    for &fp in resolved {
        by_fp.entry(fp).or_default().1 += 1;
    }
    let items = by_fp
        .into_iter()
        .filter(|(_, (f, r))| f + r >= min_changes)
        .map(|(fingerprint, (firing, resolved))| Flapping {
            fingerprint,
            changes: firing + resolved,
            firing,
        })
        .collect();
    best(items, top, |a, b| {
        b.changes
            .cmp(&a.changes)
            .then(a.fingerprint.cmp(&b.fingerprint))
    })
}

/// The nearest-rank percentile `pct` of `n` sorted values: the value at rank ceil(pct·n/100),
/// in integers (the SQLite query's `(pct·n + 99) / 100`; PostgreSQL's percentile_disc picks the
/// same rank).
fn rank(pct: usize, n: usize) -> usize {
    (pct * n).div_ceil(100)
}

/// Per alertname: instances resolved in the window and the p50, p90 and maximum of their
/// durations (µs), from `(alertname, ends - starts)` per instance; largest p90 first, at most
/// `top` alertnames.
pub fn time_to_resolve<'a>(
    resolved: impl IntoIterator<Item = (&'a str, i64)>,
    top: usize,
) -> Vec<Resolve<'a>> {
    let mut by_name: HashMap<&str, Vec<i64>> = HashMap::new();
    for (alertname, duration) in resolved {
        by_name.entry(alertname).or_default().push(duration);
    }
    let items = by_name
        .into_iter()
        .map(|(alertname, mut durations)| {
            durations.sort_unstable();
            let n = durations.len();
            Resolve {
                alertname,
                resolved: n as u64,
                p50_us: durations[rank(50, n) - 1],
                p90_us: durations[rank(90, n) - 1],
                max_us: durations[n - 1],
            }
        })
        .collect();
    best(items, top, |a, b| {
        b.p90_us
            .cmp(&a.p90_us)
            .then(a.alertname.as_bytes().cmp(b.alertname.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttr<'a>(
        names: &'a [&'a str],
        starts: &'a [i64],
        ends: &'a [i64],
        top: usize,
    ) -> Vec<Resolve<'a>> {
        let durations = starts.iter().zip(ends).map(|(s, e)| e - s);
        time_to_resolve(names.iter().copied().zip(durations), top)
    }

    #[test]
    fn top_firing_counts_and_breaks_ties_by_signed_fingerprint() {
        let started = [5, -3, 5, 9, -3, 5, 2, 9];
        let got = top_firing(&counts(&started), 3);
        let want = [(5, 3), (-3, 2), (9, 2)];
        assert_eq!(
            got.iter()
                .map(|f| (f.fingerprint, f.firings))
                .collect::<Vec<_>>(),
            want
        );
        assert_eq!(top_firing(&counts(&started), 10).len(), 4);
        assert!(top_firing(&counts(&started), 0).is_empty());
        assert!(top_firing(&counts(&[]), 5).is_empty());
    }

    #[test]
    fn flapping_adds_starts_and_resolutions_and_applies_the_minimum() {
        let started = [1, 1, 2, 3, 3, 3];
        let resolved = [1, 2, 2, 4];
        let got = flapping(&counts(&started), &resolved, 3, 10);
        let want = [(1, 3, 2), (2, 3, 1), (3, 3, 3)];
        assert_eq!(
            got.iter()
                .map(|f| (f.fingerprint, f.changes, f.firing))
                .collect::<Vec<_>>(),
            want
        );
        assert!(flapping(&counts(&started), &resolved, 4, 10).is_empty());
        assert_eq!(flapping(&counts(&started), &resolved, 1, 2).len(), 2);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        // n = 1..=20 against the definition: the smallest value with at least pct% at or below it.
        for n in 1..=20usize {
            for pct in [50, 90] {
                let r = rank(pct, n);
                assert!(
                    r * 100 >= pct * n && (r - 1) * 100 < pct * n,
                    "n={n} pct={pct} rank={r}"
                );
            }
        }
        let names = ["A"; 10];
        let starts = [0i64; 10];
        let ends: Vec<i64> = (1..=10).rev().collect(); // durations 10..1, unsorted
        let r = ttr(&names, &starts, &ends, 10);
        assert_eq!(
            r,
            [Resolve {
                alertname: "A",
                resolved: 10,
                p50_us: 5,
                p90_us: 9,
                max_us: 10
            }]
        );
    }

    #[test]
    fn time_to_resolve_orders_by_p90_then_alertname_bytes() {
        let names = ["b", "a", "Z", "a", "é"];
        let starts = [100, 0, 0, 0, -50];
        let ends = [130, 30, 30, 10, -20];
        let r = ttr(&names, &starts, &ends, 10);
        let got: Vec<_> = r
            .iter()
            .map(|x| (x.alertname, x.resolved, x.p50_us, x.p90_us))
            .collect();
        assert_eq!(
            got,
            [
                ("Z", 1, 30, 30),
                ("a", 2, 10, 30),
                ("b", 1, 30, 30),
                ("é", 1, 30, 30)
            ]
        );
        let two = ttr(&names, &starts, &ends, 2);
        assert_eq!(
            two.iter().map(|x| x.alertname).collect::<Vec<_>>(),
            ["Z", "a"]
        );
    }
}
