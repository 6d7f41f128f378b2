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
const NOVA_VM: &str = "org.eclipse.tracecompass.openstack.ui.OpenstackVMStateView";
const NOVA_SERVICES: &str = "org.eclipse.tracecompass.openstack.ui.OpenstackServiceView";
const NEUTRON: &str = "org.eclipse.tracecompass.openstack.ui.NeutronView";
const CINDER: &str = "org.eclipse.tracecompass.openstack.ui.CinderView";
const QEMU: &str = "org.eclipse.tracecompass.analysis.os.linux.qemu.ui.QemuStateView";
const QEMU_RATE: &str = "org.sextant.server.QemuDirtyPageRate";
const OVS_PATH: &str = "org.eclipse.tracecompass.analysis.os.linux.ovs.ui.OVS_PATH_VIEW";
const OVS_LATENCY: &str = "org.sextant.server.OvsSwitchingLatency";

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
    let Some((dir, g)) = golden_case("diskio/simple_requests") else {
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

#[tokio::test]
async fn vm_views_on_the_one_qemukvm_experiment() {
    let Some((dir, g)) = golden_case("vm/one_qemukvm-vresources") else {
        return;
    };
    let Some((fused_dir, fg)) = golden_case("vm/one_qemukvm-fused") else {
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
        golden_case("openstack/nova_vmstate-20160808"),
        golden_case("openstack/nova_services-20160808"),
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
    let states = row_states(&app, &exp, NOVA_VM, id, &[host[1].0]).await;
    assert_eq!(states[0]["label"], "building");

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
    golden_intervals(g, path)
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
        golden_case("openstack/neutron-20160803"),
        golden_case("openstack/cinder-20160815"),
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
    let states = row_states(&app, &exp, NEUTRON, id, &[end]).await;
    assert_eq!(states[0]["label"], "router.remove");

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
    let Some((dir, g)) = golden_case("qemu_migration/success-5-rounds") else {
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
    let states = row_states(&app, &exp, QEMU, copy, &times).await;
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
        .map(|s| {
            let span = (s["start"].as_i64().unwrap(), s["end"].as_i64().unwrap());
            (span.0, span.1, s["label"].as_str())
        })
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
        golden_case("ovs/path-20160725b"),
        golden_case("ovs/packets-20160725b"),
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

// ---- Virtual CPU and Virtual Resources views: rows of several attributes ----

/// The events of an XML stub trace: (timestamp, name, fields), read from the
/// file's text (independently of the server's stub reader).
fn stub_events(path: &Path) -> Vec<(i64, String, std::collections::HashMap<String, String>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let attr = |s: &str, key: &str| -> String {
        let from = s.find(&format!("{key}=\"")).unwrap() + key.len() + 2;
        s[from..from + s[from..].find('"').unwrap()].to_string()
    };
    text.split("<event ")
        .skip(1)
        .map(|e| {
            let head = &e[..e.find('>').unwrap()];
            let fields = e
                .split("<field ")
                .skip(1)
                .map(|f| (attr(f, "name"), attr(f, "value")))
                .collect();
            (
                attr(head, "timestamp").parse().unwrap(),
                attr(head, "name"),
                fields,
            )
        })
        .collect()
}

/// The state of a row covering `t`: (style parent key, drawn as preempted, label).
fn covering(states: &[Value], t: i64) -> Option<(String, bool, Option<String>)> {
    states
        .iter()
        .find(|st| {
            let (s, e) = (st["start"].as_i64().unwrap(), st["end"].as_i64().unwrap());
            s <= t && t < e.max(s + 1)
        })
        .map(|st| {
            let key = st["style"]["parentKey"].as_str().unwrap().to_string();
            // The incubator draws red over a preempted thread: an overridden
            // colour, or the preempted-only style where no status is drawn.
            let preempted = st["style"]["values"]
                .as_object()
                .is_some_and(|v| v.contains_key("background-color"))
                || key == "THREAD_PREEMPTED";
            (key, preempted, st["label"].as_str().map(String::from))
        })
}

/// A golden attribute's value at `t` (string or integer, as text).
fn golden_at(g: &Value, path: &str, t: i64) -> Option<String> {
    golden_intervals(g, path)
        .iter()
        .find(|i| i[0].as_i64().unwrap() <= t && t <= i[1].as_i64().unwrap())
        .and_then(|i| match &i[2]["v"] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

/// Opens the host and guest traces of `case` as an experiment `name` and waits
/// for its analyses (the guests' kernel analyses and the experiment's VM ones).
async fn host_guest_experiment(app: &Router, case: &Path, name: &str) -> String {
    let mut traces = Vec::new();
    for file in ["host.xml", "guest.xml"] {
        let body = json!({"parameters": {"uri": case.join(file)}}).to_string();
        let t = post(app, "/traces", &body).await;
        traces.push(t.ok()["UUID"].as_str().unwrap().to_string());
    }
    let body = json!({"parameters": {"name": name, "traces": traces}}).to_string();
    let exp = post(app, "/experiments", &body).await.ok()["UUID"]
        .as_str()
        .unwrap()
        .to_string();
    wait_completed(app, &format!("/experiments/{exp}")).await;
    exp
}

#[tokio::test]
async fn vcpu_view_guest_threads_follow_the_goldens() {
    let (Some((case, g)), Some((_, fg))) = (
        golden_case("vm/one_qemukvm-vresources"),
        golden_case("vm/one_qemukvm-fused"),
    ) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let app = app_in(data.path());
    let exp = host_guest_experiment(&app, &case, "one_qemukvm").await;
    let entries = tree(&app, &exp, "timeGraph", VCPU_VIEW).await;
    let events = stub_events(&case.join("guest.xml"));
    let switches: Vec<(i64, i64, i64, i64, String)> = events
        .iter()
        .filter(|e| e.1 == "sched_switch")
        .map(|(t, _, f)| {
            let n = |k: &str| f[k].parse::<i64>().unwrap();
            (
                *t,
                n("prev_tid"),
                n("prev_state"),
                n("next_tid"),
                f["next_comm"].clone(),
            )
        })
        .collect();
    let times: Vec<i64> = (1..375).collect();
    for tid in [130, 131] {
        // Label: "<tid>: <exec name>", the name the guest's sched_switch gave it.
        let comm = &switches.iter().find(|s| s.3 == tid).unwrap().4;
        let label = format!("{tid}: {comm}");
        let id = entry(
            &entries,
            &["one_qemukvm", "Guest: guest.xml", "Threads", &label],
        );
        let states = row_states(&app, &exp, VCPU_VIEW, id, &times).await;
        // Golden (incubator getUpdatedThreadIntervals): the intervals with the
        // 256 bit are the times the thread's vCPU was in the hypervisor or
        // preempted while the thread was on it.
        let marks: Vec<(i64, i64)> = g["thread_preemption_query"][tid.to_string()]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i[2].as_i64().unwrap() & 256 != 0)
            .map(|i| (i[0].as_i64().unwrap(), i[1].as_i64().unwrap()))
            .collect();
        assert!(!marks.is_empty());
        for &t in &times {
            // Linux kernel analysis rules on the raw sched_switch events: the
            // next thread runs in user mode (no syscall events here), the
            // previous one with prev_state 0 waits for a CPU.
            let status = switches
                .iter()
                .rfind(|s| s.0 <= t && (s.1 == tid || s.3 == tid))
                .map(|s| {
                    if s.3 == tid {
                        "THREAD_USERMODE"
                    } else {
                        assert_eq!(s.2, 0);
                        "THREAD_WAIT_FOR_CPU"
                    }
                });
            let preempted = marks.iter().any(|&(s, e)| s <= t && t <= e);
            let got = covering(&states, t).map(|(k, p, _)| (k, p));
            let want = match (status, preempted) {
                (None, false) => None,
                (None, true) => Some(("THREAD_PREEMPTED".to_string(), true)),
                (Some(k), p) => Some((k.to_string(), p)),
            };
            assert_eq!(got, want, "thread {tid} at {t}");
        }
    }
    // The preempted parts show the state's colour under the incubator's red
    // (alpha 70/255 over Usermode's (0,200,0)).
    let id = entry(
        &entries,
        &["one_qemukvm", "Guest: guest.xml", "Threads", "131: any2"],
    );
    let states = row_states(&app, &exp, VCPU_VIEW, id, &[120]).await;
    let st = &states
        .iter()
        .find(|s| s["start"].as_i64().unwrap() <= 120 && 120 < s["end"].as_i64().unwrap())
        .unwrap()["style"];
    assert_eq!(st["parentKey"], "THREAD_USERMODE");
    let red = |c: f64, r: f64| (c + (r - c) * 70.0 / 255.0).round() as u8;
    let want = format!("#{:02x}{:02x}{:02x}", red(0.0, 255.0), red(200.0, 0.0), 0);
    assert_eq!(st["values"]["background-color"], want.as_str());
    let tip = tooltip(&app, &exp, VCPU_VIEW, id, 120).await;
    assert_eq!(tip["State"], "Usermode");
    assert_eq!(tip["vCPU preempted"], "true");

    // Guest thread under vCPU 0: the fused golden's thread on physical CPU 0
    // while the guest (its only vCPU) runs there, nothing while the host does.
    let id = entry(
        &entries,
        &["one_qemukvm", "Guest: guest.xml", "vCPU 0", "Guest thread"],
    );
    let states = row_states(&app, &exp, VCPU_VIEW, id, &times).await;
    let mut seen = 0;
    for &t in &times {
        let got = covering(&states, t).and_then(|c| c.2);
        let want = match golden_at(&fg, "CPUs/0/Machine_name", t).as_deref() {
            Some("guest.xml") => {
                let tid: i64 = golden_at(&fg, "CPUs/0/Current_thread", t)
                    .unwrap()
                    .parse()
                    .unwrap();
                let comm = &switches.iter().find(|s| s.3 == tid).unwrap().4;
                seen += 1;
                Some(format!("{tid}: {comm}"))
            }
            _ => None,
        };
        assert_eq!(got, want, "guest thread on vCPU 0 at {t}");
    }
    assert!(seen > 50, "{seen}");
}

#[tokio::test]
async fn virtual_resources_per_vm_cpu_rows() {
    let Some((case, fg)) = golden_case("vm/one_qemukvm-fused") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let app = app_in(data.path());
    let exp = host_guest_experiment(&app, &case, "one_qemukvm").await;
    let entries = tree(&app, &exp, "timeGraph", FUSED_VIEW).await;
    // Golden: the guest used physical CPU 0 (Hosts/guest.xml/pCPUs/0 exists),
    // its parent is the host.
    let has = |path: &[&str]| {
        fg["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "value_at" && c["path"] == json!(path))
    };
    assert!(has(&["Hosts", "guest.xml", "pCPUs", "0"]));
    let vm_cpu = entry(
        &entries,
        &[
            "one_qemukvm",
            "Virtual Machines",
            "guest.xml",
            "Physical Cpus",
            "CPU 0",
        ],
    );
    let cpu = entry(&entries, &["one_qemukvm", "Physical Cpus", "CPU 0"]);
    // The host is not a virtual machine.
    let vms = entry(&entries, &["one_qemukvm", "Virtual Machines"]);
    assert!(!entries
        .iter()
        .any(|e| e["parentId"] == vms && e["labels"][0] == "host.xml"));
    let times: Vec<i64> = (1..375).collect();
    let vm_states = row_states(&app, &exp, FUSED_VIEW, vm_cpu, &times).await;
    let all_states = row_states(&app, &exp, FUSED_VIEW, cpu, &times).await;
    let mut shown = 0;
    for &t in &times {
        let got = covering(&vm_states, t).map(|c| c.0);
        if golden_at(&fg, "CPUs/0/Machine_name", t).as_deref() == Some("guest.xml") {
            // The guest's code runs: the CPU's own state.
            let all = covering(&all_states, t).map(|c| c.0);
            shown += usize::from(got.is_some());
            assert_eq!(got, all, "at {t}");
        } else {
            assert_eq!(got, None, "at {t}: the host runs");
        }
    }
    assert!(shown > 50, "{shown}");
    let tip = tooltip(&app, &exp, FUSED_VIEW, vm_cpu, 160).await;
    assert_eq!(tip["Virtual Machine"], "guest.xml");
    assert_eq!(
        tip["> TID"],
        golden_at(&fg, "CPUs/0/Current_thread", 160)
            .unwrap()
            .as_str()
    );
}

#[tokio::test]
async fn virtual_resources_containers_follow_the_golden() {
    let Some((dir, g)) = golden_case("vm/containers-fused") else {
        return;
    };
    let host = "withContainers.xml";
    let data = tempfile::tempdir().unwrap();
    let app = app_in(data.path());
    let exp = open_analysed(&app, &dir.join(host), "ct").await;
    assert!(output_ids(&app, &exp)
        .await
        .contains(&FUSED_VIEW.to_string()));
    let entries = tree(&app, &exp, "timeGraph", FUSED_VIEW).await;
    // Golden containers: Parent, threads and physical CPUs of each namespace.
    let value_at = |path: &[&str]| -> Option<Value> {
        g["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == "value_at" && c["path"] == json!(path))
            .map(|c| c["value"].clone())
    };
    let children = |path: &[&str]| -> Vec<String> {
        let mut out: Vec<String> = g["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| {
                let p = c["path"].as_array().unwrap();
                (c["kind"] == "value_at"
                    && p.len() == path.len() + 1
                    && p.iter().zip(path).all(|(a, b)| a == b))
                .then(|| p[path.len()].as_str().unwrap().to_string())
            })
            .collect();
        out.sort();
        out.dedup();
        out
    };
    let namespaces = children(&["Hosts", host, "Containers"]);
    assert_eq!(namespaces.len(), 3);
    let parent = |ns: &str| {
        value_at(&["Hosts", host, "Containers", ns, "Parent"]).unwrap()["v"]
            .as_i64()
            .unwrap()
    };
    // The tree: top containers are those of the root namespace, nested ones
    // below their parent; the root namespace is no container.
    let mut path_of: std::collections::HashMap<String, Vec<String>> = Default::default();
    for ns in &namespaces {
        let mut path = vec![ns.clone()];
        let mut p = parent(ns);
        while p != 4026531836 && p != -1 {
            path.insert(0, p.to_string());
            path.insert(1, "Containers".into());
            p = parent(&p.to_string());
        }
        path_of.insert(ns.clone(), path);
    }
    assert!(!entries.iter().any(|e| e["labels"][0] == "4026531836"));
    let times: Vec<i64> = (1..35).collect();
    let mut shown = 0;
    for ns in namespaces.iter().filter(|ns| parent(ns) != -1) {
        let threads: Vec<i64> = children(&["Hosts", host, "Containers", ns, "Threads"])
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let pcpus = children(&["Hosts", host, "Containers", ns, "pCPUs"]);
        assert!(!pcpus.is_empty());
        for p in pcpus {
            let mut labels = vec!["ct".to_string(), "Containers".to_string()];
            labels.extend(path_of[ns].iter().cloned());
            labels.extend(["Physical Cpus".to_string(), format!("CPU {p}")]);
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            let id = entry(&entries, &labels);
            let cpu = entry(&entries, &["ct", "Physical Cpus", &format!("CPU {p}")]);
            let states = row_states(&app, &exp, FUSED_VIEW, id, &times).await;
            let all = row_states(&app, &exp, FUSED_VIEW, cpu, &times).await;
            for &t in &times {
                let tid = golden_at(&g, &format!("CPUs/{p}/Current_thread"), t)
                    .map(|v| v.parse::<i64>().unwrap());
                let machine = golden_at(&g, &format!("CPUs/{p}/Machine_name"), t);
                let inside = machine.as_deref() == Some(host)
                    && tid.is_some_and(|tid| threads.contains(&tid));
                let got = covering(&states, t).map(|c| c.0);
                if inside {
                    shown += usize::from(got.is_some());
                    assert_eq!(got, covering(&all, t).map(|c| c.0), "{ns} CPU {p} at {t}");
                } else {
                    assert_eq!(
                        got, None,
                        "{ns} CPU {p} at {t}: thread {tid:?} is not in it"
                    );
                }
            }
        }
    }
    assert!(shown > 20, "{shown}");
}

#[tokio::test]
async fn kvm_exit_rate_counts_the_host_exits() {
    let Some((case, _)) = golden_case("vm/one_qemukvm-vresources") else {
        return;
    };
    const RATE: &str = "org.sextant.server.KvmExitRate";
    let data = tempfile::tempdir().unwrap();
    let app = app_in(data.path());
    let exp = host_guest_experiment(&app, &case, "one_qemukvm").await;
    assert!(output_ids(&app, &exp).await.contains(&RATE.to_string()));
    let entries = tree(&app, &exp, "XY", RATE).await;
    // The guest trace has no exits: only the host's tree.
    let roots: Vec<&Value> = entries.iter().filter(|e| e["parentId"] == -1).collect();
    assert_eq!(roots.len(), 1, "{entries:?}");
    // The host's kvm_exit events, read from the raw trace: all on CPU 0, all
    // after a kvm_entry of vCPU 0 there, all of reason 32 (MSR_WRITE in
    // Linux's vmx.h), so the vCPU, its one reason, the CPU and the aggregate
    // show the same rate.
    let events = stub_events(&case.join("host.xml"));
    let exits: Vec<i64> = events
        .iter()
        .filter(|e| e.1 == "kvm_exit")
        .map(|e| {
            assert_eq!(
                (e.2["cpu"].as_str(), e.2["exit_reason"].as_str()),
                ("0", "32")
            );
            e.0
        })
        .collect();
    assert_eq!(exits.len(), 5);
    let vcpu_entries = events
        .iter()
        .filter(|e| e.1 == "kvm_entry" && e.2["vcpu_id"] == "0")
        .count();
    assert!(vcpu_entries >= exits.len());
    let rows = [
        (vec!["host.xml", "VCPU 0"], "host.xml/VCPU 0"),
        (
            vec!["host.xml", "VCPU 0", "EXIT_REASON_MSR_WRITE"],
            "host.xml/VCPU 0/EXIT_REASON_MSR_WRITE",
        ),
        (vec!["host.xml", "Physical CPUs", "CPU 0"], "host.xml/CPU 0"),
        (
            vec!["host.xml", "All VCPUs (Aggregated)"],
            "host.xml/All VCPUs (Aggregated)",
        ),
    ];
    // Incubator AbstractRateDataProvider windows: each time's exits between
    // the midpoints around it (the first from half a step before it, but not
    // before the history's start 1; the last to half a step after, but not
    // after its end 375), per second.
    let times = [50i64, 150, 250, 350];
    let bounds = [1i64, 100, 200, 300, 375];
    for (path, name) in rows {
        let id = entry(&entries, &path);
        let series = xy(&app, &exp, RATE, &[id], &times).await;
        assert_eq!(series[0]["seriesName"], name);
        assert_eq!(series[0]["yValuesDescription"]["unit"], "exits/s");
        let y = ys(&series[0]);
        for k in 0..times.len() {
            let (lo, hi) = (bounds[k], bounds[k + 1]);
            let n = exits.iter().filter(|&&t| lo < t && t <= hi).count() as f64;
            let want = n / ((hi - lo) as f64 * 1e-9);
            assert!(
                close(y[k], want, 1e-3),
                "{name}: window ({lo}, {hi}]: {y:?}"
            );
        }
        assert!(y[0] > 0.0 && y[3] == 0.0, "{y:?}");
    }
}

#[tokio::test]
async fn vm_views_answer_odd_requests_without_failing() {
    let Some((case, _)) = golden_case("vm/one_qemukvm-vresources") else {
        return;
    };
    const RATE: &str = "org.sextant.server.KvmExitRate";
    let data = tempfile::tempdir().unwrap();
    let app = app_in(data.path());
    let exp = host_guest_experiment(&app, &case, "one_qemukvm").await;
    let entries = tree(&app, &exp, "timeGraph", VCPU_VIEW).await;
    let thread = entry(
        &entries,
        &["one_qemukvm", "Guest: guest.xml", "Threads", "131: any2"],
    );
    // Times outside the histories, unknown items: empty rows, no error.
    let far = [0i64, 1 << 62, i64::MAX];
    let states = row_states(&app, &exp, VCPU_VIEW, thread, &far).await;
    assert!(states.is_empty(), "{states:?}");
    let body =
        json!({"parameters": {"requested_times": [100], "requested_items": [987654]}}).to_string();
    let a = post(
        &app,
        &out(&exp, &format!("timeGraph/{FUSED_VIEW}/states")),
        &body,
    )
    .await;
    assert_eq!(a.ok()["model"]["rows"], json!([]));
    // One sample time (no step: no rate), and the widest range.
    let entries = tree(&app, &exp, "XY", RATE).await;
    let id = entry(&entries, &["host.xml", "All VCPUs (Aggregated)"]);
    assert_eq!(ys(&xy(&app, &exp, RATE, &[id], &[100]).await[0]), [0.0]);
    let y = ys(&xy(&app, &exp, RATE, &[id], &[0, i64::MAX]).await[0]);
    assert_eq!(y.len(), 2);
    assert!(y.iter().all(|v| v.is_finite()), "{y:?}");
}
