//! Virtual resources analysis (Trace Compass incubator `VirtualResourcesStateProvider`):
//! the status of every vCPU, `Virtual Machines/<guest>/<vcpu>/Status` (int):
//! 0 unknown, 1 idle, 2 running, OR-ed with 128 (in the hypervisor: between a kvm exit
//! and the next entry) and 256 (the host thread of the vCPU is scheduled out).
//!
//! Host events are attributed to vCPUs with the model as it stands
//! `MODEL_HEADSTART_NS` (100 ms) after them (see `Ahead`), so
//! events before the guest's first sync are attributed too, as in Trace Compass.

use std::collections::BTreeMap;

use sht::{StateSystemBuilder, StateSystemQuerier, StateValue};

use super::model::{Ahead, MODEL_KINDS};
use super::{
    host_ids, subscribe_kinds, EventFields, HeldEvent, IntMap, KernelModels, Kind, KVM_CTX_TID,
    SW_NEXT_TID, SW_PREV_TID,
};
use crate::{ProviderError, StateProvider, Subscription, TraceInfo};

pub const ID: &str =
    "org.eclipse.tracecompass.incubator.virtual.machine.analysis.core.VirtualResourcesAnalysis";

pub const VCPU_UNKNOWN: i32 = 0;
pub const VCPU_IDLE: i32 = 1;
pub const VCPU_RUNNING: i32 = 2;
pub const VCPU_VMM: i32 = 128;
pub const VCPU_PREEMPT: i32 = 256;

pub struct VirtualResourcesProvider {
    ahead: Ahead,
    /// (guest machine, vcpu) -> its Status attribute.
    status_quarks: IntMap<(usize, i64), sht::Quark>,
}

impl VirtualResourcesProvider {
    pub fn new() -> Self {
        VirtualResourcesProvider {
            ahead: Ahead::default(),
            status_quarks: IntMap::default(),
        }
    }

    fn status_quark(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        vm: usize,
        vcpu: i64,
    ) -> sht::Result<sht::Quark> {
        if let Some(q) = self.status_quarks.get(&(vm, vcpu)) {
            return Ok(*q);
        }
        let guest = &self.ahead.model.machines.list[vm].host_id;
        let q = ss.quark_and_add(&["Virtual Machines", guest, &vcpu.to_string(), "Status"])?;
        self.status_quarks.insert((vm, vcpu), q);
        Ok(q)
    }

    /// Ongoing status as Trace Compass unboxes it: null reads as -1.
    fn ongoing(ss: &dyn StateSystemBuilder, q: sht::Quark) -> sht::Result<i32> {
        Ok(match ss.query_ongoing(q)? {
            StateValue::Int(v) => v,
            _ => -1,
        })
    }

    /// Applies `f` to the status of the vCPU run by host thread `tid` of `trace`.
    fn update_vcpu_of(
        &mut self,
        trace: usize,
        tid: i32,
        t: i64,
        ss: &mut dyn StateSystemBuilder,
        f: impl Fn(i32) -> i32,
    ) -> sht::Result<()> {
        let model = &self.ahead.model;
        let Some(host) = model.machine_of_trace(trace) else {
            return Ok(());
        };
        let Some(&(vm, vcpu)) = model.machines.tid_to_vcpu.get(&(host, tid)) else {
            return Ok(());
        };
        let q = self.status_quark(ss, vm, vcpu)?;
        let prev = Self::ongoing(ss, q)?.max(VCPU_UNKNOWN);
        ss.modify(t, StateValue::Int(f(prev)), q)
    }

    fn handle_held(&mut self, ev: &HeldEvent, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        let model = &self.ahead.model;
        let t = ev.timestamp;
        // Trace Compass fails on events of machines the model does not know.
        let Some(m) = model.machine_of_trace(ev.trace) else {
            return Ok(());
        };
        let machine = &model.machines.list[m];
        let (is_host, is_guest) = (machine.is_host(), machine.is_guest());
        match ev.kind {
            Kind::SchedSwitch => {
                let prev = ev.int(SW_PREV_TID);
                let next = ev.int(SW_NEXT_TID);
                if is_guest {
                    if let (Some(next), Some(cpu)) = (next, ev.cpu) {
                        let q = self.status_quark(ss, m, cpu as i64)?;
                        let flags = Self::ongoing(ss, q)? & (VCPU_PREEMPT | VCPU_VMM);
                        let base = if next > 0 { VCPU_RUNNING } else { VCPU_IDLE };
                        ss.modify(t, StateValue::Int(base | flags), q)?;
                    }
                }
                if is_host {
                    if let Some(prev) = prev {
                        self.update_vcpu_of(ev.trace, prev as i32, t, ss, |s| s | VCPU_PREEMPT)?;
                    }
                    if let Some(next) = next {
                        self.update_vcpu_of(ev.trace, next as i32, t, ss, |s| s & !VCPU_PREEMPT)?;
                    }
                }
            }
            Kind::KvmEntry | Kind::KvmExit => {
                let tid = ev
                    .cpu
                    .and_then(|c| self.ahead.model.kernel.thread_on_cpu(ev.trace, c, t))
                    .or_else(|| ev.int(KVM_CTX_TID).map(|v| v as i32));
                if let Some(tid) = tid {
                    if ev.kind == Kind::KvmEntry {
                        self.update_vcpu_of(ev.trace, tid, t, ss, |s| s & !VCPU_VMM)?;
                    } else {
                        self.update_vcpu_of(ev.trace, tid, t, ss, |s| s | VCPU_VMM)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Per thread id, `(start, end, value)` intervals.
pub type ThreadIntervals = BTreeMap<i32, Vec<(i64, i64, i32)>>;

/// Intervals of one attribute over the whole history, in time order.
fn history(ss: &dyn StateSystemQuerier, q: sht::Quark) -> sht::Result<Vec<sht::Interval>> {
    let mut out = Vec::new();
    let mut t = ss.start_time();
    while t <= ss.current_end_time() {
        let i = ss.query_single(t, q)?;
        t = i.end + 1;
        out.push(i);
    }
    Ok(out)
}

/// The "thread preemption" query of the Virtual CPU view (Trace Compass
/// `VirtualResourcesAnalysis.getUpdatedThreadIntervals`): for each thread of the guest,
/// its status intervals from the guest's kernel analysis (`kernel`: `Threads/<tid>`,
/// `CPUs/<n>/Current_thread`; null reads as 0), plus an interval of value
/// [`VCPU_PREEMPT`] for every vCPU status interval of `vres` with the VMM or PREEMPT
/// bit, given to the thread the guest ran on that vCPU when it began. Each list is in
/// start order, a preemption after the status intervals starting before it; like
/// Trace Compass's sorted multimap, a preemption starting with a status interval is
/// dropped.
pub fn thread_preemption_intervals(
    vres: &dyn StateSystemQuerier,
    guest: &str,
    kernel: &dyn StateSystemQuerier,
) -> sht::Result<ThreadIntervals> {
    let mut map = ThreadIntervals::new();
    let attrs = kernel.attributes();
    if let Ok(threads) = kernel.quark(&["Threads"]) {
        for &q in attrs.children_of(threads) {
            let Ok(tid) = attrs.name(q)?.parse::<i32>() else {
                continue; // "0_<cpu>" idle threads and other names
            };
            let list = map.entry(tid).or_default();
            for i in history(kernel, q)? {
                let v = match i.value {
                    StateValue::Int(v) => v,
                    _ => 0,
                };
                list.push((i.start, i.end, v));
            }
        }
    }
    let Ok(vm) = vres.quark(&["Virtual Machines", guest]) else {
        return Ok(map);
    };
    let mut preempted: Vec<(i32, i64, i64)> = Vec::new();
    for &vcpu_q in vres.attributes().children_of(vm) {
        let vcpu = vres.attributes().name(vcpu_q)?.to_string();
        let Ok(status) = vres.quark(&["Virtual Machines", guest, &vcpu, "Status"]) else {
            continue;
        };
        let Ok(current) = kernel.quark(&["CPUs", &vcpu, "Current_thread"]) else {
            continue;
        };
        for i in history(vres, status)? {
            let StateValue::Int(v) = i.value else {
                continue;
            };
            if v & (VCPU_PREEMPT | VCPU_VMM) == 0 {
                continue;
            }
            if i.start < kernel.start_time() || i.start > kernel.current_end_time() {
                continue;
            }
            if let StateValue::Int(tid) = kernel.query_single(i.start, current)?.value {
                preempted.push((tid, i.start, i.end));
            }
        }
    }
    for (tid, start, end) in preempted {
        let list = map.entry(tid).or_default();
        if list
            .iter()
            .any(|(s, _, v)| *s == start && *v != VCPU_PREEMPT)
        {
            continue;
        }
        list.push((start, end, VCPU_PREEMPT));
    }
    for list in map.values_mut() {
        // Stable: status intervals keep their order, preemptions follow by start.
        list.sort_by_key(|(s, _, v)| (*s, *v == VCPU_PREEMPT));
    }
    Ok(map)
}

impl Default for VirtualResourcesProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl StateProvider for VirtualResourcesProvider {
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
        self.ahead = Ahead::new(host_ids(trace));
        self.status_quarks.clear();
        Ok(())
    }
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        subscribe_kinds(event_name, &MODEL_KINDS)
            .or_else(|| subscribe_kinds(event_name, &KernelModels::KINDS))
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
        let hold = matches!(kind, Kind::SchedSwitch | Kind::KvmEntry | Kind::KvmExit);
        self.ahead.push(kind, ev, hold)?;
        while let Some(held) = self.ahead.next(false) {
            self.handle_held(&held, ss)?;
        }
        Ok(())
    }
    fn warnings(&self) -> Vec<String> {
        self.ahead.model.warnings()
    }
    fn finish(&mut self, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        while let Some(held) = self.ahead.next(true) {
            self.handle_held(&held, ss)?;
        }
        Ok(())
    }
}
