//! `sextant top` on a live session (the in-process fake relay serving the Nova
//! trace of `shared/traces`, held open after its last packet): per Nova state,
//! the number of VMs, read from the VM state analysis while it is built, equals
//! what the same analysis built from the files says at the trace's end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sextant_providers::openstack::nova::NovaVmStateProvider;
use sextant_providers::openstack::vm_report::vm_state_name;
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_trace::ctf::reader::{CtfTrace, Cursor};
use sextant_trace::live::fake::{FakeConfig, FakeRelay};
use sht::{StateSystemQuerier, StateValue};

fn nova_trace() -> Option<PathBuf> {
    let shared = sextant_tests::shared_dir()?;
    Some(shared.join("traces/openstack/nova/ctf/ust/uid/1000/64-bit"))
}

fn packets(dir: &Path) -> u32 {
    let trace = CtfTrace::open(dir).unwrap();
    trace
        .files
        .iter()
        .map(|f| {
            Cursor::open(&trace, f)
                .unwrap()
                .scan_packets(&trace)
                .unwrap()
                .len() as u32
        })
        .sum()
}

/// VMs per state at the end of the offline history.
fn offline_counts(dir: &Path) -> BTreeMap<String, u64> {
    let mut source = sextant_providers::sources::open(&[dir.to_path_buf()]).unwrap();
    let analyses = vec![Analysis {
        provider: Box::new(NovaVmStateProvider::new()),
        output: Output::InMemory,
    }];
    let (_, systems) = build(&mut *source, analyses, &BuildOptions::default()).unwrap();
    let ss = &systems[0];
    let mut counts = BTreeMap::new();
    for q in ss.quarks(&["PROJECTs", "*", "VMs", "*", "Status"]).unwrap() {
        if let StateValue::Int(code) = ss.query_single(ss.current_end_time(), q).unwrap().value {
            *counts.entry(vm_state_name(code).to_string()).or_default() += 1;
        }
    }
    counts
}

#[test]
fn top_counts_vms_per_nova_state_while_the_session_lives() {
    let Some(dir) = nova_trace() else {
        return;
    };
    let want = offline_counts(&dir);
    assert!(want.values().sum::<u64>() > 1, "{want:?}");
    let relay = FakeRelay::start(
        &dir,
        FakeConfig {
            hold_after_packets: Some(packets(&dir)),
            hostname: "controller".into(),
            session: "nova".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["top", &relay.url("controller", "nova")])
        .args(["--interval", "0.5", "--frames", "6"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The last frame's VM section: "<count>  <state>" lines after "VMs       state".
    let last = text.rsplit("VMs       state\n").next().unwrap();
    assert!(text.contains("VMs       state\n"), "{text}");
    let got: BTreeMap<String, u64> = last
        .lines()
        .map_while(|l| {
            let (n, state) = l.trim().split_once("  ")?;
            Some((state.trim().to_string(), n.parse().ok()?))
        })
        .collect();
    assert_eq!(got, want, "{text}");
}
