//! The README's first command: `sextant demo` generates a kernel trace, builds its
//! history and queries it, with nothing but the binary.

use std::process::Command;

use sht::StateSystemQuerier;

#[test]
fn demo_generates_builds_and_queries_a_kernel_trace() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["demo", "--events", "20000", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("20000 events of an LTTng kernel trace"),
        "{stdout}"
    );
    // Every CPU of the sample is reported with a thread and a status.
    let cpus = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("CPU ") && l.contains("), "))
        .count();
    assert_eq!(cpus, 4, "{stdout}");

    // The history is a Trace Compass kernel-analysis file (provider version 31).
    let ss = sht::StateSystem::open(dir.path().join("kernel.ht"), Some(31)).unwrap();
    assert!(ss.quark(&["Threads"]).is_ok());
    assert_eq!(ss.quarks(&["CPUs", "*"]).unwrap().len(), 4);
}
