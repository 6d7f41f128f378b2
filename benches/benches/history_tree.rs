//! Criterion benches of the history tree's hot loops: building (interval
//! insertion through the transient state), single, full and 2D queries.
//! Whole-workload figures against Trace Compass come from `sextant bench ht`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sextant_benches::{Rng, Workload};
use sht::{HtConfig, StateSystem, StateSystemQuerier};

const CHANGES: u64 = 500_000;

fn build(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let w = Workload::flat(CHANGES);
    let mut g = c.benchmark_group("build");
    g.throughput(Throughput::Elements(CHANGES));
    g.sample_size(10);
    g.bench_function("history-tree 500k flat", |b| {
        b.iter_batched(
            || dir.path().join("b.ht"),
            |path| {
                let mut ss = StateSystem::create_history_tree(&path, HtConfig::new(0, 1)).unwrap();
                w.run(&mut ss).unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("in-memory 500k flat", |b| {
        b.iter(|| {
            let mut ss = StateSystem::in_memory(0);
            w.run(&mut ss).unwrap()
        })
    });
    g.finish();
}

fn queries(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.ht");
    let w = Workload::flat(CHANGES);
    let mut ss = StateSystem::create_history_tree(&path, HtConfig::new(0, 1)).unwrap();
    w.run(&mut ss).unwrap();
    let ss = StateSystem::open(&path, None).unwrap();
    let n = ss.attribute_count() as i32;
    let end = ss.current_end_time();
    let mut rng = Rng::new(42);
    let mut g = c.benchmark_group("query");
    g.bench_function("single (warm cache)", |b| {
        b.iter(|| {
            let t = rng.below(end as u64) as i64;
            let q = rng.below(n as u64) as i32;
            ss.query_single(t, q).unwrap()
        })
    });
    g.bench_function("full", |b| {
        b.iter(|| ss.query_full(rng.below(end as u64) as i64).unwrap())
    });
    let all: Vec<i32> = (0..n).collect();
    g.bench_function("2D all quarks, 1% of time", |b| {
        b.iter(|| {
            let t = rng.below((end - end / 100) as u64) as i64;
            let mut k = 0u64;
            ss.query_2d_visit(
                &all,
                &sht::TimeCondition::range(t, t + end / 100),
                &mut |_| k += 1,
            )
            .unwrap();
            k
        })
    });
    g.finish();
}

criterion_group!(benches, build, queries);
criterion_main!(benches);
