//! The JSON shapes of the protocol (tsp.md §2–§6), as serde types.
//!
//! Every timestamp and id is an `i64` written by `serde_json` as a bare integer
//! literal; doubles go through [`finite`] so that no NaN or infinity reaches the wire.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

/// A string of the answers that is most often one of a known set (style keys,
/// state labels): borrowed then, so building a state allocates nothing.
pub type Text = Cow<'static, str>;

/// `status` of a [`GenericResponse`] (tsp.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// `{"model": ..., "status": ..., "statusMessage": ...}`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenericResponse<T> {
    pub model: Option<T>,
    pub status: Status,
    pub status_message: String,
}

impl<T> GenericResponse<T> {
    /// A finished answer.
    pub fn completed(model: T) -> Self {
        GenericResponse {
            model: Some(model),
            status: Status::Completed,
            status_message: "Completed".into(),
        }
    }

    /// A partial answer: the analysis is still being built.
    pub fn running(model: T) -> Self {
        GenericResponse {
            model: Some(model),
            status: Status::Running,
            status_message: "Running".into(),
        }
    }

    /// COMPLETED or RUNNING depending on `running`.
    pub fn with_progress(model: T, running: bool) -> Self {
        if running {
            Self::running(model)
        } else {
            Self::completed(model)
        }
    }

    /// A failed answer carrying `model` (use an empty model for states and annotations:
    /// the viewers cannot handle `null` there).
    pub fn failed(model: Option<T>, message: impl Into<String>) -> Self {
        GenericResponse {
            model,
            status: Status::Failed,
            status_message: message.into(),
        }
    }
}

/// The output types of tsp.md §5.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutputType {
    TimeGraph,
    TreeTimeXy,
    DataTree,
    Table,
    GanttChart,
    TreeGenericXy,
    None,
}

/// A data provider descriptor (`GET /experiments/{uuid}/outputs`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputDescriptor {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub output_type: OutputType,
}

/// An output element style: `{"parentKey"?: "k1,k2", "values": {...}}`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Style {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_key: Option<Text>,
    pub values: Map<String, Value>,
}

impl Style {
    /// A style that only inherits from `key` (no allocation for a `&'static str`).
    pub fn key(key: impl Into<Text>) -> Self {
        Style {
            parent_key: Some(key.into()),
            values: Map::new(),
        }
    }

    /// A style with properties and no parent.
    pub fn values<I, K>(values: I) -> Self
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Style {
            parent_key: None,
            values: values.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }
}

/// Model of `POST /{outputId}/style`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StyleModel {
    pub styles: Map<String, Value>,
}

impl StyleModel {
    pub fn insert(&mut self, key: impl Into<String>, style: &Style) {
        self.styles.insert(
            key.into(),
            serde_json::to_value(style).expect("styles serialize"),
        );
    }
}

/// A column header of a tree.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub name: String,
    pub tooltip: String,
    pub data_type: String,
}

impl Header {
    pub fn string(name: &str) -> Self {
        Header {
            name: name.into(),
            tooltip: String::new(),
            data_type: "STRING".into(),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One tree entry (tsp.md §6.3). `id` must be ≥ 0, < 2^53 and stable.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeEntry {
    pub id: i64,
    pub parent_id: i64,
    pub labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    #[serde(skip_serializing_if = "is_false")]
    pub has_data: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<Style>,
}

impl TreeEntry {
    pub fn new(id: i64, parent_id: i64, labels: Vec<String>) -> Self {
        TreeEntry {
            id,
            parent_id,
            labels,
            start: None,
            end: None,
            has_data: false,
            is_default: None,
            style: None,
        }
    }

    pub fn span(mut self, start: i64, end: i64) -> Self {
        self.start = Some(start);
        self.end = Some(end);
        self
    }

    pub fn has_data(mut self, has_data: bool) -> Self {
        self.has_data = has_data;
        self
    }
}

/// Model of the tree endpoints.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeModel {
    pub headers: Vec<Header>,
    pub entries: Vec<TreeEntry>,
    pub auto_expand_level: i32,
}

impl TreeModel {
    /// A tree with one "Name" column, expanded `auto_expand_level` levels (-1: all).
    pub fn named(entries: Vec<TreeEntry>, auto_expand_level: i32) -> Self {
        TreeModel {
            headers: vec![Header::string("Name")],
            entries,
            auto_expand_level,
        }
    }
}

/// One time-graph state (tsp.md §6.4); `end` is exclusive-style.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TimeGraphState {
    pub start: i64,
    pub end: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<Style>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeGraphRow {
    pub entry_id: i64,
    pub states: Vec<TimeGraphState>,
}

/// Model of `timeGraph/{id}/states`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StatesModel {
    pub rows: Vec<TimeGraphRow>,
}

/// One arrow of `timeGraph/{id}/arrows`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Arrow {
    pub start: i64,
    pub end: i64,
    pub source_id: i64,
    pub target_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<Style>,
}

/// `xValuesDescription` / `yValuesDescription`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AxisDescription {
    pub label: String,
    pub unit: String,
    pub data_type: String,
}

/// One XY series (tsp.md §6.7).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct XySeries {
    pub series_id: i64,
    pub series_name: String,
    pub x_values: Vec<i64>,
    pub y_values: Vec<f64>,
    pub style: Style,
    pub x_values_description: AxisDescription,
    pub y_values_description: AxisDescription,
}

/// Model of `XY/{id}/xy`.
#[derive(Clone, Debug, Serialize)]
pub struct XyModel {
    pub title: String,
    pub series: Vec<XySeries>,
}

/// Model of `GET /{outputId}/annotations`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnnotationCategories {
    pub annotation_categories: Vec<String>,
}

/// One annotation (tsp.md §6.8).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotation {
    pub time: i64,
    pub duration: i64,
    pub entry_id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<Style>,
}

/// Model of `POST /{outputId}/annotations`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AnnotationsModel {
    pub annotations: Map<String, Value>,
}

/// A marker set of `GET /outputs/markerSets`.
#[derive(Clone, Debug, Serialize)]
pub struct MarkerSet {
    pub name: String,
    pub id: String,
}

/// A double that is safe to write as JSON: non-finite values become 0.
#[inline]
pub fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}
