//! CI regression guard: instructions per unit of each hot path, counted by
//! callgrind, must stay within 25% of the budget in `instruction-budget.txt`.
//!
//! Counts are deterministic for one toolchain and the test profile, unlike
//! timings. A deliberate change of cost updates the budget file (the failure message
//! prints the measured figure).

use std::path::Path;
use std::process::Command;

const TOLERANCE: f64 = 1.25;

/// Inputs made outside callgrind, so that only the stage itself is counted.
fn prepare(stage: &str, n: u64, dir: &Path) {
    if stage != "ctf-decode" {
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_hotpaths"))
        .args(["ctf-gen", &n.to_string(), &dir.display().to_string()])
        .output()
        .expect("running hotpaths ctf-gen");
    assert!(
        output.status.success(),
        "hotpaths ctf-gen {n} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn callgrind_instructions(stage: &str, n: u64, dir: &Path) -> u64 {
    prepare(stage, n, dir);
    let out_file = dir.join(format!("callgrind.{stage}.{n}"));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(env!("CARGO_BIN_EXE_hotpaths"))
        .args([stage, &n.to_string(), &dir.display().to_string()])
        .output()
        .expect("running valgrind");
    assert!(
        output.status.success(),
        "hotpaths {stage} {n} failed under valgrind: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let profile = std::fs::read_to_string(&out_file).expect("reading the callgrind output");
    // The "summary:" (or "totals:") line holds the total of the first event, Ir.
    profile
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no instruction total in {}", out_file.display()))
}

fn budgets() -> Vec<(String, u64, f64)> {
    let text = include_str!("../instruction-budget.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(
                f.len(),
                3,
                "budget line {l:?}: STAGE UNITS INSTRUCTIONS_PER_UNIT"
            );
            (
                f[0].to_string(),
                f[1].parse().expect("units"),
                f[2].parse().expect("instructions per unit"),
            )
        })
        .collect()
}

#[test]
fn hot_paths_stay_within_their_instruction_budget() {
    let has_valgrind = Command::new("valgrind").arg("--version").output().is_ok();
    if !has_valgrind {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "valgrind is required for the instruction budget under CI=true"
        );
        eprintln!("note: valgrind not found; instruction budget not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (stage, units, budget) in budgets() {
        let small = callgrind_instructions(&stage, units, dir.path());
        let large = callgrind_instructions(&stage, units * 2, dir.path());
        let per_unit = large.saturating_sub(small) as f64 / units as f64;
        report.push(format!(
            "{stage}: {per_unit:.1} instructions per unit (budget {budget:.1})"
        ));
        if per_unit > budget * TOLERANCE {
            failures.push(format!(
                "{stage} costs {per_unit:.1} instructions per unit, {:.0}% over its budget of {budget:.1}",
                (per_unit / budget - 1.0) * 100.0
            ));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
