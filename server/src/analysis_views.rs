//! The views of the disk I/O, virtual machine, OpenStack, QEMU migration and
//! Open vSwitch analyses, as [`state_views`](crate::state_views) tables: rows
//! from the attribute trees of `shared/spec/providers.md`, colours from its
//! colour tables, XY series from counters and values. The Virtual CPU and
//! Virtual Resources views need rows of several attributes and state systems:
//! they are providers of their own ([`vm_views`]).

use sextant_providers::diskio::DISKIO_ANALYSIS_ID;
use sextant_providers::openstack::{cinder, neutron, nova, nova_services};
use sextant_providers::vm::nested;
use sextant_providers::{ovs, qemu_migration};
use std::sync::Arc;

use sht::{Quark, StateSystem, StateSystemQuerier, StateValue, TimeCondition};

use crate::registry::{ExperimentSource, OutputFactory, OutputProvider};
use crate::state_views::{values_at, RowPattern, Seg, StyleDef, ViewDef, ViewKind};

pub mod kvm_exit_rate;
pub mod vm_views;

use Seg::{Each, EachByPrefix, EachValue, Group, Lit, Series};

const fn st(key: &'static str, label: &'static str, rgb: (u8, u8, u8), height: f64) -> StyleDef {
    StyleDef {
        key,
        label,
        rgb,
        height,
    }
}

fn int(v: &StateValue) -> Option<i64> {
    match v {
        StateValue::Int(i) => Some(i64::from(*i)),
        StateValue::Long(l) => Some(*l),
        _ => None,
    }
}

/// Style key of a code from a (code, key) table; other non-null ints → `other`.
fn by_code(
    table: &[(i64, &'static str)],
    other: &'static str,
    v: &StateValue,
) -> Option<&'static str> {
    let c = int(v)?;
    Some(
        table
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(other, |(_, s)| s),
    )
}

// ---- Disk I/O ----

/// Trace Compass's Disk I/O activity data provider id.
pub const DISK_IO_ID: &str =
    "org.eclipse.tracecompass.analysis.os.linux.core.inputoutput.DisksIODataProvider";

/// Request types of the disk I/O state system (`Driver_queue/<slot>` values).
const READ: i32 = 1;
const WRITE: i32 = 0;

/// Sectors read (`rw` = READ) or written at `t`: the counter, plus the share of
/// each request of that type in the driver queue proportional to the time it
/// has been there (Trace Compass's `Disk.extractCount` interpolation).
fn sectors_at(ss: &StateSystem, counter: Quark, rw: i32, t: i64) -> sht::Result<f64> {
    let tree = ss.attributes();
    let mut count = int(&ss.query_single(t, counter)?.value).unwrap_or(0) as f64;
    let disk = tree.parent(counter)?;
    let driver = tree.opt_quark(disk, &["Driver_queue"]);
    if driver < 0 {
        return Ok(count);
    }
    for &slot in tree.children_of(driver) {
        let size_q = tree.opt_quark(slot, &["Request_size"]);
        if size_q < 0 || ss.query_single(t, slot)?.value != StateValue::Int(rw) {
            continue;
        }
        let size = ss.query_single(t, size_q)?;
        if let Some(n) = int(&size.value) {
            let running = (size.end - size.start + 1) as f64;
            count += (t - size.start) as f64 * n as f64 / running;
        }
    }
    Ok(count)
}

/// Throughput in B/s between sample times, Trace Compass's way: the first point
/// is 0; times after the history's end stay 0.
fn disk_throughput(class: u8, ss: &StateSystem, q: Quark, times: &[i64]) -> sht::Result<Vec<f64>> {
    let rw = if class == 0 { READ } else { WRITE };
    let (start, end) = (ss.start_time(), ss.current_end_time());
    let mut y = vec![0.0; times.len()];
    let Some(&first) = times.first() else {
        return Ok(y);
    };
    let mut prev_time = first;
    let mut prev = if (start..=end).contains(&first) {
        sectors_at(ss, q, rw, first)?
    } else {
        0.0
    };
    for k in 1..times.len() {
        let t = times[k];
        if t > end {
            break;
        }
        if t >= start && t > prev_time {
            let count = sectors_at(ss, q, rw, t)?;
            y[k] = (count - prev) * 512.0 * 1e9 / (t - prev_time) as f64;
            prev = count;
        }
        prev_time = t;
    }
    Ok(y)
}

// ---- Virtual machines ----

fn vcpu_style(_: u8, v: &StateValue) -> Option<&'static str> {
    let v = int(v)?;
    Some(if v & 256 != 0 {
        "VCPU_PREEMPTED"
    } else if v & 128 != 0 {
        "VMM"
    } else if v == 2 {
        "VCPU_USERMODE"
    } else if v == 1 {
        "VCPU_IDLE"
    } else {
        "VCPU_UNKNOWN"
    })
}

const VCPU_STYLES: &[StyleDef] = &[
    st("VCPU_PREEMPTED", "VCPU preempted", (207, 127, 47), 0.5),
    st("VMM", "VMM mode (not running user code)", (179, 6, 6), 0.66),
    st("VCPU_USERMODE", "VCPU usermode", (0, 200, 0), 1.0),
    st("VCPU_IDLE", "VCPU idle", (200, 200, 200), 0.66),
    st(
        "VCPU_UNKNOWN",
        "Running unknown (idle, user or kernel)",
        (83, 156, 83),
        1.0,
    ),
];

/// Fused view classes: CPU status, IRQ, soft IRQ, vCPU of a machine, thread.
fn fused_style(class: u8, v: &StateValue) -> Option<&'static str> {
    let c = int(v)?;
    Some(match class {
        0 => match c {
            0 => "IDLE",
            1 => "SOFT_IRQ_RAISED",
            2 => "USERMODE",
            4 => "SYSCALL",
            8 => "SOFT_IRQ",
            16 => "IRQ",
            32 => "IN_VM",
            _ => "UNKNOWN",
        },
        1 => "IRQ",
        2 => match c {
            1 => "SOFT_IRQ_RAISED",
            _ => "SOFT_IRQ",
        },
        3 => "IN_VM",
        _ => match c {
            1 => "WAIT_BLOCKED",
            2 => "USERMODE",
            3 => "SYSCALL",
            4 => "INTERRUPTED",
            5 => "WAIT_FOR_CPU",
            6 => "WAIT_UNKNOWN",
            _ => "UNKNOWN",
        },
    })
}

const FUSED_STYLES: &[StyleDef] = &[
    st("IDLE", "Idle", (200, 200, 200), 1.0),
    st("USERMODE", "User mode", (0, 200, 0), 1.0),
    st("SYSCALL", "System call", (0, 0, 200), 1.0),
    st("IRQ", "IRQ", (200, 0, 100), 1.0),
    st("SOFT_IRQ", "Soft IRQ", (200, 150, 100), 1.0),
    st("SOFT_IRQ_RAISED", "Soft IRQ raised", (200, 200, 0), 1.0),
    st("IN_VM", "In VM", (200, 0, 200), 1.0),
    st("WAIT_BLOCKED", "Blocked", (200, 200, 0), 0.5),
    st("INTERRUPTED", "Interrupted", (200, 0, 100), 0.75),
    st("WAIT_FOR_CPU", "Waiting for CPU", (200, 100, 0), 0.5),
    st("WAIT_UNKNOWN", "Waiting", (200, 200, 200), 0.5),
    st("UNKNOWN", "Unknown", (192, 192, 192), 1.0),
];

fn nested_style(_: u8, v: &StateValue) -> Option<&'static str> {
    by_code(
        &[
            (0, "UNKNOWN"),
            (1, "ROOT"),
            (2, "NON_ROOT"),
            (3, "PREEMPTED"),
            (4, "PREEMPTED"),
            (5, "PREEMPTED"),
            (6, "WAIT_TASK"),
            (7, "WAIT_TIMER"),
            (8, "WAIT_DISK"),
            (9, "WAIT_NET"),
            (10, "WAIT"),
            (11, "WAIT"),
            (12, "SYSCALL"),
            (13, "USER"),
            (14, "SYSCALL"),
            (15, "NON_ROOT_L2"),
            (16, "PREEMPTED"),
            (17, "PREEMPTED"),
            (18, "PREEMPTED"),
            (19, "PREEMPTED"),
        ],
        "INJECTED",
        v,
    )
}

/// The spec's suggested virtFlow palette (§1.7).
const NESTED_STYLES: &[StyleDef] = &[
    st("UNKNOWN", "Unknown", (192, 192, 192), 1.0),
    st(
        "NON_ROOT",
        "Running guest code (non-root)",
        (0, 200, 0),
        1.0,
    ),
    st("ROOT", "Running in hypervisor (root)", (179, 6, 6), 1.0),
    st("PREEMPTED", "Preempted", (207, 127, 47), 1.0),
    st("WAIT_TIMER", "Wait for timer", (200, 200, 0), 1.0),
    st("WAIT_TASK", "Wait for task", (200, 100, 0), 1.0),
    st("WAIT_DISK", "Wait for disk", (0, 0, 200), 1.0),
    st("WAIT_NET", "Wait for network", (0, 150, 150), 1.0),
    st("WAIT", "Blocked / wait", (200, 200, 200), 1.0),
    st("NON_ROOT_L2", "Running nested guest (L2)", (0, 120, 0), 1.0),
    st("SYSCALL", "System call", (100, 100, 255), 1.0),
    st("USER", "User space", (0, 200, 0), 1.0),
    st("INJECTED", "Interrupt injected", (150, 150, 150), 1.0),
];

// ---- OpenStack ----

/// Nova VM states (§2.2/§2.3 codes).
fn vm_state_style(v: &StateValue) -> Option<&'static str> {
    by_code(
        &[
            (0, "BUILDING"),
            (1, "ACTIVE"),
            (2, "SUSPENDED"),
            (3, "DELETED"),
            (4, "PAUSED"),
            (5, "STOPPED"),
            (6, "MIGRATING"),
            (20, "RESCUED"),
            (21, "RESIZED"),
            (22, "SOFT_DELETE"),
            (23, "ERROR"),
            (24, "SHELVED"),
            (25, "SHELVED_OFFLOADED"),
        ],
        "NOTSET",
        v,
    )
}

const VM_STATE_STYLES: &[StyleDef] = &[
    st("BUILDING", "building", (102, 255, 255), 1.0),
    st("ACTIVE", "active", (0, 255, 0), 1.0),
    st("SUSPENDED", "suspended", (204, 204, 0), 1.0),
    st("PAUSED", "paused", (204, 204, 0), 1.0),
    st("STOPPED", "stopped", (204, 204, 0), 1.0),
    st("DELETED", "deleted", (255, 250, 250), 1.0),
    st("MIGRATING", "migrating", (187, 50, 120), 1.0),
    st("RESCUED", "rescued", (186, 186, 186), 1.0),
    st("RESIZED", "resized", (186, 186, 186), 1.0),
    st("SOFT_DELETE", "soft-delete", (255, 250, 250), 1.0),
    st("ERROR", "error", (204, 0, 0), 1.0),
    st("SHELVED", "shelved", (186, 186, 186), 1.0),
    st(
        "SHELVED_OFFLOADED",
        "shelved_offloaded",
        (186, 186, 186),
        1.0,
    ),
    st("NOTSET", "NOTSET", (186, 186, 186), 1.0),
];

fn nova_vm_style(_: u8, v: &StateValue) -> Option<&'static str> {
    vm_state_style(v)
}

/// Nova operations (§2.2 table): service rows (class 0) and VM rows (class 1).
fn nova_service_style(class: u8, v: &StateValue) -> Option<&'static str> {
    if class == 1 {
        return vm_state_style(v);
    }
    by_code(
        &[
            (10, "CREATE"),
            (11, "PAUSE"),
            (12, "DELETE"),
            (13, "SHUTDOWN"),
            (14, "LIVE_MIGRATION_PRE"),
            (15, "LIVE_MIGRATION_POST"),
            (16, "LIVE_MIGRATION_P_POST"),
            (17, "REBOOT"),
            (18, "POWER_OFF"),
            (20, "SCHEDULER_SELECT"),
            (21, "SCHEDULER_CHANCE"),
            (30, "CONDUCTOR_LIVE_MIGRATION"),
            (31, "CONDUCTOR_BUILD"),
            (32, "CONDUCTOR_REBUILD"),
            (33, "CONDUCTOR_FW_RULE"),
            (34, "CONDUCTOR_OBJECT_ACTION"),
            (40, "NETWORK_ALLOCATE"),
            (41, "NETWORK_LEASE"),
            (42, "NETWORK_DEALLOCATE"),
            (43, "NETWORK_RELEASE"),
            (50, "LIBVIRT_LIVE_MIGRATION"),
            (51, "LIBVIRT_FIND_MIN_DATA"),
            (52, "LIBVIRT_CAN_MIGRATE_SOURCE"),
            (53, "LIBVIRT_CAN_MIGRATE_DEST"),
            (54, "LIBVIRT_MIGRATION_MONITOR"),
            (55, "LIBVIRT_PRECOPY"),
            (56, "LIBVIRT_COPY_ITERATION"),
        ],
        "NOTSET",
        v,
    )
}

const NOVA_SERVICE_STYLES: &[StyleDef] = &[
    st("CREATE", "compute.instance.create", (0, 102, 204), 1.0),
    st("PAUSE", "compute.instance.pause", (255, 102, 102), 1.0),
    st("DELETE", "compute.instance.delete", (204, 0, 0), 1.0),
    st("SHUTDOWN", "compute.instance.shutdown", (255, 51, 51), 1.0),
    st(
        "LIVE_MIGRATION_PRE",
        "compute.instance.live_migration.pre",
        (255, 102, 178),
        1.0,
    ),
    st(
        "LIVE_MIGRATION_POST",
        "compute.instance.live_migration.post.dest",
        (255, 0, 127),
        1.0,
    ),
    st(
        "LIVE_MIGRATION_P_POST",
        "compute.instance.live_migration._post",
        (255, 102, 178),
        1.0,
    ),
    st("REBOOT", "compute.instance.reboot", (51, 51, 255), 1.0),
    st(
        "POWER_OFF",
        "compute.instance.power_off",
        (18, 255, 145),
        1.0,
    ),
    st(
        "SCHEDULER_SELECT",
        "scheduler.select_destinations",
        (1, 255, 145),
        1.0,
    ),
    st(
        "SCHEDULER_CHANCE",
        "scheduler.select_destinations.chance",
        (18, 255, 145),
        1.0,
    ),
    st(
        "CONDUCTOR_LIVE_MIGRATION",
        "conductor.live_migration",
        (18, 255, 145),
        1.0,
    ),
    st(
        "CONDUCTOR_BUILD",
        "conductor.build_instance",
        (18, 255, 145),
        1.0,
    ),
    st(
        "CONDUCTOR_REBUILD",
        "conductor.rebuild_instance",
        (18, 255, 145),
        1.0,
    ),
    st(
        "CONDUCTOR_FW_RULE",
        "conductor.provider_fw_rule",
        (18, 255, 145),
        1.0,
    ),
    st(
        "CONDUCTOR_OBJECT_ACTION",
        "conductor.object_action",
        (18, 255, 145),
        1.0,
    ),
    st(
        "NETWORK_ALLOCATE",
        "compute.allocate.network.instance",
        (102, 102, 0),
        1.0,
    ),
    st(
        "NETWORK_LEASE",
        "compute.network.lease_fixed_ip.instance",
        (102, 102, 0),
        1.0,
    ),
    st(
        "NETWORK_DEALLOCATE",
        "compute.deallocate.network.instance",
        (102, 102, 0),
        1.0,
    ),
    st("NETWORK_RELEASE", "release_fixed_ip", (102, 102, 0), 1.0),
    st(
        "LIBVIRT_LIVE_MIGRATION",
        "libvirt.live_migration.operation",
        (100, 20, 145),
        1.0,
    ),
    st(
        "LIBVIRT_FIND_MIN_DATA",
        "libvirt.find.migration.min.data",
        (100, 150, 0),
        1.0,
    ),
    st(
        "LIBVIRT_CAN_MIGRATE_SOURCE",
        "libvirt.can_live_migrate_source",
        (187, 150, 145),
        1.0,
    ),
    st(
        "LIBVIRT_CAN_MIGRATE_DEST",
        "libvirt.can_live_migrate_destination",
        (187, 0, 145),
        1.0,
    ),
    st(
        "LIBVIRT_MIGRATION_MONITOR",
        "libvirt.live_migration_monitor",
        (187, 50, 120),
        1.0,
    ),
    st("LIBVIRT_PRECOPY", "precopy", (100, 200, 145), 1.0),
    st(
        "LIBVIRT_COPY_ITERATION",
        "copy iteration",
        (10, 240, 145),
        1.0,
    ),
    st("NOTSET", "NOTSET", (186, 186, 186), 1.0),
];

fn neutron_style(_: u8, v: &StateValue) -> Option<&'static str> {
    by_code(
        &[
            (1, "NETWORK_CREATE"),
            (2, "NETWORK_UPDATE"),
            (3, "NETWORK_DELETE"),
            (4, "SUBNET_UPDATE"),
            (5, "SUBNET_DELETE"),
            (6, "PORT_DELETE"),
            (7, "ROUTER_CREATE"),
            (8, "ROUTER_REMOVE"),
            (9, "ROUTER_DELETE"),
        ],
        "NOTSET",
        v,
    )
}

const NEUTRON_STYLES: &[StyleDef] = &[
    st("NETWORK_CREATE", "network.create", (0, 102, 204), 1.0),
    st("NETWORK_UPDATE", "network.update", (255, 102, 102), 1.0),
    st("NETWORK_DELETE", "network.delete", (204, 0, 0), 1.0),
    st("SUBNET_UPDATE", "subnet.update", (255, 102, 178), 1.0),
    st("SUBNET_DELETE", "subnet.delete", (255, 51, 51), 1.0),
    st("PORT_DELETE", "port.delete", (18, 255, 145), 1.0),
    st("ROUTER_CREATE", "router.create", (0, 255, 0), 1.0),
    st("ROUTER_REMOVE", "router.remove", (51, 51, 255), 1.0),
    st("ROUTER_DELETE", "router.delete", (18, 255, 145), 1.0),
    st("NOTSET", "NOTSET", (186, 186, 186), 1.0),
];

fn cinder_style(_: u8, v: &StateValue) -> Option<&'static str> {
    by_code(
        &[
            (1, "VOLUME_CREATE"),
            (2, "VOLUME_DELETE"),
            (3, "VOLUME_ATTACH"),
            (4, "VOLUME_DETACH"),
            (5, "VOLUME_MIGRATE"),
            (6, "VOLUME_RESIZE"),
            (7, "SNAPSHOT_CREATE"),
            (8, "SNAPSHOT_DELETE"),
            (9, "VOLUME_UPDATE"),
        ],
        "NOTSET",
        v,
    )
}

const CINDER_STYLES: &[StyleDef] = &[
    st("VOLUME_CREATE", "volume.create", (0, 102, 204), 1.0),
    st("VOLUME_UPDATE", "volume.update", (153, 255, 153), 1.0),
    st("VOLUME_DELETE", "volume.delete", (153, 0, 0), 1.0),
    st("VOLUME_ATTACH", "volume.attach", (0, 102, 0), 1.0),
    st("VOLUME_DETACH", "volume.detach", (96, 96, 96), 1.0),
    st("VOLUME_MIGRATE", "volume.migrate", (255, 103, 204), 1.0),
    st("VOLUME_RESIZE", "volume.resize", (204, 103, 255), 1.0),
    st("SNAPSHOT_CREATE", "snapshot.create", (0, 0, 255), 1.0),
    st("SNAPSHOT_DELETE", "snapshot.delete", (153, 0, 0), 1.0),
    st("NOTSET", "NOTSET", (186, 186, 186), 1.0),
];

// ---- QEMU live migration ----

const ITERATIONS: [&str; 6] = [
    "ITERATION_0",
    "ITERATION_1",
    "ITERATION_2",
    "ITERATION_3",
    "ITERATION_4",
    "ITERATION_5",
];

/// MIG_STATUS rows (class 0) and MIG_COPY rows (class 1).
fn qemu_style(class: u8, v: &StateValue) -> Option<&'static str> {
    let c = int(v)?;
    Some(match (class, c) {
        (0, 1) => "BITMAP_SYNC",
        (0, 2) => "SAVE_VMSTATE_SECTION",
        (0, 41) => "TRANSFERRED",
        (0, 3) => "PENDING",
        (0, _) => "END",
        (_, 50) => "PRECOPY",
        (_, 60) => "STOP_COPY",
        // Iteration k = code − 100: a fixed palette cycled by k (Java draws a
        // random colour each time).
        (_, k) if k >= 100 => ITERATIONS[((k - 100) % 6) as usize],
        _ => "END",
    })
}

const QEMU_STYLES: &[StyleDef] = &[
    st("BITMAP_SYNC", "Bitmap sync", (100, 10, 200), 1.0),
    st(
        "SAVE_VMSTATE_SECTION",
        "Save VM state section",
        (0, 150, 100),
        1.0,
    ),
    st("TRANSFERRED", "Transferred", (153, 153, 0), 1.0),
    st("PENDING", "Pending", (255, 51, 51), 1.0),
    st("END", "End", (255, 255, 255), 1.0),
    st("PRECOPY", "Precopy (bulk round)", (51, 255, 51), 1.0),
    st("STOP_COPY", "Stop and copy", (255, 102, 102), 1.0),
    st("ITERATION_0", "Iteration round", (0, 114, 178), 1.0),
    st("ITERATION_1", "Iteration round", (86, 180, 233), 1.0),
    st("ITERATION_2", "Iteration round", (0, 158, 115), 1.0),
    st("ITERATION_3", "Iteration round", (240, 228, 66), 1.0),
    st("ITERATION_4", "Iteration round", (230, 159, 0), 1.0),
    st("ITERATION_5", "Iteration round", (204, 121, 167), 1.0),
];

/// Dirty pages per second of the round that contains each time: the round's
/// `Dirty_pages` over the time since the previous bitmap sync (the `Round`
/// attribute changes at each sync), pages/s; 0 before the second sync.
fn dirty_page_rate(_: u8, ss: &StateSystem, dirty: Quark, times: &[i64]) -> sht::Result<Vec<f64>> {
    let pages = values_at(ss, dirty, times)?;
    let round = ss
        .attributes()
        .opt_quark(ss.attributes().parent(dirty)?, &["Round"]);
    let (start, end) = (ss.start_time(), ss.current_end_time());
    let mut y = vec![0.0; times.len()];
    if round < 0 {
        return Ok(y);
    }
    for (k, &t) in times.iter().enumerate() {
        if t < start || t > end {
            continue;
        }
        let this = ss.query_single(t, round)?;
        if this.value.is_null() || this.start <= start {
            continue;
        }
        let before = ss.query_single(this.start - 1, round)?;
        if !before.value.is_null() && this.start > before.start {
            y[k] = pages[k] * 1e9 / (this.start - before.start) as f64;
        }
    }
    Ok(y)
}

fn dirty_pages(_: u8, ss: &StateSystem, q: Quark, times: &[i64]) -> sht::Result<Vec<f64>> {
    values_at(ss, q, times)
}

// ---- Open vSwitch ----

fn ovs_path_style(_: u8, v: &StateValue) -> Option<&'static str> {
    by_code(
        &[(1, "IN_OUT"), (2, "RECEIVE"), (3, "UPCALL"), (4, "SEND")],
        "OTHER",
        v,
    )
}

const OVS_STYLES: &[StyleDef] = &[
    st("IN_OUT", "In datapath", (0, 29, 252), 1.0),
    st("RECEIVE", "Receive", (0, 252, 252), 1.0),
    st("UPCALL", "Upcall (slow path)", (255, 0, 0), 1.0),
    st("SEND", "Send", (13, 255, 0), 1.0),
    st("OTHER", "Other", (250, 247, 247), 1.0),
];

/// Mean switching latency (µs) of the packets whose first send falls in each
/// sample bucket `(t_{k−1}, t_k]` (the first bucket is `[t_0, t_0]`): fast
/// path (class 0), slow path (1) or all (2); 0 where none. A packet holds its
/// slot from reception to its first send, so its `Id` interval is
/// `[t_receive, t_send − 1]`; packets never sent (interval reaching the end of
/// the history) have no latency.
fn switching_latency(
    class: u8,
    ss: &StateSystem,
    packets: Quark,
    times: &[i64],
) -> sht::Result<Vec<f64>> {
    let tree = ss.attributes();
    let (start, end) = (ss.start_time(), ss.current_end_time());
    let mut sum = vec![0.0; times.len()];
    let mut n = vec![0u32; times.len()];
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return Ok(sum);
    };
    let (lo, hi) = ((first - 1).max(start), last.min(end));
    let ids: Vec<Quark> = tree
        .children_of(packets)
        .iter()
        .map(|&s| tree.opt_quark(s, &["Id"]))
        .filter(|&q| q >= 0)
        .collect();
    if lo > hi || ids.is_empty() {
        return Ok(sum);
    }
    let mut sent = Vec::new();
    ss.query_2d_visit(&ids, &TimeCondition::range(lo, hi), &mut |i| {
        if !i.value.is_null() && i.end < end {
            sent.push((i.quark, i.start, i.end + 1));
        }
    })?;
    for (id_q, received, send) in sent {
        if send < first || send > last {
            continue;
        }
        if class != 2 {
            let path_q = tree.opt_quark(tree.parent(id_q)?, &["Path"]);
            let slow = path_q >= 0 && int(&ss.query_single(send - 1, path_q)?.value) == Some(1);
            if slow != (class == 1) {
                continue;
            }
        }
        let k = times.partition_point(|&t| t < send);
        sum[k] += (send - received) as f64 / 1000.0;
        n[k] += 1;
    }
    Ok(sum
        .iter()
        .zip(&n)
        .map(|(s, &c)| if c == 0 { 0.0 } else { s / c as f64 })
        .collect())
}

// ---- The tables ----

/// Every view of this module.
pub static VIEWS: &[ViewDef] = &[
    ViewDef {
        id: DISK_IO_ID,
        name: "Disk I/O Activity",
        description: "Read and write throughput of each disk (bytes per second)",
        analysis: DISKIO_ANALYSIS_ID,
        domains: &["kernel"],
        rows: &[
            RowPattern {
                segs: &[
                    Lit("Disks"),
                    EachValue(""),
                    Lit("sectors_read"),
                    Series("read"),
                ],
                class: 0,
            },
            RowPattern {
                segs: &[
                    Lit("Disks"),
                    EachValue(""),
                    Lit("sectors_written"),
                    Series("write"),
                ],
                class: 1,
            },
        ],
        required: &[],
        kind: ViewKind::Xy {
            y_label: "Disk throughput",
            y_unit: "B/s",
            compute: disk_throughput,
        },
    },
    ViewDef {
        id: "org.sextant.server.NestedVcpuView",
        name: "Nested vCPU view",
        description:
            "Per VM: vCPU, guest process and nested-hypervisor vCPU states inferred from the host",
        analysis: nested::ID,
        domains: &["kernel"],
        rows: &[
            RowPattern {
                segs: &[
                    Lit("VMs"),
                    Each("VM "),
                    Group("vCPU", "vCPUs"),
                    Each("vCPU "),
                    Lit("Status"),
                ],
                class: 0,
            },
            RowPattern {
                segs: &[
                    Lit("VMs"),
                    Each("VM "),
                    Group("Process", "Processes"),
                    Each("CR3 "),
                    Lit("Status"),
                ],
                class: 0,
            },
            RowPattern {
                segs: &[
                    Lit("VMs"),
                    Each("VM "),
                    Group("Nested", "Nested hypervisors"),
                    Each("L1 "),
                    Group("vCPU", "Nested vCPUs"),
                    Each("vCPU "),
                    Lit("Status"),
                ],
                class: 0,
            },
            RowPattern {
                segs: &[
                    Lit("VMs"),
                    Each("VM "),
                    Group("Nested", "Nested hypervisors"),
                    Each("L1 "),
                    Group("Process", "L2 processes"),
                    Each("CR3 "),
                    Lit("Status"),
                ],
                class: 0,
            },
        ],
        required: &[],
        kind: ViewKind::TimeGraph {
            styles: &[NESTED_STYLES],
            style_of: nested_style,
            labels: false,
            tooltip: &[("LastExit", "Last exit reason"), ("Process", "Guest CR3")],
        },
    },
    ViewDef {
        id: "org.eclipse.tracecompass.openstack.ui.OpenstackVMStateView",
        name: "OpenStack VM states",
        description: "Nova state of each VM, per project",
        analysis: nova::ID,
        domains: &["ust"],
        rows: &[RowPattern {
            segs: &[
                Lit("PROJECTs"),
                Each("Project "),
                Lit("VMs"),
                Each(""),
                Lit("Status"),
            ],
            class: 0,
        }],
        required: &[],
        kind: ViewKind::TimeGraph {
            styles: &[VM_STATE_STYLES],
            style_of: nova_vm_style,
            labels: true,
            tooltip: &[("Host", "Host")],
        },
    },
    ViewDef {
        id: "org.eclipse.tracecompass.openstack.ui.OpenstackServiceView",
        name: "OpenStack Nova services",
        description: "Operation run by each Nova service (logger), and each VM's state",
        analysis: nova_services::ID,
        domains: &["ust"],
        rows: &[
            // Spec §2.2: a group per service (`nova`), a row per logger.
            RowPattern {
                segs: &[Group("SERVICEs", "Services"), EachByPrefix, Lit("Action")],
                class: 0,
            },
            RowPattern {
                segs: &[Group("VMs", "VMs"), Each(""), Lit("Action")],
                class: 1,
            },
        ],
        required: &[],
        kind: ViewKind::TimeGraph {
            styles: &[NOVA_SERVICE_STYLES, VM_STATE_STYLES],
            style_of: nova_service_style,
            labels: true,
            tooltip: &[("Request_id", "Request")],
        },
    },
    ViewDef {
        id: "org.eclipse.tracecompass.openstack.ui.NeutronView",
        name: "OpenStack Neutron",
        description: "Operations of the Neutron services and agents, per network and router",
        analysis: neutron::ID,
        domains: &["ust"],
        rows: &[
            RowPattern {
                segs: &[Group("SERVICEs", "Services"), Each(""), Lit("Action")],
                class: 0,
            },
            RowPattern {
                segs: &[
                    Group("Agents", "Agents"),
                    Each(""),
                    Group("Networks", "Networks"),
                    Each(""),
                ],
                class: 0,
            },
            RowPattern {
                segs: &[
                    Group("Agents", "Agents"),
                    Each(""),
                    Group("Routers", "Routers"),
                    Each(""),
                ],
                class: 0,
            },
        ],
        required: &[],
        kind: ViewKind::TimeGraph {
            styles: &[NEUTRON_STYLES],
            style_of: neutron_style,
            labels: true,
            tooltip: &[],
        },
    },
    ViewDef {
        id: "org.eclipse.tracecompass.openstack.ui.CinderView",
        name: "OpenStack Cinder",
        description: "Operations of the Cinder services, and of each volume",
        analysis: cinder::ID,
        domains: &["ust"],
        rows: &[
            RowPattern {
                segs: &[Group("SERVICEs", "Services"), Each(""), Lit("Action")],
                class: 0,
            },
            RowPattern {
                segs: &[Group("Volumes", "Volumes"), Each(""), Lit("Action")],
                class: 0,
            },
        ],
        required: &[],
        kind: ViewKind::TimeGraph {
            styles: &[CINDER_STYLES],
            style_of: cinder_style,
            labels: true,
            tooltip: &[("Instance", "Instance"), ("Host", "Host")],
        },
    },
    ViewDef {
        id: "org.eclipse.tracecompass.analysis.os.linux.qemu.ui.QemuStateView",
        name: "QEMU live migration",
        description:
            "Migration activity and stages (precopy, iteration rounds, stop-and-copy) per QEMU",
        analysis: qemu_migration::ID,
        domains: &["ust"],
        rows: &[
            RowPattern {
                segs: &[Group("QEMUs", "MIG_STATUS"), Each(""), Lit("MIG_STATUS")],
                class: 0,
            },
            RowPattern {
                segs: &[Group("QEMU_COPY", "MIG_COPY"), Each(""), Lit("MIG_COPY")],
                class: 1,
            },
        ],
        required: &[],
        kind: ViewKind::TimeGraph {
            styles: &[QEMU_STYLES],
            style_of: qemu_style,
            labels: true,
            tooltip: &[
                ("Round", "Round"),
                ("Dirty_pages", "Dirty pages"),
                ("Throttle", "Throttle"),
                ("Result", "Result"),
            ],
        },
    },
    ViewDef {
        id: "org.eclipse.tracecompass.analysis.os.linux.qemu.ui.dirty",
        name: "QEMU dirty pages",
        description: "Pages found dirty at each bitmap sync, per QEMU",
        analysis: qemu_migration::ID,
        domains: &["ust"],
        rows: &[RowPattern {
            segs: &[
                Lit("QEMU_COPY"),
                Each(""),
                Lit("Dirty_pages"),
                Series("dirty pages"),
            ],
            class: 0,
        }],
        required: &[],
        kind: ViewKind::Xy {
            y_label: "Dirty pages",
            y_unit: "pages",
            compute: dirty_pages,
        },
    },
    ViewDef {
        id: "org.sextant.server.QemuDirtyPageRate",
        name: "QEMU dirty-page rate",
        description: "Pages dirtied per second during each migration round, per QEMU",
        analysis: qemu_migration::ID,
        domains: &["ust"],
        rows: &[RowPattern {
            segs: &[
                Lit("QEMU_COPY"),
                Each(""),
                Lit("Dirty_pages"),
                Series("dirty-page rate"),
            ],
            class: 0,
        }],
        required: &[],
        kind: ViewKind::Xy {
            y_label: "Dirty-page rate",
            y_unit: "pages/s",
            compute: dirty_page_rate,
        },
    },
    ViewDef {
        id: "org.eclipse.tracecompass.analysis.os.linux.ovs.ui.OVS_PATH_VIEW",
        name: "OvS packet path",
        description:
            "Open vSwitch datapath activity: packets in the datapath and their processing step",
        analysis: ovs::PATH_ID,
        domains: &["kernel"],
        rows: &[
            RowPattern {
                segs: &[Lit("OVS"), Group("IN_OUT", "IN_OUT"), Lit("State")],
                class: 0,
            },
            RowPattern {
                segs: &[
                    Lit("OVS"),
                    Group("PACKET_PROCESSING", "PACKET_PROCESSING"),
                    Lit("State"),
                ],
                class: 0,
            },
        ],
        required: &[],
        kind: ViewKind::TimeGraph {
            styles: &[OVS_STYLES],
            style_of: ovs_path_style,
            labels: false,
            tooltip: &[],
        },
    },
    ViewDef {
        id: "org.sextant.server.OvsPackets",
        name: "OvS packets",
        description:
            "Each packet in the Open vSwitch datapath (one row per slot): receive, upcall, send",
        analysis: ovs::PACKETS_ID,
        domains: &["kernel"],
        rows: &[RowPattern {
            segs: &[Lit("OVS"), Group("Packets", "Packets"), Each("slot ")],
            class: 0,
        }],
        required: &[],
        kind: ViewKind::TimeGraph {
            styles: &[OVS_STYLES],
            style_of: ovs_path_style,
            labels: false,
            tooltip: &[("Id", "Packet id"), ("Path", "Path (0 fast, 1 slow)")],
        },
    },
    ViewDef {
        id: "org.sextant.server.OvsSwitchingLatency",
        name: "OvS switching latency",
        description:
            "Mean receive-to-send time of the packets switched in each interval, fast and slow path",
        analysis: ovs::PACKETS_ID,
        domains: &["kernel"],
        rows: &[
            RowPattern {
                segs: &[Lit("OVS"), Lit("Packets"), Series("fast path")],
                class: 0,
            },
            RowPattern {
                segs: &[Lit("OVS"), Lit("Packets"), Series("slow path")],
                class: 1,
            },
            RowPattern {
                segs: &[Lit("OVS"), Lit("Packets"), Series("all")],
                class: 2,
            },
        ],
        required: &[],
        kind: ViewKind::Xy {
            y_label: "Switching latency",
            y_unit: "µs",
            compute: switching_latency,
        },
    },
];

/// The views of this module: the [`VIEWS`] tables, the two VM views of
/// [`vm_views`] and the exit rate of [`kvm_exit_rate`].
pub struct AnalysisViewsFactory {
    tables: crate::state_views::StateViewsFactory,
}

impl OutputFactory for AnalysisViewsFactory {
    fn create(&self, experiment: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>> {
        let mut out = self.tables.create(experiment);
        out.extend(vm_views::VmViewsFactory.create(experiment));
        out.extend(kvm_exit_rate::KvmExitRateFactory.create(experiment));
        out
    }
}

/// The factory of this module's views.
pub fn factory() -> AnalysisViewsFactory {
    AnalysisViewsFactory {
        tables: crate::state_views::StateViewsFactory { views: VIEWS },
    }
}
