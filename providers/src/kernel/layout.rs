//! Event layouts: the event and field names of the kernel analysis, which depend on
//! the tracer and its version (Trace Compass `IKernelAnalysisEventLayout` and its
//! LTTng 2.0, 2.6, 2.7, 2.8, 2.9 and perf implementations).

use crate::TraceInfo;

/// Names the kernel provider looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Short label (`lttng`, `lttng2.6`, ..., `perf`, `default`).
    pub label: &'static str,
    pub irq_handler_entry: &'static str,
    pub irq_handler_exit: &'static str,
    pub softirq_entry: &'static str,
    pub softirq_exit: &'static str,
    pub softirq_raise: &'static str,
    pub sched_switch: &'static str,
    pub sched_pi_setprio: &'static str,
    pub sched_wakeup: &'static [&'static str],
    pub sched_waking: &'static str,
    pub sched_process_fork: &'static str,
    pub sched_process_exit: &'static str,
    pub sched_process_free: &'static str,
    pub sched_migrate_task: &'static str,
    pub cpu_frequency: &'static str,
    pub statedump_process_state: Option<&'static str>,
    pub ipi_entries: &'static [&'static str],
    pub ipi_exits: &'static [&'static str],
    pub syscall_entry_prefix: &'static str,
    pub compat_syscall_entry_prefix: &'static str,
    pub syscall_exit_prefix: &'static str,
    pub compat_syscall_exit_prefix: &'static str,
    pub field_irq: &'static str,
    pub field_name: &'static str,
    pub field_vec: &'static str,
    pub field_ipi_vector: &'static str,
    pub field_tid: &'static str,
    pub field_prio: &'static str,
    pub field_new_prio: &'static str,
    pub field_target_cpu: &'static str,
    pub field_dest_cpu: &'static str,
    pub field_prev_comm: &'static str,
    pub field_prev_tid: &'static str,
    pub field_prev_state: &'static str,
    pub field_prev_prio: &'static str,
    pub field_next_comm: &'static str,
    pub field_next_tid: &'static str,
    pub field_next_prio: &'static str,
    pub field_parent_tid: &'static str,
    pub field_child_comm: &'static str,
    pub field_child_tid: &'static str,
    pub field_child_pid: &'static str,
}

const WAKEUPS: &[&str] = &["sched_wakeup", "sched_wakeup_new"];

const IPI_ENTRIES: &[&str] = &[
    "x86_irq_vectors_local_timer_entry",
    "x86_irq_vectors_reschedule_entry",
    "x86_irq_vectors_spurious_apic_entry",
    "x86_irq_vectors_error_apic_entry",
    "x86_irq_vectors_ipi_entry",
    "x86_irq_vectors_irq_work_entry",
    "x86_irq_vectors_call_function_entry",
    "x86_irq_vectors_call_function_single_entry",
    "x86_irq_vectors_threshold_apic_entry",
    "x86_irq_vectors_deferred_error_apic_entry",
    "x86_irq_vectors_thermal_apic_entry",
];

const IPI_EXITS: &[&str] = &[
    "x86_irq_vectors_local_timer_exit",
    "x86_irq_vectors_reschedule_exit",
    "x86_irq_vectors_spurious_apic_exit",
    "x86_irq_vectors_error_apic_exit",
    "x86_irq_vectors_ipi_exit",
    "x86_irq_vectors_irq_work_exit",
    "x86_irq_vectors_call_function_exit",
    "x86_irq_vectors_call_function_single_exit",
    "x86_irq_vectors_threshold_apic_exit",
    "x86_irq_vectors_deferred_error_apic_exit",
    "x86_irq_vectors_thermal_apic_exit",
];

impl Layout {
    /// LTTng 2.0 to 2.5 (`LttngEventLayout`); also what the XML stub kernel trace
    /// uses (Trace Compass's `DefaultEventLayout` has the same names for every
    /// event this provider handles).
    pub const LTTNG: Layout = Layout {
        label: "lttng",
        irq_handler_entry: "irq_handler_entry",
        irq_handler_exit: "irq_handler_exit",
        softirq_entry: "softirq_entry",
        softirq_exit: "softirq_exit",
        softirq_raise: "softirq_raise",
        sched_switch: "sched_switch",
        sched_pi_setprio: "sched_pi_setprio",
        sched_wakeup: WAKEUPS,
        sched_waking: "sched_waking",
        sched_process_fork: "sched_process_fork",
        sched_process_exit: "sched_process_exit",
        sched_process_free: "sched_process_free",
        sched_migrate_task: "sched_migrate_task",
        cpu_frequency: "power_cpu_frequency",
        statedump_process_state: Some("lttng_statedump_process_state"),
        ipi_entries: &[],
        ipi_exits: &[],
        syscall_entry_prefix: "sys_",
        compat_syscall_entry_prefix: "compat_sys_",
        syscall_exit_prefix: "exit_syscall",
        compat_syscall_exit_prefix: "exit_syscall",
        field_irq: "irq",
        field_name: "name",
        field_vec: "vec",
        field_ipi_vector: "vector",
        field_tid: "tid",
        field_prio: "prio",
        field_new_prio: "newprio",
        field_target_cpu: "target_cpu",
        field_dest_cpu: "dest_cpu",
        field_prev_comm: "prev_comm",
        field_prev_tid: "prev_tid",
        field_prev_state: "prev_state",
        field_prev_prio: "prev_prio",
        field_next_comm: "next_comm",
        field_next_tid: "next_tid",
        field_next_prio: "next_prio",
        field_parent_tid: "parent_tid",
        field_child_comm: "child_comm",
        field_child_tid: "child_tid",
        field_child_pid: "child_pid",
    };

    /// LTTng 2.6: new system call event names.
    pub const LTTNG_2_6: Layout = Layout {
        label: "lttng2.6",
        syscall_entry_prefix: "syscall_entry_",
        compat_syscall_entry_prefix: "compat_syscall_entry_",
        syscall_exit_prefix: "syscall_exit_",
        compat_syscall_exit_prefix: "compat_syscall_exit_",
        ..Layout::LTTNG
    };

    /// LTTng 2.7: `irq_softirq_*` names and the x86 IRQ vector (IPI) events.
    pub const LTTNG_2_7: Layout = Layout {
        label: "lttng2.7",
        softirq_entry: "irq_softirq_entry",
        softirq_exit: "irq_softirq_exit",
        softirq_raise: "irq_softirq_raise",
        ipi_entries: IPI_ENTRIES,
        ipi_exits: IPI_EXITS,
        ..Layout::LTTNG_2_6
    };

    /// LTTng 2.8 (`sched_waking`, which every layout already handles).
    pub const LTTNG_2_8: Layout = Layout {
        label: "lttng2.8",
        ..Layout::LTTNG_2_7
    };

    /// LTTng 2.9 (differences only in network fields, unused here).
    pub const LTTNG_2_9: Layout = Layout {
        label: "lttng2.9",
        ..Layout::LTTNG_2_8
    };

    /// `perf` CTF traces (`PerfEventLayout`).
    pub const PERF: Layout = Layout {
        label: "perf",
        irq_handler_entry: "irq:irq_handler_entry",
        irq_handler_exit: "irq:irq_handler_exit",
        softirq_entry: "irq:softirq_entry",
        softirq_exit: "irq:softirq_exit",
        softirq_raise: "irq:softirq_raise",
        sched_switch: "sched:sched_switch",
        sched_pi_setprio: "sched:sched_pi_setprio",
        sched_wakeup: &["sched:sched_wakeup", "sched:sched_wakeup_new"],
        sched_waking: "sched:sched_waking",
        sched_process_fork: "sched:sched_process_fork",
        sched_process_exit: "sched:sched_process_exit",
        sched_process_free: "sched:sched_process_free",
        statedump_process_state: None,
        syscall_entry_prefix: "raw_syscalls:sys_enter",
        compat_syscall_entry_prefix: "raw_syscalls:sys_enter",
        syscall_exit_prefix: "raw_syscalls:sys_exit",
        compat_syscall_exit_prefix: "raw_syscalls:sys_exit",
        field_tid: "pid",
        field_prev_tid: "prev_pid",
        field_next_tid: "next_pid",
        field_parent_tid: "parent_pid",
        field_child_tid: "child_pid",
        field_child_pid: "child_pid",
        ..Layout::LTTNG
    };

    /// The layout Trace Compass picks for a trace (`LttngKernelTrace`): from the
    /// CTF environment's `tracer_name`, `tracer_major` and `tracer_minor`; the base
    /// LTTng layout for anything else (old LTTng, unknown tracers, XML stub traces).
    pub fn for_trace(trace: &TraceInfo) -> &'static Layout {
        let unquote = |k: &str| trace.env_str(k).map(|v| v.trim_matches('"').to_string());
        let number = |k: &str| unquote(k).and_then(|v| v.parse::<i32>().ok()).unwrap_or(-1);
        match unquote("tracer_name").as_deref() {
            Some("perf") => &Layout::PERF,
            Some("lttng-modules") if number("tracer_major") >= 2 => match number("tracer_minor") {
                m if m >= 9 => &Layout::LTTNG_2_9,
                8 => &Layout::LTTNG_2_8,
                7 => &Layout::LTTNG_2_7,
                6 => &Layout::LTTNG_2_6,
                _ => &Layout::LTTNG,
            },
            _ => &Layout::LTTNG,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, major: &str, minor: &str) -> TraceInfo {
        let mut t = TraceInfo::default();
        t.env.insert("tracer_name".into(), name.into());
        t.env.insert("tracer_major".into(), major.into());
        t.env.insert("tracer_minor".into(), minor.into());
        t
    }

    #[test]
    fn picks_the_layout_from_the_tracer_version() {
        assert_eq!(
            Layout::for_trace(&info("lttng-modules", "2", "5")).label,
            "lttng"
        );
        assert_eq!(
            Layout::for_trace(&info("lttng-modules", "2", "6")).label,
            "lttng2.6"
        );
        assert_eq!(
            Layout::for_trace(&info("lttng-modules", "2", "7")).label,
            "lttng2.7"
        );
        assert_eq!(
            Layout::for_trace(&info("\"lttng-modules\"", "2", "8")).label,
            "lttng2.8"
        );
        assert_eq!(
            Layout::for_trace(&info("lttng-modules", "2", "13")).label,
            "lttng2.9"
        );
        assert_eq!(
            Layout::for_trace(&info("lttng-modules", "1", "9")).label,
            "lttng"
        );
        assert_eq!(Layout::for_trace(&info("perf", "", "")).label, "perf");
        assert_eq!(Layout::for_trace(&TraceInfo::default()).label, "lttng");
    }
}
