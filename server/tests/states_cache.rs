//! The states answers served through the shared row cache are byte for byte
//! the answers computed directly (`OutputProvider::states`, serialized), on a
//! real kernel trace, for every time-graph output, whether the rows come from
//! the cache, from a fresh 2D query, or from both in one answer.

mod common;

use sextant_server::kernel_views::{CONTROL_FLOW_ID, RESOURCES_ID};

use sextant_server::states_cache::RowCache;

use common::{
    body, data_entry_ids, nonempty_rows, out, plain, post, serve_many_threads, ManyThreads,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_states_are_the_plain_states_byte_for_byte() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let ManyThreads {
        state,
        app,
        exp_id,
        start,
        end,
    } = serve_many_threads(&shared, Default::default(), "mt").await;
    let exp = state.experiment(&exp_id).unwrap();
    let time_graphs: Vec<String> = exp
        .outputs
        .iter()
        .filter(|o| serde_json::to_value(o.descriptor()).unwrap()["type"] == "TIME_GRAPH")
        .map(|o| o.descriptor().id.clone())
        .collect();
    assert!(time_graphs.iter().any(|id| id == CONTROL_FLOW_ID));
    assert!(time_graphs.iter().any(|id| id == RESOURCES_ID));
    let span = end - start;
    let mut compared = 0;
    let mut nonempty = 0;
    for output in &time_graphs {
        let ids = data_entry_ids(&app, &exp_id, output, 3000).await;
        if ids.is_empty() {
            continue;
        }
        let path = out(&exp_id, &format!("timeGraph/{output}/states"));
        let n = ids.len();
        // Whole trace, a window, and a window the first rows of which were
        // asked before (part from the cache, part computed), plus an unknown id.
        let first: Vec<i64> = ids.iter().take(n.min(300)).copied().collect();
        let mut mixed: Vec<i64> = ids.iter().skip(n / 3).take(300).copied().collect();
        mixed.push(i64::MAX / 2);
        let cases = [
            body(start, end, 1000, &first),
            body(start + span / 7, start + span / 7 + span / 10, 1000, &first),
            body(start + span / 7, start + span / 7 + span / 10, 1000, &mixed),
            body(start, end, 997, &ids),
        ];
        for case in &cases {
            let expected = plain(&exp, output, case);
            for round in 0..2 {
                let a = post(&app, &path, case).await;
                assert_eq!(a.content_type(), "application/json");
                assert_eq!(
                    a.text.as_bytes(),
                    &expected[..],
                    "{output}, round {round}, request {case}"
                );
                compared += 1;
            }
            nonempty += nonempty_rows(&expected);
        }
    }
    assert!(compared >= 16, "{compared}");
    assert!(
        nonempty > 100,
        "the answers compared have states: {nonempty}"
    );
    // The second rounds were served from the cache.
    assert!(RowCache::global().stats().hits > 0);
}
