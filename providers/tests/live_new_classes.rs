//! A live session whose metadata gains an event class after the pipeline started:
//! the analysis subscribed to that class by name receives every one of its events,
//! with the same field values as when the trace is read from files.

use std::ops::ControlFlow;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use sextant_providers::live_source::LiveSource;
use sextant_providers::pipeline::{build, Analysis, BuildOptions, Output};
use sextant_providers::{EventFields, ProviderError, StateProvider, Subscription, TraceInfo};
use sextant_trace::gen::{generate, GenConfig, GenLimit};
use sextant_trace::live::fake::{FakeConfig, FakeRelay};
use sextant_trace::live::LiveOptions;
use sextant_trace::{ClassId, Experiment};
use sht::{StateSystemBuilder, StateSystemQuerier, StateValue};

const LATE: &str = "sched_process_fork";

/// `Forks/<child_tid>` = parent_tid at each fork.
struct Forks;

impl StateProvider for Forks {
    fn id(&self) -> &'static str {
        "test.forks"
    }
    fn version(&self) -> i32 {
        1
    }
    fn check_trace(&mut self, _: &TraceInfo) -> Result<(), ProviderError> {
        Ok(())
    }
    fn subscribe(&mut self, event_name: &str) -> Option<Subscription> {
        (event_name == LATE).then(|| Subscription {
            handler: 0,
            fields: vec!["child_tid", "parent_tid"],
        })
    }
    fn handle(
        &mut self,
        _: u32,
        ev: &dyn EventFields,
        ss: &mut dyn StateSystemBuilder,
    ) -> sht::Result<()> {
        let (Some(child), Some(parent)) = (ev.int(0), ev.int(1)) else {
            return Ok(());
        };
        let q = ss.quark_and_add(&["Forks", &child.to_string()])?;
        ss.modify(ev.timestamp(), StateValue::Int(parent as i32), q)
    }
}

#[test]
fn pipeline_subscribes_classes_added_to_a_live_session() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let cfg = GenConfig {
        limit: GenLimit::Events(20_000),
        cpus: 2,
        threads: 20,
        seed: 7,
        hostname: "live-test".into(),
        ..Default::default()
    };
    generate(&dir, &cfg, None).unwrap();

    // Expected forks (time, child, parent), read from the files.
    let mut exp = Experiment::open(&[&dir]).unwrap();
    let class = (0..exp.class_count())
        .map(ClassId)
        .find(|&c| exp.class_name(c) == LATE)
        .unwrap();
    let child = exp.field_handle(class, "child_tid").unwrap();
    let parent = exp.field_handle(class, "parent_tid").unwrap();
    let mut forks = Vec::new();
    exp.for_each(
        &mut |e| {
            if e.class() == class {
                forks.push((e.timestamp(), e.int(child).unwrap(), e.int(parent).unwrap()));
            }
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    assert!(!forks.is_empty());

    let relay = FakeRelay::start(
        &dir,
        FakeConfig {
            late_class: Some(LATE.into()),
            hostname: "live-test".into(),
            session: "s1".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let opts = LiveOptions {
        io_timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(1),
        setup_timeout: Duration::from_secs(2),
    };
    let mut src = LiveSource::open(&relay.url("live-test", "s1"), opts).unwrap();
    let names = |s: &LiveSource| {
        let e = s.session().experiment();
        (0..e.class_count())
            .map(|c| e.class_name(ClassId(c)).to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        !names(&src).iter().any(|n| n == LATE),
        "not declared at attach"
    );
    let analysis = Analysis {
        provider: Box::new(Forks),
        output: Output::InMemory,
    };
    let (report, systems) = build(&mut src, vec![analysis], &BuildOptions::default()).unwrap();
    assert!(names(&src).iter().any(|n| n == LATE), "declared later");
    assert_eq!(report.analyses[0].events, forks.len() as u64);
    let ss = &systems[0];
    for &(t, c, p) in &forks {
        let q = ss.quark(&["Forks", &c.to_string()]).unwrap();
        assert_eq!(
            ss.query_single(t, q).unwrap().value,
            StateValue::Int(p as i32),
            "fork of {c} at {t}"
        );
    }
}
