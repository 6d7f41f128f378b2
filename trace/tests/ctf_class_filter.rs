//! `Experiment::set_class_filter`: reading a few classes gives exactly the events of
//! those classes of a full read, in the same order with the same field values.

mod common;

use sextant_trace::{ClassId, Experiment};
use std::ops::ControlFlow;
use std::sync::atomic::AtomicU64;

/// (class, ns, stream, every field's value as text) of the events of `keep`.
fn flow(exp: &mut Experiment, keep: &[ClassId]) -> Vec<(u32, i64, String, String)> {
    let handles: Vec<Vec<_>> = (0..exp.class_count())
        .map(|c| {
            let c = ClassId(c);
            exp.field_names(c)
                .iter()
                .filter_map(|n| exp.field_handle(c, n))
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    exp.for_each(
        &mut |ev| {
            if keep.contains(&ev.class()) {
                let vals: Vec<String> = handles[ev.class().0 as usize]
                    .iter()
                    .map(|h| format!("{:?}", ev.value(*h)))
                    .collect();
                out.push((
                    ev.class().0,
                    ev.timestamp(),
                    ev.stream_name().to_string(),
                    vals.join(","),
                ));
            }
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    out
}

fn classes(exp: &Experiment, names: &[&str]) -> Vec<ClassId> {
    (0..exp.class_count())
        .map(ClassId)
        .filter(|c| names.contains(&exp.class_name(*c)))
        .collect()
}

#[test]
fn filtered_read_equals_full_read_restricted() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    for (trace, names) in [
        // A fixed-layout class and variable ones (strings, sequences).
        (
            "many-threads",
            &[
                "sched_switch",
                "syscall_entry_openat",
                "sched_process_exec",
                "lttng_statedump_process_state",
            ][..],
        ),
        ("hello-lost", &["Lost event"][..]),
        ("hello-lost", &["ust_tests_hello:tptest"][..]),
    ] {
        let dir = shared.join("traces/ctf").join(trace).join("ctf");
        let mut exp = Experiment::open(&[&dir]).unwrap();
        let keep = classes(&exp, names);
        assert!(!keep.is_empty(), "{trace}: {names:?}");
        let full = flow(&mut exp, &keep);
        exp.set_class_filter(Some(&keep));
        let filtered = flow(&mut exp, &keep);
        assert!(!full.is_empty(), "{trace}: {names:?}");
        assert_eq!(full.len(), filtered.len(), "{trace}: {names:?}");
        assert!(full == filtered, "{trace}: {names:?}: flows differ");
        // Every delivered event is of a kept class.
        let mut other = 0u64;
        exp.for_each(
            &mut |ev| {
                other += u64::from(!keep.contains(&ev.class()));
                ControlFlow::Continue(())
            },
            &AtomicU64::new(0),
        )
        .unwrap();
        assert_eq!(other, 0, "{trace}");
        exp.set_class_filter(None);
        let all: Vec<ClassId> = (0..exp.class_count()).map(ClassId).collect();
        let n_all = flow(&mut exp, &all).len();
        assert!(n_all > full.len(), "{trace}: filter not removed");
    }
}
