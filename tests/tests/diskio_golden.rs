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

/// On the real kernel traces with block events (scp_src, scp_dest: LTTng 2.1), the
/// analysis completes, every request that reached the driver is counted once, and
/// the queue lengths match the slots in use at every request boundary.
#[test]
fn diskio_on_real_ctf_traces_keeps_queues_consistent() {
    use sht::{StateSystemQuerier, StateValue};
    let Some(shared) = shared_dir() else { return };
    for case in ["scp_src", "scp_dest"] {
        let trace = shared.join("traces/ctf").join(case).join("ctf");
        let mut source = sources::open(&[trace]).unwrap();
        let analyses = vec![Analysis {
            provider: Box::new(DiskIoStateProvider::new()),
            output: Output::InMemory,
        }];
        let (report, systems) = build(&mut *source, analyses, &BuildOptions::default())
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(
            report.analyses[0].events > 0,
            "{case}: no block event handled"
        );
        let ss = &systems[0];
        let disks = ss.quarks(&["Disks", "*"]).unwrap();
        assert!(!disks.is_empty(), "{case}: no disk");
        for disk in disks {
            for (queue, length) in [
                ("Waiting_queue", "waitingqueue_length"),
                ("Driver_queue", "driverqueue_length"),
            ] {
                let slots = ss.attributes().opt_quark(disk, &[queue]);
                let len_q = ss.attributes().opt_quark(disk, &[length]);
                let slots: Vec<_> = ss.attributes().children_of(slots).to_vec();
                let changes = ss
                    .query_2d(&[len_q], ss.start_time(), ss.current_end_time())
                    .unwrap();
                for i in changes {
                    let full = ss.query_full(i.start).unwrap();
                    let used = slots
                        .iter()
                        .filter(|&&s| !full[s as usize].value.is_null())
                        .count() as i32;
                    let want = match i.value {
                        StateValue::Int(n) => n,
                        _ => 0,
                    };
                    assert_eq!(used, want, "{case}: {queue} at {}", i.start);
                }
            }
        }
    }
}
