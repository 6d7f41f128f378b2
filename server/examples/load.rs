//! Load check of `sextant serve` (loopback only, bounded in time): starts the
//! server in this process, opens a kernel trace (its analyses run, or their
//! `.ht` files in the data directory are reused), then N clients on keep-alive
//! connections send Control Flow states requests (up to 500 rows x 1 000 times,
//! each client its own window) for the given duration. Prints requests, errors,
//! latency percentiles and the process' peak RSS.
//!
//! `cargo run --release -p sextant-server --example load -- <trace dir> <data dir> [clients] [seconds]`

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sextant_server::kernel_views::CONTROL_FLOW_ID;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> std::io::Result<Conn> {
        Ok(Conn {
            reader: BufReader::new(TcpStream::connect(addr).await?),
        })
    }

    /// (status, body).
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let head = format!(
            "{method} /tsp/api{path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await?;
        Ok((status, body))
    }

    async fn json(&mut self, method: &str, path: &str, body: &str) -> Value {
        let (status, bytes) = self.send(method, path, body).await.expect("request");
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice(&bytes).expect("JSON")
    }
}

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
    let trace = std::fs::canonicalize(&args[1]).expect("trace dir");
    let data = std::path::PathBuf::from(&args[2]);
    let clients: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
    let seconds: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(60);

    let config = sextant_server::ServeConfig {
        port: 0,
        data_dir: Some(data),
        ..Default::default()
    };
    let app = sextant_server::router(sextant_server::state(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut c = Conn::open(addr).await.unwrap();
    let began = Instant::now();
    let t = c
        .json(
            "POST",
            "/traces",
            &json!({"parameters": {"uri": trace}}).to_string(),
        )
        .await;
    let e = c
        .json(
            "POST",
            "/experiments",
            &json!({"parameters": {"name": "load", "traces": [t["UUID"]]}}).to_string(),
        )
        .await;
    let exp = e["UUID"].as_str().unwrap().to_string();
    let e = loop {
        let e = c.json("GET", &format!("/experiments/{exp}"), "").await;
        if e["indexingStatus"] == "COMPLETED" {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (start, end) = (e["start"].as_i64().unwrap(), e["end"].as_i64().unwrap());
    eprintln!("analyses ready in {:.1} s", began.elapsed().as_secs_f64());
    let base = format!("/experiments/{exp}/outputs/timeGraph/{CONTROL_FLOW_ID}");
    let tree = c
        .json("POST", &format!("{base}/tree"), r#"{"parameters":{}}"#)
        .await;
    let ids: Vec<i64> = tree["model"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["parentId"] != -1)
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let rows = ids.len().min(500);
    eprintln!(
        "{} thread rows; {rows} per request, 1000 times, {clients} clients, {seconds} s",
        ids.len()
    );

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let ids = ids.clone();
        let path = format!("{base}/states");
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await.unwrap();
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut round = 0usize;
            while Instant::now() < deadline {
                // Each client looks at its own window (a tenth of the trace, sliding)
                // and its own rows, as users scrolling and zooming would.
                let span = (end - start) / 10;
                let offset = ((client * 7 + round) % 10) as i64 * ((end - start - span) / 9).max(0);
                let first = (client * 13 + round * 17) % ids.len().max(1);
                let items: Vec<i64> = ids.iter().cycle().skip(first).take(rows).copied().collect();
                let body = json!({"parameters": {"requested_timerange": {"start": start + offset, "end": start + offset + span, "nbTimes": 1000}, "requested_items": items}}).to_string();
                let sent = Instant::now();
                match conn.send("POST", &path, &body).await {
                    Ok((200, _)) => latencies.push(sent.elapsed()),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = Conn::open(addr).await.unwrap();
                    }
                }
                round += 1;
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{} requests ({:.1}/s), {errors} errors, latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms, peak RSS {} MiB",
        all.len(),
        all.len() as f64 / seconds as f64,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        peak_rss_kib().unwrap_or(0) / 1024
    );
}
