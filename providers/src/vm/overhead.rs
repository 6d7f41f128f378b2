//! VM overhead analysis (Trace Compass incubator `VmOverheadStateProvider`): each guest
//! thread as a 3-level call stack, `Traces/<guest>/Threads/<tid>/CallStack/{1,2,3}`:
//! level 1 the thread's kernel status name while it runs (`RUN`, `WAIT_CPU`, ...),
//! level 2 `VMM` (vCPU in the hypervisor) or `VCPU Preempted`, level 3 the exit reason
//! or the host `prev_state`; `.../<tid>/hostTid` is the host thread running its vCPU.
//!
//! Like Trace Compass, it reads the final model (through `Ahead`) and the kernel
//! models of each machine; level 1 follows the thread's kernel status intervals,
//! written at their start as events reach them.

use sht::{Quark, StateSystemBuilder, StateValue};

use super::model::{Ahead, MODEL_KINDS};
use super::{
    host_ids, status, subscribe_kinds, EventFields, HeldEvent, IntMap, KernelModels, Kind, KVM_ARG,
    KVM_CTX_TID, SW_NEXT_TID, SW_PREV_STATE, SW_PREV_TID,
};
use crate::{ProviderError, StateProvider, Subscription, TraceInfo};

pub const ID: &str =
    "org.eclipse.tracecompass.incubator.virtual.machine.analysis.core.overhead.analysis";

pub const STATUS_VCPU_PREEMPTED: &str = "VCPU Preempted";
pub const STATUS_VMM_MODE: &str = "VMM";
pub const STATUS_RUNNING: &str = "Running";

/// A thread whose kernel status intervals are copied to a level-1 attribute.
#[derive(Debug, Clone, Copy)]
struct Followed {
    quark: Quark,
    /// Start of the interval last written (`i64::MIN` before the first change).
    start: i64,
    /// Start of the change after it, once known.
    next: Option<i64>,
}

pub struct VmOverheadProvider {
    ahead: Ahead,
    /// (trace index, tid) -> level-1 attribute following its status.
    followed: IntMap<(usize, i32), Followed>,
    /// (guest machine, guest tid) -> levels 2 and 3 before the vCPU was preempted.
    saved: IntMap<(usize, i32), (StateValue, StateValue)>,
    /// (guest machine, tid, cpu of thread 0) -> the thread's attributes.
    nodes: IntMap<(usize, i32, i64), Nodes>,
}

/// Attributes of one guest thread.
#[derive(Debug, Clone, Copy)]
struct Nodes {
    base: Quark,
    l1: Quark,
    l2: Quark,
    l3: Quark,
    host_tid: Option<Quark>,
}

fn thread_name(tid: i32, cpu: i64) -> String {
    if tid == 0 {
        if cpu < 0 {
            "0".to_string()
        } else {
            format!("0_{cpu}")
        }
    } else {
        tid.to_string()
    }
}

fn text(s: &str) -> StateValue {
    StateValue::String(s.into())
}

impl VmOverheadProvider {
    pub fn new() -> Self {
        VmOverheadProvider {
            ahead: Ahead::default(),
            followed: IntMap::default(),
            saved: IntMap::default(),
            nodes: IntMap::default(),
        }
    }

    /// Starts copying the kernel status of `(trace, tid)` from `t` into `quark`.
    fn follow(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        trace: usize,
        tid: i32,
        t: i64,
        quark: Quark,
    ) -> sht::Result<()> {
        let Some(h) = self.ahead.model.kernel.status.get(&(trace, tid)) else {
            return Ok(()); // a thread the kernel model does not know: no intervals
        };
        let (start, value, next) = match h.interval_at(t) {
            Some((s, v, n)) => (s, *v, n),
            None => (i64::MIN, None, h.first_start()),
        };
        ss.modify(t, text(status::name(value)), quark)?;
        self.followed
            .insert((trace, tid), Followed { quark, start, next });
        Ok(())
    }

    /// Moves every followed thread to its next status interval if `t` is past the
    /// current one (one step per event, as Trace Compass does).
    fn advance(&mut self, ss: &mut dyn StateSystemBuilder, t: i64) -> sht::Result<()> {
        let kernel = &self.ahead.model.kernel;
        for (key, f) in self.followed.iter_mut() {
            let Some(h) = kernel.status.get(key) else {
                continue;
            };
            if f.next.is_none() {
                // A change may have been learnt since.
                f.next = match h.last_start() {
                    Some(last) if last > f.start => {
                        if f.start == i64::MIN {
                            h.first_start()
                        } else {
                            match h.interval_at(f.start) {
                                Some((_, _, n)) => n,
                                // Pruned: the interval in effect now.
                                None => {
                                    h.interval_at(t).map(|(s, _, _)| s).filter(|s| *s > f.start)
                                }
                            }
                        }
                    }
                    _ => None,
                };
            }
            let next = f.next;
            if let Some(n) = next.filter(|n| *n <= t) {
                let (value, after) = match h.interval_at(n) {
                    Some((_, v, after)) => (*v, after),
                    None => (None, None),
                };
                f.start = n;
                f.next = after;
                ss.modify(n, text(status::name(value)), f.quark)?;
            }
        }
        Ok(())
    }

    /// The attributes of thread `tid` of guest machine `m` (`hostTid` first when
    /// `host_tid`, the order Trace Compass creates them in on a guest switch).
    fn nodes(
        &mut self,
        ss: &mut dyn StateSystemBuilder,
        m: usize,
        tid: i32,
        cpu: i64,
        host_tid: bool,
    ) -> sht::Result<Nodes> {
        let key = (m, tid, if tid == 0 { cpu } else { i64::MIN });
        if let Some(n) = self.nodes.get_mut(&key) {
            if host_tid && n.host_tid.is_none() {
                n.host_tid = Some(ss.quark_relative_and_add(n.base, &["hostTid"])?);
            }
            return Ok(*n);
        }
        let name = &self.ahead.model.machines.list[m].trace_name;
        let base = ss.quark_and_add(&["Traces", name, "Threads", &thread_name(tid, cpu)])?;
        let host_tid = if host_tid {
            Some(ss.quark_relative_and_add(base, &["hostTid"])?)
        } else {
            None
        };
        let cs = ss.quark_relative_and_add(base, &["CallStack"])?;
        let n = Nodes {
            base,
            l1: ss.quark_relative_and_add(cs, &["1"])?,
            l2: ss.quark_relative_and_add(cs, &["2"])?,
            l3: ss.quark_relative_and_add(cs, &["3"])?,
            host_tid,
        };
        self.nodes.insert(key, n);
        Ok(n)
    }

    /// The guest thread on the vCPU run by host thread `tid`: (guest machine, vcpu, guest tid).
    fn guest_thread_of(&self, host_trace: usize, tid: i32, t: i64) -> Option<(usize, i64, i32)> {
        let model = &self.ahead.model;
        let host = model.machine_of_trace(host_trace)?;
        let &(vm, vcpu) = model.machines.tid_to_vcpu.get(&(host, tid))?;
        let guest_trace = *model.machine_trace.get(vm)?;
        let guest_tid = model
            .kernel
            .thread_on_cpu(guest_trace, u32::try_from(vcpu).ok()?, t)?;
        Some((vm, vcpu, guest_tid))
    }

    fn kvm(&mut self, ev: &HeldEvent, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        let t = ev.timestamp;
        let tid = ev
            .cpu
            .and_then(|c| self.ahead.model.kernel.thread_on_cpu(ev.trace, c, t))
            .or_else(|| ev.int(KVM_CTX_TID).map(|v| v as i32));
        let Some(tid) = tid else { return Ok(()) };
        let Some((vm, vcpu, guest_tid)) = self.guest_thread_of(ev.trace, tid, t) else {
            return Ok(());
        };
        let n = self.nodes(ss, vm, guest_tid, vcpu, false)?;
        if ss.query_ongoing(n.l1)?.is_null() {
            // As Trace Compass, the guest thread is looked up on the host's machine.
            self.follow(ss, ev.trace, guest_tid, t, n.l1)?;
        }
        let (l2, l3) = if ev.kind == Kind::KvmExit {
            let reason = ev
                .int(KVM_ARG)
                .map_or_else(|| "null".to_string(), |r| r.to_string());
            (text(STATUS_VMM_MODE), text(&reason))
        } else {
            (StateValue::Null, StateValue::Null)
        };
        ss.modify(t, l2, n.l2)?;
        ss.modify(t, l3, n.l3)
    }

    fn host_switch(&mut self, ev: &HeldEvent, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        let t = ev.timestamp;
        let (Some(prev), Some(next)) = (ev.int(SW_PREV_TID), ev.int(SW_NEXT_TID)) else {
            return Ok(());
        };
        let (prev, next) = (prev as i32, next as i32);
        if prev != 0 {
            if let Some((vm, vcpu, guest_tid)) = self.guest_thread_of(ev.trace, prev, t) {
                let n = self.nodes(ss, vm, guest_tid, vcpu, false)?;
                if ss.query_ongoing(n.l1)?.is_null() {
                    self.follow(ss, ev.trace, guest_tid, t, n.l1)?;
                }
                let (q2, q3) = (n.l2, n.l3);
                self.saved.insert(
                    (vm, guest_tid),
                    (ss.query_ongoing(q2)?, ss.query_ongoing(q3)?),
                );
                ss.modify(t, text(STATUS_VCPU_PREEMPTED), q2)?;
                if let Some(state) = ev.int(SW_PREV_STATE) {
                    ss.modify(t, text(&state.to_string()), q3)?;
                }
            }
        }
        if next != 0 {
            if let Some((vm, vcpu, guest_tid)) = self.guest_thread_of(ev.trace, next, t) {
                let n = self.nodes(ss, vm, guest_tid, vcpu, false)?;
                if ss.query_ongoing(n.l1)?.is_null() {
                    ss.modify(t, text(STATUS_RUNNING), n.l1)?;
                }
                let (q2, q3) = (n.l2, n.l3);
                match self.saved.remove(&(vm, guest_tid)) {
                    None => {
                        ss.remove(t, q2)?;
                        ss.remove(t, q3)?;
                    }
                    Some((v2, v3)) => {
                        ss.modify(t, v2, q2)?;
                        ss.modify(t, v3, q3)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn guest_switch(
        &mut self,
        ev: &HeldEvent,
        guest: usize,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let t = ev.timestamp;
        let (Some(prev), Some(next)) = (ev.int(SW_PREV_TID), ev.int(SW_NEXT_TID)) else {
            return Ok(());
        };
        let (prev, next) = (prev as i32, next as i32);
        let cpu = ev.cpu.map_or(-1, i64::from);
        let n = self.nodes(ss, guest, prev, cpu, true)?;
        if let Some(q) = n.host_tid {
            ss.remove(t, q)?;
        }
        for q in [n.l1, n.l2, n.l3] {
            ss.remove(t, q)?;
        }
        self.followed.remove(&(ev.trace, prev));

        let vcpu_tid = if cpu >= 0 {
            self.ahead.model.machines.vcpu_tid((guest, cpu))
        } else {
            None
        };
        let n = self.nodes(ss, guest, next, cpu, vcpu_tid.is_some())?;
        if let (Some((_, host_tid)), Some(q)) = (vcpu_tid, n.host_tid) {
            ss.modify(t, StateValue::Int(host_tid), q)?;
        }
        let l1 = n.l1;
        if ss.query_ongoing(l1)?.is_null() {
            ss.modify(t, text(STATUS_RUNNING), l1)?;
        }
        for q in [n.l2, n.l3] {
            ss.remove(t, q)?;
        }
        self.follow(ss, ev.trace, next, t, l1)
    }

    fn handle_held(&mut self, ev: &HeldEvent, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        self.advance(ss, ev.timestamp)?;
        let model = &self.ahead.model;
        let Some(m) = model.machine_of_trace(ev.trace) else {
            return Ok(()); // Trace Compass fails on machines the model does not know
        };
        let (is_host, is_guest) = (
            model.machines.list[m].is_host(),
            model.machines.list[m].is_guest(),
        );
        match ev.kind {
            Kind::SchedSwitch => {
                if is_host {
                    self.host_switch(ev, ss)?;
                }
                if is_guest {
                    self.guest_switch(ev, m, ss)?;
                }
            }
            Kind::KvmEntry | Kind::KvmExit => self.kvm(ev, ss)?,
            _ => {}
        }
        Ok(())
    }
}

impl Default for VmOverheadProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl StateProvider for VmOverheadProvider {
    fn experiment_analysis(&self) -> bool {
        true
    }
    fn id(&self) -> &'static str {
        ID
    }
    fn version(&self) -> i32 {
        4
    }
    fn check_trace(&mut self, trace: &TraceInfo) -> Result<(), ProviderError> {
        self.ahead = Ahead::new(host_ids(trace));
        self.ahead.model.kernel.track_status = true;
        self.followed.clear();
        self.saved.clear();
        self.nodes.clear();
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
        // Every event that can change a thread status must pass through, to step the
        // followed threads at the right events.
        self.ahead.push(kind, ev, true)?;
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
