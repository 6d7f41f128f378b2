//! Fixed, deterministic hot-path workloads for instruction counting.
//!
//! `hotpaths STAGE N DIR` runs one stage on `N` units and exits; the
//! `instruction_budget` test runs it under callgrind at two sizes and divides the
//! difference by the units, so process start-up and set-up cancel out. Timings never
//! enter CI; instruction counts are deterministic for one compiler and profile.

use std::path::Path;

use std::sync::atomic::AtomicU64;

use sextant_benches::{Rng, Workload};
use sextant_trace::gen::{generate, GenConfig, GenLimit};
use sextant_trace::Experiment;
use sht::{HtConfig, StateSystem, StateSystemQuerier};

fn build(n: u64, path: &Path) -> sht::Result<StateSystem> {
    let w = Workload::flat(n);
    // The plain (unthreaded) backend: a writer thread would add scheduling noise.
    let mut ss = StateSystem::create_history_tree(path, HtConfig::new(w.start(), 1))?;
    w.run(&mut ss)?;
    Ok(ss)
}

/// The generated kernel trace of `n` events used by `ctf-decode`.
fn ctf_trace(n: u64, dir: &Path) -> std::path::PathBuf {
    dir.join(format!("ctf-{n}"))
}

/// Writes the trace outside callgrind (`ctf-gen`), so only decoding is counted.
fn ctf_gen(n: u64, dir: &Path) -> Result<u64, String> {
    let config = GenConfig {
        limit: GenLimit::Events(n),
        replace_existing: true,
        ..GenConfig::default()
    };
    generate(&ctf_trace(n, dir), &config, None)
        .map(|r| r.events)
        .map_err(|e| e.to_string())
}

/// Reads every event of the `ctf-gen` trace and every field through its accessor.
fn ctf_decode(n: u64, dir: &Path) -> Result<u64, String> {
    let path = ctf_trace(n, dir);
    let mut exp = Experiment::open(&[path.as_path()]).map_err(|e| e.to_string())?;
    let (events, acc) = sextant_trace::stats::read_all_fields(&mut exp, true, &AtomicU64::new(0))
        .map_err(|e| e.to_string())?;
    std::hint::black_box(acc);
    Ok(events)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: hotpaths ht-insert|ht-query|ctf-gen|ctf-decode N DIR";
    let (Some(stage), Some(n), Some(dir)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Ok(n) = n.parse::<u64>() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    let result = match stage.as_str() {
        "ctf-gen" => ctf_gen(n, dir),
        // One unit: one kernel event decoded with every field (header, contexts,
        // payload, strings), streams merged by time.
        "ctf-decode" => ctf_decode(n, dir),
        _ => ht_stage(stage, n, dir).map_err(|e| e.to_string()),
    };
    if let Err(e) = result {
        eprintln!("hotpaths: {e}");
        std::process::exit(1);
    }
}

fn ht_stage(stage: &str, n: u64, dir: &Path) -> sht::Result<u64> {
    match stage {
        // One unit: one state change (modify, transient state, interval into the tree).
        "ht-insert" => build(n, &dir.join("insert.ht")).map(|_| 0),
        // One unit: one warm single query at a random time and attribute, on a
        // fixed 200 k-change history.
        "ht-query" => build(200_000, &dir.join("query.ht")).map(|ss| {
            let w = Workload::flat(200_000);
            let mut rng = Rng::new(42);
            let count = ss.attribute_count() as u64;
            let mut found = 0u64;
            for _ in 0..n {
                let t = rng.below(w.end() as u64) as i64;
                let q = rng.below(count) as i32;
                found += u64::from(ss.query_single(t, q).is_ok());
            }
            found
        }),
        _ => {
            eprintln!("usage: hotpaths ht-insert|ht-query|ctf-gen|ctf-decode N DIR");
            std::process::exit(2);
        }
    }
}
