//! Criterion bench: the kernel analysis against the VM analyses over the same
//! generated KVM experiment (`sextant_trace::gen::generate_with_guests`: a host
//! trace with QEMU vCPU threads, and one guest trace per VM with the vmsync
//! hypercall events), read from CTF, each analysis alone in its pass, writing to a
//! null backend. The ratio of throughputs is the figure issue 5 asks for (VM
//! analysis >= 50% of the kernel analysis's speed).
//!
//! Two groups:
//! - `vm-vs-kernel/host`: every analysis on the host trace alone (the issue's
//!   setting: a host kernel trace with kvm events); `vm-model` finds the host but
//!   names no guest without guest traces, `nested-vcpu` finds every vCPU;
//! - `vm-vs-kernel/experiment`: `vm-fused` and `vm-model` on the host and guest
//!   traces together (the guests' events on top of the host's), against `kernel`
//!   on the same experiment (it then builds one machine's model from all events).
//!
//! Size of the host trace's stream files: `SEXTANT_VM_BENCH_BYTES` (default
//! 32 MiB; the figure wants 1 GiB or more), e.g.
//! `SEXTANT_VM_BENCH_BYTES=1073741824 cargo bench -p sextant-benches --bench vm_vs_kernel`.
//! `SEXTANT_VM_BENCH_RUN` runs one analysis once instead (see [`run_once`]).

use std::path::PathBuf;

use criterion::{criterion_group, Criterion, Throughput};
use sextant_providers::native_registry;
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_trace::gen::{generate_with_guests, GenConfig, GenLimit};
use sht::StateSystemQuerier;

const DEFAULT_BYTES: u64 = 32 << 20;

fn run(traces: &[PathBuf], analysis: &str, output: Output) -> (u64, Vec<sht::StateSystem>) {
    let provider = native_registry().create(analysis).unwrap();
    let mut source = sextant_providers::sources::open(traces).unwrap();
    let (report, systems) = build(
        &mut *source,
        vec![Analysis { provider, output }],
        &BuildOptions::default(),
    )
    .unwrap();
    (report.events, systems)
}

fn vm_vs_kernel(c: &mut Criterion) {
    let bytes = std::env::var("SEXTANT_VM_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_BYTES);
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("kvm-host");
    let cfg = GenConfig {
        limit: GenLimit::Bytes(bytes),
        cpus: 8,
        threads: 400,
        vms: 4,
        vcpus_per_vm: 4,
        ..GenConfig::default()
    };
    let (report, guests) =
        generate_with_guests(&host, &cfg, Some(&dir.path().join("guests")), None).unwrap();
    let host_only = vec![host.clone()];
    let mut experiment = host_only.clone();
    experiment.extend(guests.iter().map(|g| g.dir.clone()));

    // What each analysis makes of the inputs, so that the timings are of real work.
    let (_, model) = run(&host_only, "vm-model", Output::InMemory);
    assert!(!model[0].quarks(&["*", "Guests"]).unwrap().is_empty());
    let (_, nested) = run(&host_only, "nested-vcpu", Output::InMemory);
    let vcpus = nested[0].quarks(&["VMs", "*", "vCPU", "*"]).unwrap().len();
    assert_eq!(vcpus as u32, cfg.vms * cfg.vcpus_per_vm);
    let (experiment_events, model) = run(&experiment, "vm-model", Output::InMemory);
    let named = model[0].quarks(&["*", "Guests", "*", "CPUs", "*"]).unwrap();
    assert_eq!(named.len() as u32, cfg.vms * cfg.vcpus_per_vm);
    let (_, fused) = run(&experiment, "vm-fused", Output::InMemory);
    assert_eq!(
        fused[0].quarks(&["Hosts", "*", "Parent"]).unwrap().len() as u32,
        cfg.vms + 1
    );
    drop((model, fused, nested));

    let mib = bytes >> 20;
    let mut g = c.benchmark_group("vm-vs-kernel/host");
    g.throughput(Throughput::Elements(report.events));
    g.sample_size(10);
    for analysis in ["kernel", "vm-model", "vm-fused", "nested-vcpu"] {
        g.bench_function(format!("{analysis}, {mib} MiB KVM host trace"), |b| {
            b.iter(|| run(&host_only, analysis, Output::Null))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("vm-vs-kernel/experiment");
    g.throughput(Throughput::Elements(experiment_events));
    g.sample_size(10);
    for analysis in ["kernel", "vm-model", "vm-fused"] {
        g.bench_function(
            format!(
                "{analysis}, {mib} MiB KVM host trace + {} guest traces",
                guests.len()
            ),
            |b| b.iter(|| run(&experiment, analysis, Output::Null)),
        );
    }
    g.finish();
}

criterion_group!(benches, vm_vs_kernel);

/// `SEXTANT_VM_BENCH_RUN=ANALYSIS:TRACE[:TRACE...]` runs one analysis once over the
/// given traces (null backend) and prints events and time instead of benchmarking:
/// for instruction counts under callgrind on traces made by `sextant gen-trace`.
fn run_once(spec: &str) {
    let mut parts = spec.split(':');
    let analysis = parts.next().unwrap_or_default();
    let traces: Vec<PathBuf> = parts.map(PathBuf::from).collect();
    let began = std::time::Instant::now();
    let (events, _) = run(&traces, analysis, Output::Null);
    let secs = began.elapsed().as_secs_f64();
    println!(
        "{analysis}: {events} events in {secs:.3} s ({:.2} M events/s)",
        events as f64 / secs / 1e6
    );
}

fn main() {
    if let Ok(spec) = std::env::var("SEXTANT_VM_BENCH_RUN") {
        run_once(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
