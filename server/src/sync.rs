//! Experiments of traces from several hosts, in synchronized time (`sextant serve --sync
//! auto|off|FILE`).
//!
//! Creating such an experiment synchronizes its traces (packet matching; the formulas are
//! saved in the experiment's supplementary folder, `<data dir>/.tracing/<name>_exp/
//! sextant-sync.json`, and reused after). A trace whose clock a formula changes is served in
//! the experiment by a twin (same UUID, name and path) whose analyses are built in
//! synchronized time into `<name>_exp/<trace name>/`: Trace Compass likewise rebuilds a
//! trace's supplementary files in its experiment's synchronized time. The trace opened alone
//! keeps its own clock.
//!
//! POST /experiments does not wait for the matching: the experiment is listed at once with
//! pending copies of its traces (RUNNING, no state system) and replaced, same UUID, when
//! the formulas are known (see `Catalog::create_experiment_in_background`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use axum::http::StatusCode;
use sextant_providers::pipeline::EventSource;
use sextant_providers::sources::{
    open_host, open_per_host, HostTraces, LinearTransform, Opened, SyncMode, SyncOrigin,
    SAVED_SYNC_FILE,
};

use crate::error::ApiError;
use crate::registry::Trace;
use crate::ServeConfig;

/// Whether creating an experiment of `traces` matches packets (see [`synchronized`]).
pub fn needs_synchronization(config: &ServeConfig, traces: &[Arc<Trace>]) -> bool {
    config.sync != SyncMode::Off && traces.len() >= 2
}

/// A stand-in for `t` in an experiment being synchronized: same identity, no state system,
/// analyses RUNNING until [`settle_pending`].
pub fn pending(t: &Trace) -> Arc<Trace> {
    Arc::new(Trace {
        uuid: t.uuid.clone(),
        name: t.name.clone(),
        path: t.path.clone(),
        type_id: t.type_id.clone(),
        nb_events: Arc::new(AtomicU64::new(0)),
        properties: t.properties.clone(),
        state_systems: RwLock::new(Vec::new()),
        analyses_running: AtomicBool::new(true),
        analysis_errors: Mutex::new(Vec::new()),
        analyses_not_run: Mutex::new(Vec::new()),
        cancel: Arc::new(AtomicBool::new(false)),
    })
}

/// Ends the stand-ins' RUNNING state, with the synchronization's error if it failed.
pub fn settle_pending(traces: &[Arc<Trace>], error: Option<String>) {
    for t in traces {
        if let Some(e) = &error {
            t.analysis_errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(e.clone());
        }
        t.analyses_running.store(false, Ordering::Release);
    }
}

/// Names of experiments whose background synchronization must not start yet (test hook).
static HELD: Mutex<Vec<String>> = Mutex::new(Vec::new());
static RELEASED: Condvar = Condvar::new();

/// Test hook: while the returned guard lives, the background synchronization of an
/// experiment named `name` waits before reading anything, so a test can observe the
/// experiment as POST left it (an ordering, not a timing).
#[doc(hidden)]
pub fn hold_synchronization(name: &str) -> SyncHold {
    HELD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(name.to_string());
    SyncHold(name.to_string())
}

/// See [`hold_synchronization`].
#[doc(hidden)]
pub struct SyncHold(String);

impl Drop for SyncHold {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = held.iter().position(|n| *n == self.0) {
            held.remove(i);
        }
        RELEASED.notify_all();
    }
}

/// Blocks while a [`SyncHold`] for `name` lives.
pub(crate) fn wait_while_held(name: &str) {
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    while held.iter().any(|n| n == name) {
        held = RELEASED.wait(held).unwrap_or_else(|e| e.into_inner());
    }
}

/// The traces an experiment named `name` serves: `traces` themselves, or for a trace whose
/// clock the synchronization changes, its twin in synchronized time (analysed in the
/// background).
pub fn synchronized(
    config: &ServeConfig,
    name: &str,
    traces: Vec<Arc<Trace>>,
) -> Result<Vec<Arc<Trace>>, ApiError> {
    if config.sync == SyncMode::Off || traces.len() < 2 {
        return Ok(traces);
    }
    let data_dir = config
        .data_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("sextant-serve"));
    let folder = data_dir
        .join(".tracing")
        .join(format!("{}_exp", safe_name(name)));
    let failed = |e: String| {
        ApiError::new(StatusCode::NOT_ACCEPTABLE, "Synchronization failed")
            .detail(format!("experiment {name}: {e}"))
    };
    std::fs::create_dir_all(&folder).map_err(|e| failed(format!("{}: {e}", folder.display())))?;
    let paths: Vec<PathBuf> = traces.iter().map(|t| t.path.clone()).collect();
    let saved = folder.join(SAVED_SYNC_FILE);
    let (opened, applied) =
        open_per_host(&paths, &config.sync, Some(&saved)).map_err(|e| failed(e.to_string()))?;
    let Opened::PerHost(hosts) = opened else {
        return Ok(traces);
    };
    // Histories built for earlier formulas are kept only when the formulas were read back.
    let reuse = applied
        .as_ref()
        .is_some_and(|a| matches!(a.origin, SyncOrigin::Loaded(_)));
    Ok(traces
        .into_iter()
        .map(|t| {
            let mine = HostTraces {
                host: String::new(),
                name: t.name.clone(),
                dirs: Vec::new(),
                transforms: Vec::new(),
                bytes: 0,
            };
            let mine = hosts.iter().fold(mine, |mut mine, (h, _)| {
                for (dir, tr) in h.dirs.iter().zip(&h.transforms) {
                    if dir.starts_with(&t.path) {
                        mine.dirs.push(dir.clone());
                        mine.transforms.push(tr.clone());
                    }
                }
                mine
            });
            if mine.transforms.iter().all(LinearTransform::is_identity) {
                return t;
            }
            let dir = folder.join(safe_name(&t.name));
            twin(&t, mine, dir, reuse, config.xml_files.clone())
        })
        .collect())
}

/// One path component (a trace name may hold `/`).
fn safe_name(name: &str) -> String {
    name.replace(['/', '\\', '\0'], "_")
}

/// `t` in synchronized time: a new trace object whose analyses run in the background.
fn twin(
    t: &Trace,
    host: HostTraces,
    dir: PathBuf,
    reuse: bool,
    xml_files: Vec<PathBuf>,
) -> Arc<Trace> {
    let mut properties: BTreeMap<String, String> = t.properties.clone();
    let formulas: Vec<String> = host
        .transforms
        .iter()
        .map(|f| {
            format!(
                "t * {} + {}",
                f.slope().to_decimal(20),
                f.offset().to_decimal(6)
            )
        })
        .collect();
    properties.insert("clockTransform".into(), formulas.join("; "));
    let trace = Arc::new(Trace {
        uuid: t.uuid.clone(),
        name: t.name.clone(),
        path: t.path.clone(),
        type_id: t.type_id.clone(),
        nb_events: Arc::new(AtomicU64::new(0)),
        properties,
        state_systems: RwLock::new(Vec::new()),
        analyses_running: AtomicBool::new(true),
        analysis_errors: Mutex::new(Vec::new()),
        analyses_not_run: Mutex::new(Vec::new()),
        cancel: Arc::new(AtomicBool::new(false)),
    });
    trace.run_analyses_in_background(
        format!("synchronized analyses {}", t.name),
        move |running| build(running, &host, &dir, reuse, &xml_files),
    );
    trace
}

/// Builds (or reuses) the twin's histories in `dir` in synchronized time, publishing
/// them while they are built (as for a trace opened alone).
fn build(
    trace: &Trace,
    host: &HostTraces,
    dir: &Path,
    reuse: bool,
    xml_files: &[PathBuf],
) -> Result<(), String> {
    let open =
        || open_host(host).map_err(|e| format!("{} (synchronized): {e}", trace.path.display()));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let info = open()?.info();
    let open = || -> Result<Box<dyn EventSource>, String> { Ok(Box::new(open()?)) };
    crate::analyses::run_analyses_in(trace, &open, None, &info, dir, reuse, xml_files)
}
