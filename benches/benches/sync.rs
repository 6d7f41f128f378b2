//! Cost of trace synchronization next to a kernel analysis over the same experiment (the
//! scp_src / scp_dest pair): the matching pass (`sync::synchronize`), a bare read pass for
//! scale, and the kernel-analysis build (providers pipeline, history kept in memory).
//! Needs the shared traces (`$SEXTANT_SHARED` or `../shared`); skips without them.

use criterion::{criterion_group, criterion_main, Criterion};
use sextant_providers::pipeline::{self, Analysis, BuildOptions, Output};
use sextant_trace::sync;
use sextant_trace::Experiment;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

fn pair() -> Option<Vec<PathBuf>> {
    let shared = std::env::var_os("SEXTANT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let ctf = shared.join("traces/ctf");
    let paths = vec![ctf.join("scp_src"), ctf.join("scp_dest")];
    if paths.iter().all(|p| p.is_dir()) {
        Some(paths)
    } else {
        eprintln!(
            "note: skipping sync benches: {} not found (set SEXTANT_SHARED)",
            ctf.display()
        );
        None
    }
}

fn bench_sync(c: &mut Criterion) {
    let Some(paths) = pair() else { return };
    let mut g = c.benchmark_group("scp_pair");
    g.sample_size(20);
    let mut exp = Experiment::open(&paths).unwrap();
    g.bench_function("read_pass", |b| {
        b.iter(|| {
            let mut n = 0u64;
            exp.for_each(
                &mut |_| {
                    n += 1;
                    ControlFlow::Continue(())
                },
                &AtomicU64::new(0),
            )
            .unwrap();
            n
        })
    });
    g.bench_function("synchronize", |b| {
        b.iter(|| {
            sync::synchronize(&mut exp, &AtomicU64::new(0))
                .unwrap()
                .matches
        })
    });
    g.bench_function("synchronize_one_pass", |b| {
        b.iter(|| {
            let plan = sync::MatchPlan::new(&exp);
            let s = sync::Synchronizer::new(&sync::host_ids(&exp));
            sync::synchronize_in_one_pass(&mut exp, &plan, s, &AtomicU64::new(0))
                .unwrap()
                .matches
        })
    });
    g.bench_function("open_experiment", |b| {
        b.iter(|| Experiment::open(&paths).unwrap().class_count())
    });
    // The formula computation alone (exact rationals), from the pair's packet events.
    let plan = sync::MatchPlan::new(&exp);
    let mut packets = Vec::new();
    exp.for_each(
        &mut |ev| {
            if let Some((dir, key)) = plan.key_of(ev) {
                packets.push((ev.trace_index(), ev.timestamp(), dir, key));
            }
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    let hosts = sync::host_ids(&exp);
    g.bench_function("match_and_fit_packets_only", |b| {
        b.iter(|| {
            let mut s = sync::Synchronizer::new(&hosts);
            for &(t, ts, dir, key) in &packets {
                s.process(t, ts, dir, key);
            }
            s.result().matches
        })
    });
    let registry = sextant_providers::native_registry();
    g.bench_function("kernel_analysis_in_memory", |b| {
        b.iter(|| {
            let mut source = sextant_providers::sources::open(&paths).unwrap();
            let analyses = vec![Analysis {
                provider: registry.create("kernel").unwrap(),
                output: Output::InMemory,
            }];
            pipeline::build(&mut *source, analyses, &BuildOptions::default())
                .unwrap()
                .0
                .events
        })
    });
    g.finish();
}

criterion_group!(benches, bench_sync);
criterion_main!(benches);
