//! Helpers for outputs built on state systems: stable entry ids, sampled 2-D
//! queries (tsp.md §7.2) and attribute ordering.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use sht::{AttributeTree, Interval, Quark, StateSystem, StateSystemQuerier};

use crate::model::{Style, Text, TimeGraphState};
use crate::registry::StateSystemHandle;

/// Entry ids of one output: assigned from 0 the first time a key is seen, then
/// reused for the life of the output (tsp.md §7.1), so they stay stable and small.
pub struct IdMap<K> {
    inner: Mutex<(HashMap<K, i64>, Vec<K>)>,
}

impl<K: Hash + Eq + Clone> Default for IdMap<K> {
    fn default() -> Self {
        IdMap {
            inner: Mutex::new((HashMap::new(), Vec::new())),
        }
    }
}

impl<K: Hash + Eq + Clone> IdMap<K> {
    /// The id of `key`, allocated if new.
    pub fn id(&self, key: &K) -> i64 {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (ids, keys) = &mut *guard;
        if let Some(&id) = ids.get(key) {
            return id;
        }
        let id = keys.len() as i64;
        keys.push(key.clone());
        ids.insert(key.clone(), id);
        id
    }

    /// The key of an id handed out before.
    pub fn key(&self, id: i64) -> Option<K> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        usize::try_from(id)
            .ok()
            .and_then(|i| guard.1.get(i).cloned())
    }
}

/// The sample times a state system can answer: those within [start, current end].
pub fn times_in_range(ss: &StateSystem, times: &[i64]) -> Vec<i64> {
    let (lo, hi) = (ss.start_time(), ss.current_end_time());
    times
        .iter()
        .copied()
        .filter(|&t| lo <= t && t <= hi)
        .collect()
}

/// For each of `quarks`, its intervals containing at least one of `times`
/// (times outside the state system are ignored), sorted by start.
pub fn sampled_intervals(
    ss: &StateSystem,
    quarks: &[Quark],
    times: &[i64],
) -> sht::Result<HashMap<Quark, Vec<Interval>>> {
    let times = times_in_range(ss, times);
    let mut out: HashMap<Quark, Vec<Interval>> = HashMap::new();
    if times.is_empty() || quarks.is_empty() {
        return Ok(out);
    }
    for i in ss.query_2d_at(quarks, &times)? {
        out.entry(i.quark).or_default().push(i);
    }
    for v in out.values_mut() {
        v.sort_by_key(|i| i.start);
        v.dedup_by_key(|i| i.start);
    }
    Ok(out)
}

/// [`sampled_intervals`] of the state system of `handle` (`ss`, its read guard):
/// from its column index when the history is finished and indexed (the same
/// intervals, in the same order), else from the history tree. An index that
/// fails a query is dropped and the tree answers.
pub fn sampled_rows(
    handle: &StateSystemHandle,
    ss: &StateSystem,
    quarks: &[Quark],
    times: &[i64],
) -> sht::Result<HashMap<Quark, Vec<Interval>>> {
    if ss.is_building() {
        return sampled_intervals(ss, quarks, times);
    }
    let Some(index) = handle.columns.get() else {
        return sampled_intervals(ss, quarks, times);
    };
    let times = times_in_range(ss, times);
    let mut out: HashMap<Quark, Vec<Interval>> = HashMap::with_capacity(quarks.len());
    if times.is_empty() {
        return Ok(out);
    }
    for &q in quarks {
        if out.contains_key(&q) {
            continue;
        }
        let mut v = Vec::new();
        if let Err(e) = index.sampled(q, &times, &mut v) {
            handle.columns.fail(&e);
            return sampled_intervals(ss, quarks, &times);
        }
        if !v.is_empty() {
            out.insert(q, v);
        }
    }
    Ok(out)
}

/// A time-graph state from an interval: `end = min(interval.end + 1, current end)`.
pub fn interval_state(
    interval: &Interval,
    current_end: i64,
    label: Option<Text>,
    style: Option<Style>,
) -> TimeGraphState {
    let end = interval
        .end
        .saturating_add(1)
        .min(current_end)
        .max(interval.start);
    TimeGraphState {
        start: interval.start,
        end,
        label,
        style,
    }
}

/// Whether a states/xy answer over `times` is final: the state system is built,
/// or the last requested time is within what it already covers (tsp.md §2).
pub fn sampled_complete(ss: &StateSystem, times: &[i64]) -> bool {
    match times.last() {
        Some(&t) => !ss.is_building() || t <= ss.current_end_time(),
        None => true,
    }
}

/// Children of `quark` sorted by name, numerically when both names are integers.
pub fn sorted_children(tree: &AttributeTree, quark: Quark) -> Vec<Quark> {
    let mut children = tree.children_of(quark).to_vec();
    children.sort_by(|&a, &b| {
        let na = tree.name(a).unwrap_or("");
        let nb = tree.name(b).unwrap_or("");
        match (na.parse::<i64>(), nb.parse::<i64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => na.cmp(nb),
        }
        .then(a.cmp(&b))
    });
    children
}

/// `a/b/c`: the attribute's full path.
pub fn path_string(tree: &AttributeTree, quark: Quark) -> String {
    tree.path(quark).map(|p| p.join("/")).unwrap_or_default()
}
