//! The load generator behind `sextant bench server` and the `load` example: a
//! short run on a real kernel trace must answer every request, on every client.

mod common;

use std::time::Duration;

use sextant_server::loadgen::{run, LoadConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_load_on_a_real_trace_answers_every_request() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let config = LoadConfig {
        trace: shared.join("traces/ctf/many-threads/ctf"),
        data_dir: data.path().to_path_buf(),
        clients: 4,
        duration: Duration::from_millis(800),
        rows: 50,
        times: 100,
        cold: false,
    };
    let r = run(&config).await.unwrap();
    assert_eq!(r.errors, 0);
    assert!(!r.latencies.is_empty());
    assert!(r.latencies.windows(2).all(|w| w[0] <= w[1]), "sorted");
    assert!(
        r.thread_rows > 50,
        "many-threads has thousands of threads: {}",
        r.thread_rows
    );
    assert_eq!(r.rows_per_request, 50);
    assert!(r.percentile(0.5) <= r.percentile(0.95));
    assert_eq!(r.percentile(1.0), *r.latencies.last().unwrap());
    // The analyses wrote their history in the data directory (TC project layout).
    let ht = common::walk(data.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ht"))
        .count();
    assert!(ht >= 1);

    // Cold: every request a new random window; still every request answered.
    let cold = LoadConfig {
        cold: true,
        ..config.clone()
    };
    let r = run(&cold).await.unwrap();
    assert_eq!(r.errors, 0);
    assert!(!r.latencies.is_empty());
    assert_eq!(r.rows_per_request, 50);

    // A trace that does not exist is an error, not a panic or a hang.
    let bad = LoadConfig {
        trace: data.path().join("no-such-trace"),
        ..config
    };
    let e = run(&bad).await.unwrap_err();
    assert!(e.contains("no-such-trace"), "{e}");
}
