//! `StateSystem`: the attribute tree, the transient state and a backend, exposed
//! through two interfaces: [`StateSystemBuilder`] (what providers call) and
//! [`StateSystemQuerier`] (what views and queries call).

use std::path::Path;
use std::sync::Arc;

use crate::attribute::{AttributeTree, ROOT_QUARK};
use crate::backend::{HistoryTreeBackend, InMemoryBackend, NullBackend, StateHistoryBackend};
use crate::condition::{QuarkSet, TimeCondition};
use crate::error::{Error, Result};
use crate::ht::chunk::IntervalChunk;
use crate::ht::format::interval::MAX_STRING_LEN;
use crate::ht::HtConfig;
use crate::value::{CustomValue, Interval, StateValue, ValueType};
use crate::Quark;

/// Deepest stack `push` accepts (Trace Compass's limit).
pub const MAX_STACK_DEPTH: i32 = 100_000;

/// An ongoing value and the type its attribute is locked to, in 24 bytes (a
/// [`StateValue`] is 32, and the lock took 8 more): the lock of a non-null value
/// is its own type. Attributes are created by the million (one per request or
/// thread), and their slots are fresh memory to fault in and clear.
#[derive(Clone, Debug)]
enum Compact {
    /// Null, with the type the attribute is locked to (none before its first value).
    Null(Option<ValueType>),
    Int(i32),
    Long(i64),
    Double(f64),
    String(Arc<str>),
    Custom(Box<CustomValue>),
    /// A value of another type than the lock (only `update_ongoing` sets one).
    Other(Box<(StateValue, Option<ValueType>)>),
}

impl Compact {
    /// `value` on an attribute locked to `lock`, whatever its type.
    fn new(value: StateValue, lock: Option<ValueType>) -> Self {
        match (value, lock) {
            (StateValue::Int(v), Some(ValueType::Int)) => Compact::Int(v),
            (StateValue::Null, lock) => Compact::Null(lock),
            (StateValue::Long(v), Some(ValueType::Long)) => Compact::Long(v),
            (StateValue::String(v), Some(ValueType::String)) => Compact::String(v),
            (StateValue::Double(v), Some(ValueType::Double)) => Compact::Double(v),
            (StateValue::Custom(c), Some(ValueType::Custom(id))) if c.type_id == id => {
                Compact::Custom(Box::new(c))
            }
            (value, lock) => Compact::Other(Box::new((value, lock))),
        }
    }

    /// `value` on an attribute locked to `lock` or not locked yet, when a non-null
    /// value's type is the lock (checked by the caller).
    #[inline(always)]
    fn checked(value: StateValue, lock: Option<ValueType>) -> Self {
        match value {
            StateValue::Null => Compact::Null(lock),
            StateValue::Int(v) => Compact::Int(v),
            StateValue::Long(v) => Compact::Long(v),
            StateValue::Double(v) => Compact::Double(v),
            StateValue::String(v) => Compact::String(v),
            StateValue::Custom(c) => Compact::Custom(Box::new(c)),
        }
    }

    #[inline(always)]
    fn lock(&self) -> Option<ValueType> {
        match self {
            Compact::Null(lock) => *lock,
            Compact::Int(_) => Some(ValueType::Int),
            Compact::Long(_) => Some(ValueType::Long),
            Compact::Double(_) => Some(ValueType::Double),
            Compact::String(_) => Some(ValueType::String),
            Compact::Custom(c) => Some(ValueType::Custom(c.type_id)),
            Compact::Other(o) => o.1,
        }
    }

    fn value(&self) -> StateValue {
        match self {
            Compact::Null(_) => StateValue::Null,
            Compact::Int(v) => StateValue::Int(*v),
            Compact::Long(v) => StateValue::Long(*v),
            Compact::Double(v) => StateValue::Double(*v),
            Compact::String(v) => StateValue::String(Arc::clone(v)),
            Compact::Custom(c) => StateValue::Custom((**c).clone()),
            Compact::Other(o) => o.0.clone(),
        }
    }

    #[inline(always)]
    fn into_value(self) -> StateValue {
        match self {
            Compact::Null(_) => StateValue::Null,
            Compact::Int(v) => StateValue::Int(v),
            Compact::Long(v) => StateValue::Long(v),
            Compact::Double(v) => StateValue::Double(v),
            Compact::String(v) => StateValue::String(v),
            Compact::Custom(c) => StateValue::Custom(*c),
            Compact::Other(o) => o.0,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Compact::Null(_))
    }

    fn int(&self) -> Option<i32> {
        match self {
            Compact::Int(v) => Some(*v),
            Compact::Other(o) => o.0.as_int(),
            _ => None,
        }
    }

    /// `self.value() == *v`, with the common cases first and shared strings
    /// compared by address.
    #[inline(always)]
    fn same(&self, v: &StateValue) -> bool {
        match (self, v) {
            (Compact::Int(x), StateValue::Int(y)) => x == y,
            (Compact::Null(_), StateValue::Null) => true,
            (Compact::Long(x), StateValue::Long(y)) => x == y,
            (Compact::String(x), StateValue::String(y)) => Arc::ptr_eq(x, y) || x == y,
            (Compact::Double(x), StateValue::Double(_)) => StateValue::Double(*x) == *v,
            (Compact::Custom(x), StateValue::Custom(y)) => **x == *y,
            (Compact::Other(o), v) => o.0 == *v,
            _ => false,
        }
    }
}

/// Ongoing value of one attribute and its start (32 bytes).
#[derive(Clone)]
struct Ongoing {
    start: i64,
    value: Compact,
}

/// Ongoing values of every attribute: what has changed but is not yet an interval.
/// One slot per quark, so a change touches one cache line.
#[derive(Default)]
struct TransientState {
    slots: Vec<Ongoing>,
    latest: i64,
    active: bool,
}

impl TransientState {
    /// New slots up to `count`. Attributes usually come one at a time: `reserve`
    /// doubles the capacity (amortised), and each slot is then a plain push.
    #[inline]
    fn grow(&mut self, count: usize, start: i64) {
        self.slots.reserve(count.saturating_sub(self.slots.len()));
        while self.slots.len() < count {
            self.slots.push(Ongoing {
                start,
                value: Compact::Null(None),
            });
        }
    }

    /// Ongoing interval of `quark` if it covers `t`, with end = latest time seen.
    fn interval_at(&self, t: i64, quark: usize) -> Option<Interval> {
        let slot = self.slots.get(quark)?;
        if !self.active || t < slot.start {
            return None;
        }
        Some(Interval::new(
            slot.start,
            self.latest.max(slot.start),
            quark as Quark,
            slot.value.value(),
        ))
    }
}

/// Checks what Trace Compass checks (or should) before a value enters the history.
fn validate_value(value: &StateValue) -> Result<()> {
    if let StateValue::String(s) = value {
        if s.len() > MAX_STRING_LEN {
            return Err(Error::StringTooLong {
                len: s.len(),
                limit: MAX_STRING_LEN,
            });
        }
        // Printable ASCII (nearly every value) has none: checked without an early
        // exit, so that the loop is vectorised.
        let printable = s
            .bytes()
            .fold(true, |ok, c| ok & (c.wrapping_sub(0x20) < 0x5f));
        if !printable {
            // Java's Character.isISOControl.
            if let Some(c) = s
                .chars()
                .find(|&c| c <= '\u{1f}' || ('\u{7f}'..='\u{9f}').contains(&c))
            {
                return Err(Error::ControlCharacter { code: c as u32 });
            }
        }
    }
    Ok(())
}

/// Finished intervals handed to the backend together (one call per this many instead
/// of one per interval; as many as a writer thread takes at once, so the vector goes
/// over without a copy); queries look at the ones not handed over yet.
const OUTBOX: usize = 4096;

/// The attribute tree of a state system: a builder's own, or an opened file's,
/// shared with its reader. (An `Arc` for both cost two atomic operations per
/// attribute look-up in `Arc::make_mut`.)
enum Attributes {
    Own(Box<AttributeTree>),
    Shared(Arc<AttributeTree>),
}

impl std::ops::Deref for Attributes {
    type Target = AttributeTree;

    #[inline]
    fn deref(&self) -> &AttributeTree {
        match self {
            Attributes::Own(t) => t,
            Attributes::Shared(t) => t,
        }
    }
}

impl Attributes {
    /// The tree to add to, copied first if shared.
    #[inline]
    fn make_mut(&mut self) -> &mut AttributeTree {
        if let Attributes::Shared(t) = self {
            *self = Attributes::Own(Box::new(AttributeTree::clone(t)));
        }
        match self {
            Attributes::Own(t) => t,
            Attributes::Shared(t) => Arc::make_mut(t),
        }
    }
}

/// A state system: built by a provider, then queried.
pub struct StateSystem {
    /// Shared with the reader of an opened file; copied only if a builder adds to it.
    attributes: Attributes,
    transient: TransientState,
    backend: Box<dyn StateHistoryBackend>,
    /// Finished intervals not yet given to the backend, in insertion order; only
    /// for a backend that reports insert errors later anyway (else each interval
    /// goes over at once, and its error with the change that made it).
    outbox: IntervalChunk,
    batch: bool,
}

impl StateSystem {
    /// A state system to build into `backend`.
    pub fn new(backend: Box<dyn StateHistoryBackend>) -> Self {
        let start = backend.start_time();
        StateSystem {
            attributes: Attributes::Own(Box::default()),
            transient: TransientState {
                latest: start,
                active: true,
                ..Default::default()
            },
            batch: backend.defers_inserts(),
            backend,
            outbox: IntervalChunk::with_capacity(OUTBOX),
        }
    }

    /// Builds into a new `.ht` file at `path`.
    pub fn create_history_tree(path: impl AsRef<Path>, config: HtConfig) -> Result<Self> {
        Ok(Self::new(Box::new(HistoryTreeBackend::create(
            path, config,
        )?)))
    }

    /// Builds in memory.
    pub fn in_memory(start: i64) -> Self {
        Self::new(Box::new(InMemoryBackend::new(start)))
    }

    /// Keeps only the ongoing state.
    pub fn null(start: i64) -> Self {
        Self::new(Box::new(NullBackend::new(start)))
    }

    /// Opens a finished `.ht` file for queries.
    pub fn open(path: impl AsRef<Path>, expected_provider_version: Option<i32>) -> Result<Self> {
        let backend = HistoryTreeBackend::open(path, expected_provider_version)?;
        let attributes = backend
            .reader()
            .map(|r| r.shared_attributes())
            .unwrap_or_default();
        Ok(StateSystem {
            attributes: Attributes::Shared(attributes),
            transient: TransientState::default(),
            backend: Box::new(backend),
            outbox: IntervalChunk::default(),
            batch: false,
        })
    }

    /// The backend (while building, the latest intervals may still be on their way
    /// to it: the state system's own queries see them).
    pub fn backend(&self) -> &dyn StateHistoryBackend {
        &*self.backend
    }

    /// Hands the pending finished intervals to the backend.
    #[inline(never)]
    fn flush(&mut self) -> Result<()> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        self.backend.insert_chunk(&mut self.outbox)
    }

    /// Intervals on their way to the backend (queries must see them).
    fn pending(&self) -> &IntervalChunk {
        &self.outbox
    }

    /// Pending intervals (not yet in the backend) of `quarks` meeting `times`.
    fn outbox_matching<'a>(
        &'a self,
        quarks: &'a QuarkSet,
        times: &'a TimeCondition,
    ) -> impl Iterator<Item = Interval> + 'a {
        let outbox = self.pending();
        (0..outbox.len())
            .filter(move |&i| {
                let r = &outbox.packed()[i];
                quarks.contains(r.quark) && times.intersects(r.start, r.end)
            })
            .map(move |i| outbox.get(i))
    }

    #[inline]
    fn sync_transient(&mut self) {
        if self.transient.slots.len() < self.attributes.len() {
            let start = self.backend.start_time();
            self.transient.grow(self.attributes.len(), start);
        }
    }

    fn check_quark(&self, quark: Quark) -> Result<usize> {
        if quark >= 0 && (quark as usize) < self.attributes.len() {
            Ok(quark as usize)
        } else {
            Err(Error::InvalidQuark {
                quark,
                count: self.attributes.len(),
            })
        }
    }

    fn check_building(&self) -> Result<()> {
        if self.transient.active {
            Ok(())
        } else {
            Err(Error::Closed)
        }
    }

    /// The state change rule of Trace Compass's transient state. `validate`: check
    /// the value first (see [`validate_value`]); errors come in the order of the
    /// checks: value, building, quark, type.
    #[inline(always)]
    fn process_change(
        &mut self,
        t: i64,
        value: StateValue,
        quark: Quark,
        validate: bool,
    ) -> Result<()> {
        let ts = &mut self.transient;
        // A negative quark wraps to a huge index: no slot either.
        let slot = match ts.slots.get_mut(quark as usize) {
            Some(slot) if ts.active => slot,
            _ => return self.change_refused(&value, quark, validate),
        };
        // Trace Compass checks the type before comparing with the ongoing value:
        // an equal value left by `update_ongoing` (which checks no type) under
        // another type's lock is refused too.
        let lock = slot.value.lock();
        if let (Some(found), Some(expected)) = (value.value_type(), lock) {
            if found != expected {
                return Err(Error::ValueType {
                    quark,
                    expected,
                    found,
                });
            }
        }
        // The current value was checked when it was set: an equal one passes too.
        if slot.value.same(&value) {
            if lock.is_none() {
                // Equal to a value `update_ongoing` left on an unlocked attribute:
                // its type becomes the lock, as on any first typed change.
                if let Some(t) = value.value_type() {
                    slot.value = Compact::new(value, Some(t));
                }
            }
            return Ok(());
        }
        if validate {
            validate_value(&value)?;
        }
        let value = Compact::checked(value, lock);
        if slot.start < t {
            let previous = std::mem::replace(&mut slot.value, value).into_value();
            let start = std::mem::replace(&mut slot.start, t);
            if !self.batch {
                self.backend
                    .insert(Interval::new(start, t - 1, quark, previous))?;
            } else {
                self.outbox.push_parts(start, t - 1, quark, previous);
                if self.outbox.len() >= OUTBOX {
                    self.backend.insert_chunk(&mut self.outbox)?;
                }
            }
        } else {
            slot.value = value;
        }
        if ts.latest < t {
            ts.latest = t;
        }
        Ok(())
    }

    /// The error of a change to a closed history or an unknown quark.
    #[cold]
    fn change_refused(&self, value: &StateValue, quark: Quark, validate: bool) -> Result<()> {
        if validate {
            validate_value(value)?;
        }
        self.check_building()?;
        self.check_quark(quark)?;
        // Not reached: a building state system has a slot for every quark.
        Err(Error::InvalidQuark {
            quark,
            count: self.transient.slots.len(),
        })
    }

    fn range_error(&self, t: i64) -> Error {
        Error::TimeRange {
            t,
            start: self.start_time(),
            end: self.current_end_time(),
        }
    }

    fn missing(&self, t: i64, quark: Quark) -> Error {
        Error::MissingInterval {
            quark,
            t,
            backend: self.backend.kind(),
        }
    }

    /// While building: the input was read up to `t` without changing anything
    /// more, so the current end time (and every ongoing state) reaches `t`. Only
    /// queries see it; the history written does not change.
    pub fn advance_end(&mut self, t: i64) {
        if self.transient.active && t > self.transient.latest {
            self.transient.latest = t;
        }
    }
}

/// Read access: attributes and queries (Trace Compass `ITmfStateSystem`).
pub trait StateSystemQuerier {
    fn attributes(&self) -> &AttributeTree;
    fn start_time(&self) -> i64;
    /// End of the history so far (the end time once closed).
    fn current_end_time(&self) -> i64;
    /// Whether the history is still being built.
    fn is_building(&self) -> bool;
    /// The interval of `quark` containing `t`.
    fn query_single(&self, t: i64, quark: Quark) -> Result<Interval>;
    /// The interval of every attribute at `t`, indexed by quark.
    fn query_full(&self, t: i64) -> Result<Vec<Interval>>;
    /// Visits every interval of `quarks` meeting `times`, without duplicates, in no
    /// particular order.
    fn query_2d_visit(
        &self,
        quarks: &[Quark],
        times: &TimeCondition,
        visit: &mut dyn FnMut(&Interval),
    ) -> Result<()>;
    /// Current value of an attribute while building.
    fn query_ongoing(&self, quark: Quark) -> Result<StateValue>;
    /// Start time of the current value of an attribute while building.
    fn ongoing_start_time(&self, quark: Quark) -> Result<i64>;
    /// Whether the current value of an attribute is null, while building: as
    /// `query_ongoing(quark)?.is_null()`, without copying the value.
    fn ongoing_is_null(&self, quark: Quark) -> Result<bool> {
        Ok(self.query_ongoing(quark)?.is_null())
    }
    /// The current value of an attribute if it is an int (else `None`), while
    /// building: as `query_ongoing`, without copying the value.
    fn ongoing_int(&self, quark: Quark) -> Result<Option<i32>> {
        Ok(match self.query_ongoing(quark)? {
            StateValue::Int(v) => Some(v),
            _ => None,
        })
    }

    /// Number of attributes.
    fn attribute_count(&self) -> usize {
        self.attributes().len()
    }

    /// Quark of an absolute path.
    fn quark(&self, path: &[&str]) -> Result<Quark> {
        self.attributes().quark(ROOT_QUARK, path)
    }

    /// Quarks matching a pattern with `*` and `..` (Trace Compass `getQuarks`).
    fn quarks(&self, pattern: &[&str]) -> Result<Vec<Quark>> {
        self.attributes().quarks(ROOT_QUARK, pattern)
    }

    /// Intervals of `quarks` meeting `[min(t1, t2), max(t1, t2)]`.
    fn query_2d(&self, quarks: &[Quark], t1: i64, t2: i64) -> Result<Vec<Interval>> {
        let mut out = Vec::new();
        self.query_2d_visit(quarks, &TimeCondition::range(t1, t2), &mut |i| {
            out.push(i.clone())
        })?;
        Ok(out)
    }

    /// Intervals of `quarks` containing at least one of `times`.
    fn query_2d_at(&self, quarks: &[Quark], times: &[i64]) -> Result<Vec<Interval>> {
        let Some(cond) = TimeCondition::instants(times.iter().copied()) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        self.query_2d_visit(quarks, &cond, &mut |i| out.push(i.clone()))?;
        Ok(out)
    }
}

/// Write access for state providers (Trace Compass `ITmfStateSystemBuilder`).
pub trait StateSystemBuilder: StateSystemQuerier {
    /// Quark of `path` below `start` ([`ROOT_QUARK`] for absolute), created if missing.
    fn quark_relative_and_add(&mut self, start: Quark, path: &[&str]) -> Result<Quark>;
    /// `value` holds from `t` on.
    fn modify(&mut self, t: i64, value: StateValue, quark: Quark) -> Result<()>;
    /// `modify` with an int value, the most common change (a state system may
    /// take a shorter path).
    fn modify_int(&mut self, t: i64, value: i32, quark: Quark) -> Result<()> {
        self.modify(t, StateValue::Int(value), quark)
    }
    /// Pushes `value` on the stack attribute `quark`.
    fn push(&mut self, t: i64, value: StateValue, quark: Quark) -> Result<()>;
    /// Pops the stack attribute `quark`; `None` if it was empty.
    fn pop(&mut self, t: i64, quark: Quark) -> Result<Option<StateValue>>;
    /// Nulls `quark` and, first, all its descendants.
    fn remove(&mut self, t: i64, quark: Quark) -> Result<()>;
    /// Adds `by` (int, long or double) to the current value (0 if of another type).
    fn increment(&mut self, t: i64, by: StateValue, quark: Quark) -> Result<()>;
    /// Replaces the value of the open interval, without a timestamp.
    fn update_ongoing(&mut self, value: StateValue, quark: Quark) -> Result<()>;
    /// Ends the history at `end` (or later, if intervals already go further).
    fn close(&mut self, end: i64) -> Result<()>;

    /// Quark of the child `name` of `parent`, created if missing with this very name
    /// object, so that the `.ht` file back-references it like Trace Compass does for
    /// a provider's constant names. The default does not share the name.
    fn child_and_add_shared(&mut self, parent: Quark, name: &Arc<str>) -> Result<Quark> {
        self.quark_relative_and_add(parent, &[name])
    }

    /// Quark of an absolute path, created if missing.
    fn quark_and_add(&mut self, path: &[&str]) -> Result<Quark> {
        self.quark_relative_and_add(ROOT_QUARK, path)
    }
}

impl StateSystemQuerier for StateSystem {
    fn attributes(&self) -> &AttributeTree {
        &self.attributes
    }

    fn start_time(&self) -> i64 {
        self.backend.start_time()
    }

    fn current_end_time(&self) -> i64 {
        let end = self.backend.end_time();
        if self.transient.active {
            end.max(self.transient.latest)
        } else {
            end
        }
    }

    fn is_building(&self) -> bool {
        self.transient.active
    }

    fn query_single(&self, t: i64, quark: Quark) -> Result<Interval> {
        let q = self.check_quark(quark)?;
        if let Some(i) = self.transient.interval_at(t, q) {
            return Ok(i);
        }
        if t < self.start_time() || t > self.current_end_time() {
            return Err(self.range_error(t));
        }
        let pending = self.pending();
        let recs = pending.packed();
        if let Some(i) = (0..recs.len()).find(|&i| recs[i].quark == quark && recs[i].contains(t)) {
            return Ok(pending.get(i));
        }
        self.backend
            .query_single(t, quark)?
            .ok_or_else(|| self.missing(t, quark))
    }

    fn query_full(&self, t: i64) -> Result<Vec<Interval>> {
        if t < self.start_time() || t > self.current_end_time() {
            return Err(self.range_error(t));
        }
        // Slots still holding quark -1 afterwards had no interval.
        let mut out = Vec::with_capacity(self.attributes.len());
        out.resize_with(self.attributes.len(), || {
            Interval::new(t, t, -1, StateValue::Null)
        });
        self.backend.query_full(t, &mut out)?;
        let pending = self.pending();
        for (i, r) in pending.packed().iter().enumerate() {
            if r.contains(t) {
                if let Some(slot) = out.get_mut(r.quark as usize) {
                    *slot = pending.get(i);
                }
            }
        }
        if self.transient.active {
            for (q, slot) in out.iter_mut().enumerate() {
                if let Some(i) = self.transient.interval_at(t, q) {
                    *slot = i;
                }
            }
        }
        if let Some(q) = out.iter().position(|i| i.quark < 0) {
            return Err(self.missing(t, q as Quark));
        }
        Ok(out)
    }

    fn query_2d_visit(
        &self,
        quarks: &[Quark],
        times: &TimeCondition,
        visit: &mut dyn FnMut(&Interval),
    ) -> Result<()> {
        if times.min() < self.start_time() {
            return Err(Error::BeforeStart {
                t: times.min(),
                start: self.start_time(),
            });
        }
        let Some(set) = QuarkSet::new(quarks.iter().copied()) else {
            return Ok(());
        };
        self.check_quark(set.min())?;
        self.check_quark(set.max())?;
        if self.transient.active {
            for &q in set.as_slice() {
                if let Some(i) = self.transient.interval_at(times.max(), q as usize) {
                    visit(&i);
                }
            }
        }
        for i in self.outbox_matching(&set, times) {
            visit(&i);
        }
        self.backend.query_range(&set, times, visit)
    }

    fn query_ongoing(&self, quark: Quark) -> Result<StateValue> {
        let q = self.check_quark(quark)?;
        self.check_building()?;
        Ok(self.transient.slots[q].value.value())
    }

    fn ongoing_start_time(&self, quark: Quark) -> Result<i64> {
        let q = self.check_quark(quark)?;
        self.check_building()?;
        Ok(self.transient.slots[q].start)
    }

    fn ongoing_is_null(&self, quark: Quark) -> Result<bool> {
        let q = self.check_quark(quark)?;
        self.check_building()?;
        Ok(self.transient.slots[q].value.is_null())
    }

    fn ongoing_int(&self, quark: Quark) -> Result<Option<i32>> {
        let q = self.check_quark(quark)?;
        self.check_building()?;
        Ok(self.transient.slots[q].value.int())
    }
}

impl StateSystemBuilder for StateSystem {
    fn quark_relative_and_add(&mut self, start: Quark, path: &[&str]) -> Result<Quark> {
        let q = self.attributes.make_mut().quark_and_add(start, path)?;
        self.sync_transient();
        Ok(q)
    }

    fn child_and_add_shared(&mut self, parent: Quark, name: &Arc<str>) -> Result<Quark> {
        let q = self
            .attributes
            .make_mut()
            .child_and_add_shared(parent, name)?;
        self.sync_transient();
        Ok(q)
    }

    fn modify(&mut self, t: i64, value: StateValue, quark: Quark) -> Result<()> {
        self.process_change(t, value, quark, true)
    }

    fn modify_int(&mut self, t: i64, value: i32, quark: Quark) -> Result<()> {
        // An int needs no validation; the value's type is known here.
        self.process_change(t, StateValue::Int(value), quark, false)
    }

    fn push(&mut self, t: i64, value: StateValue, quark: Quark) -> Result<()> {
        validate_value(&value)?;
        let q = self.check_quark(quark)?;
        self.check_building()?;
        let depth = match &self.transient.slots[q].value.value() {
            StateValue::Null => 0,
            StateValue::Int(d) => *d,
            other => {
                return Err(Error::ValueType {
                    quark,
                    expected: ValueType::Int,
                    found: other.value_type().unwrap_or(ValueType::Int),
                })
            }
        };
        if depth >= MAX_STACK_DEPTH {
            return Err(Error::StackOverflow {
                quark,
                limit: MAX_STACK_DEPTH,
            });
        }
        let depth = depth + 1;
        let name = depth.to_string();
        let child = self.quark_relative_and_add(quark, &[&name])?;
        self.process_change(t, StateValue::Int(depth), quark, false)?;
        self.process_change(t, value, child, false)
    }

    fn pop(&mut self, t: i64, quark: Quark) -> Result<Option<StateValue>> {
        let q = self.check_quark(quark)?;
        self.check_building()?;
        let depth = match &self.transient.slots[q].value.value() {
            StateValue::Null => return Ok(None),
            StateValue::Int(d) => *d,
            other => {
                return Err(Error::ValueType {
                    quark,
                    expected: ValueType::Int,
                    found: other.value_type().unwrap_or(ValueType::Int),
                })
            }
        };
        let child = self.attributes.opt_quark(quark, &[depth.to_string()]);
        if child < 0 {
            return Err(Error::StackCorrupt { quark, depth });
        }
        let popped = self.transient.slots[child as usize].value.value();
        let next = if depth - 1 == 0 {
            StateValue::Null
        } else {
            StateValue::Int(depth - 1)
        };
        self.process_change(t, next, quark, false)?;
        self.remove(t, child)?;
        Ok(Some(popped))
    }

    fn remove(&mut self, t: i64, quark: Quark) -> Result<()> {
        self.check_quark(quark)?;
        let children = self.attributes.children_of(quark).to_vec();
        for child in children {
            self.remove(t, child)?;
        }
        self.process_change(t, StateValue::Null, quark, false)
    }

    fn increment(&mut self, t: i64, by: StateValue, quark: Quark) -> Result<()> {
        let q = self.check_quark(quark)?;
        self.check_building()?;
        let current = &self.transient.slots[q].value.value();
        let next = match by {
            StateValue::Int(v) => StateValue::Int(current.as_int().unwrap_or(0).wrapping_add(v)),
            StateValue::Long(v) => StateValue::Long(current.as_long().unwrap_or(0).wrapping_add(v)),
            StateValue::Double(v) => StateValue::Double(current.as_double().unwrap_or(0.0) + v),
            other => {
                return Err(Error::ValueType {
                    quark,
                    expected: ValueType::Long,
                    found: other.value_type().unwrap_or(ValueType::Long),
                })
            }
        };
        self.process_change(t, next, quark, false)
    }

    fn update_ongoing(&mut self, value: StateValue, quark: Quark) -> Result<()> {
        validate_value(&value)?;
        let q = self.check_quark(quark)?;
        self.check_building()?;
        let slot = &mut self.transient.slots[q];
        slot.value = Compact::new(value, slot.value.lock());
        Ok(())
    }

    fn close(&mut self, end: i64) -> Result<()> {
        self.check_building()?;
        self.flush()?;
        let real_end = end.max(self.backend.end_time());
        let slots = std::mem::take(&mut self.transient.slots);
        for (q, Ongoing { start, value }) in slots.into_iter().enumerate() {
            let value = value.into_value();
            if start > real_end {
                continue; // a change after the end: Trace Compass drops it too
            }
            if !self.batch {
                self.backend
                    .insert(Interval::new(start, real_end, q as Quark, value))?;
                continue;
            }
            self.outbox.push_parts(start, real_end, q as Quark, value);
            if self.outbox.len() >= OUTBOX {
                self.flush()?;
            }
        }
        self.flush()?;
        self.transient.active = false;
        self.backend.finish(real_end, &self.attributes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intervals(ss: &StateSystem, q: Quark) -> Vec<(i64, i64, StateValue)> {
        let mut v = ss
            .query_2d(&[q], ss.start_time(), ss.current_end_time())
            .unwrap();
        v.sort_by_key(|i| i.start);
        v.into_iter().map(|i| (i.start, i.end, i.value)).collect()
    }

    #[test]
    fn transient_rules_of_trace_compass() {
        let mut ss = StateSystem::in_memory(10);
        let q = ss.quark_and_add(&["a"]).unwrap();
        ss.modify(5, StateValue::Int(9), q).unwrap(); // before the start: replaces the value
        ss.modify(10, StateValue::Int(1), q).unwrap(); // at the start: no null interval
        ss.modify(20, StateValue::Int(1), q).unwrap(); // same value: nothing
        ss.modify(30, StateValue::Int(2), q).unwrap();
        ss.modify(30, StateValue::Int(3), q).unwrap(); // same time: last one wins
        assert!(matches!(
            ss.modify(31, StateValue::Long(3), q),
            Err(Error::ValueType { .. })
        ));
        ss.close(40).unwrap();
        assert_eq!(
            intervals(&ss, q),
            vec![(10, 29, StateValue::Int(1)), (30, 40, StateValue::Int(3))]
        );
    }

    /// The type lock kept inside the compact ongoing value: it survives nulls,
    /// `update_ongoing` sets a value of another type without changing it, and
    /// doubles and custom values compare as Trace Compass compares them.
    #[test]
    fn type_locks_and_values_of_every_kind() {
        let mut ss = StateSystem::in_memory(0);
        let q = ss.quark_and_add(&["a"]).unwrap();
        ss.modify(1, StateValue::Long(5), q).unwrap();
        ss.modify(2, StateValue::Null, q).unwrap();
        assert!(matches!(
            ss.modify(3, StateValue::Int(1), q),
            Err(Error::ValueType {
                expected: ValueType::Long,
                found: ValueType::Int,
                ..
            })
        ));
        ss.update_ongoing(StateValue::string("s"), q).unwrap();
        assert_eq!(ss.query_ongoing(q).unwrap(), StateValue::string("s"));
        assert!(!ss.ongoing_is_null(q).unwrap());
        // Equal to the ongoing value but not of the lock's type: refused, as
        // Trace Compass checks the type first.
        assert!(matches!(
            ss.modify(4, StateValue::string("s"), q),
            Err(Error::ValueType {
                expected: ValueType::Long,
                found: ValueType::String,
                ..
            })
        ));
        assert!(matches!(
            ss.modify(5, StateValue::string("t"), q),
            Err(Error::ValueType {
                expected: ValueType::Long,
                found: ValueType::String,
                ..
            })
        ));
        ss.modify(6, StateValue::Long(7), q).unwrap();
        let d = ss.quark_and_add(&["d"]).unwrap();
        ss.modify(1, StateValue::Double(f64::NAN), d).unwrap();
        ss.modify(3, StateValue::Double(f64::NAN), d).unwrap(); // NaN == NaN: nothing
        ss.modify(4, StateValue::Double(-0.0), d).unwrap();
        ss.modify(5, StateValue::Double(0.0), d).unwrap(); // 0.0 != -0.0
        let c = ss.quark_and_add(&["c"]).unwrap();
        let custom = |type_id, bytes: &[u8]| {
            StateValue::Custom(CustomValue {
                type_id,
                bytes: bytes.into(),
            })
        };
        ss.modify(1, custom(30, b"x"), c).unwrap();
        ss.modify(2, custom(30, b"x"), c).unwrap(); // equal: nothing
        ss.modify(3, custom(30, b"y"), c).unwrap();
        assert!(matches!(
            ss.modify(4, custom(31, b"y"), c),
            Err(Error::ValueType {
                expected: ValueType::Custom(30),
                found: ValueType::Custom(31),
                ..
            })
        ));
        let i = ss.quark_and_add(&["i"]).unwrap();
        ss.update_ongoing(StateValue::Int(3), i).unwrap(); // no lock yet
        assert_eq!(ss.ongoing_int(i).unwrap(), Some(3));
        ss.modify(2, StateValue::string("now a string"), i).unwrap();
        // An equal value on an unlocked attribute locks it to its type.
        let j = ss.quark_and_add(&["j"]).unwrap();
        ss.update_ongoing(StateValue::Int(3), j).unwrap();
        ss.modify(2, StateValue::Int(3), j).unwrap();
        assert!(matches!(
            ss.modify(3, StateValue::string("no"), j),
            Err(Error::ValueType {
                expected: ValueType::Int,
                found: ValueType::String,
                ..
            })
        ));
        ss.close(10).unwrap();
        assert_eq!(
            intervals(&ss, q),
            vec![
                (0, 0, StateValue::Null),
                (1, 1, StateValue::Long(5)),
                (2, 5, StateValue::string("s")),
                (6, 10, StateValue::Long(7)),
            ]
        );
        assert_eq!(
            intervals(&ss, d),
            vec![
                (0, 0, StateValue::Null),
                (1, 3, StateValue::Double(f64::NAN)),
                (4, 4, StateValue::Double(-0.0)),
                (5, 10, StateValue::Double(0.0)),
            ]
        );
        assert_eq!(
            intervals(&ss, c),
            vec![
                (0, 0, StateValue::Null),
                (1, 2, custom(30, b"x")),
                (3, 10, custom(30, b"y")),
            ]
        );
        assert_eq!(
            intervals(&ss, i),
            vec![
                (0, 1, StateValue::Int(3)),
                (2, 10, StateValue::string("now a string")),
            ]
        );
    }

    /// Control characters (Java's `isISOControl`) are refused wherever they are;
    /// printable and other non-ASCII text passes.
    #[test]
    fn string_values_with_control_characters_are_refused() {
        let mut ss = StateSystem::null(0);
        let q = ss.quark_and_add(&["s"]).unwrap();
        let long = "x".repeat(40);
        for bad in ["\u{0}", "a\tb", "\u{7f}", "\u{85}", "\u{9f}"] {
            for text in [
                bad.to_string(),
                format!("{long}{bad}"),
                format!("{bad}{long}é"),
            ] {
                assert!(
                    matches!(
                        ss.modify(1, StateValue::string(&text), q),
                        Err(Error::ControlCharacter { .. })
                    ),
                    "{text:?}"
                );
            }
        }
        for good in ["", " ~", "é文\u{a0}", &long, "\u{7e}\u{a0}\u{100}"] {
            ss.modify(1, StateValue::string(good), q).unwrap();
        }
        assert!(matches!(
            ss.modify(2, StateValue::string("\u{1f}"), q),
            Err(Error::ControlCharacter { code: 0x1f })
        ));
    }

    /// An opened history's tree is shared with its reader; adding to it makes the
    /// state system its own copy, with the file's attributes first.
    #[test]
    fn adding_to_an_opened_tree_copies_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ht");
        let mut ss = StateSystem::create_history_tree(&path, HtConfig::new(0, 1)).unwrap();
        let a = ss.quark_and_add(&["a", "b"]).unwrap();
        ss.modify(1, StateValue::Int(4), a).unwrap();
        ss.close(5).unwrap();
        let mut opened = StateSystem::open(&path, Some(1)).unwrap();
        assert_eq!(opened.quark(&["a", "b"]).unwrap(), a);
        let c = opened.quark_and_add(&["a", "c"]).unwrap();
        assert_eq!(c, 2);
        assert_eq!(opened.attributes().children_of(0), &[1, 2]);
        assert_eq!(opened.query_single(3, a).unwrap().value, StateValue::Int(4));
        assert_eq!(opened.quark_and_add(&["a", "b"]).unwrap(), a);
    }

    #[test]
    fn stacks_counters_and_removal() {
        let mut ss = StateSystem::in_memory(0);
        let s = ss.quark_and_add(&["stack"]).unwrap();
        assert_eq!(ss.pop(1, s).unwrap(), None); // empty: silent
        ss.push(2, StateValue::Long(7), s).unwrap();
        ss.push(3, StateValue::string("x"), s).unwrap();
        assert_eq!(ss.query_ongoing(s).unwrap(), StateValue::Int(2));
        assert_eq!(ss.pop(4, s).unwrap(), Some(StateValue::string("x")));
        let c = ss.quark_and_add(&["n"]).unwrap();
        ss.increment(5, StateValue::Int(2), c).unwrap();
        ss.increment(6, StateValue::Int(-1), c).unwrap();
        assert_eq!(ss.query_ongoing(c).unwrap(), StateValue::Int(1));
        ss.remove(7, s).unwrap();
        let level1 = ss.attributes().quark(s, &["1"]).unwrap();
        assert_eq!(ss.query_ongoing(level1).unwrap(), StateValue::Null);
        assert_eq!(ss.ongoing_start_time(level1).unwrap(), 7);
        // While building, a query at the latest time sees the ongoing value.
        assert_eq!(ss.query_single(7, c).unwrap().value, StateValue::Int(1));
        ss.close(10).unwrap();
        assert!(matches!(
            ss.modify(11, StateValue::Null, c),
            Err(Error::Closed)
        ));
        assert!(matches!(
            ss.query_full(11),
            Err(Error::TimeRange {
                t: 11,
                start: 0,
                end: 10
            })
        ));
        assert!(matches!(
            ss.query_2d(&[c], -1, 5),
            Err(Error::BeforeStart { .. })
        ));
    }

    #[test]
    fn ongoing_int_and_null_read_without_copying() {
        let mut ss = StateSystem::null(0);
        let q = ss.quark_and_add(&["a"]).unwrap();
        let s = ss.quark_and_add(&["s"]).unwrap();
        assert!(ss.ongoing_is_null(q).unwrap());
        assert_eq!(ss.ongoing_int(q).unwrap(), None);
        ss.modify_int(5, 7, q).unwrap();
        ss.modify(5, StateValue::String("x".into()), s).unwrap();
        assert!(!ss.ongoing_is_null(q).unwrap());
        assert_eq!(ss.ongoing_int(q).unwrap(), Some(7));
        assert!(!ss.ongoing_is_null(s).unwrap());
        assert_eq!(ss.ongoing_int(s).unwrap(), None);
        assert!(matches!(
            ss.ongoing_int(99),
            Err(Error::InvalidQuark { quark: 99, .. })
        ));
        ss.close(9).unwrap();
        assert!(matches!(ss.ongoing_is_null(q), Err(Error::Closed)));
        assert!(matches!(ss.ongoing_int(q), Err(Error::Closed)));
    }

    #[test]
    fn null_backend_keeps_only_the_ongoing_state() {
        let mut ss = StateSystem::null(0);
        let q = ss.quark_and_add(&["a"]).unwrap();
        ss.modify(5, StateValue::Int(1), q).unwrap();
        assert_eq!(ss.query_single(6, q).unwrap().value, StateValue::Int(1));
        assert!(matches!(
            ss.query_single(2, q),
            Err(Error::MissingInterval { .. })
        ));
        ss.close(9).unwrap();
        assert!(matches!(
            ss.query_single(6, q),
            Err(Error::MissingInterval { .. })
        ));
    }
}
