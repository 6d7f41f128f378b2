//! The Linux kernel analysis (Trace Compass `KernelStateProvider`, version 31):
//! CPUs, threads, IRQs and soft IRQs with their statuses, exec names, parents,
//! system calls, priorities and CPU frequencies (`shared/spec/kernel-analysis.md`).
//!
//! Attributes are created in exactly the order Trace Compass's handlers create
//! them (quark numbers and the `.ht` bytes depend on it); `quarks::KernelQuarks`
//! caches them so that the steady state does no path look-up.

pub mod layout;
mod quarks;

use std::sync::Arc;

use sht::{StateSystemBuilder, StateValue};

use crate::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};
pub use layout::Layout;
use quarks::{KernelQuarks, ThreadField};

/// Analysis id (also the `.ht` file name Trace Compass looks for).
pub const KERNEL_ANALYSIS_ID: &str = "org.eclipse.tracecompass.analysis.os.linux.kernel";
/// Provider version written in the history header.
pub const KERNEL_PROVIDER_VERSION: i32 = 31;

/// Thread statuses (`Threads/<tid>`), Trace Compass `StateValues`.
pub mod status {
    pub const UNKNOWN: i32 = 0;
    pub const WAIT_BLOCKED: i32 = 1;
    pub const RUN_USERMODE: i32 = 2;
    pub const RUN_SYSCALL: i32 = 3;
    pub const INTERRUPTED: i32 = 4;
    pub const WAIT_FOR_CPU: i32 = 5;
    pub const WAIT_UNKNOWN: i32 = 6;
    pub const WAIT_FORK: i32 = 7;
}

/// CPU statuses (`CPUs/<n>`) and soft IRQ values.
pub mod cpu_status {
    pub const IDLE: i32 = 0;
    pub const SOFT_IRQ_RAISED: i32 = 1;
    pub const RUN_USERMODE: i32 = 2;
    pub const RUN_SYSCALL: i32 = 4;
    pub const SOFTIRQ: i32 = 8;
    pub const IRQ: i32 = 16;
    pub const SOFT_IRQ_RAISED_RUNNING: i32 = SOFTIRQ | SOFT_IRQ_RAISED;
}

/// What each subscribed event class is handled as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Kind {
    IrqEntry,
    IrqExit,
    SoftIrqEntry,
    SoftIrqExit,
    SoftIrqRaise,
    SchedSwitch,
    PiSetprio,
    Fork,
    Free,
    Wakeup,
    Migrate,
    CpuFrequency,
    IpiEntry,
    IpiExit,
    Statedump,
    SysExit,
}

const KINDS: [Kind; 16] = [
    Kind::IrqEntry,
    Kind::IrqExit,
    Kind::SoftIrqEntry,
    Kind::SoftIrqExit,
    Kind::SoftIrqRaise,
    Kind::SchedSwitch,
    Kind::PiSetprio,
    Kind::Fork,
    Kind::Free,
    Kind::Wakeup,
    Kind::Migrate,
    Kind::CpuFrequency,
    Kind::IpiEntry,
    Kind::IpiExit,
    Kind::Statedump,
    Kind::SysExit,
];

/// Handler numbers from here on are system call entries: `handler - SYSCALL_BASE`
/// indexes the provider's table of syscall names.
const SYSCALL_BASE: u32 = 1 << 16;

/// The kernel state provider.
pub struct KernelStateProvider {
    layout: &'static Layout,
    q: KernelQuarks,
    syscall_names: Vec<StateValue>,
    skipped: crate::SkippedEvents,
    machines_warning: Option<String>,
    /// Whether the trace has a `sched_switch` class (refused otherwise).
    seen_switch: bool,
    /// Set by [`KernelStateProvider::with_layout`]: the trace does not choose.
    fixed_layout: bool,
}

impl Default for KernelStateProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl KernelStateProvider {
    pub fn new() -> Self {
        KernelStateProvider {
            layout: &Layout::LTTNG,
            q: KernelQuarks::default(),
            syscall_names: Vec::new(),
            skipped: Default::default(),
            machines_warning: None,
            seen_switch: false,
            fixed_layout: false,
        }
    }

    /// With a fixed layout instead of the one the trace's environment names.
    pub fn with_layout(layout: &'static Layout) -> Self {
        KernelStateProvider {
            layout,
            fixed_layout: true,
            ..Self::new()
        }
    }

    /// The layout in use (after [`StateProvider::check_trace`]).
    pub fn layout(&self) -> &'static Layout {
        self.layout
    }

    fn kind_of(&self, name: &str) -> Option<Kind> {
        let l = self.layout;
        let kind = if name == l.irq_handler_entry {
            Kind::IrqEntry
        } else if name == l.irq_handler_exit {
            Kind::IrqExit
        } else if name == l.softirq_entry {
            Kind::SoftIrqEntry
        } else if name == l.softirq_exit {
            Kind::SoftIrqExit
        } else if name == l.softirq_raise {
            Kind::SoftIrqRaise
        } else if name == l.sched_switch {
            Kind::SchedSwitch
        } else if name == l.sched_pi_setprio {
            Kind::PiSetprio
        } else if name == l.sched_process_fork {
            Kind::Fork
        } else if name == l.sched_process_free {
            Kind::Free
        } else if name == l.sched_waking || l.sched_wakeup.contains(&name) {
            Kind::Wakeup
        } else if name == l.sched_migrate_task {
            Kind::Migrate
        } else if name == l.cpu_frequency {
            Kind::CpuFrequency
        } else if l.ipi_entries.contains(&name) {
            Kind::IpiEntry
        } else if l.ipi_exits.contains(&name) {
            Kind::IpiExit
        } else if l.statedump_process_state == Some(name) {
            Kind::Statedump
        } else {
            return None;
        };
        Some(kind)
    }

    fn fields_of(&self, kind: Kind) -> Vec<&'static str> {
        let l = self.layout;
        match kind {
            Kind::IrqEntry => vec![l.field_irq, l.field_name],
            Kind::IrqExit => vec![l.field_irq],
            Kind::SoftIrqEntry | Kind::SoftIrqExit | Kind::SoftIrqRaise => vec![l.field_vec],
            Kind::SchedSwitch => vec![
                l.field_prev_comm,
                l.field_prev_tid,
                l.field_prev_state,
                l.field_prev_prio,
                l.field_next_comm,
                l.field_next_tid,
                l.field_next_prio,
            ],
            Kind::PiSetprio => vec![l.field_tid, l.field_new_prio],
            Kind::Fork => vec![
                l.field_child_comm,
                l.field_parent_tid,
                l.field_child_tid,
                l.field_child_pid,
            ],
            Kind::Free => vec![l.field_tid],
            Kind::Wakeup => vec![l.field_tid, l.field_prio, l.field_target_cpu],
            Kind::Migrate => vec![l.field_tid, l.field_dest_cpu],
            Kind::CpuFrequency => vec!["cpu_id", "state"],
            Kind::IpiEntry | Kind::IpiExit => vec![l.field_ipi_vector],
            // The statedump handler reads fixed field names in every layout.
            Kind::Statedump => vec!["tid", "pid", "ppid", "status", "name", "cpu"],
            Kind::SysExit => vec![],
        }
    }
}

/// Status of the thread leaving the CPU, from `prev_state` (`ProcessStatus.getStatusFromKernelState`).
fn status_from_prev_state(prev_state: i64) -> StateValue {
    let s = (prev_state & 1023) as i32;
    if s == 0 {
        StateValue::Int(status::WAIT_FOR_CPU)
    } else if s & 3 != 0 {
        StateValue::Int(status::WAIT_BLOCKED)
    } else if s & 64 != 0 {
        StateValue::Null
    } else {
        StateValue::Int(status::WAIT_UNKNOWN)
    }
}

/// Status from a statedump `status` (`ProcessStatus.getStatusFromStatedump`).
fn status_from_statedump(status: i64) -> StateValue {
    match status as i32 {
        1 => StateValue::Int(status::WAIT_FORK),
        2 => StateValue::Int(status::WAIT_FOR_CPU),
        5 => StateValue::Int(status::WAIT_UNKNOWN),
        6 => StateValue::Int(status::RUN_USERMODE),
        7 => StateValue::Null,
        _ => StateValue::Int(status::UNKNOWN),
    }
}

type Ss<'a> = &'a mut dyn StateSystemBuilder;

impl StateProvider for KernelStateProvider {
    fn id(&self) -> &'static str {
        KERNEL_ANALYSIS_ID
    }

    fn version(&self) -> i32 {
        KERNEL_PROVIDER_VERSION
    }

    fn check_trace(&mut self, trace: &TraceInfo) -> Result<(), ProviderError> {
        self.machines_warning = crate::several_machines_warning(trace);
        if !trace.domain.is_empty() && trace.domain != "kernel" {
            return Err(ProviderError::Unsupported {
                analysis: KERNEL_ANALYSIS_ID.into(),
                what: format!(
                    "trace {:?} is in the {:?} domain; the kernel analysis needs a kernel trace",
                    trace.name, trace.domain
                ),
            });
        }
        if !self.fixed_layout {
            self.layout = Layout::for_trace(trace);
        }
        Ok(())
    }

    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        if let Some(kind) = self.kind_of(event_name) {
            if kind == Kind::SchedSwitch {
                self.seen_switch = true;
            }
            return Some(Subscription {
                handler: kind as u32,
                fields: self.fields_of(kind),
            });
        }
        let l = self.layout;
        if event_name.starts_with(l.syscall_exit_prefix)
            || event_name.starts_with(l.compat_syscall_exit_prefix)
        {
            return Some(Subscription {
                handler: Kind::SysExit as u32,
                fields: vec![],
            });
        }
        let name = if let Some(n) = event_name.strip_prefix(l.compat_syscall_entry_prefix) {
            n
        } else {
            event_name.strip_prefix(l.syscall_entry_prefix)?
        };
        let handler = SYSCALL_BASE + self.syscall_names.len() as u32;
        self.syscall_names.push(StateValue::String(Arc::from(name)));
        Some(Subscription {
            handler,
            fields: vec![],
        })
    }

    fn check_subscriptions(&self, missing: &[(String, &'static str)]) -> Result<(), ProviderError> {
        let unsupported = |what: String| ProviderError::Unsupported {
            analysis: KERNEL_ANALYSIS_ID.into(),
            what,
        };
        if !self.seen_switch {
            return Err(unsupported(format!(
                "the trace has no {:?} event (layout {}): not a kernel trace with scheduling events",
                self.layout.sched_switch, self.layout.label
            )));
        }
        let l = self.layout;
        for (event, field) in missing {
            if event == l.sched_switch
                && [l.field_prev_tid, l.field_prev_state, l.field_next_tid].contains(field)
            {
                return Err(unsupported(format!(
                    "event {event:?} has no field {field:?}, which the kernel analysis needs"
                )));
            }
        }
        Ok(())
    }

    fn handle(&mut self, handler: u32, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let result = self.handle_event(handler, ev, ss);
        self.skipped.absorb(result, ev.timestamp())
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = self.skipped.warnings();
        w.extend(self.machines_warning.clone());
        w
    }
}

impl KernelStateProvider {
    fn handle_event(&mut self, handler: u32, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        if handler >= SYSCALL_BASE {
            let name = self.syscall_names[(handler - SYSCALL_BASE) as usize].clone();
            return self.sys_entry(ev, ss, name);
        }
        match KINDS.get(handler as usize) {
            Some(Kind::IrqEntry) => self.irq_entry(ev, ss),
            Some(Kind::IrqExit) => self.irq_exit(ev, ss),
            Some(Kind::SoftIrqEntry) => self.softirq_entry(ev, ss),
            Some(Kind::SoftIrqExit) => self.softirq_exit(ev, ss),
            Some(Kind::SoftIrqRaise) => self.softirq_raise(ev, ss),
            Some(Kind::SchedSwitch) => self.sched_switch(ev, ss),
            Some(Kind::PiSetprio) => self.pi_setprio(ev, ss),
            Some(Kind::Fork) => self.fork(ev, ss),
            Some(Kind::Free) => self.free(ev, ss),
            Some(Kind::Wakeup) => self.wakeup(ev, ss),
            Some(Kind::Migrate) => self.migrate(ev, ss),
            Some(Kind::CpuFrequency) => self.cpu_frequency(ev, ss),
            Some(Kind::IpiEntry) => self.ipi_entry(ev, ss),
            Some(Kind::IpiExit) => self.ipi_exit(ev, ss),
            Some(Kind::Statedump) => self.statedump(ev, ss),
            Some(Kind::SysExit) => self.sys_exit(ev, ss),
            None => Ok(()),
        }
    }
}

const RUN_USERMODE: StateValue = StateValue::Int(status::RUN_USERMODE);
const RUN_SYSCALL: StateValue = StateValue::Int(status::RUN_SYSCALL);
const WAIT_FOR_CPU: StateValue = StateValue::Int(status::WAIT_FOR_CPU);

impl KernelStateProvider {
    /// `KernelEventHandlerUtils.setProcessToRunning`.
    fn set_to_running(&mut self, t: i64, thread: u32, ss: Ss<'_>) -> sht::Result<()> {
        let sc = self.q.thread_field(ss, thread, ThreadField::SystemCall)?;
        let v = if ss.query_ongoing(sc)?.is_null() {
            RUN_USERMODE
        } else {
            RUN_SYSCALL
        };
        let node = self.q.thread_node(thread);
        ss.modify(t, v, node)
    }

    /// `KernelEventHandlerUtils.updateCpuStatus`: IRQ, else soft IRQ, else what
    /// the current thread does (from the shadow of what was written).
    fn update_cpu_status(&mut self, t: i64, cpu: u32, ss: Ss<'_>) -> sht::Result<()> {
        let c = self.q.cpu(ss, cpu)?;
        let node = self.q.cpu_node(c);
        // Trace Compass creates these three while looking (in this order).
        self.q.cpu_irqs(ss, c)?;
        self.q.cpu_soft_irqs(ss, c)?;
        self.q.cpu_current_thread(ss, c)?;
        let (irq, soft, _) = self.q.cpu_irq_summary(c);
        let value = if irq {
            StateValue::Int(cpu_status::IRQ)
        } else if soft {
            StateValue::Int(cpu_status::SOFTIRQ)
        } else {
            match self.q.cpu_current(c) {
                None => StateValue::Null,
                Some((0, _)) => StateValue::Int(cpu_status::IDLE),
                // `Threads/<tid>/System_call`: for tid != 0 the thread's own entry.
                Some((_, th)) => {
                    let sc = self.q.thread_field(ss, th, ThreadField::SystemCall)?;
                    if ss.query_ongoing(sc)?.is_null() {
                        StateValue::Int(cpu_status::RUN_USERMODE)
                    } else {
                        StateValue::Int(cpu_status::RUN_SYSCALL)
                    }
                }
            }
        };
        ss.modify(t, value, node)
    }

    /// `getCurrentThreadNode`: the thread entry running on `cpu` (`-1` if unknown).
    fn current_thread(&mut self, cpu: u32, ss: Ss<'_>) -> sht::Result<u32> {
        let c = self.q.cpu(ss, cpu)?;
        if let Some((_, th)) = self.q.cpu_current(c) {
            // Everything the slow path would create exists already.
            return Ok(th);
        }
        self.q.cpu_current_thread(ss, c)?;
        Ok(self
            .q
            .thread(ss, -1, Some(cpu))?
            .expect("tid -1 has a name"))
    }

    fn sys_entry(&mut self, ev: &dyn EventFields, ss: Ss<'_>, name: StateValue) -> sht::Result<()> {
        let Some(cpu) = ev.cpu() else { return Ok(()) };
        let t = ev.timestamp();
        let th = self.current_thread(cpu, ss)?;
        let sc = self.q.thread_field(ss, th, ThreadField::SystemCall)?;
        ss.modify(t, name, sc)?;
        ss.modify_int(t, status::RUN_SYSCALL, self.q.thread_node(th))?;
        let c = self.q.cpu(ss, cpu)?;
        ss.modify_int(t, cpu_status::RUN_SYSCALL, self.q.cpu_node(c))
    }

    fn sys_exit(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let Some(cpu) = ev.cpu() else { return Ok(()) };
        let t = ev.timestamp();
        let th = self.current_thread(cpu, ss)?;
        let sc = self.q.thread_field(ss, th, ThreadField::SystemCall)?;
        ss.modify(t, StateValue::Null, sc)?;
        ss.modify_int(t, status::RUN_USERMODE, self.q.thread_node(th))?;
        let c = self.q.cpu(ss, cpu)?;
        ss.modify_int(t, cpu_status::RUN_USERMODE, self.q.cpu_node(c))
    }

    fn irq_entry(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let Some(cpu) = ev.cpu() else { return Ok(()) };
        let (Some(irq), Some(name)) = (ev.int(0), ev.string(1)) else {
            return Ok(());
        };
        let t = ev.timestamp();
        let c = self.q.cpu(ss, cpu)?;
        // Seen before: both attributes exist, nothing to format or look up by path.
        let cached = self.q.cached_hw_irq(c, irq as i32, name);
        let mut label = String::new();
        let q = match cached {
            Some((q, _)) => q,
            None => {
                label = format!("{}/{}", irq as i32, name);
                self.q.cpu_hw_irq(ss, c, irq as i32, &label)?
            }
        };
        ss.modify_int(t, cpu as i32, q)?;
        self.q.note_irq_value(c, q, false, Some(cpu as i32));
        let th = self.current_thread(cpu, ss)?;
        ss.modify_int(t, status::INTERRUPTED, self.q.thread_node(th))?;
        ss.modify_int(t, cpu_status::IRQ, self.q.cpu_node(c))?;
        let agg = match cached {
            Some((_, agg)) => agg,
            None => {
                let root = self.q.irqs_root(ss)?;
                let agg = ss.quark_relative_and_add(root, &[&label])?;
                self.q.cache_hw_irq(c, irq as i32, name, q, agg);
                agg
            }
        };
        ss.modify_int(t, cpu as i32, agg)
    }

    fn irq_exit(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let Some(cpu) = ev.cpu() else { return Ok(()) };
        let th = self.current_thread(cpu, ss)?;
        let Some(irq) = ev.int(0) else { return Ok(()) };
        let irq = irq as i32;
        let c = self.q.cpu(ss, cpu)?;
        self.q.cpu_irqs(ss, c)?;
        // The first `<irq>/...` child (creation order) still active.
        let found = self
            .q
            .cpu_hw_irqs(c, irq)
            .find(|&q| self.q.irq_value(q).is_some());
        let Some(q) = found else { return Ok(()) };
        let t = ev.timestamp();
        ss.modify(t, StateValue::Null, q)?;
        self.q.note_irq_value(c, q, false, None);
        self.set_to_running(t, th, ss)?;
        self.update_cpu_status(t, cpu, ss)?;
        let agg = match self.q.irq_aggregate(q) {
            Some(agg) => agg,
            None => {
                // The aggregate reuses the per-CPU attribute's own name object.
                let name: Arc<str> = Arc::from(ss.attributes().name(q)?);
                let root = self.q.irqs_root(ss)?;
                let agg = ss.quark_relative_and_add(root, &[&name])?;
                self.q.set_irq_aggregate(q, agg);
                agg
            }
        };
        let value = self.cpu_for_irq(irq);
        ss.modify(t, value, agg)
    }

    /// `getCpuForIrq`: the first CPU (in creation order) whose `IRQs/<irq>` is active.
    fn cpu_for_irq(&self, irq: i32) -> StateValue {
        for (cpu, q) in self.q.ipi_quarks(irq) {
            if self.q.irq_value(q).is_some() {
                return StateValue::Int(cpu);
            }
        }
        StateValue::Null
    }

    fn ipi_entry(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let Some(cpu) = ev.cpu() else { return Ok(()) };
        let Some(vector) = ev.int(0) else {
            return Ok(());
        };
        let vector = vector as i32;
        let t = ev.timestamp();
        let c = self.q.cpu(ss, cpu)?;
        let q = self.q.cpu_ipi(ss, c, vector)?;
        ss.modify_int(t, cpu as i32, q)?;
        self.q.note_irq_value(c, q, false, Some(cpu as i32));
        let th = self.current_thread(cpu, ss)?;
        ss.modify_int(t, status::INTERRUPTED, self.q.thread_node(th))?;
        ss.modify_int(t, cpu_status::IRQ, self.q.cpu_node(c))?;
        let agg = self.ipi_aggregate(q, vector, ss)?;
        ss.modify_int(t, cpu as i32, agg)
    }

    fn ipi_exit(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let Some(cpu) = ev.cpu() else { return Ok(()) };
        let th = self.current_thread(cpu, ss)?;
        let Some(vector) = ev.int(0) else {
            return Ok(());
        };
        let vector = vector as i32;
        let t = ev.timestamp();
        let c = self.q.cpu(ss, cpu)?;
        let q = self.q.cpu_ipi(ss, c, vector)?;
        ss.modify(t, StateValue::Null, q)?;
        self.q.note_irq_value(c, q, false, None);
        self.set_to_running(t, th, ss)?;
        self.update_cpu_status(t, cpu, ss)?;
        let agg = self.ipi_aggregate(q, vector, ss)?;
        let value = self.cpu_for_irq(vector);
        ss.modify(t, value, agg)
    }

    /// `IRQs/<vector>`, the aggregate of the per-CPU IPI attribute `q`, created if missing.
    fn ipi_aggregate(&mut self, q: sht::Quark, vector: i32, ss: Ss<'_>) -> sht::Result<sht::Quark> {
        if let Some(agg) = self.q.irq_aggregate(q) {
            return Ok(agg);
        }
        let root = self.q.irqs_root(ss)?;
        let agg = ss.quark_relative_and_add(root, &[&vector.to_string()])?;
        self.q.set_irq_aggregate(q, agg);
        Ok(agg)
    }

    /// `getAggregate` over `CPUs/*/Soft_IRQs/<vec>`: the largest ongoing value.
    fn soft_irq_aggregate(&self, vec: i32) -> StateValue {
        // Null counts as -1 (`unboxInt`).
        let best = self
            .q
            .soft_irq_quarks(vec)
            .iter()
            .map(|&q| self.q.irq_value(q).unwrap_or(-1))
            .max()
            .unwrap_or(-1);
        if best > -1 {
            StateValue::Int(best)
        } else {
            StateValue::Null
        }
    }

    fn write_soft_irq_aggregate(&mut self, t: i64, vec: i32, ss: Ss<'_>) -> sht::Result<()> {
        let agg = self.q.soft_irq_aggregate(ss, vec)?;
        let value = self.soft_irq_aggregate(vec);
        ss.modify(t, value, agg)
    }

    fn softirq_entry(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let Some(cpu) = ev.cpu() else { return Ok(()) };
        let t = ev.timestamp();
        let Some(vec) = ev.int(0) else { return Ok(()) };
        let vec = vec as i32;
        let th = self.current_thread(cpu, ss)?;
        let c = self.q.cpu(ss, cpu)?;
        let q = self.q.cpu_soft_irq(ss, c, vec)?;
        ss.modify_int(t, cpu_status::SOFTIRQ, q)?;
        self.q.note_irq_value(c, q, true, Some(cpu_status::SOFTIRQ));
        self.write_soft_irq_aggregate(t, vec, ss)?;
        ss.modify_int(t, status::INTERRUPTED, self.q.thread_node(th))?;
        self.update_cpu_status(t, cpu, ss)
    }

    fn softirq_exit(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let Some(cpu) = ev.cpu() else { return Ok(()) };
        let Some(vec) = ev.int(0) else { return Ok(()) };
        let vec = vec as i32;
        let th = self.current_thread(cpu, ss)?;
        let c = self.q.cpu(ss, cpu)?;
        let q = self.q.cpu_soft_irq(ss, c, vec)?;
        let t = ev.timestamp();
        let raised = self
            .q
            .irq_value(q)
            .is_some_and(|v| v & cpu_status::SOFT_IRQ_RAISED == cpu_status::SOFT_IRQ_RAISED);
        let value = raised.then_some(cpu_status::SOFT_IRQ_RAISED);
        ss.modify(t, value.map_or(StateValue::Null, StateValue::Int), q)?;
        self.q.note_irq_value(c, q, true, value);
        self.write_soft_irq_aggregate(t, vec, ss)?;
        self.update_cpu_status(t, cpu, ss)?;
        // Back to running only once every soft IRQ of this CPU is null.
        if self.q.cpu_irq_summary(c).2 {
            return Ok(());
        }
        self.set_to_running(t, th, ss)
    }

    fn softirq_raise(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let Some(vec) = ev.int(0) else { return Ok(()) };
        let Some(cpu) = ev.cpu() else { return Ok(()) };
        let vec = vec as i32;
        let t = ev.timestamp();
        let c = self.q.cpu(ss, cpu)?;
        let q = self.q.cpu_soft_irq(ss, c, vec)?;
        let running = self
            .q
            .irq_value(q)
            .is_some_and(|v| v & cpu_status::SOFTIRQ == cpu_status::SOFTIRQ);
        let value = if running {
            cpu_status::SOFT_IRQ_RAISED_RUNNING
        } else {
            cpu_status::SOFT_IRQ_RAISED
        };
        ss.modify_int(t, value, q)?;
        self.q.note_irq_value(c, q, true, Some(value));
        self.write_soft_irq_aggregate(t, vec, ss)
    }

    fn sched_switch(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let Some(cpu) = ev.cpu() else { return Ok(()) };
        let (Some(prev_tid), Some(prev_state), Some(next_tid)) = (ev.int(1), ev.int(2), ev.int(5))
        else {
            return Ok(());
        };
        let (prev_tid, next_tid) = (prev_tid as i32, next_tid as i32);
        let t = ev.timestamp();
        let old = self.q.thread(ss, prev_tid, Some(cpu))?.expect("cpu given");
        let new = self.q.thread(ss, next_tid, Some(cpu))?.expect("cpu given");

        let st = status_from_prev_state(prev_state);
        let stays = st == WAIT_FOR_CPU;
        ss.modify(t, st, self.q.thread_node(old))?;
        let rq = self.q.thread_field(ss, old, ThreadField::CurrentCpuRq)?;
        let v = if stays {
            StateValue::Int(cpu as i32)
        } else {
            StateValue::Null
        };
        ss.modify(t, v, rq)?;

        self.set_to_running(t, new, ss)?;
        let rq = self.q.thread_field(ss, new, ThreadField::CurrentCpuRq)?;
        ss.modify_int(t, cpu as i32, rq)?;

        if let Some(comm) = ev.string(0) {
            self.set_exec_name(t, old, comm, ss)?;
        }
        if let Some(comm) = ev.string(4) {
            self.set_exec_name(t, new, comm, ss)?;
        }
        if let Some(prio) = ev.int(3) {
            let q = self.q.thread_field(ss, old, ThreadField::Prio)?;
            ss.modify_int(t, prio as i32, q)?;
        }
        if let Some(prio) = ev.int(6) {
            let q = self.q.thread_field(ss, new, ThreadField::Prio)?;
            ss.modify_int(t, prio as i32, q)?;
        }

        let c = self.q.cpu(ss, cpu)?;
        let ct = self.q.cpu_current_thread(ss, c)?;
        ss.modify_int(t, next_tid, ct)?;
        self.q.set_cpu_current(c, next_tid, new);

        if next_tid > 0 {
            let sc = self.q.thread_field(ss, new, ThreadField::SystemCall)?;
            let v = if ss.query_ongoing(sc)?.is_null() {
                cpu_status::RUN_USERMODE
            } else {
                cpu_status::RUN_SYSCALL
            };
            ss.modify_int(t, v, self.q.cpu_node(c))
        } else {
            self.update_cpu_status(t, cpu, ss)
        }
    }

    /// Writes `Exec_name`, reusing the thread's last name object when the text is
    /// the same (no allocation per context switch).
    fn set_exec_name(&mut self, t: i64, thread: u32, comm: &str, ss: Ss<'_>) -> sht::Result<()> {
        let q = self.q.thread_field(ss, thread, ThreadField::ExecName)?;
        let value = self.q.exec_name_value(thread, comm);
        ss.modify(t, value, q)
    }

    fn pi_setprio(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let (Some(tid), Some(prio)) = (ev.int(0), ev.int(1)) else {
            return Ok(());
        };
        let Some(th) = self.q.thread(ss, tid as i32, ev.cpu())? else {
            return Ok(());
        };
        let q = self.q.thread_field(ss, th, ThreadField::Prio)?;
        ss.modify(ev.timestamp(), StateValue::Int(prio as i32), q)
    }

    fn fork(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let cpu = ev.cpu();
        let (Some(comm), Some(parent), Some(child)) = (ev.string(0), ev.int(1), ev.int(2)) else {
            return Ok(());
        };
        let (parent, child) = (parent as i32, child as i32);
        let child_pid = ev.int(3);
        if (parent == 0 || child == 0) && cpu.is_none() {
            return Ok(());
        }
        let p = self.q.thread(ss, parent, cpu)?.expect("checked");
        let c = self.q.thread(ss, child, cpu)?.expect("checked");
        let t = ev.timestamp();
        let q = self.q.thread_field(ss, c, ThreadField::Ppid)?;
        ss.modify_int(t, parent, q)?;
        if let Some(pid) = child_pid {
            if pid as i32 != child {
                let q = self.q.thread_field(ss, c, ThreadField::Pid)?;
                ss.modify_int(t, pid as i32, q)?;
            }
        }
        self.set_exec_name(t, c, comm, ss)?;
        ss.modify_int(t, status::WAIT_FOR_CPU, self.q.thread_node(c))?;
        if let Some(prq) = self.q.existing_thread_field(p, ThreadField::CurrentCpuRq) {
            let v = ss.query_ongoing(prq)?;
            let q = self.q.thread_field(ss, c, ThreadField::CurrentCpuRq)?;
            ss.modify(t, v, q)?;
        }
        let psc = self.q.thread_field(ss, p, ThreadField::SystemCall)?;
        let v = ss.query_ongoing(psc)?;
        if !v.is_null() {
            let q = self.q.thread_field(ss, c, ThreadField::SystemCall)?;
            ss.modify(t, v, q)?;
        }
        Ok(())
    }

    fn free(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let Some(tid) = ev.int(0) else { return Ok(()) };
        let Some(th) = self.q.thread(ss, tid as i32, ev.cpu())? else {
            return Ok(());
        };
        ss.remove(ev.timestamp(), self.q.thread_node(th))
    }

    fn wakeup(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let Some(tid) = ev.int(0) else { return Ok(()) };
        let prio = ev.int(1);
        let (Some(cpu), Some(target)) = (ev.cpu(), ev.int(2)) else {
            return Ok(());
        };
        let t = ev.timestamp();
        let th = self
            .q
            .thread(ss, tid as i32, Some(cpu))?
            .expect("cpu given");
        let node = self.q.thread_node(th);
        let cur = ss.query_ongoing(node)?;
        if cur != RUN_USERMODE && cur != RUN_SYSCALL {
            ss.modify_int(t, status::WAIT_FOR_CPU, node)?;
        }
        let q = self.q.thread_field(ss, th, ThreadField::CurrentCpuRq)?;
        ss.modify_int(t, target as i32, q)?;
        if let Some(prio) = prio {
            let q = self.q.thread_field(ss, th, ThreadField::Prio)?;
            ss.modify_int(t, prio as i32, q)?;
        }
        Ok(())
    }

    fn migrate(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let (Some(tid), Some(dest)) = (ev.int(0), ev.int(1)) else {
            return Ok(());
        };
        // Swapper threads do not migrate.
        let Some(th) = self.q.thread(ss, tid as i32, None)? else {
            return Ok(());
        };
        let t = ev.timestamp();
        ss.modify_int(t, status::WAIT_FOR_CPU, self.q.thread_node(th))?;
        let q = self.q.thread_field(ss, th, ThreadField::CurrentCpuRq)?;
        ss.modify_int(t, dest as i32, q)
    }

    fn statedump(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let (Some(tid), Some(pid), Some(ppid), Some(status), Some(name)) =
            (ev.int(0), ev.int(1), ev.int(2), ev.int(3), ev.string(4))
        else {
            return Ok(());
        };
        let (tid, pid, ppid) = (tid as i32, pid as i32, ppid as i32);
        let cpu_field = ev.int(5);
        let Some(th) = self.q.thread(ss, tid, ev.cpu())? else {
            return Ok(());
        };
        let t = ev.timestamp();
        let q = self.q.thread_field(ss, th, ThreadField::ExecName)?;
        if ss.query_ongoing(q)?.is_null() {
            ss.modify(t, StateValue::String(Arc::from(name)), q)?;
        }
        let q = self.q.thread_field(ss, th, ThreadField::Ppid)?;
        if ss.query_ongoing(q)?.is_null() {
            ss.modify_int(t, ppid, q)?;
        }
        if tid != pid {
            let q = self.q.thread_field(ss, th, ThreadField::Pid)?;
            if ss.query_ongoing(q)?.is_null() {
                ss.modify_int(t, pid, q)?;
            }
        }
        let node = self.q.thread_node(th);
        if ss.query_ongoing(node)?.is_null() {
            ss.modify(t, status_from_statedump(status), node)?;
            if status == 2 {
                if let Some(c) = cpu_field {
                    let q = self.q.thread_field(ss, th, ThreadField::CurrentCpuRq)?;
                    ss.modify_int(t, c as i32, q)?;
                }
            }
        }
        Ok(())
    }

    fn cpu_frequency(&mut self, ev: &dyn EventFields, ss: Ss<'_>) -> sht::Result<()> {
        let (Some(cpu_id), Some(state)) = (ev.int(0), ev.int(1)) else {
            return Ok(());
        };
        let f = state.wrapping_mul(1000);
        let t = ev.timestamp();
        let c = self.q.cpu(ss, cpu_id as i32 as u32)?;
        let q = self.q.cpu_frequency(ss, c, 0)?;
        ss.modify(t, StateValue::Long(f), q)?;
        let q = self.q.cpu_frequency(ss, c, 1)?;
        let min = match ss.query_ongoing(q)? {
            StateValue::Long(cur) => cur.min(f),
            _ => f,
        };
        ss.update_ongoing(StateValue::Long(min), q)?;
        let q = self.q.cpu_frequency(ss, c, 2)?;
        let max = match ss.query_ongoing(q)? {
            StateValue::Long(cur) => cur.max(f),
            _ => f,
        };
        ss.update_ongoing(StateValue::Long(max), q)
    }
}

#[cfg(test)]
mod tests;
