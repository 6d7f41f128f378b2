//! Experiment analyses: an experiment of a host trace and its guest's trace runs
//! the VM analyses once over both traces read together, writes
//! them to `<data dir>/.tracing/<experiment>_exp/<analysis id>.ht`, and its VM
//! views show the goldens' intervals; a second server reuses those files.

mod common;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use axum::Router;
use common::*;
use serde_json::{json, Value};
use sextant_providers::vm::{fused, vresources};
use sht::StateSystemQuerier;

fn app_in(data: &Path) -> (Router, sextant_server::AppState) {
    let state = sextant_server::state(sextant_server::ServeConfig {
        data_dir: Some(data.to_path_buf()),
        ..Default::default()
    });
    (sextant_server::router(state.clone()), state)
}

/// Opens the host and guest traces of `case`, makes the experiment `name` of
/// both and waits until it is COMPLETED; returns its UUID and JSON.
async fn experiment(app: &Router, case: &Path, name: &str) -> (String, Value) {
    let mut traces = Vec::new();
    for file in ["host.xml", "guest.xml"] {
        let body = json!({"parameters": {"uri": case.join(file)}}).to_string();
        let t = post(app, "/traces", &body).await;
        traces.push(t.ok()["UUID"].as_str().unwrap().to_string());
    }
    let body = json!({"parameters": {"name": name, "traces": traces}}).to_string();
    let e = post(app, "/experiments", &body).await;
    let exp = e.ok()["UUID"].as_str().unwrap().to_string();
    let a = wait_completed(app, &format!("/experiments/{exp}")).await;
    (exp, a.json)
}

fn roots(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["parentId"] == -1)
        .map(|e| e["labels"][0].as_str().unwrap().to_string())
        .collect()
}

/// The VM views of experiment `exp` against the goldens (the vresources and
/// fused goldens share the host and guest traces).
async fn check_vm_views(app: &Router, exp: &str, g: &Value, fg: &Value) {
    // Virtual CPU view: the experiment's root (besides the host's and the
    // guest's own, analysed alone), and the golden's 16 intervals of vCPU 0.
    let entries = tree(app, exp, "timeGraph", VCPU_VIEW).await;
    // Only the experiment's run: the traces' own runs of the VM analyses are hidden.
    assert_eq!(roots(&entries), ["one_qemukvm"]);
    let vcpu = entry(&entries, &["one_qemukvm", "Guest: guest.xml", "vCPU 0"]);
    let golden = intervals(g, "Virtual Machines/guest.xml/0/Status");
    assert_eq!(golden.len(), 16);
    let end = g["end"].as_i64().unwrap();
    check_row(app, exp, VCPU_VIEW, vcpu, &golden, end, vcpu_key).await;

    // Virtual Resources view: who runs on physical CPU 0 (golden Current_thread
    // and Machine_name), and the host thread running the guest's vCPU 0.
    let entries = tree(app, exp, "timeGraph", FUSED_VIEW).await;
    let cpu = entry(&entries, &["one_qemukvm", "Physical Cpus", "CPU 0"]);
    let threads = intervals(fg, "CPUs/0/Current_thread");
    let at = |t: i64| {
        threads
            .iter()
            .find(|i| i.0 <= t && t <= i.1)
            .and_then(|i| i.2)
            .unwrap()
    };
    let tip = tooltip(app, exp, FUSED_VIEW, cpu, 160).await;
    assert_eq!(tip["Virtual Machine"], "guest.xml");
    assert_eq!(tip["> TID"], at(160).to_string());
    let tip = tooltip(app, exp, FUSED_VIEW, cpu, 120).await;
    assert_eq!(tip["Virtual Machine"], "host.xml");
    assert_eq!(tip["> TID"], at(120).to_string());
    let vcpu = entry(
        &entries,
        &["one_qemukvm", "Virtual Machines", "guest.xml", "vCPU 0"],
    );
    let tip = tooltip(app, exp, FUSED_VIEW, vcpu, 300).await;
    // Golden value_at check: Hosts/guest.xml/CPUs/0 at 300.
    let want = fg["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["kind"] == "value_at" && c["path"] == json!(["Hosts", "guest.xml", "CPUs", "0"])
        })
        .unwrap();
    assert_eq!(want["time"], 300);
    let want = want["value"]["v"].as_i64().unwrap();
    assert_eq!(tip["Value"], want.to_string());
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .modified()
        .unwrap()
}

#[tokio::test]
async fn vm_analyses_run_over_the_host_and_guest_experiment() {
    let Some((case, g)) = golden_case("vm/one_qemukvm-vresources") else {
        return;
    };
    let Some((_, fg)) = golden_case("vm/one_qemukvm-fused") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let (app, catalog) = app_in(data.path());
    let (exp, json) = experiment(&app, &case, "one_qemukvm").await;
    // The host analysed alone ran the VM analyses too (a one-trace experiment of
    // it would show them), but this experiment serves only its own run.
    let source = &catalog.experiment(&exp).unwrap().source;
    let ids = |list: Vec<sextant_server::StateSystemHandle>| -> Vec<String> {
        list.into_iter().map(|h| h.id).collect()
    };
    assert_eq!(source.traces.len(), 3);
    assert!(ids(source.traces[0].state_systems()).contains(&vresources::ID.to_string()));
    assert!(!ids(source.trace_state_systems(0)).contains(&vresources::ID.to_string()));
    assert!(ids(source.trace_state_systems(2)).contains(&vresources::ID.to_string()));
    // The experiment's own analyses are not listed as a trace.
    let names: Vec<&str> = json["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["host.xml", "guest.xml"]);
    assert!(json.get("properties").is_none(), "{json}");
    let folder = data.path().join(".tracing/one_qemukvm_exp");
    let files: Vec<PathBuf> = [vresources::ID, fused::ID]
        .iter()
        .map(|id| folder.join(format!("{id}.ht")))
        .collect();
    check_vm_views(&app, &exp, &g, &fg).await;
    let built: Vec<SystemTime> = files.iter().map(|f| mtime(f)).collect();

    // A second server over the same data directory reuses the experiment's files.
    let (again, _) = app_in(data.path());
    let (exp2, _) = experiment(&again, &case, "one_qemukvm").await;
    assert_eq!(exp2, exp);
    let reused: Vec<SystemTime> = files.iter().map(|f| mtime(f)).collect();
    assert_eq!(reused, built);
    check_vm_views(&again, &exp2, &g, &fg).await;
}

/// Opens `paths` (names from the trace roots), makes the experiment `name` of
/// them and waits until it is COMPLETED; returns its JSON.
async fn experiment_of(app: &Router, paths: &[&str], name: &str) -> Value {
    let mut traces = Vec::new();
    for path in paths {
        let body = json!({"parameters": {"uri": path}}).to_string();
        let t = post(app, "/traces", &body).await;
        traces.push(t.ok()["UUID"].as_str().unwrap().to_string());
    }
    let body = json!({"parameters": {"name": name, "traces": traces}}).to_string();
    let exp = post(app, "/experiments", &body).await.ok()["UUID"]
        .as_str()
        .unwrap()
        .to_string();
    wait_completed(app, &format!("/experiments/{exp}"))
        .await
        .json
}

/// With `serve --sync`, the experiment analyses read the traces in the
/// experiment's synchronized time (the saved formulas); with `--sync off`, in
/// their own clocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_analyses_follow_the_synchronization() {
    let Some(shared) = shared_dir() else {
        return;
    };
    let roots = vec![shared.join("traces/ctf")];
    let mut starts = Vec::new();
    for sync in [
        sextant_providers::sources::SyncMode::Auto,
        sextant_providers::sources::SyncMode::Off,
    ] {
        let data = tempfile::tempdir().unwrap();
        let app = sextant_server::router(sextant_server::state(sextant_server::ServeConfig {
            data_dir: Some(data.path().to_path_buf()),
            trace_roots: roots.clone(),
            sync,
            ..Default::default()
        }));
        let exp = experiment_of(&app, &["scp_src/ctf", "scp_dest/ctf"], "pair").await;
        let file = data.path().join(format!(
            ".tracing/pair_exp/{}.ht",
            sextant_providers::vm::model::ID
        ));
        let ss = sht::StateSystem::open(&file, None).unwrap();
        starts.push((exp["start"].as_i64().unwrap(), ss.start_time()));
    }
    // Each history starts with its experiment (whose range comes from the
    // traces' own analyses, in the experiment's time), and the formulas moved
    // the first event.
    for (exp_start, ht_start) in &starts {
        assert_eq!(ht_start, exp_start);
    }
    assert_ne!(starts[0].1, starts[1].1);
}
