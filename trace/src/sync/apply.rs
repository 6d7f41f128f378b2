//! One call for front ends (`sextant build` / `serve` with `--sync auto|off|FILE`): give an
//! experiment its formulas, computing them once and reusing the saved result after.

use super::algorithm::SyncResult;
use super::events::{host_ids, synchronize, synchronize_hosts, PacketScan};
use super::report::{transforms_from_json, SavedSyncError};
use super::transform::LinearTransform;
use crate::error::TraceError;
use crate::experiment::Experiment;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMode {
    /// Reuse the saved result if it is for these traces, else match packets and save it.
    Auto,
    /// Original timestamps.
    Off,
    /// Formulas from a file written by `sextant sync -o` (or saved by `Auto`).
    File(PathBuf),
}

impl std::str::FromStr for SyncMode {
    type Err = std::convert::Infallible;
    /// `auto`, `off`, or a file path.
    fn from_str(s: &str) -> Result<SyncMode, Self::Err> {
        Ok(match s {
            "auto" => SyncMode::Auto,
            "off" => SyncMode::Off,
            path => SyncMode::File(PathBuf::from(path)),
        })
    }
}

/// Where the formulas in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOrigin {
    Off,
    /// Computed now (and saved, if a place was given).
    Computed,
    /// Read from this file.
    Loaded(PathBuf),
    /// A single trace, or traces all of one host: nothing to synchronize.
    SingleHost,
}

/// What [`apply`] did.
#[derive(Debug, Clone)]
pub struct SyncApplied {
    pub origin: SyncOrigin,
    pub transforms: Vec<LinearTransform>,
    /// The full result when computed now.
    pub result: Option<SyncResult>,
    /// The result still to be saved ([`apply_saving_later`] only).
    pub saving: Option<PendingSave>,
}

/// A computed result still to be written: the formulas are in force at once, the file is
/// written when the caller calls [`PendingSave::wait`], on a thread it has idle, so that the
/// writing does not delay the work that uses the formulas (see [`apply_saving_later`]).
#[derive(Clone)]
pub struct PendingSave(Arc<Mutex<Option<SaveJob>>>);

type SaveJob = Box<dyn FnOnce() -> Result<(), SyncError> + Send>;

impl std::fmt::Debug for PendingSave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pending = self.0.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        let state = if pending { "pending" } else { "done" };
        f.debug_tuple("PendingSave").field(&state).finish()
    }
}

impl PendingSave {
    fn deferred(job: impl FnOnce() -> Result<(), SyncError> + Send + 'static) -> PendingSave {
        PendingSave(Arc::new(Mutex::new(Some(Box::new(job)))))
    }

    /// Writes the file on this thread. The first call (of any clone) gets the outcome,
    /// later ones `Ok`.
    pub fn wait(&self) -> Result<(), SyncError> {
        let job = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        job.map_or(Ok(()), |job| job())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: {source}", path.display())]
    Saved {
        path: PathBuf,
        source: SavedSyncError,
    },
}

/// Name of the saved result in an experiment's supplementary folder.
pub const SAVED_SYNC_FILE: &str = "sextant-sync.json";

fn read_json(path: &Path) -> Result<Value, SyncError> {
    let text = std::fs::read_to_string(path).map_err(|source| SyncError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| SyncError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether a saved result was made for traces on these hosts, in this order.
fn same_hosts(saved: &Value, hosts: &[String]) -> bool {
    let Some(traces) = saved.get("traces").and_then(Value::as_array) else {
        return false;
    };
    traces.len() == hosts.len()
        && traces
            .iter()
            .zip(hosts)
            .all(|(t, h)| t.get("host").and_then(Value::as_str) == Some(h.as_str()))
}

/// Labels of the traces for the saved file.
fn names(exp: &Experiment) -> Vec<String> {
    exp.traces()
        .iter()
        .map(|m| m.path.display().to_string())
        .collect()
}

/// Gives `exp` its formulas as `mode` says. With `Auto`, `saved` (typically
/// `<supplementary folder>/sextant-sync.json`) is reused when it was made for the same hosts,
/// else packets are matched and the result written there (temporary file, then renamed).
pub fn apply(
    exp: &mut Experiment,
    mode: &SyncMode,
    saved: Option<&Path>,
    progress: &AtomicU64,
) -> Result<SyncApplied, SyncError> {
    let mut applied = apply_saving_later(exp, mode, saved, progress)?;
    if let Some(saving) = applied.saving.take() {
        saving.wait()?;
    }
    Ok(applied)
}

/// [`apply`], except that a result computed now is written to `saved` only when the caller
/// says ([`SyncApplied::saving`]: [`PendingSave::wait`] on a thread with nothing better to do,
/// before exiting): formatting and writing the file need not delay the work that uses the
/// formulas. The file appears whole or not at all.
pub fn apply_saving_later(
    exp: &mut Experiment,
    mode: &SyncMode,
    saved: Option<&Path>,
    progress: &AtomicU64,
) -> Result<SyncApplied, SyncError> {
    apply_prescanned(exp, mode, saved, None, progress)
}

/// [`apply_saving_later`], matching the packets of `prescan` (read from `exp` by
/// [`open_scanning_packets`](super::open_scanning_packets)) if packets must be matched, instead
/// of reading them again.
pub fn apply_prescanned(
    exp: &mut Experiment,
    mode: &SyncMode,
    saved: Option<&Path>,
    prescan: Option<PacketScan>,
    progress: &AtomicU64,
) -> Result<SyncApplied, SyncError> {
    let hosts = host_ids(exp);
    let off = |origin| SyncApplied {
        origin,
        transforms: vec![LinearTransform::identity(); hosts.len()],
        result: None,
        saving: None,
    };
    let loaded = |exp: &mut Experiment, path: &Path, v: &Value| {
        let transforms =
            transforms_from_json(v, exp.traces().len()).map_err(|source| SyncError::Saved {
                path: path.to_path_buf(),
                source,
            })?;
        exp.set_time_transforms(&transforms);
        Ok(SyncApplied {
            origin: SyncOrigin::Loaded(path.to_path_buf()),
            transforms,
            result: None,
            saving: None,
        })
    };
    match mode {
        SyncMode::Off => {
            exp.set_time_transforms(&[]);
            Ok(off(SyncOrigin::Off))
        }
        SyncMode::File(path) => {
            let v = read_json(path)?;
            loaded(exp, path, &v)
        }
        SyncMode::Auto => {
            if hosts.iter().all(|h| h == &hosts[0]) {
                exp.set_time_transforms(&[]);
                return Ok(off(SyncOrigin::SingleHost));
            }
            if let Some(path) = saved.filter(|p| p.is_file()) {
                // An unreadable or foreign file is recomputed over, not an error.
                if let Ok(v) = read_json(path) {
                    if same_hosts(&v, &hosts) {
                        if let Ok(applied) = loaded(exp, path, &v) {
                            return Ok(applied);
                        }
                    }
                }
            }
            let applied = match prescan {
                Some(scan) => apply_scanned(&hosts, names(exp), scan, saved),
                None => computed(synchronize(exp, progress)?, names(exp), saved, None),
            };
            exp.set_time_transforms(&applied.transforms);
            Ok(applied)
        }
    }
}

/// What [`apply_prescanned`] gives for packets matched now, from the host id and the name
/// (path) of each trace of the experiment they were read from, without the experiment (which
/// may be split and read meanwhile): the formulas, and the result still to be saved at `saved`.
pub fn apply_scanned(
    hosts: &[String],
    names: Vec<String>,
    mut scan: PacketScan,
    saved: Option<&Path>,
) -> SyncApplied {
    let retired = scan.take_retired();
    let result = synchronize_hosts(hosts, scan);
    computed(result, names, saved, Some(Box::new(retired)))
}

/// What [`apply_prescanned`] says of a result computed now (`names`: each trace's, for the
/// file to be saved at `saved`); `retired` is dropped once the file is saved.
pub fn computed(
    result: SyncResult,
    names: Vec<String>,
    saved: Option<&Path>,
    retired: Option<Box<dyn Send>>,
) -> SyncApplied {
    let transforms = result.transforms();
    let saving = saved.map(|path| {
        let (path, result) = (path.to_path_buf(), result.clone());
        PendingSave::deferred(move || {
            let r = save(&path, &result, &names);
            // Also done while the formulas are used.
            drop(retired);
            crate::timing::mark(|| "sync file saved".into());
            r
        })
    });
    SyncApplied {
        origin: SyncOrigin::Computed,
        transforms,
        result: Some(result),
        saving,
    }
}

/// The name [`apply`] saves for each trace of `exp`.
pub fn trace_names(exp: &Experiment) -> Vec<String> {
    names(exp)
}

/// Writes `result` to `path` atomically: a temporary file of this writer's own (concurrent
/// writers never mix their bytes), renamed over `path`, so that readers see the old file or
/// the new one, never part of one. It is not flushed to disk (an `fsync` costs a journal
/// commit while the histories are written): the file only spares recomputing what the traces
/// give, and a file a crash left empty or torn is not JSON, so the next build computes it again.
fn save(path: &Path, result: &SyncResult, names: &[String]) -> Result<(), SyncError> {
    static WRITERS: AtomicU64 = AtomicU64::new(0);
    let io = |source| SyncError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text =
        serde_json::to_string_pretty(&result.to_json(names)).expect("JSON values serialize") + "\n";
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        WRITERS.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}
