//! Several CTF traces read as one time-ordered flow of events.
//!
//! Each trace directory gets one [`Cursor`] per data stream file; a binary heap keyed
//! by (timestamp ns, trace index, stream file name) picks the next event, which is
//! how Trace Compass orders them: within a trace by timestamp then stream file name
//! (`CTFTraceReader`), across traces by timestamp then trace order (`TmfExperiment`).

use crate::ctf::decode::{Machine, Node, Op, Slot, SlotKind, StaticField};
use crate::ctf::reader::{CtfTrace, Cursor};
use crate::error::TraceError;
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use crate::ctf::reader::TraceMeta;

/// Name of the synthetic lost-event class (Trace Compass's).
pub const LOST_EVENT_NAME: &str = "Lost event";
/// Lost-event record fields, as Trace Compass names them.
pub const LOST_EVENTS_FIELD: &str = "Lost events";
pub const LOST_DURATION_FIELD: &str = "duration";

/// An event class of the experiment: dense from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(pub u32);

/// A field of one event class, resolved once (see [`Experiment::field_handle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldHandle(pub u32);

#[derive(Debug, Clone)]
enum FieldKind {
    Slot(u32),
    /// Variant options: the one slot the current event filled.
    AnyOf(Vec<u32>),
    /// A field of a fixed layout, decoded on access from its scope's start.
    Static {
        scope: u8,
        field: StaticField,
    },
    LostCount,
    LostDuration,
}

#[derive(Debug, Clone)]
struct FieldDesc {
    class: ClassId,
    kind: FieldKind,
    access: Access,
    /// Byte-aligned little-endian 8/16/32/64-bit integer of a fixed layout: read with
    /// one load (scope, byte offset, width in bytes; width 0: not such a field).
    fast: FastInt,
    /// The field's (first) slot, for its kind.
    slot: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct FastInt {
    scope: u8,
    width: u8,
    signed: bool,
    /// 64 - 8 * width: the value is an 8-byte load shifted up then down by this.
    shift: u8,
    byte_off: u32,
}

impl FastInt {
    fn of(kind: &FieldKind) -> FastInt {
        match *kind {
            FieldKind::Static {
                scope,
                field:
                    StaticField::Int {
                        off,
                        size,
                        signed,
                        be: false,
                    },
            } if off % 8 == 0 && matches!(size, 8 | 16 | 32 | 64) => FastInt {
                scope,
                width: size / 8,
                signed,
                shift: 64 - size,
                byte_off: off / 8,
            },
            _ => FastInt::default(),
        }
    }
}

/// Which accessor reads a field: [`Event::int`], [`Event::string`], or only
/// [`Event::value`] (floats, arrays, blobs, structures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Int,
    Text,
    Other,
}

#[derive(Debug)]
struct ClassEntry {
    trace: usize,
    name: String,
    /// (Trace Compass name, handle).
    fields: Vec<(String, FieldHandle)>,
}

/// One or several CTF traces read as one time-ordered flow.
pub struct Experiment {
    traces: Vec<CtfTrace>,
    metas: Vec<TraceMeta>,
    /// First global class of each trace; the trace's lost-event class follows its classes.
    class_base: Vec<u32>,
    classes: Vec<ClassEntry>,
    fields: Vec<FieldDesc>,
    cursors: Vec<Cursor>,
    /// (trace index, rank of the stream file name in its trace) per cursor.
    cursor_keys: Vec<(u32, u32)>,
    warnings: Vec<String>,
    errors: Vec<TraceError>,
    consumed: bool,
    /// Visit only events in [begin, end] (ns), see [`Experiment::set_time_range`].
    range: (Option<i64>, Option<i64>),
    /// Trace synchronization formulas, see [`Experiment::set_time_transforms`].
    time_transforms: crate::sync::TimeTransforms,
    /// Traces whose metadata grew (live): global class per local class, lost-event class.
    grown: HashMap<usize, (Vec<u32>, ClassId)>,
    /// Class filter (see [`Experiment::set_class_filter`]): per global class known when
    /// it was set, whether it is delivered; classes added later are delivered.
    filter: Option<Vec<bool>>,
}

/// An experiment of no trace (it visits nothing).
impl Default for Experiment {
    fn default() -> Experiment {
        Experiment::empty()
    }
}

/// The event a visitor sees; valid during the callback only.
pub struct Event<'a> {
    exp_fields: &'a [FieldDesc],
    cursor: &'a Cursor,
    /// The mapped stream file (cached out of the cursor).
    data: &'a [u8],
    trace: &'a CtfTrace,
    class: ClassId,
    trace_index: usize,
    /// Timestamp in the experiment's (synchronized) time.
    ns: i64,
}

impl Experiment {
    /// Opens trace directories (holding `metadata`) and session directories (every
    /// directory below holding `metadata` is a trace), in the order given; traces
    /// found below one path are taken in path order.
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<Experiment, TraceError> {
        let dirs = Self::find_trace_dirs(paths)?;
        let mut traces = Vec::new();
        for (root, dir) in &dirs {
            traces.push((root.clone(), CtfTrace::open(dir)?));
            crate::timing::mark(|| format!("open: metadata of {}", dir.display()));
        }
        let r = Self::from_traces(traces);
        crate::timing::mark(|| "open: cursors".into());
        r
    }

    /// The (root, trace directory) pairs [`open`](Self::open) reads, in its order.
    pub(crate) fn find_trace_dirs<P: AsRef<Path>>(
        paths: &[P],
    ) -> Result<Vec<(PathBuf, PathBuf)>, TraceError> {
        let mut dirs = Vec::new();
        for p in paths {
            let p = p.as_ref();
            let before = dirs.len();
            find_traces(p, &mut dirs, 0)?;
            if dirs.len() == before {
                return Err(TraceError::NoTrace {
                    path: p.to_path_buf(),
                });
            }
        }
        crate::timing::mark(|| "open: traces found".into());
        Ok(dirs)
    }

    /// An experiment of the trace in `dir` alone (found below `root`, which names it).
    pub(crate) fn open_one(root: &Path, dir: &Path) -> Result<Experiment, TraceError> {
        let t = CtfTrace::open(dir)?;
        crate::timing::mark(|| format!("open: metadata of {}", dir.display()));
        Self::from_traces(vec![(root.to_path_buf(), t)])
    }

    fn from_traces(traces: Vec<(PathBuf, CtfTrace)>) -> Result<Experiment, TraceError> {
        Self::assemble(traces.into_iter().map(|(r, t)| (r, t, None)).collect())
    }

    fn empty() -> Experiment {
        Experiment {
            traces: Vec::new(),
            metas: Vec::new(),
            class_base: Vec::new(),
            classes: Vec::new(),
            fields: Vec::new(),
            cursors: Vec::new(),
            cursor_keys: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
            consumed: false,
            range: (None, None),
            time_transforms: Default::default(),
            grown: HashMap::new(),
            filter: None,
        }
    }

    /// An experiment of `traces` in this order, each with the cursors given (streams not
    /// read yet, in file-name order), or fresh ones opened on its stream files.
    fn assemble(
        traces: Vec<(PathBuf, CtfTrace, Option<Vec<Cursor>>)>,
    ) -> Result<Experiment, TraceError> {
        let mut exp = Self::empty();
        for (root, t, cursors) in traces {
            let ti = exp.push_trace(&root, t);
            let t = &exp.traces[ti];
            let cursors = match cursors {
                Some(c) => c,
                None => t
                    .files
                    .iter()
                    .map(|f| Cursor::open(t, f))
                    .collect::<Result<_, _>>()?,
            };
            for (rank, c) in cursors.into_iter().enumerate() {
                exp.cursors.push(c);
                exp.cursor_keys.push((ti as u32, rank as u32));
            }
        }
        Ok(exp)
    }

    /// The traces with their cursors, for [`assemble`](Self::assemble): moved when no stream
    /// has been read yet (a mapping and its index are reused), else `None` (opened again).
    /// A trace's cursors keep no trace offset nor class filter, as fresh ones.
    fn into_parts(self) -> Vec<(PathBuf, CtfTrace, Option<Vec<Cursor>>)> {
        let fresh = !self.consumed && self.cursors.iter().all(Cursor::is_unread);
        let roots: Vec<PathBuf> = (0..self.traces.len()).map(|i| self.root_of(i)).collect();
        let mut cursors: Vec<Vec<Cursor>> = (0..self.traces.len()).map(|_| Vec::new()).collect();
        for (mut c, (ti, _)) in self.cursors.into_iter().zip(self.cursor_keys) {
            c.offset_ns = 0;
            c.wanted = None;
            cursors[ti as usize].push(c);
        }
        self.traces
            .into_iter()
            .zip(roots)
            .zip(cursors)
            .map(|((t, root), c)| (root, t, fresh.then_some(c)))
            .collect()
    }

    /// The root that gives trace `i` its name back (see `trace_name`).
    fn root_of(&self, i: usize) -> PathBuf {
        let t = &self.traces[i];
        let depth = Path::new(&self.metas[i].name).components().count();
        t.dir.ancestors().nth(depth).unwrap_or(&t.dir).to_path_buf()
    }

    /// One experiment of the traces of `parts`, in this order (the inverse of
    /// [`split`](Self::split)): compiled metadata and unread streams move, nothing is
    /// parsed nor mapped again. Formulas, time ranges and filters are not kept.
    pub(crate) fn join(parts: Vec<Experiment>) -> Result<Experiment, TraceError> {
        if !parts.iter().all(Self::is_plain) {
            return Self::assemble(parts.into_iter().flat_map(Self::into_parts).collect());
        }
        // The parts' tables, renumbered: no class or field is described again.
        let mut exp = Self::empty();
        for p in parts {
            let (to, co, fo) = (
                exp.traces.len(),
                exp.classes.len() as u32,
                exp.fields.len() as u32,
            );
            for mut m in p.metas {
                m.host_id = exp.host_id_for(&m.env, &m.path);
                exp.metas.push(m);
            }
            exp.class_base.extend(p.class_base.iter().map(|b| b + co));
            exp.classes.extend(p.classes.into_iter().map(|mut c| {
                c.trace += to;
                for (_, h) in &mut c.fields {
                    h.0 += fo;
                }
                c
            }));
            exp.fields.extend(p.fields.into_iter().map(|mut f| {
                f.class.0 += co;
                f
            }));
            exp.cursors.extend(p.cursors);
            exp.cursor_keys
                .extend(p.cursor_keys.iter().map(|&(t, r)| (t + to as u32, r)));
            exp.traces.extend(p.traces);
        }
        Ok(exp)
    }

    /// The `host_id` of a trace with this environment in `dir` joining the traces already
    /// here: that of a trace of the same host name (else the directory), or a new one.
    fn host_id_for(&self, env: &BTreeMap<String, String>, dir: &Path) -> u32 {
        let host_key = |env: &BTreeMap<String, String>, dir: &Path| {
            env.get("hostname")
                .cloned()
                .unwrap_or_else(|| dir.display().to_string())
        };
        let host = host_key(env, dir);
        self.metas
            .iter()
            .find(|m| host_key(&m.env, &m.path) == host)
            .map(|m| m.host_id)
            .unwrap_or_else(|| self.metas.iter().map(|m| m.host_id + 1).max().unwrap_or(0))
    }

    /// Registers trace `t` (its host, classes, lost-event class, fields) after the
    /// traces already there, without opening its streams; returns its index.
    fn push_trace(&mut self, root: &Path, t: CtfTrace) -> usize {
        let ti = self.traces.len();
        let env = t.metadata.env.clone();
        let host_id = self.host_id_for(&env, &t.dir);
        self.metas.push(TraceMeta {
            name: trace_name(root, &t.dir),
            path: t.dir.clone(),
            domain: env.get("domain").cloned().unwrap_or_default(),
            env,
            host_id,
        });
        let base = self.classes.len() as u32;
        self.class_base.push(base);
        for li in 0..t.classes.len() {
            let id = ClassId(base + li as u32);
            let e = class_entry(&t, li, id, ti, &mut self.fields);
            self.classes.push(e);
        }
        let lost_id = ClassId(self.classes.len() as u32);
        let mut fl = Vec::new();
        for (n, k) in [
            (LOST_EVENTS_FIELD, FieldKind::LostCount),
            (LOST_DURATION_FIELD, FieldKind::LostDuration),
        ] {
            self.fields.push(FieldDesc {
                class: lost_id,
                kind: k,
                access: Access::Int,
                fast: FastInt::default(),
                slot: 0,
            });
            fl.push((n.to_string(), FieldHandle(self.fields.len() as u32 - 1)));
        }
        self.classes.push(ClassEntry {
            trace: ti,
            name: LOST_EVENT_NAME.to_string(),
            fields: fl,
        });
        self.traces.push(t);
        ti
    }

    pub fn traces(&self) -> &[TraceMeta] {
        &self.metas
    }

    pub fn class_count(&self) -> u32 {
        self.classes.len() as u32
    }

    pub fn class_name(&self, class: ClassId) -> &str {
        &self.classes[class.0 as usize].name
    }

    pub fn class_trace(&self, class: ClassId) -> usize {
        self.classes[class.0 as usize].trace
    }

    /// Field by Trace Compass's name: payload fields without the TSDL leading '_',
    /// context fields as `context._vtid`; lost-event records: `Lost events`, `duration`.
    pub fn field_handle(&self, class: ClassId, name: &str) -> Option<FieldHandle> {
        self.classes
            .get(class.0 as usize)?
            .fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| *h)
    }

    /// Which accessor reads this field.
    pub fn field_access(&self, f: FieldHandle) -> Access {
        self.fields
            .get(f.0 as usize)
            .map(|d| d.access)
            .unwrap_or(Access::Other)
    }

    /// Names of the fields of a class (those `field_handle` accepts), in layout order.
    pub fn field_names(&self, class: ClassId) -> Vec<&str> {
        self.classes[class.0 as usize]
            .fields
            .iter()
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Size of all data stream files, for progress.
    pub fn total_bytes(&self) -> u64 {
        self.traces
            .iter()
            .flat_map(|t| t.files.iter())
            .map(|f| f.size)
            .sum()
    }

    /// Problems met while reading (streams cut short), as text.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// The typed errors behind [`warnings`](Self::warnings).
    pub fn errors(&self) -> &[TraceError] {
        &self.errors
    }

    /// The opened traces' compiled metadata.
    pub fn ctf_traces(&self) -> &[CtfTrace] {
        &self.traces
    }

    /// Shifts every timestamp of trace `trace` by `offset_ns` (Trace Compass's "trace
    /// offset", used to align the clocks of several hosts).
    pub fn set_trace_offset(&mut self, trace: usize, offset_ns: i64) {
        for (ci, c) in self.cursors.iter_mut().enumerate() {
            if self.cursor_keys[ci].0 as usize == trace {
                c.offset_ns = offset_ns;
            }
        }
    }

    /// Restricts [`for_each`](Self::for_each) to events with `begin <= ns <= end`.
    /// Packets that end before `begin` are skipped without decoding their events
    /// (found through the LTTng index when there is one).
    pub fn set_time_range(&mut self, begin: Option<i64>, end: Option<i64>) {
        self.range = (begin, end);
    }

    // --- Trace synchronization (owned by the sync module) ---

    /// Applies one formula per trace (trace order) to every event timestamp: events are
    /// merged by synchronized time, [`Event::timestamp`] returns it, and time ranges are in
    /// it. An empty slice (or identities) restores the original timestamps.
    pub fn set_time_transforms(&mut self, transforms: &[crate::sync::LinearTransform]) {
        // Timestamps are the clock's offset plus the time since it started.
        let bases: Vec<i64> = self
            .traces
            .iter()
            .map(|t| t.streams.first().map_or(0, |s| s.clock.to_ns(0)))
            .collect();
        self.time_transforms = crate::sync::TimeTransforms::with_bases(transforms, &bases);
    }

    /// The formulas in force.
    pub fn time_transforms(&self) -> &crate::sync::TimeTransforms {
        &self.time_transforms
    }

    /// Reads the data streams of the traces `wanted` says yes to, each on its own (no merge
    /// across streams), spread over `threads` threads, with fresh cursors: the experiment's
    /// own reading position is untouched. Timestamps are the original ones (no formula, no
    /// time range). `visit(state, event)` sees a stream's events in file order; states come
    /// back per stream, in the experiment's merge order ((trace, stream file name)), so
    /// sorting what they kept by (timestamp, stream, rank in the stream) gives the order of
    /// [`for_each`](Self::for_each) without formulas. Streams cut short stop there (their
    /// errors are returned beside the states), as in `for_each`.
    pub fn scan_streams<S, V>(
        &self,
        wanted: &(dyn Fn(usize) -> bool + Sync),
        threads: usize,
        init: &(dyn Fn() -> S + Sync),
        visit: &V,
        progress: &AtomicU64,
    ) -> (Vec<S>, Vec<TraceError>)
    where
        S: Send,
        V: Fn(&mut S, &Event<'_>) + Sync,
    {
        self.scan_streams_with(wanted, threads, init, visit, &|_, _| {}, progress)
    }

    /// [`scan_streams`](Self::scan_streams) of the streams of the traces holding `classes`,
    /// visiting only events of those classes (lost-event records are not visited). Events of
    /// other classes with fixed layouts are passed over from their header alone, which makes
    /// picking a few classes out of a kernel trace several times cheaper than a full read.
    pub fn scan_classes<S, V>(
        &self,
        classes: &[ClassId],
        threads: usize,
        init: &(dyn Fn() -> S + Sync),
        visit: &V,
        progress: &AtomicU64,
    ) -> (Vec<S>, Vec<TraceError>)
    where
        S: Send,
        V: Fn(&mut S, &Event<'_>) + Sync,
    {
        let filters: Vec<Option<std::sync::Arc<[bool]>>> = (0..self.traces.len())
            .map(|ti| self.class_filter(ti, classes))
            .collect();
        self.scan_impl(
            &|t| filters[t].is_some(),
            &|t| filters[t].clone(),
            threads,
            init,
            visit,
            &|_, _| {},
            progress,
        )
    }

    /// [`scan_streams`](Self::scan_streams), then `finish(state, cursor)` with each
    /// stream's cursor at its end (packets read, losses, gaps).
    pub(crate) fn scan_streams_with<S, V>(
        &self,
        wanted: &(dyn Fn(usize) -> bool + Sync),
        threads: usize,
        init: &(dyn Fn() -> S + Sync),
        visit: &V,
        finish: &(dyn Fn(&mut S, &Cursor) + Sync),
        progress: &AtomicU64,
    ) -> (Vec<S>, Vec<TraceError>)
    where
        S: Send,
        V: Fn(&mut S, &Event<'_>) + Sync,
    {
        self.scan_impl(wanted, &|_| None, threads, init, visit, finish, progress)
    }

    /// The scan itself; `filter(trace)` is the class filter of that trace's cursors.
    #[allow(clippy::too_many_arguments)]
    fn scan_impl<S, V>(
        &self,
        wanted: &(dyn Fn(usize) -> bool + Sync),
        filter: &(dyn Fn(usize) -> Option<std::sync::Arc<[bool]>> + Sync),
        threads: usize,
        init: &(dyn Fn() -> S + Sync),
        visit: &V,
        finish: &(dyn Fn(&mut S, &Cursor) + Sync),
        progress: &AtomicU64,
    ) -> (Vec<S>, Vec<TraceError>)
    where
        S: Send,
        V: Fn(&mut S, &Event<'_>) + Sync,
    {
        let streams: Vec<usize> = (0..self.cursors.len())
            .filter(|&ci| wanted(self.cursor_keys[ci].0 as usize))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let go_on = AtomicBool::new(true);
        let scan_one = |ci: usize| -> (S, Option<TraceError>) {
            let mut state = init();
            let ti = self.cursor_keys[ci].0 as usize;
            let (error, cursor) =
                self.scan_stream(ci, None, filter(ti), &mut state, visit, progress, &go_on);
            if let Some(cursor) = cursor {
                finish(&mut state, &cursor);
                drop(cursor);
                crate::timing::mark(|| format!("scan cursor dropped {ci}"));
            }
            (state, error)
        };
        let work = || {
            let mut out = Vec::new();
            while let Some(&ci) = streams.get(next.fetch_add(1, Ordering::Relaxed)) {
                let (state, error) = scan_one(ci);
                out.push((ci, state, error));
            }
            out
        };
        // The calling thread reads too: one thread fewer to start (a start costs about as much
        // as reading a small stream).
        let mut done: Vec<(usize, S, Option<TraceError>)> = std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads.clamp(1, streams.len().max(1)))
                .map(|_| s.spawn(work))
                .collect();
            let mut done = work();
            crate::timing::mark(|| "scan: own streams done".into());
            for h in helpers {
                done.extend(h.join().expect("a stream-reading thread panicked"));
            }
            crate::timing::mark(|| "scan: helpers joined".into());
            done
        });
        done.sort_unstable_by_key(|d| d.0);
        let mut errors = Vec::new();
        let states = done
            .into_iter()
            .map(|(_, state, error)| {
                errors.extend(error);
                state
            })
            .collect();
        (states, errors)
    }

    /// Per local class of trace `ti`, whether it is one of `classes` (the last entry, for
    /// lost-event records: no); `None` when the trace has none of them.
    pub(crate) fn class_filter(
        &self,
        ti: usize,
        classes: &[ClassId],
    ) -> Option<std::sync::Arc<[bool]>> {
        let base = self.class_base[ti];
        let n = self.traces[ti].classes.len();
        let w: Vec<bool> = (0..n)
            .map(|k| classes.contains(&ClassId(base + k as u32)))
            .chain([false])
            .collect();
        w.iter().any(|&b| b).then(|| w.into())
    }

    /// Reads stream `ci` on its own with a cursor of its own (see
    /// [`scan_streams`](Self::scan_streams)), delivering the classes `filter` says yes to
    /// (all with `None`), the packets starting in `[from, to)` only if `packets` says so (see
    /// [`packet_starts`](Self::packet_starts)), until its end, an error (returned), or until `go_on` turns false
    /// (looked at once per packet). The cursor comes back at its end, for the caller to read
    /// its counts and to unmap when that costs nothing (`None` if it could not be opened).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn scan_stream<S, V>(
        &self,
        ci: usize,
        packets: Option<(u64, u64)>,
        filter: Option<std::sync::Arc<[bool]>>,
        state: &mut S,
        visit: &V,
        progress: &AtomicU64,
        go_on: &AtomicBool,
    ) -> (Option<TraceError>, Option<Cursor>)
    where
        V: Fn(&mut S, &Event<'_>) + ?Sized,
    {
        let ti = self.cursor_keys[ci].0 as usize;
        let trace = &self.traces[ti];
        crate::timing::mark(|| {
            format!(
                "scan start {} {ci} {:?}",
                self.metas[ti].path.display(),
                packets
            )
        });
        let mut cursor = match Cursor::open(trace, &self.cursors[ci].file) {
            Ok(c) => c,
            Err(e) => return (Some(e), None),
        };
        cursor.wanted = filter;
        if let Some((from, to)) = packets {
            cursor.read_packets(from, to);
        }
        let error = loop {
            match cursor.advance(trace) {
                Ok(true) => {}
                Ok(false) => break None,
                Err(e) => break Some(e),
            }
            let p = cursor.take_progress();
            if p != 0 {
                progress.fetch_add(p, Ordering::Relaxed);
                if !go_on.load(Ordering::Relaxed) {
                    break None;
                }
            }
            let class = match cursor.cur.lost {
                None => ClassId(self.class_base[ti] + cursor.cur.class),
                Some(_) => ClassId(self.class_base[ti] + trace.classes.len() as u32),
            };
            let ev = Event {
                exp_fields: &self.fields,
                cursor: &cursor,
                data: cursor.data(),
                trace,
                class,
                trace_index: ti,
                ns: cursor.cur.ns,
            };
            visit(state, &ev);
        };
        progress.fetch_add(cursor.take_progress(), Ordering::Relaxed);
        crate::timing::mark(|| {
            format!(
                "scan end {} {ci} {:?}",
                self.metas[ti].path.display(),
                packets
            )
        });
        (error, Some(cursor))
    }

    /// Where the packets of stream `ci` start, if reading may start at any of them (see
    /// [`Cursor::packet_starts`]); `None` too once the stream was read.
    pub(crate) fn packet_starts(&mut self, ci: usize) -> Option<Vec<u64>> {
        if self.consumed || !self.cursors[ci].is_unread() {
            return None;
        }
        let ti = self.cursor_keys[ci].0 as usize;
        self.cursors[ci].packet_starts(&self.traces[ti])
    }

    /// Makes `cursor`, which read stream `ci` to its end in [`scan_stream`](Self::scan_stream),
    /// this experiment's cursor for that stream, back at the start: the stream's next reading
    /// finds its pages mapped, and the scan's mapping is not torn down.
    pub(crate) fn reuse_scanned(&mut self, ci: usize, cursor: Cursor) {
        let ti = self.cursor_keys[ci].0 as usize;
        if self.consumed || !self.cursors[ci].is_unread() {
            return;
        }
        let mut c = cursor.restarted(&self.traces[ti]);
        c.offset_ns = self.cursors[ci].offset_ns;
        c.wanted = self.cursors[ci].wanted.clone();
        self.cursors[ci] = c;
    }

    /// Streams of this experiment (its cursors, in merge order).
    pub(crate) fn stream_count(&self) -> usize {
        self.cursors.len()
    }

    /// Splits the experiment into one experiment per group of trace indices (e.g. the traces
    /// of each host), keeping the compiled metadata (no second parse), the trace names, the
    /// formulas and, when nothing was read yet, the streams' mappings. Traces in no group are
    /// dropped; an index out of range or given twice is an error.
    pub fn split(self, groups: &[Vec<usize>]) -> Result<Vec<Experiment>, TraceError> {
        let n = self.traces.len();
        let all_transforms = self.time_transforms.clone();
        let mut slots: Vec<Option<Experiment>> = if self.is_plain() {
            self.into_single_traces().into_iter().map(Some).collect()
        } else {
            let parts = self
                .into_parts()
                .into_iter()
                .map(|p| Self::assemble(vec![p]));
            parts.map(|e| e.map(Some)).collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let mut parts = Vec::with_capacity(g.len());
            for &i in g {
                let part = slots.get_mut(i).and_then(Option::take).ok_or_else(|| {
                    TraceError::Metadata {
                        path: PathBuf::from(format!("trace #{i}")),
                        reason: format!("not in the experiment's {n} traces, or split twice"),
                    }
                })?;
                parts.push(part);
            }
            let mut e = Self::join(parts)?;
            // The same traces: the same formulas, from the same base times.
            e.time_transforms = all_transforms.select(g);
            out.push(e);
        }
        Ok(out)
    }

    /// Whether this experiment is as opened: no stream read, no class filter, no trace
    /// grown live (so each trace's classes, and their fields, are contiguous in the tables).
    fn is_plain(&self) -> bool {
        !self.consumed
            && self.grown.is_empty()
            && self.filter.is_none()
            && self.cursors.iter().all(Cursor::is_unread)
    }

    /// One experiment per trace of a [plain](Self::is_plain) experiment, its tables cut apart
    /// and renumbered (no class or field is described again), its cursors moved. The
    /// inverse of [`join`](Self::join).
    fn into_single_traces(self) -> Vec<Experiment> {
        let n = self.traces.len();
        let class_end = |ti: usize| {
            self.class_base
                .get(ti + 1)
                .map_or(self.classes.len(), |&b| b as usize)
        };
        let class_counts: Vec<usize> = (0..n)
            .map(|ti| class_end(ti) - self.class_base[ti] as usize)
            .collect();
        // Fields are in the order of their classes.
        let field_starts: Vec<usize> = (0..n)
            .map(|ti| {
                self.fields
                    .partition_point(|f| f.class.0 < self.class_base[ti])
            })
            .chain([self.fields.len()])
            .collect();
        let mut cursors: Vec<Vec<Cursor>> = (0..n).map(|_| Vec::new()).collect();
        for (mut c, (ti, _)) in self.cursors.into_iter().zip(self.cursor_keys) {
            c.offset_ns = 0;
            cursors[ti as usize].push(c);
        }
        let mut classes = self.classes.into_iter();
        let mut fields = self.fields.into_iter();
        let mut out = Vec::with_capacity(n);
        let traces = self.traces.into_iter().zip(self.metas).zip(cursors);
        for (ti, ((t, mut meta), cursors)) in traces.enumerate() {
            let (cb, fb) = (self.class_base[ti], field_starts[ti] as u32);
            let mut e = Self::empty();
            e.class_base.push(0);
            e.classes
                .extend(classes.by_ref().take(class_counts[ti]).map(|mut c| {
                    c.trace = 0;
                    for (_, h) in &mut c.fields {
                        h.0 -= fb;
                    }
                    c
                }));
            let nf = field_starts[ti + 1] - field_starts[ti];
            e.fields.extend(fields.by_ref().take(nf).map(|mut f| {
                f.class.0 -= cb;
                f
            }));
            e.cursor_keys = (0..cursors.len() as u32).map(|r| (0, r)).collect();
            e.cursors = cursors;
            meta.host_id = 0;
            e.metas.push(meta);
            e.traces.push(t);
            out.push(e);
        }
        out
    }

    // --- end of trace synchronization ---

    /// Whether reading each stream on its own from the start sees the same events with
    /// the same timestamps as [`for_each`](Self::for_each): no time range, no formula,
    /// no trace offset, no class filter.
    pub(crate) fn streams_read_plainly(&self) -> bool {
        self.range == (None, None)
            && self.time_transforms.is_empty()
            && self
                .cursors
                .iter()
                .all(|c| c.offset_ns == 0 && c.wanted.is_none())
    }

    /// Records the problems of a pass made without `for_each` (see `stats`), so that
    /// [`warnings`](Self::warnings) tells them as after a merged pass.
    pub(crate) fn record_errors(&mut self, errors: Vec<TraceError>) {
        self.warnings.clear();
        self.errors.clear();
        for e in errors {
            self.warnings
                .push(format!("{e}; the rest of this stream is skipped"));
            self.errors.push(e);
        }
    }

    /// Visits every event in timestamp order. A stream whose data contradicts its
    /// metadata stops at the bad spot (a warning says where) and the others go on,
    /// as in Trace Compass. Reading again re-opens the streams from the start.
    pub fn for_each(
        &mut self,
        f: &mut dyn FnMut(&Event<'_>) -> ControlFlow<()>,
        progress: &AtomicU64,
    ) -> Result<(), TraceError> {
        if self.consumed {
            self.rewind()?;
        }
        self.consumed = true;
        // Cursors are numbered in (trace, stream file name) order, so the key
        // (ns, cursor index) orders events as Trace Compass does.
        let mut heap = MergeHeap::with_capacity(self.cursors.len());
        let (begin, end) = self.range;
        if let Some(b) = begin {
            for ci in 0..self.cursors.len() {
                let ti = self.cursor_keys[ci].0 as usize;
                let b = self.time_transforms.original_lower_bound(ti, b);
                if let Err(e) = self.cursors[ci].skip_packets_before(&self.traces[ti], b) {
                    self.warnings
                        .push(format!("{e}; the rest of this stream is skipped"));
                    self.errors.push(e);
                }
            }
        }
        for ci in 0..self.cursors.len() {
            if self.step(ci, progress) {
                let t = self.cursor_keys[ci].0 as usize;
                let ns = self.time_transforms.apply(t, self.cursors[ci].cur.ns);
                heap.push(merge_key(ns, ci));
            }
        }
        while let Some(top) = heap.top() {
            let ci = (top as u32) as usize;
            let ti = self.cursor_keys[ci].0 as usize;
            let cursor = &self.cursors[ci];
            let top_ns = key_ns(top);
            if end.is_some_and(|e| top_ns > e) {
                break;
            }
            let class = match cursor.cur.lost {
                None => ClassId(self.class_base[ti] + cursor.cur.class),
                Some(_) => ClassId(self.class_base[ti] + self.traces[ti].classes.len() as u32),
            };
            let ev = Event {
                exp_fields: &self.fields,
                cursor,
                data: cursor.data(),
                trace: &self.traces[ti],
                class,
                trace_index: ti,
                ns: top_ns,
            };
            if begin.is_none_or(|b| ev.timestamp() >= b) && f(&ev).is_break() {
                break;
            }
            // Most events take the cursor's fast path; packet ends, errors and other
            // events the general one (which also reports progress).
            if self.cursors[ci].advance_fast(&self.traces[ti]) || self.step(ci, progress) {
                let ns = self.time_transforms.apply(ti, self.cursors[ci].cur.ns);
                heap.replace_top(merge_key(ns, ci));
            } else {
                heap.pop();
            }
        }
        for c in &mut self.cursors {
            let p = c.take_progress();
            if p != 0 {
                progress.fetch_add(p, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Advances cursor `ci`; false at its end or on error (recorded as a warning).
    #[inline]
    fn step(&mut self, ci: usize, progress: &AtomicU64) -> bool {
        let ti = self.cursor_keys[ci].0 as usize;
        let c = &mut self.cursors[ci];
        match c.advance(&self.traces[ti]) {
            Ok(true) => {
                if c.packets_read & 3 == 0 {
                    let p = c.take_progress();
                    if p != 0 {
                        progress.fetch_add(p, Ordering::Relaxed);
                    }
                }
                true
            }
            Ok(false) => false,
            Err(e) => {
                self.warnings
                    .push(format!("{e}; the rest of this stream is skipped"));
                self.errors.push(e);
                false
            }
        }
    }

    fn rewind(&mut self) -> Result<(), TraceError> {
        let mut cursors = Vec::with_capacity(self.cursors.len());
        for (ci, c) in self.cursors.iter().enumerate() {
            let t = &self.traces[self.cursor_keys[ci].0 as usize];
            let mut fresh = Cursor::open(t, &c.file)?;
            fresh.offset_ns = c.offset_ns;
            fresh.wanted = c.wanted.clone();
            cursors.push(fresh);
        }
        self.cursors = cursors;
        self.warnings.clear();
        self.errors.clear();
        Ok(())
    }

    /// Delivers only the events of `classes` (lost-event records too only if their
    /// class is listed); None delivers everything again. Other events are still
    /// decoded far enough to know their size (one step for fixed layouts) but never
    /// enter the merge nor reach the visitor, which makes reading a few classes of a
    /// big trace much cheaper. Takes effect at the next [`for_each`](Self::for_each)
    /// or stream advance. Classes the experiment gains afterwards (a live session's
    /// metadata growing, a trace added) are delivered: the caller could not name
    /// them; it may call again to leave them out.
    pub fn set_class_filter(&mut self, classes: Option<&[ClassId]>) {
        self.filter = classes.map(|cls| {
            let mut keep = vec![false; self.classes.len()];
            for c in cls {
                if let Some(k) = keep.get_mut(c.0 as usize) {
                    *k = true;
                }
            }
            keep
        });
        for ci in 0..self.cursors.len() {
            self.apply_filter(ci);
        }
    }

    /// Sets cursor `ci`'s per-local-class filter from the experiment's filter.
    fn apply_filter(&mut self, ci: usize) {
        let ti = self.cursor_keys[ci].0 as usize;
        let wanted = self.filter.as_ref().map(|keep| {
            let delivered = |c: u32| keep.get(c as usize).copied().unwrap_or(true);
            // Local classes (through the growth map, if any), then the lost-event class.
            let (mut w, lost): (Vec<bool>, _) = match self.grown.get(&ti) {
                Some((map, lost)) => (map.iter().map(|&g| delivered(g)).collect(), *lost),
                None => {
                    let base = self.class_base[ti];
                    let n = self.traces[ti].classes.len() as u32;
                    ((base..base + n).map(delivered).collect(), ClassId(base + n))
                }
            };
            w.push(delivered(lost.0));
            w.into()
        });
        self.cursors[ci].wanted = wanted;
    }

    /// Per-stream reading totals after a pass: (trace index, file name, packets, lost events).
    pub fn stream_totals(&self) -> Vec<(usize, String, u64, u64)> {
        self.cursors
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                (
                    self.cursor_keys[ci].0 as usize,
                    c.file.name.clone(),
                    c.packets_read,
                    c.lost_total,
                )
            })
            .collect()
    }
}

impl Experiment {
    /// Whole packets missing from streams after a pass (gaps in `packet_seq_num`):
    /// (trace index, stream file name, gap), times in experiment time. Trace Compass
    /// does not report them (its event flow has no record for them); babeltrace2 prints
    /// them as discarded packets.
    pub fn packet_gaps(&self) -> Vec<(usize, String, crate::ctf::reader::PacketGap)> {
        let mut out = Vec::new();
        for (ci, c) in self.cursors.iter().enumerate() {
            let ti = self.cursor_keys[ci].0 as usize;
            for g in &c.packet_gaps {
                let mut g = *g;
                g.begin_ns = g.begin_ns.map(|t| self.time_transforms.apply(ti, t));
                g.end_ns = g.end_ns.map(|t| self.time_transforms.apply(ti, t));
                out.push((ti, c.file.name.clone(), g));
            }
        }
        out
    }

    /// Packets missing from all streams after a pass (exact, even when more gaps
    /// than [`packet_gaps`](Self::packet_gaps) keeps).
    pub fn lost_packets(&self) -> u64 {
        self.cursors.iter().map(|c| c.lost_packets).sum()
    }
}

/// Names of the leaves reachable by name (not inside arrays), with their slots.
fn collect_names(node: &Node, prefix: &str, strip: bool, out: &mut Vec<(String, Vec<u32>)>) {
    let Node::Struct(members) = node else {
        return;
    };
    for (name, n) in members {
        let shown = if strip {
            name.strip_prefix('_').unwrap_or(name)
        } else {
            name.as_str()
        };
        collect_node(n, format!("{prefix}{shown}"), strip, out);
    }
}

/// Adds `name` -> slots of node `n`; a name met twice (variant options with members of
/// the same name) reads whichever slot the current event filled.
fn collect_node(n: &Node, full: String, strip: bool, out: &mut Vec<(String, Vec<u32>)>) {
    let push = |name: String, slot: u32, out: &mut Vec<(String, Vec<u32>)>| match out
        .iter_mut()
        .find(|(k, _)| *k == name)
    {
        Some((_, v)) => v.push(slot),
        None => out.push((name, vec![slot])),
    };
    match n {
        Node::Leaf(s) | Node::Array(s, _) => push(full, *s, out),
        Node::Struct(_) => collect_names(n, &format!("{full}."), strip, out),
        Node::Variant(opts) => {
            // Trace Compass shows a variant as one field holding the selected option.
            for (oname, o) in opts {
                if let Node::Leaf(s) = o {
                    push(full.clone(), *s, out);
                }
                collect_node(o, format!("{full}.{oname}"), strip, out);
            }
        }
        Node::Optional(inner) => collect_node(inner, full, strip, out),
    }
}

fn trace_name(root: &Path, dir: &Path) -> String {
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    match dir.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => name_of(dir),
    }
}

/// Collects (root, trace dir) pairs: `p` itself if it holds `metadata`, else every
/// directory below it that does (sorted, not descending into traces).
fn find_traces(p: &Path, out: &mut Vec<(PathBuf, PathBuf)>, depth: u32) -> Result<(), TraceError> {
    let root = p.to_path_buf();
    walk(&root, p, out, depth)
}

fn walk(
    root: &Path,
    p: &Path,
    out: &mut Vec<(PathBuf, PathBuf)>,
    depth: u32,
) -> Result<(), TraceError> {
    if !p.is_dir() {
        return Err(TraceError::NoTrace {
            path: p.to_path_buf(),
        });
    }
    if p.join("metadata").is_file() {
        out.push((root.to_path_buf(), p.to_path_buf()));
        return Ok(());
    }
    if depth > 8 {
        return Ok(());
    }
    let rd = std::fs::read_dir(p).map_err(|e| TraceError::io(p, e))?;
    let mut subs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    for s in subs {
        walk(root, &s, out, depth + 1)?;
    }
    Ok(())
}

/// A decoded value, for printing and tests (the hot path uses `int`/`string`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Int(i64),
    UInt(u64),
    /// An integer whose preferred display base is 16 (raw 64-bit value).
    Hex(u64),
    Float(f64),
    Str(std::borrow::Cow<'a, str>),
    /// Enumeration: value and the labels covering it.
    Enum(i64, bool, Vec<&'a str>),
    Array(Vec<Value<'a>>),
    Struct(Vec<(String, Value<'a>)>),
    Bytes(&'a [u8]),
    /// Variant: the selected option's name and value.
    Variant(String, Box<Value<'a>>),
}

impl<'a> Event<'a> {
    #[inline]
    pub fn class(&self) -> ClassId {
        self.class
    }

    /// ns since the epoch, clock offset applied (and the trace's synchronization formula,
    /// if the experiment has one).
    #[inline]
    pub fn timestamp(&self) -> i64 {
        self.ns
    }

    /// Raw clock value (cycles).
    #[inline]
    pub fn cycles(&self) -> u64 {
        self.cursor.cur.cycles
    }

    /// The packet context's `cpu_id`.
    #[inline]
    pub fn cpu(&self) -> Option<u32> {
        self.cursor.packet.cpu
    }

    #[inline]
    pub fn trace_index(&self) -> usize {
        self.trace_index
    }

    /// Name of the data stream file the event comes from.
    pub fn stream_name(&self) -> &str {
        &self.cursor.file.name
    }

    /// Byte offset of the packet holding the event in its stream file.
    pub fn packet_offset(&self) -> u64 {
        self.cursor.packet.offset
    }

    /// Lost-event record: (count, duration in ns).
    pub fn lost(&self) -> Option<(u64, i64)> {
        let (n, d) = self.cursor.cur.lost?;
        let conv = &self.trace.streams[self.cursor.stream].clock;
        Some((n, conv.duration_ns(d)))
    }

    /// A slot's value for the current event, decoding fixed-layout fields on access.
    #[inline]
    fn slot_of(&self, s: u32) -> Option<Slot> {
        let c = self.cursor;
        if let Some(cl) = self.trace.classes.get(c.cur.class as usize) {
            if let Some(Some((scope, f))) = cl.static_slots.get(s as usize) {
                return Some(f.read(c.data(), c.scope_start[*scope as usize], c.m.gen));
            }
        }
        let sl = c.m.slots.get(s as usize)?;
        (sl.gen == c.m.gen).then_some(*sl)
    }

    /// The slot a handle designates for this event (None: not decoded, e.g. an
    /// unselected variant option).
    #[inline(always)]
    fn current_slot(&self, d: &FieldDesc) -> Option<(u32, Slot)> {
        let c = self.cursor;
        match &d.kind {
            FieldKind::Static { scope, field } => Some((
                0,
                field.read(self.data, c.scope_start[*scope as usize], c.m.gen),
            )),
            FieldKind::Slot(s) => {
                let sl = c.m.slots.get(*s as usize)?;
                (sl.gen == c.m.gen).then_some((*s, *sl))
            }
            FieldKind::AnyOf(v) => v.iter().find_map(|s| {
                let sl = c.m.slots.get(*s as usize)?;
                (sl.gen == c.m.gen).then_some((*s, *sl))
            }),
            _ => None,
        }
    }

    fn slot_kind(&self, s: u32) -> Option<&'a SlotKind> {
        let local = self.cursor.cur.class;
        let cl = self.trace.classes.get(local as usize)?;
        cl.slots.get(s as usize).map(|i| &i.kind)
    }

    /// Integer or enumeration field (u64 values as i64 bits); lost-event fields too.
    #[inline]
    pub fn int(&self, f: FieldHandle) -> Option<i64> {
        let d = self.exp_fields.get(f.0 as usize)?;
        if d.class != self.class {
            return None;
        }
        let fast = d.fast;
        if fast.width != 0 {
            // Fixed layouts start on a byte (scope start is byte-aligned). One 8-byte
            // load, then the shifts keep the field's bytes (sign-extended if signed);
            // the last bytes of a file take the general path.
            let at = (self.cursor.scope_start[(fast.scope & 3) as usize] / 8) as usize
                + fast.byte_off as usize;
            if let Some(b) = self.data.get(at..at + 8) {
                let raw = u64::from_le_bytes(b.try_into().expect("8 bytes")) << fast.shift;
                return Some(if fast.signed {
                    (raw as i64) >> fast.shift
                } else {
                    (raw >> fast.shift) as i64
                });
            }
        }
        self.int_general(d)
    }

    #[inline(never)]
    fn int_general(&self, d: &FieldDesc) -> Option<i64> {
        if d.access != Access::Int {
            return None;
        }
        match &d.kind {
            // The common case (fixed-layout integer) read straight from the bytes.
            FieldKind::Static {
                scope,
                field:
                    StaticField::Int {
                        off,
                        size,
                        signed,
                        be,
                    },
            } => {
                let c = self.cursor;
                let pos = c.scope_start[*scope as usize] + *off as u64;
                let raw = crate::ctf::decode::read_bits(self.data, pos, *size as u32, *be);
                Some(if *signed && *size < 64 {
                    let sh = 64 - *size as u32;
                    ((raw << sh) as i64) >> sh
                } else {
                    raw as i64
                })
            }
            FieldKind::LostCount => self.lost().map(|l| l.0 as i64),
            FieldKind::LostDuration => self.lost().map(|l| l.1),
            _ => Some(self.current_slot(d)?.1.v as i64),
        }
    }

    /// String field, or char array/sequence as text (up to the first NUL; invalid
    /// UTF-8 cuts the text at the first bad byte).
    #[inline]
    pub fn string(&self, f: FieldHandle) -> Option<&'a str> {
        let d = self.exp_fields.get(f.0 as usize)?;
        if d.class != self.class || d.access != Access::Text {
            return None;
        }
        let (at, len) = match d.kind {
            // Char arrays of fixed layouts (comm names): no slot to build.
            FieldKind::Static {
                scope,
                field: StaticField::Bytes { off, len },
            } => (
                (self.cursor.scope_start[(scope & 3) as usize] + off as u64) / 8,
                len,
            ),
            _ => {
                let (_, sl) = self.current_slot(d)?;
                (sl.v, sl.len)
            }
        };
        let data = self.cursor_data();
        let b = data.get(at as usize..at as usize + len as usize)?;
        let b = match crate::ctf::decode::find_nul(b) {
            Some(n) => &b[..n],
            None => b,
        };
        if b.is_ascii() {
            // SAFETY: ASCII is valid UTF-8 (the common case: names, comms, paths).
            return Some(unsafe { std::str::from_utf8_unchecked(b) });
        }
        Some(match std::str::from_utf8(b) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or(""),
        })
    }

    /// Number of elements of an array or sequence field of scalars (None for other fields).
    #[inline]
    pub fn array_len(&self, f: FieldHandle) -> Option<usize> {
        let d = self.exp_fields.get(f.0 as usize)?;
        if d.class != self.class || d.access != Access::Other {
            return None;
        }
        match self.slot_kind(d.slot)? {
            SlotKind::ScalarArray { .. } => Some(self.current_slot(d)?.1.len as usize),
            _ => None,
        }
    }

    /// Element `i` of an array or sequence of integers (u64 values as i64 bits), without
    /// allocating; None past the end or for other fields.
    #[inline]
    pub fn array_int(&self, f: FieldHandle, i: usize) -> Option<i64> {
        let d = self.exp_fields.get(f.0 as usize)?;
        if d.class != self.class || d.access != Access::Other {
            return None;
        }
        let SlotKind::ScalarArray { elem, stride } = self.slot_kind(d.slot)? else {
            return None;
        };
        let (_, sl) = self.current_slot(d)?;
        if elem.float || i >= sl.len as usize {
            return None;
        }
        let pos = sl.v + i as u64 * *stride as u64;
        let raw = crate::ctf::decode::read_bits(self.data, pos, elem.size as u32, elem.be);
        Some(if elem.signed && elem.size < 64 {
            let sh = 64 - elem.size as u32;
            ((raw << sh) as i64) >> sh
        } else {
            raw as i64
        })
    }

    /// Any field as a [`Value`] (allocates; for printing and tests).
    pub fn value(&self, f: FieldHandle) -> Option<Value<'a>> {
        let d = self.exp_fields.get(f.0 as usize)?;
        if d.class != self.class {
            return None;
        }
        match &d.kind {
            FieldKind::LostCount => self.lost().map(|l| Value::UInt(l.0)),
            FieldKind::LostDuration => self.lost().map(|l| Value::Int(l.1)),
            FieldKind::Static { .. } => self.slot_value(d.slot),
            _ => self.slot_value(self.current_slot(d)?.0),
        }
    }

    fn slot_value(&self, s: u32) -> Option<Value<'a>> {
        let sl = self.slot_of(s)?;
        self.value_of(s, sl, None)
    }

    /// Slot `s` of the current event, or of `m` (an array element being decoded).
    fn slot_in(&self, s: u32, m: Option<&Machine>) -> Option<Slot> {
        match m {
            None => self.slot_of(s),
            Some(m) => {
                let sl = m.slots.get(s as usize)?;
                (sl.gen == m.gen).then_some(*sl)
            }
        }
    }

    /// Elements of a compound array (slot `s` = bit position and count): each one is
    /// decoded again, on a copy of the decoding state, from its own position (the
    /// reader keeps only the last element's slots).
    fn array_value(&self, s: u32, sl: Slot, m: Option<&Machine>) -> Option<Value<'a>> {
        let cl = self.trace.classes.get(self.cursor.cur.class as usize)?;
        let st = &self.trace.streams[cl.stream];
        let (ops, body) = [&cl.payload, &cl.context, &st.event_context]
            .into_iter()
            .find_map(|p| {
                p.ops.iter().find_map(|op| match op {
                    Op::Array { slot, body, .. } if *slot == s => Some((&p.ops, *body)),
                    _ => None,
                })
            })?;
        let elem = [&cl.payload_tree, &cl.context_tree, &st.stream_context_tree]
            .into_iter()
            .find_map(|t| array_elem(t, s))?;
        let mut scratch = m.unwrap_or(&self.cursor.m).clone();
        let end = self.cursor.cur.bits.2;
        let mut pos = sl.v;
        let n = sl.len as usize;
        let mut out: Vec<Value<'a>> = Vec::with_capacity(n.min(1024));
        while out.len() < n {
            let before = pos;
            scratch.next_gen();
            scratch
                .run_range(ops, body.0, body.1, self.data, &mut pos, end)
                .ok()?;
            let v = self.node_value_in(elem, Some(&scratch))?;
            if pos == before {
                // Empty elements (the reader stopped there too): all alike.
                out.resize(n, v);
                break;
            }
            out.push(v);
        }
        Some(Value::Array(out))
    }

    fn value_of(&self, s: u32, sl: Slot, m: Option<&Machine>) -> Option<Value<'a>> {
        let data: &'a [u8] = self.cursor_data();
        Some(match self.slot_kind(s)? {
            SlotKind::Int {
                signed,
                mappings,
                base,
            } => match mappings {
                Some(m) => {
                    let v: i128 = if *signed {
                        sl.v as i64 as i128
                    } else {
                        sl.v as i128
                    };
                    let labels = m
                        .iter()
                        .filter(|mp| mp.ranges.iter().any(|(lo, hi)| *lo <= v && v <= *hi))
                        .map(|mp| mp.label.as_str())
                        .collect();
                    Value::Enum(sl.v as i64, *signed, labels)
                }
                None if *base == 16 => Value::Hex(sl.v),
                None if *signed => Value::Int(sl.v as i64),
                None => Value::UInt(sl.v),
            },
            SlotKind::Float => Value::Float(float_of(sl.v, self.float_size(s))),
            SlotKind::Str | SlotKind::Text => {
                let b = data.get(sl.v as usize..sl.v as usize + sl.len as usize)?;
                let b = match crate::ctf::decode::find_nul(b) {
                    Some(n) => &b[..n],
                    None => b,
                };
                Value::Str(String::from_utf8_lossy(b))
            }
            SlotKind::Blob => {
                Value::Bytes(data.get(sl.v as usize..sl.v as usize + sl.len as usize)?)
            }
            SlotKind::ScalarArray { elem, stride } => {
                let mut out = Vec::with_capacity(sl.len as usize);
                for i in 0..sl.len as u64 {
                    let pos = sl.v + i * *stride as u64;
                    let raw = crate::ctf::decode::read_bits(data, pos, elem.size as u32, elem.be);
                    out.push(if elem.float {
                        Value::Float(float_of(raw, elem.size as u32))
                    } else if elem.signed {
                        let sh = 64 - elem.size as u32;
                        Value::Int(((raw << sh) as i64) >> sh)
                    } else {
                        Value::UInt(raw)
                    });
                }
                Value::Array(out)
            }
            SlotKind::Array => return self.array_value(s, sl, m),
        })
    }

    #[inline]
    fn cursor_data(&self) -> &'a [u8] {
        self.data
    }

    fn float_size(&self, s: u32) -> u32 {
        // Floats are stored as raw bits; find the op to know the width.
        let local = self.cursor.cur.class as usize;
        let Some(cl) = self.trace.classes.get(local) else {
            return 64;
        };
        let st = &self.trace.streams[cl.stream];
        for p in [
            &cl.payload,
            &cl.context,
            &st.event_context,
            &st.event_header,
        ] {
            for op in &p.ops {
                if let crate::ctf::decode::Op::Float { slot, size, .. } = op {
                    if *slot == s {
                        return *size as u32;
                    }
                }
            }
        }
        64
    }

    /// The event's fields by scope, in layout order, with Babeltrace's names (one
    /// leading underscore removed): (stream event context, event context, payload).
    #[allow(clippy::type_complexity)]
    pub fn babeltrace_fields(
        &self,
    ) -> (
        Vec<(String, Value<'a>)>,
        Vec<(String, Value<'a>)>,
        Vec<(String, Value<'a>)>,
    ) {
        if self.cursor.cur.lost.is_some() {
            return (Vec::new(), Vec::new(), Vec::new());
        }
        let Some(cl) = self.trace.classes.get(self.cursor.cur.class as usize) else {
            return (Vec::new(), Vec::new(), Vec::new());
        };
        let sc = &self.trace.streams[cl.stream].stream_context_tree;
        (
            self.tree_values(sc),
            self.tree_values(&cl.context_tree),
            self.tree_values(&cl.payload_tree),
        )
    }

    fn tree_values(&self, node: &Node) -> Vec<(String, Value<'a>)> {
        self.tree_values_in(node, None)
    }

    fn tree_values_in(&self, node: &Node, mach: Option<&Machine>) -> Vec<(String, Value<'a>)> {
        let mut out = Vec::new();
        if let Node::Struct(members) = node {
            for (name, n) in members {
                let shown = if self.trace.metadata.ctf2 {
                    name.clone()
                } else {
                    name.strip_prefix('_').unwrap_or(name).to_string()
                };
                if let Some(v) = self.node_value_in(n, mach) {
                    out.push((shown, v));
                }
            }
        }
        out
    }

    fn node_value_in(&self, n: &Node, mach: Option<&Machine>) -> Option<Value<'a>> {
        match n {
            Node::Leaf(s) | Node::Array(s, _) => {
                let sl = self.slot_in(*s, mach)?;
                self.value_of(*s, sl, mach)
            }
            Node::Struct(m) => {
                let v = self.tree_values_in(n, mach);
                // An unselected variant option: none of its fields was decoded.
                (m.is_empty() || !v.is_empty()).then_some(Value::Struct(v))
            }
            Node::Variant(opts) => opts.iter().find_map(|(name, o)| {
                let shown = if self.trace.metadata.ctf2 {
                    name.clone()
                } else {
                    name.strip_prefix('_').unwrap_or(name).to_string()
                };
                self.node_value_in(o, mach)
                    .map(|v| Value::Variant(shown, Box::new(v)))
            }),
            Node::Optional(inner) => self.node_value_in(inner, mach),
        }
    }
}

/// The element tree of compound array `s` within a scope's tree.
fn array_elem(n: &Node, s: u32) -> Option<&Node> {
    match n {
        Node::Leaf(_) => None,
        Node::Array(a, e) if *a == s => Some(e),
        Node::Array(_, e) | Node::Optional(e) => array_elem(e, s),
        Node::Struct(m) | Node::Variant(m) => m.iter().find_map(|(_, c)| array_elem(c, s)),
    }
}

fn float_of(bits: u64, size: u32) -> f64 {
    if size == 32 {
        f32::from_bits(bits as u32) as f64
    } else {
        f64::from_bits(bits)
    }
}

impl Value<'_> {
    /// JSON form: integers as numbers (unsigned unbounded), strings, arrays as lists,
    /// structures as objects, enumerations as `{enum_value, labels}`, bytes as a list.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Int(i) => J::from(*i),
            Value::UInt(u) | Value::Hex(u) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(f.to_string())),
            Value::Str(s) => J::String(s.to_string()),
            Value::Enum(v, signed, labels) => {
                let mut m = serde_json::Map::new();
                m.insert(
                    "enum_value".into(),
                    if *signed {
                        J::from(*v)
                    } else {
                        J::from(*v as u64)
                    },
                );
                m.insert(
                    "labels".into(),
                    J::Array(labels.iter().map(|l| J::String(l.to_string())).collect()),
                );
                J::Object(m)
            }
            Value::Array(a) => J::Array(a.iter().map(Value::to_json).collect()),
            Value::Struct(f) => {
                J::Object(f.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::Bytes(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
            Value::Variant(name, v) => {
                J::Object(std::iter::once((name.clone(), v.to_json())).collect())
            }
        }
    }
}

/// Heap key: ns (order-preserving as unsigned) in the high bits, cursor index low.
#[inline]
fn merge_key(ns: i64, cursor: usize) -> u128 {
    (((ns as u64) ^ (1 << 63)) as u128) << 64 | cursor as u128
}

/// The (possibly synchronized) timestamp of a merge key.
#[inline]
fn key_ns(k: u128) -> i64 {
    (((k >> 64) as u64) ^ (1 << 63)) as i64
}

/// Min-heap of merge keys, with the replace-top operation the merge needs most.
struct MergeHeap {
    keys: Vec<u128>,
}

impl MergeHeap {
    fn with_capacity(n: usize) -> Self {
        MergeHeap {
            keys: Vec::with_capacity(n),
        }
    }

    #[inline]
    fn top(&self) -> Option<u128> {
        self.keys.first().copied()
    }

    fn push(&mut self, k: u128) {
        self.keys.push(k);
        let mut i = self.keys.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.keys[parent] <= k {
                break;
            }
            self.keys[i] = self.keys[parent];
            i = parent;
        }
        self.keys[i] = k;
    }

    #[inline]
    fn replace_top(&mut self, k: u128) {
        let keys = &mut self.keys;
        let n = keys.len();
        let mut i = 0;
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && keys[r] < keys[l] { r } else { l };
            if keys[c] >= k {
                break;
            }
            keys[i] = keys[c];
            i = c;
        }
        keys[i] = k;
    }

    fn pop(&mut self) {
        let last = self.keys.pop();
        if let Some(k) = last {
            if !self.keys.is_empty() {
                self.replace_top(k);
            }
        }
    }
}

// --- In-memory streams (live sessions; fetching and merging are in crate::live) ---
impl Experiment {
    /// An experiment over compiled traces whose streams arrive in memory: it starts
    /// without streams; add them with [`Experiment::add_memory_stream`].
    pub fn from_memory(traces: Vec<CtfTrace>) -> Result<Experiment, TraceError> {
        Self::from_traces(traces.into_iter().map(|t| (t.dir.clone(), t)).collect())
    }

    /// Adds an in-memory stream of trace `trace`; returns its stream index.
    pub fn add_memory_stream(&mut self, trace: usize, name: &str) -> Result<usize, TraceError> {
        let t = self.traces.get(trace).ok_or_else(|| TraceError::Metadata {
            path: PathBuf::from(name),
            reason: format!("no trace #{trace} in the experiment"),
        })?;
        let rank = self
            .cursor_keys
            .iter()
            .filter(|k| k.0 as usize == trace)
            .count();
        self.cursors.push(Cursor::in_memory(t, name)?);
        self.cursor_keys.push((trace as u32, rank as u32));
        self.apply_filter(self.cursors.len() - 1);
        Ok(self.cursors.len() - 1)
    }

    /// Adds trace `t` (compiled from metadata received live) after the others, with
    /// no stream yet; its classes get ids after every class known so far. Returns its
    /// trace index, for [`Experiment::add_memory_stream`].
    pub fn add_memory_trace(&mut self, t: CtfTrace) -> usize {
        let root = t.dir.clone();
        self.push_trace(&root, t)
    }

    /// Appends one whole packet to in-memory stream `stream`.
    pub fn feed_packet(&mut self, stream: usize, packet: &[u8]) {
        self.cursors[stream].feed_packet(packet);
    }

    /// Moves stream `stream` to its next event: `Ok(Some(ns))` (experiment time), or
    /// `Ok(None)` when the packets fed so far are all read.
    pub fn advance_stream(&mut self, stream: usize) -> Result<Option<i64>, TraceError> {
        let ti = self.cursor_keys[stream].0 as usize;
        let c = &mut self.cursors[stream];
        if c.advance(&self.traces[ti])? {
            Ok(Some(self.time_transforms.apply(ti, c.cur.ns)))
        } else {
            Ok(None)
        }
    }

    /// Calls `f` with the event stream `stream` stands on (after `advance_stream`
    /// returned `Some`).
    pub fn visit_stream(
        &self,
        stream: usize,
        f: &mut dyn FnMut(&Event<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let ti = self.cursor_keys[stream].0 as usize;
        let cursor = &self.cursors[stream];
        let class = match (cursor.cur.lost, self.grown.get(&ti)) {
            (None, Some((map, _))) => ClassId(map[cursor.cur.class as usize]),
            (Some(_), Some((_, lost))) => *lost,
            (None, None) => ClassId(self.class_base[ti] + cursor.cur.class),
            (Some(_), None) => ClassId(self.class_base[ti] + self.traces[ti].classes.len() as u32),
        };
        let ev = Event {
            exp_fields: &self.fields,
            cursor,
            data: cursor.data(),
            trace: &self.traces[ti],
            class,
            trace_index: ti,
            ns: self.time_transforms.apply(ti, cursor.cur.ns),
        };
        f(&ev)
    }
}

// --- Growing metadata (live sessions whose tracer adds event classes) ---
impl Experiment {
    /// Replaces trace `trace`'s compiled metadata by `grown`, compiled from a longer
    /// metadata text of the same trace. Every class known so far keeps its id; classes
    /// that are new get ids after all existing ones (returned, in order). Fails, and
    /// changes nothing, when a known class or stream class changed or disappeared.
    pub fn grow_trace(
        &mut self,
        trace: usize,
        grown: CtfTrace,
    ) -> Result<Vec<ClassId>, TraceError> {
        let bad = |reason: String| TraceError::Metadata {
            path: grown.metadata_path.clone(),
            reason,
        };
        let old = self
            .traces
            .get(trace)
            .ok_or_else(|| bad(format!("no trace #{trace} in the experiment")))?;
        for (si, s) in old.streams.iter().enumerate() {
            if grown.streams.get(si).map(|g| g.id) != Some(s.id) {
                return Err(bad(format!(
                    "stream class {} changed or disappeared in the new metadata",
                    s.id
                )));
            }
        }
        // Global class of each old local class.
        let old_global: Vec<u32> = match self.grown.get(&trace) {
            Some((map, _)) => map.clone(),
            None => (0..old.classes.len() as u32)
                .map(|k| self.class_base[trace] + k)
                .collect(),
        };
        let lost = match self.grown.get(&trace) {
            Some((_, l)) => *l,
            None => ClassId(self.class_base[trace] + old.classes.len() as u32),
        };
        let mut map = Vec::with_capacity(grown.classes.len());
        let mut added = Vec::new();
        let mut matched = 0;
        let mut next = self.classes.len() as u32;
        for g in &grown.classes {
            let found = old
                .classes
                .iter()
                .position(|o| o.stream == g.stream && o.id == g.id);
            match found {
                Some(k) if old.classes[k].name == g.name => {
                    map.push(old_global[k]);
                    matched += 1;
                }
                Some(k) => {
                    return Err(bad(format!(
                        "event class {} was {:?} and is now {:?}",
                        g.id, old.classes[k].name, g.name
                    )))
                }
                None => {
                    map.push(next);
                    added.push(ClassId(next));
                    next += 1;
                }
            }
        }
        if matched != old.classes.len() {
            return Err(bad("event classes disappeared from the new metadata".into()));
        }
        for (li, &id) in map.iter().enumerate() {
            if id as usize >= self.classes.len() {
                let e = class_entry(&grown, li, ClassId(id), trace, &mut self.fields);
                self.classes.push(e);
            }
        }
        // Cursors decode with the new layouts: their slot table must fit every class.
        for (ci, c) in self.cursors.iter_mut().enumerate() {
            if self.cursor_keys[ci].0 as usize == trace && c.m.slots.len() < grown.nslots {
                c.m.slots.resize(grown.nslots, Slot::default());
            }
        }
        self.grown.insert(trace, (map, lost));
        self.traces[trace] = grown;
        // Local class numbers of this trace now go through the growth map.
        for ci in 0..self.cursors.len() {
            if self.cursor_keys[ci].0 as usize == trace {
                self.apply_filter(ci);
            }
        }
        Ok(added)
    }
}

impl Event<'_> {
    /// The event's class name and its fields (Trace Compass names, handles), as
    /// [`Experiment::class_name`] and [`Experiment::field_handle`] give them: for a
    /// consumer that meets a class added while it holds no `&Experiment` (live).
    /// Costs a scan of every field of the experiment: call it once per new class.
    pub fn class_description(&self) -> (String, Vec<(String, FieldHandle)>) {
        let handles = self
            .exp_fields
            .iter()
            .enumerate()
            .filter(|(_, d)| d.class == self.class)
            .map(|(i, _)| FieldHandle(i as u32));
        if self.cursor.cur.lost.is_some() {
            let names = [LOST_EVENTS_FIELD, LOST_DURATION_FIELD].map(String::from);
            return (
                LOST_EVENT_NAME.to_string(),
                names.into_iter().zip(handles).collect(),
            );
        }
        let Some(cl) = self.trace.classes.get(self.cursor.cur.class as usize) else {
            return (String::new(), Vec::new());
        };
        // The order class_entry gave the handles in.
        let mut named = Vec::new();
        let sc_tree = &self.trace.streams[cl.stream].stream_context_tree;
        collect_names(sc_tree, "context.", false, &mut named);
        collect_names(&cl.context_tree, "context.", false, &mut named);
        collect_names(&cl.payload_tree, "", !self.trace.metadata.ctf2, &mut named);
        let fields = named.into_iter().map(|(n, _)| n).zip(handles).collect();
        (cl.name.clone(), fields)
    }
}

/// The experiment's entry (name, Trace Compass field names and handles) for local
/// class `li` of `t`, given global id `id`; appends its field descriptions to `fields`.
fn class_entry(
    t: &CtfTrace,
    li: usize,
    id: ClassId,
    ti: usize,
    fields: &mut Vec<FieldDesc>,
) -> ClassEntry {
    let cl = &t.classes[li];
    let mut named = Vec::new();
    let strip = !t.metadata.ctf2;
    let sc_tree = &t.streams[cl.stream].stream_context_tree;
    collect_names(sc_tree, "context.", false, &mut named);
    collect_names(&cl.context_tree, "context.", false, &mut named);
    collect_names(&cl.payload_tree, "", strip, &mut named);
    let mut fl = Vec::new();
    for (n, slots) in named {
        let access = match cl.slots[slots[0] as usize].kind {
            SlotKind::Int { .. } => Access::Int,
            SlotKind::Str | SlotKind::Text => Access::Text,
            _ => Access::Other,
        };
        let first = slots[0];
        let kind = match (slots.as_slice(), cl.static_slots.get(slots[0] as usize)) {
            ([_], Some(Some((scope, field)))) => FieldKind::Static {
                scope: *scope,
                field: *field,
            },
            ([s], _) => FieldKind::Slot(*s),
            _ => FieldKind::AnyOf(slots),
        };
        fields.push(FieldDesc {
            class: id,
            slot: first,
            fast: if access == Access::Int {
                FastInt::of(&kind)
            } else {
                FastInt::default()
            },
            kind,
            access,
        });
        fl.push((n, FieldHandle(fields.len() as u32 - 1)));
    }
    ClassEntry {
        trace: ti,
        name: cl.name.clone(),
        fields: fl,
    }
}
// --- end of growing metadata ---

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_heap_orders_by_ns_then_cursor() {
        let mut h = MergeHeap::with_capacity(4);
        let input = [
            (5i64, 2usize),
            (-3, 1),
            (5, 0),
            (i64::MAX, 3),
            (i64::MIN, 4),
        ];
        for (ns, c) in input {
            h.push(merge_key(ns, c));
        }
        let mut out = Vec::new();
        while let Some(k) = h.top() {
            out.push((k as u32) as usize);
            h.pop();
        }
        assert_eq!(out, vec![4, 1, 0, 2, 3]);
        assert_eq!(key_ns(merge_key(-3, 7)), -3);
        assert_eq!(key_ns(merge_key(i64::MIN, 0)), i64::MIN);
        let mut h = MergeHeap::with_capacity(2);
        h.push(merge_key(10, 0));
        h.push(merge_key(20, 1));
        h.replace_top(merge_key(30, 0));
        assert_eq!(h.top().map(|k| k as u32), Some(1));
    }
}
