//! Virtual machine model analysis (Trace Compass incubator
//! `VirtualMachineModelStateProvider` with its `QemuKvmEventHandler`): which machine
//! is a host, which is a guest, and which host thread runs which vCPU.
//!
//! Tree: `<host id>` = trace name; `<host>/Guests/<guest>` = guest trace name, with
//! `Hypervisor` = "Qemu/KVM", `Process Id` (QEMU PID, when events carry
//! `context._pid`) and `CPUs/<vcpu>` = host TID.
//!
//! `ModelBuilder` is also the model the virtual-resources and overhead analyses
//! consult (without writing), through `Ahead`, which holds events back until the
//! model has seen `MODEL_HEADSTART_NS` further, as Trace Compass's analyses wait
//! for the model analysis.

use std::collections::VecDeque;

use sht::{StateSystemBuilder, StateValue};

use super::{
    host_ids, subscribe_kinds, EventFields, HeldEvent, KernelModels, Kind, Machines, GUEST, HOST,
    KVM_ARG, KVM_CTX_PID, KVM_CTX_TID, MODEL_HEADSTART_NS,
};
use crate::{ProviderError, StateProvider, Subscription, TraceInfo};

pub const ID: &str =
    "org.eclipse.tracecompass.incubator.virtual.machine.analysis.core.model.analysis";

/// Events the model reads (besides the thread tracking of [`KernelModels`]).
pub(crate) const MODEL_KINDS: [Kind; 6] = [
    Kind::KvmEntry,
    Kind::KvmExit,
    Kind::VmsyncGhHost,
    Kind::VmsyncHgHost,
    Kind::VmsyncGhGuest,
    Kind::VmsyncHgGuest,
];

/// The model being built, and the thread tracking it needs.
#[derive(Debug, Default)]
pub(crate) struct ModelBuilder {
    pub hosts: Vec<String>,
    pub machines: Machines,
    pub kernel: KernelModels,
    /// kvm entries with a vCPU id out of range (ignored).
    pub bad_vcpus: u64,
    /// Machine of each trace index, once known.
    pub trace_machine: Vec<Option<usize>>,
    /// First trace index of each machine.
    pub machine_trace: Vec<usize>,
}

/// Largest vCPU id accepted (KVM's limit is far below).
pub(crate) const MAX_VCPU: i64 = 4095;

/// Writes a string unless there is no state system to write to.
fn put(
    ss: &mut Option<&mut dyn StateSystemBuilder>,
    t: i64,
    path: &[&str],
    value: StateValue,
) -> sht::Result<()> {
    if let Some(ss) = ss.as_deref_mut() {
        let q = ss.quark_and_add(path)?;
        ss.modify(t, value, q)?;
    }
    Ok(())
}

impl ModelBuilder {
    pub fn new(hosts: Vec<String>) -> Self {
        ModelBuilder {
            hosts,
            ..Default::default()
        }
    }

    fn host_id(&self, ev: &dyn EventFields) -> String {
        super::host_of(&self.hosts, ev).to_string()
    }

    /// The host thread the event happened in: the thread the kernel model has on the
    /// event's CPU, else the event's `context._tid`.
    pub fn current_tid(&self, ev: &dyn EventFields, tid_slot: usize) -> Option<i32> {
        ev.cpu()
            .and_then(|c| self.kernel.current_thread(ev.trace_index(), c))
            .or_else(|| ev.int(tid_slot).map(|t| t as i32))
    }

    /// `getCurrentMachineBuild`: the event's machine, created (and written) if new.
    fn machine(
        &mut self,
        ev: &dyn EventFields,
        ss: &mut Option<&mut dyn StateSystemBuilder>,
    ) -> sht::Result<usize> {
        if let Some(m) = self.machine_of_trace(ev.trace_index()) {
            return Ok(m);
        }
        let host = self.host_id(ev);
        if let Some(m) = self.machines.get(&host) {
            return Ok(m);
        }
        // Trace name: the host id (the experiment gives no other per-trace name).
        put(
            ss,
            ev.timestamp(),
            &[&host],
            StateValue::String(host.as_str().into()),
        )?;
        let m = self.machines.add(&host, &host, 0);
        self.machine_trace.push(ev.trace_index());
        self.trace_machine.resize(self.hosts.len(), None);
        for (i, h) in self.hosts.iter().enumerate() {
            if *h == host {
                self.trace_machine[i] = Some(m);
            }
        }
        Ok(m)
    }

    /// The machine of trace `trace`, if known.
    pub fn machine_of_trace(&self, trace: usize) -> Option<usize> {
        self.trace_machine.get(trace).copied().flatten()
    }

    fn set_host(
        &mut self,
        m: usize,
        ss: &mut Option<&mut dyn StateSystemBuilder>,
    ) -> sht::Result<()> {
        if self.machines.list[m].is_host() {
            return Ok(());
        }
        self.machines.list[m].kind |= HOST;
        if let Some(ss) = ss.as_deref_mut() {
            let host = self.machines.list[m].host_id.clone();
            ss.quark_and_add(&[&host, "Guests"])?;
        }
        Ok(())
    }

    /// Handles one model event; `ss` is the model's own state system, if any.
    pub fn handle(
        &mut self,
        kind: Kind,
        ev: &dyn EventFields,
        mut ss: Option<&mut dyn StateSystemBuilder>,
    ) -> sht::Result<()> {
        if !MODEL_KINDS.contains(&kind) {
            return Ok(());
        }
        let m = self.machine(ev, &mut ss)?;
        match kind {
            Kind::KvmEntry => {
                self.set_host(m, &mut ss)?;
                self.kvm_entry(m, ev, &mut ss)?;
            }
            Kind::KvmExit => self.set_host(m, &mut ss)?,
            Kind::VmsyncGhGuest | Kind::VmsyncHgGuest => {
                let machine = &mut self.machines.list[m];
                if !machine.is_guest() {
                    if let Some(uid) = ev.int(KVM_ARG) {
                        machine.kind |= GUEST;
                        machine.vm_uid = uid;
                    }
                }
            }
            Kind::VmsyncGhHost => {
                self.set_host(m, &mut ss)?;
                self.host_sync(m, ev, &mut ss)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// `vmsync_gh_host`: the thread doing the hypercall runs the guest with that `vm_uid`.
    fn host_sync(
        &mut self,
        host: usize,
        ev: &dyn EventFields,
        ss: &mut Option<&mut dyn StateSystemBuilder>,
    ) -> sht::Result<()> {
        let Some(tid) = self.current_tid(ev, KVM_CTX_TID) else {
            return Ok(());
        };
        if self.machines.tid_to_vm.contains_key(&(host, tid)) {
            return Ok(());
        }
        let Some(uid) = ev.int(KVM_ARG) else {
            return Ok(());
        };
        let t = ev.timestamp();
        let host_id = self.machines.list[host].host_id.clone();
        let guests: Vec<usize> = (0..self.machines.list.len())
            .filter(|&g| self.machines.list[g].vm_uid == uid)
            .collect();
        for g in guests {
            self.machines.add_child(host, g);
            let guest_id = self.machines.list[g].host_id.clone();
            let guest_name = self.machines.list[g].trace_name.clone();
            put(
                ss,
                t,
                &[&host_id, "Guests", &guest_id],
                StateValue::String(guest_name.into()),
            )?;
            self.machines.tid_to_vm.insert((host, tid), g);
            put(
                ss,
                t,
                &[&host_id, "Guests", &guest_id, "Hypervisor"],
                StateValue::String("Qemu/KVM".into()),
            )?;
            // The thread's process stands for the guest (as Trace Compass, stop at the
            // first guest when the events carry no PID).
            let Some(pid) = ev.int(KVM_CTX_PID) else {
                return Ok(());
            };
            let pid = pid as i32;
            if let std::collections::hash_map::Entry::Vacant(e) =
                self.machines.tid_to_vm.entry((host, pid))
            {
                e.insert(g);
                put(
                    ss,
                    t,
                    &[&host_id, "Guests", &guest_id, "Process Id"],
                    StateValue::Int(pid),
                )?;
            }
        }
        Ok(())
    }

    /// kvm entry: the first entry of a guest's thread tells which vCPU it runs.
    fn kvm_entry(
        &mut self,
        host: usize,
        ev: &dyn EventFields,
        ss: &mut Option<&mut dyn StateSystemBuilder>,
    ) -> sht::Result<()> {
        let Some(tid) = self.current_tid(ev, KVM_CTX_TID) else {
            return Ok(());
        };
        if self.machines.tid_to_vcpu.contains_key(&(host, tid)) {
            return Ok(());
        }
        let vm = match self.machines.tid_to_vm.get(&(host, tid)) {
            Some(vm) => *vm,
            None => {
                let Some(pid) = ev.int(KVM_CTX_PID) else {
                    return Ok(());
                };
                let Some(vm) = self.machines.tid_to_vm.get(&(host, pid as i32)).copied() else {
                    return Ok(());
                };
                self.machines.tid_to_vm.insert((host, tid), vm);
                vm
            }
        };
        let Some(vcpu) = ev.int(KVM_ARG) else {
            return Ok(());
        };
        if !(0..=MAX_VCPU).contains(&vcpu) {
            self.bad_vcpus += 1;
            return Ok(());
        }
        self.machines.tid_to_vcpu.insert((host, tid), (vm, vcpu));
        let host_id = self.machines.list[host].host_id.clone();
        let guest_id = self.machines.list[vm].host_id.clone();
        put(
            ss,
            ev.timestamp(),
            &[&host_id, "Guests", &guest_id, "CPUs", &vcpu.to_string()],
            StateValue::Int(tid),
        )
    }

    /// What the model could not learn, for the user.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for host in &self.hosts {
            if !seen.insert(host) {
                continue;
            }
            match self.machines.get(host) {
                None => out.push(format!(
                    "{host}: no kvm_entry/kvm_exit nor vmsync events: its role (host or guest) is unknown"
                )),
                Some(m) => {
                    let machine = &self.machines.list[m];
                    if machine.is_guest()
                        && !self.machines.list.iter().any(|h| h.children.contains(&m))
                    {
                        out.push(format!(
                            "{host}: guest (vm_uid {}) that no host's vmsync_gh_host event names: its vCPUs are unknown",
                            machine.vm_uid
                        ));
                    }
                    if machine.kind == 0 {
                        out.push(format!(
                            "{host}: only vmsync_hg_host events: is it a guest without the vmsync_gh_guest/vmsync_hg_guest events?"
                        ));
                    }
                }
            }
        }
        if self.hosts.len() > 1 && !self.machines.list.iter().any(|m| m.is_guest()) {
            out.push(
                "no guest trace has the vmsync_gh_guest/vmsync_hg_guest events (lttng-vmsync-guest addon): guests cannot be told apart".to_string(),
            );
        }
        if self.bad_vcpus > 0 {
            out.push(format!(
                "{} kvm entries with a vCPU id out of range (0..={MAX_VCPU}) were ignored",
                self.bad_vcpus
            ));
        }
        out
    }

    /// Feeds one event to the thread tracking and the model (nothing written).
    pub fn learn(&mut self, kind: Kind, ev: &dyn EventFields) -> sht::Result<()> {
        if KernelModels::KINDS.contains(&kind) {
            self.kernel.handle(kind, ev);
        }
        self.handle(kind, ev, None)
    }
}

/// Holds events back until the model has seen [`MODEL_HEADSTART_NS`] past them.
#[derive(Debug, Default)]
pub(crate) struct Ahead {
    pub model: ModelBuilder,
    queue: VecDeque<HeldEvent>,
    newest: i64,
    released: u64,
}

impl Ahead {
    pub fn new(hosts: Vec<String>) -> Self {
        Ahead {
            model: ModelBuilder::new(hosts),
            ..Default::default()
        }
    }

    /// Learns from `ev` and, if `hold`, keeps a copy for later.
    pub fn push(&mut self, kind: Kind, ev: &dyn EventFields, hold: bool) -> sht::Result<()> {
        self.model.learn(kind, ev)?;
        self.newest = self.newest.max(ev.timestamp());
        if hold {
            self.queue.push_back(HeldEvent::copy(kind, ev));
        }
        Ok(())
    }

    /// The next held event the model is far enough ahead of (all of them when `all`).
    pub fn next(&mut self, all: bool) -> Option<HeldEvent> {
        let front = self.queue.front()?;
        if !all && front.timestamp.saturating_add(MODEL_HEADSTART_NS) >= self.newest {
            return None;
        }
        let ev = self.queue.pop_front()?;
        self.released += 1;
        if self.released & 4095 == 0 {
            self.model.kernel.prune(ev.timestamp);
        }
        Some(ev)
    }
}

/// The model analysis as a provider.
pub struct VmModelProvider {
    model: ModelBuilder,
}

impl VmModelProvider {
    pub fn new() -> Self {
        VmModelProvider {
            model: ModelBuilder::default(),
        }
    }
}

impl Default for VmModelProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl StateProvider for VmModelProvider {
    fn experiment_analysis(&self) -> bool {
        true
    }
    fn id(&self) -> &'static str {
        ID
    }
    fn version(&self) -> i32 {
        1
    }
    fn check_trace(&mut self, trace: &TraceInfo) -> Result<(), ProviderError> {
        self.model = ModelBuilder::new(host_ids(trace));
        Ok(())
    }
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        subscribe_kinds(event_name, &MODEL_KINDS)
            .or_else(|| subscribe_kinds(event_name, &[Kind::SchedSwitch]))
    }
    fn handle(
        &mut self,
        handler: u32,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let Some(kind) = Kind::from_handler(handler) else {
            return Ok(());
        };
        if kind == Kind::SchedSwitch {
            self.model.kernel.handle(kind, ev);
            return Ok(());
        }
        self.model.handle(kind, ev, Some(ss))
    }
    fn warnings(&self) -> Vec<String> {
        self.model.warnings()
    }
}
