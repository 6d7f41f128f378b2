//! Error answers (tsp.md §1.7, §9) and the server's own errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::query::QueryError;

/// An HTTP error answer: `{"title": ..., "detail"?: ..., <extra key>?: ...}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub title: String,
    pub detail: Option<String>,
    /// An extra member, e.g. the existing `trace` of a 409.
    pub extra: Option<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, title: impl Into<String>) -> Self {
        ApiError {
            status,
            title: title.into(),
            detail: None,
            extra: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra = Some((key, value));
        self
    }

    /// 400 `Invalid query parameters: <key>`.
    pub fn invalid(key: &str, detail: String) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid query parameters: {key}"),
        )
        .detail(detail)
    }

    /// 404 for an unknown trace.
    pub fn no_trace(uuid: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("No trace found with uuid {uuid}"),
        )
    }

    /// 404 for an unknown experiment on the experiment endpoints.
    pub fn no_experiment(uuid: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("No experiment found with uuid {uuid}"),
        )
    }

    /// 404 for an unknown experiment on the output endpoints (Trace Compass's title).
    pub fn no_such_trace() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "No such trace")
    }

    /// 405 for an unknown or inapplicable output.
    pub fn cannot_run() -> Self {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Analysis cannot run")
    }

    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("title".into(), Value::String(self.title.clone()));
        if let Some(d) = &self.detail {
            m.insert("detail".into(), Value::String(d.clone()));
        }
        if let Some((k, v)) = &self.extra {
            m.insert((*k).into(), v.clone());
        }
        Value::Object(m)
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::MissingBody => {
                ApiError::new(StatusCode::BAD_REQUEST, "Missing query parameters")
            }
            QueryError::MalformedBody(d) => {
                ApiError::new(StatusCode::BAD_REQUEST, "Invalid query parameters").detail(d)
            }
            QueryError::Missing(key) => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Missing query parameters: {key}"),
            ),
            QueryError::Invalid(key, d) => ApiError::invalid(key, d),
            QueryError::BadInterval => ApiError::invalid(
                "requested_timerange",
                crate::query::BAD_INTERVAL_MESSAGE.into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        crate::api::json_response(self.status, &self.body())
    }
}

/// Why [`crate::run`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("XML analysis file: {0}")]
    Xml(String),
    #[error("trace root {0} is not a directory")]
    TraceRoot(String),
    #[error("server I/O error: {0}")]
    Io(#[from] std::io::Error),
}
