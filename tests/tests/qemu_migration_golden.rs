//! The QEMU live migration provider against `shared/golden/qemu_migration/`
//! (synthetic traces: a 5-round success and a non-converging cancelled
//! migration), including the dirty-page series of thesis Algorithm 1.

#[path = "common/golden_checks.rs"]
mod golden_checks;

use std::sync::{Arc, Mutex};

use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_providers::qemu_migration::{MigrationSeries, QemuMigrationProvider};
use sextant_providers::sources;
use sextant_tests::{case_dirs, shared_dir};
use sht::{StateSystemQuerier, StateValue};

#[test]
fn qemu_migration_golden_cases() {
    let Some(shared) = shared_dir() else { return };
    let cases = case_dirs(&shared, "golden/qemu_migration");
    assert!(cases.len() >= 2, "QEMU migration golden cases missing");
    for dir in cases {
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        let traces: Vec<_> = golden["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| dir.join(t.as_str().unwrap()))
            .collect();
        let sink = Arc::new(Mutex::new(MigrationSeries::default()));
        let mut source = sources::open(&traces).unwrap();
        let analyses = vec![Analysis {
            provider: Box::new(QemuMigrationProvider::with_series(sink.clone())),
            output: Output::InMemory,
        }];
        let (_, systems) = build(&mut *source, analyses, &BuildOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut failures = golden_checks::run_checks(&systems[0], &golden);
        let series = sink.lock().unwrap().clone();
        for (proc_name, want) in golden["xy_dirty_pages"]["series"].as_object().unwrap() {
            let got = series
                .dirty_pages
                .get(proc_name)
                .cloned()
                .unwrap_or_default();
            let want = want.as_array().unwrap();
            if got.len() != want.len() {
                failures.push(format!(
                    "{proc_name}: {} points, want {}",
                    got.len(),
                    want.len()
                ));
                continue;
            }
            for (g, w) in got.iter().zip(want) {
                let rate_ok = match (g.rate, w[2].as_f64()) {
                    (None, None) => true,
                    // The golden rounds rates to 0.1 page/s.
                    (Some(a), Some(b)) => (a - b).abs() <= 0.051,
                    _ => false,
                };
                if g.time != w[0].as_i64().unwrap()
                    || g.dirty_pages != w[1].as_i64().unwrap()
                    || !rate_ok
                {
                    failures.push(format!("{proc_name}: point {g:?}, want {w}"));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{}: {} failures:\n{}",
            dir.display(),
            failures.len(),
            failures.join("\n")
        );
    }
}

/// The stages of the successful migration as the spec describes them: bulk round
/// ends after about 8.86 s, five iteration rounds, then stop-and-copy with a
/// downtime of about 23.7 ms; the failed one never reaches stop-and-copy.
#[test]
fn qemu_migration_stages_and_downtime() {
    let Some(shared) = shared_dir() else { return };
    let run = |case: &str| {
        let trace = shared
            .join("golden/qemu_migration")
            .join(case)
            .join("trace.xml");
        let mut source = sources::open(&[trace]).unwrap();
        let analyses = vec![Analysis {
            provider: Box::new(QemuMigrationProvider::new()),
            output: Output::InMemory,
        }];
        build(&mut *source, analyses, &BuildOptions::default())
            .unwrap()
            .1
            .remove(0)
    };
    let ss = run("success-5-rounds");
    let q = ss
        .quark(&["QEMU_COPY", "qemu-system-x86", "MIG_COPY"])
        .unwrap();
    let stages: Vec<StateValue> = ss
        .query_2d(&[q], ss.start_time(), ss.current_end_time())
        .unwrap()
        .into_iter()
        .map(|i| (i.start, i.value))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .filter(|v| *v != StateValue::Null)
        .collect();
    let want: Vec<StateValue> = [50, 101, 102, 103, 104, 105, 60]
        .into_iter()
        .map(StateValue::Int)
        .collect();
    assert_eq!(stages, want);
    let dq = ss
        .quark(&["QEMU_COPY", "qemu-system-x86", "Downtime"])
        .unwrap();
    let down: Vec<_> = ss
        .query_2d(&[dq], ss.start_time(), ss.current_end_time())
        .unwrap()
        .into_iter()
        .filter(|i| i.value == StateValue::Int(1))
        .collect();
    assert_eq!(down.len(), 1);
    let ms = (down[0].end + 1 - down[0].start) as f64 / 1e6;
    assert!((23.0..24.5).contains(&ms), "downtime {ms} ms");

    let ss = run("failed-no-convergence");
    let q = ss
        .quark(&["QEMU_COPY", "qemu-system-x86", "MIG_COPY"])
        .unwrap();
    let ivs = ss
        .query_2d(&[q], ss.start_time(), ss.current_end_time())
        .unwrap();
    assert!(ivs.iter().all(|i| i.value != StateValue::Int(60)));
    assert!(ivs.iter().any(|i| i.value == StateValue::Int(125)));
    let r = ss
        .quark(&["QEMU_COPY", "qemu-system-x86", "Result"])
        .unwrap();
    let last = ss.query_single(ss.current_end_time(), r).unwrap();
    assert_eq!(last.value, StateValue::from("cancelled"));
}
