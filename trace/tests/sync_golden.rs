//! Synchronization of the scp_src / scp_dest pair against Trace Compass's own test values
//! (`shared/golden/sync/scp/expected.json`).

use sextant_trace::sync::{synchronize, LinearTransform, Ratio, TraceSyncStatus};
use sextant_trace::Experiment;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

/// `$SEXTANT_SHARED` or `shared/` beside the workspace; `None` (skip, with a notice) when
/// absent, except under `CI=true`.
fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SEXTANT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but the shared directory {} is missing (set SEXTANT_SHARED)",
        dir.display()
    );
    eprintln!(
        "note: skipping: shared directory {} not found (set SEXTANT_SHARED)",
        dir.display()
    );
    None
}

#[test]
fn scp_pair_matches_trace_compass() {
    let Some(shared) = shared_dir() else { return };
    let golden_path = shared.join("golden/sync/scp/expected.json");
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&golden_path).unwrap()).unwrap();
    let names: Vec<&str> = golden["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let paths: Vec<PathBuf> = names
        .iter()
        .map(|n| shared.join("traces/ctf").join(n))
        .collect();
    let mut exp = Experiment::open(&paths).unwrap();
    let result = synchronize(&mut exp, &AtomicU64::new(0)).unwrap();
    for t in &result.traces {
        eprintln!("{} {}: {:?}", t.host, t.status.as_str(), t.transform);
    }

    assert_eq!(
        result.matches,
        golden["matches"].as_u64().unwrap(),
        "match count"
    );
    // tolerance: "slope within 1e-15 relative, offset within 1 ns"
    let slope_tol = Ratio::parse_decimal("0.000000000000001").unwrap();
    let offset_tol = Ratio::one();
    for (i, name) in names.iter().enumerate() {
        let want = &golden["transforms"][name];
        let got = &result.traces[i];
        match want["kind"].as_str().unwrap() {
            "identity" => {
                assert!(got.transform.is_identity(), "{name}: {:?}", got.transform);
                assert_eq!(got.status, TraceSyncStatus::Reference, "{name}");
            }
            "linear" => {
                let w = LinearTransform::from_decimal(
                    want["slope"].as_str().unwrap(),
                    want["offset"].as_str().unwrap(),
                )
                .unwrap();
                let slope_err = got.transform.slope().sub(w.slope()).abs();
                assert!(
                    slope_err <= w.slope().abs().mul(&slope_tol),
                    "{name}: slope {:?} vs {:?}",
                    got.transform,
                    w
                );
                let offset_err = got.transform.offset().sub(w.offset()).abs();
                assert!(
                    offset_err <= offset_tol,
                    "{name}: offset {:?} vs {:?}",
                    got.transform,
                    w
                );
                assert_eq!(got.status, TraceSyncStatus::Synchronized, "{name}");
            }
            other => panic!("{golden_path:?}: unknown transform kind {other}"),
        }
    }
}
