//! Fixed, deterministic hot-path workloads for instruction counting.
//!
//! `hotpaths STAGE N DIR` runs one stage on `N` units and exits; the
//! `instruction_budget` test runs it under callgrind at two sizes and divides the
//! difference by the units, so process start-up and set-up cancel out. Timings never
//! enter CI; instruction counts are deterministic for one compiler and profile.

use std::path::Path;

use sextant_benches::{Rng, Workload};
use sht::{HtConfig, StateSystem, StateSystemQuerier};

fn build(n: u64, path: &Path) -> sht::Result<StateSystem> {
    let w = Workload::flat(n);
    // The plain (unthreaded) backend: a writer thread would add scheduling noise.
    let mut ss = StateSystem::create_history_tree(path, HtConfig::new(w.start(), 1))?;
    w.run(&mut ss)?;
    Ok(ss)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: hotpaths ht-insert|ht-query N DIR";
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
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("hotpaths: {e}");
        std::process::exit(1);
    }
}
