//! The shared, byte-bounded cache of time-graph rows behind the states answers.
//!
//! A viewer scrolling vertically re-asks the same window with other rows, and
//! several viewers look at the same windows: a row's answer for a given set of
//! sample times is kept pre-serialized (the exact bytes serde writes for a
//! [`TimeGraphRow`]), so a repeated request is mostly concatenation. Rows are
//! only cached from finished state systems (a growing one changes its answers),
//! and each remembers which state system it came from, so a trace re-analysed
//! under the same view never serves stale rows. Least recently used rows go
//! first when the byte budget is reached.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use sht::StateSystem;

use crate::model::{GenericResponse, StatesModel, TimeGraphRow};

/// Bytes of serialized rows kept by default (a 500-row x 1,000-time answer is
/// 1-2 MB, so this holds some two hundred such answers). 64 viewers over ten
/// windows of a 1 GiB kernel trace use 129 MiB of rows: with 64 MiB, rows were
/// evicted and recomputed all the time, and p95 latency went 87 -> 120 ms.
pub const DEFAULT_ROW_CACHE_BYTES: usize = 256 << 20;
/// Bytes of interned sample-time sets kept (a set of 1,000 times is 8 KB).
const TIME_SETS_BYTES: usize = 8 << 20;

/// One row of a states answer, as JSON bytes (written by
/// [`crate::states_json`], valid UTF-8).
pub type RowJson = Arc<[u8]>;

/// The model of a states answer: rows built for this answer, or serialized
/// rows (from the cache). Both serialize to the same bytes.
#[derive(Debug)]
pub enum StatesAnswer {
    Plain(StatesModel),
    Rows(Vec<RowJson>),
}

impl Default for StatesAnswer {
    fn default() -> Self {
        StatesAnswer::Plain(StatesModel::default())
    }
}

impl From<StatesModel> for StatesAnswer {
    fn from(m: StatesModel) -> Self {
        StatesAnswer::Plain(m)
    }
}

struct RawRows<'a>(&'a [RowJson]);

impl Serialize for RawRows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        // Not the server's path (it writes answers with `states_json`): the
        // rows are re-checked as JSON here.
        for row in self.0 {
            let text = std::str::from_utf8(row).map_err(serde::ser::Error::custom)?;
            let raw: &RawValue = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
            seq.serialize_element::<RawValue>(raw)?;
        }
        seq.end()
    }
}

impl Serialize for StatesAnswer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StatesAnswer::Plain(m) => m.serialize(s),
            // The shape of `StatesModel`: `{"rows":[...]}`.
            StatesAnswer::Rows(rows) => {
                let mut st = s.serialize_struct("StatesModel", 1)?;
                st.serialize_field("rows", &RawRows(rows))?;
                st.end()
            }
        }
    }
}

/// A row serialized exactly as inside a [`StatesModel`].
pub fn row_json(row: &TimeGraphRow) -> RowJson {
    Arc::from(crate::states_json::row_bytes(row))
}

/// A unique id for each view instance (part of the cache key: entry ids are
/// per view).
pub fn next_view_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The state system a cached row was computed from.
pub type SsRef = Weak<RwLock<StateSystem>>;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct RowKey {
    view: u64,
    entry: i64,
    times: u64,
}

struct RowEntry {
    json: RowJson,
    ss: SsRef,
    /// Last use.
    tick: u64,
    /// Its place in `Inner::order` (the last use when it was queued there):
    /// a hit only updates `tick`, eviction requeues rows found used since.
    queued: u64,
}

struct TimeSet {
    times: Arc<[i64]>,
    id: u64,
    tick: u64,
}

#[derive(Default)]
struct Inner {
    budget: usize,
    used: usize,
    clock: u64,
    rows: HashMap<RowKey, RowEntry>,
    /// queued tick → key, oldest first (eviction order, requeued lazily).
    order: BTreeMap<u64, RowKey>,
    /// hash of the times → interned sets with that hash.
    sets: HashMap<u64, Vec<TimeSet>>,
    sets_bytes: usize,
    next_set: u64,
    stats: CacheStats,
}

/// Counters of a [`RowCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    /// Rows held now, and their bytes.
    pub rows: usize,
    pub bytes: usize,
}

/// Serialized time-graph rows keyed by (view, entry, sample times), bounded in bytes.
pub struct RowCache {
    inner: Mutex<Inner>,
    /// Rows being computed now: a request missing one of them waits for it
    /// rather than computing it again (single flight).
    flights: Mutex<HashMap<FlightKey, Arc<Flight>>>,
}

/// A row in flight: its key and the state system it is computed from.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct FlightKey {
    row: RowKey,
    ss: usize,
}

/// The outcome of a row in flight: `Some(None)` when its computation failed.
#[derive(Default)]
struct Flight {
    done: Mutex<Option<Option<RowJson>>>,
    cv: Condvar,
}

/// Longest wait for a row another request computes (then it is computed again).
const FLIGHT_WAIT: Duration = Duration::from_secs(30);

impl Flight {
    fn complete(&self, row: Option<RowJson>) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(row);
        self.cv.notify_all();
    }

    fn wait(&self) -> Option<RowJson> {
        let g = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self
            .cv
            .wait_timeout_while(g, FLIGHT_WAIT, |d| d.is_none())
            .unwrap_or_else(|e| e.into_inner());
        g.clone().flatten()
    }
}

fn row_cost(json: &[u8]) -> usize {
    json.len() + 96
}

impl RowCache {
    pub fn new(budget: usize) -> Self {
        RowCache {
            inner: Mutex::new(Inner {
                budget,
                next_set: 1,
                ..Inner::default()
            }),
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// The cache the views share, of [`DEFAULT_ROW_CACHE_BYTES`] unless the
    /// `SEXTANT_ROW_CACHE_MB` environment variable says otherwise (0 disables it).
    pub fn global() -> &'static RowCache {
        static CACHE: OnceLock<RowCache> = OnceLock::new();
        CACHE.get_or_init(|| {
            let budget = std::env::var("SEXTANT_ROW_CACHE_MB")
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .map_or(DEFAULT_ROW_CACHE_BYTES, |mb| mb << 20);
            RowCache::new(budget)
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn flights(&self) -> std::sync::MutexGuard<'_, HashMap<FlightKey, Arc<Flight>>> {
        self.flights.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends a flight: waiters get `row` (`None`: compute it yourselves).
    fn land(&self, key: &FlightKey, flight: &Arc<Flight>, row: Option<RowJson>) {
        let mut f = self.flights();
        if f.get(key).is_some_and(|x| Arc::ptr_eq(x, flight)) {
            f.remove(key);
        }
        drop(f);
        flight.complete(row);
    }

    /// Rows in flight now.
    pub fn in_flight(&self) -> usize {
        self.flights().len()
    }

    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            rows: g.rows.len(),
            bytes: g.used,
            ..g.stats
        }
    }

    pub fn budget(&self) -> usize {
        self.lock().budget
    }

    /// The id of this set of sample times (equal sets, equal ids, as long as
    /// the set stays among the recently used ones).
    pub fn times_id(&self, times: &[i64]) -> u64 {
        let mut h = DefaultHasher::new();
        times.hash(&mut h);
        let hash = h.finish();
        let mut g = self.lock();
        g.clock += 1;
        let tick = g.clock;
        if let Some(set) = g
            .sets
            .get_mut(&hash)
            .and_then(|v| v.iter_mut().find(|s| *s.times == *times))
        {
            set.tick = tick;
            return set.id;
        }
        let bytes = times.len() * 8 + 64;
        while g.sets_bytes + bytes > TIME_SETS_BYTES && !g.sets.is_empty() {
            // Few sets (each is thousands of times): a scan is cheap.
            let (vh, vid) = g
                .sets
                .iter()
                .flat_map(|(h, v)| v.iter().map(move |s| (s.tick, *h, s.id)))
                .min()
                .map(|(_, h, id)| (h, id))
                .expect("non-empty");
            let list = g.sets.get_mut(&vh).expect("listed");
            let mut freed = 0;
            list.retain(|s| {
                let keep = s.id != vid;
                if !keep {
                    freed = s.times.len() * 8 + 64;
                }
                keep
            });
            if list.is_empty() {
                g.sets.remove(&vh);
            }
            g.sets_bytes -= freed;
        }
        let id = g.next_set;
        g.next_set += 1;
        g.sets_bytes += bytes;
        g.sets.entry(hash).or_default().push(TimeSet {
            times: times.into(),
            id,
            tick,
        });
        id
    }

    /// The cached rows of `entries` (same order; `None` where absent or made
    /// from another state system than `ss`).
    pub fn get_many(
        &self,
        view: u64,
        times: u64,
        ss: &SsRef,
        entries: &[i64],
    ) -> Vec<Option<RowJson>> {
        let mut g = self.lock();
        let g = &mut *g;
        entries
            .iter()
            .map(|&entry| {
                let key = RowKey { view, entry, times };
                let Some(e) = g.rows.get_mut(&key) else {
                    g.stats.misses += 1;
                    return None;
                };
                if !e.ss.ptr_eq(ss) {
                    g.stats.misses += 1;
                    return None;
                }
                g.stats.hits += 1;
                // No reordering here (a hit is the common case: hundreds per
                // answer); eviction skips rows used since they were queued.
                g.clock += 1;
                e.tick = g.clock;
                Some(e.json.clone())
            })
            .collect()
    }

    /// Keeps rows made from `ss`, evicting the least recently used beyond the budget.
    pub fn put_many(&self, view: u64, times: u64, ss: &SsRef, rows: &[(i64, RowJson)]) {
        let mut g = self.lock();
        let g = &mut *g;
        for (entry, json) in rows {
            let cost = row_cost(json);
            if cost > g.budget {
                continue;
            }
            let key = RowKey {
                view,
                entry: *entry,
                times,
            };
            if let Some(old) = g.rows.remove(&key) {
                g.order.remove(&old.queued);
                g.used -= row_cost(&old.json);
            }
            while g.used + cost > g.budget {
                let Some((queued, victim)) = g.order.pop_first() else {
                    break;
                };
                let Some(e) = g.rows.get_mut(&victim) else {
                    continue;
                };
                if e.tick != queued {
                    // Used since: least recently used is further on.
                    e.queued = e.tick;
                    g.order.insert(e.tick, victim);
                    continue;
                }
                if let Some(old) = g.rows.remove(&victim) {
                    g.used -= row_cost(&old.json);
                    g.stats.evictions += 1;
                }
            }
            g.clock += 1;
            g.order.insert(g.clock, key);
            g.used += cost;
            g.rows.insert(
                key,
                RowEntry {
                    json: json.clone(),
                    ss: ss.clone(),
                    tick: g.clock,
                    queued: g.clock,
                },
            );
        }
    }
}

/// A row of a states answer: built now, or served serialized from the cache.
pub(crate) enum RowOut {
    Built(TimeGraphRow),
    Json(RowJson),
}

impl RowOut {
    /// The row as a model; `None` for a cached row (only made with a cache).
    pub(crate) fn into_built(self) -> Option<TimeGraphRow> {
        match self {
            RowOut::Built(row) => Some(row),
            RowOut::Json(_) => None,
        }
    }

    pub(crate) fn into_json(self) -> RowJson {
        match self {
            RowOut::Built(row) => row_json(&row),
            RowOut::Json(j) => j,
        }
    }
}

/// The states model of rows made without a cache (`complete`: the answer is final).
pub(crate) fn states_model(rows: Vec<RowOut>, complete: bool) -> GenericResponse<StatesModel> {
    let rows = rows.into_iter().filter_map(RowOut::into_built).collect();
    GenericResponse::with_progress(StatesModel { rows }, !complete)
}

/// The serialized answer of rows made with the cache.
pub(crate) fn states_rows(rows: Vec<RowOut>, complete: bool) -> GenericResponse<StatesAnswer> {
    let rows = rows.into_iter().map(RowOut::into_json).collect();
    GenericResponse::with_progress(StatesAnswer::Rows(rows), !complete)
}

/// The rows of one states answer of a view, put together per state system:
/// taken from the cache where it holds them, built otherwise (and then kept).
/// Without a cache every row is built and returned as a model.
pub(crate) struct RowAssembly<'c> {
    cache: Option<&'c RowCache>,
    view: u64,
    times_id: Option<u64>,
    rows: HashMap<i64, RowOut>,
    /// Rows this answer computes that others may wait for (entry → flight).
    claims: HashMap<i64, (FlightKey, Arc<Flight>)>,
}

impl Drop for RowAssembly<'_> {
    /// Rows claimed but never built (an error, a panic): their waiters compute
    /// them themselves.
    fn drop(&mut self) {
        if let Some(cache) = self.cache {
            for (_, (key, flight)) in self.claims.drain() {
                cache.land(&key, &flight, None);
            }
        }
    }
}

impl<'c> RowAssembly<'c> {
    pub(crate) fn new(cache: Option<&'c RowCache>, view: u64) -> Self {
        RowAssembly {
            cache,
            view,
            times_id: None,
            rows: HashMap::new(),
            claims: HashMap::new(),
        }
    }

    /// The cache to use for rows of `ss`: none while it is being built, since a
    /// growing history changes its answers.
    fn cache_for(&self, building: bool) -> Option<&'c RowCache> {
        self.cache.filter(|_| !building)
    }

    /// Keeps the cached rows of `members` (made from `ss` at `times`) and returns
    /// the members still to build, which this answer then owes to
    /// [`RowAssembly::add_built`]. Rows another answer is computing now are
    /// waited for rather than computed twice; the wait happens before claiming
    /// any row (and an assembly holds no claim here: each group is built before
    /// the next is looked up), so two answers never wait for each other.
    pub(crate) fn take_cached<M>(
        &mut self,
        ss: &SsRef,
        building: bool,
        times: &[i64],
        members: Vec<M>,
        id: impl Fn(&M) -> i64,
    ) -> Vec<M> {
        let Some(cache) = self.cache_for(building) else {
            return members;
        };
        let tid = *self.times_id.get_or_insert_with(|| cache.times_id(times));
        let key = |entry: i64| FlightKey {
            row: RowKey {
                view: self.view,
                entry,
                times: tid,
            },
            ss: ss.as_ptr() as usize,
        };
        let mut pending = members;
        loop {
            let ids: Vec<i64> = pending.iter().map(&id).collect();
            let found = cache.get_many(self.view, tid, ss, &ids);
            let mut missing = Vec::new();
            for (m, f) in pending.into_iter().zip(found) {
                match f {
                    Some(j) => {
                        self.rows.insert(id(&m), RowOut::Json(j));
                    }
                    None => missing.push(m),
                }
            }
            let mut waits = Vec::new();
            let mut free = Vec::new();
            {
                let mut flights = cache.flights();
                for m in missing {
                    match flights.get(&key(id(&m))) {
                        Some(f) => waits.push((m, f.clone())),
                        None => free.push(m),
                    }
                }
                if waits.is_empty() {
                    for m in &free {
                        let k = key(id(m));
                        let f = Arc::new(Flight::default());
                        flights.insert(k, f.clone());
                        self.claims.insert(k.row.entry, (k, f));
                    }
                    return free;
                }
            }
            pending = free;
            for (m, f) in waits {
                match f.wait() {
                    Some(j) => {
                        self.rows.insert(id(&m), RowOut::Json(j));
                    }
                    // Its computation failed: look again (and claim it).
                    None => pending.push(m),
                }
            }
            if pending.is_empty() {
                return pending;
            }
        }
    }

    /// Adds rows built from `ss` at `times`, kept in the cache when it applies.
    pub(crate) fn add_built(
        &mut self,
        ss: &SsRef,
        building: bool,
        times: &[i64],
        rows: Vec<TimeGraphRow>,
    ) {
        let Some(cache) = self.cache_for(building) else {
            for row in rows {
                self.rows.insert(row.entry_id, RowOut::Built(row));
            }
            return;
        };
        let tid = *self.times_id.get_or_insert_with(|| cache.times_id(times));
        let made: Vec<(i64, RowJson)> = rows.iter().map(|r| (r.entry_id, row_json(r))).collect();
        cache.put_many(self.view, tid, ss, &made);
        for (id, j) in made {
            if let Some((k, f)) = self.claims.remove(&id) {
                cache.land(&k, &f, Some(j.clone()));
            }
            self.rows.insert(id, RowOut::Json(j));
        }
    }

    /// The rows of `items`, in that order (ids without a row left out).
    pub(crate) fn finish(mut self, items: &[i64]) -> Vec<RowOut> {
        items.iter().filter_map(|id| self.rows.remove(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Style, TimeGraphState};

    fn row(id: i64, n: usize) -> RowJson {
        row_json(&TimeGraphRow {
            entry_id: id,
            states: (0..n as i64)
                .map(|i| TimeGraphState {
                    start: i * 10,
                    end: i * 10 + 10,
                    label: None,
                    style: Some(Style::key("USERMODE")),
                })
                .collect(),
        })
    }

    #[test]
    fn raw_rows_serialize_as_the_model() {
        let rows = vec![
            TimeGraphRow {
                entry_id: 3,
                states: vec![TimeGraphState {
                    start: 1_700_000_000_025_765_430,
                    end: 1_700_000_000_025_765_431,
                    label: Some("a \"b\"".into()),
                    style: Some(Style::key("X")),
                }],
            },
            TimeGraphRow {
                entry_id: 4,
                states: vec![],
            },
        ];
        let raw = StatesAnswer::Rows(rows.iter().map(row_json).collect());
        let plain = StatesAnswer::Plain(StatesModel { rows });
        assert_eq!(
            serde_json::to_string(&raw).unwrap(),
            serde_json::to_string(&plain).unwrap()
        );
        assert_eq!(
            serde_json::to_string(&StatesAnswer::Rows(vec![])).unwrap(),
            r#"{"rows":[]}"#
        );
    }

    /// Concurrent answers missing the same rows compute each row once: the
    /// others wait for it; a failed computation lets a waiter compute it.
    #[test]
    fn single_flight_computes_concurrent_misses_once() {
        use std::sync::atomic::AtomicUsize;
        use std::sync::Barrier;
        let cache = RowCache::new(64 << 20);
        let ss = Arc::new(RwLock::new(StateSystem::in_memory(0)));
        let w = Arc::downgrade(&ss);
        let built = AtomicUsize::new(0);
        let times = [1i64, 2, 3];
        let barrier = Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    let mut a = RowAssembly::new(Some(&cache), 7);
                    let todo = a.take_cached(&w, false, &times, vec![1i64, 2, 3], |m| *m);
                    if !todo.is_empty() {
                        built.fetch_add(todo.len(), Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        let rows = todo
                            .iter()
                            .map(|&id| TimeGraphRow {
                                entry_id: id,
                                states: vec![],
                            })
                            .collect();
                        a.add_built(&w, false, &times, rows);
                    }
                    let got: Vec<String> = a
                        .finish(&[3, 1, 2])
                        .into_iter()
                        .map(|r| String::from_utf8(r.into_json().to_vec()).unwrap())
                        .collect();
                    assert_eq!(
                        got,
                        [3, 1, 2].map(|i| format!(r#"{{"entryId":{i},"states":[]}}"#))
                    );
                });
            }
        });
        assert_eq!(built.load(Ordering::SeqCst), 3);
        assert_eq!(cache.in_flight(), 0);
        // A claim dropped without its rows: the next answer claims them again.
        let t2 = [9i64];
        let mut a = RowAssembly::new(Some(&cache), 8);
        assert_eq!(a.take_cached(&w, false, &t2, vec![5i64], |m| *m), [5]);
        assert_eq!(cache.in_flight(), 1);
        drop(a);
        assert_eq!(cache.in_flight(), 0);
        let mut b = RowAssembly::new(Some(&cache), 8);
        assert_eq!(b.take_cached(&w, false, &t2, vec![5i64], |m| *m), [5]);
    }

    /// Hits do not reorder eagerly, yet the row evicted is always the least
    /// recently used one.
    #[test]
    fn lazy_requeue_still_evicts_the_least_recently_used() {
        let one = row_cost(&row(0, 5));
        let cache = RowCache::new(one * 3);
        let ss = Arc::new(RwLock::new(StateSystem::in_memory(0)));
        let w = Arc::downgrade(&ss);
        let t = cache.times_id(&[1]);
        let put = |id: i64| cache.put_many(1, t, &w, &[(id, row(id, 5))]);
        let touch = |id: i64| assert!(cache.get_many(1, t, &w, &[id])[0].is_some(), "{id}");
        for id in 0..3 {
            put(id);
        }
        touch(0);
        touch(1);
        touch(0);
        put(3); // evicts 2
        touch(0);
        put(4); // evicts 1 (0 and 3 used since)
        touch(3);
        put(5); // evicts 0
        assert_eq!(cache.stats().evictions, 3);
        let got = cache.get_many(1, t, &w, &[0, 1, 2, 3, 4, 5]);
        assert_eq!(
            got.iter().map(Option::is_some).collect::<Vec<_>>(),
            [false, false, false, true, true, true]
        );
        // Replacing a row keeps one entry per row in the eviction order.
        put(4);
        put(4);
        put(6); // evicts 3 (the check above used it before 5; 4 was just replaced)
        let got = cache.get_many(1, t, &w, &[3, 4, 5, 6]);
        assert_eq!(
            got.iter().map(Option::is_some).collect::<Vec<_>>(),
            [false, true, true, true]
        );
        assert_eq!(cache.stats().rows, 3);
    }

    #[test]
    fn lru_by_bytes_with_state_system_check() {
        let one = row_cost(&row(0, 5));
        let cache = RowCache::new(one * 3);
        let ss = Arc::new(RwLock::new(StateSystem::in_memory(0)));
        let other = Arc::new(RwLock::new(StateSystem::in_memory(0)));
        let (w, wo) = (Arc::downgrade(&ss), Arc::downgrade(&other));
        let t = cache.times_id(&[1, 2, 3]);
        assert_eq!(cache.times_id(&[1, 2, 3]), t);
        assert_ne!(cache.times_id(&[1, 2, 4]), t);
        cache.put_many(1, t, &w, &[(0, row(0, 5)), (1, row(1, 5)), (2, row(2, 5))]);
        assert_eq!(cache.stats().rows, 3);
        // Touch 0: 1 is now the least recently used.
        assert!(cache.get_many(1, t, &w, &[0])[0].is_some());
        cache.put_many(1, t, &w, &[(3, row(3, 5))]);
        let got = cache.get_many(1, t, &w, &[0, 1, 2, 3]);
        assert_eq!(
            got.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, false, true, true]
        );
        let s = cache.stats();
        assert_eq!((s.rows, s.evictions), (3, 1));
        assert!(s.bytes <= one * 3);
        // Another view, other times, another state system: misses.
        assert!(cache.get_many(2, t, &w, &[0])[0].is_none());
        assert!(cache.get_many(1, t + 100, &w, &[0])[0].is_none());
        assert!(cache.get_many(1, t, &wo, &[0])[0].is_none());
        // The row served is the row stored.
        assert_eq!(
            cache.get_many(1, t, &w, &[3])[0].as_deref().unwrap(),
            &*row(3, 5)
        );
        // A zero budget keeps nothing.
        let none = RowCache::new(0);
        none.put_many(1, t, &w, &[(0, row(0, 1))]);
        assert_eq!(none.stats().rows, 0);
    }
}
