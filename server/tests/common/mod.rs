//! Shared helpers of the server tests: the golden data directory, and one-shot
//! requests on the router (no network).
#![allow(dead_code)]

pub mod net;

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// `$SEXTANT_SHARED`, else `<workspace>/../shared`; `None` (with a notice) when
/// absent, except under `CI=true` where it must exist.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SEXTANT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    if dir.join("golden").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "shared data directory {} is missing (CI=true)",
            dir.display()
        );
    }
    eprintln!(
        "notice: shared data {} not found; skipping golden-file test",
        dir.display()
    );
    None
}

/// A golden `.ht` file, e.g. `golden("09-kernel-like")`.
pub fn golden(case: &str) -> Option<PathBuf> {
    shared_dir().map(|d| d.join("golden/ht").join(case).join("expected.ht"))
}

/// The view ids of the incubator's Virtual CPU and Virtual Resources views.
pub const VCPU_VIEW: &str =
    "org.eclipse.tracecompass.incubator.internal.virtual.machine.analysis.vm.ui.vmview";
pub const FUSED_VIEW: &str =
    "org.eclipse.tracecompass.incubator.internal.virtual.machine.analysis.ui.views.virtualresources";

/// A golden case folder of `shared/golden` and its `expected.json`.
pub fn golden_case(case: &str) -> Option<(PathBuf, Value)> {
    let dir = shared_dir()?.join("golden").join(case);
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    Some((dir, serde_json::from_str(&text).unwrap()))
}

/// The intervals check of the attribute at `path` ("a/b/c") in a golden
/// `expected.json`: its `[start, end, value]` triples.
pub fn golden_intervals<'a>(g: &'a Value, path: &str) -> &'a [Value] {
    let joined = |p: &Value| {
        p.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("/")
    };
    g["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "intervals" && joined(&c["path"]) == path)
        .unwrap_or_else(|| panic!("no golden intervals for {path}"))["intervals"]
        .as_array()
        .unwrap()
}

/// A golden attribute's intervals: (start, end, integer value or None).
pub fn intervals(g: &Value, path: &str) -> Vec<(i64, i64, Option<i64>)> {
    golden_intervals(g, path)
        .iter()
        .map(|i| {
            (
                i[0].as_i64().unwrap(),
                i[1].as_i64().unwrap(),
                i[2]["v"].as_i64(),
            )
        })
        .collect()
}

/// An answer: status, headers, body text, body JSON (Null if not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// Asserts 200 with `application/json` and returns the JSON.
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.text);
        assert_eq!(self.content_type(), "application/json");
        &self.json
    }

    /// Asserts an error answer with the exact content type and title.
    pub fn error(&self, status: u16, title: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.content_type(), "application/json");
        assert_eq!(self.json["title"], title, "body: {}", self.text);
    }
}

pub async fn send(app: &Router, method: Method, path: &str, body: Option<&str>) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("/tsp/api{path}"))
        .header("accept", "application/json");
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

pub async fn get(app: &Router, path: &str) -> Answer {
    send(app, Method::GET, path, None).await
}

pub async fn post(app: &Router, path: &str, body: &str) -> Answer {
    send(app, Method::POST, path, Some(body)).await
}

pub async fn delete(app: &Router, path: &str) -> Answer {
    send(app, Method::DELETE, path, None).await
}

/// A router with the default registry.
pub fn app() -> Router {
    sextant_server::router(sextant_server::state(Default::default()))
}

/// Opens `path` as a trace and a one-trace experiment; returns (trace, experiment) UUIDs.
pub async fn open(app: &Router, path: &std::path::Path, name: &str) -> (String, String) {
    let body = serde_json::json!({"parameters": {"uri": path, "name": name}}).to_string();
    let t = post(app, "/traces", &body).await;
    let trace = t.ok()["UUID"].as_str().unwrap().to_string();
    let body = serde_json::json!({"parameters": {"name": name, "traces": [trace]}}).to_string();
    let e = post(app, "/experiments", &body).await;
    let exp = e.ok()["UUID"].as_str().unwrap().to_string();
    (trace, exp)
}

/// Polls `GET path` (a trace or an experiment) until its `indexingStatus` is
/// COMPLETED, failing after 10 minutes; returns that answer.
pub async fn wait_completed(app: &Router, path: &str) -> Answer {
    let began = std::time::Instant::now();
    loop {
        let a = get(app, path).await;
        if a.ok()["indexingStatus"] == "COMPLETED" {
            return a;
        }
        assert!(
            began.elapsed() < std::time::Duration::from_secs(600),
            "{path}: analyses too slow"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The entries of `kind/view/tree` (`kind`: `timeGraph` or `XY`), which must be COMPLETED.
pub async fn tree(app: &Router, exp: &str, kind: &str, view: &str) -> Vec<Value> {
    let a = post(
        app,
        &out(exp, &format!("{kind}/{view}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await;
    assert_eq!(a.ok()["status"], "COMPLETED", "{}", a.text);
    a.json["model"]["entries"].as_array().unwrap().clone()
}

/// The id of the tree entry reached by following `labels` from a root entry.
pub fn entry(entries: &[Value], labels: &[&str]) -> i64 {
    let mut parent = -1;
    for l in labels {
        parent = entries
            .iter()
            .find(|e| e["parentId"] == parent && e["labels"][0] == *l)
            .unwrap_or_else(|| panic!("no entry {l:?} under {parent} in {entries:?}"))["id"]
            .as_i64()
            .unwrap();
    }
    parent
}

/// The states of the single row that `timeGraph/view/states` answers for entry
/// `id` sampled at exactly `times`.
pub async fn row_states(app: &Router, exp: &str, view: &str, id: i64, times: &[i64]) -> Vec<Value> {
    let body =
        serde_json::json!({"parameters": {"requested_times": times, "requested_items": [id]}})
            .to_string();
    let a = post(app, &out(exp, &format!("timeGraph/{view}/states")), &body).await;
    let rows = a.ok()["model"]["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1, "{}", a.text);
    rows[0]["states"].as_array().unwrap().clone()
}

/// A row's states as (start, end, style key; "" when unstyled).
pub fn spans(states: &[Value]) -> Vec<(i64, i64, String)> {
    states
        .iter()
        .map(|s| {
            (
                s["start"].as_i64().unwrap(),
                s["end"].as_i64().unwrap(),
                s["style"]["parentKey"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Checks a row against a golden attribute: one state per non-null interval
/// (sampled at each interval's start), styled as `key(value)` says.
pub async fn check_row(
    app: &Router,
    exp: &str,
    view: &str,
    id: i64,
    golden: &[(i64, i64, Option<i64>)],
    end: i64,
    key: impl Fn(i64) -> &'static str,
) {
    let times: Vec<i64> = golden.iter().map(|i| i.0).collect();
    let got = spans(&row_states(app, exp, view, id, &times).await);
    let want: Vec<(i64, i64, String)> = golden
        .iter()
        .filter_map(|&(s, e, v)| Some((s, (e + 1).min(end), key(v?).to_string())))
        .collect();
    assert_eq!(got, want, "{view} row {id}");
}

/// The vCPU style key of a status (providers spec §1.3 colour table): 256 → preempted, 128 → VMM, 2 user, 1 idle, else unknown.
pub fn vcpu_key(v: i64) -> &'static str {
    if v & 256 != 0 {
        "VCPU_PREEMPTED"
    } else if v & 128 != 0 {
        "VMM"
    } else if v == 2 {
        "VCPU_USERMODE"
    } else if v == 1 {
        "VCPU_IDLE"
    } else {
        "VCPU_UNKNOWN"
    }
}

/// The tooltip model of entry `id` of a time-graph view for a state at time `t`.
pub async fn tooltip(app: &Router, exp: &str, view: &str, id: i64, t: i64) -> Value {
    let element = serde_json::json!({"elementType": "state", "time": t, "duration": 0});
    let body = serde_json::json!({"parameters": {"requested_times": [t], "requested_items": [id],
                                     "requested_element": element}})
    .to_string();
    let a = post(app, &out(exp, &format!("timeGraph/{view}/tooltip")), &body).await;
    a.ok()["model"].clone()
}

/// Path of an output endpoint of experiment `exp`.
pub fn out(exp: &str, rest: &str) -> String {
    format!("/experiments/{exp}/outputs/{rest}")
}

pub const EXPLORER: &str =
    "org.eclipse.tracecompass.internal.tmf.core.statesystem.provider.StateSystemDataProvider";
pub const SS_XY: &str = "org.sextant.server.StateSystemXY";

/// The plain answer of `output`'s `states` for a request `body`, serialized as
/// the server's serde path would (no row cache, no index).
pub fn plain(exp: &sextant_server::Experiment, output: &str, body: &str) -> Vec<u8> {
    use sextant_server::query::{parse_parameters, DataQuery};
    let p = parse_parameters(body.as_bytes()).unwrap();
    let q = DataQuery::parse(p, true).unwrap_or_else(|e| panic!("{e:?}"));
    let o = exp.output(output).unwrap();
    let r = o
        .states(&q)
        .unwrap_or_else(|_| panic!("{output}: states failed"));
    serde_json::to_vec(&r).unwrap()
}

/// Rows of a states answer that hold at least one state.
pub fn nonempty_rows(answer: &[u8]) -> usize {
    let v: Value = serde_json::from_slice(answer).unwrap();
    v["model"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["states"].as_array().unwrap().is_empty())
        .count()
}

/// A server state and router with the many-threads trace opened as experiment
/// `name`, its analyses completed.
pub struct ManyThreads {
    pub state: sextant_server::AppState,
    pub app: Router,
    pub exp_id: String,
    pub start: i64,
    pub end: i64,
}

/// [`ManyThreads`] on a server of `config`.
pub async fn serve_many_threads(
    shared: &std::path::Path,
    config: sextant_server::ServeConfig,
    name: &str,
) -> ManyThreads {
    let state = sextant_server::state(config);
    let app = sextant_server::router(state.clone());
    let (_, exp_id) = open(&app, &shared.join("traces/ctf/many-threads/ctf"), name).await;
    let e = wait_completed(&app, &format!("/experiments/{exp_id}")).await;
    let (start, end) = (
        e.ok()["start"].as_i64().unwrap(),
        e.ok()["end"].as_i64().unwrap(),
    );
    ManyThreads {
        state,
        app,
        exp_id,
        start,
        end,
    }
}

/// A states request body over `nb` samples of [start, end] for `items`.
pub fn body(start: i64, end: i64, nb: i64, items: &[i64]) -> String {
    serde_json::json!({"parameters": {"requested_timerange": {"start": start, "end": end, "nbTimes": nb},
        "requested_items": items}})
    .to_string()
}

/// Every file below `dir` (none when it does not exist).
pub fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The ids of the entries with data in `timeGraph/output/tree` (at most `limit`).
pub async fn data_entry_ids(app: &Router, exp: &str, output: &str, limit: usize) -> Vec<i64> {
    let tree = post(
        app,
        &out(exp, &format!("timeGraph/{output}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await;
    tree.ok()["model"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["hasData"] == true)
        .filter_map(|e| e["id"].as_i64())
        .take(limit)
        .collect()
}
