//! `sextant bench`: the suites print one JSON row per stage with real figures.

use std::process::Command;

use serde_json::Value;

/// `../shared` as the tests see it (`$SEXTANT_SHARED`, else beside the repository).
fn shared() -> std::path::PathBuf {
    std::env::var_os("SEXTANT_SHARED").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
        std::path::PathBuf::from,
    )
}

fn bench(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .arg("bench")
        .args(args)
        .args(["--runs", "1", "--json", "--baseline", "none"])
        .env("SEXTANT_SHARED", shared())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn openstack_suite_reports_every_provider() {
    let rows = bench(&["openstack", "--size", "small"]);
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["analysis"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nova", "nova-services", "neutron", "cinder"]);
    for r in &rows {
        assert_eq!(r["stage"], "openstack");
        assert_eq!(r["events"], 250_000);
        assert!(r["events_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["min_s"].as_f64() <= r["median_s"].as_f64());
    }
}

#[test]
fn bad_suite_and_zero_runs_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["bench", "no-such-suite"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["bench", "openstack", "--runs", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--runs"));
}

#[test]
fn sync_suite_reports_the_overhead_of_a_first_synchronization() {
    let dir = std::env::temp_dir().join(format!("sextant-bench-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rows = bench(&["sync", "--size", "small", "--dir", dir.to_str().unwrap()]);
    let workloads: Vec<&str> = rows
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    let mut want = vec!["generated host + guest (20M)"];
    if shared().join("traces/ctf/scp_src").is_dir() {
        want.insert(0, "scp pair");
    }
    assert_eq!(workloads, want);
    for r in &rows {
        assert_eq!(r["stage"], "sync");
        let (off, auto) = (
            r["off_median_s"].as_f64().unwrap(),
            r["auto_median_s"].as_f64().unwrap(),
        );
        assert!(off > 0.0 && auto > 0.0, "{r}");
        assert!((r["overhead"].as_f64().unwrap() - (auto / off - 1.0)).abs() < 1e-9);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
