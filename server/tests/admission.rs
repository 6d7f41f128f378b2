//! Admission control of states answers (`sextant_server::admission`): beyond
//! the server's compute slots, states requests wait in arrival order and are
//! all answered, byte for byte as alone; other endpoints are not held up; a
//! client that goes away while its request waits leaves no slot taken.

mod common;

use std::time::Duration;

use sextant_server::kernel_views::CONTROL_FLOW_ID;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{body, data_entry_ids, get, out, plain, post, serve_many_threads, ManyThreads};

/// Polls `cond` every millisecond for at most 20 s.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let began = std::time::Instant::now();
    while !cond() {
        assert!(began.elapsed() < Duration::from_secs(20), "never: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_requests_beyond_the_slots_queue_and_all_complete() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let config = sextant_server::ServeConfig {
        compute_slots: Some(2),
        ..Default::default()
    };
    let ManyThreads {
        state,
        app,
        exp_id,
        start,
        end,
    } = serve_many_threads(&shared, config, "adm").await;
    assert_eq!(state.admission.slots(), 2);
    let exp = state.experiment(&exp_id).unwrap();
    let ids = data_entry_ids(&app, &exp_id, CONTROL_FLOW_ID, 3000).await;
    assert!(ids.len() > 100, "{}", ids.len());
    let path = out(&exp_id, &format!("timeGraph/{CONTROL_FLOW_ID}/states"));
    // Twelve different requests (windows and rows), with their answers
    // computed directly, without the server.
    let span = end - start;
    let cases: Vec<(String, Vec<u8>)> = (0..12i64)
        .map(|i| {
            let from = start + span * i / 20;
            let rows: Vec<i64> = ids.iter().skip(i as usize * 7).take(200).copied().collect();
            let b = body(from, from + span / 5, 500, &rows);
            let expected = plain(&exp, CONTROL_FLOW_ID, &b);
            (b, expected)
        })
        .collect();

    // Both slots taken: every states request waits, in order.
    let held = [state.admission.admit().await, state.admission.admit().await];
    assert_eq!(state.admission.available(), 0);
    let mut tasks = Vec::new();
    for (i, (b, _)) in cases.iter().enumerate() {
        let (app, path, b) = (app.clone(), path.clone(), b.clone());
        tasks.push(tokio::spawn(async move { post(&app, &path, &b).await }));
        until("request queued", || state.admission.queued() == i + 1).await;
    }
    // Other endpoints answer meanwhile.
    let health = tokio::time::timeout(Duration::from_secs(10), get(&app, "/health"))
        .await
        .expect("health is not queued behind states");
    assert_eq!(health.ok()["status"], "UP");
    let tree = tokio::time::timeout(
        Duration::from_secs(30),
        post(
            &app,
            &out(&exp_id, &format!("timeGraph/{CONTROL_FLOW_ID}/tree")),
            r#"{"parameters":{}}"#,
        ),
    )
    .await
    .expect("trees are not queued behind states");
    assert_eq!(tree.ok()["status"], "COMPLETED");
    // A bad states request is refused at once, without waiting for a slot.
    let bad = tokio::time::timeout(Duration::from_secs(10), post(&app, &path, "{not json"))
        .await
        .expect("bad requests are not queued");
    assert_eq!(bad.status.as_u16(), 400, "{}", bad.text);
    assert!(tasks.iter().all(|t| !t.is_finished()));
    assert_eq!(state.admission.queued(), cases.len());

    drop(held);
    for (t, (b, expected)) in tasks.into_iter().zip(&cases) {
        let a = t.await.unwrap();
        assert_eq!(a.content_type(), "application/json");
        assert_eq!(a.text.as_bytes(), &expected[..], "request {b}");
    }
    assert_eq!(state.admission.available(), 2);
    assert_eq!(state.admission.queued(), 0);
    // Not all empty: the answers compared carry states.
    let v: serde_json::Value = serde_json::from_slice(&cases[3].1).unwrap();
    assert!(v["model"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| !r["states"].as_array().unwrap().is_empty()));
}

/// A request dropped while it waits (its client closed the connection, or the
/// router's future was dropped) gives its place back and takes no slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_while_queued_leaks_no_slot() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let config = sextant_server::ServeConfig {
        compute_slots: Some(1),
        ..Default::default()
    };
    let ManyThreads {
        state,
        app,
        exp_id,
        start,
        end,
    } = serve_many_threads(&shared, config, "leave").await;
    let exp = state.experiment(&exp_id).unwrap();
    let ids = data_entry_ids(&app, &exp_id, CONTROL_FLOW_ID, 300).await;
    let path = out(&exp_id, &format!("timeGraph/{CONTROL_FLOW_ID}/states"));
    let b = body(start, end, 1000, &ids);
    let expected = plain(&exp, CONTROL_FLOW_ID, &b);
    // Rows long enough to be sent from the row cache's memory (in pieces).
    let v: serde_json::Value = serde_json::from_slice(&expected).unwrap();
    let longest = v["model"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap().len())
        .max()
        .unwrap();
    assert!(longest >= 32 << 10, "{longest}");

    let held = state.admission.admit().await;
    // Through the router: the request's future dropped while queued.
    let (a, p, bb) = (app.clone(), path.clone(), b.clone());
    let task = tokio::spawn(async move { post(&a, &p, &bb).await });
    until("router request queued", || state.admission.queued() == 1).await;
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    until("aborted request left the queue", || {
        state.admission.queued() == 0
    })
    .await;

    // Through the network: the client sends a request and closes its connection.
    let server = common::net::serve_state(state.clone()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /tsp/api{path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        b.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b.as_bytes()).await.unwrap();
    until("network request queued", || state.admission.queued() == 1).await;
    drop(stream);
    // hyper notices the closed connection while the answer is pending and
    // drops the request's future: the waiter leaves the queue.
    until("closed connection left the queue", || {
        state.admission.queued() == 0
    })
    .await;
    assert_eq!(state.admission.available(), 0, "the test still holds it");
    drop(held);
    assert_eq!(state.admission.available(), 1);

    // The slot serves the next request, which gets the full answer.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = head.replace(
        "Host: localhost\r\n",
        "Host: localhost\r\nConnection: close\r\n",
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", expected.len())),
        "{head}"
    );
    assert_eq!(&raw[split + 4..], &expected[..]);
    assert_eq!(
        (state.admission.available(), state.admission.queued()),
        (1, 0)
    );
}
