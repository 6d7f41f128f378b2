//! POST /experiments does not wait for the synchronization of a multi-host experiment: it
//! answers at once (RUNNING) and the experiment becomes the synchronized one when the
//! formulas are known, with the same views as when the creation waited for them
//! (`Catalog::create_experiment`, the blocking path). Uses the scp_src / scp_dest pair.

mod common;

use common::{get, out, post, tree, wait_completed};
use serde_json::{json, Value};
use sextant_providers::sources::{SyncMode, SAVED_SYNC_FILE};
use std::path::Path;

const CONTROL_FLOW: &str =
    "org.eclipse.tracecompass.internal.analysis.os.linux.core.threadstatus.ThreadStatusDataProvider";
const RESOURCES: &str =
    "org.eclipse.tracecompass.internal.analysis.os.linux.core.kernel.ResourcesStatusDataProvider";

fn catalog(traces: &Path, data: &Path) -> sextant_server::api::AppState {
    sextant_server::state(sextant_server::ServeConfig {
        port: 0,
        data_dir: Some(data.to_path_buf()),
        trace_roots: vec![traces.to_path_buf()],
        sync: SyncMode::Auto,
        ..Default::default()
    })
}

/// Opens scp_src and scp_dest alone and waits for their analyses; their UUIDs.
async fn open_both(app: &axum::Router) -> Vec<String> {
    let mut uuids = Vec::new();
    for name in ["scp_src", "scp_dest"] {
        let body = json!({"parameters": {"uri": format!("{name}/ctf"), "name": name}});
        let t = post(app, "/traces", &body.to_string()).await;
        uuids.push(t.ok()["UUID"].as_str().unwrap().to_string());
    }
    for u in &uuids {
        wait_completed(app, &format!("/traces/{u}")).await;
    }
    uuids
}

/// Every state of every entry of a time graph over the experiment's whole range, sampled
/// at 200 times, with the tree: what a client draws.
async fn view(app: &axum::Router, exp: &str, view: &str, range: (i64, i64)) -> (Value, Value) {
    let entries = tree(app, exp, "timeGraph", view).await;
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let times: Vec<i64> = (0..200)
        .map(|i| range.0 + (range.1 - range.0) / 199 * i)
        .collect();
    let body =
        json!({"parameters": {"requested_times": times, "requested_items": ids}}).to_string();
    let a = post(app, &out(exp, &format!("timeGraph/{view}/states")), &body).await;
    assert_eq!(a.ok()["status"], "COMPLETED", "{}", a.text);
    (Value::Array(entries), a.json["model"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_answers_before_the_synchronization_and_the_views_are_unchanged() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let traces = shared.join("traces/ctf");

    // The experiment as POST makes it now, its synchronization held back.
    let data = tempfile::tempdir().unwrap();
    let app = sextant_server::router(catalog(&traces, data.path()));
    let uuids = open_both(&app).await;
    let saved = data.path().join(".tracing/held_exp").join(SAVED_SYNC_FILE);
    let hold = sextant_server::sync::hold_synchronization("held");
    let body = json!({"parameters": {"name": "held", "traces": uuids}}).to_string();
    let posted = post(&app, "/experiments", &body).await;
    let exp = posted.ok()["UUID"].as_str().unwrap().to_string();
    // The answer came while the synchronization could not have started: no formula is
    // saved, the experiment is RUNNING and already lists its two traces.
    assert!(!saved.exists());
    assert_eq!(posted.json["indexingStatus"], "RUNNING");
    let listed: Vec<&str> = posted.json["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["UUID"].as_str().unwrap())
        .collect();
    assert_eq!(listed, uuids.iter().map(String::as_str).collect::<Vec<_>>());
    // Still held: still RUNNING, and the same experiment is found again by name.
    let again = post(&app, "/experiments", &body).await;
    assert_eq!(again.ok()["UUID"], exp.as_str());
    assert_eq!(
        get(&app, &format!("/experiments/{exp}")).await.ok()["indexingStatus"],
        "RUNNING"
    );
    let outputs_while_held = get(&app, &format!("/experiments/{exp}/outputs")).await;
    drop(hold);
    let done = wait_completed(&app, &format!("/experiments/{exp}")).await;
    let done = done.json;
    let matched: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(matched["matches"], 46);
    assert!(done["traces"][0]["properties"]["clockTransform"]
        .as_str()
        .unwrap()
        .starts_with("t * 0.99994137837"));
    // The output list did not change when the synchronized experiment took over.
    let outputs_after = get(&app, &format!("/experiments/{exp}/outputs")).await;
    assert_eq!(outputs_while_held.ok(), outputs_after.ok());

    // The same experiment created by the blocking path, in another data folder.
    let data2 = tempfile::tempdir().unwrap();
    let state2 = catalog(&traces, data2.path());
    let app2 = sextant_server::router(state2.clone());
    let uuids2 = open_both(&app2).await;
    assert_eq!(uuids2, uuids);
    let made = tokio::task::spawn_blocking(move || state2.create_experiment("held", &uuids2))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{}", e.title));
    assert_eq!(made.uuid, exp);
    let before = wait_completed(&app2, &format!("/experiments/{exp}"))
        .await
        .json;
    assert_eq!(done, before);

    let range = (
        done["start"].as_i64().unwrap(),
        done["end"].as_i64().unwrap(),
    );
    for v in [CONTROL_FLOW, RESOURCES] {
        let now = view(&app, &exp, v, range).await;
        let then = view(&app2, &exp, v, range).await;
        assert!(now.0.as_array().unwrap().len() > 10, "{v}: {}", now.0);
        assert_eq!(now, then, "{v}");
    }
}
