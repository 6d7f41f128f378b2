//! VM overhead analysis (Trace Compass incubator `VmOverheadStateProvider`): each guest
//! thread as a 3-level call stack, `Traces/<guest>/Threads/<tid>/CallStack/{1,2,3}`:
//! level 1 the thread's kernel status name while it runs (`RUN`, `WAIT_CPU`, ...),
//! level 2 `VMM` (vCPU in the hypervisor) or `VCPU Preempted`, level 3 the exit reason
//! or the host `prev_state`; `.../<tid>/hostTid` is the host thread running its vCPU.
//!
//! Like Trace Compass, it reads the final model (through [`Ahead`]) and the kernel
//! models of each machine; level 1 follows the thread's kernel status intervals,
//! written at their start as events reach them.

use std::collections::HashMap;

use sht::{Quark, StateSystemBuilder, StateValue};

use super::model::{Ahead, MODEL_KINDS};
use super::{
    host_ids, status, subscribe_kinds, EventFields, HeldEvent, KernelModels, Kind, KVM_ARG,
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
}

pub struct VmOverheadProvider {
    ahead: Ahead,
    /// (trace index, tid) -> level-1 attribute following its status.
    followed: HashMap<(usize, i32), Followed>,
    /// (guest machine, guest tid) -> levels 2 and 3 before the vCPU was preempted.
    saved: HashMap<(usize, i32), (StateValue, StateValue)>,
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
            followed: HashMap::new(),
            saved: HashMap::new(),
        }
    }

    fn trace_of_host(&self, host_id: &str) -> Option<usize> {
        self.ahead.model.hosts.iter().position(|h| h == host_id)
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
        let (start, value) = match h.interval_at(t) {
            Some((s, v, _)) => (s, *v),
            None => (i64::MIN, None),
        };
        ss.modify(t, text(status::name(value)), quark)?;
        self.followed
            .insert((trace, tid), Followed { quark, start });
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
            let next = if f.start == i64::MIN {
                // Before the first change: the next interval starts at the first change.
                h.first_start()
            } else {
                match h.interval_at(f.start) {
                    Some((_, _, Some(n))) => Some(n),
                    // Pruned: take the interval in effect now.
                    None => h.interval_at(t).map(|(s, _, _)| s).filter(|s| *s > f.start),
                    Some((_, _, None)) => None,
                }
            };
            if let Some(n) = next.filter(|n| *n <= t) {
                let value = h.at(n).copied().flatten();
                f.start = n;
                ss.modify(n, text(status::name(value)), f.quark)?;
            }
        }
        Ok(())
    }

    fn callstack(
        ss: &mut dyn StateSystemBuilder,
        trace_name: &str,
        tid: i32,
        cpu: i64,
    ) -> sht::Result<Quark> {
        ss.quark_and_add(&[
            "Traces",
            trace_name,
            "Threads",
            &thread_name(tid, cpu),
            "CallStack",
        ])
    }

    /// The guest thread on the vCPU run by host thread `tid`: (guest machine, vcpu, guest tid).
    fn guest_thread_of(&self, host_trace: usize, tid: i32, t: i64) -> Option<(usize, i64, i32)> {
        let model = &self.ahead.model;
        let host = model.machines.get(model.hosts.get(host_trace)?)?;
        let &(vm, vcpu) = model.machines.tid_to_vcpu.get(&(host, tid))?;
        let guest_trace = self.trace_of_host(&model.machines.list[vm].host_id)?;
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
        let name = self.ahead.model.machines.list[vm].trace_name.clone();
        let cs = Self::callstack(ss, &name, guest_tid, vcpu)?;
        let l1 = ss.quark_relative_and_add(cs, &["1"])?;
        if ss.query_ongoing(l1)?.is_null() {
            // As Trace Compass, the guest thread is looked up on the host's machine.
            self.follow(ss, ev.trace, guest_tid, t, l1)?;
        }
        let (l2, l3) = if ev.kind == Kind::KvmExit {
            let reason = ev
                .int(KVM_ARG)
                .map_or_else(|| "null".to_string(), |r| r.to_string());
            (text(STATUS_VMM_MODE), text(&reason))
        } else {
            (StateValue::Null, StateValue::Null)
        };
        let q2 = ss.quark_relative_and_add(cs, &["2"])?;
        ss.modify(t, l2, q2)?;
        let q3 = ss.quark_relative_and_add(cs, &["3"])?;
        ss.modify(t, l3, q3)
    }

    fn host_switch(&mut self, ev: &HeldEvent, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        let t = ev.timestamp;
        let (Some(prev), Some(next)) = (ev.int(SW_PREV_TID), ev.int(SW_NEXT_TID)) else {
            return Ok(());
        };
        let (prev, next) = (prev as i32, next as i32);
        if prev != 0 {
            if let Some((vm, vcpu, guest_tid)) = self.guest_thread_of(ev.trace, prev, t) {
                let name = self.ahead.model.machines.list[vm].trace_name.clone();
                let cs = Self::callstack(ss, &name, guest_tid, vcpu)?;
                let l1 = ss.quark_relative_and_add(cs, &["1"])?;
                if ss.query_ongoing(l1)?.is_null() {
                    self.follow(ss, ev.trace, guest_tid, t, l1)?;
                }
                let q2 = ss.quark_relative_and_add(cs, &["2"])?;
                let q3 = ss.quark_relative_and_add(cs, &["3"])?;
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
                let name = self.ahead.model.machines.list[vm].trace_name.clone();
                let cs = Self::callstack(ss, &name, guest_tid, vcpu)?;
                let l1 = ss.quark_relative_and_add(cs, &["1"])?;
                if ss.query_ongoing(l1)?.is_null() {
                    ss.modify(t, text(STATUS_RUNNING), l1)?;
                }
                let q2 = ss.quark_relative_and_add(cs, &["2"])?;
                let q3 = ss.quark_relative_and_add(cs, &["3"])?;
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
        let name = super::host_of(&self.ahead.model.hosts, ev).to_string();
        let base = ss.quark_and_add(&["Traces", &name, "Threads", &thread_name(prev, cpu)])?;
        let q = ss.quark_relative_and_add(base, &["hostTid"])?;
        ss.remove(t, q)?;
        for level in ["1", "2", "3"] {
            let q = ss.quark_relative_and_add(base, &["CallStack", level])?;
            ss.remove(t, q)?;
        }
        self.followed.remove(&(ev.trace, prev));

        let base = ss.quark_and_add(&["Traces", &name, "Threads", &thread_name(next, cpu)])?;
        if cpu >= 0 {
            if let Some((_, host_tid)) = self.ahead.model.machines.vcpu_tid((guest, cpu)) {
                let q = ss.quark_relative_and_add(base, &["hostTid"])?;
                ss.modify(t, StateValue::Int(host_tid), q)?;
            }
        }
        let l1 = ss.quark_relative_and_add(base, &["CallStack", "1"])?;
        if ss.query_ongoing(l1)?.is_null() {
            ss.modify(t, text(STATUS_RUNNING), l1)?;
        }
        for level in ["2", "3"] {
            let q = ss.quark_relative_and_add(base, &["CallStack", level])?;
            ss.remove(t, q)?;
        }
        self.follow(ss, ev.trace, next, t, l1)
    }

    fn handle_held(&mut self, ev: &HeldEvent, ss: &mut dyn StateSystemBuilder) -> sht::Result<()> {
        self.advance(ss, ev.timestamp)?;
        let model = &self.ahead.model;
        let Some(m) = model.machines.get(super::host_of(&model.hosts, ev)) else {
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
    fn id(&self) -> &'static str {
        ID
    }
    fn version(&self) -> i32 {
        4
    }
    fn check_trace(&mut self, trace: &TraceInfo) -> Result<(), ProviderError> {
        self.ahead = Ahead::new(host_ids(trace));
        self.followed.clear();
        self.saved.clear();
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
