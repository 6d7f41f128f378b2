//! The VM outputs on a generated KVM host trace with its guest's CTF trace
//! (`sextant_trace::gen`, as `sextant gen-trace host --size 4MiB --cpus 2 --vms
//! 1 --vcpus 2 --guests DIR`), opened as one experiment: the Virtual CPU view
//! finds the guest's kernel analysis by the guest's host id (its clock UUID,
//! read here from the raw metadata packets), and the KVM exit rate counts the
//! host's raw exits. Expected values come from the raw events, read with the
//! `trace` crate's reader.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use axum::Router;
use common::*;
use serde_json::{json, Value};
use sextant_trace::gen::{generate_with_guests, GenConfig, GenLimit};
use sextant_trace::sync::SyncMode;
use sextant_trace::{ClassId, Experiment};

const VCPU_VIEW: &str =
    "org.eclipse.tracecompass.incubator.internal.virtual.machine.analysis.vm.ui.vmview";
const RATE: &str = "org.sextant.server.KvmExitRate";

/// (host trace, guest trace) in `dir`.
fn generate(dir: &Path) -> (PathBuf, PathBuf) {
    let cfg = GenConfig {
        limit: GenLimit::Bytes(4 << 20),
        cpus: 2,
        threads: 40,
        vms: 1,
        vcpus_per_vm: 2,
        seed: 5,
        ..GenConfig::default()
    };
    let (host, guests) =
        generate_with_guests(&dir.join("host"), &cfg, Some(&dir.join("guests")), None).unwrap();
    assert_eq!(guests.len(), 1);
    (host.dir, guests[0].dir.clone())
}

/// One raw event: (time, cpu, event name, integer and text fields by name).
type RawEvent = (
    i64,
    Option<u32>,
    String,
    HashMap<String, i64>,
    HashMap<String, String>,
);

/// The events of `names` in the CTF trace `traces[which]`, with the named
/// fields; with several traces, in their synchronized time (as the server
/// serves an experiment of several hosts: formulas from the vmsync
/// hypercall events).
fn raw_events(traces: &[&Path], which: usize, names: &[&str], fields: &[&str]) -> Vec<RawEvent> {
    let mut exp = Experiment::open(traces).unwrap();
    if traces.len() > 1 {
        sextant_trace::sync::apply(&mut exp, &SyncMode::Auto, None, &AtomicU64::new(0)).unwrap();
    }
    let mut wanted = HashMap::new();
    for c in 0..exp.class_count() {
        let class = ClassId(c);
        let name = exp.class_name(class).to_string();
        if names.contains(&name.as_str()) {
            let handles: Vec<_> = fields
                .iter()
                .filter_map(|f| exp.field_handle(class, f).map(|h| (*f, h)))
                .collect();
            wanted.insert(c, (name, handles));
        }
    }
    let mut out = Vec::new();
    exp.for_each(
        &mut |e| {
            if let (true, Some((name, handles))) =
                (e.trace_index() == which, wanted.get(&e.class().0))
            {
                let mut ints = HashMap::new();
                let mut texts = HashMap::new();
                for (f, h) in handles {
                    if let Some(v) = e.int(*h) {
                        ints.insert(f.to_string(), v);
                    } else if let Some(s) = e.string(*h) {
                        texts.insert(f.to_string(), s.to_string());
                    }
                }
                out.push((e.timestamp(), e.cpu(), name.clone(), ints, texts));
            }
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    out
}

/// The clock UUID of a CTF trace, from its metadata file (packetized TSDL:
/// 37-byte packet headers whose content size, in bits, is at byte 24).
fn clock_uuid(trace: &Path) -> String {
    let bytes = std::fs::read(trace.join("metadata")).unwrap();
    let mut text = String::new();
    let mut at = 0;
    while at + 37 <= bytes.len() {
        let word = |o: usize| u32::from_le_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
        assert_eq!(word(0), 0x75d1_1d57, "metadata packet magic");
        let (content, packet) = (word(24) as usize / 8, word(28) as usize / 8);
        text.push_str(std::str::from_utf8(&bytes[at + 37..at + content]).unwrap());
        at += packet;
    }
    let clock = &text[text.find("clock {").expect("a clock block")..];
    let clock = &clock[..clock.find("};").unwrap()];
    let from = clock.find("uuid = \"").expect("a clock uuid") + "uuid = \"".len();
    clock[from..from + clock[from..].find('"').unwrap()].to_string()
}

async fn experiment(data: &Path, traces: &[&Path], name: &str) -> (Router, String) {
    let app = sextant_server::router(sextant_server::state(sextant_server::ServeConfig {
        data_dir: Some(data.to_path_buf()),
        ..Default::default()
    }));
    let mut ids = Vec::new();
    for t in traces {
        let body = json!({"parameters": {"uri": t}}).to_string();
        ids.push(
            post(&app, "/traces", &body).await.ok()["UUID"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let body = json!({"parameters": {"name": name, "traces": ids}}).to_string();
    let exp = post(&app, "/experiments", &body).await.ok()["UUID"]
        .as_str()
        .unwrap()
        .to_string();
    wait_completed(&app, &format!("/experiments/{exp}")).await;
    (app, exp)
}

fn label(e: &Value) -> &str {
    e["labels"][0].as_str().unwrap()
}

fn children(entries: &[Value], parent: i64) -> Vec<&Value> {
    entries.iter().filter(|e| e["parentId"] == parent).collect()
}

#[tokio::test]
async fn vcpu_view_finds_the_ctf_guest_by_its_clock_uuid() {
    let dir = tempfile::tempdir().unwrap();
    let (host, guest) = generate(dir.path());
    let data = tempfile::tempdir().unwrap();
    let (app, exp) = experiment(data.path(), &[&host, &guest], "gen-kvm").await;
    let entries = tree(&app, &exp, "timeGraph", VCPU_VIEW).await;

    // The guest is named by its clock UUID, and has its threads.
    let uuid = clock_uuid(&guest);
    let guests: Vec<&Value> = entries
        .iter()
        .filter(|e| label(e).starts_with("Guest: "))
        .collect();
    assert_eq!(guests.len(), 1, "{entries:?}");
    assert_eq!(label(guests[0]), format!("Guest: {uuid}"));
    let gid = guests[0]["id"].as_i64().unwrap();
    let vcpus: Vec<&str> = children(&entries, gid)
        .into_iter()
        .map(label)
        .filter(|l| l.starts_with("vCPU"))
        .collect();
    assert_eq!(vcpus, ["vCPU 0", "vCPU 1"]);
    let threads = children(&entries, gid)
        .into_iter()
        .find(|e| label(e) == "Threads")
        .expect("the guest's Threads group (its kernel analysis was found)")["id"]
        .as_i64()
        .unwrap();
    let rows: BTreeMap<i64, (i64, String)> = children(&entries, threads)
        .into_iter()
        .map(|e| {
            let l = label(e).to_string();
            let tid = l.split(':').next().unwrap().parse().unwrap();
            (tid, (e["id"].as_i64().unwrap(), l))
        })
        .collect();

    // Facts from the guest's raw events, in the experiment's time.
    let raw = raw_events(
        &[&host, &guest],
        1,
        &[
            "sched_switch",
            "sched_process_exec",
            "sched_process_exit",
            "sched_process_free",
        ],
        &["prev_tid", "prev_comm", "next_tid", "next_comm", "tid"],
    );
    let switches: Vec<&RawEvent> = raw.iter().filter(|e| e.2 == "sched_switch").collect();
    assert!(
        switches.len() > 100,
        "{} guest sched_switch",
        switches.len()
    );
    // Per thread: its last switch (time, comm) and whether an exec, exit or
    // free came after it (then its name at the end is not that comm).
    let mut last: BTreeMap<i64, (i64, String)> = BTreeMap::new();
    for (t, _, name, ints, texts) in &raw {
        if name == "sched_switch" {
            for side in ["prev", "next"] {
                let tid = ints[&format!("{side}_tid")];
                if tid > 0 {
                    last.insert(tid, (*t, texts[&format!("{side}_comm")].clone()));
                }
            }
        }
    }
    let changed_after: Vec<i64> = raw
        .iter()
        .filter(|e| e.2 != "sched_switch")
        .filter_map(|(t, _, _, ints, _)| {
            let tid = ints.get("tid")?;
            last.get(tid).is_some_and(|l| *t > l.0).then_some(*tid)
        })
        .collect();
    let mut labels_checked = 0;
    for (tid, (_, comm)) in &last {
        let (_, got) = rows
            .get(tid)
            .unwrap_or_else(|| panic!("no row for guest thread {tid}: {rows:?}"));
        if !changed_after.contains(tid) {
            assert_eq!(got, &format!("{tid}: {comm}"));
            labels_checked += 1;
        }
    }
    // The generator gives each vCPU two guest threads.
    assert!(labels_checked >= 4, "{labels_checked}");

    // States: on a CPU (user mode, system call or interrupted) exactly when
    // its last sched_switch so far switched it in.
    let (start, end) = (switches[0].0, switches[switches.len() - 1].0);
    let times: Vec<i64> = (0..1000).map(|k| start + (end - start) / 999 * k).collect();
    let ids: Vec<i64> = last.keys().map(|tid| rows[tid].0).collect();
    let body =
        json!({"parameters": {"requested_times": times, "requested_items": ids}}).to_string();
    let a = post(
        &app,
        &out(&exp, &format!("timeGraph/{VCPU_VIEW}/states")),
        &body,
    )
    .await;
    let answer = a.ok();
    assert_eq!(answer["status"], "COMPLETED");
    let by_row: HashMap<i64, &Value> = answer["model"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["entryId"].as_i64().unwrap(), r))
        .collect();
    let mut running_seen = 0;
    for (tid, &(id, _)) in rows.iter().filter(|(t, _)| last.contains_key(t)) {
        let states = by_row[&id]["states"].as_array().unwrap();
        for &t in &times {
            let on_cpu = switches
                .iter()
                .rfind(|s| s.0 <= t && (s.3["prev_tid"] == *tid || s.3["next_tid"] == *tid))
                .is_some_and(|s| s.3["next_tid"] == *tid);
            let key = states
                .iter()
                .find(|s| {
                    let (a, b) = (s["start"].as_i64().unwrap(), s["end"].as_i64().unwrap());
                    a <= t && t < b.max(a + 1)
                })
                .and_then(|s| s["style"]["parentKey"].as_str());
            let shown_running = matches!(
                key,
                Some("THREAD_USERMODE" | "THREAD_SYSCALL" | "THREAD_INTERRUPTED")
            );
            assert_eq!(shown_running, on_cpu, "thread {tid} at {t}: {key:?}");
            running_seen += usize::from(on_cpu);
        }
    }
    assert!(running_seen > 100, "{running_seen}");
}

#[tokio::test]
async fn kvm_exit_rate_counts_the_generated_host_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (host, guest) = generate(dir.path());
    let data = tempfile::tempdir().unwrap();
    let (app, exp) = experiment(data.path(), &[&host, &guest], "gen-kvm").await;
    let entries = tree(&app, &exp, "XY", RATE).await;
    let roots = children(&entries, -1);
    assert_eq!(roots.len(), 1, "only the host has exits: {entries:?}");
    // The history's span (the host trace's first and last events).
    let (start, end) = (
        roots[0]["start"].as_i64().unwrap(),
        roots[0]["end"].as_i64().unwrap(),
    );

    // Raw exits; the vCPU of each is the vcpu_id of the last entry on its CPU.
    let raw = raw_events(
        &[&host, &guest],
        0,
        &["kvm_x86_entry", "kvm_x86_exit"],
        &["vcpu_id", "exit_reason"],
    );
    let mut entered: HashMap<u32, i64> = HashMap::new();
    // (time, cpu, vcpu, reason code)
    let mut exits: Vec<(i64, u32, Option<i64>, i64)> = Vec::new();
    for (t, cpu, name, ints, _) in &raw {
        let cpu = cpu.unwrap();
        if name == "kvm_x86_entry" {
            entered.insert(cpu, ints["vcpu_id"]);
        } else {
            exits.push((*t, cpu, entered.remove(&cpu), ints["exit_reason"]));
        }
    }
    assert!(exits.len() > 500, "{}", exits.len());
    assert!(start <= raw[0].0 && raw[raw.len() - 1].0 <= end);

    // Linux's vmx.h names of the codes the generator writes.
    let reason = |code: i64| match code {
        1 => "EXIT_REASON_EXTERNAL_INTERRUPT",
        10 => "EXIT_REASON_CPUID",
        12 => "EXIT_REASON_HLT",
        18 => "EXIT_REASON_VMCALL",
        30 => "EXIT_REASON_IO_INSTRUCTION",
        32 => "EXIT_REASON_MSR_WRITE",
        40 => "EXIT_REASON_PAUSE_INSTRUCTION",
        48 => "EXIT_REASON_EPT_VIOLATION",
        49 => "EXIT_REASON_EPT_MISCONFIG",
        52 => "EXIT_REASON_PREEMPTION_TIMER",
        other => panic!("exit reason {other}"),
    };
    type Filter = Box<dyn Fn(&(i64, u32, Option<i64>, i64)) -> bool>;
    let mut series: Vec<(Vec<String>, Filter)> = Vec::new();
    let name = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for c in 0..2u32 {
        series.push((
            name(&["Physical CPUs", &format!("CPU {c}")]),
            Box::new(move |e| e.1 == c),
        ));
    }
    for v in 0..2i64 {
        series.push((
            name(&[&format!("VCPU {v}")]),
            Box::new(move |e| e.2 == Some(v)),
        ));
        let mut codes: Vec<i64> = exits
            .iter()
            .filter(|e| e.2 == Some(v))
            .map(|e| e.3)
            .collect();
        codes.sort_unstable();
        codes.dedup();
        assert!(codes.len() >= 4, "{codes:?}");
        for code in codes {
            series.push((
                name(&[&format!("VCPU {v}"), reason(code)]),
                Box::new(move |e| e.2 == Some(v) && e.3 == code),
            ));
        }
    }
    series.push((
        name(&["All VCPUs (Aggregated)"]),
        Box::new(|e| e.2.is_some()),
    ));

    // 40 sample times over the host trace: per window, the rate times the
    // window's length is the number of raw exits in it.
    let n = 40;
    let times: Vec<i64> = (0..n)
        .map(|k| start + (end - start) / (n - 1) * k)
        .collect();
    let half = (times[1] - times[0]) / 2;
    let mut bounds = vec![start];
    bounds.extend(times[1..].iter().map(|t| t - half));
    bounds.push((times[n as usize - 1] + half).min(end));
    for (path, keep) in &series {
        let mut labels = vec![label(roots[0])];
        labels.extend(path.iter().map(String::as_str));
        let id = entry(&entries, &labels);
        let body =
            json!({"parameters": {"requested_times": times, "requested_items": [id]}}).to_string();
        let a = post(&app, &out(&exp, &format!("XY/{RATE}/xy")), &body).await;
        let s = &a.ok()["model"]["series"][0];
        let y: Vec<f64> = s["yValues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let mut total = 0;
        for k in 0..n as usize {
            let (lo, hi) = (bounds[k], bounds[k + 1]);
            let want = exits
                .iter()
                .filter(|e| lo < e.0 && e.0 <= hi && keep(e))
                .count();
            let got = (y[k] * (hi - lo) as f64 * 1e-9).round() as usize;
            assert_eq!(got, want, "{path:?} window {k} ({lo}, {hi}]");
            total += want;
        }
        let all = exits.iter().filter(|e| e.0 > start && keep(e)).count();
        assert_eq!(total, all, "{path:?}");
        assert!(all > 0, "{path:?}");
    }
}
