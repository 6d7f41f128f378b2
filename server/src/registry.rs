//! The extension points: how traces are opened into state systems
//! ([`TraceOpener`]) and how outputs are computed from them ([`OutputFactory`],
//! [`OutputProvider`]). The protocol layer only talks to these traits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use sht::{StateSystem, StateSystemQuerier};

use crate::model::{
    AnnotationCategories, AnnotationsModel, Arrow, GenericResponse, OutputDescriptor, StatesModel,
    StyleModel, TreeModel, XyModel,
};
use crate::query::{DataQuery, TooltipQuery, TreeQuery};

/// A state system shared between whoever builds it and the outputs reading it.
pub type SharedStateSystem = Arc<RwLock<StateSystem>>;

/// One state system of a trace, as the outputs see it.
#[derive(Clone)]
pub struct StateSystemHandle {
    /// State system id (Trace Compass: the analysis' state system id).
    pub id: String,
    /// Name of the analysis module that owns it (groups state systems in trees).
    pub module: String,
    pub ss: SharedStateSystem,
    /// Its column index, once the history is finished and indexed.
    pub columns: Arc<crate::columns::Columns>,
}

impl StateSystemHandle {
    pub fn new(id: impl Into<String>, module: impl Into<String>, ss: StateSystem) -> Self {
        StateSystemHandle {
            id: id.into(),
            module: module.into(),
            ss: Arc::new(RwLock::new(ss)),
            columns: Arc::default(),
        }
    }

    /// Read access; a poisoned lock (a builder panicked) still gives the data.
    pub fn read(&self) -> RwLockReadGuard<'_, StateSystem> {
        self.ss.read().unwrap_or_else(|e| e.into_inner())
    }

    /// (start, current end, still building).
    pub fn range(&self) -> (i64, i64, bool) {
        let ss = self.read();
        (ss.start_time(), ss.current_end_time(), ss.is_building())
    }
}

/// Work run on its own thread once the trace is registered (its analyses); it
/// adds state systems with [`Trace::add_state_system`] as they are ready. An error
/// is kept in the trace's `analysisErrors` property.
pub type BackgroundJob = Box<dyn FnOnce(&Trace) -> Result<(), String> + Send>;

/// What a [`TraceOpener`] made of a path.
pub struct OpenedTrace {
    pub nb_events: u64,
    pub properties: BTreeMap<String, String>,
    pub state_systems: Vec<StateSystemHandle>,
    /// Analyses to run in the background (the trace is RUNNING meanwhile).
    pub background: Option<BackgroundJob>,
}

/// Why an opener could not open a path it recognised.
#[derive(Debug, Clone)]
pub struct OpenError(pub String);

/// Turns a server-side path into a trace. Openers are tried in registration order;
/// the first that recognises the path wins.
pub trait TraceOpener: Send + Sync {
    /// The trace type id reported for traces this opener made (and matched by `typeID`).
    fn type_id(&self) -> &str;
    /// `None` if the path is not a trace of this type.
    fn open(&self, path: &Path) -> Option<Result<OpenedTrace, OpenError>>;
}

/// A trace registered with the server.
pub struct Trace {
    pub uuid: String,
    pub name: String,
    pub path: PathBuf,
    pub type_id: String,
    /// Grows while the analyses read the trace (0 before); shared with their
    /// progress callback.
    pub nb_events: Arc<AtomicU64>,
    pub properties: BTreeMap<String, String>,
    /// Live list: analyses may add state systems later.
    pub state_systems: RwLock<Vec<StateSystemHandle>>,
    /// Whether background analyses are still running.
    pub analyses_running: AtomicBool,
    /// What the background analyses could not do.
    pub analysis_errors: Mutex<Vec<String>>,
    /// Analyses that do not apply to this trace, and why (not errors).
    pub analyses_not_run: Mutex<Vec<String>>,
    /// Set when the trace is deleted: its background analyses stop (a live
    /// session stops being followed).
    pub cancel: Arc<AtomicBool>,
}

impl Trace {
    /// Runs `job` (this trace's analyses) on a thread named `thread`, and marks
    /// the analyses finished when it returns. Its error, a panic, or a thread that
    /// cannot start is recorded in the trace's errors: the trace never stays
    /// RUNNING forever.
    pub(crate) fn run_analyses_in_background(
        self: &Arc<Self>,
        thread: String,
        job: impl FnOnce(&Arc<Trace>) -> Result<(), String> + Send + 'static,
    ) {
        let running = self.clone();
        let spawned = std::thread::Builder::new().name(thread).spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&running)))
                .unwrap_or_else(|_| Err("an analysis panicked".into()));
            if let Err(e) = result {
                running.record_error(e);
            }
            running.analyses_running.store(false, Ordering::Release);
        });
        if let Err(e) = spawned {
            self.analyses_running.store(false, Ordering::Release);
            self.record_error(format!("cannot start the analyses: {e}"));
        }
    }

    fn record_error(&self, e: String) {
        self.analysis_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(e);
    }

    /// Publishes a state system (outputs see it at their next request).
    pub fn add_state_system(&self, handle: StateSystemHandle) {
        self.state_systems
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }

    /// Withdraws state systems (a failed pass's), by identity.
    pub fn remove_state_systems(&self, gone: &[SharedStateSystem]) {
        self.state_systems
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|h| !gone.iter().any(|g| Arc::ptr_eq(g, &h.ss)));
    }

    pub fn nb_events(&self) -> u64 {
        self.nb_events.load(Ordering::Relaxed)
    }

    pub fn is_analysing(&self) -> bool {
        self.analyses_running.load(Ordering::Acquire)
    }

    pub fn not_run(&self) -> Vec<String> {
        self.analyses_not_run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn errors(&self) -> Vec<String> {
        self.analysis_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn state_systems(&self) -> Vec<StateSystemHandle> {
        self.state_systems
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// (start, end, still building) over the trace's state systems; (0, 0) if none.
    /// Building while background analyses run.
    pub fn range(&self) -> (i64, i64, bool) {
        let (s, e, b) = merge_ranges(self.state_systems().iter().map(|s| s.range()));
        (s, e, b || self.is_analysing())
    }
}

pub(crate) fn merge_ranges(ranges: impl Iterator<Item = (i64, i64, bool)>) -> (i64, i64, bool) {
    let mut out: Option<(i64, i64, bool)> = None;
    for (s, e, b) in ranges {
        out = Some(match out {
            None => (s, e, b),
            Some((s0, e0, b0)) => (s0.min(s), e0.max(e), b0 || b),
        });
    }
    out.unwrap_or((0, 0, false))
}

/// What an output provider computes from: the experiment's traces (in order).
#[derive(Clone)]
pub struct ExperimentSource {
    pub name: String,
    pub traces: Vec<Arc<Trace>>,
}

impl ExperimentSource {
    /// Every (trace index, state system) pair, in order, as
    /// [`ExperimentSource::trace_state_systems`] serves them.
    pub fn state_systems(&self) -> Vec<(usize, StateSystemHandle)> {
        (0..self.traces.len())
            .flat_map(|i| self.trace_state_systems(i).into_iter().map(move |s| (i, s)))
            .collect()
    }

    /// Trace `index`'s state systems as this experiment serves them: when the
    /// experiment runs its own experiment analyses (the VM analyses over all its
    /// traces, see `analyses::experiment_analyses`), a member trace's
    /// run of them over that trace alone is left out (Trace Compass runs them
    /// per experiment only).
    pub fn trace_state_systems(&self, index: usize) -> Vec<StateSystemHandle> {
        let Some(trace) = self.traces.get(index) else {
            return Vec::new();
        };
        let mut list = trace.state_systems();
        let own = crate::analyses::EXPERIMENT_ANALYSES_TYPE;
        if trace.type_id != own && self.traces.iter().any(|t| t.type_id == own) {
            let ids = crate::analyses::experiment_analysis_ids();
            list.retain(|s| !ids.contains(&s.id.as_str()));
        }
        list
    }
}

/// Provider failures. `Unsupported` → 405 `Analysis cannot run`; `Failed` → a
/// 200 answer with status FAILED and the message.
#[derive(Debug, Clone)]
pub enum ProviderError {
    Unsupported,
    Failed(String),
}

impl From<sht::Error> for ProviderError {
    fn from(e: sht::Error) -> Self {
        ProviderError::Failed(e.to_string())
    }
}

pub type ProviderResult<T> = Result<GenericResponse<T>, ProviderError>;

/// One output of one experiment. Created by an [`OutputFactory`] when the
/// experiment is created and kept for its life, so entry ids can stay stable.
/// Every data method runs on a blocking thread. Defaults: no styles (empty map),
/// no annotations, no arrows, no tooltip, and 405 for trees, states and xy.
pub trait OutputProvider: Send + Sync {
    fn descriptor(&self) -> &OutputDescriptor;

    fn style(&self) -> ProviderResult<StyleModel> {
        Ok(GenericResponse::completed(StyleModel::default()))
    }

    /// `timeGraph|XY|data/{id}/tree`.
    fn tree(&self, _query: &TreeQuery) -> ProviderResult<TreeModel> {
        Err(ProviderError::Unsupported)
    }

    /// `timeGraph/{id}/states`.
    fn states(&self, _query: &DataQuery) -> ProviderResult<StatesModel> {
        Err(ProviderError::Unsupported)
    }

    /// The states answer the server sends: [`Self::states`] unless the output
    /// serves rows from the shared row cache ([`crate::states_cache`]); both
    /// serialize to the same bytes.
    fn states_answer(
        &self,
        query: &DataQuery,
    ) -> ProviderResult<crate::states_cache::StatesAnswer> {
        self.states(query).map(|r| GenericResponse {
            model: r.model.map(Into::into),
            status: r.status,
            status_message: r.status_message,
        })
    }

    /// `timeGraph/{id}/tooltip`: a flat string map.
    fn tooltip(&self, _query: &TooltipQuery) -> ProviderResult<BTreeMap<String, String>> {
        Ok(GenericResponse::completed(BTreeMap::new()))
    }

    /// `timeGraph/{id}/arrows`.
    fn arrows(&self, _query: &DataQuery) -> ProviderResult<Vec<Arrow>> {
        Ok(GenericResponse::completed(Vec::new()))
    }

    /// `XY/{id}/xy`.
    fn xy(&self, _query: &DataQuery) -> ProviderResult<XyModel> {
        Err(ProviderError::Unsupported)
    }

    /// `GET /{id}/annotations`.
    fn annotation_categories(
        &self,
        _marker_set: Option<&str>,
    ) -> ProviderResult<AnnotationCategories> {
        Ok(GenericResponse::completed(AnnotationCategories::default()))
    }

    /// `POST /{id}/annotations`.
    fn annotations(&self, _query: &DataQuery) -> ProviderResult<AnnotationsModel> {
        Ok(GenericResponse::completed(AnnotationsModel::default()))
    }
}

/// Makes the outputs of an experiment (none if it does not apply).
pub trait OutputFactory: Send + Sync {
    fn create(&self, experiment: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>>;
}

/// The trace types and output kinds a server knows.
#[derive(Clone, Default)]
pub struct Registry {
    pub openers: Vec<Arc<dyn TraceOpener>>,
    pub outputs: Vec<Arc<dyn OutputFactory>>,
}

impl Registry {
    /// Empty: no trace type, no output.
    pub fn empty() -> Self {
        Self::default()
    }

    /// What this session's server serves: `.ht` files and directories of them,
    /// with the state system explorer and the state system XY output.
    pub fn with_defaults() -> Self {
        let mut r = Self::empty();
        r.add_opener(Arc::new(HtOpener));
        r.add_outputs(Arc::new(crate::explorer::ExplorerFactory));
        r.add_outputs(Arc::new(crate::ssxy::StateSystemXyFactory));
        r
    }

    /// What `sextant serve` serves: [`Registry::with_defaults`], plus traces read
    /// from events (CTF, XML stub) whose analyses run in the background into the
    /// configured data directory, and the kernel, disk and XML views.
    pub fn for_config(config: &crate::ServeConfig) -> Self {
        let mut r = Self::with_defaults();
        let data_dir = config
            .data_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("sextant-serve"));
        r.add_opener(Arc::new(crate::analyses::EventTraceOpener {
            data_dir,
            xml_files: config.xml_files.clone(),
        }));
        r.add_outputs(Arc::new(crate::kernel_views::KernelViewsFactory));
        r.add_outputs(Arc::new(crate::cpu_usage::CpuUsageFactory));
        // Disk I/O, VM, OpenStack, QEMU migration and OvS views.
        r.add_outputs(Arc::new(crate::analysis_views::factory()));
        // Unreadable files were refused when the server started (`run` checks them).
        if let Ok(views) = crate::xml_views::XmlViewsFactory::new(&config.xml_files) {
            r.add_outputs(Arc::new(views));
        }
        r
    }

    pub fn add_opener(&mut self, opener: Arc<dyn TraceOpener>) -> &mut Self {
        self.openers.push(opener);
        self
    }

    pub fn add_outputs(&mut self, factory: Arc<dyn OutputFactory>) -> &mut Self {
        self.outputs.push(factory);
        self
    }
}

/// Trace type of [`HtOpener`].
pub const HT_TRACE_TYPE: &str = "org.sextant.ht";

/// A `.ht` file is a trace with that one state system (id = file stem); a
/// directory with `.ht` files is a trace with one state system per file.
pub struct HtOpener;

fn is_ht(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "ht")
}

fn open_ht(path: &Path) -> Result<StateSystemHandle, OpenError> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ss =
        StateSystem::open(path, None).map_err(|e| OpenError(format!("{}: {e}", path.display())))?;
    let handle = StateSystemHandle::new(stem.clone(), stem, ss);
    crate::columns::schedule(&handle.columns, path);
    Ok(handle)
}

impl TraceOpener for HtOpener {
    fn type_id(&self) -> &str {
        HT_TRACE_TYPE
    }

    fn open(&self, path: &Path) -> Option<Result<OpenedTrace, OpenError>> {
        let files: Vec<PathBuf> = if is_ht(path) {
            vec![path.to_path_buf()]
        } else if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_ht(p))
                .collect();
            files.sort();
            files
        } else {
            Vec::new()
        };
        if files.is_empty() {
            return None;
        }
        Some(
            files
                .iter()
                .map(|f| open_ht(f))
                .collect::<Result<Vec<_>, _>>()
                .map(|state_systems| OpenedTrace {
                    nb_events: 0,
                    properties: BTreeMap::new(),
                    state_systems,
                    background: None,
                }),
        )
    }
}
