use super::*;
use crate::pipeline::{build, Analysis, BuildOptions, EventSource, Output, PipelineError};
use crate::testsource::TextSource;
use sht::{StateSystem, StateSystemQuerier};

fn run(src: &mut dyn EventSource) -> StateSystem {
    let analyses = vec![Analysis {
        provider: Box::new(KernelStateProvider::new()),
        output: Output::InMemory,
    }];
    let (_, mut systems) = build(src, analyses, &BuildOptions::default()).unwrap();
    systems.remove(0)
}

fn text(events: &str) -> TextSource {
    TextSource::new(events)
}

fn at(ss: &StateSystem, path: &[&str], t: i64) -> StateValue {
    let q = ss
        .quark(path)
        .unwrap_or_else(|_| panic!("no attribute {path:?}"));
    ss.query_single(t, q).unwrap().value
}

/// (start, end, value) of every interval of an attribute.
fn history(ss: &StateSystem, path: &[&str]) -> Vec<(i64, i64, StateValue)> {
    let q = ss.quark(path).unwrap();
    let mut out: Vec<_> = ss
        .query_2d(&[q], ss.start_time(), ss.current_end_time())
        .unwrap()
        .into_iter()
        .map(|i| (i.start, i.end, i.value))
        .collect();
    out.sort_by_key(|i| i.0);
    out
}

fn int(v: i32) -> StateValue {
    StateValue::Int(v)
}

const SWITCH_10_TO_11: &str = r#"10 sched_switch cpu=0 prev_comm="a" prev_tid=10 prev_prio=20 prev_state=1 next_comm="b" next_tid=11 next_prio=21"#;

#[test]
fn sched_switch_sets_threads_cpu_and_names() {
    let mut src = text(&format!(
        "{SWITCH_10_TO_11}\n20 sched_switch cpu=0 prev_tid=11 prev_state=0 next_tid=0\n30 other cpu=0"
    ));
    let ss = run(&mut src);
    assert_eq!(at(&ss, &["Threads", "10"], 15), int(status::WAIT_BLOCKED));
    assert_eq!(at(&ss, &["Threads", "11"], 15), int(status::RUN_USERMODE));
    assert_eq!(at(&ss, &["Threads", "11"], 25), int(status::WAIT_FOR_CPU));
    assert_eq!(at(&ss, &["Threads", "11", "Current_cpu_rq"], 25), int(0));
    assert_eq!(
        at(&ss, &["Threads", "10", "Current_cpu_rq"], 15),
        StateValue::Null
    );
    assert_eq!(
        at(&ss, &["Threads", "10", "Exec_name"], 15),
        StateValue::from("a")
    );
    assert_eq!(at(&ss, &["Threads", "11", "Prio"], 15), int(21));
    assert_eq!(at(&ss, &["CPUs", "0", "Current_thread"], 15), int(11));
    assert_eq!(at(&ss, &["CPUs", "0"], 15), int(cpu_status::RUN_USERMODE));
    // Switching to the idle thread: `Threads/0_0` runs, the CPU is idle.
    assert_eq!(at(&ss, &["Threads", "0_0"], 25), int(status::RUN_USERMODE));
    assert_eq!(at(&ss, &["CPUs", "0"], 25), int(cpu_status::IDLE));
    assert_eq!(
        ss.current_end_time(),
        30,
        "the history ends at the last event"
    );
}

#[test]
fn prev_state_masks_and_maps_like_trace_compass() {
    assert_eq!(status_from_prev_state(0), int(status::WAIT_FOR_CPU));
    assert_eq!(status_from_prev_state(2048), int(status::WAIT_FOR_CPU));
    assert_eq!(status_from_prev_state(1024 | 2), int(status::WAIT_BLOCKED));
    assert_eq!(status_from_prev_state(64), StateValue::Null);
    assert_eq!(status_from_prev_state(4), int(status::WAIT_UNKNOWN));
    assert_eq!(status_from_statedump(2), int(status::WAIT_FOR_CPU));
    assert_eq!(status_from_statedump(7), StateValue::Null);
    assert_eq!(status_from_statedump(42), int(status::UNKNOWN));
}

#[test]
fn syscalls_use_the_layout_prefixes() {
    let events = format!(
        "{SWITCH_10_TO_11}\n12 sys_open cpu=0\n13 exit_syscall cpu=0\n\
         14 syscall_entry_openat cpu=0\n15 compat_sys_read cpu=0\n16 sys_exit cpu=0"
    );
    // Base layout: `sys_exit` is the entry of syscall `exit`; `syscall_entry_*` is ignored.
    let ss = run(&mut text(&events));
    let sc = ["Threads", "11", "System_call"];
    assert_eq!(at(&ss, &sc, 12), StateValue::from("open"));
    assert_eq!(at(&ss, &sc, 13), StateValue::Null);
    assert_eq!(at(&ss, &["CPUs", "0"], 13), int(cpu_status::RUN_USERMODE));
    assert_eq!(at(&ss, &sc, 14), StateValue::Null);
    assert_eq!(at(&ss, &sc, 15), StateValue::from("read"));
    assert_eq!(at(&ss, &sc, 16), StateValue::from("exit"));
    assert_eq!(at(&ss, &["Threads", "11"], 16), int(status::RUN_SYSCALL));
    assert_eq!(at(&ss, &["CPUs", "0"], 16), int(cpu_status::RUN_SYSCALL));

    let events = format!(
        "{SWITCH_10_TO_11}\n12 syscall_entry_openat cpu=0\n13 syscall_exit_openat cpu=0\n\
         14 compat_syscall_entry_read cpu=0\n15 sys_open cpu=0"
    );
    let mut src = text(&events)
        .with_env("tracer_name", "lttng-modules")
        .with_env("tracer_major", "2")
        .with_env("tracer_minor", "6");
    let ss = run(&mut src);
    assert_eq!(at(&ss, &sc, 12), StateValue::from("openat"));
    assert_eq!(at(&ss, &sc, 13), StateValue::Null);
    assert_eq!(at(&ss, &sc, 14), StateValue::from("read"));
    assert_eq!(
        at(&ss, &sc, 15),
        StateValue::from("read"),
        "sys_ is not a 2.6 syscall"
    );
}

#[test]
fn a_syscall_before_any_switch_uses_thread_minus_one() {
    let ss = run(&mut text(&format!("5 sys_open cpu=1\n{SWITCH_10_TO_11}")));
    assert_eq!(
        at(&ss, &["Threads", "-1", "System_call"], 5),
        StateValue::from("open")
    );
}

#[test]
fn irqs_use_number_slash_name_and_the_aggregate_goes_null_at_exit() {
    let events = format!(
        "{SWITCH_10_TO_11}\n20 irq_handler_entry cpu=0 irq=1 name=\"i8042\"\n\
         25 irq_handler_exit cpu=0 irq=1 ret=1\n30 irq_handler_exit cpu=0 irq=1 ret=1"
    );
    let ss = run(&mut text(&events));
    let per_cpu = ["CPUs", "0", "IRQs", "1/i8042"];
    assert_eq!(at(&ss, &per_cpu, 20), int(0));
    assert_eq!(at(&ss, &per_cpu, 25), StateValue::Null);
    assert_eq!(at(&ss, &["CPUs", "0"], 22), int(cpu_status::IRQ));
    assert_eq!(at(&ss, &["CPUs", "0"], 25), int(cpu_status::RUN_USERMODE));
    assert_eq!(at(&ss, &["Threads", "11"], 22), int(status::INTERRUPTED));
    assert_eq!(at(&ss, &["Threads", "11"], 25), int(status::RUN_USERMODE));
    assert_eq!(
        history(&ss, &["IRQs", "1/i8042"]),
        vec![
            (10, 19, StateValue::Null),
            (20, 24, int(0)),
            (25, 30, StateValue::Null)
        ]
    );
}

#[test]
fn ipis_of_lttng_2_7_find_the_cpu_still_in_the_vector() {
    let events = format!(
        "{SWITCH_10_TO_11}\n20 x86_irq_vectors_reschedule_entry cpu=0 vector=253\n\
         21 x86_irq_vectors_reschedule_entry cpu=1 vector=253\n\
         22 x86_irq_vectors_reschedule_exit cpu=0 vector=253\n\
         23 x86_irq_vectors_reschedule_exit cpu=1 vector=253"
    );
    let mut src = text(&events)
        .with_env("tracer_name", "lttng-modules")
        .with_env("tracer_major", "2")
        .with_env("tracer_minor", "8");
    let ss = run(&mut src);
    assert_eq!(at(&ss, &["IRQs", "253"], 21), int(1));
    assert_eq!(at(&ss, &["IRQs", "253"], 22), int(1));
    assert_eq!(at(&ss, &["IRQs", "253"], 23), StateValue::Null);
    assert_eq!(at(&ss, &["CPUs", "1", "IRQs", "253"], 21), int(1));
}

#[test]
fn soft_irqs_raise_run_and_exit() {
    let events = format!(
        "{SWITCH_10_TO_11}\n20 softirq_raise cpu=0 vec=1\n21 softirq_entry cpu=0 vec=1\n\
         22 softirq_raise cpu=0 vec=1\n23 softirq_exit cpu=0 vec=1\n24 softirq_entry cpu=0 vec=1\n\
         25 softirq_exit cpu=0 vec=1"
    );
    let ss = run(&mut text(&events));
    let q = ["CPUs", "0", "Soft_IRQs", "1"];
    assert_eq!(at(&ss, &q, 20), int(cpu_status::SOFT_IRQ_RAISED));
    assert_eq!(at(&ss, &q, 21), int(cpu_status::SOFTIRQ));
    assert_eq!(at(&ss, &q, 22), int(cpu_status::SOFT_IRQ_RAISED_RUNNING));
    assert_eq!(at(&ss, &q, 23), int(cpu_status::SOFT_IRQ_RAISED));
    assert_eq!(at(&ss, &q, 25), StateValue::Null);
    assert_eq!(at(&ss, &["Soft_IRQs", "1"], 22), int(9));
    assert_eq!(at(&ss, &["CPUs", "0"], 21), int(cpu_status::SOFTIRQ));
    // Still raised after the first exit: the thread stays interrupted.
    assert_eq!(at(&ss, &["Threads", "11"], 23), int(status::INTERRUPTED));
    assert_eq!(at(&ss, &["Threads", "11"], 25), int(status::RUN_USERMODE));
    assert_eq!(at(&ss, &["CPUs", "0"], 25), int(cpu_status::RUN_USERMODE));
}

#[test]
fn fork_wakeup_migrate_free_and_priority() {
    let events = format!(
        "{SWITCH_10_TO_11}\n12 sys_clone cpu=0\n\
         13 sched_process_fork cpu=0 parent_tid=11 parent_pid=11 child_comm=\"kid\" child_tid=12 child_pid=11\n\
         14 sched_wakeup_new cpu=0 tid=12 prio=20 target_cpu=1\n\
         15 sched_migrate_task cpu=0 tid=12 dest_cpu=2\n\
         16 sched_pi_setprio cpu=0 tid=12 newprio=5\n\
         17 sched_process_free cpu=0 tid=12"
    );
    let ss = run(&mut text(&events));
    fn kid(f: &str) -> Vec<&str> {
        if f.is_empty() {
            vec!["Threads", "12"]
        } else {
            vec!["Threads", "12", f]
        }
    }
    assert_eq!(at(&ss, &kid("PPID"), 13), int(11));
    assert_eq!(at(&ss, &kid("PID"), 13), int(11));
    assert_eq!(at(&ss, &kid("Exec_name"), 13), StateValue::from("kid"));
    assert_eq!(at(&ss, &kid("System_call"), 13), StateValue::from("clone"));
    assert_eq!(
        at(&ss, &kid("Current_cpu_rq"), 13),
        int(0),
        "copied from the parent"
    );
    assert_eq!(at(&ss, &kid(""), 13), int(status::WAIT_FOR_CPU));
    assert_eq!(at(&ss, &kid("Current_cpu_rq"), 14), int(1));
    assert_eq!(at(&ss, &kid("Prio"), 14), int(20));
    assert_eq!(at(&ss, &kid("Current_cpu_rq"), 15), int(2));
    assert_eq!(at(&ss, &kid("Prio"), 16), int(5));
    for f in ["", "PPID", "Exec_name", "Prio", "Current_cpu_rq"] {
        assert_eq!(at(&ss, &kid(f), 17), StateValue::Null, "{f} after free");
    }
}

#[test]
fn statedump_fills_only_what_is_unknown() {
    let events = format!(
        "{SWITCH_10_TO_11}\n\
         20 lttng_statedump_process_state cpu=0 tid=11 pid=10 ppid=1 status=5 name=\"dump\"\n\
         21 lttng_statedump_process_state cpu=1 tid=40 pid=40 ppid=1 status=2 name=\"w\""
    );
    let ss = run(&mut text(&events));
    assert_eq!(
        at(&ss, &["Threads", "11", "Exec_name"], 20),
        StateValue::from("b")
    );
    assert_eq!(at(&ss, &["Threads", "11"], 20), int(status::RUN_USERMODE));
    assert_eq!(at(&ss, &["Threads", "11", "PPID"], 20), int(1));
    assert_eq!(at(&ss, &["Threads", "11", "PID"], 20), int(10));
    assert!(
        ss.quark(&["Threads", "40", "PID"]).is_err(),
        "a process leader has no PID"
    );
    assert_eq!(at(&ss, &["Threads", "40"], 21), int(status::WAIT_FOR_CPU));
    assert_eq!(at(&ss, &["Threads", "40", "Current_cpu_rq"], 21), int(1));
}

#[test]
fn cpu_frequency_min_and_max_keep_one_interval() {
    let events = format!(
        "{SWITCH_10_TO_11}\n20 power_cpu_frequency cpu=0 cpu_id=3 state=1000\n\
         30 power_cpu_frequency cpu=0 cpu_id=3 state=500\n40 power_cpu_frequency cpu=0 cpu_id=3 state=2000"
    );
    let ss = run(&mut text(&events));
    assert_eq!(
        at(&ss, &["CPUs", "3", "Frequency"], 35),
        StateValue::Long(500_000)
    );
    assert_eq!(
        history(&ss, &["CPUs", "3", "Min frequency"]),
        vec![(10, 40, StateValue::Long(500_000))]
    );
    assert_eq!(
        history(&ss, &["CPUs", "3", "Max frequency"]),
        vec![(10, 40, StateValue::Long(2_000_000))]
    );
}

#[test]
fn events_without_cpu_or_fields_are_skipped() {
    let events = format!(
        "{SWITCH_10_TO_11}\n20 sched_switch prev_tid=11 prev_state=0 next_tid=12\n\
         21 sched_switch cpu=0 prev_tid=11 next_tid=12\n22 irq_handler_entry cpu=0 name=\"x\""
    );
    let ss = run(&mut text(&events));
    assert_eq!(at(&ss, &["CPUs", "0", "Current_thread"], 22), int(11));
    assert!(ss.quark(&["Threads", "12"]).is_err());
    assert!(ss.quark(&["CPUs", "0", "IRQs"]).is_err());
}

#[test]
fn refuses_user_space_traces_and_traces_without_sched_switch() {
    let analyses = || {
        vec![Analysis {
            provider: Box::new(KernelStateProvider::new()),
            output: Output::Null,
        }]
    };
    let mut ust = text(SWITCH_10_TO_11);
    ust.info.domain = "ust".into();
    let err = build(&mut ust, analyses(), &BuildOptions::default())
        .err()
        .expect("the build should fail");
    assert!(matches!(err, PipelineError::Provider(_)), "{err}");
    assert!(err.to_string().contains("kernel trace"), "{err}");

    let mut no_switch = text("1 sys_open cpu=0\n2 exit_syscall cpu=0");
    let err = build(&mut no_switch, analyses(), &BuildOptions::default())
        .err()
        .expect("the build should fail");
    assert!(err.to_string().contains("\"sched_switch\""), "{err}");

    let mut no_field = text("1 sched_switch cpu=0 prev_tid=1 next_tid=2");
    let err = build(&mut no_field, analyses(), &BuildOptions::default())
        .err()
        .expect("the build should fail");
    assert!(err.to_string().contains("\"prev_state\""), "{err}");
}

/// Shared constant names are back-referenced in the file like Trace Compass's
/// (`Exec_name` of the second thread refers to the first one's string).
#[test]
fn constant_names_are_one_shared_object_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.ht");
    let analyses = vec![Analysis {
        provider: Box::new(KernelStateProvider::new()),
        output: Output::file(&path),
    }];
    build(
        &mut text(SWITCH_10_TO_11),
        analyses,
        &BuildOptions::default(),
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let count = |needle: &[u8]| bytes.windows(needle.len()).filter(|w| *w == needle).count();
    // Both threads have Exec_name, Prio and Current_cpu_rq: each name is written once.
    assert_eq!(count(b"Exec_name"), 1);
    assert_eq!(count(b"Current_cpu_rq"), 1);
    let ss = StateSystem::open(&path, Some(KERNEL_PROVIDER_VERSION)).unwrap();
    assert!(ss.quark(&["Threads", "10", "Exec_name"]).is_ok());
    assert!(ss.quark(&["Threads", "11", "Exec_name"]).is_ok());
}

#[test]
fn perf_traces_use_the_perf_layout() {
    let events = "10 sched:sched_switch cpu=0 prev_comm=\"a\" prev_pid=10 prev_prio=20 prev_state=1 next_comm=\"b\" next_pid=11 next_prio=21\n\
         11 sched:sched_wakeup cpu=0 pid=10 prio=20 target_cpu=1\n\
         12 raw_syscalls:sys_enter cpu=0 id=3\n13 sched_switch cpu=0 prev_tid=11 prev_state=0 next_tid=12";
    let mut src = text(events).with_env("tracer_name", "perf");
    let ss = run(&mut src);
    assert_eq!(
        at(&ss, &["CPUs", "0", "Current_thread"], 13),
        int(11),
        "sched_switch is not a perf event"
    );
    assert_eq!(at(&ss, &["Threads", "10"], 11), int(status::WAIT_FOR_CPU));
    assert_eq!(at(&ss, &["Threads", "10", "Current_cpu_rq"], 11), int(1));
    assert_eq!(at(&ss, &["Threads", "11"], 12), int(status::RUN_SYSCALL));
}

#[test]
fn a_fixed_layout_wins_over_the_trace_environment() {
    let mut p = KernelStateProvider::with_layout(&Layout::LTTNG_2_6);
    let mut info = TraceInfo::default();
    info.env
        .insert("tracer_name".into(), "lttng-modules".into());
    info.env.insert("tracer_major".into(), "2".into());
    info.env.insert("tracer_minor".into(), "1".into());
    p.check_trace(&info).unwrap();
    assert_eq!(p.layout().label, "lttng2.6");
    assert!(p.subscribe("syscall_entry_open").is_some());
    assert!(p.subscribe("sys_open").is_none());
}

#[test]
fn traces_of_several_machines_get_a_warning() {
    let mut p = KernelStateProvider::new();
    let mut info = TraceInfo {
        hosts: vec!["a".into(), "a".into()],
        ..Default::default()
    };
    p.check_trace(&info).unwrap();
    assert!(p.warnings().is_empty(), "kernel and UST traces of one host");
    info.hosts.push("b".into());
    p.check_trace(&info).unwrap();
    let w = p.warnings();
    assert!(w.len() == 1 && w[0].contains("2 machines (a, b)"), "{w:?}");
}
