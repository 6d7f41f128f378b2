//! Malformed-message handling of the OpenStack providers: every class of bad
//! record is counted, reported in the build warnings, and never creates an
//! attribute named "".

use sht::{StateSystem, StateSystemQuerier, StateValue};

use crate::pipeline::{build, Analysis, BuildOptions, BuildReport, Output};
use crate::testsource::TextSource;
use crate::StateProvider;

use super::{cinder, neutron, nova, nova_services};

fn run(provider: Box<dyn StateProvider>, events: &str) -> (BuildReport, StateSystem) {
    let mut src = TextSource::new(events);
    let analyses = vec![Analysis {
        provider,
        output: Output::InMemory,
    }];
    let (report, mut systems) = build(&mut src, analyses, &BuildOptions::default()).unwrap();
    (report, systems.remove(0))
}

fn no_empty_names(ss: &StateSystem) {
    for q in 0..ss.attribute_count() as i32 {
        assert_ne!(
            ss.attributes().name(q).unwrap(),
            "",
            "quark {q} is named \"\""
        );
    }
}

fn at(ss: &StateSystem, path: &[&str], t: i64) -> StateValue {
    let q = ss.quark(path).unwrap_or_else(|_| panic!("{path:?}"));
    ss.query_single(t, q).unwrap().value
}

fn warned(report: &BuildReport, what: &str) -> bool {
    report.warnings.iter().any(|w| w.contains(what))
}

const NOVA_EVENTS: &str = r#"
    1 lttng_python:event logger_name="nova.compute.manager" msg="lttng_trace:{'event_type':'compute.instance.create.start','vmname':'vm-1','vm_state':'building','host':'None','project_id':'p1','request_id':'req-1'}"
    2 lttng_python:event logger_name="nova.compute.manager" msg="lttng_trace:{'event_type':'compute.instance.create.start','vmname':'vm-1','vm_sta"
    3 lttng_python:event logger_name="nova.compute.manager" msg="lttng_trace:{'event_type':'compute.instance.teleport.start','vmname':'vm-1','vm_state':'active','host':'h1','project_id':'p1','request_id':'req-1'}"
    4 lttng_python:event logger_name="nova.compute.manager" msg="lttng_trace:{'event_type':'compute.instance.create.end','vmname':'','vm_state':'active','host':'h1','project_id':'p1','request_id':''}"
    5 lttng_python:event logger_name="nova.compute.manager" msg="lttng_trace:{'event_type':'compute.instance.create.end','vm_state':'active'}"
    6 lttng_python:event logger_name="" msg="lttng_trace:{'event_type':'x.start'}"
    7 lttng_python:event msg="no logger at all"
    8 lttng_python:event logger_name="nova.compute.manager" msg="lttng_trace:['not','a','dict']"
    9 lttng_python:event logger_name="nova.compute.manager" msg="lttng_trace:{'event_type':'compute.instance.create.end','vmname':'vm-1','vm_state':'levitating','host':'h1','project_id':'','request_id':'req-1'}"
    10 lttng_python:event logger_name="nova.compute.manager" msg="lttng_trace:{'event_type':'compute.instance.create.end','vmname':'vm-1','vm_state':'active','host':'h1','project_id':'p1','request_id':'req-1'}"
"#;

#[test]
fn nova_services_counts_each_class_of_bad_record() {
    let (report, ss) = run(
        Box::new(nova_services::NovaServicesProvider::new()),
        NOVA_EVENTS,
    );
    no_empty_names(&ss);
    let svc = ["SERVICEs", "nova.compute.manager", "Action"];
    assert_eq!(at(&ss, &svc, 1), StateValue::Int(10));
    // Truncated dict: the row goes idle.
    assert_eq!(at(&ss, &svc, 2), StateValue::Null);
    // Unknown event type: "any other thesis event" code 0.
    assert_eq!(at(&ss, &svc, 3), StateValue::Int(0));
    assert_eq!(at(&ss, &svc, 10), StateValue::Null);
    assert_eq!(at(&ss, &["VMs", "vm-1", "Action"], 10), StateValue::Int(1));
    // The unknown vm_state at 9 left the VM row unchanged (active from 3).
    assert_eq!(at(&ss, &["VMs", "vm-1", "Action"], 9), StateValue::Int(1));
    for what in [
        "unparsable",
        "unknown event_type",
        "without event_type, vmname or request_id",
        "without a logger name",
        "not a dict",
        "unknown vm_state",
    ] {
        assert!(warned(&report, what), "{what}: {:?}", report.warnings);
    }
    assert!(
        warned(&report, "2 record(s) without a logger name"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn nova_vm_states_skip_empty_names_and_mark_unknown_states() {
    let (report, ss) = run(Box::new(nova::NovaVmStateProvider::new()), NOVA_EVENTS);
    no_empty_names(&ss);
    let status = ["PROJECTs", "p1", "VMs", "vm-1", "Status"];
    assert_eq!(at(&ss, &status, 1), StateValue::Int(0));
    assert_eq!(at(&ss, &status, 3), StateValue::Int(1));
    assert_eq!(at(&ss, &status, 10), StateValue::Int(1));
    assert_eq!(
        at(&ss, &["PROJECTs", "p1", "VMs", "vm-1", "Host"], 3),
        StateValue::from("h1")
    );
    assert_eq!(
        at(&ss, &["Hosts", "h1", "VMs", "vm-1"], 10),
        StateValue::Int(1)
    );
    for what in [
        "unparsable",
        "empty vmname",
        "empty project_id",
        "without vmname",
    ] {
        assert!(warned(&report, what), "{what}: {:?}", report.warnings);
    }
}

#[test]
fn nova_vm_state_unknown_state_is_notset_and_vm_moves_between_hosts() {
    let (report, ss) = run(
        Box::new(nova::NovaVmStateProvider::new()),
        r#"
        1 lttng_python:event logger_name="nova.compute.manager" msg="lttng_trace:{'vmname':'v','vm_state':'active','host':'a','project_id':'p'}"
        2 lttng_python:event logger_name="nova.compute.manager" msg="lttng_trace:{'vmname':'v','vm_state':'migrating','host':'b','project_id':'p'}"
        3 lttng_python:event logger_name="nova.compute.manager" msg="lttng_trace:{'vmname':'v','vm_state':'levitating','host':'b','project_id':'p'}"
        "#,
    );
    assert_eq!(at(&ss, &["Hosts", "a", "VMs", "v"], 1), StateValue::Int(1));
    assert_eq!(at(&ss, &["Hosts", "a", "VMs", "v"], 2), StateValue::Null);
    assert_eq!(at(&ss, &["Hosts", "b", "VMs", "v"], 2), StateValue::Int(6));
    assert_eq!(
        at(&ss, &["PROJECTs", "p", "VMs", "v", "Status"], 3),
        StateValue::Int(nova::NOTSET)
    );
    assert!(warned(&report, "unknown vm_state"));
}

#[test]
fn neutron_bad_records_are_counted_and_prefixes_stripped() {
    let (report, ss) = run(
        Box::new(neutron::NeutronProvider::new()),
        r#"
        1 lttng_python:event logger_name="neutron.agent.dhcp.agent" msg="lttng_trace:{'event_type':'dhcp-agent.network.create.start','network':'n1'}"
        2 lttng_python:event logger_name="neutron.agent.dhcp.agent" msg="lttng_trace:{'event_type':'dhcp-agent.network.create.end','network':'n1'}"
        3 lttng_python:event logger_name="neutron.agent.l3.agent" msg="lttng_trace:{'event_type':'router.create.start','router':''}"
        4 lttng_python:event logger_name="neutron.agent.dhcp.agent" msg="lttng_trace:{'event_type':'dhcp-agent.network.explode.start','network':'n1'}"
        5 lttng_python:event logger_name="neutron.agent.dhcp.agent" msg="lttng_trace:{'event_type':'dhcp-agent.net"
        6 lttng_python:event logger_name="neutron.agent.dhcp.agent" msg="lttng_trace:{'network':'n1'}"
        7 lttng_python:event logger_name="neutron.agent.dhcp.agent" msg="lttng_trace:{'event_type':'network.update.start','network':'n1'}"
        "#,
    );
    no_empty_names(&ss);
    let net = ["Agents", "dhcp-agent", "Networks", "n1"];
    assert_eq!(at(&ss, &net, 1), StateValue::Int(1));
    assert_eq!(at(&ss, &net, 2), StateValue::Null);
    assert_eq!(at(&ss, &net, 7), StateValue::Int(2));
    assert_eq!(
        at(&ss, &["SERVICEs", "neutron.agent.l3.agent", "Action"], 3),
        StateValue::Int(7)
    );
    for what in [
        "without the network/router uuid",
        "unknown event_type",
        "unparsable",
        "without an event_type",
    ] {
        assert!(warned(&report, what), "{what}: {:?}", report.warnings);
    }
}

#[test]
fn cinder_volume_attach_detach_migrate_delete() {
    let (report, ss) = run(
        Box::new(cinder::CinderProvider::new()),
        r#"
        1 lttng_python:event logger_name="cinder.volume.manager" msg="lttng_trace:{'event_type':'volume.attach.start','volume':'v1','instance_id':'i-1','hostname':'h1'}"
        2 lttng_python:event logger_name="cinder.volume.manager" msg="lttng_trace:{'event_type':'volume.attach.end','volume':'v1'}"
        3 lttng_python:event logger_name="cinder.volume.manager" msg="lttng_trace:{'event_type':'volume.migrate.start','volume':'v1','hostname':'h2'}"
        4 lttng_python:event logger_name="cinder.volume.manager" msg="lttng_trace:{'event_type':'volume.detach.end','volume':'v1'}"
        5 lttng_python:event logger_name="cinder.volume.manager" msg="lttng_trace:{'event_type':'volume.delete.end','volume':'v1'}"
        6 lttng_python:event logger_name="cinder.volume.manager" msg="lttng_trace:{'event_type':'volume.create.start','volume':''}"
        7 lttng_python:event logger_name="cinder.volume.manager" msg="lttng_trace:{'event_type':'volume.fly.start','volume':'v1'}"
        8 lttng_python:event logger_name="cinder.volume.manager" msg="lttng_trace:{'event_type':'volume.attach.start','volume':'v1'}"
        9 lttng_python:event logger_name="cinder.volume.manager" msg="lttng_trace:{'event_type':"
        "#,
    );
    no_empty_names(&ss);
    let v = |leaf: &str, t: i64| at(&ss, &["Volumes", "v1", leaf], t);
    assert_eq!(v("Action", 1), StateValue::Int(3));
    assert_eq!(v("Instance", 2), StateValue::from("i-1"));
    assert_eq!(v("Host", 2), StateValue::from("h1"));
    assert_eq!(v("Host", 3), StateValue::from("h2"));
    assert_eq!(v("Instance", 4), StateValue::Null);
    assert_eq!(v("Deleted", 5), StateValue::Int(1));
    for what in [
        "without a volume id",
        "unknown event_type",
        "without an instance_id",
        "unparsable",
    ] {
        assert!(warned(&report, what), "{what}: {:?}", report.warnings);
    }
}

#[test]
fn traces_without_python_events_are_refused() {
    for provider in [
        Box::new(nova::NovaVmStateProvider::new()) as Box<dyn StateProvider>,
        Box::new(nova_services::NovaServicesProvider::new()),
        Box::new(neutron::NeutronProvider::new()),
        Box::new(cinder::CinderProvider::new()),
    ] {
        let mut src = TextSource::new("1 sched_switch cpu=0 next_tid=1");
        let analyses = vec![Analysis {
            provider,
            output: Output::InMemory,
        }];
        let err = build(&mut src, analyses, &BuildOptions::default())
            .err()
            .expect("no python events");
        assert!(err.to_string().contains("lttng_python:event"), "{err}");
    }
}

#[test]
fn nova_services_request_rows_survive_the_request_cache_bound() {
    // More requests than the provider keeps quarks for: the first request's
    // `.end` still closes its operation row, found again in the attribute tree.
    let mut events = String::new();
    let n = 5000;
    for i in 0..n {
        events.push_str(&format!(
            "{} lttng_python:event logger_name=\"nova.compute.manager\" msg=\"lttng_trace:{{'event_type':'compute.instance.create.start','vmname':'vm-{i}','vm_state':'building','request_id':'req-{i}'}}\"\n",
            i + 1
        ));
    }
    for (k, i) in [(0, 0), (1, n - 1)] {
        events.push_str(&format!(
            "{} lttng_python:event logger_name=\"nova.compute.manager\" msg=\"lttng_trace:{{'event_type':'compute.instance.create.end','vmname':'vm-{i}','vm_state':'active','request_id':'req-{i}'}}\"\n",
            n + 1 + k
        ));
    }
    let (_, ss) = run(
        Box::new(nova_services::NovaServicesProvider::new()),
        &events,
    );
    for (i, closed_at) in [(0, n + 1), (n - 1, n + 2)] {
        let op = [
            "Requests",
            &format!("req-{i}"),
            "Ops",
            "compute.instance.create",
        ];
        assert_eq!(at(&ss, &op, closed_at - 1), StateValue::Int(10), "req-{i}");
        assert_eq!(at(&ss, &op, closed_at), StateValue::Null, "req-{i}");
        let vm = ["Requests", &format!("req-{i}"), "VM"];
        assert_eq!(
            at(&ss, &vm, closed_at),
            StateValue::from(format!("vm-{i}").as_str())
        );
    }
}
