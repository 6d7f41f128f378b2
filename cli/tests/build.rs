//! `sextant build` end to end: analyses by name, JSON summary, errors and exit codes,
//! Trace Compass workspace layout, custom-parser logs with XML analyses.

use std::path::Path;
use std::process::{Command, Output};

fn sextant(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn bad_arguments_exit_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let o = sextant(&["build", "nowhere", "-a", "kernel"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("nowhere"), "{}", text(&o));

    let o = sextant(&["build", ".", "-a", "no-such-analysis"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("unknown analysis `no-such-analysis`"),
        "{}",
        text(&o)
    );

    // Usage errors are exit code 2.
    let o = sextant(&["build", "."], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    let o = sextant(&["build", "--list"], dir.path());
    assert!(o.status.success());
    assert!(text(&o).contains("org.eclipse.tracecompass.analysis.os.linux.kernel"));
}

#[test]
fn a_generated_trace_builds_into_the_tracecompass_workspace_layout() {
    let dir = tempfile::tempdir().unwrap();
    let o = sextant(
        &["gen-trace", "t", "--events", "5000", "--cpus", "2"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = sextant(
        &[
            "build",
            "t",
            "-a",
            "kernel,diskio",
            "--json",
            "--tracecompass-workspace",
            "ws",
            "--project",
            "Cloud",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["events"], 5000);
    let analyses = summary["analyses"].as_array().unwrap();
    assert_eq!(analyses.len(), 2);
    for a in analyses {
        let id = a["id"].as_str().unwrap();
        let file = dir.path().join(format!("ws/Cloud/.tracing/t/{id}.ht"));
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            a["file_size"].as_u64().unwrap(),
            "{id}"
        );
        assert!(a["intervals"].as_u64().unwrap() > 0);
    }
    // Nothing but the finished histories is left (no temporary files).
    let left = std::fs::read_dir(dir.path().join("ws/Cloud/.tracing/t"))
        .unwrap()
        .count();
    assert_eq!(left, 2);
}

#[test]
fn custom_xml_logs_run_xml_analyses() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let base = shared.join("fixtures/openstack-rabbitmq");
    let dir = tempfile::tempdir().unwrap();
    let log = base.join("trace/amq.rabbitmq.trace/notifications.info.xml");
    let records = std::fs::read_to_string(&log)
        .unwrap()
        .matches("<event>")
        .count();
    let o = sextant(
        &[
            "build",
            log.to_str().unwrap(),
            "--parser",
            base.join("nova/xml_parser.xml").to_str().unwrap(),
            "--xml",
            base.join("nova/ops_analyse_view.xml").to_str().unwrap(),
            "-o",
            "out",
            "--json",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["events"].as_u64().unwrap() as usize, records);
    assert!(dir.path().join("out").is_file());
}

#[test]
fn a_multi_host_experiment_is_synchronized_once_and_the_formulas_reused() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let ctf = shared.join("traces/ctf");
    let (src, dest) = (ctf.join("scp_src/ctf"), ctf.join("scp_dest/ctf"));
    let dir = tempfile::tempdir().unwrap();
    // `out` is not there yet: it becomes the folder of the two hosts' histories.
    let args = [
        "build",
        src.to_str().unwrap(),
        dest.to_str().unwrap(),
        "-a",
        "kernel",
        "-o",
        "out",
    ];
    let first = sextant(&args, dir.path());
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("46 matches"), "{}", text(&first));
    let saved = dir.path().join("out/sextant-sync.json");
    assert!(saved.is_file());
    let second = sextant(&args, dir.path());
    assert!(
        text(&second).contains("formulas read from"),
        "{}",
        text(&second)
    );
    // One history per host, in a folder named after its trace (Trace Compass builds a
    // trace's kernel analysis per trace, in the experiment's synchronized time).
    let ht = |out: &str, trace: &str| {
        std::fs::read(dir.path().join(format!("{out}/{trace}/{KERNEL}.ht"))).unwrap()
    };
    let first_src = ht("out", "scp_src");
    let first_dest = ht("out", "scp_dest");
    // The same formulas give the same histories.
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(ht("out", "scp_src"), first_src);
    assert_eq!(ht("out", "scp_dest"), first_dest);
    let off = sextant(
        &[&args[..5], &["--sync", "off", "-o", "off"]].concat(),
        dir.path(),
    );
    assert!(off.status.success(), "{}", text(&off));
    // scp_src's clock is mapped onto scp_dest's (the reference host, unchanged).
    assert_ne!(ht("off", "scp_src"), first_src);
    assert_eq!(ht("off", "scp_dest"), first_dest);
}

const KERNEL: &str = "org.eclipse.tracecompass.analysis.os.linux.kernel";

#[test]
fn two_hosts_give_one_history_each_equal_to_the_single_trace_build() {
    let Some(shared) = sextant_tests::shared_dir() else {
        return;
    };
    let ctf = shared.join("traces/ctf");
    let (src, dest) = (ctf.join("scp_src"), ctf.join("scp_dest"));
    let (src, dest) = (src.to_str().unwrap(), dest.to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let json = |o: &Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", text(o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let both = json(&sextant(
        &[
            "build", src, dest, "-a", "kernel", "--sync", "off", "--json", "-o", "out",
        ],
        dir.path(),
    ));
    let hosts = both["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0]["trace"], "scp_src");
    assert_eq!(hosts[1]["trace"], "scp_dest");
    assert_eq!(
        hosts
            .iter()
            .map(|h| h["events"].as_u64().unwrap())
            .sum::<u64>(),
        both["events"].as_u64().unwrap()
    );
    for (trace, path) in [("scp_src", src), ("scp_dest", dest)] {
        let single = json(&sextant(
            &[
                "build",
                path,
                "-a",
                "kernel",
                "--json",
                "-o",
                &format!("{trace}.ht"),
            ],
            dir.path(),
        ));
        let host = hosts.iter().find(|h| h["trace"] == trace).unwrap();
        assert_eq!(host["events"], single["events"], "{trace}");
        assert_eq!(host["start"], single["start"], "{trace}");
        let out = host["analyses"][0]["output"].as_str().unwrap();
        assert_eq!(out, format!("out/{trace}/{KERNEL}.ht"));
        assert_eq!(
            std::fs::read(dir.path().join(out)).unwrap(),
            std::fs::read(dir.path().join(format!("{trace}.ht"))).unwrap(),
            "{trace}: the per-host history is the single-trace one"
        );
    }

    // Synchronized, in a Trace Compass workspace: each trace's own supplementary folder,
    // the formulas in the experiment's; scp_src's first event moves as `sextant sync` says.
    let synced = json(&sextant(
        &[
            "build",
            src,
            dest,
            "-a",
            "kernel",
            "--json",
            "--tracecompass-workspace",
            "ws",
            "--project",
            "P",
            "--trace-name",
            "pair",
        ],
        dir.path(),
    ));
    let tracing = dir.path().join("ws/P/.tracing");
    assert!(tracing.join("pair_exp/sextant-sync.json").is_file());
    for trace in ["scp_src", "scp_dest"] {
        assert!(
            tracing.join(format!("{trace}/{KERNEL}.ht")).is_file(),
            "{trace}"
        );
    }
    let formulas = json(&sextant(&["sync", src, dest, "--json"], dir.path()));
    let t = &formulas["traces"][0]["transform"];
    // Exact: slope = a/b and offset = c/d; this pair's fractions share their denominator.
    let fraction = |k: &str| -> (i128, i128) {
        let (n, d) = t[k].as_str().unwrap().split_once('/').unwrap();
        (n.parse().unwrap(), d.parse().unwrap())
    };
    let ((a, b), (c, d)) = (fraction("slope_exact"), fraction("offset_exact"));
    assert_eq!(b, d);
    let original = hosts[0]["start"].as_i64().unwrap();
    let expected = (a * original as i128 + c).div_euclid(b) as i64;
    assert_eq!(synced["hosts"][0]["start"].as_i64().unwrap(), expected);
    assert_ne!(expected, original);
    assert_eq!(
        synced["hosts"][1]["start"], hosts[1]["start"],
        "reference host"
    );
}
