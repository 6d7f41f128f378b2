//! `sextant bench`: whole-stage figures on generated inputs, with medians and
//! spreads over several runs, throughput and peak memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use serde_json::json;
use sextant_benches::{Rng, Workload};
use sht::{HistoryTreeReader, HtConfig, StateSystem, StateSystemQuerier, TimeCondition};

use crate::format;

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Suite {
    /// The state history tree: build, queries, scan
    Ht,
    /// The CTF reader: decoding every field of generated and real kernel traces
    Ctf,
    /// The Linux kernel analysis end to end (CTF -> .ht), on 1 core and on all
    Kernel,
    /// An XML analysis against the same model as a native provider
    Xml,
    /// The VM analyses against the kernel analysis on a generated KVM host trace
    Vm,
    /// The OpenStack providers on a Nova-like UST stream
    Openstack,
    /// The TSP server: 64 clients sending time-graph requests on a kernel history
    Server,
    /// Trace synchronization: first synchronized builds of multi-host pairs against the same
    /// builds unsynchronized (whole `sextant build` processes, 67 alternated runs per --runs
    /// on the scp pair of ../shared, 5 on a generated host + guest pair)
    Sync,
    /// Every suite above
    All,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Size {
    /// 500 k changes; 64 MiB kernel trace (seconds)
    Small,
    /// 5 M changes (the workload Trace Compass was measured on); 1 GiB kernel trace
    Medium,
    /// 20 M changes; 10 GiB kernel trace
    Large,
}

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure
    #[arg(value_enum, default_value = "ht")]
    pub(crate) suite: Suite,
    #[arg(long, value_enum, default_value = "medium")]
    pub(crate) size: Size,
    /// Runs per measurement (the median is reported)
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
    /// Where to write the generated files (default: the system temporary directory)
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Also run Trace Compass's HistoryTreeBackendBenchmark scenarios
    #[arg(long)]
    pub(crate) scenarios: bool,
    /// Print machine-readable JSON
    #[arg(long)]
    pub(crate) json: bool,
    /// Baseline to measure in the same run: `babeltrace2` (default when installed) or `none`
    #[arg(long, value_name = "NAME")]
    pub(crate) baseline: Option<String>,
}

/// Linux peak-RSS tracking: reset the high-water mark, then read it.
pub(crate) mod rss {
    pub fn reset_peak() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    /// Peak resident set size in bytes since the last reset (0 if unknown).
    pub fn peak() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

pub(crate) struct Stats {
    pub(crate) median: Duration,
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

/// `median median [min .. max]`, human-readable.
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} median [{} .. {}]",
            format::duration(self.median),
            format::duration(self.min),
            format::duration(self.max)
        )
    }
}

pub(crate) fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    Stats {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

fn per_op(total: Duration, n: usize) -> Duration {
    total / n.max(1) as u32
}

pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) json: serde_json::Value,
}

fn build_once(w: &Workload, path: &Path) -> Result<(Duration, u64, u64)> {
    let _ = std::fs::remove_file(path);
    rss::reset_peak();
    let began = Instant::now();
    let mut ss = StateSystem::create_history_tree(path, HtConfig::new(w.start(), 1))?;
    w.run(&mut ss)?;
    let elapsed = began.elapsed();
    Ok((elapsed, rss::peak(), std::fs::metadata(path)?.len()))
}

fn count_intervals(path: &Path) -> Result<u64> {
    let r = HistoryTreeReader::open(path, None)?;
    Ok(r.scan(&mut |_| {})?)
}

fn bench_ht(args: &BenchArgs, dir: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let changes = match args.size {
        Size::Small => 500_000,
        Size::Medium => 5_000_000,
        Size::Large => 20_000_000,
    };
    let w = Workload::flat(changes);
    let path = dir.join(format!("{}.ht", w.name()));
    let mut times = Vec::new();
    let (mut peak, mut size) = (0, 0);
    for _ in 0..args.runs {
        let (t, p, s) = build_once(&w, &path)?;
        times.push(t);
        peak = peak.max(p);
        size = s;
    }
    let intervals = count_intervals(&path)?;
    let b = stats(times);
    let rate = intervals as f64 / b.median.as_secs_f64();
    rows.push(Row {
        name: format!("build {} ({} intervals)", w.name(), intervals),
        value: format!(
            "{}, {:.1} M intervals/s, peak RSS {}, file {}",
            b,
            rate / 1e6,
            format::bytes(peak),
            format::bytes(size)
        ),
        json: json!({"stage": "build", "workload": w.name(), "intervals": intervals,
            "median_s": b.median.as_secs_f64(), "min_s": b.min.as_secs_f64(), "max_s": b.max.as_secs_f64(),
            "intervals_per_s": rate, "peak_rss": peak, "file_size": size}),
    });

    let ss = StateSystem::open(&path, None)?;
    let n = ss.attribute_count() as i32;
    let (start, end) = (ss.start_time(), ss.current_end_time());
    let span = (end - start) as u64;
    let mut rng = Rng::new(99);
    let queries = 20_000;

    // Warm single queries: the node cache holds the tree's upper levels.
    let mut per = Vec::new();
    for _ in 0..args.runs {
        let began = Instant::now();
        for _ in 0..queries {
            let t = start + rng.below(span) as i64;
            ss.query_single(t, rng.below(n as u64) as i32)?;
        }
        per.push(per_op(began.elapsed(), queries));
    }
    let s = stats(per);
    rows.push(Row {
        name: "single query, warm".into(),
        value: format!(
            "{} mean per query (median of {} runs of {queries})",
            format::duration(s.median),
            args.runs
        ),
        json: json!({"stage": "single_warm", "mean_s": s.median.as_secs_f64()}),
    });

    // Cold: a fresh reader (empty node cache) per query; the OS page cache is warm.
    let mut per = Vec::new();
    for _ in 0..50 {
        let t = start + rng.below(span) as i64;
        let q = rng.below(n as u64) as i32;
        let began = Instant::now();
        let fresh = StateSystem::open(&path, None)?;
        fresh.query_single(t, q)?;
        per.push(began.elapsed());
    }
    let s = stats(per);
    rows.push(Row {
        name: "single query, cold (open + query)".into(),
        value: format!("{}", s),
        json: json!({"stage": "single_cold", "median_s": s.median.as_secs_f64()}),
    });

    let mut per = Vec::new();
    for _ in 0..args.runs {
        let began = Instant::now();
        for _ in 0..2000 {
            ss.query_full(start + rng.below(span) as i64)?;
        }
        per.push(per_op(began.elapsed(), 2000));
    }
    let s = stats(per);
    rows.push(Row {
        name: format!("full query ({n} attributes)"),
        value: format!("{} mean per query", format::duration(s.median)),
        json: json!({"stage": "full", "mean_s": s.median.as_secs_f64()}),
    });

    let all: Vec<i32> = (0..n).collect();
    let window = (span / 100) as i64;
    let mut windows = Vec::new();
    for _ in 0..100 {
        windows.push(start + rng.below(span - window as u64) as i64);
    }
    // Warm: every node decoded once beforehand (the cache holds them all).
    ss.query_2d_visit(&all, &TimeCondition::range(start, end), &mut |_| {})?;
    for (label, fresh) in [("warm", false), ("cold, new reader", true)] {
        let mut per = Vec::new();
        let mut found = 0u64;
        for &t in &windows {
            let began = Instant::now();
            if fresh {
                let cold = StateSystem::open(&path, None)?;
                cold.query_2d_visit(&all, &TimeCondition::range(t, t + window), &mut |_| {
                    found += 1
                })?;
            } else {
                ss.query_2d_visit(&all, &TimeCondition::range(t, t + window), &mut |_| {
                    found += 1
                })?;
            }
            per.push(began.elapsed());
        }
        let s = stats(per);
        rows.push(Row {
            name: format!("2D query, all attributes x 1% of time ({label})"),
            value: format!(
                "{}, {} intervals per query",
                s,
                found / windows.len() as u64
            ),
            json: json!({"stage": if fresh { "2d_1pct_cold" } else { "2d_1pct_warm" },
                "median_s": s.median.as_secs_f64(), "intervals": found / windows.len() as u64}),
        });
    }

    let reader = HistoryTreeReader::open(&path, None)?;
    let mut per = Vec::new();
    for _ in 0..args.runs {
        let began = Instant::now();
        reader.scan(&mut |_| {})?;
        per.push(began.elapsed());
    }
    let s = stats(per);
    let rate = intervals as f64 / s.median.as_secs_f64();
    rows.push(Row {
        name: "full scan".into(),
        value: format!(
            "{} median, {:.1} M intervals/s",
            format::duration(s.median),
            rate / 1e6
        ),
        json: json!({"stage": "scan", "median_s": s.median.as_secs_f64(), "intervals_per_s": rate}),
    });
    let _ = std::fs::remove_file(&path);

    if args.scenarios {
        for w in Workload::scenarios() {
            let path = dir.join(format!("{}.ht", w.name()));
            let mut times = Vec::new();
            let mut size = 0;
            for _ in 0..args.runs {
                let (t, _, s) = build_once(&w, &path)?;
                times.push(t);
                size = s;
            }
            let intervals = count_intervals(&path)?;
            let b = stats(times);
            let rate = intervals as f64 / b.median.as_secs_f64();
            rows.push(Row {
                name: format!("build {} ({intervals} intervals)", w.name()),
                value: format!("{} median, {:.1} M intervals/s, file {}", format::duration(b.median), rate / 1e6, format::bytes(size)),
                json: json!({"stage": "build", "workload": w.name(), "intervals": intervals,
                    "median_s": b.median.as_secs_f64(), "intervals_per_s": rate, "file_size": size}),
            });
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    if let Some(b) = args.baseline.as_deref() {
        if b != "babeltrace2" && b != "none" {
            bail!("unknown baseline `{b}` (babeltrace2 or none)");
        }
    }
    if matches!(args.suite, Suite::Ht | Suite::All) {
        bench_ht(&args, &dir, &mut rows)?;
    }
    if matches!(args.suite, Suite::Ctf | Suite::All) {
        crate::bench_trace::bench_ctf(&args, &dir, &mut rows)?;
    }
    if matches!(args.suite, Suite::Kernel | Suite::All) {
        crate::bench_trace::bench_kernel(&args, &dir, &mut rows)?;
    }
    if matches!(args.suite, Suite::Xml | Suite::All) {
        crate::bench_suites::bench_xml(&args, &dir, &mut rows)?;
    }
    if matches!(args.suite, Suite::Vm | Suite::All) {
        crate::bench_suites::bench_vm(&args, &dir, &mut rows)?;
    }
    if matches!(args.suite, Suite::Openstack | Suite::All) {
        crate::bench_suites::bench_openstack(&args, &mut rows)?;
    }
    if matches!(args.suite, Suite::Server | Suite::All) {
        crate::bench_suites::bench_server(&args, &dir, &mut rows)?;
    }
    if matches!(args.suite, Suite::Sync | Suite::All) {
        crate::bench_suites::bench_sync(&args, &dir, &mut rows)?;
    }
    if args.json {
        let v: Vec<_> = rows.into_iter().map(|r| r.json).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for r in rows {
            println!("{:width$}  {}", r.name, r.value);
        }
    }
    Ok(())
}
