//! The Trace Server Protocol (TSP) server behind `sextant serve`: answers trace
//! viewers' (Theia / VS Code Trace Viewer) requests from `sht` state systems.
//!
//! Data flows from paths to pixels in four steps. A viewer posts a path to
//! `/traces`; the [`Catalog`] asks the [`Registry`]'s [`TraceOpener`]s to turn it
//! into a [`Trace`] that owns a live list of [`StateSystemHandle`]s (an
//! `Arc<RwLock<StateSystem>>` each, so a builder thread can keep growing it). An
//! experiment groups traces into an [`ExperimentSource`]; when it is created,
//! every [`OutputFactory`] of the registry makes its [`OutputProvider`]s for it
//! (here the state system [`explorer`] and the state system XY [`ssxy`]), and the
//! experiment keeps them so entry ids stay stable. The HTTP layer ([`api`])
//! parses `{"parameters":{...}}` bodies into [`query`] types (time sampling of
//! tsp.md §6.1 included), runs the provider on a blocking thread and writes its
//! [`GenericResponse`] as JSON. To add a trace type or a view, implement
//! [`TraceOpener`] or [`OutputFactory`]/[`OutputProvider`] and register it in a
//! [`Registry`]; the protocol code does not change.

pub mod admission;
pub mod analyses;
pub mod analysis_views;
pub mod api;
pub mod catalog;
pub mod columns;
pub mod cpu_usage;
pub mod error;
pub mod explorer;
pub mod kernel_views;
pub mod loadgen;
pub mod model;
pub mod query;
pub mod registry;
pub mod ssquery;
pub mod ssxy;
pub mod state_views;
pub mod states_cache;
pub mod states_json;
pub mod sync;
pub mod values;
pub mod xml_views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use api::{AppState, BASE_PATH};
pub use catalog::{Catalog, Experiment};
pub use error::{ApiError, ServerError};
pub use model::GenericResponse;
pub use registry::{
    ExperimentSource, OpenError, OpenedTrace, OutputFactory, OutputProvider, ProviderError,
    ProviderResult, Registry, StateSystemHandle, Trace, TraceOpener,
};

/// Settings of `sextant serve`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on (default `127.0.0.1`).
    pub host: String,
    /// Port (default 8080, the viewers' default).
    pub port: u16,
    /// Where the server keeps the analysis results it builds
    /// (`.tracing/<trace name>/<analysis id>.ht`, a Trace Compass project's
    /// layout); created at start. Default: `sextant-serve` in the temp directory.
    pub data_dir: Option<PathBuf>,
    /// Trace Compass XML analysis files: their state providers run with the
    /// native ones, their views are outputs.
    pub xml_files: Vec<PathBuf>,
    /// When non-empty, only paths below these directories may be opened, and
    /// relative paths are looked up in them.
    pub trace_roots: Vec<PathBuf>,
    /// Whether `/traces` may open LTTng live sessions
    /// (`net://HOST[:PORT]/host/HOSTNAME/SESSION`), followed until destroyed.
    pub live: bool,
    /// Live sessions opened at start, each as a trace and a one-trace experiment
    /// named after the session (implies `live`).
    pub follow: Vec<String>,
    /// Clock synchronization of experiments whose traces come from several hosts
    /// (see [`sync`]): `Auto` (default), `Off`, or a file of formulas.
    pub sync: sextant_providers::sources::SyncMode,
    /// How many time-graph states answers are computed at once (the others
    /// queue in arrival order, see [`admission`]); `None`: the default of
    /// [`admission::Admission::default_slots`].
    pub compute_slots: Option<usize>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            data_dir: None,
            xml_files: Vec::new(),
            trace_roots: Vec::new(),
            live: false,
            follow: Vec::new(),
            sync: sextant_providers::sources::SyncMode::Auto,
            compute_slots: None,
        }
    }
}

/// Server state with the default registry ([`Registry::for_config`]).
pub fn state(config: ServeConfig) -> AppState {
    let registry = Registry::for_config(&config);
    state_with_registry(config, registry)
}

/// Server state with a custom registry (extra trace types and outputs).
pub fn state_with_registry(config: ServeConfig, registry: Registry) -> AppState {
    Arc::new(Catalog::new(config, registry))
}

/// The TSP router for `state` (all paths under [`BASE_PATH`]); used by tests
/// with `tower::ServiceExt::oneshot`, and by [`run`].
pub fn router(state: AppState) -> axum::Router {
    api::router(state)
}

/// Checks the configuration and prepares the data directory.
fn prepare(config: &ServeConfig) -> Result<(), ServerError> {
    for root in &config.trace_roots {
        if !root.is_dir() {
            return Err(ServerError::TraceRoot(root.display().to_string()));
        }
    }
    if !config.xml_files.is_empty() {
        sextant_xml::load_files(&config.xml_files).map_err(|e| ServerError::Xml(e.to_string()))?;
    }
    if let Some(dir) = &config.data_dir {
        std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Runs the server in the foreground until Ctrl-C (blocking; starts its own
/// tokio runtime).
pub fn run(config: ServeConfig) -> Result<(), ServerError> {
    let registry = Registry::for_config(&config);
    run_with_registry(config, registry)
}

/// [`run`] with a custom registry.
pub fn run_with_registry(config: ServeConfig, registry: Registry) -> Result<(), ServerError> {
    prepare(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", config.host, config.port);
        let bind_err = |source| ServerError::Bind {
            addr: addr.clone(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(bind_err)?;
        let local: SocketAddr = listener.local_addr()?;
        eprintln!("sextant serve: Trace Server Protocol on http://{local}{BASE_PATH}");
        let follow = config.follow.clone();
        let state = state_with_registry(config, registry);
        for url in follow {
            // Attaching waits for the session's streams: not before serving.
            let catalog = state.clone();
            tokio::task::spawn_blocking(move || match catalog.follow(&url) {
                Ok(e) => eprintln!("sextant serve: following {url} as experiment {}", e.name),
                Err(e) => eprintln!("sextant serve: cannot follow {url}: {}", e.title),
            });
        }
        let app = router(state);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}
