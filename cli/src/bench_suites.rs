//! `sextant bench xml|vm|openstack|server`: the stages after the kernel analysis,
//! each against the baseline its issue names. XML analyses against the same logic
//! as a native provider; the VM analyses against the kernel analysis over one
//! generated KVM host trace; the OpenStack providers on a Nova-like UST stream
//! (target: events/s); the TSP server under concurrent time-graph requests on a
//! kernel history built from the generated trace.
//!
//! Providers compared with each other run alone in their pass of the build
//! pipeline with a null backend (the same reading, no history writing), so the
//! ratios compare analyses, not disks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use sextant_benches::nova_like::nova_like;
use sextant_benches::sched_model::{xml_program, xml_provider, NativeSched};
use sextant_providers::pipeline::{self, Analysis, BuildOptions, EventSource, Output};
use sextant_providers::StateProvider;
use sextant_trace::gen::{self, GenConfig, GenLimit};

use crate::bench::{rss, stats, BenchArgs, Row, Size, Stats};
use crate::bench_trace::generated_trace;
use crate::format;

/// One pass of `provider` over `source` into a null backend: (time, events).
fn null_pass(
    source: &mut dyn EventSource,
    provider: Box<dyn StateProvider>,
) -> Result<(Duration, u64)> {
    let began = Instant::now();
    let (report, _) = pipeline::build(
        source,
        vec![Analysis {
            provider,
            output: Output::Null,
        }],
        &BuildOptions::default(),
    )?;
    Ok((began.elapsed(), report.events))
}

fn open(trace: &Path) -> Result<Box<dyn EventSource>> {
    sextant_providers::sources::open(&[trace.to_path_buf()]).map_err(|e| anyhow!("{e}"))
}

/// `runs` passes of a provider made by `make` over a trace file: (stats, events, peak RSS).
fn trace_runs(
    runs: usize,
    trace: &Path,
    make: &dyn Fn() -> Result<Box<dyn StateProvider>>,
) -> Result<(Stats, u64, u64)> {
    let (mut times, mut events, mut peak) = (Vec::new(), 0, 0);
    for _ in 0..runs {
        let mut source = open(trace)?;
        rss::reset_peak();
        let (t, e) = null_pass(&mut *source, make()?)?;
        times.push(t);
        events = e;
        peak = peak.max(rss::peak());
    }
    Ok((stats(times), events, peak))
}

fn timing(s: &Stats, events: u64) -> String {
    format!(
        "{}, {:.2} M events/s",
        s,
        events as f64 / s.median.as_secs_f64() / 1e6
    )
}

fn timing_json(s: &Stats, events: u64) -> serde_json::Value {
    json!({"events": events, "median_s": s.median.as_secs_f64(), "min_s": s.min.as_secs_f64(),
        "max_s": s.max.as_secs_f64(), "events_per_s": events as f64 / s.median.as_secs_f64()})
}

/// XML analysis against the same model as a native provider (target: >= 50%).
pub fn bench_xml(args: &BenchArgs, dir: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let trace = generated_trace(dir, args.size, args.json)?;
    let program = xml_program();
    let (read, events, _) = trace_runs(args.runs, &trace, &|| {
        Ok(Box::new(NativeSched { noop: true }) as Box<dyn StateProvider>)
    })?;
    let (native, _, _) = trace_runs(args.runs, &trace, &|| {
        Ok(Box::new(NativeSched { noop: false }) as Box<dyn StateProvider>)
    })?;
    let (xml, _, peak) = trace_runs(args.runs, &trace, &|| Ok(xml_provider(&program)))?;
    let label = format!("{} kernel trace, {events} events", trace_label(args.size));
    for (name, s) in [
        ("read only (no-op provider)", &read),
        ("native sched model", &native),
    ] {
        let mut j = timing_json(s, events);
        j["stage"] = json!("xml");
        j["run"] = json!(name);
        rows.push(Row {
            name: format!("xml: {name}, {label}"),
            value: timing(s, events),
            json: j,
        });
    }
    let ratio = native.median.as_secs_f64() / xml.median.as_secs_f64();
    let mut j = timing_json(&xml, events);
    j["stage"] = json!("xml");
    j["run"] = json!("XML sched model");
    j["speed_vs_native"] = json!(ratio);
    j["peak_rss"] = json!(peak);
    rows.push(Row {
        name: format!("xml: XML sched model, {label}"),
        value: format!(
            "{}: {:.0}% of the native provider's speed (target >= 50%), peak RSS {}",
            timing(&xml, events),
            ratio * 100.0,
            format::bytes(peak)
        ),
        json: j,
    });
    Ok(())
}

fn trace_label(size: Size) -> &'static str {
    match size {
        Size::Small => "64 MiB",
        Size::Medium => "1 GiB",
        Size::Large => "10 GiB",
    }
}

/// The generated KVM host trace: QEMU vCPU threads entering and leaving guests.
fn kvm_trace(dir: &Path, size: Size, quiet: bool) -> Result<(PathBuf, GenConfig)> {
    let bytes: u64 = match size {
        Size::Small => 32 << 20,
        Size::Medium | Size::Large => 1 << 30,
    };
    let config = GenConfig {
        limit: GenLimit::Bytes(bytes),
        cpus: 8,
        threads: 400,
        vms: 4,
        vcpus_per_vm: 4,
        seed: 2026,
        hostname: "bench-kvm-host".into(),
        replace_existing: true,
        ..GenConfig::default()
    };
    let path = dir.join(format!(
        "sextant-bench-kvm-{}",
        format::bytes(bytes).replace(' ', "")
    ));
    let marker = path.with_extension("complete");
    if !marker.exists() {
        if !quiet {
            eprintln!(
                "generating {} of KVM host trace in {} ...",
                format::bytes(bytes),
                path.display()
            );
        }
        gen::generate(&path, &config, None)
            .with_context(|| format!("generating {}", path.display()))?;
        std::fs::write(&marker, b"")?;
    }
    Ok((path, config))
}

/// The VM analyses against the kernel analysis on the same trace (target: >= 50%).
pub fn bench_vm(args: &BenchArgs, dir: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let (trace, config) = kvm_trace(dir, args.size, args.json)?;
    let registry = sextant_providers::native_registry();
    let mut kernel_median = None;
    for analysis in [
        "kernel",
        "vm-model",
        "vm-vresources",
        "vm-overhead",
        "vm-fused",
        "nested-vcpu",
    ] {
        let (s, events, peak) = trace_runs(args.runs, &trace, &|| {
            registry
                .create(analysis)
                .with_context(|| format!("analysis {analysis}"))
        })?;
        let kernel = *kernel_median.get_or_insert(s.median);
        let ratio = kernel.as_secs_f64() / s.median.as_secs_f64();
        let mut j = timing_json(&s, events);
        j["stage"] = json!("vm");
        j["analysis"] = json!(analysis);
        j["speed_vs_kernel"] = json!(ratio);
        j["peak_rss"] = json!(peak);
        rows.push(Row {
            name: format!(
                "vm: {analysis}, KVM host trace ({} VMs x {} vCPUs, {events} events)",
                config.vms, config.vcpus_per_vm
            ),
            value: format!(
                "{}, {:.0}% of the kernel analysis's speed, peak RSS {}",
                timing(&s, events),
                ratio * 100.0,
                format::bytes(peak)
            ),
            json: j,
        });
    }
    Ok(())
}

/// The OpenStack providers on a Nova-like UST stream built in memory (target: 2 M events/s).
pub fn bench_openstack(args: &BenchArgs, rows: &mut Vec<Row>) -> Result<()> {
    let n = match args.size {
        Size::Small => 250_000,
        Size::Medium => 1_000_000,
        Size::Large => 4_000_000,
    };
    let mut source = nova_like(n);
    let registry = sextant_providers::native_registry();
    for name in ["nova", "nova-services", "neutron", "cinder"] {
        let mut times = Vec::new();
        let mut events = 0;
        for _ in 0..args.runs {
            let provider = registry
                .create(name)
                .with_context(|| format!("analysis {name}"))?;
            let (t, e) = null_pass(&mut source, provider)?;
            times.push(t);
            events = e;
        }
        let s = stats(times);
        let mut j = timing_json(&s, events);
        j["stage"] = json!("openstack");
        j["analysis"] = json!(name);
        rows.push(Row {
            name: format!("openstack: {name}, Nova-like UST stream ({events} records)"),
            value: format!("{} (target >= 2 M/s)", timing(&s, events)),
            json: j,
        });
    }
    Ok(())
}

/// The TSP server holding the kernel history of the generated trace, under
/// 64 clients sending Control Flow states requests (500 rows x 1,000 times).
pub fn bench_server(args: &BenchArgs, dir: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let trace = generated_trace(dir, args.size, args.json)?;
    let data_dir = dir.join(format!(
        "sextant-bench-serve-{}",
        trace_label(args.size).replace(' ', "")
    ));
    let seconds = match args.size {
        Size::Small => 10,
        Size::Medium | Size::Large => 60,
    };
    // Warm: the clients share ten sliding windows (viewers over the same
    // ranges, scrolling rows), so answers repeat; cold: a new random window per
    // request, so every answer is computed. Both are reported.
    for cold in [false, true] {
        let config = sextant_server::loadgen::LoadConfig {
            trace: trace.clone(),
            data_dir: data_dir.clone(),
            clients: 64,
            duration: Duration::from_secs(seconds),
            rows: 500,
            times: 1000,
            cold,
        };
        let mode = if cold { "cold" } else { "warm" };
        if !args.json {
            eprintln!("server ({mode}): analyses of {} (reused when already built), then 64 clients for {seconds} s ...", trace.display());
        }
        rss::reset_peak();
        let r = sextant_server::loadgen::run_blocking(&config)
            .map_err(|e| anyhow!("server load: {e}"))?;
        let peak = rss::peak();
        let history = ht_bytes(&data_dir);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let what = if cold {
            "a new random window per request"
        } else {
            "10 shared sliding windows"
        };
        rows.push(Row {
            name: format!(
                "server ({mode}): Control Flow states, {} history, {what}",
                format::bytes(history)
            ),
            value: format!(
                "{} requests ({:.0}/s), {} errors, p50 {:.1} ms, p95 {:.1} ms (target <= 100 ms), p99 {:.1} ms, {} x {} rows x 1000 times, ready in {}, index ready in {} ({}), size {}, peak RSS {}",
                r.latencies.len(),
                r.rate(),
                r.errors,
                ms(r.percentile(0.5)),
                ms(r.percentile(0.95)),
                ms(r.percentile(0.99)),
                config.clients,
                r.rows_per_request,
                format::duration(r.ready),
                format::duration(r.index_ready),
                if r.index_built { "built" } else { "reused" },
                format::bytes(r.index_bytes),
                format::bytes(peak)
            ),
            json: json!({"stage": "server", "mode": mode, "history_bytes": history, "clients": config.clients,
                "seconds": seconds, "rows_per_request": r.rows_per_request, "times": config.times,
                "requests": r.latencies.len(), "errors": r.errors, "requests_per_s": r.rate(),
                "p50_ms": ms(r.percentile(0.5)), "p95_ms": ms(r.percentile(0.95)),
                "p99_ms": ms(r.percentile(0.99)), "ready_s": r.ready.as_secs_f64(), "peak_rss": peak,
                "index_ready_s": r.index_ready.as_secs_f64(), "index_bytes": r.index_bytes, "index_built": r.index_built}),
        });
    }
    Ok(())
}

/// Bytes of the `.ht` files in a server data directory.
fn ht_bytes(data_dir: &Path) -> u64 {
    std::fs::read_dir(data_dir.join(".tracing"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "ht"))
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Wall time of `sextant build PAIR -a kernel --sync off|auto` as whole processes, the two
/// modes alternated `runs` times, a fresh output folder each (every `auto` run matches packets
/// and computes the formulas): what a first synchronization adds to the kernel analysis of
/// the experiment. On the scp pair of `../shared` (or `$SEXTANT_SHARED`) when there, and on a
/// generated host + guest pair (`gen-trace --vms 1 --guests`).
pub fn bench_sync(args: &BenchArgs, dir: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let exe = std::env::current_exe().context("finding this program")?;
    let mut pairs: Vec<(String, Vec<PathBuf>, usize)> = Vec::new();
    let shared = std::env::var_os("SEXTANT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared"));
    let scp = shared.join("traces/ctf");
    if scp.join("scp_src/ctf/metadata").is_file() {
        let traces = vec![scp.join("scp_src"), scp.join("scp_dest")];
        pairs.push(("scp pair".into(), traces, 67 * args.runs));
    } else {
        eprintln!(
            "note: no scp pair ({} not found): generated pair only",
            scp.display()
        );
    }
    let size = match args.size {
        Size::Small => "20M",
        Size::Medium => "80M",
        Size::Large => "400M",
    };
    let (host, guests) = (
        dir.join(format!("sync-host-{size}")),
        dir.join(format!("sync-guests-{size}")),
    );
    if !host.join("metadata").is_file() || !guests.join("guest1/metadata").is_file() {
        let _ = std::fs::remove_dir_all(&host);
        let _ = std::fs::remove_dir_all(&guests);
        let status = Command::new(&exe)
            .arg("gen-trace")
            .arg(&host)
            .args(["--size", size, "--vms", "1", "--guests"])
            .arg(&guests)
            .stdout(Stdio::null())
            .status()
            .context("running gen-trace")?;
        if !status.success() {
            bail!("gen-trace {} failed ({status})", host.display());
        }
    }
    pairs.push((
        format!("generated host + guest ({size})"),
        vec![host, guests.join("guest1")],
        5 * args.runs,
    ));

    let out = dir.join(format!("sync-bench-{}", std::process::id()));
    for (name, traces, runs) in pairs {
        let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..runs {
            for (k, mode) in ["off", "auto"].into_iter().enumerate() {
                let _ = std::fs::remove_dir_all(&out);
                let began = Instant::now();
                let r = Command::new(&exe)
                    .arg("build")
                    .args(&traces)
                    .args(["-a", "kernel", "--quiet", "--sync", mode, "-o"])
                    .arg(&out)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .output()
                    .context("running sextant build")?;
                times[k].push(began.elapsed());
                if !r.status.success() {
                    bail!(
                        "sextant build --sync {mode} failed: {}",
                        String::from_utf8_lossy(&r.stderr)
                    );
                }
            }
        }
        let _ = std::fs::remove_dir_all(&out);
        let [off, auto] = times.map(stats);
        let overhead = auto.median.as_secs_f64() / off.median.as_secs_f64() - 1.0;
        rows.push(Row {
            name: format!("sync: {name}, {runs} alternated runs"),
            value: format!(
                "--sync off {off}, first synchronization {auto}: {:+.1} %",
                overhead * 100.0
            ),
            json: json!({"stage": "sync", "workload": name, "runs": runs,
                "off_median_s": off.median.as_secs_f64(), "auto_median_s": auto.median.as_secs_f64(),
                "overhead": overhead}),
        });
    }
    Ok(())
}
