//! One call for front ends (`sextant build` / `serve` with `--sync auto|off|FILE`): give an
//! experiment its formulas, computing them once and reusing the saved result after.

use super::algorithm::SyncResult;
use super::events::{host_ids, synchronize};
use super::report::{transforms_from_json, SavedSyncError};
use super::transform::LinearTransform;
use crate::error::TraceError;
use crate::experiment::Experiment;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

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
    let hosts = host_ids(exp);
    let off = |origin| SyncApplied {
        origin,
        transforms: vec![LinearTransform::identity(); hosts.len()],
        result: None,
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
            let result = synchronize(exp, progress)?;
            let transforms = result.transforms();
            exp.set_time_transforms(&transforms);
            if let Some(path) = saved {
                let text = serde_json::to_string_pretty(&result.to_json(&names(exp)))
                    .expect("JSON values serialize")
                    + "\n";
                let tmp = path.with_extension("json.tmp");
                let io = |source| SyncError::Io {
                    path: path.to_path_buf(),
                    source,
                };
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                std::fs::write(&tmp, text).map_err(io)?;
                std::fs::rename(&tmp, path).map_err(io)?;
            }
            Ok(SyncApplied {
                origin: SyncOrigin::Computed,
                transforms,
                result: Some(result),
            })
        }
    }
}
