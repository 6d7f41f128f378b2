//! One client's Control Flow states requests, in process (no sockets), for
//! profiling the states answer alone (e.g. under `valgrind --tool=callgrind` or
//! `perf stat`): opens the trace as `sextant bench server` does, then sends
//! `requests` requests of 500 rows x 1,000 times over the load generator's
//! windows (`window` fixed, or -1 to walk the ten windows), printing each
//! request's time and answer size.
//!
//! `cargo run --release -p sextant-server --example states_probe -- <trace dir> <data dir> [requests=10] [window=-1]`

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sextant_server::kernel_views::CONTROL_FLOW_ID;
use tower::ServiceExt;

async fn call(app: &axum::Router, method: &str, path: &str, body: String) -> (u16, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(format!("/tsp/api{path}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status().as_u16();
    let bytes = r.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, bytes)
}

async fn json_call(app: &axum::Router, method: &str, path: &str, body: Value) -> Value {
    let (s, b) = call(app, method, path, body.to_string()).await;
    assert_eq!(s, 200, "{path}: {}", String::from_utf8_lossy(&b));
    serde_json::from_slice(&b).unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: states_probe <trace dir> <data dir> [requests=10] [window=-1]");
        std::process::exit(2);
    }
    let trace = std::fs::canonicalize(&args[1]).expect("trace path");
    let requests: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let window: i64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(-1);
    let serve = sextant_server::ServeConfig {
        port: 0,
        data_dir: Some(args[2].clone().into()),
        ..Default::default()
    };
    let app = sextant_server::router(sextant_server::state(serve));
    let t = json_call(
        &app,
        "POST",
        "/traces",
        json!({"parameters": {"uri": trace}}),
    )
    .await;
    let e = json_call(
        &app,
        "POST",
        "/experiments",
        json!({"parameters": {"name": "probe", "traces": [t["UUID"]]}}),
    )
    .await;
    let exp = e["UUID"].as_str().unwrap().to_string();
    let e = loop {
        let e = json_call(&app, "GET", &format!("/experiments/{exp}"), Value::Null).await;
        if e["indexingStatus"] == "COMPLETED" {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (start, end) = (e["start"].as_i64().unwrap(), e["end"].as_i64().unwrap());
    let base = format!("/experiments/{exp}/outputs/timeGraph/{CONTROL_FLOW_ID}");
    let tree = json_call(
        &app,
        "POST",
        &format!("{base}/tree"),
        json!({"parameters": {}}),
    )
    .await;
    let ids: Vec<i64> = tree["model"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["parentId"] != -1)
        .filter_map(|e| e["id"].as_i64())
        .collect();
    let rows = ids.len().min(500);
    eprintln!("{} thread rows, {rows} per request", ids.len());
    let span = (end - start) / 10;
    let step = ((end - start - span) / 9).max(0);
    let mut total = Duration::ZERO;
    for round in 0..requests {
        let w = if window >= 0 {
            window
        } else {
            (round % 10) as i64
        };
        let offset = w * step;
        let first = (round * 17) % ids.len();
        let items: Vec<i64> = ids.iter().cycle().skip(first).take(rows).copied().collect();
        let body = json!({"parameters": {"requested_timerange": {"start": start + offset, "end": start + offset + span, "nbTimes": 1000}, "requested_items": items}});
        let began = Instant::now();
        let (s, b) = call(&app, "POST", &format!("{base}/states"), body.to_string()).await;
        let took = began.elapsed();
        total += took;
        assert_eq!(s, 200);
        let v: Value = serde_json::from_slice(&b).unwrap();
        let states: usize = v["model"]["rows"].as_array().map_or(0, |r| {
            r.iter()
                .map(|r| r["states"].as_array().map_or(0, Vec::len))
                .sum()
        });
        println!(
            "request {round} window {w}: {:.1} ms, {} bytes, {states} states",
            took.as_secs_f64() * 1e3,
            b.len()
        );
    }
    println!(
        "mean {:.1} ms",
        total.as_secs_f64() * 1e3 / requests.max(1) as f64
    );
}
