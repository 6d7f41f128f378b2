//! Helpers for Sextant's cross-crate tests, which live in `tests/tests/`.
//!
//! The reference material (golden files, traces, specs) is in the `shared`
//! directory beside the repository, or wherever `$SEXTANT_SHARED` points. A fresh
//! clone has none: tests that need it skip with a one-line notice, except under
//! `CI=true`, where a missing `shared` directory is a failure.

use std::path::{Path, PathBuf};

/// The shared directory, if present. Panics under `CI=true` when it is missing.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SEXTANT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.is_dir() {
        return Some(dir.canonicalize().unwrap_or(dir));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but the shared directory {} is missing (set SEXTANT_SHARED)",
            dir.display()
        );
    }
    eprintln!(
        "note: skipping: shared directory {} not found (set SEXTANT_SHARED)",
        dir.display()
    );
    None
}

/// Sub-directories of `shared/<rel>`, sorted by name.
pub fn case_dirs(shared: &Path, rel: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(shared.join(rel))
        .unwrap_or_else(|e| panic!("{}: {e}", shared.join(rel).display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// First byte offset where `a` and `b` differ, for readable byte-identity failures.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// Line-level description of the first difference between two texts.
pub fn first_line_difference(got: &str, want: &str) -> Option<String> {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    for i in 0..g.len().max(w.len()) {
        if g.get(i) != w.get(i) {
            return Some(format!(
                "line {}: got {:?}, want {:?}",
                i + 1,
                g.get(i),
                w.get(i)
            ));
        }
    }
    None
}
