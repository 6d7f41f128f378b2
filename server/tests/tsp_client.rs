//! The real client: `tsp-typescript-client` 0.9.0 (the library the Theia / VS Code
//! trace viewers use) walks a viewer's flow against the server on a loopback port
//! (`tests/tsp-client/walk.js`). The npm install runs here, once, into
//! `target/tmp/tsp-client` (reused while its package.json is unchanged). The
//! client pins json-bigint to a git commit; npm `overrides` replace it with the
//! registry's `json-bigint-fixes` 1.1.0, which has that commit's number parsing
//! (the registry's json-bigint 1.0.0 throws on fractional literals longer than
//! 15 characters, so CPU usage answers would not parse). Only the npm registry
//! is needed. Without Node or npm the
//! test says so and skips (under CI=true it fails instead).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn tool_version(tool: &str) -> Option<String> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Installs the client (if not already there); returns its node_modules.
fn install_client() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tsp-client");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tsp-client");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = std::fs::read(here.join("package.json")).unwrap();
    let installed = dir.join("node_modules/tsp-typescript-client/package.json");
    let current = std::fs::read(dir.join("package.json")).ok();
    if !installed.is_file() || current.as_deref() != Some(&manifest[..]) {
        std::fs::write(dir.join("package.json"), &manifest).unwrap();
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--no-package-lock"])
            .current_dir(&dir)
            .status()
            .expect("running npm install");
        assert!(status.success(), "npm install in {} failed", dir.display());
    }
    let version: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&installed).unwrap()).unwrap();
    assert_eq!(version["version"], "0.9.0");
    dir.join("node_modules")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_client_walks_a_viewer_session() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let (Some(node), Some(npm)) = (tool_version("node"), tool_version("npm")) else {
        assert!(!ci, "CI=true but node or npm is missing");
        eprintln!("notice: skipping the tsp-typescript-client test: node and npm are needed");
        return;
    };
    eprintln!("node {node}, npm {npm}");
    let modules = tokio::task::spawn_blocking(install_client).await.unwrap();

    let traces = shared.join("traces");
    let data = tempfile::tempdir().unwrap();
    let config = sextant_server::ServeConfig {
        port: 0,
        data_dir: Some(data.path().to_path_buf()),
        trace_roots: vec![traces.clone()],
        ..Default::default()
    };
    let app = sextant_server::router(sextant_server::state(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The expected range, from the trace's own kernel history built apart.
    let trace = traces.join("ctf/bug446190/ctf");
    let (want_start, want_end) = tokio::task::spawn_blocking({
        let trace = trace.clone();
        move || {
            use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
            let mut source = sextant_providers::sources::open(&[trace]).unwrap();
            let provider = sextant_providers::native_registry()
                .create("kernel")
                .unwrap();
            let (_, ss) = build(
                &mut *source,
                vec![Analysis {
                    provider,
                    output: Output::InMemory,
                }],
                &BuildOptions::default(),
            )
            .unwrap();
            use sht::StateSystemQuerier;
            (ss[0].start_time(), ss[0].current_end_time())
        }
    })
    .await
    .unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tsp-client/walk.js");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(format!("http://{addr}/tsp/api"))
        .arg("ctf/bug446190/ctf")
        .arg(want_start.to_string())
        .arg(want_end.to_string())
        .env("TSP_CLIENT_MODULES", &modules)
        .output()
        .await
        .unwrap();
    server.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "walk.js failed:\n{stderr}\n{stdout}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["start"], want_start.to_string());
    assert_eq!(summary["end"], want_end.to_string());
    assert!(summary["states"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["xySeries"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(
        summary["xyOutput"],
        sextant_server::cpu_usage::CPU_USAGE_ID,
        "{summary}"
    );
}
