//! CTF reading throughput, with babeltrace2 (`-c sink.utils.counter`, run as a
//! subprocess) measured in the same run on the same input as the baseline.
//!
//! Inputs: `many-threads` (shared/traces, 240,644 kernel events) and a long trace
//! generated from it (`ctf::gen::replicate`: the same event mix and values over 8
//! CPUs, `SEXTANT_BENCH_COPIES` copies, default 10 = 2.4 M events). Needs the shared
//! directory (`$SEXTANT_SHARED` or `../shared`); prints a notice and measures nothing
//! without it.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_trace::{Access, ClassId, Experiment, FieldHandle};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicU64;

fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SEXTANT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    dir.is_dir().then_some(dir)
}

/// Reads every event; with `all_fields`, reads every field through its typed accessor.
fn read(dir: &Path, all_fields: bool) -> (u64, i64) {
    let mut exp = Experiment::open(&[dir]).unwrap();
    let handles: Vec<Vec<(FieldHandle, Access)>> = (0..exp.class_count())
        .map(|c| {
            let c = ClassId(c);
            exp.field_names(c)
                .iter()
                .filter_map(|n| exp.field_handle(c, n))
                .map(|h| (h, exp.field_access(h)))
                .collect()
        })
        .collect();
    let (mut n, mut acc) = (0u64, 0i64);
    exp.for_each(
        &mut |ev| {
            n += 1;
            if all_fields {
                for (h, a) in &handles[ev.class().0 as usize] {
                    acc = acc.wrapping_add(match a {
                        Access::Int => ev.int(*h).unwrap_or(0),
                        Access::Text => ev.string(*h).map_or(0, |s| s.len() as i64),
                        Access::Other => match ev.array_len(*h) {
                            Some(n) => (0..n).map(|k| ev.array_int(*h, k).unwrap_or(0)).sum(),
                            None => ev.value(*h).is_some() as i64,
                        },
                    });
                }
            }
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    (n, acc)
}

fn babeltrace_available() -> bool {
    Command::new("babeltrace2")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ctf_read(c: &mut Criterion) {
    let Some(shared) = shared_dir() else {
        eprintln!("note: skipping ctf_read: shared directory not found (set SEXTANT_SHARED)");
        return;
    };
    let src = shared.join("traces/ctf/many-threads/ctf");
    let copies: u32 = std::env::var("SEXTANT_BENCH_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let tmp = tempfile::tempdir().unwrap();
    let long = tmp.path().join("long");
    let sum = sextant_trace::ctf::gen::replicate(&src, &long, copies, 256 * 1024).unwrap();
    let bt = babeltrace_available();
    if !bt {
        eprintln!("note: babeltrace2 not installed: no baseline");
    }
    for (label, dir) in [
        ("many-threads".to_string(), src.clone()),
        (format!("generated {copies}x many-threads"), long.clone()),
    ] {
        let (events, _) = read(&dir, false);
        let mut g = c.benchmark_group(format!("ctf_read/{label}"));
        g.throughput(Throughput::Elements(events));
        g.sample_size(10);
        g.bench_function("sextant: every field", |b| b.iter(|| read(&dir, true)));
        g.bench_function("sextant: events only", |b| b.iter(|| read(&dir, false)));
        if bt {
            g.bench_function("babeltrace2 -c sink.utils.counter", |b| {
                b.iter(|| {
                    let o = Command::new("babeltrace2")
                        .arg(&dir)
                        .args(["-c", "sink.utils.counter"])
                        .output()
                        .unwrap();
                    assert!(o.status.success());
                })
            });
        }
        g.finish();
    }
    eprintln!(
        "generated trace: {} events, {} packets, {} bytes",
        sum.events, sum.packets, sum.bytes
    );
}

criterion_group!(benches, ctf_read);
criterion_main!(benches);
