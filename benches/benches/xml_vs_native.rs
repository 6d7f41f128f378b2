//! An XML analysis against the same logic written as a native provider, both run
//! through the build pipeline on a generated kernel trace (in-memory state
//! systems are not kept: `Output::Null`). A third run, a provider that subscribes
//! to the same events and does nothing, shows the cost of reading the trace.
//! The model is `sextant_benches::sched_model`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_benches::sched_model::{xml_program, xml_provider, NativeSched};
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_providers::StateProvider;
use sextant_trace::gen::{generate, GenConfig, GenLimit};

/// Default size; `SEXTANT_XML_BENCH_BYTES` asks for a trace of that many stream bytes
/// instead (the figure is on 1 GiB: `SEXTANT_XML_BENCH_BYTES=1073741824`).
const EVENTS: u64 = 2_000_000;

fn run(trace: &Path, provider: Box<dyn StateProvider>) -> u64 {
    let mut source = sextant_providers::sources::open(&[trace.to_path_buf()]).unwrap();
    let analyses = vec![Analysis {
        provider,
        output: Output::Null,
    }];
    let (report, _) = build(&mut *source, analyses, &BuildOptions::default()).unwrap();
    report.events
}

fn xml_vs_native(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("kernel");
    let limit = match std::env::var("SEXTANT_XML_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(bytes) => GenLimit::Bytes(bytes),
        None => GenLimit::Events(EVENTS),
    };
    let cfg = GenConfig {
        limit,
        ..GenConfig::default()
    };
    let events = generate(&trace, &cfg, None).unwrap().events;
    let program = xml_program();

    let mut g = c.benchmark_group("xml-vs-native");
    g.throughput(Throughput::Elements(events));
    g.sample_size(10);
    g.bench_function("read only (no-op provider)", |b| {
        b.iter(|| run(&trace, Box::new(NativeSched { noop: true })))
    });
    g.bench_function("native sched model", |b| {
        b.iter(|| run(&trace, Box::new(NativeSched { noop: false })))
    });
    g.bench_function("XML sched model", |b| {
        b.iter(|| run(&trace, xml_provider(&program)))
    });
    g.finish();
}

criterion_group!(benches, xml_vs_native);
criterion_main!(benches);
