//! HTTP layer: routes of tsp.md under `/tsp/api`, CORS, JSON answers with the
//! exact `application/json` content type, and the mapping of errors to codes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::catalog::{experiment_json, trace_json, Catalog, Experiment};
use crate::error::ApiError;
use crate::model::{GenericResponse, MarkerSet, OutputType};
use crate::query::{
    optional_str, parse_parameters, required_str, DataQuery, QueryError, TooltipQuery, TreeQuery,
    BAD_INTERVAL_MESSAGE,
};
use crate::registry::{OutputProvider, ProviderError, ProviderResult};

/// Base path of every endpoint.
pub const BASE_PATH: &str = "/tsp/api";

/// Shared state of the router.
pub type AppState = Arc<Catalog>;

/// A JSON answer with `Content-Type: application/json` exactly.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    bytes_response(status, serde_json::to_vec(body).map(|b| vec![b.into()]))
}

/// A response body of pieces already in memory, with its exact length (so the
/// answer has a `Content-Length`, as one buffer would): states answers send
/// the row cache's bytes without copying them into one buffer first.
struct Pieces {
    pieces: std::collections::VecDeque<Bytes>,
    left: u64,
}

impl Pieces {
    fn body(pieces: Vec<Bytes>) -> Body {
        if pieces.len() == 1 {
            let mut pieces = pieces;
            return Body::from(pieces.pop().unwrap_or_default());
        }
        let pieces: std::collections::VecDeque<Bytes> =
            pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let left = pieces.iter().map(|p| p.len() as u64).sum();
        Body::new(Pieces { pieces, left })
    }
}

impl http_body::Body for Pieces {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let piece = self.pieces.pop_front();
        if let Some(p) = &piece {
            self.left -= p.len() as u64;
        }
        std::task::Poll::Ready(piece.map(|p| Ok(http_body::Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

/// An answer of JSON bytes already written (or the error writing them).
fn bytes_response(status: StatusCode, bytes: serde_json::Result<Vec<Bytes>>) -> Response {
    match bytes {
        Ok(pieces) => {
            let mut r = Response::new(Pieces::body(pieces));
            *r.status_mut() = status;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => {
            let body = json!({"title": "Internal error", "detail": e.to_string()});
            let mut r = Response::new(Body::from(body.to_string()));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
    }
}

fn ok<T: Serialize + ?Sized>(body: &T) -> Response {
    json_response(StatusCode::OK, body)
}

type ApiResult = Result<Response, ApiError>;

fn add_cors(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("origin, content-type, accept, authorization"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS, HEAD"),
    );
}

/// CORS on every answer; `OPTIONS` preflight on any path answers 200.
async fn cors(req: Request, next: Next) -> Response {
    let mut response = if req.method() == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        json_errors(next.run(req).await).await
    };
    add_cors(response.headers_mut());
    response
}

/// Safety net: an error answer made outside our handlers (an extractor's
/// rejection, e.g. a path that is not valid UTF-8) becomes a JSON error too.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json");
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut error = ApiError::new(status, status.canonical_reason().unwrap_or("Error"));
    if !text.is_empty() {
        error = error.detail(text);
    }
    error.into_response()
}

/// The TSP router (no network: serve it with `axum::serve` or call it with `oneshot`).
pub fn router(state: AppState) -> Router {
    let p = |s: &str| format!("{BASE_PATH}{s}");
    let outputs = "/experiments/{exp}/outputs";
    let api = Router::new()
        .route(&p("/health"), get(health))
        .route(&p("/identifier"), get(identifier))
        .route(&p("/traces"), get(list_traces).post(open_trace))
        .route(&p("/traces/{uuid}"), get(get_trace).delete(delete_trace))
        .route(
            &p("/experiments"),
            get(list_experiments).post(create_experiment),
        )
        .route(
            &p("/experiments/{uuid}"),
            get(get_experiment).delete(delete_experiment),
        )
        .route(&p(outputs), get(list_outputs))
        .route(&p(&format!("{outputs}/markerSets")), get(marker_sets))
        .route(&p(&format!("{outputs}/{{out}}")), get(get_output))
        .route(&p(&format!("{outputs}/{{out}}/style")), post(style))
        .route(
            &p(&format!("{outputs}/{{out}}/annotations")),
            get(annotation_categories).post(annotations),
        )
        .route(
            &p(&format!("{outputs}/timeGraph/{{out}}/tree")),
            post(tg_tree),
        )
        .route(
            &p(&format!("{outputs}/timeGraph/{{out}}/states")),
            post(tg_states),
        )
        .route(
            &p(&format!("{outputs}/timeGraph/{{out}}/tooltip")),
            post(tg_tooltip),
        )
        .route(
            &p(&format!("{outputs}/timeGraph/{{out}}/arrows")),
            post(tg_arrows),
        )
        .route(&p(&format!("{outputs}/XY/{{out}}/tree")), post(xy_tree))
        .route(&p(&format!("{outputs}/XY/{{out}}/xy")), post(xy_data))
        .route(&p(&format!("{outputs}/data/{{out}}/tree")), post(data_tree))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    api.layer(middleware::from_fn(cors))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// A path UUID must be canonical lowercase 8-4-4-4-12 (tsp.md §1.8).
fn canonical_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

fn body_params(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    let body = body
        .map_err(|e| ApiError::new(e.status(), "Invalid query parameters").detail(e.body_text()))?;
    Ok(parse_parameters(&body)?)
}

async fn health() -> Response {
    ok(&json!({"status": "UP"}))
}

async fn identifier() -> Response {
    let os = match std::env::consts::OS {
        "linux" => "Linux".to_string(),
        "macos" => "Mac OS X".to_string(),
        "windows" => "Windows".to_string(),
        other => other.to_string(),
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "aarch64",
        other => other,
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
    ok(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "os": os,
        "osArch": arch,
        "cpuCount": cpus,
        "productId": "org.sextant.server",
        "tspVersion": "0.6.0",
    }))
}

// ---- traces ---------------------------------------------------------------

async fn list_traces(State(app): State<AppState>) -> Response {
    let list: Vec<Value> = app.traces().iter().map(|t| trace_json(t)).collect();
    ok(&list)
}

async fn open_trace(State(app): State<AppState>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let p = body_params(body)?;
    let uri = required_str(&p, "uri")?.to_string();
    let name = optional_str(&p, "name")?.map(str::to_string);
    let type_id = optional_str(&p, "typeID")?.map(str::to_string);
    let trace =
        blocking(move || app.open_trace(&uri, name.as_deref(), type_id.as_deref())).await??;
    Ok(ok(&trace_json(&trace)))
}

async fn get_trace(State(app): State<AppState>, Path(uuid): Path<String>) -> ApiResult {
    let trace = canonical_uuid(&uuid)
        .then(|| app.trace(&uuid))
        .flatten()
        .ok_or_else(|| ApiError::no_trace(&uuid))?;
    Ok(ok(&trace_json(&trace)))
}

async fn delete_trace(State(app): State<AppState>, Path(uuid): Path<String>) -> ApiResult {
    if !canonical_uuid(&uuid) {
        return Err(ApiError::no_trace(&uuid));
    }
    let trace = app.delete_trace(&uuid)?;
    Ok(ok(&trace_json(&trace)))
}

// ---- experiments ----------------------------------------------------------

async fn list_experiments(State(app): State<AppState>) -> Response {
    let list: Vec<Value> = app
        .experiments()
        .iter()
        .map(|e| experiment_json(e))
        .collect();
    ok(&list)
}

async fn create_experiment(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let p = body_params(body)?;
    let name = required_str(&p, "name")?.to_string();
    if name.is_empty() {
        return Err(ApiError::invalid("name", "empty name".into()));
    }
    let traces = match p.get("traces") {
        None | Some(Value::Null) => return Err(QueryError::Missing("traces").into()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| {
                ApiError::invalid("traces", "must be an array of UUID strings".into())
            })?,
        Some(_) => {
            return Err(ApiError::invalid(
                "traces",
                "must be an array of UUID strings".into(),
            ))
        }
    };
    if traces.is_empty() {
        return Err(ApiError::invalid("traces", "no trace given".into()));
    }
    // Traces of several hosts are synchronized in the background: the experiment is
    // answered at once, RUNNING.
    let exp = blocking(move || app.create_experiment_in_background(&name, &traces)).await??;
    Ok(ok(&experiment_json(&exp)))
}

async fn get_experiment(State(app): State<AppState>, Path(uuid): Path<String>) -> ApiResult {
    let exp = canonical_uuid(&uuid)
        .then(|| app.experiment(&uuid))
        .flatten()
        .ok_or_else(|| ApiError::no_experiment(&uuid))?;
    Ok(ok(&experiment_json(&exp)))
}

async fn delete_experiment(State(app): State<AppState>, Path(uuid): Path<String>) -> ApiResult {
    let exp = canonical_uuid(&uuid)
        .then(|| app.delete_experiment(&uuid))
        .flatten()
        .ok_or_else(|| ApiError::no_experiment(&uuid))?;
    Ok(ok(&experiment_json(&exp)))
}

// ---- outputs --------------------------------------------------------------

fn experiment_for_outputs(app: &Catalog, uuid: &str) -> Result<Arc<Experiment>, ApiError> {
    canonical_uuid(uuid)
        .then(|| app.experiment(uuid))
        .flatten()
        .ok_or_else(ApiError::no_such_trace)
}

async fn list_outputs(State(app): State<AppState>, Path(exp): Path<String>) -> ApiResult {
    let exp = experiment_for_outputs(&app, &exp)?;
    let mut list: Vec<_> = exp.outputs.iter().map(|o| o.descriptor().clone()).collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ok(&list))
}

async fn get_output(
    State(app): State<AppState>,
    Path((exp, out)): Path<(String, String)>,
) -> ApiResult {
    let exp = experiment_for_outputs(&app, &exp)?;
    let output = exp
        .output(&out)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Data provider doesn't exist"))?;
    Ok(ok(output.descriptor()))
}

async fn marker_sets(State(app): State<AppState>, Path(exp): Path<String>) -> ApiResult {
    experiment_for_outputs(&app, &exp)?;
    let sets: Vec<MarkerSet> = Vec::new();
    Ok(ok(&GenericResponse::completed(sets)))
}

/// Runs a provider call on a blocking thread (state system queries read files).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error").detail(e.to_string())
    })
}

/// Finds the output, checks its type, parses the request and runs `call`.
/// `empty` is the model sent with a FAILED status (None = `null`).
#[allow(clippy::too_many_arguments)]
async fn output_call<Q, T>(
    app: AppState,
    exp: String,
    out: String,
    kind: Option<OutputType>,
    params: Result<Map<String, Value>, ApiError>,
    parse: impl FnOnce(Map<String, Value>) -> Result<Q, QueryError>,
    empty: Option<T>,
    call: impl FnOnce(&dyn OutputProvider, &Q) -> ProviderResult<T> + Send + 'static,
) -> ApiResult
where
    Q: Send + 'static,
    T: Serialize + Send + 'static,
{
    let render = |r: &GenericResponse<T>| serde_json::to_vec(r).map(|b| vec![b.into()]);
    output_call_as(
        app, exp, out, kind, params, parse, empty, call, render, false,
    )
    .await
}

/// [`output_call`] with the answer written by `render`; when `gated`, the
/// call and its rendering wait for a slot of the server's [`Admission`]
/// (checks and parsing do not: a bad request is answered at once).
///
/// [`Admission`]: crate::admission::Admission
#[allow(clippy::too_many_arguments)]
async fn output_call_as<Q, T>(
    app: AppState,
    exp: String,
    out: String,
    kind: Option<OutputType>,
    params: Result<Map<String, Value>, ApiError>,
    parse: impl FnOnce(Map<String, Value>) -> Result<Q, QueryError>,
    empty: Option<T>,
    call: impl FnOnce(&dyn OutputProvider, &Q) -> ProviderResult<T> + Send + 'static,
    render: impl Fn(&GenericResponse<T>) -> serde_json::Result<Vec<Bytes>> + Send + 'static,
    gated: bool,
) -> ApiResult
where
    Q: Send + 'static,
    T: Send + 'static,
{
    let exp = experiment_for_outputs(&app, &exp)?;
    let output = exp.output(&out).ok_or_else(ApiError::cannot_run)?;
    if kind.is_some_and(|k| output.descriptor().output_type != k) {
        return Err(ApiError::cannot_run());
    }
    let query = match parse(params?) {
        Ok(q) => q,
        Err(QueryError::BadInterval) => {
            let failed = GenericResponse::failed(empty, BAD_INTERVAL_MESSAGE);
            return Ok(bytes_response(StatusCode::OK, render(&failed)));
        }
        Err(e) => return Err(e.into()),
    };
    // Dropped with this future when the client goes away while queued.
    let slot = match gated {
        true => Some(app.admission.admit().await),
        false => None,
    };
    // Rendered on the blocking thread too: answers run to megabytes, and the
    // async workers are left to the connections.
    let result = blocking(move || {
        let _slot = slot;
        match call(&*output, &query) {
            Ok(response) => Ok(render(&response)),
            Err(ProviderError::Unsupported) => Err(ApiError::cannot_run()),
            Err(ProviderError::Failed(message)) => {
                Ok(render(&GenericResponse::failed(empty, message)))
            }
        }
    })
    .await?;
    Ok(bytes_response(StatusCode::OK, result?))
}

async fn style(
    State(app): State<AppState>,
    Path((exp, out)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    // The viewers send `{"parameters":{}}`; an absent body is tolerated here.
    let params = match body {
        Ok(b) if b.iter().all(|c| c.is_ascii_whitespace()) => Ok(Map::new()),
        other => body_params(other),
    };
    output_call(app, exp, out, None, params, Ok, None, |o, _| o.style()).await
}

async fn annotation_categories(
    State(app): State<AppState>,
    Path((exp, out)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let marker_set = raw.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("markerSetId=").map(str::to_string))
    });
    output_call(
        app,
        exp,
        out,
        None,
        Ok(Map::new()),
        Ok,
        None,
        move |o, _| o.annotation_categories(marker_set.as_deref()),
    )
    .await
}

async fn annotations(
    State(app): State<AppState>,
    Path((exp, out)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let params = body_params(body);
    output_call(
        app,
        exp,
        out,
        None,
        params,
        |p| DataQuery::parse(p, false),
        Some(crate::model::AnnotationsModel::default()),
        |o, q| o.annotations(q),
    )
    .await
}

async fn tree_call(
    app: AppState,
    exp: String,
    out: String,
    kind: Option<OutputType>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let params = body_params(body);
    output_call(
        app,
        exp,
        out,
        kind,
        params,
        TreeQuery::parse,
        None,
        |o, q| o.tree(q),
    )
    .await
}

async fn tg_tree(
    State(app): State<AppState>,
    Path((exp, out)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    tree_call(app, exp, out, Some(OutputType::TimeGraph), body).await
}

async fn xy_tree(
    State(app): State<AppState>,
    Path((exp, out)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    tree_call(app, exp, out, Some(OutputType::TreeTimeXy), body).await
}

async fn data_tree(
    State(app): State<AppState>,
    Path((exp, out)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    tree_call(app, exp, out, None, body).await
}

async fn tg_states(
    State(app): State<AppState>,
    Path((exp, out)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let params = body_params(body);
    output_call_as(
        app,
        exp,
        out,
        Some(OutputType::TimeGraph),
        params,
        |p| DataQuery::parse(p, true),
        Some(crate::states_cache::StatesAnswer::default()),
        |o, q| o.states_answer(q),
        // Tens of thousands of states: written by hand, same bytes as serde.
        |r| Ok(crate::states_json::states_pieces(r)),
        true,
    )
    .await
}

async fn tg_tooltip(
    State(app): State<AppState>,
    Path((exp, out)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let params = body_params(body);
    output_call(
        app,
        exp,
        out,
        Some(OutputType::TimeGraph),
        params,
        TooltipQuery::parse,
        None::<BTreeMap<String, String>>,
        |o, q| o.tooltip(q),
    )
    .await
}

async fn tg_arrows(
    State(app): State<AppState>,
    Path((exp, out)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let params = body_params(body);
    output_call(
        app,
        exp,
        out,
        Some(OutputType::TimeGraph),
        params,
        |p| DataQuery::parse(p, false),
        None,
        |o, q| o.arrows(q),
    )
    .await
}

async fn xy_data(
    State(app): State<AppState>,
    Path((exp, out)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let params = body_params(body);
    output_call(
        app,
        exp,
        out,
        Some(OutputType::TreeTimeXy),
        params,
        |p| DataQuery::parse(p, true),
        None,
        |o, q| o.xy(q),
    )
    .await
}
