//! The Open vSwitch providers (`ovs.path`, `ovs.packets`) against
//! `shared/golden/ovs/` (synthetic and real traces, XML and CTF), the
//! switching-latency series, untagged-packet counts, and the thesis's fast/slow
//! path figures on the real 2016-07-25 traces.

#[path = "common/golden_checks.rs"]
mod golden_checks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sextant_providers::ovs::{OvsPacketsProvider, OvsPathProvider, OvsSummary, SwitchPath};
use sextant_providers::pipeline::{build, Analysis, BuildOptions, BuildReport, Output};
use sextant_providers::{sources, StateProvider};
use sextant_tests::{case_dirs, shared_dir};
use sht::{StateSystem, StateSystemQuerier, StateValue};

fn run(trace: &Path, provider: Box<dyn StateProvider>) -> (BuildReport, StateSystem) {
    let mut source =
        sources::open(&[trace.to_path_buf()]).unwrap_or_else(|e| panic!("{trace:?}: {e}"));
    let analyses = vec![Analysis {
        provider,
        output: Output::InMemory,
    }];
    let (report, mut systems) = build(&mut *source, analyses, &BuildOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", trace.display()));
    (report, systems.remove(0))
}

fn run_packets(trace: &Path) -> (BuildReport, StateSystem, OvsSummary) {
    let sink = Arc::new(Mutex::new(OvsSummary::default()));
    let (report, ss) = run(
        trace,
        Box::new(OvsPacketsProvider::with_summary(sink.clone())),
    );
    let summary = sink.lock().unwrap().clone();
    (report, ss, summary)
}

/// The XML trace a golden names, and its CTF twin when one is shipped beside it.
fn traces_of(dir: &Path, golden: &serde_json::Value) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for t in golden["traces"].as_array().expect("traces") {
        let xml = dir.join(t.as_str().expect("trace file"));
        let ctf = xml.parent().unwrap().join("ctf");
        out.push(xml);
        if ctf.join("metadata").is_file() {
            out.push(ctf);
        }
    }
    out
}

fn check_summary(summary: &OvsSummary, golden: &serde_json::Value) -> Vec<String> {
    let mut failures = Vec::new();
    let want: Vec<(i64, i64, i64, String)> = golden["xy_switching_latency"]["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            (
                p[0].as_i64().unwrap(),
                p[1].as_i64().unwrap(),
                p[2].as_i64().unwrap(),
                p[3].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let got: Vec<(i64, i64, i64, String)> = summary
        .latencies
        .iter()
        .map(|p| (p.send_time, p.id, p.latency, p.path.name().to_string()))
        .collect();
    if got != want {
        failures.push(format!("latency points {got:?}, want {want:?}"));
    }
    for (event, n) in golden["untagged_events"].as_object().expect("untagged") {
        let got = summary.untagged.get(event.as_str()).copied().unwrap_or(0);
        if got != n.as_u64().unwrap() {
            failures.push(format!("untagged {event}: {got}, want {n}"));
        }
    }
    failures
}

#[test]
fn ovs_golden_cases() {
    let Some(shared) = shared_dir() else { return };
    let mut ran = 0;
    for dir in case_dirs(&shared, "golden/ovs") {
        let Ok(text) = std::fs::read_to_string(dir.join("expected.json")) else {
            continue; // traces, synthetic
        };
        let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
        for trace in traces_of(&dir, &golden) {
            let (ss, mut failures) = match golden["analysis"].as_str() {
                Some("ovs.path") => (run(&trace, Box::new(OvsPathProvider::new())).1, Vec::new()),
                Some("ovs.packets") => {
                    let (_, ss, summary) = run_packets(&trace);
                    let f = check_summary(&summary, &golden);
                    (ss, f)
                }
                other => panic!("unknown OvS golden analysis {other:?}"),
            };
            failures.extend(golden_checks::run_checks(&ss, &golden));
            assert!(
                failures.is_empty(),
                "{} on {}: {} failures:\n{}",
                dir.display(),
                trace.display(),
                failures.len(),
                failures.join("\n")
            );
            ran += 1;
        }
    }
    assert!(ran >= 5, "only {ran} OvS golden runs");
}

fn real(shared: &Path, name: &str) -> PathBuf {
    shared.join("golden/ovs/traces").join(name).join("ctf")
}

/// Thesis 4.7.2 on the 08:51 session: fast path about 0.8-14 us (784 ns rounds
/// to 0.8), slow path
/// 37-98 us; every completed packet is counted on exactly one path.
#[test]
fn ovs_real_trace_fast_path_is_faster_than_slow_path() {
    let Some(shared) = shared_dir() else { return };
    let (_, ss, summary) = run_packets(&real(&shared, "ovs-20160725b"));
    let lat = |p: SwitchPath| -> Vec<i64> {
        summary
            .latencies
            .iter()
            .filter(|l| l.path == p)
            .map(|l| l.latency)
            .collect()
    };
    let (fast, slow) = (lat(SwitchPath::Fast), lat(SwitchPath::Slow));
    assert!(!fast.is_empty() && !slow.is_empty());
    assert!(
        fast.iter().all(|&l| (750..=15_000).contains(&l)),
        "{fast:?}"
    );
    assert!(
        slow.iter().all(|&l| (37_000..=99_000).contains(&l)),
        "{slow:?}"
    );
    let end = ss.current_end_time();
    let full = ss.query_full(end).unwrap();
    let count = |name: &str| match full[ss.quark(&["OVS", name]).unwrap() as usize].value {
        StateValue::Long(n) => n as usize,
        _ => 0,
    };
    assert_eq!(count("Switched_fast"), fast.len());
    assert_eq!(count("Switched_slow"), slow.len());
}

/// The 08:43 session (counted with babeltrace2): 13 of 154 receives (8.4 %) and
/// 9 of 58 upcall starts (15.5 %) carry id 0; they are counted and reported.
#[test]
fn ovs_real_trace_untagged_packets_are_counted_and_reported() {
    let Some(shared) = shared_dir() else { return };
    let (report, ss, summary) = run_packets(&real(&shared, "ovs-20160725a"));
    assert_eq!(
        summary.untagged.get("addons_lttng_ovs_vport_receive"),
        Some(&13)
    );
    assert_eq!(
        summary.untagged.get("addons_lttng_ovs_upcall_start"),
        Some(&9)
    );
    assert_eq!(
        summary.untagged.get("addons_lttng_ovs_upcall_end"),
        Some(&9)
    );
    assert_eq!(
        summary.untagged.get("addons_lttng_ovs_vport_send"),
        Some(&29)
    );
    let q = ss.quark(&["OVS", "Untagged"]).unwrap();
    let last = ss.query_single(ss.current_end_time(), q).unwrap();
    assert_eq!(last.value, StateValue::Long(13));
    assert!(
        report.warnings.iter().any(|w| w.contains("60 untagged")),
        "{:?}",
        report.warnings
    );
}
