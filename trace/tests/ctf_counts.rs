//! Every shared trace: per-name event counts, totals, lost events and first/last
//! timestamps equal the reference count file; timestamps never go backwards.

mod common;

use sextant_trace::{ClassId, Experiment};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::AtomicU64;

#[test]
fn counts_match_reference_for_every_trace() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let traces = common::all_traces(&shared);
    assert!(!traces.is_empty(), "no traces under {}", shared.display());
    let mut failures = Vec::new();
    for (name, dir, count_file) in traces {
        let want = common::read_counts(&count_file);
        let mut exp = match Experiment::open(&[&dir]) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{name}: open: {e}"));
                continue;
            }
        };
        let lost_classes: Vec<bool> = (0..exp.class_count())
            .map(|c| exp.class_name(ClassId(c)) == "Lost event")
            .collect();
        let names: Vec<String> = (0..exp.class_count())
            .map(|c| exp.class_name(ClassId(c)).to_string())
            .collect();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let (mut first, mut last, mut prev) = (None, None, i64::MIN);
        let (mut lost_records, mut lost_total, mut backwards) = (0u64, 0u64, 0u64);
        let lost_h: Vec<_> = (0..exp.class_count())
            .map(|c| exp.field_handle(ClassId(c), "Lost events"))
            .collect();
        let progress = AtomicU64::new(0);
        exp.for_each(
            &mut |ev| {
                let c = ev.class().0 as usize;
                if ev.timestamp() < prev {
                    backwards += 1;
                }
                prev = ev.timestamp();
                if lost_classes[c] {
                    lost_records += 1;
                    lost_total += ev.int(lost_h[c].unwrap()).unwrap() as u64;
                } else {
                    *counts.entry(names[c].clone()).or_default() += 1;
                    first.get_or_insert(ev.timestamp());
                    last = Some(ev.timestamp());
                }
                ControlFlow::Continue(())
            },
            &progress,
        )
        .unwrap();
        if !exp.warnings().is_empty() {
            failures.push(format!("{name}: warnings {:?}", exp.warnings()));
        }
        if counts != want.counts {
            let diff: Vec<String> = want
                .counts
                .iter()
                .filter(|(k, v)| counts.get(*k) != Some(v))
                .map(|(k, v)| format!("{k}: want {v}, got {:?}", counts.get(k)))
                .chain(
                    counts
                        .keys()
                        .filter(|k| !want.counts.contains_key(*k))
                        .map(|k| format!("{k}: unexpected")),
                )
                .take(8)
                .collect();
            failures.push(format!("{name}: counts differ: {diff:?}"));
        }
        let total: u64 = counts.values().sum();
        if let Some(t) = want.header.get("total_events") {
            if t.parse::<u64>().unwrap() != total {
                failures.push(format!("{name}: total {total}, want {t}"));
            }
        }
        if let Some(d) = want.header.get("discarded_events") {
            let n: u64 = d.split_whitespace().next().unwrap().parse().unwrap();
            if n != lost_total {
                failures.push(format!("{name}: lost {lost_total}, want {n}"));
            }
            if let Some(m) = d.split("(in ").nth(1) {
                let msgs: u64 = m.split_whitespace().next().unwrap().parse().unwrap();
                if msgs != lost_records {
                    failures.push(format!(
                        "{name}: {lost_records} lost-event records, want {msgs}"
                    ));
                }
            }
        }
        for (key, got) in [("first_event_ns", first), ("last_event_ns", last)] {
            if let Some(w) = want.header.get(key) {
                if Some(w.parse::<i64>().unwrap()) != got {
                    failures.push(format!("{name}: {key} {got:?}, want {w}"));
                }
            }
        }
        if backwards != 0 {
            failures.push(format!("{name}: {backwards} events go back in time"));
        }
        if exp.warnings().is_empty() {
            // Every byte of every stream was read: progress ends at the total.
            assert_eq!(
                progress.load(std::sync::atomic::Ordering::Relaxed),
                exp.total_bytes(),
                "{name}"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `stats::compute` agrees with the reference header lines (packets, streams, totals).
#[test]
fn stats_match_reference_headers() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let mut checked = 0;
    for (name, dir, count_file) in common::all_traces(&shared) {
        let want = common::read_counts(&count_file);
        let mut exp = Experiment::open(&[&dir]).unwrap();
        let s = sextant_trace::stats::compute(&mut exp, &AtomicU64::new(0)).unwrap();
        assert_eq!(s.per_name, want.counts, "{name}");
        for (key, got) in [
            ("packets", s.packets),
            ("streams", s.streams),
            ("total_events", s.total),
        ] {
            if let Some(w) = want.header.get(key) {
                assert_eq!(w.parse::<u64>().unwrap(), got, "{name}: {key}");
                checked += 1;
            }
        }
        assert!(s.warnings.is_empty(), "{name}: {:?}", s.warnings);
    }
    assert!(checked > 0);
}

/// Several traces (two hosts) read as one experiment: one flow in time order, each
/// event tagged with its trace; counts add up; hosts get distinct ids.
#[test]
fn experiment_of_two_hosts_merges_in_time_order() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let a = shared.join("traces/ctf/scp_src/ctf");
    let b = shared.join("traces/ctf/scp_dest/ctf");
    let mut exp = Experiment::open(&[&a, &b]).unwrap();
    assert_eq!(exp.traces().len(), 2);
    assert_eq!(exp.traces()[0].env["hostname"], "VM1");
    assert_ne!(exp.traces()[0].host_id, exp.traces()[1].host_id);
    assert_eq!(exp.traces()[0].domain, "kernel");
    let mut per_trace = [0u64; 2];
    let mut prev = i64::MIN;
    exp.for_each(
        &mut |ev| {
            assert!(ev.timestamp() >= prev);
            prev = ev.timestamp();
            per_trace[ev.trace_index()] += 1;
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    for (i, name) in ["scp_src", "scp_dest"].iter().enumerate() {
        let want = common::read_counts(
            &shared
                .join("traces/ctf")
                .join(name)
                .join("babeltrace2.count"),
        );
        assert_eq!(
            per_trace[i],
            want.header["total_events"].parse::<u64>().unwrap(),
            "{name}"
        );
    }
    for c in 0..exp.class_count() {
        let t = exp.class_trace(ClassId(c));
        assert!(t < 2);
    }
}
