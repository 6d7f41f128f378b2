//! The OpenStack providers (Nova VM states, Nova services, Neutron, Cinder)
//! against `shared/golden/openstack/`, on both the XML stub and the CTF copy of
//! each real thesis trace, plus facts read from the real traces with babeltrace2
//! and malformed-message handling.

#[path = "common/golden_checks.rs"]
mod golden_checks;

use std::path::{Path, PathBuf};

use sextant_providers::openstack::{cinder, neutron, nova, nova_services};
use sextant_providers::pipeline::{build, Analysis, BuildOptions, BuildReport, Output};
use sextant_providers::{sources, StateProvider};
use sextant_tests::{case_dirs, shared_dir};
use sht::{StateSystem, StateSystemQuerier, StateValue};

fn provider_for(analysis: &str) -> Box<dyn StateProvider> {
    match analysis {
        "openstack.nova.services" => Box::new(nova_services::NovaServicesProvider::new()),
        "openstack.nova.vmstate" => Box::new(nova::NovaVmStateProvider::new()),
        "openstack.neutron" => Box::new(neutron::NeutronProvider::new()),
        "openstack.cinder" => Box::new(cinder::CinderProvider::new()),
        other => panic!("unknown OpenStack golden analysis {other}"),
    }
}

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

/// The `children` block: exact child lists of the given paths.
fn check_children(ss: &StateSystem, golden: &serde_json::Value) -> Vec<String> {
    let mut failures = Vec::new();
    for (path, want) in golden["children"].as_object().into_iter().flatten() {
        let p: Vec<&str> = path.split('/').collect();
        let Ok(q) = ss.quark(&p) else {
            failures.push(format!("children of {path}: no such attribute"));
            continue;
        };
        let mut got: Vec<String> = ss
            .attributes()
            .children_of(q)
            .iter()
            .map(|&c| ss.attributes().name(c).unwrap().to_string())
            .collect();
        let mut want: Vec<String> = want
            .as_array()
            .expect("names")
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        got.sort();
        want.sort();
        if got != want {
            failures.push(format!("children of {path}: {got:?}, want {want:?}"));
        }
    }
    failures
}

#[test]
fn openstack_golden_cases() {
    let Some(shared) = shared_dir() else { return };
    let cases = case_dirs(&shared, "golden/openstack");
    let mut ran = 0;
    for dir in cases {
        let Ok(text) = std::fs::read_to_string(dir.join("expected.json")) else {
            continue; // the traces directory
        };
        let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
        let analysis = golden["analysis"].as_str().expect("analysis");
        let mut traces: Vec<PathBuf> = golden["traces"]
            .as_array()
            .expect("traces")
            .iter()
            .map(|t| dir.join(t.as_str().expect("trace file")))
            .collect();
        if let Some(ctf) = golden["ctf"].as_str() {
            traces.push(dir.join(ctf));
        }
        for trace in traces {
            let (_, ss) = run(&trace, provider_for(analysis));
            let mut failures = golden_checks::run_checks(&ss, &golden);
            failures.extend(check_children(&ss, &golden));
            assert!(
                failures.is_empty(),
                "{} on {}: {} failed checks:\n{}",
                dir.display(),
                trace.display(),
                failures.len(),
                failures.join("\n")
            );
            ran += 1;
        }
    }
    assert!(ran >= 5, "only {ran} OpenStack golden runs");
}

fn real_trace(shared: &Path, service: &str) -> PathBuf {
    shared.join("traces/openstack").join(service)
}

fn intervals(ss: &StateSystem, path: &[&str]) -> Vec<sht::Interval> {
    let q = ss.quark(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut v = ss
        .query_2d(&[q], ss.start_time(), ss.current_end_time())
        .unwrap();
    v.sort_by_key(|i| i.start);
    v
}

fn non_null(ss: &StateSystem, path: &[&str]) -> Vec<sht::Interval> {
    intervals(ss, path)
        .into_iter()
        .filter(|i| i.value != StateValue::Null)
        .collect()
}

// Facts below were read from the real sessions with
// `babeltrace2 shared/traces/openstack/<service> | grep lttng_trace` (which prints
// local time, 15:03 for the 11:03 of `asctime`).

/// Nova session (2016-08-08): vm-26009 is created (building at
/// compute.instance.create.start 15:03:42.148087831, active at create.end
/// 15:03:48.024160460, about 5.88 s) and vm-18387 is deleted.
#[test]
fn nova_real_trace_shows_creation_and_deletion() {
    let Some(shared) = shared_dir() else { return };
    let trace = real_trace(&shared, "nova");
    let (report, ss) = run(&trace, Box::new(nova::NovaVmStateProvider::new()));
    let project = "bf5939a428aa40c3883316e057051611";
    let status = non_null(&ss, &["PROJECTs", project, "VMs", "vm-26009", "Status"]);
    let values: Vec<&StateValue> = status.iter().map(|i| &i.value).collect();
    assert_eq!(values, [&StateValue::Int(0), &StateValue::Int(1)]);
    let building = status[0].end + 1 - status[0].start;
    assert!(
        (5_800_000_000..5_950_000_000).contains(&building),
        "building for {building} ns"
    );
    let host = non_null(&ss, &["PROJECTs", project, "VMs", "vm-26009", "Host"]);
    assert_eq!(host.last().unwrap().value, StateValue::from("controller"));
    let deleted = non_null(&ss, &["PROJECTs", project, "VMs", "vm-18387", "Status"]);
    assert_eq!(deleted.last().unwrap().value, StateValue::Int(3));
    assert!(ss
        .quark(&["Hosts", "controller", "VMs", "vm-26009"])
        .is_ok());
    // The two scheduler records have an empty vmname: skipped and reported, no "" row.
    assert!(ss.quark(&["PROJECTs", ""]).is_err());
    assert!(
        report.warnings.iter().any(|w| w.contains("empty vmname")),
        "{:?}",
        report.warnings
    );
}

/// Nova services: scheduler.select_destinations takes about 8.0 ms and
/// compute.instance.create about 5.88 s for req-2274bd7a (thesis figures).
#[test]
fn nova_services_real_trace_request_durations() {
    let Some(shared) = shared_dir() else { return };
    let (_, ss) = run(
        &real_trace(&shared, "nova"),
        Box::new(nova_services::NovaServicesProvider::new()),
    );
    let req = "req-2274bd7a-e7a3-4284-a44b-5dd843edf212";
    let sched = non_null(
        &ss,
        &["Requests", req, "Ops", "scheduler.select_destinations"],
    );
    assert_eq!(sched.len(), 1);
    let d = sched[0].end + 1 - sched[0].start;
    assert!((7_900_000..8_100_000).contains(&d), "scheduler {d} ns");
    let create = non_null(&ss, &["Requests", req, "Ops", "compute.instance.create"]);
    let d = create[0].end + 1 - create[0].start;
    assert!((5_850_000_000..5_900_000_000).contains(&d), "create {d} ns");
    assert_eq!(
        non_null(&ss, &["Requests", req, "VM"])[0].value,
        StateValue::from("vm-26009")
    );
}

/// Neutron session (2016-08-03): the L3 agent deletes then removes router
/// c6a8af8f; the DHCP agent creates and deletes network 1d167876.
#[test]
fn neutron_real_trace_router_and_network_lifecycle() {
    let Some(shared) = shared_dir() else { return };
    let (_, ss) = run(
        &real_trace(&shared, "neutron"),
        Box::new(neutron::NeutronProvider::new()),
    );
    let router = non_null(
        &ss,
        &[
            "Agents",
            "l3-agent",
            "Routers",
            "c6a8af8f-d86f-40ad-a6f6-9196b43eba40",
        ],
    );
    let codes: Vec<&StateValue> = router.iter().map(|i| &i.value).collect();
    assert_eq!(codes, [&StateValue::Int(9), &StateValue::Int(8)]);
    let net = non_null(
        &ss,
        &[
            "Agents",
            "dhcp-agent",
            "Networks",
            "1d167876-a788-4e47-a830-995e6095fedf",
        ],
    );
    let codes: Vec<&StateValue> = net.iter().map(|i| &i.value).collect();
    assert_eq!(codes, [&StateValue::Int(1), &StateValue::Int(3)]);
}

/// Cinder session (2016-08-15): two volumes created (49ebdf72 then 1b6bf1ad)
/// by cinder.scheduler.manager, and four volume updates.
#[test]
fn cinder_real_trace_volume_lifecycle() {
    let Some(shared) = shared_dir() else { return };
    let (_, ss) = run(
        &real_trace(&shared, "cinder"),
        Box::new(cinder::CinderProvider::new()),
    );
    let a = non_null(
        &ss,
        &["Volumes", "49ebdf72-bc39-421a-bfaa-bd2f4636bb26", "Action"],
    );
    let b = non_null(
        &ss,
        &["Volumes", "1b6bf1ad-0673-46f5-b0c2-b02914093192", "Action"],
    );
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(a[0].value, StateValue::Int(1));
    assert!(a[0].start < b[0].start);
    let updates = non_null(&ss, &["Volumes", "volume", "Action"]);
    assert_eq!(updates.len(), 4);
    assert!(updates.iter().all(|i| i.value == StateValue::Int(9)));
}

/// Multi-layer report of vm-26009 on the real Nova session: its states
/// (building then active on host controller) and the request that created it
/// (scheduler select then compute create, same request id).
#[test]
fn vm_report_links_states_and_requests_of_one_vm() {
    use sextant_providers::openstack::vm_report::vm_report;
    let Some(shared) = shared_dir() else { return };
    let trace = real_trace(&shared, "nova");
    let (_, vmstate) = run(&trace, Box::new(nova::NovaVmStateProvider::new()));
    let (_, services) = run(&trace, Box::new(nova_services::NovaServicesProvider::new()));
    let r = vm_report(&vmstate, Some(&services), None, "vm-26009", None).expect("vm-26009");
    let states: Vec<&str> = r.status.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(states, ["building", "active"]);
    assert_eq!(r.host.last().unwrap().label, "controller");
    let ops: Vec<&str> = r.requests.iter().map(|o| o.operation.as_str()).collect();
    assert_eq!(
        ops,
        ["scheduler.select_destinations", "compute.instance.create"]
    );
    assert!(r
        .requests
        .iter()
        .all(|o| o.request_id == "req-2274bd7a-e7a3-4284-a44b-5dd843edf212"));
    assert!(r.timeline().len() >= 3);
    assert!(vm_report(&vmstate, Some(&services), None, "no-such-vm", None).is_none());
}
