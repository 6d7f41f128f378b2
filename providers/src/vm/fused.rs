//! Fused virtual machine analysis (Trace Compass incubator
//! `FusedVirtualMachineStateProvider` and its handlers): one state system for a whole
//! experiment of a host and its guests, in which every physical CPU shows what really
//! runs on it (host thread, or guest thread inside a vCPU, at any nesting depth), with
//! the threads of every machine and their containers (PID namespaces).
//!
//! Tree: `CPUs/<pcpu>/{Status, Current_thread, Machine_name, Condition, Virtual_cpu,
//! IRQs/<irq>, Soft_IRQs/<vec>}`, `Threads/<machine>/<tid>/{Status, PPID, Exec_name,
//! Prio, System_call, ns_*, VTID/...}`, `Hosts/<machine>` (type bits) with
//! `{Machine_name, Parent, CPUs/<n>, pCPUs/<p>, Containers/<ns>/{Parent, Threads/<tid>,
//! pCPUs/<p>}}`.
//!
//! The roles of the machines are learnt during the pass (QEMU/KVM model); until every
//! trace has its role, only container events are handled.

use std::sync::Arc;

use sht::{Quark, StateSystemBuilder, StateValue};

use super::fused_attrs::{done_key, Attrs, CpuSlot, CpuSub, ThreadSlot, ThreadSub};
use super::{
    host_ids, EventFields, IntMap, KernelModels, Kind, Machines, Vcpu, GUEST, HOST, KVM_ARG,
    SW_NEXT_COMM, SW_NEXT_PRIO, SW_NEXT_TID, SW_PREV_STATE, SW_PREV_TID, SYSCALL_HANDLER_BASE,
};
use crate::{ProviderError, StateProvider, Subscription, TraceInfo};

pub const ID: &str =
    "org.eclipse.tracecompass.incubator.virtual.machine.analysis.FusedVirtualMachineAnalysis";

// CPU status codes.
const CPU_IDLE: i32 = 0;
const CPU_SOFT_IRQ_RAISED: i32 = 1;
const CPU_RUN_USERMODE: i32 = 2;
const CPU_RUN_SYSCALL: i32 = 4;
const CPU_SOFTIRQ: i32 = 8;
const CPU_SOFT_IRQ_RAISED_RUNNING: i32 = 9;
const CPU_IRQ: i32 = 16;
// Thread status codes.
const PROC_UNKNOWN: i32 = 0;
const PROC_RUN_USERMODE: i32 = 2;
const PROC_RUN_SYSCALL: i32 = 3;
const PROC_INTERRUPTED: i32 = 4;
const PROC_WAIT_FOR_CPU: i32 = 5;
const PROC_WAIT_UNKNOWN: i32 = 6;
// Condition codes.
const CONDITION_IN_VM: i32 = 0;
const CONDITION_OUT_VM: i32 = 1;

/// Handler number of events no handler reads: they still go through the
/// per-event pre-processing (machine discovery, `Condition`, `Machine_name`).
const OTHER: u32 = 999;

/// Events between two prunings of the kernel model's thread-on-CPU histories (the
/// analysis only asks them about the present).
const PRUNE_EVERY: u32 = 4096;
const PRUNE_MARGIN_NS: i64 = 1_000_000_000;

/// CPUs (and vCPUs) of a machine whose saved states are kept by index.
const SMALL_CPUS: i64 = 1024;

/// Saved state of a CPU of a machine (Trace Compass `VirtualCPU`).
#[derive(Debug, Clone)]
struct CpuObject {
    current_state: i32,
    current_thread: i32,
    state_before_irq: i32,
    next_layer: Option<Vcpu>,
}

impl Default for CpuObject {
    fn default() -> Self {
        CpuObject {
            current_state: CPU_IDLE,
            current_thread: -1,
            state_before_irq: CPU_IDLE,
            next_layer: None,
        }
    }
}

pub struct FusedVmProvider {
    hosts: Vec<String>,
    machines: Machines,
    /// (guest machine, vcpu) -> physical CPU of its last entry.
    virtual_to_physical: IntMap<Vcpu, i64>,
    /// Saved CPUs by machine, CPUs 0..SMALL_CPUS by index (looked up several times
    /// per event), others in `cpus_other`.
    cpus: Vec<Vec<CpuObject>>,
    cpus_other: IntMap<(usize, i64), CpuObject>,
    kernel: KernelModels,
    all_roles_found: bool,
    /// Names of the syscall entry classes, by handler number - SYSCALL_HANDLER_BASE.
    syscalls: Vec<Arc<str>>,
    start: i64,
    started: bool,
    bad_vcpus: u64,
    attrs: Attrs,
    /// Name id (in `attrs`) of each trace's host id, by trace index.
    trace_names: Vec<u32>,
    /// Machine of each trace, once every role is known (machines no longer change).
    trace_machines: Vec<Option<usize>>,
    /// Name id of each machine's host id.
    machine_names: Vec<u32>,
    /// The machines' roles and parents are written (done once: later calls change nothing).
    roles_written: bool,
    until_prune: u32,
    ns_buf: Vec<i64>,
}

fn thread_attribute_name(tid: i32, cpu: i64) -> String {
    if tid == 0 {
        format!("0_{cpu}")
    } else {
        tid.to_string()
    }
}

fn ongoing_int(ss: &dyn StateSystemBuilder, q: Quark) -> sht::Result<Option<i32>> {
    ss.ongoing_int(q)
}

fn int(v: i32) -> StateValue {
    StateValue::Int(v)
}

fn text(s: &str) -> StateValue {
    StateValue::String(s.into())
}

fn opt_int(v: Option<i32>) -> StateValue {
    v.map_or(StateValue::Null, StateValue::Int)
}

/// `modify` (which drops a change to the ongoing value itself, before validating it).
#[inline]
fn set(ss: &mut dyn StateSystemBuilder, t: i64, value: StateValue, q: Quark) -> sht::Result<()> {
    ss.modify(t, value, q)
}

/// `modify` of a string, allocated only when it changes.
fn set_text(ss: &mut dyn StateSystemBuilder, t: i64, s: &str, q: Quark) -> sht::Result<()> {
    if matches!(ss.query_ongoing(q), Ok(StateValue::String(v)) if &*v == s) {
        return Ok(());
    }
    ss.modify(t, text(s), q)
}

impl FusedVmProvider {
    pub fn new() -> Self {
        FusedVmProvider {
            hosts: Vec::new(),
            machines: Machines::default(),
            virtual_to_physical: IntMap::default(),
            cpus: Vec::new(),
            cpus_other: IntMap::default(),
            kernel: KernelModels::default(),
            all_roles_found: false,
            syscalls: Vec::new(),
            start: 0,
            started: false,
            bad_vcpus: 0,
            attrs: Attrs::default(),
            trace_names: Vec::new(),
            trace_machines: Vec::new(),
            machine_names: Vec::new(),
            roles_written: false,
            until_prune: PRUNE_EVERY,
            ns_buf: Vec::new(),
        }
    }

    #[inline(always)]
    fn cpu_object(&mut self, machine: usize, cpu: i64) -> &mut CpuObject {
        let i = cpu as usize;
        if (0..SMALL_CPUS).contains(&cpu)
            && self.cpus.get(machine).is_some_and(|cpus| i < cpus.len())
        {
            return &mut self.cpus[machine][i];
        }
        self.cpu_object_slow(machine, cpu)
    }

    #[cold]
    fn cpu_object_slow(&mut self, machine: usize, cpu: i64) -> &mut CpuObject {
        if !(0..SMALL_CPUS).contains(&cpu) {
            return self.cpus_other.entry((machine, cpu)).or_default();
        }
        if self.cpus.len() <= machine {
            self.cpus.resize_with(machine + 1, Vec::new);
        }
        let cpus = &mut self.cpus[machine];
        let i = cpu as usize;
        if cpus.len() <= i {
            cpus.resize_with(i + 1, CpuObject::default);
        }
        &mut cpus[i]
    }

    /// Index of the event's trace in `hosts` (as [`super::host_of`] reads it).
    fn trace_of(&self, ev: &dyn EventFields) -> usize {
        ev.trace_index().min(self.hosts.len().saturating_sub(1))
    }

    /// The machine of the event's trace.
    fn machine_of(&self, ev: &dyn EventFields) -> Option<usize> {
        if self.all_roles_found {
            return self
                .trace_machines
                .get(self.trace_of(ev))
                .copied()
                .flatten();
        }
        self.machines.get(super::host_of(&self.hosts, ev))
    }

    /// Name id of a machine's host id.
    #[inline(always)]
    fn machine_name(&mut self, m: usize) -> u32 {
        if let Some(&id) = self.machine_names.get(m) {
            return id;
        }
        self.machine_name_slow(m)
    }

    #[cold]
    fn machine_name_slow(&mut self, m: usize) -> u32 {
        while self.machine_names.len() <= m {
            let i = self.machine_names.len();
            let id = self.attrs.intern(&self.machines.list[i].host_id);
            self.machine_names.push(id);
        }
        self.machine_names[m]
    }

    /// `QemuKvmVmModel.getCurrentMachine`: learns roles from `kvm_*` and guest vmsync events.
    fn current_machine_and_add(
        &mut self,
        name_kind: NameKind,
        ev: &dyn EventFields,
    ) -> Option<usize> {
        let host_id = super::host_of(&self.hosts, ev).to_string();
        let known = self.machines.get(&host_id);
        match name_kind {
            NameKind::Kvm => {
                if let Some(m) = known {
                    self.machines.list[m].kind |= HOST;
                    return Some(m);
                }
                Some(self.machines.add(&host_id, &host_id, HOST))
            }
            NameKind::GuestSync => {
                let Some(uid) = ev.int(KVM_ARG) else {
                    return known;
                };
                let m = known.unwrap_or_else(|| self.machines.add(&host_id, &host_id, GUEST));
                let machine = &mut self.machines.list[m];
                machine.kind |= GUEST;
                machine.vm_uid = uid;
                Some(m)
            }
            NameKind::Other => known,
        }
    }

    fn physical_cpu(&self, machine: usize, cpu: i64) -> Option<i64> {
        let mut pcpu = *self.virtual_to_physical.get(&(machine, cpu))?;
        if let Some(parent) = self.machines.list[machine].parent {
            if self.machines.list[parent].is_guest() {
                pcpu = *self.virtual_to_physical.get(&(parent, pcpu))?;
            }
        }
        Some(pcpu)
    }

    #[inline(always)]
    fn all_roles_found(&mut self) -> bool {
        self.all_roles_found || self.find_all_roles()
    }

    #[cold]
    fn find_all_roles(&mut self) -> bool {
        let mut count = 0;
        for m in 0..self.machines.list.len() {
            let machine = &self.machines.list[m];
            if machine.is_host() && !machine.is_guest() {
                count += 1 + self.count_children(m, 0);
            }
        }
        self.all_roles_found = count == self.hosts.len().max(1);
        if self.all_roles_found {
            // From now on no machine is added nor changes role.
            self.trace_machines = self.hosts.iter().map(|h| self.machines.get(h)).collect();
        }
        self.all_roles_found
    }

    /// Counts the machines below `m`, setting their parent on the way.
    fn count_children(&mut self, m: usize, depth: usize) -> usize {
        if depth > 16 {
            return 0; // a cycle in bad input
        }
        let mut n = 0;
        for child in self.machines.list[m].children.clone() {
            self.machines.list[child].parent = Some(m);
            n += 1 + self.count_children(child, depth + 1);
        }
        n
    }

    /// The model part of the handling (`QemuKvmVmModel.handleEvent`).
    fn model_event(&mut self, kind: Kind, ev: &dyn EventFields) {
        if !matches!(kind, Kind::VmsyncGhHost | Kind::KvmEntry) {
            return;
        }
        let Some(host) = self.machine_of(ev) else {
            return;
        };
        let Some(cpu) = ev.cpu() else { return };
        let trace = ev.trace_index();
        let t = ev.timestamp();
        match kind {
            Kind::VmsyncGhHost => {
                let Some(tid) = self.kernel.thread_on_cpu(trace, cpu, t) else {
                    return;
                };
                if self.machines.tid_to_vm.contains_key(&(host, tid)) {
                    return;
                }
                let Some(uid) = ev.int(KVM_ARG) else { return };
                let ppid = self.kernel.ppid.get(&(trace, tid)).copied();
                for g in 0..self.machines.list.len() {
                    if self.machines.list[g].vm_uid == uid {
                        self.machines.add_child(host, g);
                        self.machines.tid_to_vm.insert((host, tid), g);
                        if let Some(ppid) = ppid {
                            self.machines.tid_to_vm.insert((host, ppid), g);
                        }
                    }
                }
            }
            Kind::KvmEntry => {
                let Some(tid) = self.kernel.thread_on_cpu(trace, cpu, t) else {
                    return;
                };
                let vcpu = match self.machines.tid_to_vcpu.get(&(host, tid)) {
                    Some(v) => Some(*v),
                    None => {
                        let vm = self
                            .machines
                            .tid_to_vm
                            .get(&(host, tid))
                            .copied()
                            .or_else(|| {
                                let ppid = *self.kernel.ppid.get(&(trace, tid))?;
                                let vm = *self.machines.tid_to_vm.get(&(host, ppid))?;
                                self.machines.tid_to_vm.insert((host, tid), vm);
                                Some(vm)
                            });
                        match (vm, ev.int(KVM_ARG)) {
                            (Some(_), Some(id)) if !(0..=super::model::MAX_VCPU).contains(&id) => {
                                self.bad_vcpus += 1;
                                None
                            }
                            (Some(vm), Some(id)) => {
                                self.machines.tid_to_vcpu.insert((host, tid), (vm, id));
                                Some((vm, id))
                            }
                            _ => None,
                        }
                    }
                };
                let vm = self.machines.tid_to_vm.get(&(host, tid)).copied();
                if let (Some(vm), Some(vcpu)) = (vm, vcpu) {
                    self.virtual_to_physical.insert((vm, vcpu.1), cpu as i64);
                }
            }
            _ => {}
        }
    }

    fn set_machines_roles(&self, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        for machine in &self.machines.list {
            let mq = ss.quark_and_add(&["Hosts", &machine.host_id])?;
            let attrs = ss.attributes();
            if attrs.opt_quark(mq, &["Machine_name"]) == sht::INVALID_QUARK {
                let q = ss.quark_relative_and_add(mq, &["Machine_name"])?;
                ss.update_ongoing(text(&machine.trace_name), q)?;
            }
            if ongoing_int(ss, mq)?.is_some() {
                continue;
            }
            ss.update_ongoing(int(machine.kind), mq)?;
        }
        Ok(())
    }

    fn set_machines_parents(&self, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        for machine in &self.machines.list {
            let q = ss.quark_and_add(&["Hosts", &machine.host_id, "Parent"])?;
            if !ss.ongoing_is_null(q)? {
                return Ok(()); // as Trace Compass: stop at the first machine with a parent
            }
            if let Some(p) = machine.parent {
                let parent = self.machines.list[p].host_id.clone();
                ss.modify(self.start, text(&parent), q)?;
            }
        }
        Ok(())
    }

    /// Name id of the CPU's `Machine_name` (`None`: null).
    fn cpu_machine(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        c: CpuSlot,
    ) -> sht::Result<Option<u32>> {
        // Made where Trace Compass makes it, by reading it.
        self.attrs.cpu_sub(ss, c, CpuSub::MachineName)?;
        Ok(self.attrs.cpu_machine(c))
    }

    /// `Threads/<Machine_name of cpu>/<Current_thread of cpu>`; `None` while the CPU
    /// runs no known machine.
    fn current_thread_node(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        cpu: i64,
    ) -> sht::Result<Option<ThreadSlot>> {
        let c = self.attrs.cpu(ss, cpu)?;
        // Made where Trace Compass makes them, by reading them.
        self.attrs.cpu_sub(ss, c, CpuSub::CurrentThread)?;
        self.attrs.cpu_sub(ss, c, CpuSub::MachineName)?;
        self.attrs.cpu_thread_slot(ss, c, cpu)
    }

    fn set_process_to_running(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        node: ThreadSlot,
    ) -> sht::Result<()> {
        let q = self.attrs.thread_sub(ss, node, ThreadSub::SystemCall)?;
        let value = if ss.ongoing_is_null(q)? {
            PROC_RUN_USERMODE
        } else {
            PROC_RUN_SYSCALL
        };
        let q = self.attrs.thread_sub(ss, node, ThreadSub::Status)?;
        ss.modify_int(t, value, q)
    }

    fn cpu_status(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        c: CpuSlot,
    ) -> sht::Result<Option<i32>> {
        for sub in [CpuSub::Irqs, CpuSub::SoftIrqs] {
            let q = self.attrs.cpu_sub(ss, c, sub)?;
            for &child in ss.attributes().children_of(q) {
                if let Some(v) = ss.ongoing_int(child)? {
                    return Ok(Some(v));
                }
            }
        }
        self.attrs.cpu_sub(ss, c, CpuSub::CurrentThread)?;
        let Some(tid) = self.attrs.cpu_thread(c) else {
            return Ok(None);
        };
        if tid == 0 {
            return Ok(Some(CPU_IDLE));
        }
        let Some(machine) = self.cpu_machine(ss, c)? else {
            return Ok(None);
        };
        let th = self.attrs.thread(ss, machine, tid as i64, None)?;
        let q = self.attrs.thread_sub(ss, th, ThreadSub::SystemCall)?;
        Ok(Some(if ss.ongoing_is_null(q)? {
            CPU_RUN_USERMODE
        } else {
            CPU_RUN_SYSCALL
        }))
    }

    /// Whether the CPU's `Machine_name` is the machine named `name` (null never is).
    fn runs_machine(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        c: CpuSlot,
        name: u32,
    ) -> sht::Result<bool> {
        Ok(self.cpu_machine(ss, c)? == Some(name))
    }

    /// The namespace ids of a thread's levels below the first, into `out`.
    fn process_ns_ids(
        ss: &dyn StateSystemBuilder,
        thread: Quark,
        max_q: Quark,
        out: &mut Vec<i64>,
    ) -> sht::Result<()> {
        out.clear();
        let attrs = ss.attributes();
        if max_q == sht::INVALID_QUARK {
            return Ok(());
        }
        let Some(max) = ongoing_int(ss, max_q)? else {
            return Ok(());
        };
        let mut level = 1;
        let mut vtid = thread;
        while level < max {
            vtid = attrs.opt_quark(vtid, &["VTID"]);
            if vtid == sht::INVALID_QUARK {
                return Ok(());
            }
            let ns = attrs.opt_quark(vtid, &["ns_inum"]);
            if ns == sht::INVALID_QUARK {
                return Ok(());
            }
            level += 1;
            out.push(match ss.query_ongoing(ns)? {
                StateValue::Long(v) => v,
                StateValue::Int(v) => v as i64,
                _ => -1,
            });
        }
        Ok(())
    }

    fn handle_event(
        &mut self,
        handler: u32,
        kind: Option<Kind>,
        name_kind: NameKind,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        // The kernel model here keeps no statuses: only these kinds change it.
        if let Some(k @ (Kind::SchedSwitch | Kind::SchedProcessFork | Kind::Statedump)) = kind {
            self.kernel.handle(k, ev);
        }
        let Some(event_cpu) = ev.cpu() else {
            return Ok(());
        };
        let mut cpu = event_cpu as i64;
        let ti = self.trace_of(ev);
        let host = if !self.all_roles_found() {
            self.current_machine_and_add(name_kind, ev)
        } else {
            self.trace_machines.get(ti).copied().flatten()
        };
        let tn = self.trace_names[ti];
        if let Some(k) = kind {
            self.model_event(k, ev);
        }
        let container_event = matches!(kind, Some(Kind::Statedump | Kind::SchedProcessFork));
        if !container_event && !self.all_roles_found() {
            return Ok(());
        }
        let mut current_vcpu = -1i64;
        if let Some(h) = host {
            if self.machines.list[h].is_guest() {
                current_vcpu = cpu;
                let Some(p) = self.physical_cpu(h, cpu) else {
                    return Ok(());
                };
                cpu = p;
            }
        }
        let t = ev.timestamp();
        if self.all_roles_found {
            let c = self.attrs.cpu(ss, cpu)?;
            let (pure_host, guest) = match host {
                Some(h) => {
                    let m = &self.machines.list[h];
                    (m.is_host() && !m.is_guest(), m.is_guest())
                }
                None => (false, false),
            };
            let key = done_key(tn, guest.then_some(current_vcpu));
            if !((pure_host || guest) && self.attrs.done_for(c, key)) {
                self.per_event_updates(ss, t, c, cpu, tn, pure_host, guest, current_vcpu)?;
            }
        }
        let Some(kind) = kind else {
            if handler >= SYSCALL_HANDLER_BASE {
                let name = self.syscalls[(handler - SYSCALL_HANDLER_BASE) as usize].clone();
                return self.sys_entry(name, host, event_cpu as i64, t, ss);
            }
            return Ok(());
        };
        let ecpu = event_cpu as i64;
        match kind {
            Kind::KvmEntry => self.kvm_entry(host, ecpu, t, ss),
            Kind::KvmExit => self.kvm_exit(host, ecpu, t, tn, ss),
            Kind::KvmMmuGetPage | Kind::KvmNestedVmexitInject => {
                let Some(h) = self.machine_of(ev) else {
                    return Ok(());
                };
                if self.machines.list[h].is_guest() {
                    return Ok(());
                }
                let thread = self.cpu_object(h, ecpu).current_thread;
                if thread == -1 {
                    return Ok(());
                }
                let m = &mut self.machines.list[h];
                if kind == Kind::KvmMmuGetPage {
                    if m.waiting_next_layer.remove(&thread) {
                        m.ready_next_layer.insert(thread);
                    }
                } else {
                    m.ready_next_layer.remove(&thread);
                }
                Ok(())
            }
            Kind::SchedSwitch => self.sched_switch(host, ecpu, tn, ev, ss),
            Kind::IrqEntry | Kind::IrqExit => self.irq(kind, host, ecpu, ev, ss),
            Kind::SoftirqEntry | Kind::SoftirqExit | Kind::SoftirqRaise => {
                self.softirq(kind, host, ecpu, ev, ss)
            }
            Kind::SyscallEntry => Ok(()), // named syscall classes use their own handlers
            Kind::SyscallExit => self.sys_exit(host, ecpu, t, ss),
            Kind::SchedWakeup | Kind::SchedPiSetprio => self.prio(kind, host, ecpu, tn, ev, ss),
            Kind::SchedProcessFork => {
                let host_id = self.attrs.name(tn).clone();
                self.fork(&host_id, ev, ss)
            }
            Kind::SchedProcessFree => {
                if self.translate(host, ecpu).is_none() {
                    return Ok(());
                }
                let Some(tid) = ev.int(0) else { return Ok(()) };
                let th = self.attrs.thread(ss, tn, tid, None)?;
                ss.remove(t, self.attrs.thread_node(th))
            }
            Kind::Statedump => {
                let host_id = self.attrs.name(tn).clone();
                self.statedump(&host_id, ecpu, ev, ss)
            }
            _ => Ok(()),
        }
    }

    /// What every event does once the roles are known: the CPU's machine and
    /// condition, and the attributes Trace Compass creates on the way.
    #[allow(clippy::too_many_arguments)]
    fn per_event_updates(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        c: CpuSlot,
        cpu: i64,
        tn: u32,
        pure_host: bool,
        guest: bool,
        current_vcpu: i64,
    ) -> sht::Result<()> {
        let condition = self.attrs.cpu_sub(ss, c, CpuSub::Condition)?;
        self.attrs.host(ss, tn)?;
        if guest {
            let q = self.attrs.cpu_sub(ss, c, CpuSub::VirtualCpu)?;
            ss.modify_int(t, current_vcpu as i32, q)?;
            self.attrs.host_cpu(ss, tn, false, current_vcpu)?;
            self.attrs.host_cpu(ss, tn, true, cpu)?;
        } else {
            self.attrs.host_cpu(ss, tn, false, cpu)?;
        }
        if !self.roles_written {
            self.set_machines_roles(ss)?;
            self.set_machines_parents(ss)?;
            self.roles_written = true;
        }
        if pure_host {
            ss.modify_int(t, CONDITION_OUT_VM, condition)?;
        }
        self.attrs.cpu_sub(ss, c, CpuSub::CurrentThread)?;
        let thread = self.attrs.cpu_thread(c).unwrap_or(-1);
        // Trace Compass creates this node whatever the thread (even "-1").
        self.attrs.thread(ss, tn, thread as i64, None)?;
        if pure_host {
            self.attrs.set_cpu_machine(ss, t, c, tn)?;
        } else {
            self.attrs.cpu_sub(ss, c, CpuSub::MachineName)?;
        }
        // Until one of the CPU's values changes, the same event would change nothing.
        let key = if pure_host || guest {
            done_key(tn, guest.then_some(current_vcpu))
        } else {
            0
        };
        self.attrs.set_done_for(c, key);
        Ok(())
    }

    /// The physical CPU of an event CPU (`None`: a guest vCPU never seen entering).
    fn translate(&self, host: Option<usize>, cpu: i64) -> Option<i64> {
        match host {
            Some(h) if self.machines.list[h].is_guest() => self.physical_cpu(h, cpu),
            _ => Some(cpu),
        }
    }

    fn kvm_entry(
        &mut self,
        host: Option<usize>,
        cpu: i64,
        t: i64,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(h) = host else { return Ok(()) };
        let c = self.attrs.cpu(ss, cpu)?;
        // It changes the CPU's values the per-event updates set.
        self.attrs.set_done_for(c, 0);
        self.attrs.cpu_sub(ss, c, CpuSub::CurrentThread)?;
        let thread = self.cpu_object(h, cpu).current_thread;
        if thread == -1 {
            return Ok(());
        }
        let (is_host, is_guest) = (
            self.machines.list[h].is_host(),
            self.machines.list[h].is_guest(),
        );
        if is_host && is_guest {
            // An L1 hypervisor entering its own guest: remember the L2 vCPU for L0.
            let next = self.machines.tid_to_vcpu.get(&(h, thread)).copied();
            self.cpu_object(h, cpu).next_layer = next;
            if let Some((vm, id)) = next {
                let vm_name = self.machine_name(vm);
                let q = self.attrs.host_cpu(ss, vm_name, false, id)?;
                if ss.ongoing_is_null(q)? {
                    ss.modify(self.start, int(thread), q)?;
                }
            }
            let Some(parent) = self.machines.list[h].parent else {
                return Ok(());
            };
            if let Some((_, parent_tid)) = self.machines.vcpu_tid((h, cpu)) {
                let p = &mut self.machines.list[parent];
                p.waiting_next_layer.insert(parent_tid);
                p.ready_next_layer.remove(&parent_tid);
            }
            return Ok(());
        }
        let q = self.attrs.cpu_sub(ss, c, CpuSub::Condition)?;
        ss.modify_int(t, CONDITION_IN_VM, q)?;
        let status_q = self.attrs.cpu_sub(ss, c, CpuSub::Status)?;
        let Some(status) = ongoing_int(ss, status_q)? else {
            return Ok(());
        };
        self.cpu_object(h, cpu).current_state = status;
        let Some(&vm) = self.machines.tid_to_vm.get(&(h, thread)) else {
            return Ok(());
        };
        let Some(&vcpu) = self.machines.tid_to_vcpu.get(&(h, thread)) else {
            return Ok(());
        };
        let (vm, vcpu) = if self.machines.list[h].ready_next_layer.contains(&thread) {
            let Some(next) = self.cpu_object(vcpu.0, vcpu.1).next_layer else {
                return Ok(());
            };
            (next.0, next)
        } else {
            let vm_name = self.machine_name(vm);
            let q = self.attrs.host_cpu(ss, vm_name, false, vcpu.1)?;
            if ss.ongoing_is_null(q)? {
                ss.modify(t, int(thread), q)?;
            }
            (vm, vcpu)
        };
        let vm_name = self.machine_name(vm);
        self.attrs.host_cpu(ss, vm_name, true, cpu)?;
        let q = self.attrs.cpu_sub(ss, c, CpuSub::VirtualCpu)?;
        ss.modify_int(t, vcpu.1 as i32, q)?;
        self.attrs.set_cpu_machine(ss, t, c, vm_name)?;
        let state = self.cpu_object(vcpu.0, vcpu.1).current_state;
        ss.modify_int(t, state, status_q)?;
        self.attrs.cpu_sub(ss, c, CpuSub::CurrentThread)?;
        let Some(current) = self.attrs.cpu_thread(c) else {
            return Ok(());
        };
        self.cpu_object(h, cpu).current_thread = current;
        let vthread = self.cpu_object(vcpu.0, vcpu.1).current_thread;
        self.attrs.set_cpu_thread(ss, t, c, vthread)
    }

    fn kvm_exit(
        &mut self,
        host: Option<usize>,
        cpu: i64,
        t: i64,
        host_name: u32,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(h) = host else { return Ok(()) };
        let c = self.attrs.cpu(ss, cpu)?;
        if self.machines.list[h].is_host() && self.machines.list[h].is_guest() {
            return Ok(());
        }
        let host_cpu = self.cpu_object(h, cpu).clone();
        let thread = host_cpu.current_thread;
        let Some(&vcpu) = self.machines.tid_to_vcpu.get(&(h, thread)) else {
            return Ok(()); // no change: the per-event updates still hold
        };
        // It changes the CPU's values the per-event updates set.
        self.attrs.set_done_for(c, 0);
        let vcpu = if self.machines.list[h].ready_next_layer.contains(&thread) {
            let Some(next) = self.cpu_object(vcpu.0, vcpu.1).next_layer else {
                return Ok(());
            };
            next
        } else {
            vcpu
        };
        let q = self.attrs.cpu_sub(ss, c, CpuSub::Status)?;
        let Some(status) = ongoing_int(ss, q)? else {
            return Ok(());
        };
        self.cpu_object(vcpu.0, vcpu.1).current_state = status;
        ss.modify_int(t, host_cpu.current_state, q)?;
        self.attrs.cpu_sub(ss, c, CpuSub::CurrentThread)?;
        let Some(current) = self.attrs.cpu_thread(c) else {
            return Ok(());
        };
        self.cpu_object(vcpu.0, vcpu.1).current_thread = current;
        self.attrs
            .set_cpu_thread(ss, t, c, host_cpu.current_thread)?;
        let q = self.attrs.cpu_sub(ss, c, CpuSub::Condition)?;
        ss.modify_int(t, CONDITION_OUT_VM, q)?;
        self.attrs.set_cpu_machine(ss, t, c, host_name)
    }

    fn sched_switch(
        &mut self,
        host: Option<usize>,
        event_cpu: i64,
        host_name: u32,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(h) = host else { return Ok(()) };
        let Some(cpu) = self.translate(host, event_cpu) else {
            return Ok(());
        };
        let (Some(prev), Some(prev_state), Some(next), Some(next_prio)) = (
            ev.int(SW_PREV_TID),
            ev.int(SW_PREV_STATE),
            ev.int(SW_NEXT_TID),
            ev.int(SW_NEXT_PRIO),
        ) else {
            return Ok(());
        };
        let Some(next_comm) = ev.string(SW_NEXT_COMM) else {
            return Ok(());
        };
        let (prev, next) = (prev as i32, next as i32);
        let t = ev.timestamp();
        let former = self.attrs.thread(ss, host_name, prev as i64, Some(cpu))?;
        let new = self.attrs.thread(ss, host_name, next as i64, Some(cpu))?;
        self.attrs.host(ss, host_name)?;
        self.attrs.containers(ss, host_name)?;
        let q = self.attrs.thread_sub(ss, former, ThreadSub::Status)?;
        set(
            ss,
            t,
            opt_int(super::status::after_switch_out(prev_state)),
            q,
        )?;
        self.set_process_to_running(ss, t, new)?;
        let q = self.attrs.thread_sub(ss, new, ThreadSub::ExecName)?;
        set_text(ss, t, next_comm, q)?;
        let q = self.attrs.thread_sub(ss, new, ThreadSub::Prio)?;
        ss.modify_int(t, next_prio as i32, q)?;
        let syscall_q = self.attrs.thread_sub(ss, new, ThreadSub::SystemCall)?;
        self.attrs.thread_sub(ss, new, ThreadSub::Ppid)?;
        let c = self.attrs.cpu(ss, cpu)?;
        // It changes the CPU's values the per-event updates set.
        self.attrs.set_done_for(c, 0);
        let modify = self.runs_machine(ss, c, host_name)?;
        self.attrs.cpu_sub(ss, c, CpuSub::CurrentThread)?;
        if modify {
            self.attrs.set_cpu_thread(ss, t, c, next)?;
        }
        let state = if next > 0 {
            if ss.ongoing_is_null(syscall_q)? {
                CPU_RUN_USERMODE
            } else {
                CPU_RUN_SYSCALL
            }
        } else {
            CPU_IDLE
        };
        if modify {
            let q = self.attrs.cpu_sub(ss, c, CpuSub::Status)?;
            ss.modify_int(t, state, q)?;
        }
        if next != 0 {
            let mut ns_ids = std::mem::take(&mut self.ns_buf);
            let max_q = self.attrs.thread_ns_max_level(ss, new);
            Self::process_ns_ids(ss, self.attrs.thread_node(new), max_q, &mut ns_ids)?;
            for &ns in &ns_ids {
                self.attrs.container_pcpu(ss, host_name, ns, cpu)?;
            }
            self.ns_buf = ns_ids;
        }
        let obj = self.cpu_object(h, event_cpu);
        obj.current_state = state;
        obj.current_thread = next;
        Ok(())
    }

    fn irq(
        &mut self,
        kind: Kind,
        host: Option<usize>,
        event_cpu: i64,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(h) = host else { return Ok(()) };
        let Some(cpu) = self.translate(host, event_cpu) else {
            return Ok(());
        };
        let Some(irq) = ev.int(0) else { return Ok(()) };
        let t = ev.timestamp();
        let c = self.attrs.cpu(ss, cpu)?;
        let irq_q = self.attrs.cpu_irq(ss, c, false, irq as i32 as i64)?;
        let Some(thread) = self.current_thread_node(ss, cpu)? else {
            return Ok(());
        };
        let status_q = self.attrs.cpu_sub(ss, c, CpuSub::Status)?;
        if kind == Kind::IrqEntry {
            ss.modify_int(t, cpu as i32, irq_q)?;
            let q = self.attrs.thread_sub(ss, thread, ThreadSub::Status)?;
            ss.modify_int(t, PROC_INTERRUPTED, q)?;
            let Some(v) = ongoing_int(ss, status_q)? else {
                return Ok(());
            };
            self.cpu_object(h, event_cpu).state_before_irq = v;
            ss.modify_int(t, CPU_IRQ, status_q)
        } else {
            set(ss, t, StateValue::Null, irq_q)?;
            self.set_process_to_running(ss, t, thread)?;
            let v = self.cpu_status(ss, c)?;
            set(ss, t, opt_int(v), status_q)?;
            let before = self.cpu_object(h, event_cpu).state_before_irq;
            ss.modify_int(t, before, status_q)
        }
    }

    fn softirq(
        &mut self,
        kind: Kind,
        host: Option<usize>,
        event_cpu: i64,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(cpu) = self.translate(host, event_cpu) else {
            return Ok(());
        };
        let Some(vec) = ev.int(0) else { return Ok(()) };
        let t = ev.timestamp();
        let c = self.attrs.cpu(ss, cpu)?;
        let soft_q = self.attrs.cpu_irq(ss, c, true, vec as i32 as i64)?;
        if kind == Kind::SoftirqRaise {
            let running = ongoing_int(ss, soft_q)?.is_some_and(|v| v & CPU_SOFTIRQ == CPU_SOFTIRQ);
            let v = if running {
                CPU_SOFT_IRQ_RAISED_RUNNING
            } else {
                CPU_SOFT_IRQ_RAISED
            };
            return ss.modify_int(t, v, soft_q);
        }
        let Some(h) = host else { return Ok(()) };
        let Some(thread) = self.current_thread_node(ss, cpu)? else {
            return Ok(());
        };
        let host_name = self.machine_name(h);
        let status_q = self.attrs.cpu_sub(ss, c, CpuSub::Status)?;
        if kind == Kind::SoftirqEntry {
            let modify = self.runs_machine(ss, c, host_name)?;
            ss.modify_int(t, CPU_SOFTIRQ, soft_q)?;
            let q = self.attrs.thread_sub(ss, thread, ThreadSub::Status)?;
            ss.modify_int(t, PROC_INTERRUPTED, q)?;
            let obj = self.cpu_object(h, event_cpu);
            if obj.current_state != CPU_SOFTIRQ && obj.current_state != CPU_SOFT_IRQ_RAISED {
                obj.state_before_irq = obj.current_state;
            }
            obj.current_state = CPU_SOFTIRQ;
            if modify {
                ss.modify_int(t, CPU_SOFTIRQ, status_q)?;
            }
            return Ok(());
        }
        let raised = ongoing_int(ss, soft_q)?
            .is_some_and(|v| v & CPU_SOFT_IRQ_RAISED == CPU_SOFT_IRQ_RAISED);
        let v = if raised {
            int(CPU_SOFT_IRQ_RAISED)
        } else {
            StateValue::Null
        };
        set(ss, t, v, soft_q)?;
        let parent = self.attrs.cpu_sub(ss, c, CpuSub::SoftIrqs)?;
        for &sibling in ss.attributes().children_of(parent) {
            if !ss.ongoing_is_null(sibling)? {
                return Ok(());
            }
        }
        let modify = self.runs_machine(ss, c, host_name)?;
        self.set_process_to_running(ss, t, thread)?;
        let obj = self.cpu_object(h, event_cpu);
        let before = obj.state_before_irq;
        obj.current_state = before;
        if modify {
            ss.modify_int(t, before, status_q)?;
        }
        Ok(())
    }

    fn sys_entry(
        &mut self,
        name: Arc<str>,
        host: Option<usize>,
        event_cpu: i64,
        t: i64,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(h) = host else { return Ok(()) };
        let Some(cpu) = self.translate(host, event_cpu) else {
            return Ok(());
        };
        let Some(thread) = self.current_thread_node(ss, cpu)? else {
            return Ok(());
        };
        let q = self.attrs.thread_sub(ss, thread, ThreadSub::SystemCall)?;
        set(ss, t, StateValue::String(name), q)?;
        let q = self.attrs.thread_sub(ss, thread, ThreadSub::Status)?;
        ss.modify_int(t, PROC_RUN_SYSCALL, q)?;
        let host_name = self.machine_name(h);
        let c = self.attrs.cpu(ss, cpu)?;
        if self.runs_machine(ss, c, host_name)? {
            let q = self.attrs.cpu_sub(ss, c, CpuSub::Status)?;
            ss.modify_int(t, CPU_RUN_SYSCALL, q)?;
        }
        self.cpu_object(h, event_cpu).current_state = CPU_RUN_SYSCALL;
        Ok(())
    }

    fn sys_exit(
        &mut self,
        host: Option<usize>,
        event_cpu: i64,
        t: i64,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(h) = host else { return Ok(()) };
        let Some(cpu) = self.translate(host, event_cpu) else {
            return Ok(());
        };
        let Some(thread) = self.current_thread_node(ss, cpu)? else {
            return Ok(());
        };
        let q = self.attrs.thread_sub(ss, thread, ThreadSub::SystemCall)?;
        set(ss, t, StateValue::Null, q)?;
        let q = self.attrs.thread_sub(ss, thread, ThreadSub::Status)?;
        ss.modify_int(t, PROC_RUN_USERMODE, q)?;
        let host_name = self.machine_name(h);
        let c = self.attrs.cpu(ss, cpu)?;
        if self.runs_machine(ss, c, host_name)? {
            let q = self.attrs.cpu_sub(ss, c, CpuSub::Status)?;
            ss.modify_int(t, CPU_RUN_USERMODE, q)?;
        }
        self.cpu_object(h, event_cpu).current_state = CPU_RUN_USERMODE;
        Ok(())
    }

    /// sched_wakeup* (status and prio) and sched_pi_setprio (prio).
    fn prio(
        &mut self,
        kind: Kind,
        host: Option<usize>,
        event_cpu: i64,
        host_name: u32,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(cpu) = self.translate(host, event_cpu) else {
            return Ok(());
        };
        let (Some(tid), Some(prio)) = (ev.int(0), ev.int(1)) else {
            return Ok(());
        };
        let t = ev.timestamp();
        let node = self
            .attrs
            .thread(ss, host_name, tid as i32 as i64, Some(cpu))?;
        if kind == Kind::SchedWakeup {
            let q = self.attrs.thread_sub(ss, node, ThreadSub::Status)?;
            let Some(status) = ongoing_int(ss, q)? else {
                return Ok(());
            };
            if status != PROC_RUN_SYSCALL && status != PROC_RUN_USERMODE {
                ss.modify_int(t, PROC_WAIT_FOR_CPU, q)?;
            }
        }
        let q = self.attrs.thread_sub(ss, node, ThreadSub::Prio)?;
        ss.modify_int(t, prio as i32, q)
    }

    fn fork(
        &mut self,
        host_id: &str,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let (Some(parent_tid), Some(child_tid)) = (ev.int(0), ev.int(1)) else {
            return Ok(());
        };
        let (parent_tid, child_tid) = (parent_tid as i32, child_tid as i32);
        let child_comm = ev.string(2).unwrap_or("").to_string();
        let vtids: Vec<i64> = match ev.string(3) {
            Some(s) => s
                .split(|c: char| c == ',' || c.is_whitespace() || c == '[' || c == ']')
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.parse().ok())
                .collect(),
            None => ev.int(3).into_iter().collect(),
        };
        let child_ns = ev.int(4);
        if let Some(ns) = child_ns {
            ss.quark_and_add(&["Hosts", host_id, "Containers", &ns.to_string()])?;
        }
        let child_ns = child_ns.unwrap_or(-1);
        let parent_ns = ev.int(5);
        let t = ev.timestamp();
        let mut parent_node = ss.quark_and_add(&["Threads", host_id, &parent_tid.to_string()])?;
        let mut child_node = ss.quark_and_add(&["Threads", host_id, &child_tid.to_string()])?;
        let q = ss.quark_relative_and_add(child_node, &["PPID"])?;
        ss.modify(t, int(parent_tid), q)?;
        let q = ss.quark_relative_and_add(child_node, &["Exec_name"])?;
        ss.modify(t, text(&child_comm), q)?;
        let q = ss.quark_relative_and_add(child_node, &["Status"])?;
        ss.modify(t, int(PROC_WAIT_FOR_CPU), q)?;
        let q = ss.quark_relative_and_add(parent_node, &["System_call"])?;
        let syscall = ss.query_ongoing(q)?;
        if !syscall.is_null() {
            let q = ss.quark_relative_and_add(child_node, &["System_call"])?;
            ss.modify(t, syscall, q)?;
        }
        let max_level = vtids.len() as i32;
        let q = ss.quark_relative_and_add(child_node, &["ns_max_level"])?;
        ss.modify(t, int(max_level), q)?;
        let mut level = 0i32;
        for &vtid in &vtids {
            if vtid == child_tid as i64 {
                let q = ss.quark_relative_and_add(child_node, &["ns_level"])?;
                ss.modify(t, int(level), q)?;
                let pq = ss.attributes().opt_quark(parent_node, &["ns_inum"]);
                if pq == sht::INVALID_QUARK {
                    continue;
                }
                let ns = ss.query_ongoing(pq)?;
                let q = ss.quark_relative_and_add(child_node, &["ns_inum"])?;
                ss.modify(t, ns.clone(), q)?;
                if let StateValue::Long(ns) = ns {
                    let q = ss.quark_and_add(&[
                        "Hosts",
                        host_id,
                        "Containers",
                        &ns.to_string(),
                        "Threads",
                        &child_tid.to_string(),
                    ])?;
                    ss.modify(t, int(vtid as i32), q)?;
                }
                continue;
            }
            level += 1;
            if level != max_level - 1 || Some(child_ns) == parent_ns {
                child_node = ss.quark_relative_and_add(child_node, &["VTID"])?;
                ss.modify(t, int(vtid as i32), child_node)?;
                parent_node = ss.quark_relative_and_add(parent_node, &["VTID"])?;
                let parent_vtid = ss.query_ongoing(parent_node)?;
                let q = ss.quark_relative_and_add(child_node, &["VPPID"])?;
                ss.modify(t, parent_vtid, q)?;
                let pq = ss.attributes().opt_quark(parent_node, &["ns_inum"]);
                if pq == sht::INVALID_QUARK {
                    let mut value = StateValue::Null;
                    if level == max_level - 1 {
                        value = StateValue::Long(child_ns);
                        let q = ss.quark_and_add(&[
                            "Hosts",
                            host_id,
                            "Containers",
                            &child_ns.to_string(),
                            "Threads",
                            &child_tid.to_string(),
                        ])?;
                        ss.modify(t, int(vtid as i32), q)?;
                    }
                    let q = ss.quark_relative_and_add(child_node, &["ns_inum"])?;
                    ss.modify(t, value, q)?;
                } else {
                    let value = ss.query_ongoing(pq)?;
                    let q = ss.quark_relative_and_add(child_node, &["ns_inum"])?;
                    ss.modify(t, value.clone(), q)?;
                    if let StateValue::Long(ns) = value {
                        let q = ss.quark_and_add(&[
                            "Hosts",
                            host_id,
                            "Containers",
                            &ns.to_string(),
                            "Threads",
                            &child_tid.to_string(),
                        ])?;
                        ss.modify(t, int(vtid as i32), q)?;
                    }
                }
            } else {
                // Last level, in a new namespace.
                child_node = ss.quark_relative_and_add(child_node, &["VTID"])?;
                ss.modify(t, int(vtid as i32), child_node)?;
                let q = ss.quark_relative_and_add(child_node, &["VPPID"])?;
                ss.modify(t, int(0), q)?;
                let q = ss.quark_relative_and_add(child_node, &["ns_inum"])?;
                ss.modify(t, StateValue::Long(child_ns), q)?;
                let container =
                    ss.quark_and_add(&["Hosts", host_id, "Containers", &child_ns.to_string()])?;
                let q =
                    ss.quark_relative_and_add(container, &["Threads", &child_tid.to_string()])?;
                ss.modify(t, int(vtid as i32), q)?;
                let q = ss.quark_relative_and_add(container, &["Parent"])?;
                if let (true, Some(p)) = (ss.ongoing_is_null(q)?, parent_ns) {
                    ss.modify(self.start, StateValue::Long(p), q)?;
                }
            }
            let q = ss.quark_relative_and_add(child_node, &["ns_level"])?;
            ss.modify(t, int(level), q)?;
        }
        Ok(())
    }

    fn statedump(
        &mut self,
        host_id: &str,
        cpu: i64,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        // tid, vtid, pid, vpid, ppid, vppid, name, status, ns_level, ns_inum
        let (Some(tid), Some(vtid), Some(ns_level)) = (ev.int(0), ev.int(1), ev.int(8)) else {
            return Ok(());
        };
        let t = ev.timestamp();
        let thread =
            ss.quark_and_add(&["Threads", host_id, &thread_attribute_name(tid as i32, cpu)])?;
        let mut layer = thread;
        for i in 0..ns_level.max(0) {
            layer = ss.quark_relative_and_add(layer, &["VTID"])?;
            if i + 1 == ns_level {
                ss.modify(t, int(vtid as i32), layer)?;
            }
            ss.quark_relative_and_add(layer, &["VPPID"])?;
            let q = ss.quark_relative_and_add(layer, &["ns_level"])?;
            if ss.ongoing_is_null(q)? {
                ss.modify(t, int(i as i32 + 1), q)?;
            }
        }
        let (
            Some(pid),
            Some(ppid),
            Some(status),
            Some(name),
            Some(vpid),
            Some(vppid),
            Some(ns_inum),
        ) = (
            ev.int(2),
            ev.int(4),
            ev.int(7),
            ev.string(6),
            ev.int(3),
            ev.int(5),
            ev.int(9),
        )
        else {
            return Ok(());
        };
        let q = ss.quark_relative_and_add(thread, &["ns_max_level"])?;
        if ss.ongoing_is_null(q)? {
            ss.modify(t, int(ns_level as i32 + 1), q)?;
        }
        let max_level = ongoing_int(ss, q)?.unwrap_or(-1) as i64;
        let q = ss.quark_relative_and_add(thread, &["Status"])?;
        if ss.ongoing_is_null(q)? {
            let s = match status {
                2 => PROC_WAIT_FOR_CPU,
                5 => PROC_WAIT_UNKNOWN,
                _ => PROC_UNKNOWN,
            };
            ss.modify(t, int(s), q)?;
        }
        let q = ss.quark_relative_and_add(thread, &["Exec_name"])?;
        if ss.ongoing_is_null(q)? {
            ss.modify(t, text(name), q)?;
        }
        let ppid_attr = if ns_level != 0 { "VPPID" } else { "PPID" };
        let q = ss.quark_relative_and_add(layer, &[ppid_attr])?;
        if ss.ongoing_is_null(q)? {
            let (set_vppid, set_ppid) = if vpid == vtid {
                (vppid, ppid)
            } else {
                (vpid, pid)
            };
            ss.modify(t, int(set_vppid as i32), q)?;
            if ns_level != 0 {
                let q = ss.quark_relative_and_add(thread, &["PPID"])?;
                if ss.ongoing_is_null(q)? {
                    ss.modify(t, int(set_ppid as i32), q)?;
                }
            }
        }
        let q = ss.quark_relative_and_add(layer, &["ns_level"])?;
        if ss.ongoing_is_null(q)? {
            ss.modify(t, int(ns_level as i32), q)?;
        }
        let q = ss.quark_relative_and_add(layer, &["ns_inum"])?;
        if ss.ongoing_is_null(q)? {
            ss.modify(t, StateValue::Long(ns_inum), q)?;
        }
        let q = ss.quark_and_add(&[
            "Hosts",
            host_id,
            "Containers",
            &ns_inum.to_string(),
            "Threads",
            &tid.to_string(),
        ])?;
        ss.modify(t, int(vtid as i32), q)?;
        if ns_level != max_level - 1 {
            let q = ss.quark_relative_and_add(layer, &["VTID", "ns_inum"])?;
            let child_ns = match ss.query_ongoing(q)? {
                StateValue::Long(v) => v,
                StateValue::Int(v) => v as i64,
                _ => -1,
            };
            if child_ns > 0 {
                let q = ss.quark_and_add(&[
                    "Hosts",
                    host_id,
                    "Containers",
                    &child_ns.to_string(),
                    "Parent",
                ])?;
                ss.modify(self.start, StateValue::Long(ns_inum), q)?;
            }
        }
        if ns_level == 0 {
            let q = ss.quark_and_add(&[
                "Hosts",
                host_id,
                "Containers",
                &ns_inum.to_string(),
                "Parent",
            ])?;
            ss.modify(self.start, StateValue::Long(-1), q)?;
        }
        Ok(())
    }
}

/// What an event name says of its machine's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NameKind {
    /// `kvm_*`: only hosts have these.
    Kvm,
    /// `vmsync_gh_guest` / `vmsync_hg_guest`: guests.
    GuestSync,
    Other,
}

impl Default for FusedVmProvider {
    fn default() -> Self {
        Self::new()
    }
}

/// Handler numbers: `Kind as u32`, syscall entries from [`SYSCALL_HANDLER_BASE`], and
/// `OTHER` (+ 1 for `kvm_*` names with no handler).
const KVM_OTHER: u32 = OTHER + 1;

impl StateProvider for FusedVmProvider {
    fn experiment_analysis(&self) -> bool {
        true
    }
    fn id(&self) -> &'static str {
        ID
    }
    fn version(&self) -> i32 {
        2
    }
    fn check_trace(&mut self, trace: &TraceInfo) -> Result<(), ProviderError> {
        *self = FusedVmProvider::new();
        self.hosts = host_ids(trace);
        self.trace_names = self.hosts.iter().map(|h| self.attrs.intern(h)).collect();
        // A single-trace experiment is a host.
        if self.hosts.len() == 1 {
            let h = self.hosts[0].clone();
            self.machines.add(&h, &h, HOST);
        }
        Ok(())
    }
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        // Every event goes through the pre-processing, so every class is subscribed.
        match Kind::of(event_name) {
            Some(Kind::SyscallEntry) => {
                self.syscalls.push(Arc::from(event_name));
                Some(Subscription {
                    handler: SYSCALL_HANDLER_BASE + self.syscalls.len() as u32 - 1,
                    fields: vec![],
                })
            }
            Some(kind) => Some(Subscription {
                handler: kind as u32,
                fields: kind.fields(),
            }),
            None if event_name.starts_with("kvm_") => Some(Subscription {
                handler: KVM_OTHER,
                fields: vec![],
            }),
            None => Some(Subscription {
                handler: OTHER,
                fields: vec![],
            }),
        }
    }
    fn handle(
        &mut self,
        handler: u32,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        if !self.started {
            self.started = true;
            self.start = ss.start_time();
        }
        self.until_prune -= 1;
        if self.until_prune == 0 {
            self.until_prune = PRUNE_EVERY;
            // Queries are at the present; the margin covers events slightly out of order.
            self.kernel
                .prune(ev.timestamp().saturating_sub(PRUNE_MARGIN_NS));
        }
        let kind = Kind::from_handler(handler);
        let name_kind = match (handler, kind) {
            (KVM_OTHER, _) => NameKind::Kvm,
            (
                _,
                Some(
                    Kind::KvmEntry
                    | Kind::KvmExit
                    | Kind::KvmMmuGetPage
                    | Kind::KvmNestedVmexitInject
                    | Kind::InjVirq,
                ),
            ) => NameKind::Kvm,
            (_, Some(Kind::VmsyncGhGuest | Kind::VmsyncHgGuest)) => NameKind::GuestSync,
            _ => NameKind::Other,
        };
        let kind = if handler >= SYSCALL_HANDLER_BASE {
            None
        } else {
            kind
        };
        self.handle_event(handler, kind, name_kind, ev, ss)
    }
    fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.all_roles_found {
            let roles: Vec<String> = self
                .hosts
                .iter()
                .map(|h| match self.machines.get(h) {
                    None => format!("{h}: unknown"),
                    Some(m) => {
                        let m = &self.machines.list[m];
                        let role = match (m.is_host(), m.is_guest()) {
                            (true, true) => "host and guest",
                            (true, false) => "host",
                            (false, true) => "guest",
                            _ => "unknown",
                        };
                        format!("{h}: {role}")
                    }
                })
                .collect();
            out.push(format!(
                "the role of every machine was never found ({}): only container events were analysed; guests need the vmsync_gh_guest/vmsync_hg_guest events, hosts the kvm_* and vmsync_gh_host events",
                roles.join(", ")
            ));
        }
        if self.bad_vcpus > 0 {
            out.push(format!(
                "{} kvm entries with a vCPU id out of range were ignored",
                self.bad_vcpus
            ));
        }
        out
    }
}
