//! The server's traces and experiments: opening, identity (name-based UUIDs),
//! idempotence and name clashes (tsp.md §4), and their JSON objects.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::admission::Admission;
use crate::error::ApiError;
use crate::registry::{ExperimentSource, OutputProvider, Registry, Trace};
use crate::ServeConfig;

/// An experiment: traces viewed together, and the outputs computed over them.
pub struct Experiment {
    pub uuid: String,
    pub name: String,
    pub source: ExperimentSource,
    pub outputs: Vec<Arc<dyn OutputProvider>>,
}

impl Experiment {
    pub fn output(&self, id: &str) -> Option<Arc<dyn OutputProvider>> {
        self.outputs
            .iter()
            .find(|o| o.descriptor().id == id)
            .cloned()
    }

    fn trace_uuids(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .source
            .traces
            .iter()
            .filter(|t| !is_experiment_analyses(t))
            .map(|t| t.uuid.as_str())
            .collect();
        v.sort_unstable();
        v
    }
}

/// Everything the server holds; shared by all requests.
pub struct Catalog {
    pub config: ServeConfig,
    pub registry: Registry,
    traces: RwLock<Vec<Arc<Trace>>>,
    experiments: RwLock<Vec<Arc<Experiment>>>,
    /// Serialises trace opening and experiment creation (idempotence checks).
    open_lock: Mutex<()>,
    /// The queue in front of states answers.
    pub admission: Admission,
}

/// What [`Catalog::members`] found.
enum Members {
    Existing(Arc<Experiment>),
    New(Vec<Arc<Trace>>),
}

/// Namespace of Sextant's name-based UUIDs (itself a v5 UUID of a fixed name).
fn namespace() -> uuid::Uuid {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"sextant:tsp")
}

/// The trace UUID of a canonical path: the same path always gets the same UUID.
pub fn trace_uuid(canonical: &Path) -> String {
    let name = format!("trace:{}", canonical.to_string_lossy());
    uuid::Uuid::new_v5(&namespace(), name.as_bytes()).to_string()
}

/// The experiment UUID of a name (as Trace Compass: from the name alone).
pub fn experiment_uuid(name: &str) -> String {
    uuid::Uuid::new_v5(&namespace(), format!("experiment:{name}").as_bytes()).to_string()
}

/// The pseudo-trace holding an experiment's own analyses (served with its traces,
/// not listed among them).
fn is_experiment_analyses(t: &Trace) -> bool {
    t.type_id == crate::analyses::EXPERIMENT_ANALYSES_TYPE
}

fn status_name(building: bool) -> &'static str {
    if building {
        "RUNNING"
    } else {
        "COMPLETED"
    }
}

/// The Trace object of tsp.md §4.1 (real values right away).
pub fn trace_json(t: &Trace) -> Value {
    let (start, end, building) = t.range();
    let mut properties = t.properties.clone();
    let errors = t.errors();
    if !errors.is_empty() {
        properties.insert("analysisErrors".into(), errors.join("; "));
    }
    let not_run = t.not_run();
    if !not_run.is_empty() {
        properties.insert("analysesNotRun".into(), not_run.join("; "));
    }
    json!({
        "name": t.name,
        "path": t.path.to_string_lossy(),
        "UUID": t.uuid,
        "nbEvents": t.nb_events(),
        "start": start,
        "end": end,
        "properties": properties,
        "indexingStatus": status_name(building),
    })
}

/// The Experiment object of tsp.md §4.4.
pub fn experiment_json(e: &Experiment) -> Value {
    let mut ranges = Vec::new();
    let mut nb_events = 0u64;
    let mut analysing = false;
    let mut errors = Vec::new();
    let traces: Vec<Value> = e
        .source
        .traces
        .iter()
        .filter_map(|t| {
            if !t.state_systems().is_empty() {
                ranges.push(t.range());
            }
            analysing |= t.is_analysing();
            if is_experiment_analyses(t) {
                // Its events are the traces' events, counted there.
                errors.extend(t.errors());
                return None;
            }
            nb_events += t.nb_events();
            Some(trace_json(t))
        })
        .collect();
    let (start, end, building) = crate::registry::merge_ranges(ranges.into_iter());
    let building = building || analysing;
    let mut value = json!({
        "name": e.name,
        "UUID": e.uuid,
        "nbEvents": nb_events,
        "start": start,
        "end": end,
        "indexingStatus": status_name(building),
        "traces": traces,
    });
    if !errors.is_empty() {
        value["properties"] = json!({ "analysisErrors": errors.join("; ") });
    }
    value
}

/// A trace's name when the client gives none: its file name, or, for `x/ctf`
/// (the layout of our sample traces), `x`, as `sextant build` names it.
fn default_name(path: &Path) -> String {
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    match name_of(path) {
        Some(n) if n == "ctf" => path.parent().and_then(name_of).unwrap_or(n),
        Some(n) => n,
        None => path.to_string_lossy().into_owned(),
    }
}

impl Catalog {
    pub fn new(config: ServeConfig, registry: Registry) -> Self {
        let slots = config
            .compute_slots
            .unwrap_or_else(Admission::default_slots);
        Catalog {
            admission: Admission::new(slots),
            config,
            registry,
            traces: RwLock::new(Vec::new()),
            experiments: RwLock::new(Vec::new()),
            open_lock: Mutex::new(()),
        }
    }

    pub fn traces(&self) -> Vec<Arc<Trace>> {
        self.traces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn trace(&self, uuid: &str) -> Option<Arc<Trace>> {
        self.traces().into_iter().find(|t| t.uuid == uuid)
    }

    pub fn experiments(&self) -> Vec<Arc<Experiment>> {
        self.experiments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn experiment(&self, uuid: &str) -> Option<Arc<Experiment>> {
        self.experiments().into_iter().find(|e| e.uuid == uuid)
    }

    /// Resolves `uri` (relative paths against the first trace root holding them)
    /// and checks it lies under a trace root when roots are configured.
    fn resolve(&self, uri: &str) -> Result<PathBuf, ApiError> {
        if sextant_providers::live_source::is_live_url(uri) {
            // A relay address makes the server connect out: only when asked to.
            if !(self.config.live || self.config.follow.iter().any(|f| f == uri)) {
                return Err(ApiError::invalid(
                    "uri",
                    format!(
                        "{uri}: this server does not follow live sessions (start it with --live)"
                    ),
                ));
            }
            return Ok(PathBuf::from(uri));
        }
        let raw = Path::new(uri);
        let candidate = if raw.is_relative() {
            self.config
                .trace_roots
                .iter()
                .map(|r| r.join(raw))
                .find(|p| p.exists())
                .unwrap_or_else(|| raw.to_path_buf())
        } else {
            raw.to_path_buf()
        };
        let canonical = candidate
            .canonicalize()
            .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, format!("No trace at {uri}")))?;
        let roots = &self.config.trace_roots;
        if !roots.is_empty()
            && !roots
                .iter()
                .filter_map(|r| r.canonicalize().ok())
                .any(|r| canonical.starts_with(r))
        {
            return Err(ApiError::invalid(
                "uri",
                format!("{uri} is outside the trace roots this server serves"),
            ));
        }
        Ok(canonical)
    }

    /// POST /traces: opens (or finds again) the trace at `uri`. Blocking.
    pub fn open_trace(
        &self,
        uri: &str,
        name: Option<&str>,
        type_id: Option<&str>,
    ) -> Result<Arc<Trace>, ApiError> {
        if uri.is_empty() {
            return Err(ApiError::invalid("uri", "empty path".into()));
        }
        let path = self.resolve(uri)?;
        let name = match name {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => default_name(&path),
        };
        let uuid = trace_uuid(&path);
        let _guard = self.open_lock.lock().unwrap_or_else(|e| e.into_inner());
        let traces = self.traces();
        if let Some(t) = traces.iter().find(|t| t.uuid == uuid) {
            return Ok(t.clone());
        }
        if let Some(t) = traces.iter().find(|t| t.name == name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("The trace ({name}) already exists and both differ"),
            )
            .detail(format!(
                "a trace named {name} is already open from {}",
                t.path.display()
            ))
            .with("trace", trace_json(t)));
        }
        let mut recognised = None;
        for opener in &self.registry.openers {
            if type_id.is_some_and(|id| id != opener.type_id()) {
                continue;
            }
            if let Some(result) = opener.open(&path) {
                recognised = Some((opener.type_id().to_string(), result));
                break;
            }
        }
        let Some((type_id, result)) = recognised else {
            return Err(
                ApiError::new(StatusCode::NOT_IMPLEMENTED, "Trace type not supported").detail(
                    format!("no trace type of this server reads {}", path.display()),
                ),
            );
        };
        let opened = result.map_err(|e| ApiError::new(StatusCode::NOT_ACCEPTABLE, e.0))?;
        let trace = Arc::new(Trace {
            uuid,
            name,
            path,
            type_id,
            nb_events: Arc::new(AtomicU64::new(opened.nb_events)),
            properties: opened.properties,
            state_systems: RwLock::new(opened.state_systems),
            analyses_running: AtomicBool::new(opened.background.is_some()),
            analysis_errors: Mutex::new(Vec::new()),
            analyses_not_run: Mutex::new(Vec::new()),
            cancel: Arc::new(AtomicBool::new(false)),
        });
        self.traces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(trace.clone());
        if let Some(job) = opened.background {
            trace.run_analyses_in_background(format!("analyses {}", trace.name), move |t| job(t));
        }
        Ok(trace)
    }

    /// Opens the live session `url` as a trace and an experiment of that one trace,
    /// named after the session (as a viewer would do). Blocking.
    pub fn follow(&self, url: &str) -> Result<Arc<Experiment>, ApiError> {
        let trace = self.open_trace(url, None, None)?;
        self.create_experiment(&trace.name, std::slice::from_ref(&trace.uuid))
    }

    /// DELETE /traces/{uuid}: refused while an experiment uses the trace.
    pub fn delete_trace(&self, uuid: &str) -> Result<Arc<Trace>, ApiError> {
        let _guard = self.open_lock.lock().unwrap_or_else(|e| e.into_inner());
        let trace = self.trace(uuid).ok_or_else(|| ApiError::no_trace(uuid))?;
        if self
            .experiments()
            .iter()
            .any(|e| e.source.traces.iter().any(|t| t.uuid == uuid))
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "The trace is in use by at least one experiment thus cannot be deleted.",
            )
            .with("trace", trace_json(&trace)));
        }
        self.traces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|t| t.uuid != uuid);
        trace.cancel.store(true, Ordering::Relaxed);
        Ok(trace)
    }

    /// Creates (or finds again) the experiment `name`, synchronizing its traces first
    /// (blocking; POST /experiments uses [`Catalog::create_experiment_in_background`]).
    pub fn create_experiment(
        &self,
        name: &str,
        trace_uuids: &[String],
    ) -> Result<Arc<Experiment>, ApiError> {
        let _guard = self.open_lock.lock().unwrap_or_else(|e| e.into_inner());
        let traces = match self.members(name, trace_uuids)? {
            Members::Existing(e) => return Ok(e),
            Members::New(traces) => traces,
        };
        let experiment = self.assemble(name, traces)?;
        self.experiments
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(experiment.clone());
        Ok(experiment)
    }

    /// POST /experiments: creates (or finds again) the experiment `name` at once. When its
    /// traces must be synchronized (several traces, `--sync` not off), it is listed right
    /// away with pending traces (indexing status RUNNING, no state system yet) while a
    /// background thread matches packets; then the experiment
    /// [`create_experiment`](Self::create_experiment) would have made takes its place (same UUID) and its
    /// analyses start.
    pub fn create_experiment_in_background(
        self: &Arc<Self>,
        name: &str,
        trace_uuids: &[String],
    ) -> Result<Arc<Experiment>, ApiError> {
        let _guard = self.open_lock.lock().unwrap_or_else(|e| e.into_inner());
        let traces = match self.members(name, trace_uuids)? {
            Members::Existing(e) => return Ok(e),
            Members::New(traces) => traces,
        };
        if !crate::sync::needs_synchronization(&self.config, &traces) {
            let experiment = self.assemble(name, traces)?;
            self.experiments
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .push(experiment.clone());
            return Ok(experiment);
        }
        let source = ExperimentSource {
            name: name.to_string(),
            traces: traces.iter().map(|t| crate::sync::pending(t)).collect(),
        };
        let outputs = self
            .registry
            .outputs
            .iter()
            .flat_map(|f| f.create(&source))
            .collect();
        let placeholder = Arc::new(Experiment {
            uuid: experiment_uuid(name),
            name: name.to_string(),
            source,
            outputs,
        });
        self.experiments
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(placeholder.clone());
        let catalog = self.clone();
        let waiting = placeholder.clone();
        let job_name = name.to_string();
        let job = move || {
            crate::sync::wait_while_held(&job_name);
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                catalog.assemble(&job_name, traces)
            }))
            .unwrap_or_else(|_| {
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the synchronization panicked",
                ))
            });
            catalog.finish_background(&waiting, done);
        };
        if let Err(e) = std::thread::Builder::new()
            .name(format!("synchronization {name}"))
            .spawn(job)
        {
            crate::sync::settle_pending(
                &placeholder.source.traces,
                Some(format!("cannot start the synchronization: {e}")),
            );
        }
        Ok(placeholder)
    }

    /// The traces of a new experiment `name`, or the existing experiment of that name.
    fn members(&self, name: &str, trace_uuids: &[String]) -> Result<Members, ApiError> {
        let mut traces = Vec::new();
        for uuid in trace_uuids {
            let t = self.trace(uuid).ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("No trace found with UUID {uuid}"),
                )
            })?;
            if !traces.iter().any(|x: &Arc<Trace>| x.uuid == t.uuid) {
                traces.push(t);
            }
        }
        let uuid = experiment_uuid(name);
        if let Some(existing) = self.experiment(&uuid) {
            let mut wanted: Vec<&str> = traces.iter().map(|t| t.uuid.as_str()).collect();
            wanted.sort_unstable();
            if existing.trace_uuids() == wanted {
                return Ok(Members::Existing(existing));
            }
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("The experiment ({name}) already exists and both differ."),
            )
            .with("experiment", experiment_json(&existing)));
        }
        Ok(Members::New(traces))
    }

    /// The experiment of `traces`, synchronized (blocking), its analyses started.
    fn assemble(&self, name: &str, traces: Vec<Arc<Trace>>) -> Result<Arc<Experiment>, ApiError> {
        let uuid = experiment_uuid(name);
        // Formulas computed anew (none saved yet) make older histories stale.
        let saved_sync = self
            .config
            .data_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("sextant-serve"))
            .join(".tracing")
            .join(format!("{}_exp", name.replace(['/', '\\', '\0'], "_")))
            .join(sextant_providers::sources::SAVED_SYNC_FILE);
        let saved_before = saved_sync.is_file();
        // Traces of several hosts are served in synchronized time.
        let mut traces = crate::sync::synchronized(&self.config, name, traces)?;
        let reuse = saved_before || !saved_sync.is_file();
        // The analyses of the whole experiment (VM analyses) run over the traces
        // read together; their state systems are served with the traces'.
        if let Some(own) =
            crate::analyses::experiment_analyses(&self.config, &uuid, name, &traces, reuse)
        {
            traces.push(own);
        }
        let source = ExperimentSource {
            name: name.to_string(),
            traces,
        };
        let outputs = self
            .registry
            .outputs
            .iter()
            .flat_map(|f| f.create(&source))
            .collect();
        Ok(Arc::new(Experiment {
            uuid,
            name: name.to_string(),
            source,
            outputs,
        }))
    }

    /// End of a background synchronization: the finished experiment replaces `placeholder`
    /// (unless it was deleted meanwhile: then what was started is cancelled); a failure is
    /// reported on the placeholder's traces, which stay listed.
    fn finish_background(
        &self,
        placeholder: &Arc<Experiment>,
        done: Result<Arc<Experiment>, ApiError>,
    ) {
        let done = match done {
            Ok(d) => d,
            Err(e) => {
                let text = match e.detail {
                    Some(d) => format!("{}: {d}", e.title),
                    None => e.title,
                };
                crate::sync::settle_pending(&placeholder.source.traces, Some(text));
                return;
            }
        };
        let replaced = {
            let _guard = self.open_lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut list = self.experiments.write().unwrap_or_else(|e| e.into_inner());
            match list.iter_mut().find(|e| Arc::ptr_eq(e, placeholder)) {
                Some(slot) => {
                    *slot = done.clone();
                    true
                }
                None => false,
            }
        };
        if !replaced {
            // Deleted while synchronizing: stop the twins and experiment analyses started
            // for it (the traces opened alone are not this experiment's to stop).
            for t in &done.source.traces {
                if self.trace(&t.uuid).is_none_or(|own| !Arc::ptr_eq(&own, t)) {
                    t.cancel.store(true, Ordering::Relaxed);
                }
            }
        }
        crate::sync::settle_pending(&placeholder.source.traces, None);
    }

    pub fn delete_experiment(&self, uuid: &str) -> Option<Arc<Experiment>> {
        let _guard = self.open_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut list = self.experiments.write().unwrap_or_else(|e| e.into_inner());
        let pos = list.iter().position(|e| e.uuid == uuid)?;
        let gone = list.remove(pos);
        for t in gone
            .source
            .traces
            .iter()
            .filter(|t| is_experiment_analyses(t))
        {
            t.cancel.store(true, Ordering::Relaxed);
        }
        Some(gone)
    }
}
