//! Load check of `sextant serve` (loopback only, bounded in time): starts the
//! server in this process, opens a kernel trace (its analyses run, or their
//! `.ht` files in the data directory are reused), then N clients on keep-alive
//! connections send Control Flow states requests (up to 500 rows x 1 000 times,
//! each client its own window) for the given duration. Prints requests, errors,
//! latency percentiles and the process' peak RSS. `sextant bench server` runs
//! the same load (`sextant_server::loadgen`).
//!
//! `cargo run --release -p sextant-server --example load -- <trace dir> <data dir> [clients] [seconds]`
//! (with `LOAD_COLD=1`: a new random window per request, see [`LoadConfig::cold`]).

use std::time::Duration;

use sextant_server::loadgen::{self, LoadConfig};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: load <trace dir> <data dir> [clients=64] [seconds=60]");
        std::process::exit(2);
    }
    let seconds: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(60);
    let config = LoadConfig {
        trace: args[1].clone().into(),
        data_dir: args[2].clone().into(),
        clients: args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64),
        duration: Duration::from_secs(seconds),
        rows: 500,
        times: 1000,
        cold: std::env::var_os("LOAD_COLD").is_some(),
    };
    let r = match loadgen::run(&config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "analyses ready in {:.1} s; {} thread rows, {} per request, 1000 times, {} clients, {seconds} s",
        r.ready.as_secs_f64(),
        r.thread_rows,
        r.rows_per_request,
        config.clients
    );
    println!(
        "{} requests ({:.1}/s), {} errors, latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms, peak RSS {} MiB",
        r.latencies.len(),
        r.rate(),
        r.errors,
        r.percentile(0.50).as_secs_f64() * 1e3,
        r.percentile(0.95).as_secs_f64() * 1e3,
        r.percentile(0.99).as_secs_f64() * 1e3,
        r.latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        peak_rss_kib().unwrap_or(0) / 1024
    );
    // The shape of the distribution (a queue gives a narrow one; stalls a tail).
    let deciles: Vec<String> = [0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]
        .iter()
        .map(|&q| format!("{:.0}", r.percentile(q).as_secs_f64() * 1e3))
        .collect();
    eprintln!(
        "latency ms at 10/25/50/75/90/95/99 %: {}",
        deciles.join(" / ")
    );
    // Whether the answers were served from the row cache (warm) or computed.
    let c = sextant_server::states_cache::RowCache::global().stats();
    eprintln!(
        "row cache: {} hits, {} misses, {} evictions, {} rows ({} MiB) held",
        c.hits,
        c.misses,
        c.evictions,
        c.rows,
        c.bytes >> 20
    );
}
