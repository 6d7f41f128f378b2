//! The trace generator: what it writes reads back with the source's event mix
//! (scaled), and Babeltrace 2 (when installed) counts the same events.

mod common;

use sextant_trace::ctf::gen;
use sextant_trace::Experiment;
use std::sync::atomic::AtomicU64;

#[test]
fn generated_trace_reads_back_and_babeltrace_agrees() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let src = shared.join("traces/ctf/many-threads/ctf");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gen");
    let sum = gen::replicate(&src, &out, 3, 64 * 1024).unwrap();
    let mut exp = Experiment::open(&[&src]).unwrap();
    let base = sextant_trace::stats::compute(&mut exp, &AtomicU64::new(0)).unwrap();
    let mut exp = Experiment::open(&[&out]).unwrap();
    let got = sextant_trace::stats::compute(&mut exp, &AtomicU64::new(0)).unwrap();
    assert!(got.warnings.is_empty(), "{:?}", got.warnings);
    assert_eq!(sum.events, 3 * base.total);
    assert_eq!(got.total, sum.events);
    assert_eq!(got.packets, sum.packets);
    for (name, n) in &base.per_name {
        assert_eq!(got.per_name[name], 3 * n, "{name}");
    }
    // The written index is used (it agrees with the packets).
    let trace = sextant_trace::ctf::reader::CtfTrace::open(&out).unwrap();
    for f in &trace.files {
        let mut c = sextant_trace::ctf::reader::Cursor::open(&trace, f).unwrap();
        let n = c.scan_packets(&trace).unwrap().len();
        assert!(
            c.has_index() && c.index_entries().unwrap().len() == n,
            "{}",
            f.name
        );
    }
    match std::process::Command::new("babeltrace2")
        .arg(&out)
        .args(["-c", "sink.utils.counter"])
        .output()
    {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let events: u64 = text
                .lines()
                // The counter prints running totals; the last block is the final one.
                .rfind(|l| l.contains("Event messages"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .expect("babeltrace2 counter output");
            assert_eq!(events, sum.events);
        }
        Ok(o) => panic!(
            "babeltrace2 rejects the generated trace: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("note: babeltrace2 not installed; skipping its cross-check"),
    }
}
