//! `sextant bench ctf|kernel`: whole-pipeline figures on generated LTTng kernel
//! traces (and on `many-threads` when the shared traces are present), with
//! babeltrace2 measured on the same trace in the same run as the baseline.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use sextant_providers::pipeline::{self, Analysis, BuildOptions, Output};
use sextant_trace::gen::{self, GenConfig, GenLimit};
use sextant_trace::Experiment;

use crate::bench::{rss, stats, BenchArgs, Row, Size};
use crate::format;

/// Stream bytes of the generated trace for each size.
fn trace_bytes(size: Size) -> u64 {
    match size {
        Size::Small => 64 << 20,
        Size::Medium => 1 << 30,
        Size::Large => 10 << 30,
    }
}

/// The generated input: made once per size and kept in the bench directory
/// (generation is deterministic; a marker file says it is complete).
pub(crate) fn generated_trace(dir: &Path, size: Size, quiet: bool) -> Result<PathBuf> {
    let bytes = trace_bytes(size);
    let path = dir.join(format!(
        "sextant-bench-kernel-{}",
        format::bytes(bytes).replace(' ', "")
    ));
    // Beside the trace, not in it: readers treat other files there as streams.
    let marker = path.with_extension("complete");
    if marker.exists() {
        return Ok(path);
    }
    if !quiet {
        eprintln!(
            "generating {} of kernel trace in {} ...",
            format::bytes(bytes),
            path.display()
        );
    }
    let config = GenConfig {
        limit: GenLimit::Bytes(bytes),
        cpus: 8,
        threads: 400,
        seed: 2026,
        hostname: "bench-host".into(),
        replace_existing: true,
        ..GenConfig::default()
    };
    gen::generate(&path, &config, None)
        .with_context(|| format!("generating {}", path.display()))?;
    std::fs::write(&marker, b"")?;
    Ok(path)
}

fn shared_many_threads() -> Option<PathBuf> {
    let base = std::env::var_os("SEXTANT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared"));
    let p = base.join("traces/ctf/many-threads/ctf");
    p.join("metadata").is_file().then_some(p)
}

/// Reads every event and every field through its typed accessor.
fn decode_every_field(trace: &Path) -> Result<u64> {
    let mut exp = Experiment::open(&[trace])?;
    let (events, acc) = sextant_trace::stats::read_all_fields(&mut exp, true, &AtomicU64::new(0))?;
    std::hint::black_box(acc);
    Ok(events)
}

fn babeltrace2_available() -> bool {
    Command::new("babeltrace2")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// babeltrace2 decoding the trace into its event counter (the fastest sink).
fn babeltrace2_count(trace: &Path) -> Result<Duration> {
    let began = Instant::now();
    let out = Command::new("babeltrace2")
        .arg(trace)
        .args(["-c", "sink.utils.counter"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running babeltrace2")?;
    if !out.status.success() {
        bail!(
            "babeltrace2 failed on {}: {}",
            trace.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(began.elapsed())
}

fn use_baseline(args: &BenchArgs) -> bool {
    args.baseline.as_deref() != Some("none") && babeltrace2_available()
}

/// Inputs of the trace suites: the generated trace, then many-threads if present.
fn inputs(args: &BenchArgs, dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut v = vec![(
        format!("generated {}", format::bytes(trace_bytes(args.size))),
        generated_trace(dir, args.size, args.json)?,
    )];
    if let Some(mt) = shared_many_threads() {
        v.push(("many-threads".into(), mt));
    }
    Ok(v)
}

pub fn bench_ctf(args: &BenchArgs, dir: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let baseline = use_baseline(args);
    for (label, trace) in inputs(args, dir)? {
        let mut times = Vec::new();
        let mut events = 0;
        let mut peak = 0;
        for _ in 0..args.runs {
            rss::reset_peak();
            let began = Instant::now();
            events = decode_every_field(&trace)?;
            times.push(began.elapsed());
            peak = peak.max(rss::peak());
        }
        let s = stats(times);
        let rate = events as f64 / s.median.as_secs_f64();
        let mut value = format!(
            "{}, {:.1} M events/s, peak RSS {}",
            s,
            rate / 1e6,
            format::bytes(peak)
        );
        let mut j = json!({"stage": "ctf_decode_every_field", "input": label, "events": events,
            "median_s": s.median.as_secs_f64(), "min_s": s.min.as_secs_f64(), "max_s": s.max.as_secs_f64(),
            "events_per_s": rate, "peak_rss": peak});
        if baseline {
            let mut bt = Vec::new();
            for _ in 0..args.runs {
                bt.push(babeltrace2_count(&trace)?);
            }
            let b = stats(bt);
            let bt_rate = events as f64 / b.median.as_secs_f64();
            value.push_str(&format!(
                "; babeltrace2 {} ({:.2} M events/s): {:.1}x",
                format::duration(b.median),
                bt_rate / 1e6,
                rate / bt_rate
            ));
            j["babeltrace2_median_s"] = json!(b.median.as_secs_f64());
            j["ratio_vs_babeltrace2"] = json!(rate / bt_rate);
        }
        rows.push(Row {
            name: format!("decode every field, {label} ({events} events)"),
            value,
            json: j,
        });
        rows.push(stats_row(args, &label, &trace)?);
    }
    Ok(())
}

/// `sextant stats` counting: the merged pass on one thread against the streams read
/// on every core without merge (`stats::compute_parallel`), with speed-up and
/// efficiency (speed-up / cores).
fn stats_row(args: &BenchArgs, label: &str, trace: &Path) -> Result<Row> {
    let cores = available_cores();
    let mut one = Vec::new();
    let mut all = Vec::new();
    let mut events = 0;
    for _ in 0..args.runs {
        let mut exp = Experiment::open(&[trace])?;
        let began = Instant::now();
        let s = sextant_trace::stats::compute(&mut exp, &AtomicU64::new(0))?;
        one.push(began.elapsed());
        let mut exp = Experiment::open(&[trace])?;
        let began = Instant::now();
        let p = sextant_trace::stats::compute_parallel(&mut exp, cores, &AtomicU64::new(0))?;
        all.push(began.elapsed());
        if p != s {
            bail!("parallel stats differ from the merged pass on {label}");
        }
        events = s.total;
    }
    let (a, b) = (stats(one), stats(all));
    let speedup = a.median.as_secs_f64() / b.median.as_secs_f64();
    Ok(Row {
        name: format!("event counts (stats), {label}: 1 thread merged vs {cores} threads"),
        value: format!(
            "{} vs {} median: {speedup:.2}x, efficiency {:.2} on {cores} cores",
            format::duration(a.median),
            format::duration(b.median),
            speedup / cores as f64
        ),
        json: json!({"stage": "ctf_stats_parallel", "input": label, "events": events,
            "threads": cores, "one_thread_median_s": a.median.as_secs_f64(),
            "parallel_median_s": b.median.as_secs_f64(), "speedup": speedup,
            "efficiency": speedup / cores as f64}),
    })
}

/// Restricts this process (and the threads it starts) to the first `cores` CPUs.
fn pin_to_cores(cores: usize) -> Result<()> {
    #[cfg(target_os = "linux")]
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in 0..cores {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One kernel-analysis build into a .ht file: (time, events, intervals, file size).
fn kernel_build(trace: &Path, out: &Path) -> Result<(Duration, u64, u64, u64)> {
    let mut source = sextant_providers::sources::open(&[trace.to_path_buf()])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let provider = sextant_providers::native_registry()
        .create("kernel")
        .context("kernel analysis")?;
    // Each run starts from a settled disk: the previous run's file is freed and the
    // file system flushed outside the timing, so a run does not pay for the one
    // before it (that showed as 6.4 .. 8.2 s on the same 1 GiB build).
    let _ = std::fs::remove_file(out);
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let began = Instant::now();
    let (report, _) = pipeline::build(
        &mut *source,
        vec![Analysis {
            provider,
            output: Output::file(out),
        }],
        &BuildOptions::default(),
    )?;
    let elapsed = began.elapsed();
    let a = &report.analyses[0];
    Ok((
        elapsed,
        report.events,
        a.intervals,
        a.file_size.unwrap_or(0),
    ))
}

struct KernelRuns {
    median: Duration,
    min: Duration,
    max: Duration,
    events: u64,
    intervals: u64,
    size: u64,
    peak: u64,
}

/// `args.runs` kernel builds with the process restricted to `cores` CPUs.
fn kernel_runs(args: &BenchArgs, trace: &Path, out: &Path, cores: usize) -> Result<KernelRuns> {
    pin_to_cores(cores)?;
    let mut times = Vec::new();
    let (mut events, mut intervals, mut size, mut peak) = (0, 0, 0, 0);
    for _ in 0..args.runs {
        rss::reset_peak();
        let (t, e, i, s) = kernel_build(trace, out)?;
        times.push(t);
        (events, intervals, size) = (e, i, s);
        peak = peak.max(rss::peak());
    }
    let s = stats(times);
    Ok(KernelRuns {
        median: s.median,
        min: s.min,
        max: s.max,
        events,
        intervals,
        size,
        peak,
    })
}

pub fn bench_kernel(args: &BenchArgs, dir: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let baseline = use_baseline(args);
    let cores = available_cores();
    for (label, trace) in inputs(args, dir)? {
        let out = dir.join("sextant-bench-kernel.ht");
        let KernelRuns {
            median,
            min,
            max,
            events,
            intervals,
            size,
            peak,
        } = kernel_runs(args, &trace, &out, cores)?;
        let rate = events as f64 / median.as_secs_f64();
        let mut value = format!(
            "{} median [{} .. {}], {:.2} M events/s, {intervals} intervals, .ht {}, peak RSS {}",
            format::duration(median),
            format::duration(min),
            format::duration(max),
            rate / 1e6,
            format::bytes(size),
            format::bytes(peak)
        );
        let mut j = json!({"stage": "kernel_build", "input": label, "events": events,
            "intervals": intervals, "file_size": size, "peak_rss": peak, "cores": cores,
            "median_s": median.as_secs_f64(), "min_s": min.as_secs_f64(), "max_s": max.as_secs_f64(),
            "events_per_s": rate});
        if cores > 1 {
            let one = kernel_runs(args, &trace, &out, 1)?.median;
            let speedup = one.as_secs_f64() / median.as_secs_f64();
            value.push_str(&format!(
                "; on 1 core {}: {speedup:.2}x speed-up on {cores} cores (efficiency {:.0}%)",
                format::duration(one),
                speedup / cores as f64 * 100.0
            ));
            j["one_core_median_s"] = json!(one.as_secs_f64());
            j["speedup"] = json!(speedup);
            pin_to_cores(cores)?;
        }
        if baseline {
            let mut bt = Vec::new();
            for _ in 0..args.runs {
                bt.push(babeltrace2_count(&trace)?);
            }
            let b = stats(bt);
            let ratio = b.median.as_secs_f64() / median.as_secs_f64();
            value.push_str(&format!(
                "; babeltrace2 decoding alone {}: kernel analysis {ratio:.1}x faster",
                format::duration(b.median)
            ));
            j["babeltrace2_median_s"] = json!(b.median.as_secs_f64());
            j["ratio_vs_babeltrace2"] = json!(ratio);
        }
        let _ = std::fs::remove_file(&out);
        rows.push(Row {
            name: format!("kernel analysis, {label} ({events} events)"),
            value,
            json: j,
        });
    }
    Ok(())
}
