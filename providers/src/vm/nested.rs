//! Host-only vCPU analysis with nested virtualization (Hani Nemati's "virtFlow",
//! spec `providers.md` §1.7): only the host (L0) is traced; each vCPU's state comes
//! from its QEMU thread (scheduling) and KVM transitions, the guest process from the
//! page-table base (CR3) read at VM entry, the guest thread from the kernel stack
//! pointer (SP), and nesting from the VMLAUNCH (20) / VMRESUME (24) exits.
//!
//! Host events needed (LTTng kernel tracer, contexts `pid` and `tid` added):
//! `kvm_entry` / `kvm_x86_entry` (`vcpu_id`), `kvm_exit` / `kvm_x86_exit`
//! (`exit_reason`), `sched_switch`, `kvm_inj_virq` / `kvm_x86_inj_virq` (`irq`),
//! `kvm_apic_accept_irq` (`vec`, optional: learns the disk and network vectors) and the
//! lttng-modules addon probe `addons_vcpu_enter_guest` (`vcpuID`, `cr3tmp`, `sptmp`;
//! without it, no processes, threads or CR3-based nesting).
//!
//! Tree, per VM (the QEMU process id, `context._pid` of its vCPU threads):
//! ```text
//! VMs/<pid>/vCPU/<n>/Status      int (codes below)     .../LastExit int, .../internal int (last injected vector)
//! VMs/<pid>/vCPU/<n>/Process     string: current guest CR3 (decimal)
//! VMs/<pid>/Process/<cr3>        int: small id of the guest process (1, 2, ...)
//! VMs/<pid>/Process/<cr3>/Status int; .../vCPU int (last vCPU); .../exit long (last exit reason)
//! VMs/<pid>/Process/<cr3>/Threads/<sp id>/Status int
//! VMs/<pid>/Nested/<L1 cr3>      int: small id of the nested hypervisor (L1 process doing VMLAUNCH/VMRESUME)
//! VMs/<pid>/Nested/<L1 cr3>/vCPU/<n>/Status int (n: the L1 vCPU running it)
//! VMs/<pid>/Nested/<L1 cr3>/Process/<L2 cr3>/Status int
//! VMs/<pid>/Wait/{Timer,Task,Disk,Net,Unknown} long: cumulated wait time (ns)
//! VMs/<pid>/irq/{disk,net}       int: vectors learnt from kvm_apic_accept_irq
//! ```
//!
//! Rules (the spec's intended semantics; where it leaves a choice, the choice is said):
//! - `kvm_exit`: vCPU `Status` = 1 (root), `LastExit` = reason; the current process
//!   (and thread) = 1, its `exit` = reason. Exit 20/24 while running L1 code: the
//!   current CR3 X is a nested hypervisor (`Nested/<X>`), its vCPU = 1. An exit while
//!   running L2: the nested vCPU and the L2 process = 1 (in L0).
//! - `addons_vcpu_enter_guest` (just before an entry) gives the CR3 and SP the entry runs.
//! - `kvm_entry`: after a 20/24 exit, or when the entry's CR3 is an L2 process of the
//!   vCPU's nested hypervisor, the vCPU runs L2: vCPU = 15, nested vCPU = 15, L2 process
//!   = 15. Otherwise L1 code: vCPU = 2, process (and thread) = 2; with a nested
//!   hypervisor on that vCPU, the nested vCPU = 2 ("in the L1 hypervisor") when the CR3 is
//!   X, else 4 (preempted in L1: L1 runs another process).
//! - CR3 change at entry: the previous process (and its thread) = 11 (wait); SP change
//!   in the same CR3: the previous thread = 19 (preempted by another guest thread).
//! - `sched_switch` out of a vCPU thread: after an HLT exit (12) the vCPU *waits*, else it
//!   is *preempted*: 17 if the next thread is a vCPU of another VM, else 16; the current
//!   process/thread take that value (11 for a wait); an active nested vCPU = 3 (preempted
//!   in L0), or 7 on a wait. Switching back in: vCPU = 1 (nested vCPU = 1) until the entry.
//! - A wait is classified by the first `kvm_inj_virq` after it, or as a timer wait at the
//!   next switch-out: vectors 238/239 → 7 (timer), 251–253 → 6 (task, IPI), the VM's
//!   disk vector → 8, net vector → 9, others → 11; the whole wait interval gets that
//!   value (its `Status` writes are held until then) and `Wait/<reason>` += its length.
//!   `internal` = the injected vector.

use std::collections::{HashMap, HashSet, VecDeque};

use sht::{StateSystemBuilder, StateValue};

use super::{subscribe_kinds, EventFields, Kind, SW_NEXT_TID, SW_PREV_TID};
use crate::{ProviderError, StateProvider, Subscription, TraceInfo};

pub const ID: &str = "org.eclipse.tracecompass.incubator.virtual.machine.analysis.VMblockAnalysis";

/// vCPU state codes (`VCPU_STATUS_*`).
pub mod codes {
    pub const UNKNOWN: i32 = 0;
    pub const RUNNING_ROOT: i32 = 1;
    pub const RUNNING_NON_ROOT: i32 = 2;
    pub const PREEMPTED_L0: i32 = 3;
    pub const PREEMPTED_L1: i32 = 4;
    pub const PREEMPTED_L2: i32 = 5;
    pub const WAIT_TASK: i32 = 6;
    pub const WAIT_TIMER: i32 = 7;
    pub const WAIT_DISK: i32 = 8;
    pub const WAIT_NET: i32 = 9;
    pub const BLOCKED: i32 = 10;
    pub const WAIT: i32 = 11;
    pub const RUNNING_NON_ROOT_L2: i32 = 15;
    pub const PREEMPTED_BY_HOST: i32 = 16;
    pub const PREEMPTED_BY_VM: i32 = 17;
    pub const PREEMPTED_BY_PROCESS: i32 = 18;
    pub const PREEMPTED_BY_THREAD: i32 = 19;
}
use codes::*;

const EXIT_HLT: i64 = 12;
const EXIT_VMLAUNCH: i64 = 20;
const EXIT_VMRESUME: i64 = 24;

// Handler numbers of the events this analysis alone reads.
const H_APIC_ACCEPT_IRQ: u32 = 900;

/// A wait not yet classified: its start, end (switch-in), and the held `Status` writes.
#[derive(Debug, Default)]
struct PendingWait {
    start: i64,
    end: Option<i64>,
    held: VecDeque<(i64, i32)>,
}

#[derive(Debug, Default)]
struct VcpuState {
    pid: i64,
    vcpu: i64,
    last_exit: Option<i64>,
    /// CR3 and SP of the running guest code (from the last entry probe).
    cr3: Option<u64>,
    sp: Option<String>,
    /// CR3 and SP announced by the entry probe, applied at the entry.
    next_cr3: Option<u64>,
    next_sp: Option<String>,
    /// Nested hypervisor (its CR3) that ran on this vCPU, and whether L2 runs now.
    nested: Option<u64>,
    in_l2: bool,
    l2_cr3: Option<u64>,
    wait: Option<PendingWait>,
}

#[derive(Debug, Default)]
struct Vm {
    process_ids: HashMap<u64, i32>,
    nested_ids: HashMap<u64, i32>,
    /// L2 processes seen under each nested hypervisor.
    l2: HashMap<u64, HashSet<u64>>,
    disk_vector: Option<i64>,
    net_vector: Option<i64>,
}

#[derive(Default)]
pub struct NestedVcpuProvider {
    /// Host TID -> vCPU state.
    vcpus: HashMap<i64, VcpuState>,
    vms: HashMap<i64, Vm>,
    /// (cpu) -> running host TID, and TID -> command name.
    on_cpu: HashMap<u32, i64>,
    comm: HashMap<i64, String>,
    /// Entry probe of a thread not yet known as a vCPU: (CR3, SP id).
    first_probe: HashMap<i64, (Option<u64>, Option<String>)>,
    /// Diagnostics for the user (bad input).
    warnings: Vec<String>,
    probes_seen: bool,
}

fn sp_id(sp: i64) -> String {
    // Hex digits 1..=11 of the 64-bit SP: the stack of one thread.
    let hex = format!("{:016x}", sp as u64);
    hex[1..12].to_string()
}

impl NestedVcpuProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// What went wrong with the input, for the user.
    pub fn diagnostics(&self) -> &[String] {
        &self.warnings
    }

    fn warn(&mut self, msg: String) {
        if self.warnings.len() < 100 {
            self.warnings.push(msg);
        }
    }

    fn vcpu_path(v: &VcpuState) -> [String; 4] {
        [
            "VMs".into(),
            v.pid.to_string(),
            "vCPU".into(),
            v.vcpu.to_string(),
        ]
    }

    /// Writes the vCPU `Status`, or holds the write while a wait is unclassified.
    fn vcpu_status(
        ss: &mut dyn StateSystemBuilder,
        v: &mut VcpuState,
        t: i64,
        code: i32,
    ) -> sht::Result<()> {
        if let Some(w) = v.wait.as_mut() {
            w.held.push_back((t, code));
            return Ok(());
        }
        let p = Self::vcpu_path(v);
        let q = ss.quark_and_add(&[&p[0], &p[1], &p[2], &p[3], "Status"])?;
        ss.modify(t, StateValue::Int(code), q)
    }

    /// Classifies the pending wait of `v` as `code` and writes what was held.
    fn resolve_wait(
        ss: &mut dyn StateSystemBuilder,
        v: &mut VcpuState,
        t: i64,
        code: i32,
    ) -> sht::Result<()> {
        let Some(w) = v.wait.take() else {
            return Ok(());
        };
        let p = Self::vcpu_path(v);
        let q = ss.quark_and_add(&[&p[0], &p[1], &p[2], &p[3], "Status"])?;
        ss.modify(w.start, StateValue::Int(code), q)?;
        for (ht, hc) in w.held {
            ss.modify(ht, StateValue::Int(hc), q)?;
        }
        let reason = match code {
            WAIT_TIMER => "Timer",
            WAIT_TASK => "Task",
            WAIT_DISK => "Disk",
            WAIT_NET => "Net",
            _ => "Unknown",
        };
        let end = w.end.unwrap_or(t);
        let q = ss.quark_and_add(&["VMs", &v.pid.to_string(), "Wait", reason])?;
        ss.increment(t, StateValue::Long(end - w.start), q)
    }

    /// Status of the current process (and thread) of `v`, if the probe told them.
    fn process_status(
        ss: &mut dyn StateSystemBuilder,
        v: &VcpuState,
        t: i64,
        code: i32,
    ) -> sht::Result<()> {
        let pid = v.pid.to_string();
        if v.in_l2 {
            if let (Some(x), Some(l2)) = (v.nested, v.l2_cr3) {
                let q = ss.quark_and_add(&[
                    "VMs",
                    &pid,
                    "Nested",
                    &x.to_string(),
                    "Process",
                    &l2.to_string(),
                    "Status",
                ])?;
                ss.modify(t, StateValue::Int(code), q)?;
            }
            return Ok(());
        }
        let Some(cr3) = v.cr3 else { return Ok(()) };
        let cr3 = cr3.to_string();
        let q = ss.quark_and_add(&["VMs", &pid, "Process", &cr3, "Status"])?;
        ss.modify(t, StateValue::Int(code), q)?;
        if let Some(sp) = &v.sp {
            let q = ss.quark_and_add(&["VMs", &pid, "Process", &cr3, "Threads", sp, "Status"])?;
            ss.modify(t, StateValue::Int(code), q)?;
        }
        Ok(())
    }

    fn nested_status(
        ss: &mut dyn StateSystemBuilder,
        v: &VcpuState,
        t: i64,
        code: i32,
    ) -> sht::Result<()> {
        let Some(x) = v.nested else { return Ok(()) };
        let q = ss.quark_and_add(&[
            "VMs",
            &v.pid.to_string(),
            "Nested",
            &x.to_string(),
            "vCPU",
            &v.vcpu.to_string(),
            "Status",
        ])?;
        ss.modify(t, StateValue::Int(code), q)
    }

    fn current_tid(&self, ev: &dyn EventFields, tid_slot: usize) -> Option<i64> {
        ev.int(tid_slot)
            .or_else(|| ev.cpu().and_then(|c| self.on_cpu.get(&c).copied()))
    }

    fn kvm_entry(
        &mut self,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = ev.timestamp();
        let Some(tid) = self.current_tid(ev, 1) else {
            self.warn(format!(
                "{t}: kvm_entry without a thread (add the tid context)"
            ));
            return Ok(());
        };
        let (Some(vcpu_id), Some(pid)) = (ev.int(0), ev.int(2)) else {
            self.warn(format!(
                "{t}: kvm_entry without vcpu_id or pid context: vCPU of thread {tid} unknown"
            ));
            return Ok(());
        };
        if !(0..=4095).contains(&vcpu_id) {
            self.warn(format!(
                "{t}: kvm_entry: vCPU id {vcpu_id} out of range (0..4096), ignored"
            ));
            return Ok(());
        }
        let probe = self.first_probe.remove(&tid);
        let v = self.vcpus.entry(tid).or_insert_with(|| {
            let (next_cr3, next_sp) = probe.unwrap_or_default();
            VcpuState {
                next_cr3,
                next_sp,
                ..Default::default()
            }
        });
        v.pid = pid;
        v.vcpu = vcpu_id;
        let vm = self.vms.entry(pid).or_default();
        // The CR3 and SP this entry runs (from the probe just before).
        let next_cr3 = v.next_cr3.take();
        let next_sp = v.next_sp.take();
        let to_l2 = matches!(v.last_exit, Some(EXIT_VMLAUNCH | EXIT_VMRESUME))
            || match (v.nested, next_cr3) {
                (Some(x), Some(c)) => vm.l2.get(&x).is_some_and(|s| s.contains(&c)),
                _ => false,
            };
        if to_l2 {
            v.in_l2 = true;
            if let (Some(x), Some(c)) = (v.nested, next_cr3) {
                vm.l2.entry(x).or_default().insert(c);
                v.l2_cr3 = Some(c);
            }
            Self::vcpu_status(ss, v, t, RUNNING_NON_ROOT_L2)?;
            Self::nested_status(ss, v, t, RUNNING_NON_ROOT_L2)?;
            return Self::process_status(ss, v, t, RUNNING_NON_ROOT_L2);
        }
        v.in_l2 = false;
        let pid_s = pid.to_string();
        if let Some(c) = next_cr3 {
            if v.cr3 != Some(c) {
                // The guest switched processes: the previous one waits.
                if v.cr3.is_some() {
                    Self::process_status(ss, v, t, WAIT)?;
                }
                v.cr3 = Some(c);
                v.sp = None;
                let n = vm.process_ids.len() as i32 + 1;
                let id = *vm.process_ids.entry(c).or_insert(n);
                let q = ss.quark_and_add(&["VMs", &pid_s, "Process", &c.to_string()])?;
                ss.modify(t, StateValue::Int(id), q)?;
                let q =
                    ss.quark_and_add(&["VMs", &pid_s, "vCPU", &vcpu_id.to_string(), "Process"])?;
                ss.modify(t, StateValue::String(c.to_string().into()), q)?;
            }
            let q = ss.quark_and_add(&["VMs", &pid_s, "Process", &c.to_string(), "vCPU"])?;
            ss.modify(t, StateValue::Int(vcpu_id as i32), q)?;
        }
        if let (Some(sp), Some(c)) = (next_sp, v.cr3) {
            if v.sp.as_ref() != Some(&sp) {
                if let Some(old) = &v.sp {
                    let q = ss.quark_and_add(&[
                        "VMs",
                        &pid_s,
                        "Process",
                        &c.to_string(),
                        "Threads",
                        old,
                        "Status",
                    ])?;
                    ss.modify(t, StateValue::Int(PREEMPTED_BY_THREAD), q)?;
                }
                v.sp = Some(sp);
            }
        }
        Self::vcpu_status(ss, v, t, RUNNING_NON_ROOT)?;
        Self::process_status(ss, v, t, RUNNING_NON_ROOT)?;
        if let Some(x) = v.nested {
            let code = if v.cr3 == Some(x) {
                RUNNING_NON_ROOT
            } else {
                PREEMPTED_L1
            };
            Self::nested_status(ss, v, t, code)?;
        }
        Ok(())
    }

    fn kvm_exit(
        &mut self,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = ev.timestamp();
        let Some(tid) = self.current_tid(ev, 1) else {
            return Ok(());
        };
        let Some(v) = self.vcpus.get_mut(&tid) else {
            self.warn(format!(
                "{t}: kvm_exit of thread {tid} before any kvm_entry of it: ignored"
            ));
            return Ok(());
        };
        let reason = ev.int(0).unwrap_or(-1);
        v.last_exit = Some(reason);
        let p = Self::vcpu_path(v);
        let q = ss.quark_and_add(&[&p[0], &p[1], &p[2], &p[3], "LastExit"])?;
        ss.modify(t, StateValue::Int(reason as i32), q)?;
        Self::vcpu_status(ss, v, t, RUNNING_ROOT)?;
        Self::process_status(ss, v, t, RUNNING_ROOT)?;
        if v.in_l2 {
            v.in_l2 = false;
            Self::nested_status(ss, v, t, RUNNING_ROOT)?;
            return Ok(());
        }
        if let Some(c) = v.cr3 {
            let q = ss.quark_and_add(&["VMs", &p[1], "Process", &c.to_string(), "exit"])?;
            ss.modify(t, StateValue::Long(reason), q)?;
        }
        if reason == EXIT_VMLAUNCH || reason == EXIT_VMRESUME {
            // The process running now is a nested hypervisor.
            let x = v.cr3.unwrap_or(0);
            v.nested = Some(x);
            let vm = self.vms.entry(v.pid).or_default();
            let n = vm.nested_ids.len() as i32 + 1;
            let id = *vm.nested_ids.entry(x).or_insert(n);
            let q = ss.quark_and_add(&["VMs", &p[1], "Nested", &x.to_string()])?;
            ss.modify(t, StateValue::Int(id), q)?;
            Self::nested_status(ss, v, t, RUNNING_ROOT)?;
        } else if v.nested.is_some() {
            let code = if v.cr3 == v.nested {
                RUNNING_ROOT
            } else {
                PREEMPTED_L1
            };
            Self::nested_status(ss, v, t, code)?;
        }
        Ok(())
    }

    fn sched_switch(
        &mut self,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = ev.timestamp();
        let (Some(prev), Some(next)) = (ev.int(SW_PREV_TID), ev.int(SW_NEXT_TID)) else {
            return Ok(());
        };
        if let Some(cpu) = ev.cpu() {
            self.on_cpu.insert(cpu, next);
        }
        if let Some(comm) = ev.string(super::SW_NEXT_COMM) {
            if self.comm.get(&next).map(String::as_str) != Some(comm) {
                self.comm.insert(next, comm.to_string());
            }
        }
        let next_vm = self.vcpus.get(&next).map(|v| v.pid);
        if let Some(v) = self.vcpus.get_mut(&prev) {
            if v.last_exit == Some(EXIT_HLT) {
                // A wait after an HLT exit whose reason an injection will tell; a
                // previous wait that was never classified was a timer wait.
                Self::resolve_wait(ss, v, t, WAIT_TIMER)?;
                let p = Self::vcpu_path(v);
                let q = ss.quark_and_add(&[&p[0], &p[1], &p[2], &p[3], "Status"])?;
                // Provisional value, replaced when the wait is classified.
                ss.modify(t, StateValue::Int(WAIT), q)?;
                v.wait = Some(PendingWait {
                    start: t,
                    end: None,
                    held: VecDeque::new(),
                });
                Self::process_status(ss, v, t, WAIT)?;
                Self::nested_status(ss, v, t, WAIT_TIMER)?;
            } else {
                Self::resolve_wait(ss, v, t, WAIT_TIMER)?;
                let code = match next_vm {
                    Some(other) if other != v.pid => PREEMPTED_BY_VM,
                    _ => PREEMPTED_BY_HOST,
                };
                Self::vcpu_status(ss, v, t, code)?;
                Self::process_status(ss, v, t, code)?;
                Self::nested_status(ss, v, t, PREEMPTED_L0)?;
            }
        }
        if let Some(v) = self.vcpus.get_mut(&next) {
            if let Some(w) = v.wait.as_mut() {
                w.end = Some(t);
            }
            Self::vcpu_status(ss, v, t, RUNNING_ROOT)?;
            if v.nested.is_some() && (v.in_l2 || v.cr3 == v.nested) {
                Self::nested_status(ss, v, t, RUNNING_ROOT)?;
            }
        }
        Ok(())
    }

    fn inj_virq(
        &mut self,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = ev.timestamp();
        let Some(tid) = self.current_tid(ev, 1) else {
            return Ok(());
        };
        let Some(v) = self.vcpus.get_mut(&tid) else {
            return Ok(());
        };
        let Some(vector) = ev.int(0) else {
            return Ok(());
        };
        let p = Self::vcpu_path(v);
        let q = ss.quark_and_add(&[&p[0], &p[1], &p[2], &p[3], "internal"])?;
        ss.modify(t, StateValue::Int(vector as i32), q)?;
        if v.wait.is_none() {
            return Ok(());
        }
        let vm = self.vms.entry(v.pid).or_default();
        let code = match vector {
            238 | 239 => WAIT_TIMER,
            251..=253 => WAIT_TASK,
            _ if Some(vector) == vm.disk_vector => WAIT_DISK,
            _ if Some(vector) == vm.net_vector => WAIT_NET,
            _ => WAIT,
        };
        Self::resolve_wait(ss, v, t, code)
    }

    fn vcpu_enter_guest(&mut self, ev: &dyn EventFields) {
        let Some(tid) = self.current_tid(ev, 3) else {
            return;
        };
        self.probes_seen = true;
        let cr3 = ev.int(1).map(|c| c as u64);
        let sp = ev.int(2).map(sp_id);
        match self.vcpus.get_mut(&tid) {
            Some(v) => {
                v.next_cr3 = cr3;
                v.next_sp = sp;
            }
            // First entry of this thread: the kvm_entry right after makes it a vCPU.
            None => {
                self.first_probe.insert(tid, (cr3, sp));
            }
        }
    }

    fn apic_accept_irq(
        &mut self,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = ev.timestamp();
        let (Some(vector), Some(tid)) = (ev.int(0), self.current_tid(ev, 1)) else {
            return Ok(());
        };
        let pid = ev.int(2);
        // From a vhost thread: the network vector of VM <pid in its name>.
        let net_vm = self
            .comm
            .get(&tid)
            .and_then(|c| c.strip_prefix("vhost-"))
            .and_then(|p| p.parse::<i64>().ok());
        let (vm_pid, what) = if let Some(vm) = net_vm {
            (vm, "net")
        } else if pid == Some(tid) && self.vms.contains_key(&tid) {
            // From the QEMU main thread: the disk vector.
            (tid, "disk")
        } else {
            return Ok(());
        };
        let vm = self.vms.entry(vm_pid).or_default();
        if what == "net" {
            vm.net_vector = Some(vector);
        } else {
            vm.disk_vector = Some(vector);
        }
        let q = ss.quark_and_add(&["VMs", &vm_pid.to_string(), "irq", what])?;
        ss.modify(t, StateValue::Int(vector as i32), q)
    }
}

impl StateProvider for NestedVcpuProvider {
    fn id(&self) -> &'static str {
        ID
    }
    fn version(&self) -> i32 {
        2
    }
    fn check_trace(&mut self, _trace: &TraceInfo) -> Result<(), ProviderError> {
        *self = Self::default();
        Ok(())
    }
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        if event_name == "kvm_apic_accept_irq" || event_name == "kvm_x86_apic_accept_irq" {
            return Some(Subscription {
                handler: H_APIC_ACCEPT_IRQ,
                fields: vec!["vec", "context._tid", "context._pid"],
            });
        }
        subscribe_kinds(
            event_name,
            &[
                Kind::KvmEntry,
                Kind::KvmExit,
                Kind::SchedSwitch,
                Kind::InjVirq,
                Kind::VcpuEnterGuest,
            ],
        )
    }
    fn handle(
        &mut self,
        handler: u32,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        if handler == H_APIC_ACCEPT_IRQ {
            return self.apic_accept_irq(ev, ss);
        }
        match Kind::from_handler(handler) {
            Some(Kind::KvmEntry) => self.kvm_entry(ev, ss),
            Some(Kind::KvmExit) => self.kvm_exit(ev, ss),
            Some(Kind::SchedSwitch) => self.sched_switch(ev, ss),
            Some(Kind::InjVirq) => self.inj_virq(ev, ss),
            Some(Kind::VcpuEnterGuest) => {
                self.vcpu_enter_guest(ev);
                Ok(())
            }
            _ => Ok(()),
        }
    }
    fn warnings(&self) -> Vec<String> {
        let mut out = self.warnings.clone();
        if self.vcpus.is_empty() {
            out.push(
                "no kvm_entry event with vcpu_id and the pid/tid contexts: no vCPU found (enable kvm_entry, kvm_exit, sched_switch and the pid and tid contexts)".to_string(),
            );
        } else if !self.probes_seen {
            out.push(
                "no addons_vcpu_enter_guest event (lttng-modules addon): guest processes, threads and CR3-based nesting are not analysed".to_string(),
            );
        }
        out
    }
    fn finish(&mut self, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        // Waits still open at the end: never classified, so timer waits.
        let mut tids: Vec<i64> = self.vcpus.keys().copied().collect();
        tids.sort_unstable();
        for tid in tids {
            let v = self.vcpus.get_mut(&tid).expect("listed");
            if v.wait.is_some() {
                let end = ss.current_end_time();
                Self::resolve_wait(ss, v, end, WAIT_TIMER)?;
            }
        }
        Ok(())
    }
}
