//! The extension points with state systems still being built: a custom
//! [`TraceOpener`] handing out an in-memory state system that the test keeps
//! growing, RUNNING → COMPLETED status polling (tsp.md §2, §4.5), stable ids
//! while the attribute tree grows, and a custom [`OutputFactory`].

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::{json, Value};
use sextant_server::model::{
    GenericResponse, Header, OutputDescriptor, OutputType, TreeEntry, TreeModel,
};
use sextant_server::query::TreeQuery;
use sextant_server::{
    ExperimentSource, OpenError, OpenedTrace, OutputFactory, OutputProvider, ProviderResult,
    Registry, StateSystemHandle, TraceOpener,
};
use sht::{StateSystem, StateSystemBuilder, StateValue};

/// Opens `*.live` files as the state system the test is building.
struct LiveOpener(Mutex<Option<StateSystemHandle>>);

impl TraceOpener for LiveOpener {
    fn type_id(&self) -> &str {
        "test.live"
    }
    fn open(&self, path: &Path) -> Option<Result<OpenedTrace, OpenError>> {
        if path.extension()? != "live" {
            return None;
        }
        let handle = self.0.lock().unwrap().clone()?;
        Some(Ok(OpenedTrace {
            nb_events: 42,
            properties: [("hostname".to_string(), "test".to_string())].into(),
            state_systems: vec![handle],
            background: None,
        }))
    }
}

/// A DATA_TREE output listing the experiment's state systems.
struct Summary(OutputDescriptor, ExperimentSource);

impl OutputProvider for Summary {
    fn descriptor(&self) -> &OutputDescriptor {
        &self.0
    }
    fn tree(&self, _q: &TreeQuery) -> ProviderResult<TreeModel> {
        let entries = self
            .1
            .state_systems()
            .iter()
            .enumerate()
            .map(|(i, (_, h))| TreeEntry::new(i as i64, -1, vec![h.id.clone()]))
            .collect();
        Ok(GenericResponse::completed(TreeModel {
            headers: vec![Header::string("State system")],
            entries,
            auto_expand_level: -1,
        }))
    }
}

struct SummaryFactory;

impl OutputFactory for SummaryFactory {
    fn create(&self, e: &ExperimentSource) -> Vec<Arc<dyn OutputProvider>> {
        let d = OutputDescriptor {
            id: "test.summary".into(),
            name: "Summary".into(),
            description: "State systems".into(),
            output_type: OutputType::DataTree,
        };
        vec![Arc::new(Summary(d, e.clone()))]
    }
}

fn entries(v: &Value) -> Vec<Value> {
    v["model"]["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn running_then_completed_with_stable_ids() {
    let mut ss = StateSystem::in_memory(1000);
    let cpu = ss.quark_and_add(&["cpu"]).unwrap();
    ss.modify(1000, StateValue::Int(1), cpu).unwrap();
    ss.modify(1200, StateValue::Int(2), cpu).unwrap();
    let handle = StateSystemHandle::new("live", "Live analysis", ss);
    let writer = handle.ss.clone();

    let mut registry = Registry::with_defaults();
    registry.add_opener(Arc::new(LiveOpener(Mutex::new(Some(handle)))));
    registry.add_outputs(Arc::new(SummaryFactory));
    let app = sextant_server::router(sextant_server::state_with_registry(
        Default::default(),
        registry,
    ));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.live");
    std::fs::write(&path, "").unwrap();
    let (_t, exp) = open(&app, &path, "live").await;
    let e = get(&app, &format!("/experiments/{exp}")).await;
    let e = e.ok().clone();
    assert_eq!(e["indexingStatus"], "RUNNING");
    assert_eq!(
        (e["start"].as_i64(), e["end"].as_i64()),
        (Some(1000), Some(1200))
    );
    assert_eq!(e["nbEvents"], 42);
    assert_eq!(e["traces"][0]["properties"], json!({"hostname": "test"}));

    let tree_path = out(&exp, &format!("timeGraph/{EXPLORER}/tree"));
    let t1 = post(&app, &tree_path, r#"{"parameters":{}}"#).await;
    assert_eq!(t1.ok()["status"], "RUNNING");
    assert_eq!(t1.json["statusMessage"], "Running");
    let before = entries(&t1.json);
    assert_eq!(before.len(), 4);
    let cpu_id = before[3]["id"].as_i64().unwrap();

    // States within what is built: COMPLETED; past the current end: RUNNING.
    let states = out(&exp, &format!("timeGraph/{EXPLORER}/states"));
    let body = |end: i64| {
        json!({"parameters": {"requested_timerange": {"start": 1000, "end": end, "nbTimes": 10},
                              "requested_items": [cpu_id]}})
        .to_string()
    };
    let s = post(&app, &states, &body(1150)).await;
    assert_eq!(s.ok()["status"], "COMPLETED");
    let s = post(&app, &states, &body(5000)).await;
    assert_eq!(s.ok()["status"], "RUNNING");
    let got: Vec<(i64, i64)> = s.json["model"]["rows"][0]["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| (st["start"].as_i64().unwrap(), st["end"].as_i64().unwrap()))
        .collect();
    // Samples 1000, 1444, ...: only 1000 is within the built range [1000, 1200].
    assert_eq!(got, [(1000, 1200)]);

    // The builder goes on: a new attribute appears, then the history closes.
    {
        let mut ss = writer.write().unwrap();
        let mem = ss.quark_and_add(&["aaa"]).unwrap();
        ss.modify(1500, StateValue::Long(10), mem).unwrap();
        ss.close(2000).unwrap();
    }
    let t2 = post(&app, &tree_path, r#"{"parameters":{}}"#).await;
    assert_eq!(t2.ok()["status"], "COMPLETED");
    let after = entries(&t2.json);
    assert_eq!(after.len(), 5);
    // Same ids for the same rows; the new attribute gets a new id (listed first: sorted by name).
    assert_eq!(after[3]["labels"], json!(["aaa", "1"]));
    assert_eq!(after[4]["labels"], json!(["cpu", "0"]));
    assert_eq!(after[4]["id"], cpu_id);
    for (a, b) in before.iter().take(3).zip(&after) {
        assert_eq!(a["id"], b["id"]);
    }
    assert!(!before.iter().any(|e| e["id"] == after[3]["id"]));
    let e = get(&app, &format!("/experiments/{exp}")).await;
    assert_eq!(e.ok()["indexingStatus"], "COMPLETED");
    assert_eq!(e.json["end"], 2000);
    let s = post(&app, &states, &body(5000)).await;
    assert_eq!(s.ok()["status"], "COMPLETED");

    // The custom DATA_TREE output: listed, served by data/{id}/tree, not a time graph.
    let outputs = get(&app, &format!("/experiments/{exp}/outputs")).await;
    let names: Vec<&str> = outputs
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["State System Explorer", "State System XY", "Summary"]
    );
    let d = post(
        &app,
        &out(&exp, "data/test.summary/tree"),
        r#"{"parameters":{}}"#,
    )
    .await;
    assert_eq!(
        d.ok()["model"]["entries"],
        json!([{"id": 0, "parentId": -1, "labels": ["live"]}])
    );
    post(
        &app,
        &out(&exp, "timeGraph/test.summary/tree"),
        r#"{"parameters":{}}"#,
    )
    .await
    .error(405, "Analysis cannot run");
    // Default provider methods: empty styles, 405 on states.
    let st = post(
        &app,
        &out(&exp, "test.summary/style"),
        r#"{"parameters":{}}"#,
    )
    .await;
    assert_eq!(st.ok()["model"], json!({"styles": {}}));
}
