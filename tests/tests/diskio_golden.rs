//! The disk I/O analysis against the checks of `shared/golden/diskio/`.

#[path = "common/golden_checks.rs"]
mod golden_checks;

use sextant_providers::diskio::{DiskIoStateProvider, DISKIO_ANALYSIS_ID};
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_providers::sources;
use sextant_tests::{case_dirs, shared_dir};

#[test]
fn diskio_golden_cases() {
    let Some(shared) = shared_dir() else { return };
    let cases = case_dirs(&shared, "golden/diskio");
    assert!(!cases.is_empty(), "no disk I/O golden case");
    for dir in cases {
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        assert_eq!(golden["analysis"], DISKIO_ANALYSIS_ID);
        let traces: Vec<_> = golden["traces"]
            .as_array()
            .expect("traces")
            .iter()
            .map(|t| dir.join(t.as_str().or(t["file"].as_str()).expect("trace file")))
            .collect();
        let mut source = sources::open(&traces).unwrap_or_else(|e| panic!("{traces:?}: {e}"));
        let analyses = vec![Analysis {
            provider: Box::new(DiskIoStateProvider::new()),
            output: Output::InMemory,
        }];
        let (_, systems) = build(&mut *source, analyses, &BuildOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let failures = golden_checks::run_checks(&systems[0], &golden);
        assert!(
            failures.is_empty(),
            "{}: {} failed checks:\n{}",
            dir.display(),
            failures.len(),
            failures.join("\n")
        );
    }
}
