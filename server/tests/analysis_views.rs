//! The Disk I/O, VM, OpenStack, QEMU migration and OvS views on the shared
//! traces, checked against the goldens of `shared/golden` (their intervals and
//! XY figures) mapped through the spec's colour tables (providers.md), written
//! here independently of the server's tables.

mod common;

use std::path::{Path, PathBuf};

use axum::Router;
use common::*;
use serde_json::{json, Value};
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_providers::stub_source::StubSource;

const DISK_IO: &str =
    "org.eclipse.tracecompass.analysis.os.linux.core.inputoutput.DisksIODataProvider";
const VCPU_VIEW: &str =
    "org.eclipse.tracecompass.incubator.internal.virtual.machine.analysis.vm.ui.vmview";
const FUSED_VIEW: &str =
    "org.eclipse.tracecompass.incubator.internal.virtual.machine.analysis.ui.views.virtualresources";
const NOVA_VM: &str = "org.eclipse.tracecompass.openstack.ui.OpenstackVMStateView";
const NOVA_SERVICES: &str = "org.eclipse.tracecompass.openstack.ui.OpenstackServiceView";
const NEUTRON: &str = "org.eclipse.tracecompass.openstack.ui.NeutronView";
const CINDER: &str = "org.eclipse.tracecompass.openstack.ui.CinderView";
const QEMU: &str = "org.eclipse.tracecompass.analysis.os.linux.qemu.ui.QemuStateView";
const QEMU_RATE: &str = "org.sextant.server.QemuDirtyPageRate";
const OVS_PATH: &str = "org.eclipse.tracecompass.analysis.os.linux.ovs.ui.OVS_PATH_VIEW";
const OVS_LATENCY: &str = "org.sextant.server.OvsSwitchingLatency";

fn golden(case: &str) -> Option<(PathBuf, Value)> {
    let dir = shared_dir()?.join("golden").join(case);
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    Some((dir, serde_json::from_str(&text).unwrap()))
}

/// A golden attribute's intervals: (start, end, integer value or None).
fn intervals(g: &Value, path: &str) -> Vec<(i64, i64, Option<i64>)> {
    let check = g["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "intervals" && c["path"].as_array().unwrap().join("/") == path)
        .unwrap_or_else(|| panic!("no golden intervals for {path}"));
    check["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i[0].as_i64().unwrap(),
                i[1].as_i64().unwrap(),
                i[2]["v"].as_i64(),
            )
        })
        .collect()
}

trait JoinPath {
    fn join(&self, sep: &str) -> String;
}
impl JoinPath for Vec<Value> {
    fn join(&self, sep: &str) -> String {
        self.iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join(sep)
    }
}

/// An app whose analyses write into `data`.
fn app_in(data: &Path) -> Router {
    sextant_server::router(sextant_server::state(sextant_server::ServeConfig {
        data_dir: Some(data.to_path_buf()),
        ..Default::default()
    }))
}

/// Opens `path`, waits for its analyses, then makes a one-trace experiment (so
/// that only the views of the analyses that ran are listed).
async fn open_analysed(app: &Router, path: &Path, name: &str) -> String {
    let body = json!({"parameters": {"uri": path, "name": name}}).to_string();
    let t = post(app, "/traces", &body).await;
    let trace = t.ok()["UUID"].as_str().unwrap().to_string();
    wait_completed(app, &format!("/traces/{trace}")).await;
    let body = json!({"parameters": {"name": name, "traces": [trace]}}).to_string();
    let e = post(app, "/experiments", &body).await;
    e.ok()["UUID"].as_str().unwrap().to_string()
}

async fn output_ids(app: &Router, exp: &str) -> Vec<String> {
    let a = get(app, &format!("/experiments/{exp}/outputs")).await;
    a.ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

/// States of one row at explicit times: (start, end, style key, label).
async fn states_at(
    app: &Router,
    exp: &str,
    view: &str,
    id: i64,
    times: &[i64],
) -> Vec<(i64, i64, String, Option<String>)> {
    let body =
        json!({"parameters": {"requested_times": times, "requested_items": [id]}}).to_string();
    let a = post(app, &out(exp, &format!("timeGraph/{view}/states")), &body).await;
    let rows = a.ok()["model"]["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1, "{}", a.text);
    rows[0]["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["start"].as_i64().unwrap(),
                s["end"].as_i64().unwrap(),
                s["style"]["parentKey"].as_str().unwrap().to_string(),
                s["label"].as_str().map(String::from),
            )
        })
        .collect()
}

/// Checks a row against a golden attribute: one state per non-null interval
/// (sampled at each interval's start), styled as `key(value)` says.
async fn check_row(
    app: &Router,
    exp: &str,
    view: &str,
    id: i64,
    golden: &[(i64, i64, Option<i64>)],
    end: i64,
    key: impl Fn(i64) -> &'static str,
) {
    let times: Vec<i64> = golden.iter().map(|i| i.0).collect();
    let got: Vec<(i64, i64, String)> = states_at(app, exp, view, id, &times)
        .await
        .into_iter()
        .map(|(s, e, k, _)| (s, e, k))
        .collect();
    let want: Vec<(i64, i64, String)> = golden
        .iter()
        .filter_map(|&(s, e, v)| Some((s, (e + 1).min(end), key(v?).to_string())))
        .collect();
    assert_eq!(got, want, "{view} row {id}");
}

async fn tooltip(app: &Router, exp: &str, view: &str, id: i64, t: i64) -> Value {
    let element = json!({"elementType": "state", "time": t, "duration": 0});
    let body = json!({"parameters": {"requested_times": [t], "requested_items": [id],
                                     "requested_element": element}})
    .to_string();
    let a = post(app, &out(exp, &format!("timeGraph/{view}/tooltip")), &body).await;
    a.ok()["model"].clone()
}

async fn xy(app: &Router, exp: &str, view: &str, ids: &[i64], times: &[i64]) -> Vec<Value> {
    let body =
        json!({"parameters": {"requested_times": times, "requested_items": ids}}).to_string();
    let a = post(app, &out(exp, &format!("XY/{view}/xy")), &body).await;
    a.ok()["model"]["series"].as_array().unwrap().clone()
}

fn ys(series: &Value) -> Vec<f64> {
    series["yValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

#[tokio::test]
async fn disk_io_throughput_is_the_sector_rate() {
    let Some((dir, g)) = golden("diskio/simple_requests") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let app = app_in(data.path());
    let exp = open_analysed(&app, &dir.join("trace.xml"), "io").await;
    assert!(output_ids(&app, &exp).await.contains(&DISK_IO.to_string()));
    let entries = tree(&app, &exp, "XY", DISK_IO).await;
    // The disk is named by its statedump name (Disks/8388624 = "sda").
    assert_eq!(intervals_text(&g, "Disks/8388624")[0].1, "sda");
    let read = entry(&entries, &["io", "sda", "read"]);
    let write = entry(&entries, &["io", "sda", "write"]);
    // Golden: sectors_written 8 on [20, 29], 16 on [30, 34], 24 from 35; no
    // request in the driver queue at 20, 35 and 40 (driverqueue_length 0), so
    // the interpolated share of requests in flight is 0 there.
    let w = intervals(&g, "Disks/8388624/sectors_written");
    assert_eq!(
        (w[1].0, w[1].2, w[3].0, w[3].2),
        (20, Some(8), 35, Some(24))
    );
    let series = xy(&app, &exp, DISK_IO, &[write], &[20, 35]).await;
    let y = ys(&series[0]);
    assert_eq!(y[0], 0.0);
    let want = (24.0 - 8.0) * 512.0 / 15e-9;
    assert!(close(y[1], want, 1e-3), "{y:?} vs {want}");
    assert_eq!(series[0]["seriesName"], "io/sda/write");
    assert_eq!(series[0]["yValuesDescription"]["unit"], "B/s");
    // sectors_read: null until 59, 256 at 60 (queue empty at 40 and 60).
    let r = intervals(&g, "Disks/8388624/sectors_read");
    assert_eq!((r[1].0, r[1].2), (60, Some(256)));
    let series = xy(&app, &exp, DISK_IO, &[read], &[40, 60]).await;
    assert!(close(ys(&series[0])[1], 256.0 * 512.0 / 20e-9, 1e-3));
    // While a request is in the driver queue its sectors count in proportion
    // (Trace Compass's interpolation): the rate is between 0 and the total.
    let series = xy(&app, &exp, DISK_IO, &[read], &[40, 55, 60]).await;
    let y = ys(&series[0]);
    assert!(y[1] > 0.0 && y[2] > 0.0, "{y:?}");
    assert!(
        close(y[1] * 15e-9 + y[2] * 5e-9, 256.0 * 512.0, 1e-3),
        "{y:?}"
    );
}

/// Builds `analyses` over the golden VM stub experiment into `<id>.ht` files.
fn build_vm(case: &Path, out: &Path, analyses: &[&str]) {
    let paths = vec![case.join("host.xml"), case.join("guest.xml")];
    let mut source = StubSource::open(&paths).unwrap();
    let registry = sextant_providers::native_registry();
    let analyses = analyses
        .iter()
        .map(|id| Analysis {
            provider: registry.create(id).unwrap(),
            output: Output::file(out.join(format!("{id}.ht"))),
        })
        .collect();
    build(&mut source, analyses, &BuildOptions::default()).unwrap();
}

/// Spec §1.3 colour table: 256 → preempted, 128 → VMM, 2 user, 1 idle, else unknown.
fn vcpu_key(v: i64) -> &'static str {
    if v & 256 != 0 {
        "VCPU_PREEMPTED"
    } else if v & 128 != 0 {
        "VMM"
    } else if v == 2 {
        "VCPU_USERMODE"
    } else if v == 1 {
        "VCPU_IDLE"
    } else {
        "VCPU_UNKNOWN"
    }
}

#[tokio::test]
async fn vm_views_on_the_one_qemukvm_experiment() {
    let Some((dir, g)) = golden("vm/one_qemukvm-vresources") else {
        return;
    };
    let Some((fused_dir, fg)) = golden("vm/one_qemukvm-fused") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let hts = data.path().join("vm");
    std::fs::create_dir_all(&hts).unwrap();
    build_vm(&dir, &hts, &[sextant_providers::vm::vresources::ID]);
    build_vm(&fused_dir, &hts, &[sextant_providers::vm::fused::ID]);
    let app = app_in(data.path());
    let (_t, exp) = open(&app, &hts, "vm").await;
    let outputs = output_ids(&app, &exp).await;
    assert!(outputs.contains(&VCPU_VIEW.to_string()));
    assert!(outputs.contains(&FUSED_VIEW.to_string()));
    assert!(!outputs.contains(&DISK_IO.to_string()));

    // Virtual CPU view: the golden's 16 intervals of the guest's vCPU 0.
    let entries = tree(&app, &exp, "timeGraph", VCPU_VIEW).await;
    let vcpu = entry(&entries, &["vm", "Guest: guest.xml", "vCPU 0"]);
    let golden = intervals(&g, "Virtual Machines/guest.xml/0/Status");
    assert_eq!(golden.len(), 16);
    check_row(&app, &exp, VCPU_VIEW, vcpu, &golden, 375, vcpu_key).await;
    let style = post(&app, &out(&exp, &format!("{VCPU_VIEW}/style")), "{}").await;
    assert_eq!(
        style.ok()["model"]["styles"]["VCPU_PREEMPTED"]["values"]["background-color"],
        "#cf7f2f"
    );

    // Fused view: who runs on physical CPU 0 (golden Machine_name / Current_thread).
    let entries = tree(&app, &exp, "timeGraph", FUSED_VIEW).await;
    let cpu = entry(&entries, &["vm", "Physical Cpus", "CPU 0"]);
    let machine = intervals(&fg, "CPUs/0/Machine_name");
    let threads = intervals(&fg, "CPUs/0/Current_thread");
    assert_eq!((threads[3].0, threads[3].2), (155, Some(131)));
    let tip = tooltip(&app, &exp, FUSED_VIEW, cpu, 160).await;
    assert_eq!(tip["Virtual Machine"], "guest.xml");
    assert!(machine.iter().any(|i| i.0 == 155));
    assert_eq!(tip["> TID"], "131");
    let tip = tooltip(&app, &exp, FUSED_VIEW, cpu, 120).await;
    assert_eq!(tip["Virtual Machine"], "host.xml");
    assert_eq!(tip["> TID"], "30");
    // The guest's vCPU 0 is run by host thread 31 (Hosts/guest.xml/CPUs/0 at 300).
    let vcpu = entry(&entries, &["vm", "Virtual Machines", "guest.xml", "vCPU 0"]);
    let tip = tooltip(&app, &exp, FUSED_VIEW, vcpu, 300).await;
    assert_eq!(tip["Value"], "31");
}

/// The uid-1000 UST trace of an OpenStack session.
fn openstack_trace(service: &str) -> Option<PathBuf> {
    Some(
        shared_dir()?
            .join("traces/openstack")
            .join(service)
            .join("ctf/ust/uid/1000/64-bit"),
    )
}

/// Spec §2.3 VM state codes.
fn vm_key(v: i64) -> &'static str {
    match v {
        0 => "BUILDING",
        1 => "ACTIVE",
        3 => "DELETED",
        _ => "OTHER",
    }
}

#[tokio::test]
async fn nova_views_on_the_real_trace() {
    let (Some((_, g)), Some((_, gs)), Some(path)) = (
        golden("openstack/nova_vmstate-20160808"),
        golden("openstack/nova_services-20160808"),
        openstack_trace("nova"),
    ) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let app = app_in(data.path());
    let exp = open_analysed(&app, &path, "nova").await;
    let outputs = output_ids(&app, &exp).await;
    for v in [NOVA_VM, NOVA_SERVICES, NEUTRON, CINDER] {
        assert!(outputs.contains(&v.to_string()), "{v} in {outputs:?}");
    }
    // Views of analyses that did not run (no QEMU events), or found nothing
    // (no VM), or do not apply (kernel analyses on a UST trace) are not listed.
    for v in [QEMU, VCPU_VIEW, FUSED_VIEW, DISK_IO, OVS_PATH] {
        assert!(!outputs.contains(&v.to_string()), "{v} in {outputs:?}");
    }
    let end = g["end"].as_i64().unwrap();
    let entries = tree(&app, &exp, "timeGraph", NOVA_VM).await;
    let project = "Project bf5939a428aa40c3883316e057051611";
    for vm in ["vm-26009", "vm-18387"] {
        let id = entry(&entries, &["nova", project, vm]);
        let path = format!("PROJECTs/bf5939a428aa40c3883316e057051611/VMs/{vm}/Status");
        check_row(&app, &exp, NOVA_VM, id, &intervals(&g, &path), end, vm_key).await;
    }
    // vm-26009: building with host "None", then active on "controller".
    let id = entry(&entries, &["nova", project, "vm-26009"]);
    let host = intervals_text(
        &g,
        "PROJECTs/bf5939a428aa40c3883316e057051611/VMs/vm-26009/Host",
    );
    let tip = tooltip(&app, &exp, NOVA_VM, id, host[2].0).await;
    assert_eq!(tip["Host"], host[2].1.as_str());
    assert_eq!(tip["State"], "active");
    let states = states_at(&app, &exp, NOVA_VM, id, &[host[1].0]).await;
    assert_eq!(states[0].3.as_deref(), Some("building"));

    // Service view: nova.compute.manager's operations (spec §2.2 codes).
    let entries = tree(&app, &exp, "timeGraph", NOVA_SERVICES).await;
    let compute = entry(&entries, &["nova", "Services", "nova", "compute.manager"]);
    let golden = intervals(&gs, "SERVICEs/nova.compute.manager/Action");
    check_row(
        &app,
        &exp,
        NOVA_SERVICES,
        compute,
        &golden,
        end,
        |v| match v {
            10 => "CREATE",
            12 => "DELETE",
            13 => "SHUTDOWN",
            0 => "NOTSET",
            _ => "OTHER",
        },
    )
    .await;
    // The tooltip names the request (golden Request_id "<request>## <vm>").
    let requests = intervals_text(&gs, "SERVICEs/nova.compute.manager/Request_id");
    let tip = tooltip(&app, &exp, NOVA_SERVICES, compute, requests[1].0).await;
    assert_eq!(tip["Request"], requests[1].1.as_str());
    assert_eq!(tip["State"], "compute.instance.create");
}

fn intervals_text(g: &Value, path: &str) -> Vec<(i64, String)> {
    let check = g["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "intervals" && c["path"].as_array().unwrap().join("/") == path)
        .unwrap();
    check["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i[0].as_i64().unwrap(),
                i[2]["v"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn neutron_and_cinder_views_on_the_real_traces() {
    let (Some((_, gn)), Some((_, gc)), Some(neutron), Some(cinder)) = (
        golden("openstack/neutron-20160803"),
        golden("openstack/cinder-20160815"),
        openstack_trace("neutron"),
        openstack_trace("cinder"),
    ) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let app = app_in(data.path());
    // Neutron: spec §2.4 codes.
    let neutron_key = |v: i64| match v {
        1 => "NETWORK_CREATE",
        3 => "NETWORK_DELETE",
        5 => "SUBNET_DELETE",
        8 => "ROUTER_REMOVE",
        9 => "ROUTER_DELETE",
        _ => "OTHER",
    };
    let exp = open_analysed(&app, &neutron, "neutron").await;
    let end = gn["end"].as_i64().unwrap();
    let entries = tree(&app, &exp, "timeGraph", NEUTRON).await;
    for (labels, path) in [
        (
            vec!["neutron", "Services", "neutron.agent.l3.agent"],
            "SERVICEs/neutron.agent.l3.agent/Action",
        ),
        (
            vec!["neutron", "Services", "neutron.agent.dhcp.agent"],
            "SERVICEs/neutron.agent.dhcp.agent/Action",
        ),
        (
            vec![
                "neutron",
                "Agents",
                "l3-agent",
                "Routers",
                "c6a8af8f-d86f-40ad-a6f6-9196b43eba40",
            ],
            "Agents/l3-agent/Routers/c6a8af8f-d86f-40ad-a6f6-9196b43eba40",
        ),
    ] {
        let id = entry(&entries, &labels);
        check_row(
            &app,
            &exp,
            NEUTRON,
            id,
            &intervals(&gn, path),
            end,
            neutron_key,
        )
        .await;
    }
    let id = entry(&entries, &["neutron", "Services", "neutron.agent.l3.agent"]);
    let states = states_at(&app, &exp, NEUTRON, id, &[end]).await;
    assert_eq!(states[0].3.as_deref(), Some("router.remove"));

    // Cinder: spec §2.5 codes.
    let exp = open_analysed(&app, &cinder, "cinder").await;
    let end = gc["end"].as_i64().unwrap();
    let entries = tree(&app, &exp, "timeGraph", CINDER).await;
    let cinder_key = |v: i64| match v {
        1 => "VOLUME_CREATE",
        9 => "VOLUME_UPDATE",
        _ => "OTHER",
    };
    for (labels, path) in [
        (
            vec!["cinder", "Services", "cinder.scheduler.manager"],
            "SERVICEs/cinder.scheduler.manager/Action",
        ),
        (
            vec!["cinder", "Volumes", "49ebdf72-bc39-421a-bfaa-bd2f4636bb26"],
            "Volumes/49ebdf72-bc39-421a-bfaa-bd2f4636bb26/Action",
        ),
    ] {
        let id = entry(&entries, &labels);
        check_row(
            &app,
            &exp,
            CINDER,
            id,
            &intervals(&gc, path),
            end,
            cinder_key,
        )
        .await;
    }
}

#[tokio::test]
async fn qemu_migration_stages_and_dirty_page_rate() {
    let Some((dir, g)) = golden("qemu_migration/success-5-rounds") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let app = app_in(data.path());
    let exp = open_analysed(&app, &dir.join("trace.xml"), "mig").await;
    let end = g["end"].as_i64().unwrap();
    let entries = tree(&app, &exp, "timeGraph", QEMU).await;
    // Spec §3.3: MIG_COPY 50 precopy, 60 stop-and-copy, 100 + k iteration k.
    let copy = entry(&entries, &["mig", "MIG_COPY", "qemu-system-x86"]);
    let golden = intervals(&g, "QEMU_COPY/qemu-system-x86/MIG_COPY");
    let times: Vec<i64> = golden.iter().map(|i| i.0).collect();
    let states = states_at(&app, &exp, QEMU, copy, &times).await;
    let want: Vec<(i64, i64, Option<&str>)> = golden
        .iter()
        .filter_map(|&(s, e, v)| {
            let label = match v? {
                50 => "Precopy (bulk round)",
                60 => "Stop and copy",
                k if k > 100 => "Iteration round",
                _ => "?",
            };
            Some((s, (e + 1).min(end), Some(label)))
        })
        .collect();
    let got: Vec<(i64, i64, Option<&str>)> = states
        .iter()
        .map(|(s, e, _, l)| (*s, *e, l.as_deref()))
        .collect();
    assert_eq!(got, want);
    let status = entry(&entries, &["mig", "MIG_STATUS", "qemu-system-x86"]);
    let golden = intervals(&g, "QEMUs/qemu-system-x86/MIG_STATUS");
    check_row(&app, &exp, QEMU, status, &golden, end, |v| match v {
        1 => "BITMAP_SYNC",
        2 => "SAVE_VMSTATE_SECTION",
        3 => "PENDING",
        41 => "TRANSFERRED",
        _ => "END",
    })
    .await;

    // Dirty-page rate: the golden's pages/s at each bitmap sync.
    let entries = tree(&app, &exp, "XY", QEMU_RATE).await;
    let series_id = entry(&entries, &["mig", "qemu-system-x86", "dirty-page rate"]);
    let points = g["xy_dirty_pages"]["series"]["qemu-system-x86"]
        .as_array()
        .unwrap()
        .clone();
    let times: Vec<i64> = points.iter().map(|p| p[0].as_i64().unwrap()).collect();
    let series = xy(&app, &exp, QEMU_RATE, &[series_id], &times).await;
    let y = ys(&series[0]);
    for (p, got) in points.iter().zip(&y) {
        let want = p[2].as_f64().unwrap_or(0.0);
        assert!(close(*got, want, 0.05), "at {}: {got} vs {want}", p[0]);
    }
}

#[tokio::test]
async fn ovs_path_and_switching_latency() {
    let (Some((_, gp)), Some((_, gl))) = (
        golden("ovs/path-20160725b"),
        golden("ovs/packets-20160725b"),
    ) else {
        return;
    };
    let trace = shared_dir()
        .unwrap()
        .join("golden/ovs/traces/ovs-20160725b/trace.xml");
    let data = tempfile::tempdir().unwrap();
    let app = app_in(data.path());
    let exp = open_analysed(&app, &trace, "ovs").await;
    let (start, end) = (gl["start"].as_i64().unwrap(), gl["end"].as_i64().unwrap());
    // Path rows: spec §4.2 codes.
    let entries = tree(&app, &exp, "timeGraph", OVS_PATH).await;
    let key = |v: i64| match v {
        1 => "IN_OUT",
        2 => "RECEIVE",
        3 => "UPCALL",
        4 => "SEND",
        _ => "OTHER",
    };
    for row in ["IN_OUT", "PACKET_PROCESSING"] {
        let id = entry(&entries, &["ovs", row]);
        let golden = intervals(&gp, &format!("OVS/{row}/State"));
        check_row(&app, &exp, OVS_PATH, id, &golden, end, key).await;
    }
    // Latency: one bucket (start, end] holds every switched packet; its mean is
    // the mean of the golden's latencies (ns → µs), per path.
    let entries = tree(&app, &exp, "XY", OVS_LATENCY).await;
    let ids: Vec<i64> = ["fast path", "slow path", "all"]
        .iter()
        .map(|s| entry(&entries, &["ovs", s]))
        .collect();
    let series = xy(&app, &exp, OVS_LATENCY, &ids, &[start, end]).await;
    let points = gl["xy_switching_latency"]["points"].as_array().unwrap();
    let mean = |path: Option<&str>| {
        let l: Vec<f64> = points
            .iter()
            .filter(|p| path.is_none_or(|w| p[3] == w))
            .map(|p| p[2].as_f64().unwrap())
            .collect();
        l.iter().sum::<f64>() / l.len() as f64 / 1000.0
    };
    for (s, path) in series.iter().zip([Some("fast"), Some("slow"), None]) {
        let y = ys(s);
        assert_eq!(y[0], 0.0);
        assert!(
            close(y[1], mean(path), 1e-6),
            "{path:?}: {y:?} vs {}",
            mean(path)
        );
    }
    // With one bucket per golden point, each bucket holds that packet alone.
    let mut times = vec![start];
    times.extend(points.iter().map(|p| p[0].as_i64().unwrap()));
    let series = xy(&app, &exp, OVS_LATENCY, &[ids[2]], &times).await;
    let y = ys(&series[0]);
    for (k, p) in points.iter().enumerate() {
        assert!(
            close(y[k + 1], p[2].as_f64().unwrap() / 1000.0, 1e-9),
            "{p}"
        );
    }
}

#[tokio::test]
async fn nested_vcpu_view_on_the_hand_written_host_trace() {
    // `tests/traces/nested/host-nested.xml` of the workspace: vCPU 1 of VM 1000
    // runs a nested hypervisor; its history was worked out by hand from the
    // rules of spec providers.md §1.7 (see tests/tests/nested_vcpu.rs).
    let trace =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/traces/nested/host-nested.xml");
    let data = tempfile::tempdir().unwrap();
    let app = app_in(data.path());
    let exp = open_analysed(&app, &trace, "nested").await;
    const NESTED: &str = "org.sextant.server.NestedVcpuView";
    assert!(output_ids(&app, &exp).await.contains(&NESTED.to_string()));
    let entries = tree(&app, &exp, "timeGraph", NESTED).await;
    let vcpu = entry(&entries, &["nested", "VM 1000", "vCPUs", "vCPU 1"]);
    // (start, end, code): 2 guest code, 1 hypervisor, 15 nested guest (L2),
    // 6 wait for task, 16 preempted by a host process, 17 by another VM.
    let hand: Vec<(i64, i64, Option<i64>)> = [
        (402, 419, 2),
        (420, 425, 1),
        (426, 449, 15),
        (450, 455, 1),
        (536, 559, 2),
        (560, 560, 1),
        (561, 599, 6),
        (651, 699, 16),
        (770, 780, 17),
    ]
    .iter()
    .map(|&(s, e, v)| (s, e, Some(v)))
    .collect();
    // The spec's palette (§1.7): one key per meaning.
    check_row(&app, &exp, NESTED, vcpu, &hand, 800, |v| match v {
        1 => "ROOT",
        2 => "NON_ROOT",
        6 => "WAIT_TASK",
        15 => "NON_ROOT_L2",
        16 | 17 => "PREEMPTED",
        _ => "OTHER",
    })
    .await;
}
