//! Time-graph states answered from the column indexes (`<history>.ht.cols`)
//! are byte for byte the answers of the history tree, on real kernel traces
//! and a generated one, for many windows (the trace ends and beyond included),
//! sample counts and row sets; an index is reused on restart, rebuilt when it
//! no longer matches, and a damaged one makes the tree answer.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sextant_server::columns::{self, ColumnStatus};
use sextant_server::kernel_views::CONTROL_FLOW_ID;

use sextant_server::{Experiment, ServeConfig, StateSystemHandle};
use sextant_trace::gen::{generate, GenConfig, GenLimit};

use common::{body, data_entry_ids, nonempty_rows, open, plain, wait_completed, walk};

const KERNEL: &str = "org.eclipse.tracecompass.analysis.os.linux.kernel";

fn handles(exp: &Experiment) -> Vec<StateSystemHandle> {
    exp.source
        .state_systems()
        .into_iter()
        .map(|(_, h)| h)
        .collect()
}

/// Waits until the kernel history's index is ready (every index queued done).
fn wait_indexed(exp: &Experiment) -> StateSystemHandle {
    let began = Instant::now();
    loop {
        let hs = handles(exp);
        let kernel = hs.iter().find(|h| h.id == KERNEL).cloned();
        if let Some(k) = &kernel {
            if k.columns.status() == ColumnStatus::Ready && columns::pending() == 0 {
                return k.clone();
            }
            if let ColumnStatus::Failed(e) = k.columns.status() {
                panic!("kernel index failed: {e}");
            }
        }
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "index not ready: {:?}",
            kernel.map(|k| k.columns.status())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Opened {
    app: axum::Router,
    exp: std::sync::Arc<Experiment>,
    exp_id: String,
    start: i64,
    end: i64,
}

async fn open_in(trace: &Path, data: &Path, name: &str) -> Opened {
    let state = sextant_server::state(ServeConfig {
        data_dir: Some(data.to_path_buf()),
        ..Default::default()
    });
    let app = sextant_server::router(state.clone());
    let (_, exp_id) = open(&app, trace, name).await;
    let e = wait_completed(&app, &format!("/experiments/{exp_id}")).await;
    let (start, end) = (
        e.ok()["start"].as_i64().unwrap(),
        e.ok()["end"].as_i64().unwrap(),
    );
    let exp = state.experiment(&exp_id).unwrap();
    Opened {
        app,
        exp,
        exp_id,
        start,
        end,
    }
}

/// The request bodies compared for `output`.
async fn cases(o: &Opened, output: &str) -> Vec<String> {
    let ids = data_entry_ids(&o.app, &o.exp_id, output, 3000).await;
    if ids.is_empty() {
        return Vec::new();
    }
    let (s, e) = (o.start, o.end);
    let span = (e - s).max(1);
    let windows = [
        (s, e),
        (s - 1_000, s + span / 10),
        (e - span / 10, e + 1_000_000_000),
        (s + span / 3, s + span / 3 + span / 50),
        (s + span / 2, s + span / 2 + 7),
        (e + 5, e + 1_000),
        (s - 10_000, s - 1),
        (s, s),
        (e, e),
    ];
    let first: Vec<i64> = ids.iter().take(500).copied().collect();
    let mut sparse: Vec<i64> = ids.iter().step_by(3).copied().collect();
    sparse.reverse();
    sparse.push(i64::MAX / 2);
    let mut out = Vec::new();
    for (a, b) in windows {
        for nb in [1000, 2, 37, 5000] {
            for rows in [&ids, &first, &sparse] {
                out.push(body(a, b, nb, rows));
            }
        }
    }
    out
}

fn time_graphs(exp: &Experiment) -> Vec<String> {
    exp.outputs
        .iter()
        .filter(|o| serde_json::to_value(o.descriptor()).unwrap()["type"] == "TIME_GRAPH")
        .map(|o| o.descriptor().id.clone())
        .collect()
}

/// Compares every time graph's answers with and without the indexes; returns
/// the number of non-empty rows compared.
async fn compare(o: &Opened) -> usize {
    let outputs = time_graphs(&o.exp);
    assert!(outputs.iter().any(|id| id == CONTROL_FLOW_ID));
    let mut all = Vec::new();
    for output in &outputs {
        for c in cases(o, output).await {
            all.push((output.clone(), c));
        }
    }
    assert!(all.len() > 100);
    let indexed: Vec<Vec<u8>> = all.iter().map(|(op, c)| plain(&o.exp, op, c)).collect();
    let hs = handles(&o.exp);
    let unloaded: Vec<_> = hs.iter().map(|h| h.columns.unload()).collect();
    assert!(unloaded.iter().any(Option::is_some));
    let mut nonempty = 0;
    for ((op, c), with) in all.iter().zip(&indexed) {
        let tree = plain(&o.exp, op, c);
        assert!(
            tree == *with,
            "{op}: index and tree differ for {c}:\nindex {}\ntree  {}",
            String::from_utf8_lossy(&with[..with.len().min(600)]),
            String::from_utf8_lossy(&tree[..tree.len().min(600)])
        );
        nonempty += nonempty_rows(&tree);
    }
    for (h, i) in hs.iter().zip(unloaded) {
        if let Some(i) = i {
            h.columns.load(i);
        }
    }
    nonempty
}

async fn real_trace(name: &str) {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let o = open_in(&shared.join("traces/ctf").join(name), data.path(), name).await;
    let k = wait_indexed(&o.exp);
    assert!(k.columns.get().unwrap().interval_count() > 0);
    let nonempty = compare(&o).await;
    assert!(nonempty > 50, "{name}: {nonempty} non-empty rows");
    // Still in use: no query failed.
    assert_eq!(k.columns.status(), ColumnStatus::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_answers_equal_tree_answers_many_threads() {
    real_trace("many-threads").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_answers_equal_tree_answers_scp_src() {
    real_trace("scp_src").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_answers_equal_tree_answers_bug446190() {
    real_trace("bug446190").await;
}

fn kernel_index(data: &Path) -> PathBuf {
    let found: Vec<PathBuf> = walk(data)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(&format!("{KERNEL}.ht.cols")))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// A generated kernel trace: equal answers; on restart the index is reused;
/// a stale index is rebuilt; a damaged block makes the tree answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_trace_index_equal_reused_rebuilt_and_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = GenConfig {
        limit: GenLimit::Bytes(6 << 20),
        cpus: 4,
        threads: 300,
        seed: 77,
        ..GenConfig::default()
    };
    let trace = generate(&dir.path().join("trace"), &cfg, None).unwrap().dir;
    let data = dir.path().join("data");
    let o = open_in(&trace, &data, "gen").await;
    wait_indexed(&o.exp);
    assert!(compare(&o).await > 200);
    let cols = kernel_index(&data);
    let built_before = columns::done()
        .iter()
        .filter(|r| r.index == cols && r.built)
        .count();
    assert_eq!(built_before, 1);
    drop(o);

    // Restart: reused, not rebuilt.
    let o = open_in(&trace, &data, "gen").await;
    wait_indexed(&o.exp);
    let reports: Vec<_> = columns::done()
        .into_iter()
        .filter(|r| r.index == cols)
        .collect();
    assert_eq!(reports.len(), 2);
    assert!(!reports[1].built);
    drop(o);

    // Stale (another history's index under this name): rebuilt.
    let other = kernel_index(&data);
    let mut b = std::fs::read(&other).unwrap();
    b[sht::columns::layout::H_HISTORY_HASH] ^= 1;
    // Keep the header hash right so the index is refused as stale, not damaged.
    let hh = sht::columns::hash64(&b[..sht::columns::layout::H_HEADER_HASH]);
    let at = sht::columns::layout::H_HEADER_HASH;
    b[at..at + 8].copy_from_slice(&hh.to_le_bytes());
    std::fs::write(&other, &b).unwrap();
    let o = open_in(&trace, &data, "gen").await;
    let k = wait_indexed(&o.exp);
    let reports: Vec<_> = columns::done()
        .into_iter()
        .filter(|r| r.index == cols)
        .collect();
    assert_eq!(reports.len(), 3);
    assert!(reports[2].built);

    // Damaged blocks: the first query touching one drops the index and the
    // tree answers, the same bytes.
    let ids: Vec<i64> = common::tree(&o.app, &o.exp_id, "timeGraph", CONTROL_FLOW_ID)
        .await
        .iter()
        .filter(|e| e["parentId"] != -1)
        .filter_map(|e| e["id"].as_i64())
        .collect();
    let req = body(o.start, o.end, 1000, &ids);
    let index = k.columns.unload().unwrap();
    let expected = plain(&o.exp, CONTROL_FLOW_ID, &req);
    let f = std::fs::OpenOptions::new().write(true).open(&cols).unwrap();
    let table = u64::from_le_bytes(
        b_at(&cols, sht::columns::layout::H_TABLE_OFFSET)
            .try_into()
            .unwrap(),
    );
    let header = sht::columns::layout::HEADER_SIZE as u64;
    f.write_all_at(&vec![0xAA; (table - header) as usize], header)
        .unwrap();
    drop(f);
    k.columns.load(index);
    assert_eq!(plain(&o.exp, CONTROL_FLOW_ID, &req), expected);
    assert!(matches!(k.columns.status(), ColumnStatus::Failed(e) if e.contains("hash")));
    assert!(k.columns.get().is_none());
}

fn b_at(path: &Path, at: usize) -> Vec<u8> {
    std::fs::read(path).unwrap()[at..at + 8].to_vec()
}
