//! Transport rules, traces/experiments life cycle and every class of bad request
//! (tsp.md §1, §3, §4, §5.3, §9), on `.ht` files made by the test itself.

mod common;

use std::path::{Path, PathBuf};

use axum::http::Method;
use common::*;
use serde_json::json;
use sht::{HtConfig, StateSystem, StateSystemBuilder, StateValue};

/// Writes a small history: `x` = the worked example of tsp.md §7.2, `grp/n` a long.
fn write_ht(path: &Path) {
    let mut ss = StateSystem::create_history_tree(path, HtConfig::new(1000, 1)).unwrap();
    let x = ss.quark_and_add(&["x"]).unwrap();
    let n = ss.quark_and_add(&["grp", "n"]).unwrap();
    ss.modify(1000, StateValue::string("A"), x).unwrap();
    ss.modify(1000, StateValue::Long(5), n).unwrap();
    ss.modify(1100, StateValue::string("B"), x).unwrap();
    ss.modify(1101, StateValue::Null, x).unwrap();
    ss.modify(1400, StateValue::Long(7), n).unwrap();
    ss.modify(1500, StateValue::string("A"), x).unwrap();
    ss.close(1999).unwrap();
}

fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.ht");
    write_ht(&path);
    (dir, path)
}

const CORS: [(&str, &str); 3] = [
    ("access-control-allow-origin", "*"),
    (
        "access-control-allow-headers",
        "origin, content-type, accept, authorization",
    ),
    (
        "access-control-allow-methods",
        "GET, POST, PUT, DELETE, OPTIONS, HEAD",
    ),
];

fn assert_cors(a: &Answer) {
    for (k, v) in CORS {
        assert_eq!(
            a.headers.get(k).map(|h| h.to_str().unwrap()),
            Some(v),
            "{k}"
        );
    }
}

#[tokio::test]
async fn health_identifier_and_transport_rules() {
    let app = app();
    let h = get(&app, "/health").await;
    assert_eq!(h.ok(), &json!({"status": "UP"}));
    assert_eq!(h.text, r#"{"status":"UP"}"#);
    assert_cors(&h);
    let id = get(&app, "/identifier").await;
    let id = id.ok();
    for key in ["version", "os", "productId", "tspVersion"] {
        assert!(id[key].is_string(), "{key} in {id}");
    }
    assert_eq!(id["tspVersion"], "0.6.0");

    // OPTIONS preflight on known, parameterised and unknown paths.
    for path in [
        "/health",
        "/traces",
        "/experiments/0b5c5a1e-0000-5000-8000-000000000000/outputs/timeGraph/x/states",
        "/no/such/path",
    ] {
        let a = send(&app, Method::OPTIONS, path, None).await;
        assert!(a.status.is_success(), "{path}: {}", a.status);
        assert_cors(&a);
    }
    // Unknown paths: 404 JSON with CORS; wrong method: 405 JSON.
    let a = get(&app, "/no/such/path").await;
    a.error(404, "Not found");
    assert_cors(&a);
    // Extractor rejections are JSON errors too (a path that is not UTF-8).
    let a = get(&app, "/traces/%FF").await;
    assert_eq!(a.status.as_u16(), 400);
    assert_eq!(a.content_type(), "application/json");
    assert!(a.json["title"].is_string());
    assert_cors(&a);
    let a = send(&app, Method::PUT, "/health", None).await;
    assert_eq!(a.status.as_u16(), 405);
    assert_eq!(a.content_type(), "application/json");
    assert_cors(&a);
}

#[tokio::test]
async fn traces_are_opened_idempotently_listed_and_deleted() {
    let (_dir, path) = fixture();
    let app = app();
    assert_eq!(get(&app, "/traces").await.ok(), &json!([]));
    let body = json!({"parameters": {"uri": path, "name": "small"}}).to_string();
    let first = post(&app, "/traces", &body).await;
    let t = first.ok().clone();
    assert_eq!(t["name"], "small");
    assert_eq!(t["start"], 1000);
    assert_eq!(t["end"], 1999);
    assert_eq!(t["indexingStatus"], "COMPLETED");
    assert_eq!(t["properties"], json!({}));
    let uuid = t["UUID"].as_str().unwrap().to_string();
    assert_eq!(uuid.len(), 36);
    assert_eq!(uuid, uuid.to_lowercase());
    // Re-posting the same path gives the same trace (also via another spelling of it).
    let again = post(&app, "/traces", &body).await;
    assert_eq!(again.ok()["UUID"], uuid.as_str());
    let dotted = path.parent().unwrap().join(".").join("small.ht");
    let body2 = json!({"parameters": {"uri": dotted, "name": "small"}}).to_string();
    assert_eq!(
        post(&app, "/traces", &body2).await.ok()["UUID"],
        uuid.as_str()
    );
    // A fresh server derives the same UUID (name-based).
    assert_eq!(
        post(&common::app(), "/traces", &body).await.ok()["UUID"],
        uuid.as_str()
    );
    // Default name = last path segment.
    let (_d2, other) = fixture();
    let noname = json!({"parameters": {"uri": other}}).to_string();
    let a = post(&app, "/traces", &noname).await;
    assert_eq!(a.ok()["name"], "small.ht");
    let other_uuid = a.json["UUID"].as_str().unwrap().to_string();

    // Same name, other path: 409 with the existing trace.
    let (_d3, third) = fixture();
    let clash = json!({"parameters": {"uri": third, "name": "small"}}).to_string();
    let a = post(&app, "/traces", &clash).await;
    a.error(409, "The trace (small) already exists and both differ");
    assert_eq!(a.json["trace"]["UUID"], uuid.as_str());

    let list = get(&app, "/traces").await;
    assert_eq!(list.ok().as_array().unwrap().len(), 2);
    assert_eq!(
        get(&app, &format!("/traces/{uuid}")).await.ok()["UUID"],
        uuid.as_str()
    );
    let d = delete(&app, &format!("/traces/{other_uuid}")).await;
    assert_eq!(d.ok()["UUID"], other_uuid.as_str());
    get(&app, &format!("/traces/{other_uuid}"))
        .await
        .error(404, &format!("No trace found with uuid {other_uuid}"));
    assert!(other.exists(), "deleting a trace keeps its files");
}

#[tokio::test]
async fn experiments_life_cycle() {
    let (_dir, path) = fixture();
    let app = app();
    let (trace, exp) = open(&app, &path, "small").await;
    let e = get(&app, &format!("/experiments/{exp}")).await;
    let e = e.ok();
    assert_eq!(e["name"], "small");
    assert_eq!(e["indexingStatus"], "COMPLETED");
    assert_eq!(
        (e["start"].as_i64(), e["end"].as_i64()),
        (Some(1000), Some(1999))
    );
    assert_eq!(e["traces"][0]["UUID"], trace.as_str());
    // Same name and traces: same experiment; same name, other traces: 409.
    let body = json!({"parameters": {"name": "small", "traces": [trace]}}).to_string();
    assert_eq!(
        post(&app, "/experiments", &body).await.ok()["UUID"],
        exp.as_str()
    );
    let (_d2, other) = fixture();
    let t2 = post(
        &app,
        "/traces",
        &json!({"parameters": {"uri": other, "name": "other"}}).to_string(),
    )
    .await
    .json["UUID"]
        .as_str()
        .unwrap()
        .to_string();
    let clash = json!({"parameters": {"name": "small", "traces": [t2]}}).to_string();
    let a = post(&app, "/experiments", &clash).await;
    a.error(
        409,
        "The experiment (small) already exists and both differ.",
    );
    assert_eq!(a.json["experiment"]["UUID"], exp.as_str());
    assert_eq!(
        get(&app, "/experiments")
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A trace in use cannot be deleted.
    let a = delete(&app, &format!("/traces/{trace}")).await;
    a.error(
        409,
        "The trace is in use by at least one experiment thus cannot be deleted.",
    );
    assert_eq!(a.json["trace"]["UUID"], trace.as_str());
    // Delete the experiment, then the trace.
    assert_eq!(
        delete(&app, &format!("/experiments/{exp}")).await.ok()["UUID"],
        exp.as_str()
    );
    get(&app, &format!("/experiments/{exp}"))
        .await
        .error(404, &format!("No experiment found with uuid {exp}"));
    delete(&app, &format!("/traces/{trace}")).await.ok();
    assert_eq!(get(&app, "/experiments").await.ok(), &json!([]));
}

#[tokio::test]
async fn bad_bodies_and_parameters_are_400() {
    let (_dir, path) = fixture();
    let app = app();
    // Missing body.
    send(&app, Method::POST, "/traces", None)
        .await
        .error(400, "Missing query parameters");
    // Malformed JSON.
    post(&app, "/traces", "{\"parameters\": {")
        .await
        .error(400, "Invalid query parameters");
    post(&app, "/traces", "[1,2]")
        .await
        .error(400, "Invalid query parameters");
    // Missing / mistyped keys.
    post(&app, "/traces", r#"{"parameters":{}}"#)
        .await
        .error(400, "Missing query parameters: uri");
    post(&app, "/traces", r#"{"parameters":null}"#)
        .await
        .error(400, "Missing query parameters: uri");
    post(&app, "/traces", r#"{"parameters":{"uri":5}}"#)
        .await
        .error(400, "Invalid query parameters: uri");
    post(&app, "/experiments", r#"{"parameters":{"traces":[]}}"#)
        .await
        .error(400, "Missing query parameters: name");
    post(&app, "/experiments", r#"{"parameters":{"name":"x"}}"#)
        .await
        .error(400, "Missing query parameters: traces");
    post(
        &app,
        "/experiments",
        r#"{"parameters":{"name":"x","traces":[1]}}"#,
    )
    .await
    .error(400, "Invalid query parameters: traces");

    // Output parameters.
    let (_t, exp) = open(&app, &path, "small").await;
    let states = out(&exp, &format!("timeGraph/{EXPLORER}/states"));
    send(&app, Method::POST, &states, None)
        .await
        .error(400, "Missing query parameters");
    post(&app, &states, r#"{"parameters":{"requested_items":[1]}}"#)
        .await
        .error(400, "Missing query parameters: requested_timerange");
    post(
        &app,
        &states,
        r#"{"parameters":{"requested_timerange":{"start":0,"end":10}}}"#,
    )
    .await
    .error(400, "Missing query parameters: requested_items");
    post(
        &app,
        &states,
        r#"{"parameters":{"requested_timerange":{"start":"0","end":10},"requested_items":[]}}"#,
    )
    .await
    .error(400, "Invalid query parameters: requested_timerange");
    // Beyond i64 and fractional timestamps are refused, not rounded.
    post(
        &app,
        &states,
        r#"{"parameters":{"requested_timerange":{"start":0,"end":9223372036854775808},"requested_items":[]}}"#,
    )
    .await
    .error(400, "Invalid query parameters: requested_timerange");
    post(
        &app,
        &states,
        r#"{"parameters":{"requested_timerange":{"start":0.5,"end":10},"requested_items":[]}}"#,
    )
    .await
    .error(400, "Invalid query parameters: requested_timerange");
    post(
        &app,
        &states,
        r#"{"parameters":{"requested_timerange":{"start":0,"end":10},"requested_items":["a"]}}"#,
    )
    .await
    .error(400, "Invalid query parameters: requested_items");
    let tooltip = out(&exp, &format!("timeGraph/{EXPLORER}/tooltip"));
    post(
        &app,
        &tooltip,
        r#"{"parameters":{"requested_times":[1000],"requested_items":[1]}}"#,
    )
    .await
    .error(400, "Missing query parameters: requested_element");
    post(
        &app,
        &tooltip,
        r#"{"parameters":{"requested_items":[1],"requested_element":{}}}"#,
    )
    .await
    .error(400, "Missing query parameters: requested_times");
}

#[tokio::test]
async fn unknown_ids_and_bad_paths() {
    let (dir, path) = fixture();
    let app = app();
    let (_t, exp) = open(&app, &path, "small").await;
    let ghost = "0b5c5a1e-0000-5000-8000-000000000000";
    get(&app, &format!("/traces/{ghost}"))
        .await
        .error(404, &format!("No trace found with uuid {ghost}"));
    delete(&app, &format!("/traces/{ghost}"))
        .await
        .error(404, &format!("No trace found with uuid {ghost}"));
    get(&app, "/traces/not-a-uuid")
        .await
        .error(404, "No trace found with uuid not-a-uuid");
    // Upper-case is not canonical.
    let upper = exp.to_uppercase();
    get(&app, &format!("/experiments/{upper}"))
        .await
        .error(404, &format!("No experiment found with uuid {upper}"));
    delete(&app, &format!("/experiments/{ghost}"))
        .await
        .error(404, &format!("No experiment found with uuid {ghost}"));
    post(
        &app,
        "/experiments",
        &json!({"parameters": {"name": "e", "traces": [ghost]}}).to_string(),
    )
    .await
    .error(404, &format!("No trace found with UUID {ghost}"));

    // Output endpoints: unknown experiment → 404 "No such trace"; unknown output → 405.
    get(&app, &format!("/experiments/{ghost}/outputs"))
        .await
        .error(404, "No such trace");
    post(
        &app,
        &out(ghost, &format!("timeGraph/{EXPLORER}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await
    .error(404, "No such trace");
    get(&app, &out(ghost, "markerSets"))
        .await
        .error(404, "No such trace");
    post(
        &app,
        &out(&exp, "timeGraph/nope/tree"),
        r#"{"parameters":{}}"#,
    )
    .await
    .error(405, "Analysis cannot run");
    post(&app, &out(&exp, "nope/style"), r#"{"parameters":{}}"#)
        .await
        .error(405, "Analysis cannot run");
    get(&app, &out(&exp, "nope"))
        .await
        .error(404, "Data provider doesn't exist");
    // An output of another type on a time-graph / XY endpoint → 405.
    post(
        &app,
        &out(&exp, &format!("timeGraph/{SS_XY}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await
    .error(405, "Analysis cannot run");
    post(
        &app,
        &out(&exp, &format!("XY/{EXPLORER}/xy")),
        r#"{"parameters":{"requested_timerange":{"start":1000,"end":2000},"requested_items":[]}}"#,
    )
    .await
    .error(405, "Analysis cannot run");

    // Trace paths.
    let missing = dir.path().join("missing.ht");
    post(
        &app,
        "/traces",
        &json!({"parameters": {"uri": missing}}).to_string(),
    )
    .await
    .error(404, &format!("No trace at {}", missing.display()));
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a trace").unwrap();
    post(
        &app,
        "/traces",
        &json!({"parameters": {"uri": text}}).to_string(),
    )
    .await
    .error(501, "Trace type not supported");
    let empty_dir = tempfile::tempdir().unwrap();
    post(
        &app,
        "/traces",
        &json!({"parameters": {"uri": empty_dir.path()}}).to_string(),
    )
    .await
    .error(501, "Trace type not supported");
    let corrupt = dir.path().join("corrupt.ht");
    std::fs::write(&corrupt, vec![7u8; 5000]).unwrap();
    let a = post(
        &app,
        "/traces",
        &json!({"parameters": {"uri": corrupt}}).to_string(),
    )
    .await;
    assert_eq!(a.status.as_u16(), 406, "{}", a.text);
    assert_eq!(a.content_type(), "application/json");
    assert!(a.json["title"].as_str().unwrap().contains("corrupt.ht"));
    let fresh = fixture();
    post(&app, "/traces", r#"{"parameters":{"uri":""}}"#)
        .await
        .error(400, "Invalid query parameters: uri");
    post(
        &app,
        "/traces",
        &json!({"parameters": {"uri": fresh.1, "typeID": "no.such.type"}}).to_string(),
    )
    .await
    .error(501, "Trace type not supported");
}

#[tokio::test]
async fn trace_roots_confine_and_resolve_paths() {
    let (dir, path) = fixture();
    let outside = tempfile::tempdir().unwrap();
    let other = outside.path().join("o.ht");
    write_ht(&other);
    let config = sextant_server::ServeConfig {
        trace_roots: vec![dir.path().to_path_buf()],
        ..Default::default()
    };
    let app = sextant_server::router(sextant_server::state(config));
    // A relative path is looked up in the roots.
    let a = post(&app, "/traces", r#"{"parameters":{"uri":"small.ht"}}"#).await;
    assert_eq!(
        a.ok()["path"],
        path.canonicalize().unwrap().to_string_lossy().as_ref()
    );
    post(
        &app,
        "/traces",
        &json!({"parameters": {"uri": other}}).to_string(),
    )
    .await
    .error(400, "Invalid query parameters: uri");
}

#[tokio::test]
async fn bounded_work_per_request() {
    let (_dir, path) = fixture();
    let app = app();
    let (_t, exp) = open(&app, &path, "small").await;
    let states = out(&exp, &format!("timeGraph/{EXPLORER}/states"));
    // Too many items: refused.
    let items: Vec<i64> = (0..100_001).collect();
    let body = json!({"parameters": {"requested_timerange": {"start": 1000, "end": 2000},
                                     "requested_items": items}})
    .to_string();
    post(&app, &states, &body)
        .await
        .error(400, "Invalid query parameters: requested_items");
    // A huge nbTimes is clamped (65536 samples), and the XY answer stays that size.
    let tree = post(
        &app,
        &out(&exp, &format!("XY/{SS_XY}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await;
    let n = tree.ok()["model"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["labels"][0] == "n")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let body = json!({"parameters": {"requested_timerange": {"start": 0, "end": 9_000_000_000_000_000_000i64, "nbTimes": 2_000_000_000},
                                     "requested_items": [n]}})
    .to_string();
    let xy = post(&app, &out(&exp, &format!("XY/{SS_XY}/xy")), &body).await;
    let series = &xy.ok()["model"]["series"][0];
    let len = series["xValues"].as_array().unwrap().len();
    assert!((65_536..=65_537).contains(&len), "{len}");
    assert_eq!(series["yValues"].as_array().unwrap().len(), len);
    // Too many explicit times: refused.
    let times: Vec<i64> = (0..70_000).collect();
    let body =
        json!({"parameters": {"requested_times": times, "requested_items": [n]}}).to_string();
    post(&app, &out(&exp, &format!("XY/{SS_XY}/xy")), &body)
        .await
        .error(400, "Invalid query parameters: requested_times");
}
