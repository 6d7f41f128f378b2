//! The server on a real loopback port, and plain HTTP/1.1 requests to it (one
//! connection per request, closed after), for the tests that go through the
//! network rather than the router.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running server on 127.0.0.1:<free port>, stopped when dropped.
pub struct Server {
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start_server_with(config: sextant_server::ServeConfig) -> Server {
    serve_state(sextant_server::state(config)).await
}

/// Serves an application state prepared by the test (e.g. with sessions followed).
pub async fn serve_state(state: sextant_server::api::AppState) -> Server {
    let app = sextant_server::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { addr, task }
}

/// (status, content type, JSON body or Null) of one request.
pub async fn request(
    server: &Server,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String, Value) {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let body = body.unwrap_or("");
    let head = format!(
        "{method} /tsp/api{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    // axum answers with a content length (no chunking) for these bodies.
    let json = serde_json::from_str(payload).unwrap_or(Value::Null);
    (status, content_type, json)
}

/// The JSON of a request that must answer 200 with `application/json`.
pub async fn ok(server: &Server, method: &str, path: &str, body: Option<&str>) -> Value {
    let (status, ct, json) = request(server, method, path, body).await;
    assert_eq!(status, 200, "{method} {path}: {json}");
    assert_eq!(ct, "application/json");
    json
}

/// Polls `GET path` (a trace or an experiment) until its `indexingStatus` is
/// COMPLETED (anything but RUNNING before is a failure), for at most 10 minutes.
pub async fn completed(server: &Server, path: &str) -> Value {
    let began = Instant::now();
    loop {
        let v = ok(server, "GET", path, None).await;
        if v["indexingStatus"] == "COMPLETED" {
            return v;
        }
        assert_eq!(v["indexingStatus"], "RUNNING", "{v}");
        assert!(
            began.elapsed() < Duration::from_secs(600),
            "analyses still running: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
