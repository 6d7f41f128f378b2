//! Criterion bench of the OpenStack providers (nova, nova-services, neutron,
//! cinder) on a large Nova-like LTTng-UST stream built in memory: every record is
//! an `lttng_python:event` with `msg` and `logger_name`, like the thesis traces
//! (about a third carry an `lttng_trace:{...}` dict: VM create/delete requests
//! through scheduler and compute, the rest ordinary log lines). The histories go
//! to a null backend, so the figures are the pass (pipeline + dict parsing +
//! provider) without CTF decoding.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_benches::nova_like::nova_like;
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};

const EVENTS: usize = 1_000_000;

fn providers(c: &mut Criterion) {
    let registry = sextant_providers::native_registry();
    let mut source = nova_like(EVENTS);
    let mut g = c.benchmark_group("openstack providers on a Nova-like UST stream");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(10);
    for name in ["nova", "nova-services", "neutron", "cinder"] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let provider = registry.create(name).unwrap();
                let analyses = vec![Analysis {
                    provider,
                    output: Output::Null,
                }];
                build(&mut source, analyses, &BuildOptions::default()).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, providers);
criterion_main!(benches);
