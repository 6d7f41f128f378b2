//! The server on a loopback port, over real HTTP, with a real kernel trace from
//! `shared/traces`: background analyses (RUNNING → COMPLETED), reuse of the
//! `.ht` files they left, the Control Flow and Resources views (sampling of
//! tsp.md §6.1 checked against the state system itself) and bad requests; the
//! same trace followed as an LTTng live session (answers while RUNNING are a
//! prefix of the final ones).

mod common;

use common::net::{completed, ok, request, serve_state, start_server_with, Server};
use common::{out, spans};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sextant_server::cpu_usage::CPU_USAGE_ID;
use sextant_server::kernel_views::{CONTROL_FLOW_ID, RESOURCES_ID};
use sextant_server::query::sample_times;
use sextant_trace::live::fake::{FakeConfig, FakeRelay};
use sht::{StateSystem, StateSystemQuerier};

const TRACE: &str = "ctf/bug446190/ctf";

async fn start_server(traces: &Path, data_dir: &Path) -> Server {
    start_server_with(sextant_server::ServeConfig {
        port: 0,
        data_dir: Some(data_dir.to_path_buf()),
        trace_roots: vec![traces.to_path_buf()],
        ..Default::default()
    })
    .await
}

/// Opens the trace and an experiment, polls until COMPLETED; returns the experiment UUID.
async fn open_and_wait(server: &Server) -> (String, Value) {
    let t = ok(
        server,
        "POST",
        "/traces",
        Some(&json!({"parameters": {"uri": TRACE, "name": "bug446190"}}).to_string()),
    )
    .await;
    let trace = t["UUID"].as_str().unwrap().to_string();
    let status = t["indexingStatus"].as_str().unwrap();
    assert!(status == "RUNNING" || status == "COMPLETED", "{t}");
    let e = ok(
        server,
        "POST",
        "/experiments",
        Some(&json!({"parameters": {"name": "bug446190", "traces": [trace]}}).to_string()),
    )
    .await;
    let exp = e["UUID"].as_str().unwrap().to_string();
    let e = completed(server, &format!("/experiments/{exp}")).await;
    (exp, e)
}

/// A fake relay serving the test trace as session `session` of host
/// "arm-board", holding after `hold` packets until released.
fn fake_relay(shared: &Path, session: &str, hold: Option<u32>) -> FakeRelay {
    FakeRelay::start(
        &shared.join("traces").join(TRACE),
        FakeConfig {
            hold_after_packets: hold,
            hostname: "arm-board".into(),
            session: session.into(),
            ..Default::default()
        },
    )
    .unwrap()
}

fn entries(tree: &Value) -> Vec<Value> {
    tree["model"]["entries"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_trace_analysed_in_background_and_viewed() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let traces = shared.join("traces");
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&traces, data.path()).await;
    let (exp, e) = open_and_wait(&server).await;
    let trace_props = &e["traces"][0]["properties"];
    assert_eq!(trace_props["domain"], "kernel", "{e}");
    assert!(trace_props.get("analysisErrors").is_none(), "{e}");
    assert!(e["nbEvents"].as_u64().unwrap() > 0);
    let (start, end) = (e["start"].as_i64().unwrap(), e["end"].as_i64().unwrap());
    assert!(
        start < end && start > 1 << 53,
        "timestamps are exact i64: {start} {end}"
    );

    // The kernel history is where Trace Compass keeps it: .tracing/<trace>/<id>.ht.
    let ht: PathBuf = data
        .path()
        .join(".tracing/bug446190/org.eclipse.tracecompass.analysis.os.linux.kernel.ht");
    assert!(ht.is_file());
    let ss = StateSystem::open(&ht, None).unwrap();
    assert_eq!((ss.start_time(), ss.current_end_time()), (start, end));

    let outputs = ok(&server, "GET", &format!("/experiments/{exp}/outputs"), None).await;
    let ids: Vec<&str> = outputs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&CONTROL_FLOW_ID) && ids.contains(&RESOURCES_ID),
        "{ids:?}"
    );

    // Control Flow: one row per Threads/<tid>, under its parent.
    let tree = ok(
        &server,
        "POST",
        &out(&exp, &format!("timeGraph/{CONTROL_FLOW_ID}/tree")),
        Some(r#"{"parameters":{}}"#),
    )
    .await;
    assert_eq!(tree["status"], "COMPLETED");
    let rows = entries(&tree);
    let threads = ss
        .attributes()
        .quark(sht::ROOT_QUARK, &["Threads"])
        .unwrap();
    let nb_threads = ss.attributes().children_of(threads).len();
    assert_eq!(rows.len(), nb_threads + 1, "trace entry + one per thread");
    let known: std::collections::HashSet<i64> =
        rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    for r in &rows[1..] {
        assert!(known.contains(&r["parentId"].as_i64().unwrap()), "{r}");
        assert_eq!(r["labels"].as_array().unwrap().len(), 4);
    }
    let styles = ok(
        &server,
        "POST",
        &out(&exp, &format!("{CONTROL_FLOW_ID}/style")),
        Some(r#"{"parameters":{}}"#),
    )
    .await;
    let style_keys = styles["model"]["styles"].as_object().unwrap().clone();

    // States: 1 501 samples; every state covers at least one sampled time, and
    // the value under each sampled time is the state system's.
    let items: Vec<i64> = rows[1..]
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    let nb = 1501;
    let body = json!({"parameters": {"requested_timerange": {"start": start, "end": end, "nbTimes": nb}, "requested_items": items}}).to_string();
    let states = ok(
        &server,
        "POST",
        &out(&exp, &format!("timeGraph/{CONTROL_FLOW_ID}/states")),
        Some(&body),
    )
    .await;
    assert_eq!(states["status"], "COMPLETED");
    let times = sample_times(start, end, Some(nb));
    let by_tid: std::collections::HashMap<String, i64> = rows[1..]
        .iter()
        .map(|r| {
            (
                r["labels"][1].as_str().unwrap().to_string(),
                r["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut checked = 0;
    for row in states["model"]["rows"].as_array().unwrap() {
        for s in row["states"].as_array().unwrap() {
            let (s0, s1) = (s["start"].as_i64().unwrap(), s["end"].as_i64().unwrap());
            assert!(
                times.iter().any(|&t| s0 <= t && t <= s1),
                "state {s} covers no sample"
            );
            assert!(
                style_keys.contains_key(s["style"]["parentKey"].as_str().unwrap()),
                "{s}"
            );
            checked += 1;
        }
    }
    assert!(checked > items.len(), "{checked} states");
    // One thread checked against the history itself at every sample.
    let tid_quark =
        ss.attributes().children_of(threads)[ss.attributes().children_of(threads).len() / 2];
    let tid_name = ss
        .attributes()
        .name(tid_quark)
        .unwrap()
        .split('_')
        .next()
        .unwrap()
        .to_string();
    let row_id = by_tid[&tid_name];
    let row = states["model"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["entryId"] == row_id)
        .unwrap();
    for &t in &times {
        let v = ss.query_single(t, tid_quark).unwrap();
        // A state's end is the next state's start, or the trace's end for the last.
        let covering = row["states"].as_array().unwrap().iter().find(|s| {
            let (s0, s1) = (s["start"].as_i64().unwrap(), s["end"].as_i64().unwrap());
            s0 <= t && (t < s1 || t == end)
        });
        assert_eq!(
            covering.is_some(),
            !matches!(v.value, sht::StateValue::Null),
            "t={t} {v:?}"
        );
    }

    // Tooltip of a thread.
    let body = json!({"parameters": {"requested_times": [times[times.len() / 2]], "requested_items": [row_id], "requested_element": {"elementType": "state", "time": times[times.len() / 2], "duration": 0}}}).to_string();
    let tip = ok(
        &server,
        "POST",
        &out(&exp, &format!("timeGraph/{CONTROL_FLOW_ID}/tooltip")),
        Some(&body),
    )
    .await;
    assert_eq!(tip["model"]["TID"], tid_name.as_str());

    // Resources: one row per CPU at least.
    let tree = ok(
        &server,
        "POST",
        &out(&exp, &format!("timeGraph/{RESOURCES_ID}/tree")),
        Some(r#"{"parameters":{}}"#),
    )
    .await;
    let cpus = ss.attributes().quark(sht::ROOT_QUARK, &["CPUs"]).unwrap();
    let cpu_rows: Vec<Value> = entries(&tree)
        .into_iter()
        .filter(|r| r["labels"][0].as_str().unwrap().starts_with("CPU "))
        .collect();
    assert_eq!(cpu_rows.len(), ss.attributes().children_of(cpus).len());
    let items: Vec<i64> = cpu_rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    let body = json!({"parameters": {"requested_timerange": {"start": start, "end": end, "nbTimes": 500}, "requested_items": items}}).to_string();
    let states = ok(
        &server,
        "POST",
        &out(&exp, &format!("timeGraph/{RESOURCES_ID}/states")),
        Some(&body),
    )
    .await;
    assert_eq!(
        states["model"]["rows"].as_array().unwrap().len(),
        items.len()
    );

    // CPU usage: Total and one series per thread that ran; at every sample the
    // threads' shares add up to the total, within [0, 100].
    let tree = ok(
        &server,
        "POST",
        &out(&exp, &format!("XY/{CPU_USAGE_ID}/tree")),
        Some(r#"{"parameters":{}}"#),
    )
    .await;
    let series_ids: Vec<i64> = entries(&tree)
        .iter()
        .filter(|e| e["hasData"] == true)
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let total_id = entries(&tree)
        .iter()
        .find(|e| e["labels"][0] == "Total")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    assert!(series_ids.len() > 2, "{tree}");
    let body = json!({"parameters": {"requested_timerange": {"start": start, "end": end, "nbTimes": 300}, "requested_items": series_ids}}).to_string();
    let xy = ok(
        &server,
        "POST",
        &out(&exp, &format!("XY/{CPU_USAGE_ID}/xy")),
        Some(&body),
    )
    .await;
    let series = xy["model"]["series"].as_array().unwrap();
    assert_eq!(series.len(), series_ids.len());
    let y = |s: &Value| -> Vec<f64> {
        s["yValues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let total = y(series.iter().find(|s| s["seriesId"] == total_id).unwrap());
    assert_eq!(total.len(), sample_times(start, end, Some(300)).len());
    assert!(
        total.iter().any(|&v| v > 0.0) && total.iter().all(|&v| (0.0..=100.0 + 1e-9).contains(&v))
    );
    for (k, want) in total.iter().enumerate() {
        let sum: f64 = series
            .iter()
            .filter(|s| s["seriesId"] != total_id)
            .map(|s| y(s)[k])
            .sum();
        assert!(
            (sum - want).abs() < 1e-6,
            "sample {k}: threads {sum} vs total {want}"
        );
    }

    // Bad requests: 4xx with a JSON message, never a crash.
    // A relative path climbing from the working directory up to /etc: it exists
    // wherever the clone lives, and is not a trace (400, not 404).
    let depth = std::env::current_dir().unwrap().components().count() - 1;
    let climb = format!("{}etc", "../".repeat(depth));
    let cases: Vec<(&str, String, Option<String>, u16)> = vec![
        ("POST", "/traces".into(), Some("{not json".into()), 400),
        ("POST", "/traces".into(), Some(json!({"parameters": {"uri": climb}}).to_string()), 400),
        ("POST", "/traces".into(), Some(json!({"parameters": {"uri": "/etc/passwd"}}).to_string()), 400),
        ("GET", "/experiments/00000000-0000-0000-0000-000000000000".into(), None, 404),
        ("POST", out(&exp, "timeGraph/no.such.output/tree"), Some(r#"{"parameters":{}}"#.into()), 405),
        ("POST", out(&exp, &format!("timeGraph/{CONTROL_FLOW_ID}/states")), Some(json!({"parameters": {"requested_timerange": {"start": 0, "end": 10, "nbTimes": 1u64 << 40}, "requested_items": [1]}}).to_string()), 400),
        ("POST", out(&exp, &format!("timeGraph/{CONTROL_FLOW_ID}/states")), Some(r#"{"parameters":{"requested_timerange":{"start":-5,"end":"x"}}}"#.into()), 400),
    ];
    for (method, path, body, want) in cases {
        let (status, ct, json) = request(&server, method, &path, body.as_deref()).await;
        assert_eq!(status, want, "{method} {path}: {json}");
        assert_eq!(ct, "application/json");
        assert!(
            json["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{json}"
        );
    }
    // A reversed range is a FAILED answer (Trace Compass's behaviour), not an error.
    let body = json!({"parameters": {"requested_timerange": {"start": end, "end": start, "nbTimes": 10}, "requested_items": [1]}}).to_string();
    let failed = ok(
        &server,
        "POST",
        &out(&exp, &format!("timeGraph/{CONTROL_FLOW_ID}/states")),
        Some(&body),
    )
    .await;
    assert_eq!(failed["status"], "FAILED");
    drop(server);

    // A second server on the same data directory reuses the history: same file,
    // not rewritten.
    let modified = std::fs::metadata(&ht).unwrap().modified().unwrap();
    let server = start_server(&traces, data.path()).await;
    let (_exp, e2) = open_and_wait(&server).await;
    assert_eq!(
        (e2["start"].as_i64(), e2["end"].as_i64()),
        (Some(start), Some(end))
    );
    assert_eq!(
        std::fs::metadata(&ht).unwrap().modified().unwrap(),
        modified
    );
}

/// A trace's histories are kept per trace path: another trace opened later under
/// the same name gets its own folder, never the first one's histories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_name_other_trace_gets_its_own_results() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let traces = shared.join("traces");
    let data = tempfile::tempdir().unwrap();
    let server = start_server(&traces, data.path()).await;
    let mut ranges = Vec::new();
    for uri in ["ctf/flipping-endianness/ctf", "ctf/bug446190/ctf"] {
        let body = json!({"parameters": {"uri": uri, "name": "same"}}).to_string();
        let t = ok(&server, "POST", "/traces", Some(&body)).await;
        let uuid = t["UUID"].as_str().unwrap().to_string();
        let began = Instant::now();
        let t = loop {
            let t = ok(&server, "GET", &format!("/traces/{uuid}"), None).await;
            if t["indexingStatus"] == "COMPLETED" {
                break t;
            }
            assert!(began.elapsed() < Duration::from_secs(600));
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(t["properties"].get("analysisErrors").is_none(), "{t}");
        ranges.push((t["start"].as_i64().unwrap(), t["end"].as_i64().unwrap()));
        ok(&server, "DELETE", &format!("/traces/{uuid}"), None).await;
    }
    assert_ne!(ranges[0], ranges[1]);
    let folders = std::fs::read_dir(data.path().join(".tracing"))
        .unwrap()
        .count();
    assert_eq!(folders, 2);
    // A default name: `x/ctf` is named `x`.
    let body = json!({"parameters": {"uri": "ctf/bug446190/ctf"}}).to_string();
    let t = ok(&server, "POST", "/traces", Some(&body)).await;
    assert_eq!(t["name"], "bug446190");
}

/// Control Flow states of `rows`, per entry id, as (start, end, style key) over
/// `nb` samples of [start, end]; and the status.
async fn thread_states(
    server: &Server,
    exp: &str,
    rows: &[Value],
    (start, end, nb): (i64, i64, i64),
) -> (
    String,
    std::collections::BTreeMap<i64, Vec<(i64, i64, String)>>,
) {
    let items: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    let body = json!({"parameters": {"requested_timerange": {"start": start, "end": end, "nbTimes": nb}, "requested_items": items}}).to_string();
    let states = ok(
        server,
        "POST",
        &out(exp, &format!("timeGraph/{CONTROL_FLOW_ID}/states")),
        Some(&body),
    )
    .await;
    let mut out = std::collections::BTreeMap::new();
    for row in states["model"]["rows"].as_array().unwrap() {
        let v = spans(row["states"].as_array().unwrap());
        out.insert(row["entryId"].as_i64().unwrap(), v);
    }
    (states["status"].as_str().unwrap().to_string(), out)
}

/// The trace served by a relay that stops after 4 of its 9 packets: the server
/// follows the session, answers from the part built (RUNNING, with the end time
/// of what arrived), and once the rest arrives and the session ends, every
/// earlier answer is a prefix of the final one and the history equals the one
/// built from the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_session_followed_answers_while_running() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let trace_dir = shared.join("traces").join(TRACE);
    let relay = fake_relay(&shared, "kernel-live", Some(4));
    let url = relay.url("arm-board", "kernel-live");
    let open_body = json!({"parameters": {"uri": url}}).to_string();

    // Without --live, a relay address is refused.
    let data = tempfile::tempdir().unwrap();
    let config = sextant_server::ServeConfig {
        port: 0,
        data_dir: Some(data.path().to_path_buf()),
        trace_roots: vec![shared.join("traces")],
        ..Default::default()
    };
    let server = start_server_with(config.clone()).await;
    let (status, _, answer) = request(&server, "POST", "/traces", Some(&open_body)).await;
    assert_eq!(status, 400, "{answer}");
    drop(server);

    let server = start_server_with(sextant_server::ServeConfig {
        live: true,
        ..config
    })
    .await;
    let t = ok(&server, "POST", "/traces", Some(&open_body)).await;
    assert_eq!(t["name"], "kernel-live");
    let trace = t["UUID"].as_str().unwrap().to_string();
    let body = json!({"parameters": {"name": "kernel-live", "traces": [trace]}}).to_string();
    let e = ok(&server, "POST", "/experiments", Some(&body)).await;
    let exp = e["UUID"].as_str().unwrap().to_string();

    // The relay holds: wait until the end time stops moving.
    let began = Instant::now();
    let mut last = (0, 0);
    let (start, partial_end) = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let e = ok(&server, "GET", &format!("/experiments/{exp}"), None).await;
        assert_eq!(e["indexingStatus"], "RUNNING", "{e}");
        let range = (e["start"].as_i64().unwrap(), e["end"].as_i64().unwrap());
        if range.0 < range.1 && range == last {
            break range;
        }
        last = range;
        assert!(began.elapsed() < Duration::from_secs(120), "{e}");
    };
    let tree_path = out(&exp, &format!("timeGraph/{CONTROL_FLOW_ID}/tree"));
    let tree = ok(&server, "POST", &tree_path, Some(r#"{"parameters":{}}"#)).await;
    assert_eq!(tree["status"], "RUNNING", "a tree is final only when built");
    let partial_rows = entries(&tree)[1..].to_vec();
    assert!(partial_rows.len() > 5, "{tree}");
    let (status, partial) =
        thread_states(&server, &exp, &partial_rows, (start, partial_end, 400)).await;
    assert_eq!(status, "COMPLETED", "what was asked for is built");
    assert!(partial.values().map(Vec::len).sum::<usize>() > partial_rows.len());
    let (status, _) =
        thread_states(&server, &exp, &partial_rows, (start, partial_end * 2, 400)).await;
    assert_eq!(
        status, "RUNNING",
        "times past the current end are not built yet"
    );
    // The state system explorer and the CPU usage XY answer too.
    let explorer = ok(
        &server,
        "POST",
        &out(&exp, &format!("timeGraph/{}/tree", common::EXPLORER)),
        Some(r#"{"parameters":{}}"#),
    )
    .await;
    assert_eq!(explorer["status"], "RUNNING");
    assert!(entries(&explorer).len() > partial_rows.len(), "{explorer}");
    let xy_tree = ok(
        &server,
        "POST",
        &out(&exp, &format!("XY/{CPU_USAGE_ID}/tree")),
        Some(r#"{"parameters":{}}"#),
    )
    .await;
    assert_eq!(xy_tree["status"], "RUNNING");
    let series: Vec<i64> = entries(&xy_tree)
        .iter()
        .filter(|e| e["hasData"] == true)
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let body = json!({"parameters": {"requested_timerange": {"start": start, "end": partial_end, "nbTimes": 50}, "requested_items": series}}).to_string();
    let xy = ok(
        &server,
        "POST",
        &out(&exp, &format!("XY/{CPU_USAGE_ID}/xy")),
        Some(&body),
    )
    .await;
    assert_eq!(xy["status"], "COMPLETED", "{xy}");
    assert_eq!(
        xy["model"]["series"].as_array().unwrap().len(),
        series.len()
    );

    relay.release();
    let began = Instant::now();
    let e = loop {
        let e = ok(&server, "GET", &format!("/experiments/{exp}"), None).await;
        if e["indexingStatus"] == "COMPLETED" {
            break e;
        }
        assert!(began.elapsed() < Duration::from_secs(300), "{e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        e["traces"][0]["properties"].get("analysisErrors").is_none(),
        "{e}"
    );
    // babeltrace2's count (shared/traces/ctf/bug446190/babeltrace2.count).
    assert_eq!(e["nbEvents"], 31_556);
    let end = e["end"].as_i64().unwrap();
    assert_eq!(e["start"].as_i64().unwrap(), start);
    assert!(end > partial_end, "{end} vs {partial_end}");

    // Entry ids stay (a thread keeps its id, TID and parent; its name and span
    // may grow); earlier states are a prefix of the final ones.
    let tree = ok(&server, "POST", &tree_path, Some(r#"{"parameters":{}}"#)).await;
    assert_eq!(tree["status"], "COMPLETED");
    let rows = entries(&tree)[1..].to_vec();
    let key = |r: &Value| {
        (
            r["id"].clone(),
            r["parentId"].clone(),
            r["labels"][1].clone(),
        )
    };
    for r in &partial_rows {
        assert!(rows.iter().any(|f| key(f) == key(r)), "row {r} changed");
    }
    let (_, fin) = thread_states(&server, &exp, &partial_rows, (start, partial_end, 400)).await;
    let mut compared = 0;
    for (row, states) in &partial {
        let fin = &fin[row];
        for s in states {
            let f = fin.iter().find(|f| f.0 == s.0).unwrap_or_else(|| {
                panic!("{row}: state {s:?} is gone from the final answer {fin:?}")
            });
            assert_eq!(f.2, s.2, "{row}: state at {}", s.0);
            if s.1 < partial_end {
                assert_eq!(f.1, s.1, "{row}: ended state at {}", s.0);
            } else {
                assert!(f.1 >= s.1, "{row}: ongoing state at {}", s.0);
            }
            compared += 1;
        }
    }
    assert!(compared > partial_rows.len(), "{compared} states compared");

    // The history the server wrote is the one built from the trace's files.
    let live_ht = data
        .path()
        .join(".tracing/kernel-live/org.eclipse.tracecompass.analysis.os.linux.kernel.ht");
    let offline_ht = data.path().join("offline.ht");
    let mut source = sextant_providers::sources::open(&[trace_dir]).unwrap();
    let analyses = vec![sextant_providers::pipeline::Analysis {
        provider: Box::new(sextant_providers::kernel::KernelStateProvider::new()),
        output: sextant_providers::pipeline::Output::file(&offline_ht),
    }];
    sextant_providers::pipeline::build(&mut *source, analyses, &Default::default()).unwrap();
    assert!(
        std::fs::read(&live_ht).unwrap() == std::fs::read(&offline_ht).unwrap(),
        "the live history differs from the offline one"
    );
}

/// Deleting a followed live session's trace stops following it: the pass is
/// cancelled and its unfinished history files go away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_followed_session_stops_its_analyses() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let relay = fake_relay(&shared, "held", Some(4));
    let data = tempfile::tempdir().unwrap();
    let server = start_server_with(sextant_server::ServeConfig {
        port: 0,
        data_dir: Some(data.path().to_path_buf()),
        live: true,
        ..Default::default()
    })
    .await;
    let body = json!({"parameters": {"uri": relay.url("arm-board", "held")}}).to_string();
    let t = ok(&server, "POST", "/traces", Some(&body)).await;
    let uuid = t["UUID"].as_str().unwrap().to_string();
    let results = data.path().join(".tracing/held");
    let files = || -> Vec<String> {
        std::fs::read_dir(&results)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(".ht"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let began = Instant::now();
    loop {
        let t = ok(&server, "GET", &format!("/traces/{uuid}"), None).await;
        assert_eq!(t["indexingStatus"], "RUNNING", "{t}");
        if t["end"].as_i64().unwrap() > t["start"].as_i64().unwrap() && !files().is_empty() {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(60), "{t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ok(&server, "DELETE", &format!("/traces/{uuid}"), None).await;
    let began = Instant::now();
    while !files().is_empty() {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "still building: {:?}",
            files()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `sextant serve --follow URL`: the session is opened at start as a trace and a
/// one-trace experiment named after it; other relay addresses stay refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followed_session_is_an_experiment_from_the_start() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let relay = fake_relay(&shared, "followed", None);
    let url = relay.url("arm-board", "followed");
    let data = tempfile::tempdir().unwrap();
    let config = sextant_server::ServeConfig {
        port: 0,
        data_dir: Some(data.path().to_path_buf()),
        follow: vec![url.clone()],
        ..Default::default()
    };
    let state = sextant_server::state(config);
    let catalog = state.clone();
    let e = tokio::task::spawn_blocking(move || catalog.follow(&url))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.name, "followed");
    let server = serve_state(state).await;
    let list = ok(&server, "GET", "/experiments", None).await;
    assert_eq!(list[0]["name"], "followed", "{list}");
    let e = completed(&server, &format!("/experiments/{}", e.uuid)).await;
    assert_eq!(e["nbEvents"], 31_556);
    let other = json!({"parameters": {"uri": relay.url("arm-board", "other")}}).to_string();
    let (status, _, answer) = request(&server, "POST", "/traces", Some(&other)).await;
    assert_eq!(status, 400, "{answer}");
}
