//! `stats::compute_parallel` (streams read on several threads, no merge) gives the
//! same `Stats` as the merged pass `stats::compute`, and the reference counts.

mod common;

use sextant_trace::stats::{compute, compute_parallel, Stats};
use sextant_trace::Experiment;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

fn both(paths: &[&Path], threads: usize) -> (Stats, Stats, u64, u64) {
    let mut exp = Experiment::open(paths).unwrap();
    let p_seq = AtomicU64::new(0);
    let seq = compute(&mut exp, &p_seq).unwrap();
    let mut exp = Experiment::open(paths).unwrap();
    let p_par = AtomicU64::new(0);
    let par = compute_parallel(&mut exp, threads, &p_par).unwrap();
    assert_eq!(exp.warnings(), par.warnings);
    (
        seq,
        par,
        p_seq.load(Ordering::Relaxed),
        p_par.load(Ordering::Relaxed),
    )
}

#[test]
fn parallel_stats_equal_merged_stats_for_every_trace() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let traces = common::all_traces(&shared);
    assert!(traces.len() >= 5, "{} traces", traces.len());
    for (name, dir, count_file) in traces {
        for threads in [2, 3] {
            let (seq, par, p_seq, p_par) = both(&[&dir], threads);
            assert_eq!(seq, par, "{name}, {threads} threads");
            assert_eq!(p_seq, p_par, "{name}: progress");
        }
        // And against the reference counts (not only against our merged pass).
        let want = common::read_counts(&count_file);
        let (_, par, _, _) = both(&[&dir], 2);
        assert_eq!(par.per_name, want.counts, "{name}");
        for (key, got) in [
            ("first_event_ns", par.first_ns),
            ("last_event_ns", par.last_ns),
        ] {
            if let Some(w) = want.header.get(key) {
                assert_eq!(Some(w.parse::<i64>().unwrap()), got, "{name}: {key}");
            }
        }
    }
}

#[test]
fn parallel_stats_of_a_two_host_experiment() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let a = shared.join("traces/ctf/scp_src/ctf");
    let b = shared.join("traces/ctf/scp_dest/ctf");
    let (seq, par, _, _) = both(&[&a, &b], 2);
    assert_eq!(seq, par);
    let total: u64 = ["scp_src", "scp_dest"]
        .iter()
        .map(|n| {
            common::read_counts(&shared.join("traces/ctf").join(n).join("babeltrace2.count")).header
                ["total_events"]
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(par.total, total);
}

/// A generated trace with many streams and packets, and the same with one stream cut
/// in the middle of a packet (one warning, same as the merged pass).
#[test]
fn parallel_stats_of_generated_and_truncated_traces() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let src = shared.join("traces/ctf/many-threads/ctf");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gen");
    sextant_trace::ctf::gen::replicate(&src, &out, 2, 16 * 1024).unwrap();
    let (seq, par, _, _) = both(&[&out], 2);
    assert!(seq.packets > 4, "{}", seq.packets);
    assert_eq!(seq, par);
    // Cut the biggest stream file mid-packet (and drop its index, which would disagree).
    let trace = sextant_trace::ctf::reader::CtfTrace::open(&out).unwrap();
    let f = trace.files.iter().max_by_key(|f| f.size).unwrap();
    let bytes = std::fs::read(&f.path).unwrap();
    std::fs::write(&f.path, &bytes[..bytes.len() / 2 + 3]).unwrap();
    let _ = std::fs::remove_dir_all(out.join("index"));
    let (seq, par, _, _) = both(&[&out], 2);
    assert_eq!(seq.warnings.len(), 1, "{:?}", seq.warnings);
    assert_eq!(seq, par);
}

/// With a time range the parallel path is not taken: same result as the merged pass.
#[test]
fn parallel_stats_fall_back_under_a_time_range() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("traces/ctf/many-threads/ctf");
    let mut exp = Experiment::open(&[&dir]).unwrap();
    let full = compute(&mut exp, &AtomicU64::new(0)).unwrap();
    let (f, l) = (full.first_ns.unwrap(), full.last_ns.unwrap());
    let mid = f + (l - f) / 2;
    exp.set_time_range(Some(mid), None);
    let seq = compute(&mut exp, &AtomicU64::new(0)).unwrap();
    let mut exp = Experiment::open(&[&dir]).unwrap();
    exp.set_time_range(Some(mid), None);
    let par = compute_parallel(&mut exp, 2, &AtomicU64::new(0)).unwrap();
    assert_eq!(seq, par);
    assert!(par.total < full.total && par.first_ns >= Some(mid));
}
