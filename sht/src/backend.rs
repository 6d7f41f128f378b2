//! Storage backends behind one trait: the on-disk history tree, memory, and null.

use std::path::{Path, PathBuf};

use crate::attribute::AttributeTree;
use crate::condition::{QuarkSet, TimeCondition};
use crate::error::{Error, Result};
use crate::ht::chunk::IntervalChunk;
use crate::ht::query;
use crate::ht::{HistoryTreeReader, HistoryTreeWriter, HtConfig};
use crate::value::Interval;
use crate::Quark;

/// Where finished intervals go, and where queries find them
/// (Trace Compass `IStateHistoryBackend`).
pub trait StateHistoryBackend: Send + Sync {
    fn start_time(&self) -> i64;
    /// Largest end time stored so far (the history end once finished).
    fn end_time(&self) -> i64;
    /// Stores one finished interval.
    fn insert(&mut self, interval: Interval) -> Result<()>;
    /// Whether [`StateHistoryBackend::insert`] may report its errors later anyway (a
    /// writer thread): then the state system hands intervals over in chunks.
    fn defers_inserts(&self) -> bool {
        false
    }
    /// Stores `chunk`'s intervals in order, leaving it empty; stops at the first error.
    /// (A loop over [`StateHistoryBackend::insert`], unless a backend does better.)
    fn insert_chunk(&mut self, chunk: &mut IntervalChunk) -> Result<()> {
        let mut result = Ok(());
        for interval in chunk.drain() {
            result = self.insert(interval);
            if result.is_err() {
                break;
            }
        }
        chunk.clear();
        result
    }
    /// No more intervals: close at `end` and save `attributes` if the backend keeps them.
    fn finish(&mut self, end: i64, attributes: &AttributeTree) -> Result<()>;
    /// The stored interval of `quark` containing `t`.
    fn query_single(&self, t: i64, quark: Quark) -> Result<Option<Interval>>;
    /// Sets `out[q]` for every stored interval containing `t`; slots it has no
    /// interval for are left as they are.
    fn query_full(&self, t: i64, out: &mut [Interval]) -> Result<()>;
    /// Visits every stored interval of `quarks` meeting `times`.
    fn query_range(
        &self,
        quarks: &QuarkSet,
        times: &TimeCondition,
        visit: &mut dyn FnMut(&Interval),
    ) -> Result<()>;
    /// Short name for messages (`history-tree`, `in-memory`, `null`).
    fn kind(&self) -> &'static str;
}

enum HtState {
    Building(Box<HistoryTreeWriter>),
    Finished(Box<HistoryTreeReader>),
}

/// The `.ht` file backend: a writer while building, a reader once finished.
pub struct HistoryTreeBackend {
    state: HtState,
    start: i64,
}

impl HistoryTreeBackend {
    /// A new history to be written at `path`.
    pub fn create(path: impl AsRef<Path>, config: HtConfig) -> Result<Self> {
        Ok(HistoryTreeBackend {
            start: config.start,
            state: HtState::Building(Box::new(HistoryTreeWriter::create(path, config)?)),
        })
    }

    /// An existing history file.
    pub fn open(path: impl AsRef<Path>, expected_provider_version: Option<i32>) -> Result<Self> {
        let reader = HistoryTreeReader::open(path, expected_provider_version)?;
        Ok(HistoryTreeBackend {
            start: reader.start_time(),
            state: HtState::Finished(Box::new(reader)),
        })
    }

    pub fn reader(&self) -> Option<&HistoryTreeReader> {
        match &self.state {
            HtState::Finished(r) => Some(r),
            HtState::Building(_) => None,
        }
    }

    pub fn path(&self) -> PathBuf {
        match &self.state {
            HtState::Finished(r) => r.path().to_path_buf(),
            HtState::Building(w) => w.path().to_path_buf(),
        }
    }
}

impl StateHistoryBackend for HistoryTreeBackend {
    fn start_time(&self) -> i64 {
        self.start
    }

    fn end_time(&self) -> i64 {
        match &self.state {
            HtState::Building(w) => w.end_time(),
            HtState::Finished(r) => r.end_time(),
        }
    }

    fn insert(&mut self, interval: Interval) -> Result<()> {
        match &mut self.state {
            HtState::Building(w) => w.insert(interval),
            HtState::Finished(_) => Err(Error::Closed),
        }
    }

    fn insert_chunk(&mut self, chunk: &mut IntervalChunk) -> Result<()> {
        match &mut self.state {
            HtState::Building(w) => w.insert_chunk(chunk),
            HtState::Finished(_) => {
                chunk.clear();
                Err(Error::Closed)
            }
        }
    }

    fn finish(&mut self, end: i64, attributes: &AttributeTree) -> Result<()> {
        let HtState::Building(w) = &mut self.state else {
            return Err(Error::Closed);
        };
        w.finish(end, attributes)?;
        let reader = HistoryTreeReader::open(w.path(), None)?;
        self.state = HtState::Finished(Box::new(reader));
        Ok(())
    }

    fn query_single(&self, t: i64, quark: Quark) -> Result<Option<Interval>> {
        match &self.state {
            HtState::Building(w) => query::single(&**w, t, quark),
            HtState::Finished(r) => r.query_single(t, quark),
        }
    }

    fn query_full(&self, t: i64, out: &mut [Interval]) -> Result<()> {
        match &self.state {
            HtState::Building(w) => query::full(&**w, t, out),
            HtState::Finished(r) => r.query_full(t, out),
        }
    }

    fn query_range(
        &self,
        quarks: &QuarkSet,
        times: &TimeCondition,
        visit: &mut dyn FnMut(&Interval),
    ) -> Result<()> {
        match &self.state {
            HtState::Building(w) => query::range(&**w, quarks, times, visit),
            HtState::Finished(r) => r.query_range(quarks, times, visit),
        }
    }

    fn kind(&self) -> &'static str {
        "history-tree"
    }
}

/// Keeps every interval in memory, per quark, sorted by start time.
#[derive(Default)]
pub struct InMemoryBackend {
    start: i64,
    end: i64,
    per_quark: Vec<Vec<Interval>>,
}

impl InMemoryBackend {
    pub fn new(start: i64) -> Self {
        InMemoryBackend {
            start,
            end: start,
            per_quark: Vec::new(),
        }
    }

    /// Intervals of one quark, sorted by start.
    pub fn intervals_of(&self, quark: Quark) -> &[Interval] {
        self.per_quark
            .get(quark as usize)
            .map_or(&[], |v| v.as_slice())
    }

    fn find(&self, t: i64, quark: Quark) -> Option<&Interval> {
        let list = self.per_quark.get(usize::try_from(quark).ok()?)?;
        let i = list.partition_point(|i| i.start <= t);
        list[..i].last().filter(|i| i.end >= t)
    }
}

impl StateHistoryBackend for InMemoryBackend {
    fn start_time(&self) -> i64 {
        self.start
    }

    fn end_time(&self) -> i64 {
        self.end
    }

    fn insert(&mut self, interval: Interval) -> Result<()> {
        if interval.start < self.start {
            return Err(Error::BeforeStart {
                t: interval.start,
                start: self.start,
            });
        }
        if interval.start > interval.end || interval.quark < 0 {
            return Err(Error::InvalidInterval {
                start: interval.start,
                end: interval.end,
                quark: interval.quark,
            });
        }
        let q = interval.quark as usize;
        if q >= self.per_quark.len() {
            self.per_quark.resize_with(q + 1, Vec::new);
        }
        self.end = self.end.max(interval.end);
        let list = &mut self.per_quark[q];
        if list.last().is_none_or(|l| l.start <= interval.start) {
            list.push(interval);
        } else {
            let pos = list.partition_point(|l| l.start <= interval.start);
            list.insert(pos, interval);
        }
        Ok(())
    }

    fn finish(&mut self, end: i64, _attributes: &AttributeTree) -> Result<()> {
        self.end = self.end.max(end);
        Ok(())
    }

    fn query_single(&self, t: i64, quark: Quark) -> Result<Option<Interval>> {
        Ok(self.find(t, quark).cloned())
    }

    fn query_full(&self, t: i64, out: &mut [Interval]) -> Result<()> {
        for (q, slot) in out.iter_mut().enumerate() {
            if let Some(i) = self.find(t, q as Quark) {
                *slot = i.clone();
            }
        }
        Ok(())
    }

    fn query_range(
        &self,
        quarks: &QuarkSet,
        times: &TimeCondition,
        visit: &mut dyn FnMut(&Interval),
    ) -> Result<()> {
        let (lo, hi) = (times.min(), times.max());
        for &q in quarks.as_slice() {
            let list = self.intervals_of(q);
            // Intervals of one quark do not overlap: ends grow with starts.
            let from = list.partition_point(|i| i.end < lo);
            for i in &list[from..] {
                if i.start > hi {
                    break;
                }
                if times.intersects(i.start, i.end) {
                    visit(i);
                }
            }
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "in-memory"
    }
}

/// Stores nothing: for providers whose only use is the ongoing state.
pub struct NullBackend {
    start: i64,
    end: i64,
}

impl NullBackend {
    pub fn new(start: i64) -> Self {
        NullBackend { start, end: start }
    }
}

impl StateHistoryBackend for NullBackend {
    fn start_time(&self) -> i64 {
        self.start
    }
    fn end_time(&self) -> i64 {
        self.end
    }
    fn insert(&mut self, interval: Interval) -> Result<()> {
        self.end = self.end.max(interval.end);
        Ok(())
    }
    fn finish(&mut self, end: i64, _attributes: &AttributeTree) -> Result<()> {
        self.end = self.end.max(end);
        Ok(())
    }
    fn query_single(&self, _t: i64, _quark: Quark) -> Result<Option<Interval>> {
        Ok(None)
    }
    fn query_full(&self, _t: i64, _out: &mut [Interval]) -> Result<()> {
        Ok(())
    }
    fn query_range(
        &self,
        _quarks: &QuarkSet,
        _times: &TimeCondition,
        _visit: &mut dyn FnMut(&Interval),
    ) -> Result<()> {
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "null"
    }
}
