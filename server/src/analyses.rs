//! Traces read from events (CTF traces, LTTng sessions, XML stub traces): opening
//! them starts the applicable analyses (native providers of
//! `sextant_providers::native_registry`, plus the XML analyses given to the
//! server) on a background thread through `sextant_providers::pipeline`. Each
//! writes `<data dir>/.tracing/<trace name>/<analysis id>.ht`, the layout of a
//! Trace Compass project's supplementary files, so pointing the data directory at
//! a Trace Compass project reuses its files and the other way round. A file already
//! there is reused when its provider version matches; otherwise it is rebuilt.
//!
//! While the pass runs the trace reports `RUNNING`, and each state system is in
//! the trace's live list from the pass's first event on: queries are answered
//! from the part already built (up to its current end time), which grows batch
//! by batch until the pass completes.
//!
//! An experiment of several traces also runs the experiment analyses (the VM
//! analyses, which need a host's and its guests' events together) once over its
//! traces read as one source, into `<data dir>/.tracing/<experiment>_exp/`, in
//! the experiment's synchronized time (see `experiment_analyses`).
//!
//! An LTTng live session (`net://HOST[:PORT]/host/HOSTNAME/SESSION`) is followed
//! the same way: its pass lasts until the session is destroyed, so the trace stays
//! `RUNNING` and its end time grows while events arrive. Its histories are always
//! built again (a file left by an earlier run would hold another run's events).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use sextant_providers::live_source::is_live_url;
use sextant_providers::pipeline::{self, Analysis, BuildOptions, EventSource, Output, Progress};
use sextant_providers::{StateProvider, TraceInfo};
use sht::StateSystem;

use crate::registry::{OpenError, OpenedTrace, StateSystemHandle, Trace, TraceOpener};

/// Trace type of [`EventTraceOpener`].
pub const EVENT_TRACE_TYPE: &str = "org.sextant.events";

/// Opens CTF trace directories, LTTng session directories and XML stub traces,
/// and runs their analyses in the background.
pub struct EventTraceOpener {
    /// Where the `.tracing/<trace>/<id>.ht` files go.
    pub data_dir: PathBuf,
    /// Trace Compass XML analysis files whose state providers also run.
    pub xml_files: Vec<PathBuf>,
}

fn is_stub_xml(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
}

/// A CTF trace has a `metadata` file; a session has traces below (a few levels).
fn holds_ctf(path: &Path, depth: u32) -> bool {
    if path.join("metadata").is_file() {
        return true;
    }
    if depth == 0 {
        return false;
    }
    std::fs::read_dir(path).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().is_dir() && holds_ctf(&e.path(), depth - 1))
    })
}

/// Which analyses a pass runs: every analysis that applies to one trace (the
/// experiment analyses included: a trace alone is a one-trace experiment's
/// whole source), or only the experiment analyses
/// (`StateProvider::experiment_analysis`) of an experiment of several traces,
/// read as one source.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Scope {
    Trace,
    Experiment,
}

/// The providers of `scope` that apply to `info`: the native ones, then the XML ones.
pub(crate) fn applicable(
    info: &TraceInfo,
    xml_files: &[PathBuf],
    scope: Scope,
) -> Result<Vec<Box<dyn StateProvider>>, String> {
    let registry = sextant_providers::native_registry();
    let mut providers: Vec<Box<dyn StateProvider>> = registry
        .names()
        .filter_map(|(short, _)| registry.create(short))
        .collect();
    if !xml_files.is_empty() {
        providers.extend(
            sextant_xml::provider::providers_from_files(xml_files).map_err(|e| e.to_string())?,
        );
    }
    Ok(providers
        .into_iter()
        .filter(|p| scope == Scope::Trace || p.experiment_analysis())
        .filter_map(|mut p| p.check_trace(info).is_ok().then_some(p))
        .collect())
}

/// File name safe for one path component (a trace name may hold `/`).
fn folder_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl TraceOpener for EventTraceOpener {
    fn type_id(&self) -> &str {
        EVENT_TRACE_TYPE
    }

    fn open(&self, path: &Path) -> Option<Result<OpenedTrace, OpenError>> {
        let live = path.to_str().is_some_and(is_live_url);
        if !(live || is_stub_xml(path) || (path.is_dir() && holds_ctf(path, 3))) {
            return None;
        }
        let source = match sextant_providers::sources::open(&[path.to_path_buf()]) {
            Ok(s) => s,
            Err(e) => return Some(Err(OpenError(format!("{}: {e}", path.display())))),
        };
        let info = source.info();
        // Attaching to a live session twice would be slow and racy: the pass reads
        // from this attachment.
        let source = live.then_some(source);
        let mut properties: BTreeMap<String, String> = info
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !info.domain.is_empty() {
            properties.insert("domain".into(), info.domain.clone());
        }
        let data_dir = self.data_dir.clone();
        let xml_files = self.xml_files.clone();
        let path = path.to_path_buf();
        Some(Ok(OpenedTrace {
            nb_events: 0,
            properties,
            state_systems: Vec::new(),
            background: Some(Box::new(move |trace: &Trace| {
                run_analyses(trace, &path, source, &info, &data_dir, &xml_files)
            })),
        }))
    }
}

/// Marker naming the trace whose results a folder holds.
const TRACE_PATH_MARKER: &str = ".sextant-trace-path";

/// `<data dir>/.tracing/<trace name>`, unless that folder holds the results of
/// another trace of the same name (another path): then `<name>-<hash of path>`,
/// so one trace's histories are never served for another.
fn results_dir(data_dir: &Path, name: &str, trace: &Path) -> Result<PathBuf, String> {
    let trace_text = trace.to_string_lossy();
    let plain = data_dir.join(".tracing").join(folder_name(name));
    let owner = std::fs::read_to_string(plain.join(TRACE_PATH_MARKER)).ok();
    let dir = match owner {
        Some(owner) if owner != trace_text => {
            let id = crate::catalog::trace_uuid(trace);
            data_dir
                .join(".tracing")
                .join(format!("{}-{}", folder_name(name), &id[..8]))
        }
        _ => plain,
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Folders made by Trace Compass have no marker: they are taken as this trace's.
    let marker = dir.join(TRACE_PATH_MARKER);
    if !marker.exists() {
        std::fs::write(&marker, trace_text.as_bytes())
            .map_err(|e| format!("{}: {e}", marker.display()))?;
    }
    Ok(dir)
}

/// The background job of one trace: reuse what is built, build the rest in one
/// pass, publishing each state system as soon as the pass creates it. Failures
/// end up in the trace's `analysisErrors` property (the trace stays usable for
/// what did build). `opened` is a live session's source, attached already.
fn run_analyses(
    trace: &Trace,
    path: &Path,
    opened: Option<Box<dyn EventSource>>,
    info: &TraceInfo,
    data_dir: &Path,
    xml_files: &[PathBuf],
) -> Result<(), String> {
    let live = opened.is_some();
    let dir = results_dir(data_dir, &trace.name, path)?;
    let open = || {
        sextant_providers::sources::open(&[path.to_path_buf()])
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    run_analyses_in(trace, &open, opened, info, &dir, !live, xml_files)
}

/// Opens the source of one pass (again, after an analysis was dropped).
pub(crate) type SourceOpener<'a> = dyn Fn() -> Result<Box<dyn EventSource>, String> + 'a;

/// [`run_analyses`] with the results in `dir`, files there reused when `reuse`
/// (and their provider version matches), each pass reading `opened` first, then
/// what `open` gives.
pub(crate) fn run_analyses_in(
    trace: &Trace,
    open: &SourceOpener<'_>,
    opened: Option<Box<dyn EventSource>>,
    info: &TraceInfo,
    dir: &Path,
    reuse: bool,
    xml_files: &[PathBuf],
) -> Result<(), String> {
    run_scope_in(
        trace,
        open,
        opened,
        info,
        dir,
        reuse,
        xml_files,
        Scope::Trace,
    )
}

/// [`run_analyses_in`] for the analyses of `scope`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_scope_in(
    trace: &Trace,
    open: &SourceOpener<'_>,
    mut opened: Option<Box<dyn EventSource>>,
    info: &TraceInfo,
    dir: &Path,
    reuse: bool,
    xml_files: &[PathBuf],
    scope: Scope,
) -> Result<(), String> {
    let providers = applicable(info, xml_files, scope)?;
    let mut to_build = Vec::new();
    for p in providers {
        let file = dir.join(format!("{}.ht", p.id()));
        match (reuse && file.is_file()).then(|| StateSystem::open(&file, Some(p.version()))) {
            Some(Ok(ss)) => {
                let handle = StateSystemHandle::new(p.id(), p.id(), ss);
                crate::columns::schedule(&handle.columns, &file);
                trace.add_state_system(handle);
            }
            // Absent, or another provider version (or damaged): build it again.
            _ => to_build.push((p, file)),
        }
    }
    let mut errors = Vec::new();
    while !to_build.is_empty() {
        let mut source = match opened.take() {
            Some(source) => source,
            None => open()?,
        };
        let ids: Vec<&'static str> = to_build.iter().map(|(p, _)| p.id()).collect();
        let analyses = std::mem::take(&mut to_build)
            .into_iter()
            .map(|(provider, file)| Analysis {
                provider,
                output: Output::file(file),
            })
            .collect();
        // Queries see each state system from the pass's first event on.
        let published = Mutex::new(Vec::new());
        let publish = |_: usize, id: &'static str, ss: pipeline::SharedStateSystem| {
            let handle = StateSystemHandle {
                id: id.into(),
                module: id.into(),
                ss: ss.clone(),
                columns: Arc::default(),
            };
            trace.add_state_system(handle.clone());
            published
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle);
        };
        let nb_events = Arc::clone(&trace.nb_events);
        let options = BuildOptions {
            progress: Some(Arc::new(move |p: Progress| {
                nb_events.store(p.events, Ordering::Relaxed)
            })),
            cancel: Arc::clone(&trace.cancel),
            ..BuildOptions::default()
        };
        let result = pipeline::build_shared(&mut *source, analyses, &options, Some(&publish));
        let published = published.into_inner().unwrap_or_else(|e| e.into_inner());
        if result.is_err() {
            // Unfinished histories must not be served (nor keep their files).
            let gone: Vec<_> = published.iter().map(|h| h.ss.clone()).collect();
            trace.remove_state_systems(&gone);
        } else {
            // Complete: index them (in the background).
            for h in &published {
                crate::columns::schedule(&h.columns, &dir.join(format!("{}.ht", h.id)));
            }
        }
        match result {
            Ok((report, _)) => {
                trace.nb_events.store(report.events, Ordering::Relaxed);
            }
            // One analysis cannot run on this trace (an event or field it needs is
            // missing): drop it and run the others again.
            Err(pipeline::PipelineError::Provider(e)) => {
                if matches!(e, sextant_providers::ProviderError::Unsupported { .. }) {
                    // Refused before reading: the source (a live session's
                    // attachment) serves the next pass as it is.
                    opened = Some(source);
                }
                let message = e.to_string();
                let culprit = ids
                    .iter()
                    .position(|id| message.starts_with(&format!("{id}:")));
                let Some(culprit) = culprit else {
                    errors.push(message);
                    break;
                };
                trace
                    .analyses_not_run
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(message);
                let registry_retry = applicable(info, xml_files, scope)?;
                to_build = registry_retry
                    .into_iter()
                    .filter(|p| ids.contains(&p.id()) && p.id() != ids[culprit])
                    .map(|p| {
                        let file = dir.join(format!("{}.ht", p.id()));
                        (p, file)
                    })
                    .collect();
            }
            Err(e) => {
                errors.push(e.to_string());
                break;
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Ids of the native experiment analyses (`StateProvider::experiment_analysis`).
pub fn experiment_analysis_ids() -> &'static [&'static str] {
    static IDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    IDS.get_or_init(|| {
        let registry = sextant_providers::native_registry();
        registry
            .names()
            .filter_map(|(short, _)| registry.create(short))
            .filter(|p| p.experiment_analysis())
            .map(|p| p.id())
            .collect()
    })
}

/// Trace type of the pseudo-trace that holds an experiment's own analyses (see
/// `experiment_analyses`); it is served with the experiment's traces but not
/// listed among them.
pub const EXPERIMENT_ANALYSES_TYPE: &str = "org.sextant.experiment-analyses";

/// Starts the experiment analyses (the VM analyses: a host with its guests) of
/// the experiment `name` of several traces over its traces read as one source, in the clocks of
/// `serve --sync` (the formulas saved in the experiment's folder). Their
/// histories go to `<data dir>/.tracing/<name>_exp/<analysis id>.ht`, where Trace
/// Compass keeps an experiment's supplementary files, and are reused when `reuse`
/// (false when the synchronization formulas were computed anew). The returned
/// pseudo-trace (the experiment's uuid and name) publishes them while they are
/// built and is `RUNNING` until they finish. `None` for one trace, or when the
/// traces are not all read from events, or one is a live session (attaching
/// twice would be racy).
pub(crate) fn experiment_analyses(
    config: &crate::ServeConfig,
    uuid: &str,
    name: &str,
    traces: &[Arc<Trace>],
    reuse: bool,
) -> Option<Arc<Trace>> {
    // One trace's own pass already ran them over the same source.
    if traces.len() < 2
        || traces
            .iter()
            .any(|t| t.type_id != EVENT_TRACE_TYPE || t.path.to_str().is_some_and(is_live_url))
    {
        return None;
    }
    let data_dir = config
        .data_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("sextant-serve"));
    let dir = data_dir
        .join(".tracing")
        .join(format!("{}_exp", folder_name(name)));
    let mut properties = BTreeMap::new();
    // Views are listed while this runs if the traces' domain fits them.
    let domains: Vec<Option<&String>> = traces.iter().map(|t| t.properties.get("domain")).collect();
    if let Some(Some(d)) = domains.first() {
        if domains.iter().all(|x| *x == Some(*d)) {
            properties.insert("domain".to_string(), (*d).clone());
        }
    }
    let trace = Arc::new(Trace {
        uuid: uuid.to_string(),
        name: name.to_string(),
        path: dir.clone(),
        type_id: EXPERIMENT_ANALYSES_TYPE.to_string(),
        nb_events: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        properties,
        state_systems: std::sync::RwLock::new(Vec::new()),
        analyses_running: std::sync::atomic::AtomicBool::new(true),
        analysis_errors: Mutex::new(Vec::new()),
        analyses_not_run: Mutex::new(Vec::new()),
        cancel: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    });
    let paths: Vec<PathBuf> = traces.iter().map(|t| t.path.clone()).collect();
    let sync = config.sync.clone();
    let xml_files = config.xml_files.clone();
    let running = trace.clone();
    let job = move || -> Result<(), String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let saved = dir.join(sextant_providers::sources::SAVED_SYNC_FILE);
        let open = || {
            sextant_providers::sources::open_synchronized(&paths, &sync, Some(&saved))
                .map(|(source, _)| source)
                .map_err(|e| format!("experiment {}: {e}", running.name))
        };
        let first = open()?;
        let info = first.info();
        run_scope_in(
            &running,
            &open,
            Some(first),
            &info,
            &dir,
            reuse,
            &xml_files,
            Scope::Experiment,
        )
    };
    trace.run_analyses_in_background(format!("experiment analyses {name}"), move |_| job());
    Some(trace)
}
