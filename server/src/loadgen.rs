//! A load generator for the server (loopback only, bounded in time), shared by
//! the `load` example and `sextant bench server`: it starts the server in this
//! process, opens a trace (its analyses run, or the `.ht` files already in the
//! data directory are reused), waits for the experiment to be COMPLETED and the
//! histories' column indexes to be ready (see [`crate::columns`]), then
//! `clients` keep-alive connections send Control Flow states requests (up to
//! `rows` rows x `times` times, each client its own sliding window) until the
//! deadline. Latencies are measured per request, client side.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::kernel_views::CONTROL_FLOW_ID;

/// What to send.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub trace: PathBuf,
    pub data_dir: PathBuf,
    pub clients: usize,
    pub duration: Duration,
    /// Rows per request (at most the trace's thread count).
    pub rows: usize,
    /// Sampled times per request (`nbTimes`).
    pub times: u32,
    /// Each request a new random window (a tenth of the trace, starting anywhere)
    /// instead of one of ten shared sliding windows: no answer is ever asked
    /// twice, so no row cache helps (the "cold" figure).
    pub cold: bool,
}

/// What was measured.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Time from opening the trace to the experiment being COMPLETED.
    pub ready: Duration,
    /// Time from COMPLETED to the column indexes being ready (built, or
    /// reused from an earlier run), and their bytes; the load starts then.
    pub index_ready: Duration,
    pub index_bytes: u64,
    /// Whether an index was built (else all were reused).
    pub index_built: bool,
    /// Thread rows of the Control Flow view, and rows sent per request.
    pub thread_rows: usize,
    pub rows_per_request: usize,
    /// Successful requests, sorted latencies.
    pub latencies: Vec<Duration>,
    pub errors: u64,
    pub elapsed: Duration,
}

impl LoadReport {
    /// The latency below which a fraction `p` of the requests fall.
    pub fn percentile(&self, p: f64) -> Duration {
        let n = self.latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        self.latencies[((n as f64 * p) as usize).min(n - 1)]
    }

    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    reader: BufReader<TcpStream>,
    /// The last answer's body, when kept.
    body: Vec<u8>,
    /// Where answers not kept are read, piece by piece: the client runs on the
    /// server's cores, so it must not zero, allocate or hold megabytes per
    /// answer.
    scratch: Box<[u8]>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        Ok(Conn {
            reader: BufReader::new(TcpStream::connect(addr).await?),
            body: Vec::new(),
            scratch: vec![0; 128 << 10].into_boxed_slice(),
        })
    }

    /// The status; the body is then in `self.body` when `keep`, else read and
    /// dropped.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
        keep: bool,
    ) -> std::io::Result<u16> {
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
            if self.reader.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
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
        self.body.clear();
        if !keep {
            let mut left = length;
            while left > 0 {
                let n = left.min(self.scratch.len());
                let n = self.reader.read(&mut self.scratch[..n]).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                left -= n;
            }
            return Ok(status);
        }
        self.body.reserve(length);
        // Into the spare capacity (not zeroed first), never beyond it.
        while self.body.len() < length {
            let want = (length - self.body.len()) as u64;
            if (&mut self.reader)
                .take(want)
                .read_buf(&mut self.body)
                .await?
                == 0
            {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(status)
    }

    /// A request that must succeed with a JSON body.
    async fn json(&mut self, method: &str, path: &str, body: &str) -> Result<Value, String> {
        let status = self
            .send(method, path, body, true)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        if status != 200 {
            return Err(format!(
                "{method} {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&self.body)
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("{method} {path}: bad JSON: {e}"))
    }
}

/// Starts a server on a loopback port of this process and runs the load against it.
pub async fn run(config: &LoadConfig) -> Result<LoadReport, String> {
    let serve = crate::ServeConfig {
        port: 0,
        data_dir: Some(config.data_dir.clone()),
        ..Default::default()
    };
    // The server gets a runtime of its own, as `sextant serve` has in its own
    // process: sharing the clients' worker threads, its connections queued
    // behind client tasks (and the other way round) and the latency measured
    // that, not the server.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sextant-serve")
        .build()
        .map_err(|e| format!("cannot start the server's runtime: {e}"))?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;
    let server = runtime.spawn(async move {
        let app = crate::router(crate::state(serve));
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, app).await
    });
    let result = drive(addr, config).await;
    server.abort();
    // Dropping a runtime may block, which an async context forbids.
    runtime.shutdown_background();
    result
}

/// [`run`] on a runtime of its own (for callers without one, like `sextant bench`).
pub fn run_blocking(config: &LoadConfig) -> Result<LoadReport, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(run(config))
}

async fn drive(addr: SocketAddr, config: &LoadConfig) -> Result<LoadReport, String> {
    let trace = canonical(&config.trace)?;
    // Indexes made for this run are those reported from now on.
    let seen = crate::columns::done().len();
    let mut c = Conn::open(addr).await.map_err(|e| e.to_string())?;
    let began = Instant::now();
    let t = c
        .json(
            "POST",
            "/traces",
            &json!({"parameters": {"uri": trace}}).to_string(),
        )
        .await?;
    let e = c
        .json(
            "POST",
            "/experiments",
            &json!({"parameters": {"name": "load", "traces": [t["UUID"]]}}).to_string(),
        )
        .await?;
    let exp = e["UUID"]
        .as_str()
        .ok_or("experiment without UUID")?
        .to_string();
    let e = loop {
        let e = c.json("GET", &format!("/experiments/{exp}"), "").await?;
        match e["indexingStatus"].as_str() {
            Some("COMPLETED") => break e,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let ready = began.elapsed();
    // The indexes of the histories (built in the background after the
    // analyses, or reopened): the load measures the server once they serve.
    let indexing = Instant::now();
    while crate::columns::pending() > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let index_ready = indexing.elapsed();
    let made = crate::columns::done();
    let made = made.get(seen..).unwrap_or(&[]);
    let index_bytes = made.iter().map(|r| r.bytes).sum();
    let index_built = made.iter().any(|r| r.built);
    let (start, end) = match (e["start"].as_i64(), e["end"].as_i64()) {
        (Some(s), Some(e)) => (s, e),
        _ => return Err(format!("experiment without bounds: {e}")),
    };
    let base = format!("/experiments/{exp}/outputs/timeGraph/{CONTROL_FLOW_ID}");
    let tree = c
        .json("POST", &format!("{base}/tree"), r#"{"parameters":{}}"#)
        .await?;
    let ids: Vec<i64> = tree["model"]["entries"]
        .as_array()
        .ok_or("Control Flow tree without entries")?
        .iter()
        .filter(|e| e["parentId"] != -1)
        .filter_map(|e| e["id"].as_i64())
        .collect();
    if ids.is_empty() {
        return Err("the Control Flow view has no thread rows".into());
    }
    let rows = ids.len().min(config.rows.max(1));
    let times = config.times;

    let began = Instant::now();
    let deadline = began + config.duration;
    let mut tasks = Vec::new();
    for client in 0..config.clients {
        let ids = ids.clone();
        let path = format!("{base}/states");
        let cold = config.cold;
        let mut rng = XorShift(
            0x9e37_79b9_7f4a_7c15 ^ (client as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await.ok();
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut round = 0usize;
            while Instant::now() < deadline {
                let Some(c) = conn.as_mut() else {
                    errors += 1;
                    conn = Conn::open(addr).await.ok();
                    continue;
                };
                // Each client looks at its own window (a tenth of the trace, sliding)
                // and its own rows, as users scrolling and zooming would.
                let span = (end - start) / 10;
                let step = ((end - start - span) / 9).max(0);
                let offset = if cold {
                    (rng.next() % (end - start - span).max(1) as u64) as i64
                } else {
                    ((client * 7 + round) % 10) as i64 * step
                };
                let first = (client * 13 + round * 17) % ids.len();
                let items: Vec<i64> = ids.iter().cycle().skip(first).take(rows).copied().collect();
                let body = json!({"parameters": {"requested_timerange": {"start": start + offset, "end": start + offset + span, "nbTimes": times}, "requested_items": items}}).to_string();
                let sent = Instant::now();
                match c.send("POST", &path, &body, false).await {
                    Ok(200) => latencies.push(sent.elapsed()),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = Conn::open(addr).await.ok();
                    }
                }
                round += 1;
            }
            (latencies, errors)
        }));
    }
    let mut report = LoadReport {
        ready,
        index_ready,
        index_bytes,
        index_built,
        thread_rows: ids.len(),
        rows_per_request: rows,
        ..Default::default()
    };
    for t in tasks {
        let (l, e) = t.await.map_err(|e| format!("a client failed: {e}"))?;
        report.latencies.extend(l);
        report.errors += e;
    }
    report.elapsed = began.elapsed();
    report.latencies.sort();
    Ok(report)
}

/// A small deterministic generator for the cold windows (xorshift64*).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn canonical(path: &Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))
}
