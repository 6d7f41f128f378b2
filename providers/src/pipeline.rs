//! The build pipeline: one pass over an [`EventSource`] feeds several providers, each
//! into its own state system.
//!
//! As in Trace Compass, reading and state building run on separate threads: the
//! *reader* decodes events and copies only the fields the providers subscribed to
//! into reusable `Batch`es; one *builder* thread per analysis hands them to its
//! provider, which writes state changes into its state system (the history-tree
//! writer runs inline there; it is much faster than providers). Independent analyses
//! thus share one read of the trace and run in parallel. Batches go back to the
//! reader for reuse once every builder is done with them, so the steady state
//! allocates nothing per event.
//!
//! A source never looks a field up by name per event: the pipeline asks each
//! provider, once per event class, which fields it needs ([`StateProvider::subscribe`])
//! and resolves those names to the source's own [`FieldKey`]s before the first event.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sht::handoff;
use sht::{
    AttributeTree, HtConfig, Interval, Quark, QuarkSet, StateHistoryBackend, StateSystem,
    StateSystemBuilder, StateSystemQuerier, TimeCondition,
};

use crate::{EventFields, ProviderError, StateProvider, TraceInfo};

/// A source's own, pre-resolved reference to a field of one event class.
pub type FieldKey = u64;

/// Errors of an event source (reading a trace), boxed so sources keep their own types.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// One decoded event as the reader thread sees it.
pub trait SourceEvent {
    /// Index into [`EventSource::class_names`], or [`IDLE_CLASS`] for [`Idle`].
    fn class(&self) -> u32;
    /// Nanoseconds.
    fn timestamp(&self) -> i64;
    fn cpu(&self) -> Option<u32>;
    /// An integer (or enumeration) field.
    fn int(&self, key: FieldKey) -> Option<i64>;
    /// A string (or text array) field.
    fn string(&self, key: FieldKey) -> Option<&str>;
    /// In an experiment, the index of the trace the event comes from (see
    /// [`TraceInfo::hosts`]).
    fn trace_index(&self) -> usize {
        0
    }
    /// For an event of a class the source added during the run (a live session's
    /// metadata grew): the class name and its fields' keys by name, so that the
    /// pipeline subscribes the analyses to it. `None`: the class is not planned.
    fn class_description(&self) -> Option<(String, Vec<(String, FieldKey)>)> {
        None
    }
}

/// [`SourceEvent::class`] of [`Idle`]: not an event.
pub const IDLE_CLASS: u32 = u32::MAX;

/// Not an event: what a source waiting for input (a live session) hands to `visit`
/// now and then, so that the pipeline passes on the events it holds (queries see
/// them) and can stop a cancelled build that would otherwise wait for the next
/// event. Its time and fields are meaningless.
pub struct Idle;

impl SourceEvent for Idle {
    fn class(&self) -> u32 {
        IDLE_CLASS
    }
    fn timestamp(&self) -> i64 {
        i64::MIN
    }
    fn cpu(&self) -> Option<u32> {
        None
    }
    fn int(&self, _key: FieldKey) -> Option<i64> {
        None
    }
    fn string(&self, _key: FieldKey) -> Option<&str> {
        None
    }
}

/// A state system being built, shared with whoever queries it meanwhile: the
/// builder thread holds the write lock while it handles one batch of events.
pub type SharedStateSystem = Arc<RwLock<StateSystem>>;

/// Called from a builder thread when an analysis's state system is created (at
/// the first event): (analysis index, analysis id, the shared state system).
pub type StateSystemHook<'a> = dyn Fn(usize, &'static str, SharedStateSystem) + Sync + 'a;

/// A time-ordered flow of events: a trace or an experiment.
pub trait EventSource: Send {
    /// What providers check before subscribing.
    fn info(&self) -> TraceInfo;
    /// Names of the event classes, indexed by [`SourceEvent::class`].
    fn class_names(&self) -> Vec<String>;
    /// Resolves a field name of a class once, before the first event.
    fn resolve(&self, class: u32, field: &str) -> Option<FieldKey>;
    /// Amount of input (bytes, or events) for progress; `None` if unknown.
    fn total_work(&self) -> Option<u64> {
        None
    }
    /// Visits every event in time order until the end or until `visit` breaks.
    /// `work_done` is advanced in the units of [`EventSource::total_work`] now and then.
    /// A source that waits for input visits [`Idle`] while it waits (every 100 ms
    /// or so).
    fn run(
        &mut self,
        visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
        work_done: &AtomicU64,
    ) -> Result<(), SourceError>;
    /// What was skipped while reading (damaged streams, ...), for the user.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Where an analysis writes its history.
#[derive(Clone, Debug)]
pub enum Output {
    /// A `.ht` file (written to a temporary name, renamed when complete).
    HistoryTree {
        path: PathBuf,
        block_size: Option<i32>,
        max_children: Option<i32>,
    },
    InMemory,
    /// Keep only the ongoing state (measures providers alone).
    Null,
}

impl Output {
    /// A `.ht` file with Trace Compass's default block size and fan-out.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Output::HistoryTree {
            path: path.into(),
            block_size: None,
            max_children: None,
        }
    }
}

/// One analysis to run in the pass.
pub struct Analysis {
    pub provider: Box<dyn StateProvider>,
    pub output: Output,
}

/// Progress, as the pipeline reports it to a callback about ten times a second.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub events: u64,
    pub work_done: u64,
    pub total_work: Option<u64>,
}

/// Knobs of [`build`].
#[derive(Clone)]
pub struct BuildOptions {
    /// Set to stop the build; the histories being written are discarded.
    pub cancel: Arc<AtomicBool>,
    /// Called from the builder thread.
    pub progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
    /// Events per batch handed from the reader to the builder.
    pub batch_events: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            cancel: Arc::new(AtomicBool::new(false)),
            progress: None,
            batch_events: 4096,
        }
    }
}

/// What one analysis produced.
#[derive(Debug)]
pub struct AnalysisReport {
    pub id: &'static str,
    pub version: i32,
    /// Events handed to this provider.
    pub events: u64,
    pub intervals: u64,
    pub attributes: usize,
    pub path: Option<PathBuf>,
    pub file_size: Option<u64>,
}

/// What the pass did.
#[derive(Debug)]
pub struct BuildReport {
    /// Events read from the source.
    pub events: u64,
    pub start: i64,
    pub end: i64,
    pub elapsed: Duration,
    pub analyses: Vec<AnalysisReport>,
    pub warnings: Vec<String>,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("reading the trace: {0}")]
    Source(SourceError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("{analysis}: creating its history: {source}")]
    Create {
        analysis: String,
        #[source]
        source: sht::Error,
    },
    #[error("the trace has no events")]
    Empty,
    #[error("none of the requested analyses applies: {0}")]
    NothingToDo(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{0} panicked; the histories being built were discarded")]
    Panicked(&'static str),
}

/// Copied field value in a batch.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Absent,
    Int(i64),
    /// Byte range in [`Batch::text`].
    Str(u32, u32),
}

#[derive(Clone, Copy, Debug)]
struct BatchEvent {
    timestamp: i64,
    cpu: u32,
    class: u32,
    first_slot: u32,
    /// [`SourceEvent::trace_index`].
    trace: u32,
}

const NO_CPU: u32 = u32::MAX;

/// Intervals per hand-over to a history-tree writer thread, and hand-overs queued
/// (the writer, faster than a builder, wakes for a quarter of the queue at a time).
/// A queue holds several milliseconds of work: a thread that waits for a core that
/// long (two cores, four threads) does not stall the others.
const WRITER_CHUNK: usize = 4096;
const WRITER_QUEUE: usize = 32;

/// Batches queued for each builder, and how many places a reader that found its
/// queue full waits for before it goes on (one wake-up per run of batches; a
/// builder, the slower stage, is woken by the first batch).
const BATCH_QUEUE: usize = 16;
const BATCH_WAKE: usize = 4;

/// Events with their subscribed fields, copied out of the source.
#[derive(Default)]
struct Batch {
    events: Vec<BatchEvent>,
    slots: Vec<Slot>,
    text: String,
    work_done: u64,
    /// Time of the source's first event (subscribed or not): the history start.
    source_first: Option<i64>,
    /// Classes added during the run, planned before this batch's events.
    new_plans: Vec<(u32, ClassPlan)>,
    /// A request, not events: each builder answers with its analysis's
    /// subscription to this class name.
    subscribe: Option<String>,
}

impl Batch {
    fn clear(&mut self) {
        self.new_plans.clear();
        self.subscribe = None;
        self.events.clear();
        self.slots.clear();
        self.text.clear();
    }
}

/// One provider's interest in one class: its handler and where its slots start in the
/// class's combined field list.
#[derive(Clone, Copy, Debug)]
struct Route {
    analysis: u32,
    handler: u32,
    first: u32,
    len: u32,
}

/// Per event class: the fields to copy and who reads them.
#[derive(Default, Clone, Debug)]
struct ClassPlan {
    keys: Vec<Option<FieldKey>>,
    routes: Vec<Route>,
}

/// The [`EventFields`] view a provider gets of a batch event.
struct SlotView<'a> {
    event: &'a BatchEvent,
    slots: &'a [Slot],
    text: &'a str,
}

impl EventFields for SlotView<'_> {
    fn timestamp(&self) -> i64 {
        self.event.timestamp
    }
    fn cpu(&self) -> Option<u32> {
        (self.event.cpu != NO_CPU).then_some(self.event.cpu)
    }
    fn trace_index(&self) -> usize {
        self.event.trace as usize
    }
    fn int(&self, slot: usize) -> Option<i64> {
        match self.slots.get(slot)? {
            Slot::Int(v) => Some(*v),
            _ => None,
        }
    }
    fn string(&self, slot: usize) -> Option<&str> {
        match self.slots.get(slot)? {
            Slot::Str(a, b) => self.text.get(*a as usize..*b as usize),
            _ => None,
        }
    }
}

/// Counts intervals on their way to the real backend. The count is kept here and
/// published at `finish` (the report reads it after the close): an atomic add per
/// interval cost several percent of a provider's time with the null backend.
struct CountingBackend {
    inner: Box<dyn StateHistoryBackend>,
    count: Arc<AtomicU64>,
    unpublished: u64,
}

impl StateHistoryBackend for CountingBackend {
    fn start_time(&self) -> i64 {
        self.inner.start_time()
    }
    fn end_time(&self) -> i64 {
        self.inner.end_time()
    }
    fn insert(&mut self, interval: Interval) -> sht::Result<()> {
        self.unpublished += 1;
        self.inner.insert(interval)
    }
    fn defers_inserts(&self) -> bool {
        self.inner.defers_inserts()
    }
    fn insert_chunk(&mut self, chunk: &mut sht::ht::chunk::IntervalChunk) -> sht::Result<()> {
        self.unpublished += chunk.len() as u64;
        self.inner.insert_chunk(chunk)
    }
    fn finish(&mut self, end: i64, attributes: &AttributeTree) -> sht::Result<()> {
        let result = self.inner.finish(end, attributes);
        self.count
            .fetch_add(std::mem::take(&mut self.unpublished), Ordering::Relaxed);
        result
    }
    fn query_single(&self, t: i64, quark: Quark) -> sht::Result<Option<Interval>> {
        self.inner.query_single(t, quark)
    }
    fn query_full(&self, t: i64, out: &mut [Interval]) -> sht::Result<()> {
        self.inner.query_full(t, out)
    }
    fn query_range(
        &self,
        quarks: &QuarkSet,
        times: &TimeCondition,
        visit: &mut dyn FnMut(&Interval),
    ) -> sht::Result<()> {
        self.inner.query_range(quarks, times, visit)
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

/// A provider with its state system, created at the first event.
struct Running {
    provider: Box<dyn StateProvider>,
    output: Output,
    ss: Option<SharedStateSystem>,
    intervals: Arc<AtomicU64>,
    events: u64,
}

fn create_state_system(
    run: &Running,
    start: i64,
    intervals: Arc<AtomicU64>,
) -> Result<StateSystem, PipelineError> {
    let inner: Box<dyn StateHistoryBackend> = match &run.output {
        Output::HistoryTree {
            path,
            block_size,
            max_children,
        } => {
            let mut config = HtConfig::new(start, run.provider.version());
            if let Some(b) = block_size {
                config.block_size = *b;
            }
            if let Some(m) = max_children {
                config.max_children = *m;
            }
            let create_error = |source| PipelineError::Create {
                analysis: run.provider.id().to_string(),
                source,
            };
            let tree = sht::HistoryTreeBackend::create(path, config).map_err(create_error)?;
            // Node packing and block writes run on a writer thread, as in Trace Compass.
            Box::new(
                sht::ThreadedBackend::new(Box::new(tree), WRITER_CHUNK, WRITER_QUEUE)
                    .map_err(create_error)?,
            )
        }
        Output::InMemory => Box::new(sht::InMemoryBackend::new(start)),
        Output::Null => Box::new(sht::NullBackend::new(start)),
    };
    Ok(StateSystem::new(Box::new(CountingBackend {
        inner,
        count: intervals,
        unpublished: 0,
    })))
}

/// Creates `run`'s state system and shows it to `hook`.
fn create_shared(
    run: &mut Running,
    index: usize,
    start: i64,
    hook: Option<&StateSystemHook<'_>>,
) -> Result<(), PipelineError> {
    let ss = create_state_system(run, start, Arc::clone(&run.intervals))?;
    let ss = Arc::new(RwLock::new(ss));
    if let Some(hook) = hook {
        hook(index, run.provider.id(), Arc::clone(&ss));
    }
    run.ss = Some(ss);
    Ok(())
}

fn ensure_created(
    runs: &mut [Running],
    start: i64,
    hook: Option<&StateSystemHook<'_>>,
) -> Result<(), PipelineError> {
    for (index, run) in runs.iter_mut().enumerate() {
        if run.ss.is_none() {
            create_shared(run, index, start, hook)?;
        }
    }
    Ok(())
}

/// (event name, field name) pairs a provider asked for that the source lacks.
type MissingFields = Vec<(String, &'static str)>;

/// Subscribes every provider to every class and resolves the fields.
fn plan(source: &dyn EventSource, runs: &mut [Running]) -> (Vec<ClassPlan>, Vec<MissingFields>) {
    let names = source.class_names();
    let mut plans = vec![ClassPlan::default(); names.len()];
    let mut missing = vec![MissingFields::new(); runs.len()];
    for (class, name) in names.iter().enumerate() {
        let plan = &mut plans[class];
        for (a, run) in runs.iter_mut().enumerate() {
            let Some(sub) = run.provider.subscribe(name) else {
                continue;
            };
            let first = plan.keys.len() as u32;
            for field in &sub.fields {
                let key = source.resolve(class as u32, field);
                if key.is_none() {
                    missing[a].push((name.clone(), *field));
                }
                plan.keys.push(key);
            }
            plan.routes.push(Route {
                analysis: a as u32,
                handler: sub.handler,
                first,
                len: sub.fields.len() as u32,
            });
        }
    }
    (plans, missing)
}

/// Plans a class the source added during the run: asks every builder for its
/// analysis's subscription to `name` (builders answer in stream order, after the
/// batches sent before) and resolves the fields from `fields`. A builder that has
/// stopped (its analysis failed) is not waited for; missing fields read as absent.
fn plan_new_class(
    name: &str,
    fields: &[(String, FieldKey)],
    txs: &[handoff::Sender<Arc<Batch>>],
    sub_rx: &mpsc::Receiver<(u32, Option<crate::Subscription>)>,
) -> ClassPlan {
    let request = Arc::new(Batch {
        subscribe: Some(name.to_string()),
        ..Batch::default()
    });
    let mut waiting: Vec<u32> = Vec::new();
    for (a, tx) in txs.iter().enumerate() {
        if tx.send_now(Arc::clone(&request)).is_ok() {
            waiting.push(a as u32);
        }
    }
    let mut subs: Vec<(u32, crate::Subscription)> = Vec::new();
    while !waiting.is_empty() {
        match sub_rx.recv_timeout(Duration::from_millis(200)) {
            Ok((a, sub)) => {
                waiting.retain(|&w| w != a);
                if let Some(sub) = sub {
                    subs.push((a, sub));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // A builder that failed with the request queued never answers: an
                // empty batch finds out whether it is still there.
                waiting.retain(|&a| {
                    !matches!(
                        txs[a as usize].try_send(Arc::new(Batch::default())),
                        Err(handoff::TrySendError::Disconnected(_))
                    )
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    subs.sort_by_key(|s| s.0);
    let mut plan = ClassPlan::default();
    for (a, sub) in subs {
        let first = plan.keys.len() as u32;
        for f in &sub.fields {
            plan.keys
                .push(fields.iter().find(|(n, _)| n == f).map(|(_, k)| *k));
        }
        plan.routes.push(Route {
            analysis: a,
            handler: sub.handler,
            first,
            len: sub.fields.len() as u32,
        });
    }
    plan
}

/// One analysis's builder thread: handles every batch's events routed to it.
#[allow(clippy::too_many_arguments)]
fn run_builder(
    run: &mut Running,
    index: u32,
    rx: handoff::Receiver<Arc<Batch>>,
    plans: &[ClassPlan],
    sub_tx: &mpsc::Sender<(u32, Option<crate::Subscription>)>,
    cancel: &AtomicBool,
    progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
    total_work: Option<u64>,
    empty_tx: &mpsc::Sender<Batch>,
    hook: Option<&StateSystemHook<'_>>,
) -> Result<u64, PipelineError> {
    let mut handled = 0u64;
    let mut last_report = Instant::now();
    // Grows when the source adds classes during the run.
    let mut plans = plans.to_vec();
    for batch in rx.iter() {
        if cancel.load(Ordering::Relaxed) {
            return Err(PipelineError::Cancelled);
        }
        if let Some(name) = &batch.subscribe {
            let _ = sub_tx.send((index, run.provider.subscribe(name)));
            continue;
        }
        for (c, p) in &batch.new_plans {
            let c = *c as usize;
            if plans.len() <= c {
                plans.resize(c + 1, ClassPlan::default());
            }
            plans[c] = p.clone();
        }
        if let (Some(first), None) = (batch.source_first, &run.ss) {
            create_shared(run, index as usize, first, hook)?;
        }
        // One lock per batch, not per event: queries wait for one batch at most.
        let mut guard = run
            .ss
            .as_ref()
            .map(|ss| ss.write().unwrap_or_else(|e| e.into_inner()));
        for ev in &batch.events {
            let plan = &plans[ev.class as usize];
            for route in plan.routes.iter().filter(|r| r.analysis == index) {
                let first = ev.first_slot as usize + route.first as usize;
                let view = SlotView {
                    event: ev,
                    slots: &batch.slots[first..first + route.len as usize],
                    text: &batch.text,
                };
                let ss = guard.as_deref_mut().expect("created at the first event");
                run.events += 1;
                run.provider
                    .handle(route.handler, &view, ss)
                    .map_err(|source| ProviderError::State {
                        analysis: run.provider.id().to_string(),
                        timestamp: ev.timestamp,
                        source,
                    })?;
            }
        }
        // Queries see the input read so far, even where nothing changed.
        if let (Some(ss), Some(last)) = (guard.as_deref_mut(), batch.events.last()) {
            ss.advance_end(last.timestamp);
        }
        drop(guard);
        handled += batch.events.len() as u64;
        if let Some(cb) = &progress {
            if last_report.elapsed() >= Duration::from_millis(100) {
                last_report = Instant::now();
                cb(Progress {
                    events: handled,
                    work_done: batch.work_done,
                    total_work,
                });
            }
        }
        // The last builder done with a batch gives it back to the reader.
        if let Some(mut batch) = Arc::into_inner(batch) {
            batch.clear();
            let _ = empty_tx.send(batch);
        }
    }
    Ok(handled)
}

/// Runs `analyses` over `source` in one pass. On success every history is closed at
/// the last event's time (and `.ht` files renamed into place); on failure or
/// cancellation the partial files are removed.
pub fn build(
    source: &mut dyn EventSource,
    analyses: Vec<Analysis>,
    options: &BuildOptions,
) -> Result<(BuildReport, Vec<StateSystem>), PipelineError> {
    let (report, shared) = build_shared(source, analyses, options, None)?;
    let systems = shared
        .into_iter()
        .map(|ss| match Arc::try_unwrap(ss) {
            Ok(lock) => lock.into_inner().unwrap_or_else(|e| e.into_inner()),
            Err(_) => unreachable!("without a hook, the pipeline alone held the state systems"),
        })
        .collect();
    Ok((report, systems))
}

/// [`build`], with each state system shown to `hook` as soon as it is created
/// (at the first event), so that it can be queried while it is built: every
/// query sees the history up to the last batch of events handled (its
/// `current_end_time`). The same state systems, closed, are returned. On
/// failure or cancellation the partial files are removed once the hook's copies
/// are dropped too.
pub fn build_shared(
    source: &mut dyn EventSource,
    analyses: Vec<Analysis>,
    options: &BuildOptions,
    hook: Option<&StateSystemHook<'_>>,
) -> Result<(BuildReport, Vec<SharedStateSystem>), PipelineError> {
    let began = Instant::now();
    let info = source.info();
    let mut runs = Vec::new();
    let mut refused = Vec::new();
    for mut a in analyses {
        match a.provider.check_trace(&info) {
            Ok(()) => runs.push(Running {
                provider: a.provider,
                output: a.output,
                ss: None,
                intervals: Arc::new(AtomicU64::new(0)),
                events: 0,
            }),
            Err(e) => refused.push(e),
        }
    }
    if let Some(first) = refused.into_iter().next() {
        // An analysis the user asked for that cannot run is an error, not a silent skip.
        return Err(PipelineError::Provider(first));
    }
    if runs.is_empty() {
        return Err(PipelineError::NothingToDo("no analysis given".into()));
    }
    let (plans, missing) = plan(&*source, &mut runs);
    for (run, missing) in runs.iter().zip(&missing) {
        run.provider.check_subscriptions(missing)?;
    }
    let plans_len = runs.len();
    let total_work = source.total_work();
    let work_done = AtomicU64::new(0);
    let batch_events = options.batch_events.max(1);

    // One builder thread per analysis: independent analyses share one read of the
    // trace and use as many cores as there are analyses (plus the reader's).
    let mut full_txs = Vec::with_capacity(runs.len());
    let mut full_rxs = Vec::with_capacity(runs.len());
    for _ in 0..runs.len() {
        let (tx, rx) = handoff::channel::<Arc<Batch>>(BATCH_QUEUE, 1, BATCH_WAKE);
        full_txs.push(tx);
        full_rxs.push(rx);
    }
    let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
    let (sub_tx, sub_rx) = mpsc::channel::<(u32, Option<crate::Subscription>)>();
    for _ in 0..6 {
        let _ = empty_tx.send(Batch::default());
    }
    let cancel = &options.cancel;
    let reborrowed: &mut dyn EventSource = &mut *source;

    let (read_result, build_results, returned) = std::thread::scope(|scope| {
        let plans = &plans;
        let work_done = &work_done;
        let builder_txs = full_txs.clone();
        // Named, for profilers and `top -H`.
        let named = |name: &str| std::thread::Builder::new().name(name.into());
        let read = move || {
            // Builders are the slower stage: they get a core first.
            handoff::lower_thread_priority(sht::threaded::SIDE_NICE);
            let mut local_plans = plans.clone();
            // Classes added during the run may first appear in any order (a trace
            // added live brings many): which ones have a plan.
            let mut planned = vec![true; plans.len()];
            let mut batch = empty_rx.recv().unwrap_or_default();
            let mut stopped = false;
            let mut read = 0u64;
            let mut first: Option<i64> = None;
            let mut last = i64::MIN;
            let source = reborrowed;
            // `now`: wake builders waiting for a run of batches (the source pauses).
            let send = |full: Batch, now: bool| -> bool {
                let full = Arc::new(full);
                full_txs.iter().all(|tx| {
                    if now {
                        tx.send_now(Arc::clone(&full)).is_ok()
                    } else {
                        tx.send(Arc::clone(&full)).is_ok()
                    }
                })
            };
            let result = source.run(
                &mut |ev| {
                    let class = ev.class();
                    if class == IDLE_CLASS {
                        // The source waits: what was read goes to the builders now.
                        if cancel.load(Ordering::Relaxed) {
                            stopped = true;
                            return ControlFlow::Break(());
                        }
                        if !batch.events.is_empty() {
                            batch.work_done = work_done.load(Ordering::Relaxed);
                            let next = empty_rx.try_recv().unwrap_or_default();
                            if !send(std::mem::replace(&mut batch, next), true) {
                                stopped = true;
                                return ControlFlow::Break(());
                            }
                        }
                        return ControlFlow::Continue(());
                    }
                    read += 1;
                    let t = ev.timestamp();
                    if first.is_none() {
                        first = Some(t);
                    }
                    last = last.max(t);
                    if !planned.get(class as usize).copied().unwrap_or(false) {
                        if let Some((name, fields)) = ev.class_description() {
                            let plan = plan_new_class(&name, &fields, &builder_txs, &sub_rx);
                            let n = local_plans.len().max(class as usize + 1);
                            local_plans.resize(n, ClassPlan::default());
                            planned.resize(n, false);
                            local_plans[class as usize] = plan.clone();
                            planned[class as usize] = true;
                            batch.new_plans.push((class, plan));
                        }
                    }
                    let Some(plan) = local_plans.get(class as usize) else {
                        return ControlFlow::Continue(());
                    };
                    if plan.routes.is_empty() {
                        return ControlFlow::Continue(());
                    }
                    batch.source_first = first;
                    batch.events.push(BatchEvent {
                        timestamp: t,
                        cpu: ev.cpu().unwrap_or(NO_CPU),
                        class,
                        first_slot: batch.slots.len() as u32,
                        trace: ev.trace_index() as u32,
                    });
                    for key in &plan.keys {
                        let slot = match key {
                            None => Slot::Absent,
                            Some(k) => match ev.int(*k) {
                                Some(v) => Slot::Int(v),
                                None => match ev.string(*k) {
                                    Some(s) => {
                                        let a = batch.text.len() as u32;
                                        batch.text.push_str(s);
                                        Slot::Str(a, batch.text.len() as u32)
                                    }
                                    None => Slot::Absent,
                                },
                            },
                        };
                        batch.slots.push(slot);
                    }
                    if batch.events.len() >= batch_events || batch.text.len() > (1 << 24) {
                        if cancel.load(Ordering::Relaxed) {
                            stopped = true;
                            return ControlFlow::Break(());
                        }
                        batch.work_done = work_done.load(Ordering::Relaxed);
                        // Reuse a batch every builder has finished with, else make one.
                        let next = empty_rx.try_recv().unwrap_or_default();
                        let full = std::mem::replace(&mut batch, next);
                        if !send(full, false) {
                            stopped = true;
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                },
                work_done,
            );
            if !stopped && !batch.events.is_empty() {
                batch.work_done = work_done.load(Ordering::Relaxed);
                send(batch, true);
            }
            drop(full_txs);
            result.map(|()| (read, first.map(|f| (f, last))))
        };
        let reader = named("sextant-read")
            .spawn_scoped(scope, read)
            .expect("starting the reader thread");

        let builders: Vec<_> = runs
            .drain(..)
            .zip(full_rxs)
            .enumerate()
            .map(|(index, (mut run, rx))| {
                let empty_tx = empty_tx.clone();
                let sub_tx = sub_tx.clone();
                // The first analysis reports progress for all (they advance together).
                let progress = if index == 0 {
                    options.progress.clone()
                } else {
                    None
                };
                named("sextant-build")
                    .spawn_scoped(scope, move || {
                        let result = run_builder(
                            &mut run,
                            index as u32,
                            rx,
                            plans,
                            &sub_tx,
                            cancel,
                            progress,
                            total_work,
                            &empty_tx,
                            hook,
                        );
                        (run, result)
                    })
                    // As `scope.spawn` does: no thread, no build.
                    .expect("starting a builder thread")
            })
            .collect();
        drop(empty_tx);
        let mut returned = Vec::new();
        let mut results = Vec::new();
        for builder in builders {
            match builder.join() {
                Ok((run, result)) => {
                    returned.push(run);
                    results.push(result);
                }
                Err(_) => results.push(Err(PipelineError::Panicked("a provider"))),
            }
        }
        // A failed builder dropped its receiver, so the reader stopped at its next send.
        let read = reader
            .join()
            .unwrap_or_else(|_| Err("the reader thread panicked".into()));
        (read, results, returned)
    });
    let mut runs = returned;
    let mut build_result = Ok(());
    for r in build_results {
        if let Err(e) = r {
            // The first real error explains the others (which see a closed channel).
            if build_result.is_ok() {
                build_result = Err(e);
            }
        }
    }

    if cancel.load(Ordering::Relaxed) {
        return Err(PipelineError::Cancelled);
    }
    let (events, range) = read_result.map_err(PipelineError::Source)?;
    build_result?;
    if runs.len() != plans_len {
        return Err(PipelineError::Panicked("a provider"));
    }
    let Some((start, end)) = range else {
        return Err(PipelineError::Empty);
    };
    // No subscribed event at all: the histories still span the trace.
    ensure_created(&mut runs, start, hook)?;

    let mut reports = Vec::new();
    let mut systems = Vec::new();
    let mut warnings = source.warnings();
    for mut run in runs {
        let shared = run.ss.take().expect("created at the first event");
        let mut ss = shared.write().unwrap_or_else(|e| e.into_inner());
        run.provider
            .finish(&mut *ss)
            .map_err(|source| ProviderError::State {
                analysis: run.provider.id().to_string(),
                timestamp: end,
                source,
            })?;
        let id = run.provider.id();
        warnings.extend(
            run.provider
                .warnings()
                .into_iter()
                .map(|w| format!("{id}: {w}")),
        );
        ss.close(end).map_err(|source| ProviderError::State {
            analysis: run.provider.id().to_string(),
            timestamp: end,
            source,
        })?;
        let path = match &run.output {
            Output::HistoryTree { path, .. } => Some(path.clone()),
            _ => None,
        };
        let file_size = path
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len());
        reports.push(AnalysisReport {
            id: run.provider.id(),
            version: run.provider.version(),
            events: run.events,
            intervals: run.intervals.load(Ordering::Relaxed),
            attributes: ss.attribute_count(),
            path,
            file_size,
        });
        drop(ss);
        systems.push(shared);
    }
    Ok((
        BuildReport {
            events,
            start,
            end,
            elapsed: began.elapsed(),
            analyses: reports,
            warnings,
        },
        systems,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subscription;
    use sht::StateValue;
    use std::sync::Mutex;

    /// Events as (class, time, cpu, fields).
    struct VecSource {
        classes: Vec<(&'static str, Vec<&'static str>)>,
        events: Vec<(u32, i64, Option<u32>, Vec<Field>)>,
        fail_after: Option<usize>,
    }

    #[derive(Clone)]
    enum Field {
        I(i64),
        S(&'static str),
    }

    struct VecEvent<'a>(&'a (u32, i64, Option<u32>, Vec<Field>));

    impl SourceEvent for VecEvent<'_> {
        fn class(&self) -> u32 {
            self.0 .0
        }
        fn timestamp(&self) -> i64 {
            self.0 .1
        }
        fn cpu(&self) -> Option<u32> {
            self.0 .2
        }
        fn int(&self, key: FieldKey) -> Option<i64> {
            match self.0 .3.get(key as usize)? {
                Field::I(v) => Some(*v),
                Field::S(_) => None,
            }
        }
        fn string(&self, key: FieldKey) -> Option<&str> {
            match self.0 .3.get(key as usize)? {
                Field::S(s) => Some(s),
                Field::I(_) => None,
            }
        }
    }

    impl EventSource for VecSource {
        fn info(&self) -> TraceInfo {
            TraceInfo {
                name: "vec".into(),
                ..Default::default()
            }
        }
        fn class_names(&self) -> Vec<String> {
            self.classes.iter().map(|c| c.0.to_string()).collect()
        }
        fn resolve(&self, class: u32, field: &str) -> Option<FieldKey> {
            let fields = &self.classes.get(class as usize)?.1;
            fields.iter().position(|f| *f == field).map(|i| i as u64)
        }
        fn total_work(&self) -> Option<u64> {
            Some(self.events.len() as u64)
        }
        fn run(
            &mut self,
            visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
            work_done: &AtomicU64,
        ) -> Result<(), SourceError> {
            for (i, e) in self.events.iter().enumerate() {
                if self.fail_after == Some(i) {
                    return Err(format!("damaged at event {i}").into());
                }
                work_done.store(i as u64 + 1, Ordering::Relaxed);
                if visit(&VecEvent(e)).is_break() {
                    break;
                }
            }
            Ok(())
        }
    }

    /// `switch(next: int, comm: string)` sets `CPUs/<cpu>` = next and `Names/<next>` = comm.
    struct Switcher {
        refuse: bool,
    }

    impl StateProvider for Switcher {
        fn id(&self) -> &'static str {
            "test.switcher"
        }
        fn version(&self) -> i32 {
            7
        }
        fn check_trace(&mut self, _: &TraceInfo) -> Result<(), ProviderError> {
            if self.refuse {
                return Err(ProviderError::Unsupported {
                    analysis: self.id().into(),
                    what: "not this trace".into(),
                });
            }
            Ok(())
        }
        fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
            (event_name == "switch").then(|| Subscription {
                handler: 3,
                fields: vec!["comm", "missing", "next"],
            })
        }
        fn handle(
            &mut self,
            handler: u32,
            ev: &dyn EventFields,
            ss: &mut dyn StateSystemBuilder,
        ) -> sht::Result<()> {
            assert_eq!(handler, 3);
            assert_eq!(ev.int(1), None, "an unresolved field reads as None");
            assert_eq!(ev.string(1), None);
            let cpu = ev.cpu().unwrap_or(0).to_string();
            let next = ev.int(2).expect("next");
            let q = ss.quark_and_add(&["CPUs", &cpu])?;
            ss.modify(ev.timestamp(), StateValue::Int(next as i32), q)?;
            let q = ss.quark_and_add(&["Names", &next.to_string()])?;
            let comm = ev.string(0).expect("comm").to_string();
            ss.modify(ev.timestamp(), StateValue::String(comm.into()), q)
        }
    }

    fn source() -> VecSource {
        VecSource {
            classes: vec![("other", vec![]), ("switch", vec!["next", "comm"])],
            events: vec![
                (0, 5, None, vec![]),
                (1, 10, Some(0), vec![Field::I(42), Field::S("bash")]),
                (1, 20, Some(1), vec![Field::I(7), Field::S("ls")]),
                (1, 30, Some(0), vec![Field::I(7), Field::S("ls")]),
                (0, 45, None, vec![]),
            ],
            fail_after: None,
        }
    }

    fn switcher() -> Analysis {
        Analysis {
            provider: Box::new(Switcher { refuse: false }),
            output: Output::InMemory,
        }
    }

    #[test]
    fn routes_fields_by_slot_and_spans_the_whole_trace() {
        let mut src = source();
        for batch_events in [1, 2, 4096] {
            let opts = BuildOptions {
                batch_events,
                ..Default::default()
            };
            let (report, systems) = build(&mut src, vec![switcher()], &opts).unwrap();
            assert_eq!(report.events, 5);
            assert_eq!((report.start, report.end), (5, 45));
            assert_eq!(report.analyses[0].events, 3);
            let ss = &systems[0];
            assert_eq!(
                ss.start_time(),
                5,
                "history starts at the first event, subscribed or not"
            );
            assert_eq!(ss.current_end_time(), 45);
            let cpu0 = ss.quark(&["CPUs", "0"]).unwrap();
            let i = ss.query_single(25, cpu0).unwrap();
            assert_eq!(
                (i.start, i.end, i.value.clone()),
                (10, 29, StateValue::Int(42))
            );
            assert_eq!(ss.query_single(45, cpu0).unwrap().value, StateValue::Int(7));
            let name = ss.quark(&["Names", "7"]).unwrap();
            assert_eq!(
                ss.query_single(40, name).unwrap().value,
                StateValue::String("ls".into())
            );
            // CPUs/0: null [5,9], 42 [10,29], 7 [30,45]; CPUs/1: null, 7; Names/42: null,
            // bash; Names/7: null, ls; and one null interval each for CPUs and Names.
            assert_eq!(report.analyses[0].intervals, 11);
            assert_eq!(report.analyses[0].attributes, 6);
        }
    }

    /// [`source`]'s events, with a pause after the first `split`: the source visits
    /// [`Idle`] until `gate` says go (or is dropped), as a live session waits.
    struct GatedSource {
        inner: VecSource,
        split: usize,
        gate: mpsc::Receiver<()>,
    }

    impl EventSource for GatedSource {
        fn info(&self) -> TraceInfo {
            self.inner.info()
        }
        fn class_names(&self) -> Vec<String> {
            self.inner.class_names()
        }
        fn resolve(&self, class: u32, field: &str) -> Option<FieldKey> {
            self.inner.resolve(class, field)
        }
        fn run(
            &mut self,
            visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
            _work_done: &AtomicU64,
        ) -> Result<(), SourceError> {
            for (i, e) in self.inner.events.iter().enumerate() {
                if i == self.split {
                    while let Err(mpsc::RecvTimeoutError::Timeout) =
                        self.gate.recv_timeout(Duration::from_millis(10))
                    {
                        if visit(&Idle).is_break() {
                            return Ok(());
                        }
                    }
                }
                if visit(&VecEvent(e)).is_break() {
                    break;
                }
            }
            Ok(())
        }
    }

    /// Runs `build_shared` on a thread; the state system comes back through the hook.
    #[allow(clippy::type_complexity)]
    fn start_gated(
        output: Output,
        opts: BuildOptions,
    ) -> (
        mpsc::Sender<()>,
        mpsc::Receiver<SharedStateSystem>,
        std::thread::JoinHandle<Result<(BuildReport, Vec<SharedStateSystem>), PipelineError>>,
    ) {
        let (go, gate) = mpsc::channel();
        let (tx, shared) = mpsc::channel();
        let tx = Mutex::new(tx);
        let builder = std::thread::spawn(move || {
            let hook = |index, id, ss| {
                assert_eq!((index, id), (0, "test.switcher"));
                let _ = tx.lock().unwrap().send(ss);
            };
            // At 25, a switch that changes nothing (CPU 1 already runs 7, "ls").
            let mut inner = source();
            inner
                .events
                .insert(3, (1, 25, Some(1), vec![Field::I(7), Field::S("ls")]));
            let mut src = GatedSource {
                inner,
                split: 4,
                gate,
            };
            let analyses = vec![Analysis {
                provider: Box::new(Switcher { refuse: false }),
                output,
            }];
            build_shared(&mut src, analyses, &opts, Some(&hook))
        });
        (go, shared, builder)
    }

    /// Waits until the shared state system reaches `end` (the events before the pause).
    fn wait_for_end(ss: &SharedStateSystem, end: i64) {
        let began = Instant::now();
        while ss.read().unwrap().current_end_time() < end {
            assert!(
                began.elapsed() < Duration::from_secs(20),
                "stuck before {end}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn queries_during_the_build_see_a_prefix_of_the_final_history() {
        let (go, shared, builder) = start_gated(Output::InMemory, BuildOptions::default());
        let live = shared.recv_timeout(Duration::from_secs(20)).unwrap();
        // Events at 5, 10, 20 and 25 were read; the source now waits (visiting
        // Idle), and the batch it holds reaches the builder anyway. The end is the
        // last event read, though nothing changed at 25.
        wait_for_end(&live, 25);
        let (partial_end, partial, tree) = {
            let ss = live.read().unwrap();
            assert!(ss.is_building());
            let end = ss.current_end_time();
            let full: Vec<Vec<Interval>> = (5..=end).map(|t| ss.query_full(t).unwrap()).collect();
            (end, full, ss.attributes().clone())
        };
        assert_eq!(partial_end, 25);
        let cpu1 = tree.quark(sht::ROOT_QUARK, &["CPUs", "1"]).unwrap();
        let ongoing = &partial[25 - 5][cpu1 as usize];
        assert_eq!((ongoing.start, ongoing.end), (20, 25));
        let cpu0 = tree.quark(sht::ROOT_QUARK, &["CPUs", "0"]).unwrap();
        assert_eq!(partial[15 - 5][cpu0 as usize].value, StateValue::Int(42));
        assert!(tree.opt_quark(sht::ROOT_QUARK, &["Names", "7"]) >= 0);
        go.send(()).unwrap();
        let (report, systems) = builder.join().unwrap().unwrap();
        assert_eq!(report.events, 6);
        assert!(
            Arc::ptr_eq(&systems[0], &live),
            "the shared one is returned"
        );
        let ss = live.read().unwrap();
        assert!(!ss.is_building());
        assert_eq!(ss.current_end_time(), 45);
        for (k, row) in partial.iter().enumerate() {
            let t = 5 + k as i64;
            let fin = ss.query_full(t).unwrap();
            for (q, i) in row.iter().enumerate() {
                // Same attribute, same value; an interval that had ended is final.
                assert_eq!(
                    ss.attributes().path(q as Quark).unwrap(),
                    tree.path(q as Quark).unwrap(),
                    "quark {q}"
                );
                assert_eq!(fin[q].value, i.value, "quark {q} at {t}");
                assert_eq!(fin[q].start, i.start, "quark {q} at {t}");
                if i.end < partial_end {
                    assert_eq!(fin[q].end, i.end, "quark {q} at {t}");
                }
            }
        }
    }

    #[test]
    fn cancel_ends_a_build_waiting_for_input() {
        let dir = tempfile::tempdir().unwrap();
        let opts = BuildOptions::default();
        let cancel = Arc::clone(&opts.cancel);
        let (go, shared, builder) = start_gated(Output::file(dir.path().join("s.ht")), opts);
        let live = shared.recv_timeout(Duration::from_secs(20)).unwrap();
        wait_for_end(&live, 25);
        cancel.store(true, Ordering::Relaxed);
        let began = Instant::now();
        let err = builder.join().unwrap().err().expect("cancelled");
        assert!(matches!(err, PipelineError::Cancelled), "{err}");
        assert!(began.elapsed() < Duration::from_secs(10));
        drop((go, live));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "partial files left: {left:?}");
    }

    #[test]
    fn writes_a_history_tree_file_with_the_provider_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.ht");
        let mut src = source();
        let analyses = vec![Analysis {
            provider: Box::new(Switcher { refuse: false }),
            output: Output::file(&path),
        }];
        let (report, _) = build(&mut src, analyses, &BuildOptions::default()).unwrap();
        assert_eq!(
            report.analyses[0].file_size,
            Some(std::fs::metadata(&path).unwrap().len())
        );
        let ss = StateSystem::open(&path, Some(7)).unwrap();
        assert_eq!((ss.start_time(), ss.current_end_time()), (5, 45));
        let q = ss.quark(&["CPUs", "1"]).unwrap();
        assert_eq!(ss.query_single(20, q).unwrap().value, StateValue::Int(7));
    }

    #[test]
    fn source_errors_and_cancellation_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.ht");
        let analyses = || {
            vec![Analysis {
                provider: Box::new(Switcher { refuse: false }),
                output: Output::file(&path),
            }]
        };
        let mut src = source();
        src.fail_after = Some(3);
        let err = build(&mut src, analyses(), &BuildOptions::default())
            .err()
            .expect("the build should fail");
        assert!(err.to_string().contains("damaged at event 3"), "{err}");
        let opts = BuildOptions::default();
        opts.cancel.store(true, Ordering::Relaxed);
        let err = build(&mut source(), analyses(), &opts)
            .err()
            .expect("the build should fail");
        assert!(matches!(err, PipelineError::Cancelled));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "partial files left: {left:?}");
    }

    #[test]
    fn refused_or_empty_inputs_are_errors() {
        let refused = vec![Analysis {
            provider: Box::new(Switcher { refuse: true }),
            output: Output::Null,
        }];
        let err = build(&mut source(), refused, &BuildOptions::default())
            .err()
            .expect("the build should fail");
        assert!(err.to_string().contains("not this trace"), "{err}");
        let mut empty = source();
        empty.events.clear();
        let err = build(&mut empty, vec![switcher()], &BuildOptions::default())
            .err()
            .expect("the build should fail");
        assert!(matches!(err, PipelineError::Empty));
        let err = build(&mut source(), vec![], &BuildOptions::default())
            .err()
            .expect("the build should fail");
        assert!(matches!(err, PipelineError::NothingToDo(_)));
    }

    /// Writes an int before 30 ns and a string after: sht's type check fails.
    struct Bad;
    impl StateProvider for Bad {
        fn id(&self) -> &'static str {
            "test.bad"
        }
        fn version(&self) -> i32 {
            1
        }
        fn check_trace(&mut self, _: &TraceInfo) -> Result<(), ProviderError> {
            Ok(())
        }
        fn subscribe(&mut self, _: &str) -> Option<Subscription> {
            Some(Subscription {
                handler: 0,
                fields: vec![],
            })
        }
        fn handle(
            &mut self,
            _: u32,
            ev: &dyn EventFields,
            ss: &mut dyn StateSystemBuilder,
        ) -> sht::Result<()> {
            let q = ss.quark_and_add(&["a"])?;
            let v = if ev.timestamp() < 30 {
                StateValue::Int(1)
            } else {
                StateValue::String("s".into())
            };
            ss.modify(ev.timestamp(), v, q)
        }
    }
    #[test]
    fn provider_errors_name_the_analysis_and_time() {
        let mut src = source();
        // A string where the provider writes an int: the type check of sht fails.
        src.events
            .push((1, 50, Some(0), vec![Field::I(9), Field::S("x")]));
        let analyses = vec![Analysis {
            provider: Box::new(Bad),
            output: Output::Null,
        }];
        let err = build(&mut src, analyses, &BuildOptions::default())
            .err()
            .expect("the build should fail");
        let text = err.to_string();
        assert!(text.starts_with("test.bad: at 30 ns"), "{text}");
    }

    #[test]
    fn analyses_run_in_parallel_and_fail_together() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.ht"), dir.path().join("b.ht"));
        for batch_events in [1, 3, 4096] {
            let opts = BuildOptions {
                batch_events,
                ..Default::default()
            };
            let analyses = vec![
                Analysis {
                    provider: Box::new(Switcher { refuse: false }),
                    output: Output::file(&a),
                },
                switcher(),
            ];
            let (report, systems) = build(&mut source(), analyses, &opts).unwrap();
            assert_eq!(report.analyses.len(), 2);
            assert_eq!(report.analyses[0].intervals, report.analyses[1].intervals);
            let from_file = StateSystem::open(&a, Some(7)).unwrap();
            let q = systems[1].quark(&["CPUs", "0"]).unwrap();
            for t in [5, 10, 29, 30, 45] {
                assert_eq!(
                    from_file.query_single(t, q).unwrap(),
                    systems[1].query_single(t, q).unwrap()
                );
            }
            std::fs::remove_file(&a).unwrap();
        }
        // One failing analysis fails the build, and no analysis leaves a file.
        let mut src = source();
        src.events
            .push((1, 50, Some(0), vec![Field::I(9), Field::S("x")]));
        let analyses = vec![
            Analysis {
                provider: Box::new(Switcher { refuse: false }),
                output: Output::file(&a),
            },
            Analysis {
                provider: Box::new(Bad),
                output: Output::file(&b),
            },
        ];
        let err = build(&mut src, analyses, &BuildOptions::default())
            .err()
            .expect("the build should fail");
        assert!(err.to_string().starts_with("test.bad: at 30 ns"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "partial files left: {left:?}");
    }
}
