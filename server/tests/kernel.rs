//! Trace Compass's own kernel-analysis histories (shared/golden/kernel-ht, xz
//! compressed; decompressed with the `xz` tool when it is installed): the
//! explorer and XY outputs on real, large state systems, within bounded time.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::*;
use serde_json::json;

/// Decompresses `case`'s expected.ht.xz into `dir`; `None` if data or `xz` is missing.
fn kernel_ht(case: &str, dir: &Path) -> Option<PathBuf> {
    let xz = shared_dir()?
        .join("golden/kernel-ht")
        .join(case)
        .join("expected.ht.xz");
    let out = dir.join(format!("{case}.ht"));
    let run = Command::new("xz").arg("-dc").arg(&xz).output();
    match run {
        Ok(o) if o.status.success() => {
            std::fs::write(&out, o.stdout).unwrap();
            Some(out)
        }
        _ => {
            eprintln!(
                "notice: cannot decompress {} (no xz tool?); skipping",
                xz.display()
            );
            None
        }
    }
}

#[tokio::test]
async fn many_threads_kernel_history() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = kernel_ht("many-threads", dir.path()) else {
        return;
    };
    let app = app();
    let (_t, exp) = open(&app, &path, "many-threads").await;
    let e = get(&app, &format!("/experiments/{exp}")).await;
    let (start, end) = (
        e.ok()["start"].as_i64().unwrap(),
        e.json["end"].as_i64().unwrap(),
    );
    assert!(start < end);

    let clock = Instant::now();
    let tree = post(
        &app,
        &out(&exp, &format!("timeGraph/{EXPLORER}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await;
    let entries = tree.ok()["model"]["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 3 + 58_428);
    let tree_time = clock.elapsed();

    // The viewer's first screen: ~100 rows, 1501 samples.
    let threads = entries
        .iter()
        .find(|e| e["labels"][0] == "Threads")
        .unwrap()["id"]
        .clone();
    let items: Vec<i64> = entries
        .iter()
        .filter(|e| e["parentId"] == threads)
        .take(100)
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let clock = Instant::now();
    let body =
        json!({"parameters": {"requested_timerange": {"start": start, "end": end, "nbTimes": 1501},
                                     "requested_items": items}})
        .to_string();
    let states = post(
        &app,
        &out(&exp, &format!("timeGraph/{EXPLORER}/states")),
        &body,
    )
    .await;
    let rows = states.ok()["model"]["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), items.len());
    for r in &rows {
        assert!(r["states"].as_array().unwrap().len() <= 1502);
    }
    let states_time = clock.elapsed();

    let clock = Instant::now();
    let xy_tree = post(
        &app,
        &out(&exp, &format!("XY/{SS_XY}/tree")),
        r#"{"parameters":{}}"#,
    )
    .await;
    let defaults: Vec<i64> = xy_tree.ok()["model"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["isDefault"] == true)
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(defaults.len(), 1);
    let body =
        json!({"parameters": {"requested_timerange": {"start": start, "end": end, "nbTimes": 1000},
                                     "requested_items": defaults}})
        .to_string();
    let xy = post(&app, &out(&exp, &format!("XY/{SS_XY}/xy")), &body).await;
    assert_eq!(
        xy.ok()["model"]["series"][0]["xValues"],
        json!(sextant_server::query::sample_times(start, end, Some(1000)))
    );
    let xy_time = clock.elapsed();
    eprintln!("many-threads: tree {tree_time:?}, 100 rows x 1501 samples {states_time:?}, xy tree + xy {xy_time:?}");
}
