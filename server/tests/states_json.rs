//! The hand-written states writer (`sextant_server::states_json`) against
//! serde's on real answers: every time-graph output of real traces (Control
//! Flow, Resources, the state-system explorer with labels, XML views), over
//! rows with and without states, from the plain model, from cached rows, and
//! as the router sends it.

mod common;

use std::path::Path;

use serde_json::json;
use sextant_server::model::{GenericResponse, OutputType};
use sextant_server::query::{parse_parameters, DataQuery};
use sextant_server::states_cache::StatesAnswer;
use sextant_server::states_json::states_response;

use common::{open, out, post, shared_dir, wait_completed};

async fn check_trace(dir: &Path, name: &str) {
    let state_app = sextant_server::state(Default::default());
    let app2 = sextant_server::router(state_app.clone());
    let (_, exp_id) = open(&app2, dir, name).await;
    let e = wait_completed(&app2, &format!("/experiments/{exp_id}")).await;
    let (start, end) = (
        e.ok()["start"].as_i64().unwrap(),
        e.ok()["end"].as_i64().unwrap(),
    );
    let exp = state_app.experiment(&exp_id).unwrap();
    let mut checked_states = 0usize;
    let mut labelled = 0usize;
    let mut empty_rows = 0usize;
    for o in &exp.outputs {
        let d = o.descriptor();
        if d.output_type != OutputType::TimeGraph {
            continue;
        }
        let ids: Vec<i64> = common::tree(&app2, &exp_id, "timeGraph", &d.id)
            .await
            .iter()
            .filter_map(|e| e["id"].as_i64())
            // Within the request limit (the explorer lists every attribute).
            .take(5000)
            .collect();
        if ids.is_empty() {
            continue;
        }
        // The whole trace, and a narrow window (many rows without states).
        for (a, b, n) in [
            (start, end, 300),
            (
                start + (end - start) / 3,
                start + (end - start) / 3 + 1_000,
                7,
            ),
        ] {
            let body = json!({"parameters": {"requested_timerange": {"start": a, "end": b,
                "nbTimes": n}, "requested_items": ids}})
            .to_string();
            let q = DataQuery::parse(parse_parameters(body.as_bytes()).unwrap(), true).unwrap();
            let plain = o.states(&q).ok().unwrap();
            let want = serde_json::to_vec(&plain).unwrap();
            if let Some(m) = &plain.model {
                for r in &m.rows {
                    empty_rows += r.states.is_empty() as usize;
                    checked_states += r.states.len();
                    labelled += r.states.iter().filter(|s| s.label.is_some()).count();
                }
            }
            let as_answer = GenericResponse {
                model: plain.model.map(StatesAnswer::Plain),
                status: plain.status,
                status_message: plain.status_message,
            };
            assert_eq!(
                String::from_utf8(states_response(&as_answer)).unwrap(),
                String::from_utf8(want.clone()).unwrap(),
                "{name} {}",
                d.id
            );
            // Twice through the row cache: built, then served from it.
            for _ in 0..2 {
                let cached = o.states_answer(&q).ok().unwrap();
                assert_eq!(states_response(&cached), want, "{name} {} (cache)", d.id);
                assert_eq!(serde_json::to_vec(&cached).unwrap(), want);
            }
            // As the router sends it.
            let a = post(
                &app2,
                &out(&exp_id, &format!("timeGraph/{}/states", d.id)),
                &body,
            )
            .await;
            assert_eq!(a.content_type(), "application/json");
            assert_eq!(a.text.as_bytes(), &want[..], "{name} {} (router)", d.id);
        }
    }
    eprintln!("{name}: {checked_states} states ({labelled} labelled), {empty_rows} empty rows");
    assert!(checked_states > 1000, "{name}: too few states to compare");
    assert!(
        labelled > 0 && empty_rows > 0,
        "{name}: labels and empty rows expected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_states_match_serde_on_real_traces() {
    let Some(shared) = shared_dir() else {
        return;
    };
    for name in ["many-threads", "bug446190"] {
        check_trace(&shared.join("traces/ctf").join(name), name).await;
    }
}
