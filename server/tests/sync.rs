//! Experiments of traces from several hosts are served in synchronized time (`serve --sync`),
//! over real HTTP on a loopback port, with the scp_src / scp_dest pair of `shared/traces`.

mod common;

use common::net::{completed, ok, start_server_with, Server};

use std::path::Path;

use serde_json::{json, Value};
use sextant_providers::sources::SyncMode;

async fn start_server(traces: &Path, data_dir: &Path, sync: SyncMode) -> Server {
    let config = sextant_server::ServeConfig {
        port: 0,
        data_dir: Some(data_dir.to_path_buf()),
        trace_roots: vec![traces.to_path_buf()],
        sync,
        ..Default::default()
    };
    start_server_with(config).await
}

/// Opens scp_src and scp_dest, then the experiment `pair`; returns (src alone, dest
/// alone, experiment), all analysed.
async fn open_pair(server: &Server) -> (Value, Value, Value) {
    let mut uuids = Vec::new();
    for name in ["scp_src", "scp_dest"] {
        let body = json!({"parameters": {"uri": format!("{name}/ctf"), "name": name}});
        let t = ok(server, "POST", "/traces", Some(&body.to_string())).await;
        uuids.push(t["UUID"].as_str().unwrap().to_string());
    }
    let src = completed(server, &format!("/traces/{}", uuids[0])).await;
    let dest = completed(server, &format!("/traces/{}", uuids[1])).await;
    let body = json!({"parameters": {"name": "pair", "traces": uuids}});
    let e = ok(server, "POST", "/experiments", Some(&body.to_string())).await;
    let exp = completed(
        server,
        &format!("/experiments/{}", e["UUID"].as_str().unwrap()),
    )
    .await;
    (src, dest, exp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_of_two_hosts_is_in_synchronized_time() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let traces = shared.join("traces/ctf");
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&traces, data.path(), SyncMode::Auto).await;
    let (src, dest, exp) = open_pair(&server).await;

    // The formulas were computed (46 matches, as Trace Compass) and saved in the
    // experiment's supplementary folder.
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(data.path().join(".tracing/pair_exp/sextant-sync.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["matches"], 46);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(shared.join("golden/sync/scp/expected.json")).unwrap(),
    )
    .unwrap();
    let slope = saved["traces"][0]["transform"]["slope"].as_str().unwrap();
    let tc_slope = expected["transforms"]["scp_src"]["slope"].as_str().unwrap();
    assert_eq!(slope[..30], tc_slope[..30]);

    // scp_src's range in the experiment is its own range through the formula (exact
    // fractions a/b and c/b), scp_dest (the reference) keeps its clock.
    let t = &saved["traces"][0]["transform"];
    let fraction = |k: &str| -> (i128, i128) {
        let (n, d) = t[k].as_str().unwrap().split_once('/').unwrap();
        (n.parse().unwrap(), d.parse().unwrap())
    };
    let ((a, b), (c, d)) = (fraction("slope_exact"), fraction("offset_exact"));
    assert_eq!(b, d);
    let f = |ns: &Value| (a * ns.as_i64().unwrap() as i128 + c).div_euclid(b) as i64;
    let in_exp = &exp["traces"];
    assert_eq!(in_exp[0]["UUID"], src["UUID"]);
    assert_eq!(in_exp[0]["start"].as_i64().unwrap(), f(&src["start"]));
    assert_eq!(in_exp[0]["end"].as_i64().unwrap(), f(&src["end"]));
    assert_ne!(in_exp[0]["start"], src["start"]);
    assert!(in_exp[0]["properties"]["clockTransform"]
        .as_str()
        .unwrap()
        .starts_with("t * 0.99994137837"));
    assert_eq!(in_exp[1]["start"], dest["start"]);
    assert_eq!(in_exp[1]["end"], dest["end"]);
    let start = f(&src["start"]).min(dest["start"].as_i64().unwrap());
    let end = f(&src["end"]).max(dest["end"].as_i64().unwrap());
    assert_eq!(exp["start"].as_i64().unwrap(), start);
    assert_eq!(exp["end"].as_i64().unwrap(), end);
    // The trace alone keeps its own clock.
    let alone = ok(
        &server,
        "GET",
        &format!("/traces/{}", src["UUID"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(alone["start"], src["start"]);
    assert!(data
        .path()
        .join(".tracing/pair_exp/scp_src/org.eclipse.tracecompass.analysis.os.linux.kernel.ht")
        .is_file());
    drop(server);

    // A new server reuses the saved formulas and histories; with --sync off the
    // experiment is in the traces' own clocks.
    let again = start_server(&traces, data.path(), SyncMode::Auto).await;
    let (_, _, exp2) = open_pair(&again).await;
    assert_eq!(exp2["start"], exp["start"]);
    assert_eq!(exp2["traces"][0]["start"], in_exp[0]["start"]);
    let off_dir = tempfile::tempdir().unwrap();
    let off = start_server(&traces, off_dir.path(), SyncMode::Off).await;
    let (src_off, _, exp_off) = open_pair(&off).await;
    assert_eq!(exp_off["traces"][0]["start"], src_off["start"]);
    // No formulas nor twins; the folder holds only the experiment's own analyses.
    let off_exp = off_dir.path().join(".tracing/pair_exp");
    assert!(!off_exp
        .join(sextant_providers::sources::SAVED_SYNC_FILE)
        .exists());
    assert!(!off_exp.join("scp_src").exists());
}
