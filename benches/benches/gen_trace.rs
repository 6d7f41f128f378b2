//! Criterion bench of the synthetic kernel trace generator (`sextant gen-trace`):
//! bytes of CTF written per second, page cache included.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sextant_trace::gen::{generate, GenConfig, GenLimit};

const BYTES: u64 = 64 << 20;

fn gen(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("gen-trace");
    g.throughput(Throughput::Bytes(BYTES));
    g.sample_size(10);
    for cpus in [4u32, 16] {
        let cfg = GenConfig {
            limit: GenLimit::Bytes(BYTES),
            cpus,
            threads: 500,
            replace_existing: true,
            ..Default::default()
        };
        g.bench_function(format!("64 MiB, {cpus} CPUs"), |b| {
            b.iter_batched(
                || dir.path().join("t"),
                |out| generate(&out, &cfg, None).unwrap(),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, gen);
criterion_main!(benches);
