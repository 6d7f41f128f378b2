//! Shared helpers of the CTF reader tests: where the shared reference material is.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `$SEXTANT_SHARED`, or `../shared` beside the workspace. None (with a notice) when
/// absent, except under CI=true where that is a failure.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SEXTANT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but {} is missing (set SEXTANT_SHARED)",
            dir.display()
        );
    }
    eprintln!(
        "note: skipping: shared directory {} not found (set SEXTANT_SHARED)",
        dir.display()
    );
    None
}

/// A `babeltrace2.count` / `tracecompass.count` file: header values and per-name counts.
#[derive(Debug, Default)]
pub struct CountFile {
    pub header: BTreeMap<String, String>,
    pub counts: BTreeMap<String, u64>,
}

pub fn read_counts(path: &Path) -> CountFile {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = CountFile::default();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("# ") {
            if let Some((k, v)) = h.split_once(':') {
                out.header
                    .insert(k.trim().to_string(), v.trim().to_string());
            }
        } else if let Some((n, name)) = line.split_once('\t') {
            out.counts
                .insert(name.to_string(), n.trim().parse().expect("count"));
        }
    }
    out
}

/// Every (trace name, ctf dir, count file) under shared/traces: ctf/* and openstack/*.
pub fn all_traces(shared: &Path) -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for group in ["ctf", "openstack"] {
        let Ok(rd) = std::fs::read_dir(shared.join("traces").join(group)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for d in dirs {
            let count = ["babeltrace2.count", "tracecompass.count"]
                .iter()
                .map(|n| d.join(n))
                .find(|p| p.is_file());
            if let Some(c) = count {
                let name = d.file_name().unwrap().to_string_lossy().into_owned();
                out.push((name, d.join("ctf"), c));
            }
        }
    }
    out
}
