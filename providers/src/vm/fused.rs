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

use sht::{Quark, StateSystemBuilder, StateValue};

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
    cpus: IntMap<(usize, i64), CpuObject>,
    kernel: KernelModels,
    all_roles_found: bool,
    /// Names of the syscall entry classes, by handler number - SYSCALL_HANDLER_BASE.
    syscalls: Vec<String>,
    start: i64,
    started: bool,
    bad_vcpus: u64,
}

fn thread_attribute_name(tid: i32, cpu: i64) -> String {
    if tid == 0 {
        format!("0_{cpu}")
    } else {
        tid.to_string()
    }
}

fn ongoing_int(ss: &dyn StateSystemBuilder, q: Quark) -> sht::Result<Option<i32>> {
    Ok(match ss.query_ongoing(q)? {
        StateValue::Int(v) => Some(v),
        _ => None,
    })
}

fn ongoing_str(ss: &dyn StateSystemBuilder, q: Quark) -> sht::Result<Option<String>> {
    Ok(match ss.query_ongoing(q)? {
        StateValue::String(s) => Some(s.to_string()),
        _ => None,
    })
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

impl FusedVmProvider {
    pub fn new() -> Self {
        FusedVmProvider {
            hosts: Vec::new(),
            machines: Machines::default(),
            virtual_to_physical: IntMap::default(),
            cpus: IntMap::default(),
            kernel: KernelModels::default(),
            all_roles_found: false,
            syscalls: Vec::new(),
            start: 0,
            started: false,
            bad_vcpus: 0,
        }
    }

    fn cpu_object(&mut self, machine: usize, cpu: i64) -> &mut CpuObject {
        self.cpus.entry((machine, cpu)).or_default()
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

    fn all_roles_found(&mut self) -> bool {
        if self.all_roles_found {
            return true;
        }
        let mut count = 0;
        for m in 0..self.machines.list.len() {
            let machine = &self.machines.list[m];
            if machine.is_host() && !machine.is_guest() {
                count += 1 + self.count_children(m, 0);
            }
        }
        self.all_roles_found = count == self.hosts.len().max(1);
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
        let host_id = super::host_of(&self.hosts, ev);
        let Some(host) = self.machines.get(host_id) else {
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
            if !ss.query_ongoing(q)?.is_null() {
                return Ok(()); // as Trace Compass: stop at the first machine with a parent
            }
            if let Some(p) = machine.parent {
                let parent = self.machines.list[p].host_id.clone();
                ss.modify(self.start, text(&parent), q)?;
            }
        }
        Ok(())
    }

    /// `Threads/<Machine_name of cpu>/<Current_thread of cpu>`; `None` while the CPU
    /// runs no known machine.
    fn current_thread_node(
        ss: &mut dyn StateSystemBuilder,
        cpu: i64,
    ) -> sht::Result<Option<Quark>> {
        let cpu_s = cpu.to_string();
        let q = ss.quark_and_add(&["CPUs", &cpu_s, "Current_thread"])?;
        let thread = ongoing_int(ss, q)?.unwrap_or(-1);
        let q = ss.quark_and_add(&["CPUs", &cpu_s, "Machine_name"])?;
        let Some(machine) = ongoing_str(ss, q)? else {
            return Ok(None);
        };
        Ok(Some(ss.quark_and_add(&[
            "Threads",
            &machine,
            &thread_attribute_name(thread, cpu),
        ])?))
    }

    fn set_process_to_running(
        ss: &mut dyn StateSystemBuilder,
        t: i64,
        node: Quark,
    ) -> sht::Result<()> {
        let q = ss.quark_relative_and_add(node, &["System_call"])?;
        let value = if ss.query_ongoing(q)?.is_null() {
            PROC_RUN_USERMODE
        } else {
            PROC_RUN_SYSCALL
        };
        let q = ss.quark_relative_and_add(node, &["Status"])?;
        ss.modify(t, int(value), q)
    }

    fn cpu_status(ss: &mut dyn StateSystemBuilder, cpu_node: Quark) -> sht::Result<Option<i32>> {
        for sub in ["IRQs", "Soft_IRQs"] {
            let q = ss.quark_relative_and_add(cpu_node, &[sub])?;
            for child in ss.attributes().children_of(q).to_vec() {
                if let Some(v) = ongoing_int(ss, child)? {
                    return Ok(Some(v));
                }
            }
        }
        let q = ss.quark_relative_and_add(cpu_node, &["Current_thread"])?;
        let Some(tid) = ongoing_int(ss, q)? else {
            return Ok(None);
        };
        if tid == 0 {
            return Ok(Some(CPU_IDLE));
        }
        let q = ss.quark_relative_and_add(cpu_node, &["Machine_name"])?;
        let Some(machine) = ongoing_str(ss, q)? else {
            return Ok(None);
        };
        let q = ss.quark_and_add(&["Threads", &machine, &tid.to_string(), "System_call"])?;
        Ok(Some(if ss.query_ongoing(q)?.is_null() {
            CPU_RUN_USERMODE
        } else {
            CPU_RUN_SYSCALL
        }))
    }

    /// Whether the CPU's `Machine_name` is `machine` (null never is).
    fn runs_machine(ss: &mut dyn StateSystemBuilder, cpu: i64, machine: &str) -> sht::Result<bool> {
        let q = ss.quark_and_add(&["CPUs", &cpu.to_string(), "Machine_name"])?;
        Ok(ongoing_str(ss, q)?.as_deref() == Some(machine))
    }

    fn process_ns_ids(ss: &dyn StateSystemBuilder, thread: Quark) -> sht::Result<Vec<i64>> {
        let attrs = ss.attributes();
        let mut out = Vec::new();
        let max_q = attrs.opt_quark(thread, &["ns_max_level"]);
        if max_q == sht::INVALID_QUARK {
            return Ok(out);
        }
        let Some(max) = ongoing_int(ss, max_q)? else {
            return Ok(out);
        };
        let mut level = 1;
        let mut vtid = thread;
        while level < max {
            vtid = attrs.opt_quark(vtid, &["VTID"]);
            if vtid == sht::INVALID_QUARK {
                return Ok(out);
            }
            let ns = attrs.opt_quark(vtid, &["ns_inum"]);
            if ns == sht::INVALID_QUARK {
                return Ok(out);
            }
            level += 1;
            out.push(match ss.query_ongoing(ns)? {
                StateValue::Long(v) => v,
                StateValue::Int(v) => v as i64,
                _ => -1,
            });
        }
        Ok(out)
    }

    fn handle_event(
        &mut self,
        handler: u32,
        kind: Option<Kind>,
        name_kind: NameKind,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        if let Some(k) = kind {
            if KernelModels::KINDS.contains(&k) {
                self.kernel.handle(k, ev);
            }
        }
        let Some(event_cpu) = ev.cpu() else {
            return Ok(());
        };
        let mut cpu = event_cpu as i64;
        let host = if !self.all_roles_found() {
            self.current_machine_and_add(name_kind, ev)
        } else {
            self.machines.get(super::host_of(&self.hosts, ev))
        };
        let trace_host = super::host_of(&self.hosts, ev).to_string();
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
            let cpu_s = cpu.to_string();
            let cpu_node = ss.quark_and_add(&["CPUs", &cpu_s])?;
            let condition = ss.quark_relative_and_add(cpu_node, &["Condition"])?;
            let machine_q = ss.quark_and_add(&["Hosts", &trace_host])?;
            let pure_host = host.is_some_and(|h| {
                let m = &self.machines.list[h];
                m.is_host() && !m.is_guest()
            });
            if host.is_some_and(|h| self.machines.list[h].is_guest()) {
                let q = ss.quark_relative_and_add(cpu_node, &["Virtual_cpu"])?;
                ss.modify(t, int(current_vcpu as i32), q)?;
                ss.quark_relative_and_add(machine_q, &["CPUs", &current_vcpu.to_string()])?;
                ss.quark_and_add(&["Hosts", &trace_host, "pCPUs", &cpu_s])?;
            } else {
                ss.quark_and_add(&["Hosts", &trace_host, "CPUs", &cpu_s])?;
            }
            self.set_machines_roles(ss)?;
            self.set_machines_parents(ss)?;
            if pure_host {
                ss.modify(t, int(CONDITION_OUT_VM), condition)?;
            }
            let q = ss.quark_relative_and_add(cpu_node, &["Current_thread"])?;
            let thread = ongoing_int(ss, q)?.unwrap_or(-1);
            // Trace Compass creates this node whatever the thread (even "-1").
            ss.quark_and_add(&["Threads", &trace_host, &thread.to_string()])?;
            let q = ss.quark_relative_and_add(cpu_node, &["Machine_name"])?;
            if pure_host {
                ss.modify(t, text(&trace_host), q)?;
            }
        }
        let Some(kind) = kind else {
            if handler >= SYSCALL_HANDLER_BASE {
                let name = self.syscalls[(handler - SYSCALL_HANDLER_BASE) as usize].clone();
                return self.sys_entry(&name, host, event_cpu as i64, t, ss);
            }
            return Ok(());
        };
        let ecpu = event_cpu as i64;
        match kind {
            Kind::KvmEntry => self.kvm_entry(host, ecpu, t, ss),
            Kind::KvmExit => self.kvm_exit(host, ecpu, t, &trace_host, ss),
            Kind::KvmMmuGetPage | Kind::KvmNestedVmexitInject => {
                let Some(h) = self.machines.get(&trace_host) else {
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
            Kind::SchedSwitch => self.sched_switch(host, ecpu, &trace_host, ev, ss),
            Kind::IrqEntry | Kind::IrqExit => self.irq(kind, host, ecpu, ev, ss),
            Kind::SoftirqEntry | Kind::SoftirqExit | Kind::SoftirqRaise => {
                self.softirq(kind, host, ecpu, ev, ss)
            }
            Kind::SyscallEntry => Ok(()), // named syscall classes use their own handlers
            Kind::SyscallExit => self.sys_exit(host, ecpu, t, ss),
            Kind::SchedWakeup | Kind::SchedPiSetprio => {
                self.prio(kind, host, ecpu, &trace_host, ev, ss)
            }
            Kind::SchedProcessFork => self.fork(&trace_host, ev, ss),
            Kind::SchedProcessFree => {
                let Some(pcpu) = self.translate(host, ecpu) else {
                    return Ok(());
                };
                let _ = pcpu;
                let Some(tid) = ev.int(0) else { return Ok(()) };
                let q = ss.quark_and_add(&["Threads", &trace_host, &tid.to_string()])?;
                ss.remove(t, q)
            }
            Kind::Statedump => self.statedump(&trace_host, ecpu, ev, ss),
            _ => Ok(()),
        }
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
        let cpu_s = cpu.to_string();
        let cpu_node = ss.quark_and_add(&["CPUs", &cpu_s])?;
        ss.quark_relative_and_add(cpu_node, &["Current_thread"])?;
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
                let vm_id = self.machines.list[vm].host_id.clone();
                let q = ss.quark_and_add(&["Hosts", &vm_id, "CPUs", &id.to_string()])?;
                if ss.query_ongoing(q)?.is_null() {
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
        let q = ss.quark_relative_and_add(cpu_node, &["Condition"])?;
        ss.modify(t, int(CONDITION_IN_VM), q)?;
        let status_q = ss.quark_relative_and_add(cpu_node, &["Status"])?;
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
            let vm_id = self.machines.list[vm].host_id.clone();
            let q = ss.quark_and_add(&["Hosts", &vm_id, "CPUs", &vcpu.1.to_string()])?;
            if ss.query_ongoing(q)?.is_null() {
                ss.modify(t, int(thread), q)?;
            }
            (vm, vcpu)
        };
        let vm_id = self.machines.list[vm].host_id.clone();
        ss.quark_and_add(&["Hosts", &vm_id, "pCPUs", &cpu_s])?;
        let q = ss.quark_relative_and_add(cpu_node, &["Virtual_cpu"])?;
        ss.modify(t, int(vcpu.1 as i32), q)?;
        let q = ss.quark_relative_and_add(cpu_node, &["Machine_name"])?;
        ss.modify(t, text(&vm_id), q)?;
        let state = self.cpu_object(vcpu.0, vcpu.1).current_state;
        ss.modify(t, int(state), status_q)?;
        let q = ss.quark_relative_and_add(cpu_node, &["Current_thread"])?;
        let Some(current) = ongoing_int(ss, q)? else {
            return Ok(());
        };
        self.cpu_object(h, cpu).current_thread = current;
        let vthread = self.cpu_object(vcpu.0, vcpu.1).current_thread;
        ss.modify(t, int(vthread), q)
    }

    fn kvm_exit(
        &mut self,
        host: Option<usize>,
        cpu: i64,
        t: i64,
        host_id: &str,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(h) = host else { return Ok(()) };
        let cpu_node = ss.quark_and_add(&["CPUs", &cpu.to_string()])?;
        if self.machines.list[h].is_host() && self.machines.list[h].is_guest() {
            return Ok(());
        }
        let host_cpu = self.cpu_object(h, cpu).clone();
        let thread = host_cpu.current_thread;
        let Some(&vcpu) = self.machines.tid_to_vcpu.get(&(h, thread)) else {
            return Ok(());
        };
        let vcpu = if self.machines.list[h].ready_next_layer.contains(&thread) {
            let Some(next) = self.cpu_object(vcpu.0, vcpu.1).next_layer else {
                return Ok(());
            };
            next
        } else {
            vcpu
        };
        let q = ss.quark_relative_and_add(cpu_node, &["Status"])?;
        let Some(status) = ongoing_int(ss, q)? else {
            return Ok(());
        };
        self.cpu_object(vcpu.0, vcpu.1).current_state = status;
        ss.modify(t, int(host_cpu.current_state), q)?;
        let q = ss.quark_relative_and_add(cpu_node, &["Current_thread"])?;
        let Some(current) = ongoing_int(ss, q)? else {
            return Ok(());
        };
        self.cpu_object(vcpu.0, vcpu.1).current_thread = current;
        ss.modify(t, int(host_cpu.current_thread), q)?;
        let q = ss.quark_relative_and_add(cpu_node, &["Condition"])?;
        ss.modify(t, int(CONDITION_OUT_VM), q)?;
        let q = ss.quark_relative_and_add(cpu_node, &["Machine_name"])?;
        ss.modify(t, text(host_id), q)
    }

    fn sched_switch(
        &mut self,
        host: Option<usize>,
        event_cpu: i64,
        host_id: &str,
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
        let former = ss.quark_and_add(&["Threads", host_id, &thread_attribute_name(prev, cpu)])?;
        let new = ss.quark_and_add(&["Threads", host_id, &thread_attribute_name(next, cpu)])?;
        let machine_q = ss.quark_and_add(&["Hosts", host_id])?;
        let containers = ss.quark_relative_and_add(machine_q, &["Containers"])?;
        let q = ss.quark_relative_and_add(former, &["Status"])?;
        ss.modify(t, opt_int(super::status::after_switch_out(prev_state)), q)?;
        Self::set_process_to_running(ss, t, new)?;
        let q = ss.quark_relative_and_add(new, &["Exec_name"])?;
        ss.modify(t, text(next_comm), q)?;
        let q = ss.quark_relative_and_add(new, &["Prio"])?;
        ss.modify(t, int(next_prio as i32), q)?;
        ss.quark_relative_and_add(new, &["System_call"])?;
        ss.quark_relative_and_add(new, &["PPID"])?;
        let cpu_s = cpu.to_string();
        let cpu_node = ss.quark_and_add(&["CPUs", &cpu_s])?;
        let modify = Self::runs_machine(ss, cpu, host_id)?;
        let q = ss.quark_relative_and_add(cpu_node, &["Current_thread"])?;
        if modify {
            ss.modify(t, int(next), q)?;
        }
        let state = if next > 0 {
            let q = ss.quark_relative_and_add(new, &["System_call"])?;
            if ss.query_ongoing(q)?.is_null() {
                CPU_RUN_USERMODE
            } else {
                CPU_RUN_SYSCALL
            }
        } else {
            CPU_IDLE
        };
        if modify {
            let q = ss.quark_relative_and_add(cpu_node, &["Status"])?;
            ss.modify(t, int(state), q)?;
        }
        if next != 0 {
            for ns in Self::process_ns_ids(ss, new)? {
                ss.quark_relative_and_add(containers, &[&ns.to_string(), "pCPUs", &cpu_s])?;
            }
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
        let cpu_s = cpu.to_string();
        let irq_q = ss.quark_and_add(&["CPUs", &cpu_s, "IRQs", &(irq as i32).to_string()])?;
        let Some(thread) = Self::current_thread_node(ss, cpu)? else {
            return Ok(());
        };
        let status_q = ss.quark_and_add(&["CPUs", &cpu_s, "Status"])?;
        if kind == Kind::IrqEntry {
            ss.modify(t, int(cpu as i32), irq_q)?;
            let q = ss.quark_relative_and_add(thread, &["Status"])?;
            ss.modify(t, int(PROC_INTERRUPTED), q)?;
            let Some(v) = ongoing_int(ss, status_q)? else {
                return Ok(());
            };
            self.cpu_object(h, event_cpu).state_before_irq = v;
            ss.modify(t, int(CPU_IRQ), status_q)
        } else {
            ss.modify(t, StateValue::Null, irq_q)?;
            Self::set_process_to_running(ss, t, thread)?;
            let cpu_node = ss.quark_and_add(&["CPUs", &cpu_s])?;
            let v = Self::cpu_status(ss, cpu_node)?;
            ss.modify(t, opt_int(v), status_q)?;
            let before = self.cpu_object(h, event_cpu).state_before_irq;
            ss.modify(t, int(before), status_q)
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
        let cpu_s = cpu.to_string();
        let soft_q = ss.quark_and_add(&["CPUs", &cpu_s, "Soft_IRQs", &(vec as i32).to_string()])?;
        if kind == Kind::SoftirqRaise {
            let running = ongoing_int(ss, soft_q)?.is_some_and(|v| v & CPU_SOFTIRQ == CPU_SOFTIRQ);
            let v = if running {
                CPU_SOFT_IRQ_RAISED_RUNNING
            } else {
                CPU_SOFT_IRQ_RAISED
            };
            return ss.modify(t, int(v), soft_q);
        }
        let Some(h) = host else { return Ok(()) };
        let Some(thread) = Self::current_thread_node(ss, cpu)? else {
            return Ok(());
        };
        let host_id = self.machines.list[h].host_id.clone();
        let status_q = ss.quark_and_add(&["CPUs", &cpu_s, "Status"])?;
        if kind == Kind::SoftirqEntry {
            let modify = Self::runs_machine(ss, cpu, &host_id)?;
            ss.modify(t, int(CPU_SOFTIRQ), soft_q)?;
            let q = ss.quark_relative_and_add(thread, &["Status"])?;
            ss.modify(t, int(PROC_INTERRUPTED), q)?;
            let obj = self.cpu_object(h, event_cpu);
            if obj.current_state != CPU_SOFTIRQ && obj.current_state != CPU_SOFT_IRQ_RAISED {
                obj.state_before_irq = obj.current_state;
            }
            obj.current_state = CPU_SOFTIRQ;
            if modify {
                ss.modify(t, int(CPU_SOFTIRQ), status_q)?;
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
        ss.modify(t, v, soft_q)?;
        let parent = ss.attributes().parent(soft_q)?;
        for sibling in ss.attributes().children_of(parent).to_vec() {
            if !ss.query_ongoing(sibling)?.is_null() {
                return Ok(());
            }
        }
        let modify = Self::runs_machine(ss, cpu, &host_id)?;
        Self::set_process_to_running(ss, t, thread)?;
        let obj = self.cpu_object(h, event_cpu);
        let before = obj.state_before_irq;
        obj.current_state = before;
        if modify {
            ss.modify(t, int(before), status_q)?;
        }
        Ok(())
    }

    fn sys_entry(
        &mut self,
        name: &str,
        host: Option<usize>,
        event_cpu: i64,
        t: i64,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(h) = host else { return Ok(()) };
        let Some(cpu) = self.translate(host, event_cpu) else {
            return Ok(());
        };
        let Some(thread) = Self::current_thread_node(ss, cpu)? else {
            return Ok(());
        };
        let q = ss.quark_relative_and_add(thread, &["System_call"])?;
        ss.modify(t, text(name), q)?;
        let q = ss.quark_relative_and_add(thread, &["Status"])?;
        ss.modify(t, int(PROC_RUN_SYSCALL), q)?;
        let host_id = self.machines.list[h].host_id.clone();
        if Self::runs_machine(ss, cpu, &host_id)? {
            let q = ss.quark_and_add(&["CPUs", &cpu.to_string(), "Status"])?;
            ss.modify(t, int(CPU_RUN_SYSCALL), q)?;
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
        let Some(thread) = Self::current_thread_node(ss, cpu)? else {
            return Ok(());
        };
        let q = ss.quark_relative_and_add(thread, &["System_call"])?;
        ss.modify(t, StateValue::Null, q)?;
        let q = ss.quark_relative_and_add(thread, &["Status"])?;
        ss.modify(t, int(PROC_RUN_USERMODE), q)?;
        let host_id = self.machines.list[h].host_id.clone();
        if Self::runs_machine(ss, cpu, &host_id)? {
            let q = ss.quark_and_add(&["CPUs", &cpu.to_string(), "Status"])?;
            ss.modify(t, int(CPU_RUN_USERMODE), q)?;
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
        host_id: &str,
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
        let node =
            ss.quark_and_add(&["Threads", host_id, &thread_attribute_name(tid as i32, cpu)])?;
        if kind == Kind::SchedWakeup {
            let q = ss.quark_relative_and_add(node, &["Status"])?;
            let Some(status) = ongoing_int(ss, q)? else {
                return Ok(());
            };
            if status != PROC_RUN_SYSCALL && status != PROC_RUN_USERMODE {
                ss.modify(t, int(PROC_WAIT_FOR_CPU), q)?;
            }
        }
        let q = ss.quark_relative_and_add(node, &["Prio"])?;
        ss.modify(t, int(prio as i32), q)
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
                if let (true, Some(p)) = (ss.query_ongoing(q)?.is_null(), parent_ns) {
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
            if ss.query_ongoing(q)?.is_null() {
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
        if ss.query_ongoing(q)?.is_null() {
            ss.modify(t, int(ns_level as i32 + 1), q)?;
        }
        let max_level = ongoing_int(ss, q)?.unwrap_or(-1) as i64;
        let q = ss.quark_relative_and_add(thread, &["Status"])?;
        if ss.query_ongoing(q)?.is_null() {
            let s = match status {
                2 => PROC_WAIT_FOR_CPU,
                5 => PROC_WAIT_UNKNOWN,
                _ => PROC_UNKNOWN,
            };
            ss.modify(t, int(s), q)?;
        }
        let q = ss.quark_relative_and_add(thread, &["Exec_name"])?;
        if ss.query_ongoing(q)?.is_null() {
            ss.modify(t, text(name), q)?;
        }
        let ppid_attr = if ns_level != 0 { "VPPID" } else { "PPID" };
        let q = ss.quark_relative_and_add(layer, &[ppid_attr])?;
        if ss.query_ongoing(q)?.is_null() {
            let (set_vppid, set_ppid) = if vpid == vtid {
                (vppid, ppid)
            } else {
                (vpid, pid)
            };
            ss.modify(t, int(set_vppid as i32), q)?;
            if ns_level != 0 {
                let q = ss.quark_relative_and_add(thread, &["PPID"])?;
                if ss.query_ongoing(q)?.is_null() {
                    ss.modify(t, int(set_ppid as i32), q)?;
                }
            }
        }
        let q = ss.quark_relative_and_add(layer, &["ns_level"])?;
        if ss.query_ongoing(q)?.is_null() {
            ss.modify(t, int(ns_level as i32), q)?;
        }
        let q = ss.quark_relative_and_add(layer, &["ns_inum"])?;
        if ss.query_ongoing(q)?.is_null() {
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
    fn id(&self) -> &'static str {
        ID
    }
    fn version(&self) -> i32 {
        2
    }
    fn check_trace(&mut self, trace: &TraceInfo) -> Result<(), ProviderError> {
        *self = FusedVmProvider::new();
        self.hosts = host_ids(trace);
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
                self.syscalls.push(event_name.to_string());
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
