//! XML views (`--xml`): a `timeGraphView` of Trace Compass's data-provider test,
//! run on its stub trace, checked against the expected tree and rows recorded
//! from Trace Compass (`shared/fixtures/xml/view-timegraph-two-levels`).

mod common;

use std::time::{Duration, Instant};

use common::{get, out, post};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_time_graph_view_matches_trace_compass() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let case = shared.join("fixtures/xml/view-timegraph-two-levels");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(case.join("expected.json")).unwrap()).unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = sextant_server::ServeConfig {
        data_dir: Some(data.path().to_path_buf()),
        xml_files: vec![case.join("analysis.xml"), case.join("view.xml")],
        ..Default::default()
    };
    let app = sextant_server::router(sextant_server::state(config));
    let name = expected["trace_name"].as_str().unwrap();
    let body = json!({"parameters": {"uri": case.join("trace.xml"), "name": name}}).to_string();
    let trace = post(&app, "/traces", &body).await.ok()["UUID"].clone();
    let body = json!({"parameters": {"name": name, "traces": [trace]}}).to_string();
    let exp = post(&app, "/experiments", &body).await.ok()["UUID"]
        .as_str()
        .unwrap()
        .to_string();
    let began = Instant::now();
    loop {
        let e = get(&app, &format!("/experiments/{exp}")).await;
        if e.ok()["indexingStatus"] == "COMPLETED" {
            assert!(
                e.json["traces"][0]["properties"]
                    .get("analysisErrors")
                    .is_none(),
                "{}",
                e.text
            );
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(300));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for check in expected["checks"].as_array().unwrap() {
        let view = check["view_id"].as_str().unwrap();
        let tree = post(
            &app,
            &out(&exp, &format!("timeGraph/{view}/tree")),
            r#"{"parameters":{}}"#,
        )
        .await;
        let entries = tree.ok()["model"]["entries"].as_array().unwrap().clone();
        let name_of = |id: i64| {
            entries
                .iter()
                .find(|e| e["id"] == id)
                .map(|e| e["labels"][0].as_str().unwrap().to_string())
        };
        let id_of = |n: &str| {
            entries
                .iter()
                .find(|e| e["labels"][0] == n)
                .unwrap_or_else(|| panic!("no entry {n}"))["id"]
                .as_i64()
                .unwrap()
        };
        match check["kind"].as_str().unwrap() {
            "timegraph_tree" => {
                let want = check["entries"].as_array().unwrap();
                assert_eq!(entries.len(), want.len(), "{entries:?}");
                for (got, want) in entries.iter().zip(want) {
                    assert_eq!(got["labels"][0], want["name"]);
                    assert_eq!(got["start"], want["start"], "{got}");
                    assert_eq!(got["end"], want["end"], "{got}");
                    let parent = name_of(got["parentId"].as_i64().unwrap());
                    assert_eq!(parent.as_deref(), want["parent"].as_str(), "{got}");
                }
            }
            "timegraph_rows" => {
                let q = &check["query"];
                let want_rows = check["rows"].as_array().unwrap();
                let items: Vec<i64> = want_rows
                    .iter()
                    .map(|r| id_of(r["entry"].as_str().unwrap()))
                    .collect();
                let body = json!({"parameters": {"requested_timerange": {"start": q["start"], "end": q["end"], "nbTimes": q["count"]}, "requested_items": items}}).to_string();
                let states =
                    post(&app, &out(&exp, &format!("timeGraph/{view}/states")), &body).await;
                let rows = states.ok()["model"]["rows"].as_array().unwrap().clone();
                for (want, id) in want_rows.iter().zip(&items) {
                    let row = rows.iter().find(|r| r["entryId"] == *id).unwrap();
                    let got: Vec<(i64, i64, Option<String>)> = row["states"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| {
                            let start = s["start"].as_i64().unwrap();
                            (
                                start,
                                s["end"].as_i64().unwrap() - start,
                                s["label"].as_str().map(str::to_string),
                            )
                        })
                        .collect();
                    let want: Vec<(i64, i64, Option<String>)> = want["states"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| {
                            (
                                s[0].as_i64().unwrap(),
                                s[1].as_i64().unwrap(),
                                s[3].as_str().map(str::to_string),
                            )
                        })
                        .collect();
                    assert_eq!(got, want, "row {}", want_rows.len());
                }
            }
            other => panic!("unexpected check kind {other}"),
        }
    }
}
