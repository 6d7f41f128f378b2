//! Criterion bench: the kernel analysis against the VM analyses (`vm-model`,
//! `vm-fused`, and the host-only `nested-vcpu`) over the same generated KVM host
//! trace (`sextant_trace::gen` with QEMU vCPU threads), read from disk, each alone
//! in its pass, writing to a null backend. The ratio of their throughputs is the
//! figure issue 5 asks for (VM analysis >= 50% of the kernel analysis's speed).
//!
//! Size of the trace's stream files: `SEXTANT_VM_BENCH_BYTES` (default 32 MiB; the
//! issue's figure wants 1 GiB or more), e.g.
//! `SEXTANT_VM_BENCH_BYTES=1073741824 cargo bench -p sextant-benches --bench vm_vs_kernel`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_providers::native_registry;
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_trace::gen::{generate, GenConfig, GenLimit};
use sht::StateSystemQuerier;

const DEFAULT_BYTES: u64 = 32 << 20;

fn run(trace: &Path, analysis: &str, output: Output) -> Vec<sht::StateSystem> {
    let provider = native_registry().create(analysis).unwrap();
    let mut source = sextant_providers::sources::open(&[trace.to_path_buf()]).unwrap();
    let (_, systems) = build(
        &mut *source,
        vec![Analysis { provider, output }],
        &BuildOptions::default(),
    )
    .unwrap();
    systems
}

fn vm_vs_kernel(c: &mut Criterion) {
    let bytes = std::env::var("SEXTANT_VM_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_BYTES);
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("kvm-host");
    let cfg = GenConfig {
        limit: GenLimit::Bytes(bytes),
        cpus: 8,
        threads: 400,
        vms: 4,
        vcpus_per_vm: 4,
        ..GenConfig::default()
    };
    let report = generate(&trace, &cfg, None).unwrap();

    // What each analysis makes of the trace, so that the timings are of real work:
    // the model sees a host (no guest trace: no guest can be named), the host-only
    // analysis every VM and vCPU.
    let model = run(&trace, "vm-model", Output::InMemory);
    assert!(!model[0].quarks(&["*", "Guests"]).unwrap().is_empty());
    let nested = run(&trace, "nested-vcpu", Output::InMemory);
    let vcpus = nested[0].quarks(&["VMs", "*", "vCPU", "*"]).unwrap().len();
    assert_eq!(vcpus as u32, cfg.vms * cfg.vcpus_per_vm);

    let mut g = c.benchmark_group("vm-vs-kernel");
    g.throughput(Throughput::Elements(report.events));
    g.sample_size(10);
    for analysis in ["kernel", "vm-model", "vm-fused", "nested-vcpu"] {
        g.bench_function(
            format!("{analysis}, {} MiB KVM host trace", bytes >> 20),
            |b| b.iter(|| run(&trace, analysis, Output::Null)),
        );
    }
    g.finish();
}

criterion_group!(benches, vm_vs_kernel);
criterion_main!(benches);
