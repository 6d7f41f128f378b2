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

/// A session whose second trace (its own metadata: another user's buffers)
/// appears mid-way: `top` counts the events of both per class, names included for
/// the classes the new trace brought, as the files say.
#[test]
fn top_counts_a_trace_that_appears_mid_session() {
    use sextant_trace::gen::{generate, GenConfig, GenLimit};
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("uid-0"), tmp.path().join("uid-1000"));
    let gen = |dir: &Path, events, seed, start_ns| {
        let cfg = GenConfig {
            limit: GenLimit::Events(events),
            cpus: 2,
            threads: 20,
            seed,
            hostname: "compute-1".into(),
            start_ns,
            ..Default::default()
        };
        generate(dir, &cfg, None).unwrap()
    };
    let ga = gen(&a, 30_000, 1, 1_700_000_000_000_000_000);
    let (first, last) = (ga.first_event_ns.unwrap(), ga.last_event_ns.unwrap());
    let gb = gen(&b, 20_000, 2, first + (last - first) / 2);
    let mut want = ga.counts.clone();
    for (name, n) in &gb.counts {
        *want.entry(name.clone()).or_default() += n;
    }
    let relay = FakeRelay::start(
        &a,
        FakeConfig {
            late_traces: vec![b.clone()],
            hold_after_packets: Some(packets(&a) + packets(&b)),
            hostname: "compute-1".into(),
            session: "k".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["top", &relay.url("compute-1", "k")])
        .args(["--interval", "0.5", "--frames", "6", "--classes", "1000"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = text.rsplit("events    class\n").next().unwrap();
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    for (name, n) in last.lines().map_while(|l| {
        let (n, name) = l.trim().split_once("  ")?;
        Some((name.trim().to_string(), n.parse::<u64>().ok()?))
    }) {
        *got.entry(name).or_default() += n;
    }
    assert_eq!(got, want, "{text}");
    assert!(
        text.contains(&format!("events {}", ga.events + gb.events)),
        "{text}"
    );
}
