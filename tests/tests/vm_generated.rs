//! The VM analyses on a generated experiment: a KVM host trace and one guest trace
//! per VM (`sextant_trace::gen::generate_with_guests`). Expected values come from
//! how the generator builds the experiment: 2 VMs of 2 vCPUs, guest threads
//! 1000 + 2 * vcpu + i on each vCPU, guest events only while the host runs the
//! vCPU, one hypercall exchange per VM every 20 ms.

use std::path::{Path, PathBuf};
use std::process::Command;

use sextant_providers::native_registry;
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_trace::gen::{generate_with_guests, GenConfig, GenLimit, GenReport, GuestReport};
use sht::{StateSystem, StateSystemQuerier, StateValue};

const VMS: u32 = 2;
const VCPUS: u32 = 2;

fn generated(dir: &Path) -> (GenReport, Vec<GuestReport>) {
    let cfg = GenConfig {
        limit: GenLimit::Events(150_000),
        cpus: 4,
        threads: 60,
        vms: VMS,
        vcpus_per_vm: VCPUS,
        seed: 7,
        ..GenConfig::default()
    };
    generate_with_guests(&dir.join("host"), &cfg, Some(&dir.join("guests")), None).unwrap()
}

fn run(traces: &[PathBuf], analysis: &str) -> (Vec<String>, StateSystem) {
    let provider = native_registry().create(analysis).unwrap();
    let mut source = sextant_providers::sources::open(traces).unwrap();
    let hosts = source.info().hosts;
    let (_, mut systems) = build(
        &mut *source,
        vec![Analysis {
            provider,
            output: Output::InMemory,
        }],
        &BuildOptions::default(),
    )
    .unwrap();
    (hosts, systems.remove(0))
}

/// Every interval of `q`: (start, value).
fn history(ss: &StateSystem, q: i32) -> Vec<(i64, StateValue)> {
    let mut out = Vec::new();
    let mut t = ss.start_time();
    while t <= ss.current_end_time() {
        let i = ss.query_single(t, q).unwrap();
        out.push((i.start, i.value.clone()));
        t = i.end + 1;
    }
    out
}

fn value_at(ss: &StateSystem, path: &[&str], t: i64) -> StateValue {
    let q = ss.quark(path).unwrap();
    ss.query_single(t, q).unwrap().value
}

#[test]
fn babeltrace2_reads_the_host_and_guest_traces() {
    if Command::new("babeltrace2")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: babeltrace2 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (host, guests) = generated(dir.path());
    assert_eq!(guests.len(), VMS as usize);
    let read = |path: &Path| {
        let out = Command::new("babeltrace2").arg(path).output().unwrap();
        assert!(
            out.status.success(),
            "babeltrace2 {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = read(&host.dir);
    assert_eq!(text.lines().count() as u64, host.events);
    assert!(text.contains("vmsync_gh_host"));
    for g in &guests {
        let text = read(&g.dir);
        assert_eq!(text.lines().count() as u64, g.events, "{}", g.dir.display());
        let uid = format!("vm_uid = {}", g.vm_uid);
        let syncs = text
            .lines()
            .filter(|l| l.contains("vmsync_gh_guest") && l.contains(&uid))
            .count();
        assert!(
            syncs >= 2,
            "{syncs} vmsync_gh_guest events in {}",
            g.dir.display()
        );
        assert!(text.contains(&format!("{} sched_switch", g.hostname)));
    }
}

#[test]
fn the_vm_analyses_find_the_generated_vms() {
    let dir = tempfile::tempdir().unwrap();
    let (host, guests) = generated(dir.path());
    let mut traces = vec![host.dir.clone()];
    traces.extend(guests.iter().map(|g| g.dir.clone()));

    // The model: each guest under the host, its vCPUs run by distinct host threads.
    let (ids, model) = run(&traces, "vm-model");
    let (host_id, guest_ids) = (&ids[0], &ids[1..]);
    let mut vcpu_threads = Vec::new();
    let end = model.current_end_time();
    for g in guest_ids {
        let hv = value_at(&model, &[host_id, "Guests", g, "Hypervisor"], end);
        assert_eq!(hv, StateValue::String("Qemu/KVM".into()));
        for n in 0..VCPUS {
            match value_at(&model, &[host_id, "Guests", g, "CPUs", &n.to_string()], end) {
                StateValue::Int(tid) if tid > 0 => vcpu_threads.push(tid),
                v => panic!("guest {g} vCPU {n}: {v:?}"),
            }
        }
    }
    vcpu_threads.sort();
    vcpu_threads.dedup();
    assert_eq!(vcpu_threads.len() as u32, VMS * VCPUS);

    // The fused analysis: machine roles, and physical CPUs that run the guests'
    // threads inside their vCPUs.
    let (_, fused) = run(&traces, "vm-fused");
    let end = fused.current_end_time();
    assert_eq!(
        value_at(&fused, &["Hosts", host_id], end),
        StateValue::Int(1)
    );
    for g in guest_ids {
        assert_eq!(value_at(&fused, &["Hosts", g], end), StateValue::Int(2));
        assert_eq!(
            value_at(&fused, &["Hosts", g, "Parent"], end),
            StateValue::String(host_id.as_str().into())
        );
    }
    let guest_tids: Vec<i32> = (0..(VCPUS * 2) as i32).map(|i| 1000 + i).collect();
    let mut in_vm = 0;
    let mut guest_threads_seen = Vec::new();
    for cpu in fused.quarks(&["CPUs", "*"]).unwrap() {
        let cpu_name = fused.attributes().name(cpu).unwrap().to_string();
        let machine = fused.quark(&["CPUs", &cpu_name, "Machine_name"]).unwrap();
        for (t, v) in history(&fused, machine) {
            let StateValue::String(m) = v else { continue };
            let condition = value_at(&fused, &["CPUs", &cpu_name, "Condition"], t);
            if m.as_ref() == host_id.as_str() {
                assert_eq!(condition, StateValue::Int(1), "CPU {cpu_name} at {t}");
                continue;
            }
            assert!(guest_ids.iter().any(|g| g.as_str() == m.as_ref()), "{m}");
            in_vm += 1;
            assert_eq!(condition, StateValue::Int(0), "CPU {cpu_name} at {t}");
            match value_at(&fused, &["CPUs", &cpu_name, "Virtual_cpu"], t) {
                StateValue::Int(n) => assert!((0..VCPUS as i32).contains(&n)),
                v => panic!("Virtual_cpu {v:?} at {t}"),
            }
            // The vCPU's guest thread (-1 until the guest's first switch on it).
            match value_at(&fused, &["CPUs", &cpu_name, "Current_thread"], t) {
                StateValue::Int(tid) if tid == -1 || tid == 0 => {}
                StateValue::Int(tid) => {
                    assert!(guest_tids.contains(&tid), "guest thread {tid}");
                    guest_threads_seen.push(tid);
                }
                v => panic!("Current_thread {v:?} at {t}"),
            }
        }
    }
    assert!(in_vm > 100, "{in_vm} guest runs on the physical CPUs");
    guest_threads_seen.sort();
    guest_threads_seen.dedup();
    assert_eq!(guest_threads_seen, guest_tids);
    // Each guest's threads have their statuses in the fused tree.
    for g in guest_ids {
        let threads = fused.quarks(&["Threads", g, "*", "Status"]).unwrap();
        assert!(!threads.is_empty(), "no thread of {g}");
    }
}

/// Guest events happen only while the host runs their vCPU (between the host's
/// `kvm_x86_entry` and `kvm_x86_exit` of the vCPU's thread), and every hypercall
/// exchange pairs a guest event with the host's, in the order the protocol says.
#[test]
fn guest_events_fall_inside_the_hosts_guest_windows() {
    use sextant_trace::Experiment;
    use std::collections::HashMap;
    use std::ops::ControlFlow;
    use std::sync::atomic::AtomicU64;

    let dir = tempfile::tempdir().unwrap();
    let (host, guests) = generated(dir.path());
    let mut paths = vec![host.dir.clone()];
    paths.extend(guests.iter().map(|g| g.dir.clone()));
    let uid_vm: HashMap<i64, usize> = guests
        .iter()
        .enumerate()
        .map(|(i, g)| (g.vm_uid, i))
        .collect();
    let mut exp = Experiment::open(&paths).unwrap();
    let class_names: Vec<String> = (0..exp.class_count())
        .map(|c| exp.class_name(sextant_trace::ClassId(c)).to_string())
        .collect();
    let field =
        |exp: &Experiment, c: u32, name: &str| exp.field_handle(sextant_trace::ClassId(c), name);
    let handles: Vec<_> = (0..exp.class_count())
        .map(|c| {
            (
                field(&exp, c, "vcpu_id"),
                field(&exp, c, "context._pid"),
                field(&exp, c, "vm_uid"),
                field(&exp, c, "cnt"),
                field(&exp, c, "context._tid"),
            )
        })
        .collect();
    // QEMU pid -> VM, from the host's vmsync events (first pass).
    let mut pid_vm = HashMap::new();
    let progress = AtomicU64::new(0);
    exp.for_each(
        &mut |e| {
            let c = e.class().0 as usize;
            if class_names[c] == "vmsync_gh_host" {
                let (_, pid, uid, _, _) = handles[c];
                pid_vm.insert(
                    e.int(pid.unwrap()).unwrap(),
                    uid_vm[&e.int(uid.unwrap()).unwrap()],
                );
            }
            ControlFlow::Continue(())
        },
        &progress,
    )
    .unwrap();
    assert_eq!(pid_vm.len(), VMS as usize);
    // (vm, vcpu) -> in the guest; host thread -> its (vm, vcpu).
    let mut inside: HashMap<(usize, i64), bool> = HashMap::new();
    let mut thread_vcpu: HashMap<i64, (usize, i64)> = HashMap::new();
    let mut guest_events = 0u64;
    let mut gh_guest: HashMap<(usize, i64), i64> = HashMap::new();
    let mut exchanges = 0;
    exp.for_each(
        &mut |e| {
            let c = e.class().0 as usize;
            let name = class_names[c].as_str();
            let (vcpu_h, pid_h, uid_h, cnt_h, tid_h) = handles[c];
            let t = e.timestamp();
            if e.trace_index() == 0 {
                let vm = pid_h
                    .and_then(|h| e.int(h))
                    .and_then(|p| pid_vm.get(&p).copied());
                match (name, vm) {
                    ("kvm_x86_entry", Some(vm)) => {
                        let v = e.int(vcpu_h.unwrap()).unwrap();
                        let tid = e.int(tid_h.unwrap()).unwrap();
                        thread_vcpu.insert(tid, (vm, v));
                        let before = inside.insert((vm, v), true);
                        assert_ne!(before, Some(true), "two entries without exit at {t}");
                    }
                    ("kvm_x86_exit", Some(_)) => {
                        let tid = e.int(tid_h.unwrap()).unwrap();
                        if let Some(key) = thread_vcpu.get(&tid) {
                            inside.insert(*key, false);
                        }
                    }
                    ("vmsync_gh_host", Some(vm)) => {
                        let cnt = e.int(cnt_h.unwrap()).unwrap();
                        let sent = gh_guest.remove(&(vm, cnt)).expect("guest side first");
                        assert!(sent < t);
                        exchanges += 1;
                    }
                    _ => {}
                }
                return ControlFlow::Continue(());
            }
            let vm = e.trace_index() - 1;
            let v = e.cpu().unwrap() as i64;
            guest_events += 1;
            assert!(
                inside.get(&(vm, v)).copied().unwrap_or(false),
                "guest {vm} vCPU {v}: {name} at {t} outside the host's window"
            );
            if name == "vmsync_gh_guest" {
                assert_eq!(e.int(uid_h.unwrap()), Some(guests[vm].vm_uid));
                gh_guest.insert((vm, e.int(cnt_h.unwrap()).unwrap()), t);
            }
            ControlFlow::Continue(())
        },
        &progress,
    )
    .unwrap();
    assert_eq!(guest_events, guests.iter().map(|g| g.events).sum::<u64>());
    assert!(exchanges >= 2 * VMS as usize, "{exchanges} exchanges");
}
