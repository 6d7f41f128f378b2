//! CPU cost of one Control Flow states request (500 rows x 1,000 times over a
//! tenth of the trace, a new window each time: the load bench's cold request)
//! from the column index and from the history tree, measured as this thread's
//! CPU time (`CLOCK_THREAD_CPUTIME_ID`, less sensitive to other processes than
//! wall time). Not a test of correctness; run by hand:
//!
//! ```text
//! SEXTANT_COST_TRACE=/path/to/kernel/trace SEXTANT_COST_DATA=/path/to/data-dir \
//!   cargo test --release -p sextant-server --test columns_cost -- --ignored --nocapture
//! ```
//!
//! The data directory's histories and indexes are reused when present.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use sextant_server::columns::{self, ColumnStatus};
use sextant_server::kernel_views::CONTROL_FLOW_ID;
use sextant_server::model::GenericResponse;
use sextant_server::query::{parse_parameters, DataQuery};
use sextant_server::states_cache::StatesAnswer;
use sextant_server::states_json::states_response;
use sextant_server::ServeConfig;

use common::{open, wait_completed};

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn cold_request_cpu_cost() {
    let (Some(trace), Some(data)) = (
        std::env::var_os("SEXTANT_COST_TRACE").map(PathBuf::from),
        std::env::var_os("SEXTANT_COST_DATA").map(PathBuf::from),
    ) else {
        eprintln!("set SEXTANT_COST_TRACE and SEXTANT_COST_DATA");
        return;
    };
    let requests: usize = std::env::var("SEXTANT_COST_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let state = sextant_server::state(ServeConfig {
        data_dir: Some(data),
        ..Default::default()
    });
    let app = sextant_server::router(state.clone());
    // Named after its directory, as the load bench opens it: its histories are reused.
    let trace = std::fs::canonicalize(&trace).unwrap();
    let name = trace.file_name().unwrap().to_string_lossy().into_owned();
    let (_, exp_id) = open(&app, &trace, &name).await;
    let e = wait_completed(&app, &format!("/experiments/{exp_id}")).await;
    let (start, end) = (
        e.ok()["start"].as_i64().unwrap(),
        e.ok()["end"].as_i64().unwrap(),
    );
    // Peak resident memory while the indexes are built (the histories are
    // reused: the process holds little else).
    let before = status_kb("VmRSS:");
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let began = Instant::now();
    while columns::pending() > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "indexes ready {:.1} s after COMPLETED, RSS before {} MB, peak while indexing {} MB",
        began.elapsed().as_secs_f64(),
        before / 1024,
        status_kb("VmHWM:") / 1024
    );
    for r in columns::done() {
        eprintln!(
            "  {} {}: {} intervals, {} bytes, {:.1} s",
            r.index.file_name().unwrap_or_default().to_string_lossy(),
            if r.built { "built" } else { "reused" },
            r.intervals,
            r.bytes,
            r.took.as_secs_f64()
        );
    }
    let exp = state.experiment(&exp_id).unwrap();
    let ids: Vec<i64> = common::tree(&app, &exp_id, "timeGraph", CONTROL_FLOW_ID)
        .await
        .iter()
        .filter(|e| e["parentId"] != -1)
        .filter_map(|e| e["id"].as_i64())
        .collect();
    let o = exp.output(CONTROL_FLOW_ID).unwrap();
    let handles: Vec<_> = exp
        .source
        .state_systems()
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    let rows = ids.len().min(500);
    let span = (end - start) / 10;
    let run = |label: &str, seed: u64, serde: bool| {
        let mut x = seed;
        let mut cpu = Vec::new();
        let mut bytes = 0;
        for i in 0..requests {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let offset = (x % (end - start - span).max(1) as u64) as i64;
            let first = (i * 37) % ids.len();
            let items: Vec<i64> = ids.iter().cycle().skip(first).take(rows).copied().collect();
            let body = json!({"parameters": {"requested_timerange": {"start": start + offset,
                "end": start + offset + span, "nbTimes": 1000}, "requested_items": items}})
            .to_string();
            let c0 = thread_cpu_ns();
            let q = DataQuery::parse(parse_parameters(body.as_bytes()).unwrap(), true).unwrap();
            // The answer as the server writes it (plain model: no row cache),
            // or as serde writes it (the writer before `states_json`).
            let r = o.states(&q).ok().unwrap();
            let answer = if serde {
                serde_json::to_vec(&r).unwrap()
            } else {
                states_response(&GenericResponse {
                    model: r.model.map(StatesAnswer::Plain),
                    status: r.status,
                    status_message: r.status_message,
                })
            };
            cpu.push(thread_cpu_ns() - c0);
            bytes += answer.len();
        }
        cpu.sort();
        let ms = |ns: u64| ns as f64 / 1e6;
        eprintln!(
            "{label}: {requests} requests of {rows} rows x 1000 times: CPU mean {:.2} ms, p50 {:.2} ms, max {:.2} ms, {} KB per answer",
            ms(cpu.iter().sum::<u64>() / requests as u64),
            ms(cpu[requests / 2]),
            ms(cpu[requests - 1]),
            bytes / requests / 1000
        );
    };
    let kernel = handles
        .iter()
        .find(|h| h.columns.status() == ColumnStatus::Ready);
    run("index", 0x1234_5678, false);
    run("index, serde writer", 0x1234_5678, true);
    if std::env::var_os("SEXTANT_COST_INDEX_ONLY").is_some() {
        return;
    }
    if let Some(k) = kernel {
        let index = k.columns.unload();
        run("tree ", 0x1234_5678, false);
        if let Some(i) = index {
            k.columns.load(i);
        }
    }
}
