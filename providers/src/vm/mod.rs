//! Virtual machine analyses (Trace Compass incubator `virtual.machine.analysis`) and the
//! host-only nested-vCPU analysis (virtFlow).
//!
//! All run on an experiment: every event carries the index of its trace
//! ([`EventFields::trace_index`]) and [`TraceInfo::hosts`] names the machine of each
//! trace. Modules, one per analysis:
//! - [`model`]: which machine is a host or a guest, which host thread runs which vCPU;
//! - [`vresources`]: vCPU status (running, idle, in hypervisor, preempted);
//! - [`overhead`]: per guest thread, a 3-level call stack (status, VMM/preempted, reason);
//! - [`fused`]: physical CPUs showing what really runs on them, across machines;
//! - [`nested`]: host-only vCPU states with nesting (L0/L1/L2), by exit reasons and CR3.
//!
//! This file holds what they share: event kinds and their fields, the machine model
//! (`Machines`), per-machine thread tracking, and `History`, which lets the
//! analyses that Trace Compass runs against a *finished* model look ahead in time.

pub mod fused;
mod fused_attrs;
pub mod model;
pub mod nested;
pub mod overhead;
pub mod vresources;

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::{EventFields, Subscription, TraceInfo};

/// A fast hasher for small integer keys (thread ids, CPUs), which the analyses look
/// up several times per event; HashDoS is not a concern for trace data.
#[derive(Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl IntHasher {
    #[inline]
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for IntHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.add(*b as u64);
        }
    }
    fn write_u32(&mut self, x: u32) {
        self.add(x as u64);
    }
    fn write_i32(&mut self, x: i32) {
        self.add(x as u32 as u64);
    }
    fn write_u64(&mut self, x: u64) {
        self.add(x);
    }
    fn write_i64(&mut self, x: i64) {
        self.add(x as u64);
    }
    fn write_usize(&mut self, x: usize) {
        self.add(x as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by small integers (see [`IntHasher`]).
pub(crate) type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;
pub(crate) type IntSet<K> = HashSet<K, BuildHasherDefault<IntHasher>>;

/// The kernel and KVM events the VM analyses read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub(crate) enum Kind {
    SchedSwitch = 1,
    KvmEntry,
    KvmExit,
    KvmMmuGetPage,
    KvmNestedVmexitInject,
    VmsyncGhHost,
    VmsyncHgHost,
    VmsyncGhGuest,
    VmsyncHgGuest,
    SchedWakeup,
    SchedPiSetprio,
    SchedProcessFork,
    SchedProcessExit,
    SchedProcessFree,
    IrqEntry,
    IrqExit,
    SoftirqEntry,
    SoftirqExit,
    SoftirqRaise,
    Statedump,
    SyscallEntry,
    SyscallExit,
    // virtFlow (host-only) events.
    VcpuEnterGuest,
    InjVirq,
    SchedTtwu,
}

impl Kind {
    const ALL: [Kind; 25] = [
        Kind::SchedSwitch,
        Kind::KvmEntry,
        Kind::KvmExit,
        Kind::KvmMmuGetPage,
        Kind::KvmNestedVmexitInject,
        Kind::VmsyncGhHost,
        Kind::VmsyncHgHost,
        Kind::VmsyncGhGuest,
        Kind::VmsyncHgGuest,
        Kind::SchedWakeup,
        Kind::SchedPiSetprio,
        Kind::SchedProcessFork,
        Kind::SchedProcessExit,
        Kind::SchedProcessFree,
        Kind::IrqEntry,
        Kind::IrqExit,
        Kind::SoftirqEntry,
        Kind::SoftirqExit,
        Kind::SoftirqRaise,
        Kind::Statedump,
        Kind::SyscallEntry,
        Kind::SyscallExit,
        Kind::VcpuEnterGuest,
        Kind::InjVirq,
        Kind::SchedTtwu,
    ];

    pub(crate) fn from_handler(h: u32) -> Option<Kind> {
        Kind::ALL.get((h as usize).checked_sub(1)?).copied()
    }

    /// The kind of an event name, under both the default (stub) layout and the
    /// LTTng >= 2.8 layout; syscalls by prefix, exits tested first as Trace Compass does.
    pub(crate) fn of(name: &str) -> Option<Kind> {
        Some(match name {
            "sched_switch" => Kind::SchedSwitch,
            "kvm_entry" | "kvm_x86_entry" => Kind::KvmEntry,
            "kvm_exit" | "kvm_x86_exit" => Kind::KvmExit,
            "kvm_mmu_get_page" => Kind::KvmMmuGetPage,
            "kvm_nested_vmexit_inject" => Kind::KvmNestedVmexitInject,
            "vmsync_gh_host" => Kind::VmsyncGhHost,
            "vmsync_hg_host" => Kind::VmsyncHgHost,
            "vmsync_gh_guest" => Kind::VmsyncGhGuest,
            "vmsync_hg_guest" => Kind::VmsyncHgGuest,
            "sched_wakeup" | "sched_wakeup_new" | "sched_waking" => Kind::SchedWakeup,
            "sched_pi_setprio" => Kind::SchedPiSetprio,
            "sched_process_fork" => Kind::SchedProcessFork,
            "sched_process_exit" => Kind::SchedProcessExit,
            "sched_process_free" => Kind::SchedProcessFree,
            "irq_handler_entry" => Kind::IrqEntry,
            "irq_handler_exit" => Kind::IrqExit,
            // LTTng >= 2.7 prefixes them with `irq_`; Trace Compass takes the names
            // from each trace's event layout, so both forms are soft IRQs.
            "softirq_entry" | "irq_softirq_entry" => Kind::SoftirqEntry,
            "softirq_exit" | "irq_softirq_exit" => Kind::SoftirqExit,
            "softirq_raise" | "irq_softirq_raise" => Kind::SoftirqRaise,
            "lttng_statedump_process_state" => Kind::Statedump,
            "addons_vcpu_enter_guest" | "vcpu_enter_guest" => Kind::VcpuEnterGuest,
            "kvm_inj_virq" | "kvm_x86_inj_virq" => Kind::InjVirq,
            "sched_ttwu" => Kind::SchedTtwu,
            _ if name == "exit_syscall"
                || name.starts_with("syscall_exit_")
                || name.starts_with("compat_syscall_exit_") =>
            {
                Kind::SyscallExit
            }
            _ if name.starts_with("sys_")
                || name.starts_with("compat_sys_")
                || name.starts_with("syscall_entry_")
                || name.starts_with("compat_syscall_entry_") =>
            {
                Kind::SyscallEntry
            }
            _ => return None,
        })
    }

    /// Fields read, by slot (see the `F_*` constants).
    pub(crate) fn fields(self) -> Vec<&'static str> {
        match self {
            Kind::SchedSwitch => vec![
                "prev_tid",
                "prev_state",
                "next_tid",
                "next_prio",
                "next_comm",
                "prev_comm",
            ],
            Kind::KvmEntry => vec!["vcpu_id", "context._tid", "context._pid"],
            Kind::KvmExit => vec!["exit_reason", "context._tid", "context._pid"],
            Kind::VmsyncGhHost | Kind::VmsyncHgHost => {
                vec!["vm_uid", "context._tid", "context._pid"]
            }
            Kind::VmsyncGhGuest | Kind::VmsyncHgGuest => vec!["vm_uid"],
            Kind::SchedWakeup => vec!["tid", "prio"],
            Kind::SchedPiSetprio => vec!["tid", "newprio"],
            Kind::SchedProcessFork => vec![
                "parent_tid",
                "child_tid",
                "child_comm",
                "vtids",
                "child_ns_inum",
                "parent_ns_inum",
            ],
            Kind::SchedProcessFree => vec!["tid"],
            Kind::IrqEntry | Kind::IrqExit => vec!["irq"],
            Kind::SoftirqEntry | Kind::SoftirqExit | Kind::SoftirqRaise => vec!["vec"],
            Kind::Statedump => vec![
                "tid", "vtid", "pid", "vpid", "ppid", "vppid", "name", "status", "ns_level",
                "ns_inum",
            ],
            Kind::VcpuEnterGuest => vec!["vcpuID", "cr3tmp", "sptmp", "context._tid"],
            Kind::InjVirq => vec!["irq", "context._tid"],
            Kind::SchedTtwu => vec!["tid"],
            Kind::KvmMmuGetPage
            | Kind::KvmNestedVmexitInject
            | Kind::SchedProcessExit
            | Kind::SyscallEntry
            | Kind::SyscallExit => vec![],
        }
    }
}

// Field slots of sched_switch.
pub(crate) const SW_PREV_TID: usize = 0;
pub(crate) const SW_PREV_STATE: usize = 1;
pub(crate) const SW_NEXT_TID: usize = 2;
pub(crate) const SW_NEXT_PRIO: usize = 3;
pub(crate) const SW_NEXT_COMM: usize = 4;
// Field slots of kvm entry/exit and the host vmsync events.
pub(crate) const KVM_ARG: usize = 0; // vcpu_id, exit_reason or vm_uid
pub(crate) const KVM_CTX_TID: usize = 1;
pub(crate) const KVM_CTX_PID: usize = 2;

/// First handler number of syscall-entry classes (each keeps its own name).
pub(crate) const SYSCALL_HANDLER_BASE: u32 = 1000;

/// Subscribes to `name` if its kind is among `wanted`.
pub(crate) fn subscribe_kinds(name: &str, wanted: &[Kind]) -> Option<Subscription> {
    let kind = Kind::of(name)?;
    wanted.contains(&kind).then(|| Subscription {
        handler: kind as u32,
        fields: kind.fields(),
    })
}

/// Host id of each trace: [`TraceInfo::hosts`], or the trace name for a single trace.
pub(crate) fn host_ids(trace: &TraceInfo) -> Vec<String> {
    if trace.hosts.is_empty() {
        vec![trace.name.clone()]
    } else {
        trace.hosts.clone()
    }
}

/// Host id of the event's trace (an index out of range reads as the last trace).
pub(crate) fn host_of<'a>(hosts: &'a [String], ev: &dyn EventFields) -> &'a str {
    let i = ev.trace_index().min(hosts.len().saturating_sub(1));
    hosts.get(i).map(String::as_str).unwrap_or("")
}

/// Machine type bits (Trace Compass `VirtualMachine`).
pub(crate) const HOST: i32 = 1;
pub(crate) const GUEST: i32 = 2;

/// A traced machine and what the analyses learnt of it.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub host_id: String,
    pub trace_name: String,
    pub kind: i32,
    pub vm_uid: i64,
    /// Machine indices, in the order they were added.
    pub children: Vec<usize>,
    pub parent: Option<usize>,
    /// Nested virtualization: host threads whose next entry goes to the next layer.
    pub waiting_next_layer: IntSet<i32>,
    pub ready_next_layer: IntSet<i32>,
}

impl Machine {
    pub fn is_host(&self) -> bool {
        self.kind & HOST != 0
    }
    pub fn is_guest(&self) -> bool {
        self.kind & GUEST != 0
    }
}

/// A virtual CPU: (guest machine index, vCPU number).
pub(crate) type Vcpu = (usize, i64);

/// The virtual environment: machines by host id, and the host threads running guests
/// and vCPUs (Trace Compass `VirtualEnvironment` / `QemuKvmVmModel`).
#[derive(Debug, Default)]
pub(crate) struct Machines {
    pub list: Vec<Machine>,
    pub by_host: HashMap<String, usize>,
    /// (host machine, TID) -> guest machine.
    pub tid_to_vm: IntMap<(usize, i32), usize>,
    /// (host machine, TID) -> vCPU.
    pub tid_to_vcpu: IntMap<(usize, i32), Vcpu>,
}

impl Machines {
    pub fn get(&self, host_id: &str) -> Option<usize> {
        self.by_host.get(host_id).copied()
    }

    pub fn add(&mut self, host_id: &str, trace_name: &str, kind: i32) -> usize {
        let i = self.list.len();
        self.list.push(Machine {
            host_id: host_id.to_string(),
            trace_name: trace_name.to_string(),
            kind,
            vm_uid: -1,
            children: Vec::new(),
            parent: None,
            waiting_next_layer: IntSet::default(),
            ready_next_layer: IntSet::default(),
        });
        self.by_host.insert(host_id.to_string(), i);
        i
    }

    pub fn add_child(&mut self, parent: usize, child: usize) {
        if !self.list[parent].children.contains(&child) {
            self.list[parent].children.push(child);
        }
    }

    /// The host thread running a vCPU (inverse of `tid_to_vcpu`).
    pub fn vcpu_tid(&self, vcpu: Vcpu) -> Option<(usize, i32)> {
        self.tid_to_vcpu
            .iter()
            .find(|(_, v)| **v == vcpu)
            .map(|(ht, _)| *ht)
    }
}

/// Values of one key over time, as changes `(from, value)`, for queries at a time
/// somewhat behind the newest change. Old changes are dropped by [`History::prune`].
#[derive(Debug, Clone)]
pub(crate) struct History<V> {
    changes: VecDeque<(i64, V)>,
}

impl<V> Default for History<V> {
    fn default() -> Self {
        History {
            changes: VecDeque::new(),
        }
    }
}

impl<V: PartialEq + Clone> History<V> {
    /// `value` holds from `t` (a change at the same time replaces the previous one;
    /// an equal value is no change, as in a state system).
    pub fn set(&mut self, t: i64, value: V) {
        if let Some(last) = self.changes.back_mut() {
            if last.0 >= t {
                last.1 = value;
                // Two changes at one time may come back to the value before them.
                let n = self.changes.len();
                if n >= 2 && self.changes[n - 2].1 == self.changes[n - 1].1 {
                    self.changes.pop_back();
                }
                return;
            }
            if last.1 == value {
                return;
            }
        }
        self.changes.push_back((t, value));
    }

    /// Index of the change in effect at `t`.
    fn index_at(&self, t: i64) -> Option<usize> {
        let n = self.changes.partition_point(|(s, _)| *s <= t);
        n.checked_sub(1)
    }

    pub fn at(&self, t: i64) -> Option<&V> {
        // Most queries are at the present: the newest change.
        if let Some((s, v)) = self.changes.back() {
            if *s <= t {
                return Some(v);
            }
        }
        self.index_at(t).map(|i| &self.changes[i].1)
    }

    pub fn last_start(&self) -> Option<i64> {
        self.changes.back().map(|c| c.0)
    }

    pub fn first_start(&self) -> Option<i64> {
        self.changes.front().map(|c| c.0)
    }

    pub fn latest(&self) -> Option<&V> {
        self.changes.back().map(|c| &c.1)
    }

    /// The change in effect at `t`: `(start, value, start of the next change)`.
    pub fn interval_at(&self, t: i64) -> Option<(i64, &V, Option<i64>)> {
        let i = self.index_at(t)?;
        let (s, v) = &self.changes[i];
        Some((*s, v, self.changes.get(i + 1).map(|c| c.0)))
    }

    /// Forgets changes no query at `t` or later needs.
    pub fn prune(&mut self, t: i64) {
        while self.changes.len() >= 2 && self.changes[1].0 <= t {
            self.changes.pop_front();
        }
    }
}

/// Linux process status codes of the kernel analysis (Trace Compass `StateValues`).
pub(crate) mod status {
    pub const UNKNOWN: i32 = 0;
    pub const WAIT_BLOCKED: i32 = 1;
    pub const RUN_USERMODE: i32 = 2;
    pub const RUN_SYSCALL: i32 = 3;
    pub const INTERRUPTED: i32 = 4;
    pub const WAIT_FOR_CPU: i32 = 5;
    pub const WAIT_UNKNOWN: i32 = 6;
    pub const WAIT_FORK: i32 = 7;

    /// Name of a status as Trace Compass's `ProcessStatus` enum spells it.
    pub fn name(status: Option<i32>) -> &'static str {
        match status {
            None => "NOT_ALIVE",
            Some(WAIT_BLOCKED) => "WAIT_BLOCKED",
            Some(RUN_USERMODE) => "RUN",
            Some(RUN_SYSCALL) => "RUN_SYTEMCALL",
            Some(INTERRUPTED) => "INTERRUPTED",
            Some(WAIT_FOR_CPU) => "WAIT_CPU",
            Some(WAIT_UNKNOWN) => "WAIT_UNKNOWN",
            Some(WAIT_FORK) => "WAIT_FORK",
            Some(_) => "UNKNOWN",
        }
    }

    /// Status of a thread scheduled out with `prev_state` (`None`: dead).
    pub fn after_switch_out(prev_state: i64) -> Option<i32> {
        let state = prev_state & (1024 - 1);
        if state == 0 {
            Some(WAIT_FOR_CPU)
        } else if state & (1 | 2) != 0 {
            Some(WAIT_BLOCKED)
        } else if state & 64 != 0 {
            None
        } else {
            Some(WAIT_UNKNOWN)
        }
    }
}

/// What the kernel analysis of each machine would say, kept as histories: the thread
/// on each CPU and each thread's status (Trace Compass `KernelAnalysisModule`, as the
/// VM analyses query it through `IHostModel`).
#[derive(Debug, Default)]
pub(crate) struct KernelModels {
    /// (trace index, cpu) -> TID.
    pub on_cpu: IntMap<(usize, u32), History<i32>>,
    /// (trace index, tid) -> status (`None`: not alive).
    pub status: IntMap<(usize, i32), History<Option<i32>>>,
    /// (trace index, tid) -> in a system call.
    syscall: IntSet<(usize, i32)>,
    /// (trace index, tid) -> parent PID.
    pub ppid: IntMap<(usize, i32), i32>,
    /// Whether thread statuses are kept (only the overhead analysis reads them).
    pub track_status: bool,
}

impl KernelModels {
    pub fn thread_on_cpu(&self, trace: usize, cpu: u32, t: i64) -> Option<i32> {
        self.on_cpu.get(&(trace, cpu))?.at(t).copied()
    }

    pub fn current_thread(&self, trace: usize, cpu: u32) -> Option<i32> {
        self.on_cpu.get(&(trace, cpu))?.latest().copied()
    }

    fn set_status(&mut self, trace: usize, tid: i32, t: i64, v: Option<i32>) {
        if !self.track_status {
            return;
        }
        self.status.entry((trace, tid)).or_default().set(t, v);
    }

    fn running_status(&self, trace: usize, tid: i32) -> i32 {
        if self.syscall.contains(&(trace, tid)) {
            status::RUN_SYSCALL
        } else {
            status::RUN_USERMODE
        }
    }

    /// Updates the models with one event of kind `kind` from trace `trace`.
    pub fn handle(&mut self, kind: Kind, ev: &dyn EventFields) {
        if !self.track_status
            && !matches!(
                kind,
                Kind::SchedSwitch | Kind::SchedProcessFork | Kind::Statedump
            )
        {
            // The other kinds change only statuses (and the in-syscall set, read
            // for statuses only).
            return;
        }
        let trace = ev.trace_index();
        let t = ev.timestamp();
        let cpu = ev.cpu();
        let current = match kind {
            Kind::SchedSwitch | Kind::SchedWakeup | Kind::SchedProcessFork => None,
            _ => cpu.and_then(|c| self.current_thread(trace, c)),
        };
        match kind {
            Kind::SchedSwitch => {
                let (Some(prev), Some(next)) = (ev.int(SW_PREV_TID), ev.int(SW_NEXT_TID)) else {
                    return;
                };
                let (prev, next) = (prev as i32, next as i32);
                let state = ev.int(SW_PREV_STATE).unwrap_or(0);
                self.set_status(trace, prev, t, status::after_switch_out(state));
                let run = self.running_status(trace, next);
                self.set_status(trace, next, t, Some(run));
                if let Some(c) = cpu {
                    self.on_cpu.entry((trace, c)).or_default().set(t, next);
                }
            }
            Kind::SyscallEntry => {
                if let Some(tid) = current {
                    self.syscall.insert((trace, tid));
                    self.set_status(trace, tid, t, Some(status::RUN_SYSCALL));
                }
            }
            Kind::SyscallExit => {
                if let Some(tid) = current {
                    self.syscall.remove(&(trace, tid));
                    self.set_status(trace, tid, t, Some(status::RUN_USERMODE));
                }
            }
            Kind::IrqEntry | Kind::SoftirqEntry => {
                if let Some(tid) = current.filter(|t| *t != 0) {
                    self.set_status(trace, tid, t, Some(status::INTERRUPTED));
                }
            }
            Kind::IrqExit | Kind::SoftirqExit => {
                if let Some(tid) = current.filter(|t| *t != 0) {
                    let run = self.running_status(trace, tid);
                    self.set_status(trace, tid, t, Some(run));
                }
            }
            Kind::SchedWakeup => {
                if let Some(tid) = ev.int(0) {
                    let tid = tid as i32;
                    let cur = self
                        .status
                        .get(&(trace, tid))
                        .and_then(|h| h.latest().copied())
                        .flatten();
                    if cur != Some(status::RUN_USERMODE) && cur != Some(status::RUN_SYSCALL) {
                        self.set_status(trace, tid, t, Some(status::WAIT_FOR_CPU));
                    }
                }
            }
            Kind::SchedProcessFork => {
                if let (Some(parent), Some(child)) = (ev.int(0), ev.int(1)) {
                    self.ppid.insert((trace, child as i32), parent as i32);
                    self.set_status(trace, child as i32, t, Some(status::WAIT_FORK));
                }
            }
            Kind::SchedProcessFree => {
                if let Some(tid) = ev.int(0) {
                    self.set_status(trace, tid as i32, t, None);
                }
            }
            Kind::Statedump => {
                // tid, vtid, pid, vpid, ppid, vppid, name, status, ns_level
                if let (Some(tid), Some(ppid)) = (ev.int(0), ev.int(4)) {
                    let tid = tid as i32;
                    let pid = ev.int(2).unwrap_or(tid as i64) as i32;
                    let parent = if pid == tid { ppid as i32 } else { pid };
                    self.ppid.entry((trace, tid)).or_insert(parent);
                    let known = self
                        .status
                        .get(&(trace, tid))
                        .is_some_and(|h| h.latest().is_some_and(|v| v.is_some()));
                    if !known {
                        let s = match ev.int(7) {
                            Some(2) => status::WAIT_FOR_CPU,
                            Some(5) => status::WAIT_UNKNOWN,
                            _ => status::UNKNOWN,
                        };
                        self.set_status(trace, tid, t, Some(s));
                    }
                }
            }
            _ => {}
        }
    }

    /// Drops history no query at `t` or later needs.
    pub fn prune(&mut self, t: i64) {
        for h in self.on_cpu.values_mut() {
            h.prune(t);
        }
        for h in self.status.values_mut() {
            h.prune(t);
        }
    }

    /// Kinds the thread models need.
    pub const KINDS: [Kind; 11] = [
        Kind::SchedSwitch,
        Kind::SyscallEntry,
        Kind::SyscallExit,
        Kind::IrqEntry,
        Kind::IrqExit,
        Kind::SoftirqEntry,
        Kind::SoftirqExit,
        Kind::SchedWakeup,
        Kind::SchedProcessFork,
        Kind::SchedProcessFree,
        Kind::Statedump,
    ];
}

/// An event copied for later handling (integer fields only).
#[derive(Clone, Debug)]
pub(crate) struct HeldEvent {
    pub kind: Kind,
    pub trace: usize,
    pub timestamp: i64,
    pub cpu: Option<u32>,
    pub ints: [Option<i64>; 6],
}

impl HeldEvent {
    pub fn copy(kind: Kind, ev: &dyn EventFields) -> Self {
        let mut ints = [None; 6];
        for (i, v) in ints.iter_mut().enumerate() {
            *v = ev.int(i);
        }
        HeldEvent {
            kind,
            trace: ev.trace_index(),
            timestamp: ev.timestamp(),
            cpu: ev.cpu(),
            ints,
        }
    }
}

impl EventFields for HeldEvent {
    fn timestamp(&self) -> i64 {
        self.timestamp
    }
    fn cpu(&self) -> Option<u32> {
        self.cpu
    }
    fn int(&self, slot: usize) -> Option<i64> {
        self.ints.get(slot).copied().flatten()
    }
    fn string(&self, _slot: usize) -> Option<&str> {
        None
    }
    fn trace_index(&self) -> usize {
        self.trace
    }
}

/// How far ahead of an event the model must be built before the event is handled:
/// Trace Compass's analyses wait until the model analysis is queryable at
/// `t + 100 ms` (`VirtualEnvironmentBuilder`'s buffer).
pub(crate) const MODEL_HEADSTART_NS: i64 = 100_000_000;

#[cfg(test)]
pub(crate) mod testing {
    //! An in-memory experiment for the VM analyses' unit tests.

    use std::ops::ControlFlow;
    use std::sync::atomic::AtomicU64;

    use crate::pipeline::{
        build, Analysis, BuildOptions, BuildReport, EventSource, FieldKey, Output, SourceError,
        SourceEvent,
    };
    use crate::{StateProvider, TraceInfo};

    #[derive(Clone, Debug)]
    pub enum F {
        I(i64),
        S(&'static str),
    }

    /// (trace, time, cpu, event name, fields)
    pub type Ev = (usize, i64, u32, &'static str, Vec<(&'static str, F)>);

    pub struct MemSource {
        pub hosts: Vec<String>,
        pub events: Vec<Ev>,
        names: Vec<&'static str>,
        fields: Vec<&'static str>,
    }

    impl MemSource {
        pub fn new(hosts: &[&str], events: Vec<Ev>) -> Self {
            let mut names = Vec::new();
            let mut fields = Vec::new();
            for e in &events {
                if !names.contains(&e.3) {
                    names.push(e.3);
                }
                for (f, _) in &e.4 {
                    if !fields.contains(f) {
                        fields.push(*f);
                    }
                }
            }
            MemSource {
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
                events,
                names,
                fields,
            }
        }
    }

    struct View<'a>(&'a Ev, u32, &'a [&'static str]);

    impl View<'_> {
        fn get(&self, key: FieldKey) -> Option<&F> {
            let name = self.2.get(key as usize)?;
            self.0 .4.iter().find(|(n, _)| n == name).map(|(_, v)| v)
        }
    }

    impl SourceEvent for View<'_> {
        fn class(&self) -> u32 {
            self.1
        }
        fn timestamp(&self) -> i64 {
            self.0 .1
        }
        fn cpu(&self) -> Option<u32> {
            Some(self.0 .2)
        }
        fn int(&self, key: FieldKey) -> Option<i64> {
            match self.get(key)? {
                F::I(v) => Some(*v),
                F::S(_) => None,
            }
        }
        fn string(&self, key: FieldKey) -> Option<&str> {
            match self.get(key)? {
                F::S(s) => Some(s),
                F::I(_) => None,
            }
        }
        fn trace_index(&self) -> usize {
            self.0 .0
        }
    }

    impl EventSource for MemSource {
        fn info(&self) -> TraceInfo {
            TraceInfo {
                name: "mem".into(),
                hosts: self.hosts.clone(),
                ..Default::default()
            }
        }
        fn class_names(&self) -> Vec<String> {
            self.names.iter().map(|n| n.to_string()).collect()
        }
        fn resolve(&self, _class: u32, field: &str) -> Option<FieldKey> {
            self.fields
                .iter()
                .position(|f| *f == field)
                .map(|i| i as FieldKey)
        }
        fn run(
            &mut self,
            visit: &mut dyn FnMut(&dyn SourceEvent) -> ControlFlow<()>,
            _work: &AtomicU64,
        ) -> Result<(), SourceError> {
            for e in &self.events {
                let class = self.names.iter().position(|n| *n == e.3).unwrap() as u32;
                if visit(&View(e, class, &self.fields)).is_break() {
                    break;
                }
            }
            Ok(())
        }
    }

    pub fn run(
        provider: Box<dyn StateProvider>,
        source: &mut MemSource,
    ) -> (BuildReport, sht::StateSystem) {
        let (report, mut systems) = build(
            source,
            vec![Analysis {
                provider,
                output: Output::InMemory,
            }],
            &BuildOptions::default(),
        )
        .expect("build");
        (report, systems.remove(0))
    }

    pub fn switch(trace: usize, t: i64, cpu: u32, prev: i64, next: i64) -> Ev {
        (
            trace,
            t,
            cpu,
            "sched_switch",
            vec![
                ("prev_tid", F::I(prev)),
                ("prev_state", F::I(0)),
                ("next_tid", F::I(next)),
                ("next_prio", F::I(20)),
                ("next_comm", F::S("t")),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use sht::StateSystemQuerier;

    /// A host with kvm events and a guest trace without the vmsync events.
    fn guest_without_sync() -> MemSource {
        MemSource::new(
            &["host", "guest"],
            vec![
                switch(0, 1, 0, 0, 31),
                (0, 5, 0, "kvm_entry", vec![("vcpu_id", F::I(0))]),
                switch(1, 10, 0, 0, 131),
                (0, 45, 0, "kvm_exit", vec![("exit_reason", F::I(32))]),
                (0, 50, 0, "vmsync_gh_host", vec![("vm_uid", F::I(7))]),
                (0, 60, 0, "kvm_entry", vec![("vcpu_id", F::I(0))]),
                switch(1, 70, 0, 131, 0),
            ],
        )
    }

    #[test]
    fn a_guest_without_sync_events_is_reported_not_fatal() {
        let (report, ss) = run(
            Box::new(fused::FusedVmProvider::new()),
            &mut guest_without_sync(),
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("guest: unknown") && w.contains("vmsync_gh_guest")),
            "{:?}",
            report.warnings
        );
        // Nothing but containers is analysed: no CPU attributes.
        assert!(ss.quark(&["CPUs"]).is_err());

        let (report, ss) = run(
            Box::new(model::VmModelProvider::new()),
            &mut guest_without_sync(),
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("guest: no kvm_entry/kvm_exit nor vmsync events")),
            "{:?}",
            report.warnings
        );
        assert!(ss.quark(&["host", "Guests"]).is_ok());
        assert!(ss.quark(&["guest"]).is_err());
    }

    #[test]
    fn out_of_range_vcpu_ids_are_ignored_and_reported() {
        let events = vec![
            switch(0, 1, 0, 0, 31),
            (0, 5, 0, "kvm_entry", vec![("vcpu_id", F::I(0))]),
            (1, 40, 0, "vmsync_gh_guest", vec![("vm_uid", F::I(7))]),
            (0, 50, 0, "vmsync_gh_host", vec![("vm_uid", F::I(7))]),
            (0, 60, 0, "kvm_entry", vec![("vcpu_id", F::I(1 << 40))]),
            (0, 70, 0, "kvm_exit", vec![("exit_reason", F::I(1))]),
        ];
        let mut src = MemSource::new(&["host", "guest"], events);
        let (report, ss) = run(Box::new(model::VmModelProvider::new()), &mut src);
        assert!(ss.quark(&["host", "Guests", "guest", "Hypervisor"]).is_ok());
        assert!(ss.quark(&["host", "Guests", "guest", "CPUs"]).is_err());
        assert!(
            report.warnings.iter().any(|w| w.contains("out of range")),
            "{:?}",
            report.warnings
        );
        let mut src = MemSource::new(&["host", "guest"], src.events.clone());
        let (report, _) = run(
            Box::new(vresources::VirtualResourcesProvider::new()),
            &mut src,
        );
        assert!(report.warnings.iter().any(|w| w.contains("out of range")));
    }

    #[test]
    fn nested_reports_exits_without_entries_and_bad_vcpus() {
        let events = vec![
            switch(0, 1, 0, 0, 501),
            (
                0,
                2,
                0,
                "kvm_exit",
                vec![("exit_reason", F::I(30)), ("context._tid", F::I(501))],
            ),
            (
                0,
                3,
                0,
                "kvm_entry",
                vec![
                    ("vcpu_id", F::I(100_000)),
                    ("context._tid", F::I(501)),
                    ("context._pid", F::I(500)),
                ],
            ),
            (0, 4, 0, "kvm_entry", vec![("vcpu_id", F::I(0))]),
        ];
        let mut src = MemSource::new(&["host"], events);
        let (report, ss) = run(Box::new(nested::NestedVcpuProvider::new()), &mut src);
        let w = report.warnings.join("\n");
        assert!(
            w.contains("kvm_exit of thread 501 before any kvm_entry"),
            "{w}"
        );
        assert!(w.contains("vCPU id 100000 out of range"), "{w}");
        assert!(w.contains("without vcpu_id or pid context"), "{w}");
        assert!(w.contains("no vCPU found"), "{w}");
        assert!(ss.quark(&["VMs"]).is_err());
    }

    /// The virtual-resources analysis sees the model as it stands 100 ms after each
    /// event: a vCPU thread learnt 60 ms after a host event is attributed, one learnt
    /// 500 ms after is not. Thousands of unrelated events in between make the held
    /// events flow out and the histories be pruned.
    #[test]
    fn model_lookahead_is_one_hundred_milliseconds() {
        const MS: i64 = 1_000_000;
        let mut events = vec![
            switch(0, 1, 0, 0, 31),
            (1, 10, 0, "vmsync_gh_guest", vec![("vm_uid", F::I(7))]),
            // The QEMU process (pid 30) stands for the guest: its other threads follow.
            (
                0,
                50 * MS,
                0,
                "vmsync_gh_host",
                vec![("vm_uid", F::I(7)), ("context._pid", F::I(30))],
            ),
            (0, 60 * MS, 0, "kvm_entry", vec![("vcpu_id", F::I(0))]),
            (0, 1000 * MS, 0, "kvm_exit", vec![("exit_reason", F::I(1))]),
            (0, 1500 * MS, 0, "kvm_entry", vec![("vcpu_id", F::I(0))]),
            switch(1, 2000 * MS, 0, 0, 131),
            // Thread 32 (vCPU 1) runs on CPU 1 from 2.5 s; its first entry is at 3 s.
            switch(0, 2500 * MS, 1, 0, 32),
            (
                0,
                3000 * MS,
                1,
                "kvm_entry",
                vec![("vcpu_id", F::I(1)), ("context._pid", F::I(30))],
            ),
            switch(0, 3050 * MS, 1, 32, 0),
        ];
        // Exits of a thread that runs no vCPU (CPU 2), every 0.5 ms.
        events.push(switch(0, 2, 2, 0, 99));
        for i in 0..6000 {
            events.push((
                0,
                3 + i * MS / 2,
                2,
                "kvm_exit",
                vec![("exit_reason", F::I(1))],
            ));
        }
        events.sort_by_key(|e| e.1);
        let mut src = MemSource::new(&["host", "guest"], events);
        let (_, ss) = run(
            Box::new(vresources::VirtualResourcesProvider::new()),
            &mut src,
        );
        let history = |path: &[&str]| {
            let q = ss.quark(path).unwrap();
            let mut out = Vec::new();
            let mut t = ss.start_time();
            while t <= ss.current_end_time() {
                let i = ss.query_single(t, q).unwrap();
                out.push((i.start, i.end, i.value.clone()));
                t = i.end + 1;
            }
            out
        };
        let int = sht::StateValue::Int;
        let end = 3050 * MS;
        assert_eq!(
            history(&["Virtual Machines", "guest", "0", "Status"]),
            vec![
                (1, 1000 * MS - 1, int(0)),
                (1000 * MS, 1500 * MS - 1, int(128)),
                (1500 * MS, 2000 * MS - 1, int(0)),
                (2000 * MS, end, int(2)),
            ]
        );
        assert_eq!(
            history(&["Virtual Machines", "guest", "1", "Status"]),
            vec![
                (1, 3000 * MS - 1, sht::StateValue::Null),
                (3000 * MS, 3050 * MS - 1, int(0)),
                (3050 * MS, end, int(256)),
            ]
        );
    }

    #[test]
    fn history_keeps_changes_and_prunes() {
        let mut h = History::default();
        h.set(10, 1);
        h.set(10, 2); // same time: replaced
        h.set(20, 2); // same value: no change
        h.set(30, 3);
        h.set(30, 2); // back to the value before: the change disappears
        assert_eq!(h.at(5), None);
        assert_eq!(h.at(25), Some(&2));
        assert_eq!(h.interval_at(35), Some((10, &2, None)));
        h.set(40, 4);
        assert_eq!(h.interval_at(15), Some((10, &2, Some(40))));
        h.prune(45);
        assert_eq!(h.first_start(), Some(40));
        assert_eq!(h.at(50), Some(&4));
    }
}
