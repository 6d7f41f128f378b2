//! Property tests: random builder call sequences give the same answers from the
//! history-tree backend (while building, once finished, and reopened from disk,
//! across block sizes and fan-outs), the in-memory backend, and a naive model
//! written here independently of `sht`'s transient state.

use std::collections::HashMap;

use proptest::prelude::*;
use sht::{
    HtConfig, Interval, Quark, StateSystem, StateSystemBuilder, StateSystemQuerier, StateValue,
};

/// Attributes the generated calls touch, each with a fixed value type.
const PATHS: &[&[&str]] = &[
    &["a"],
    &["a", "b"],
    &["c"],
    &["c", "d", "e"],
    &["s"],
    &["n"],
];

#[derive(Clone, Debug)]
enum Call {
    Modify {
        dt: i64,
        attr: usize,
        v: i64,
        null: bool,
    },
    Push {
        dt: i64,
        v: i64,
    },
    Pop {
        dt: i64,
    },
    Remove {
        dt: i64,
        attr: usize,
    },
    Increment {
        dt: i64,
        by: i64,
    },
    UpdateOngoing {
        attr: usize,
        v: i64,
    },
}

fn value_for(attr: usize, v: i64, null: bool) -> StateValue {
    if null {
        return StateValue::Null;
    }
    match attr {
        0 => StateValue::Int(v as i32 % 5),
        1 => StateValue::Long(v % 7),
        // Long strings make the 4 KiB nodes split often.
        2 => StateValue::String("x".repeat((v as usize * 37) % 600).into()),
        3 => StateValue::Double([0.0, -0.0, 1.5, f64::NAN][v as usize % 4]),
        _ => StateValue::Int(v as i32 % 3),
    }
}

/// Attributes set directly: all but the stack `s`, which only push/pop change.
fn settable() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![Just(0usize), Just(1), Just(2), Just(3), Just(5)]
}

fn call() -> impl Strategy<Value = Call> {
    let dt = prop_oneof![3 => Just(0i64), 5 => 1i64..4, 1 => 4i64..40];
    prop_oneof![
        6 => (dt.clone(), settable(), 0i64..100, proptest::bool::weighted(0.15))
            .prop_map(|(dt, attr, v, null)| Call::Modify { dt, attr, v, null }),
        2 => (dt.clone(), 0i64..100).prop_map(|(dt, v)| Call::Push { dt, v }),
        2 => dt.clone().prop_map(|dt| Call::Pop { dt }),
        1 => (dt.clone(), 0..PATHS.len()).prop_map(|(dt, attr)| Call::Remove { dt, attr }),
        1 => (dt, -2i64..3).prop_map(|(dt, by)| Call::Increment { dt, by }),
        1 => (settable(), 0i64..100).prop_map(|(attr, v)| Call::UpdateOngoing { attr, v }),
    ]
}

/// A deliberately simple reimplementation of the state-system rules.
#[derive(Default)]
struct Model {
    paths: Vec<Vec<String>>,
    index: HashMap<Vec<String>, Quark>,
    children: Vec<Vec<Quark>>,
    current: Vec<(StateValue, i64)>,
    intervals: Vec<Interval>,
    start: i64,
    end: i64,
}

impl Model {
    fn quark(&mut self, path: &[String]) -> Quark {
        let mut q = -1;
        for i in 1..=path.len() {
            let p = path[..i].to_vec();
            q = match self.index.get(&p) {
                Some(&q) => q,
                None => {
                    let new = self.paths.len() as Quark;
                    if q >= 0 {
                        self.children[q as usize].push(new);
                    }
                    self.paths.push(p.clone());
                    self.index.insert(p, new);
                    self.children.push(Vec::new());
                    self.current.push((StateValue::Null, self.start));
                    new
                }
            };
        }
        q
    }

    fn modify(&mut self, t: i64, v: StateValue, q: Quark) {
        let (cur, since) = self.current[q as usize].clone();
        if cur == v {
            return;
        }
        if since < t {
            self.intervals.push(Interval::new(since, t - 1, q, cur));
            self.end = self.end.max(t - 1);
            self.current[q as usize] = (v, t);
        } else {
            self.current[q as usize].0 = v;
        }
    }

    fn remove(&mut self, t: i64, q: Quark) {
        for c in self.children[q as usize].clone() {
            self.remove(t, c);
        }
        self.modify(t, StateValue::Null, q);
    }

    fn close(&mut self, end: i64) {
        let end = end.max(self.end);
        for q in 0..self.current.len() {
            let (v, since) = self.current[q].clone();
            if since <= end {
                self.intervals
                    .push(Interval::new(since, end, q as Quark, v));
            }
        }
        self.end = end;
    }

    fn at(&self, t: i64, q: Quark) -> Option<Interval> {
        self.intervals
            .iter()
            .find(|i| i.quark == q && i.contains(t))
            .cloned()
    }
}

fn path_of(attr: usize) -> Vec<String> {
    PATHS[attr].iter().map(|s| s.to_string()).collect()
}

/// Applies `calls` to both, then closes both `tail` after the last call.
fn run(calls: &[Call], ss: &mut dyn StateSystemBuilder, model: &mut Model, tail: i64) {
    let end = apply(calls, ss, model) + tail;
    ss.close(end).unwrap();
    model.close(end);
}

/// Applies `calls` to both without closing; returns the time of the last call.
fn apply(calls: &[Call], ss: &mut dyn StateSystemBuilder, model: &mut Model) -> i64 {
    let mut t = model.start;
    for c in calls {
        match *c {
            Call::Modify { dt, attr, v, null } => {
                t += dt;
                let path = path_of(attr);
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                let q = ss.quark_and_add(&names).unwrap();
                assert_eq!(model.quark(&path), q);
                let v = value_for(attr, v, null);
                ss.modify(t, v.clone(), q).unwrap();
                model.modify(t, v, q);
            }
            Call::Push { dt, v } => {
                t += dt;
                let q = ss.quark_and_add(&["s"]).unwrap();
                assert_eq!(model.quark(&path_of(4)), q);
                let v = StateValue::Long(v);
                ss.push(t, v.clone(), q).unwrap();
                let depth = model.current[q as usize].0.as_int().unwrap_or(0) + 1;
                let child = model.quark(&["s".to_string(), depth.to_string()]);
                model.modify(t, StateValue::Int(depth), q);
                model.modify(t, v, child);
            }
            Call::Pop { dt } => {
                t += dt;
                let q = ss.quark_and_add(&["s"]).unwrap();
                assert_eq!(model.quark(&path_of(4)), q);
                let popped = ss.pop(t, q).unwrap();
                match model.current[q as usize].0.as_int() {
                    None => assert_eq!(popped, None),
                    Some(depth) => {
                        let child = model.quark(&["s".to_string(), depth.to_string()]);
                        assert_eq!(popped, Some(model.current[child as usize].0.clone()));
                        let next = if depth == 1 {
                            StateValue::Null
                        } else {
                            StateValue::Int(depth - 1)
                        };
                        model.modify(t, next, q);
                        model.remove(t, child);
                    }
                }
            }
            Call::Remove { dt, attr } => {
                t += dt;
                let path = path_of(attr);
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                let q = ss.quark_and_add(&names).unwrap();
                assert_eq!(model.quark(&path), q);
                ss.remove(t, q).unwrap();
                model.remove(t, q);
            }
            Call::Increment { dt, by } => {
                t += dt;
                let q = ss.quark_and_add(&["n"]).unwrap();
                assert_eq!(model.quark(&path_of(5)), q);
                ss.increment(t, StateValue::Int(by as i32), q).unwrap();
                let next = model.current[q as usize].0.as_int().unwrap_or(0) + by as i32;
                model.modify(t, StateValue::Int(next), q);
            }
            Call::UpdateOngoing { attr, v } => {
                let path = path_of(attr);
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                let q = ss.quark_and_add(&names).unwrap();
                assert_eq!(model.quark(&path), q);
                let v = value_for(attr, v, false);
                ss.update_ongoing(v.clone(), q).unwrap();
                model.current[q as usize].0 = v;
            }
        }
    }
    t
}

fn sorted(mut v: Vec<Interval>) -> Vec<Interval> {
    v.sort_by_key(|i| (i.quark, i.start));
    v
}

/// Every query at every time of the history (and just outside) agrees with the model.
fn check_against_model(ss: &dyn StateSystemQuerier, model: &Model, what: &str) {
    let (start, end) = (model.start, model.end);
    assert_eq!(ss.start_time(), start, "{what}: start");
    assert_eq!(ss.current_end_time(), end, "{what}: end");
    assert_eq!(
        ss.attribute_count(),
        model.paths.len(),
        "{what}: attributes"
    );
    for t in start - 1..=end + 1 {
        if t < start || t > end {
            assert!(
                ss.query_full(t).is_err(),
                "{what}: full query at {t} outside the range"
            );
            continue;
        }
        let full = ss.query_full(t).unwrap();
        for (q, got) in full.iter().enumerate() {
            let want = model.at(t, q as Quark);
            assert_eq!(
                Some(got),
                want.as_ref(),
                "{what}: full query at {t}, quark {q}"
            );
            assert_eq!(
                &ss.query_single(t, q as Quark).unwrap(),
                got,
                "{what}: single at {t}"
            );
        }
    }
    let all: Vec<Quark> = (0..model.paths.len() as Quark).collect();
    assert_eq!(
        sorted(ss.query_2d(&all, start, end).unwrap()),
        sorted(model.intervals.clone()),
        "{what}: 2D over everything"
    );
    for (a, b) in [
        (start, start + (end - start) / 3),
        (end, start + (end - start) / 2),
    ] {
        let (lo, hi) = (a.min(b), a.max(b));
        let want: Vec<Interval> = model
            .intervals
            .iter()
            .filter(|i| i.intersects(lo, hi))
            .cloned()
            .collect();
        assert_eq!(
            sorted(ss.query_2d(&all, a, b).unwrap()),
            sorted(want),
            "{what}: 2D [{lo}, {hi}]"
        );
    }
    let times = [start, (start + end) / 2, end];
    let want: Vec<Interval> = model
        .intervals
        .iter()
        .filter(|i| times.iter().any(|&t| i.contains(t)))
        .cloned()
        .collect();
    assert_eq!(
        sorted(ss.query_2d_at(&all, &times).unwrap()),
        sorted(want),
        "{what}: 2D at instants"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn backends_agree_with_the_model(
        calls in proptest::collection::vec(call(), 1..400),
        start in prop_oneof![Just(0i64), Just(1_700_000_000_000_000_000i64)],
        tail in 0i64..10,
        block_size in prop_oneof![Just(4096i32), Just(8192)],
        max_children in 2i32..6,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.ht");
        let config = HtConfig { block_size, max_children, provider_version: 3, start };

        let mut model = Model { start, end: start, ..Model::default() };
        let mut ht = StateSystem::create_history_tree(&path, config).unwrap();
        run(&calls, &mut ht, &mut model, tail);
        check_against_model(&ht, &model, "history tree");

        let reopened = StateSystem::open(&path, Some(3)).unwrap();
        check_against_model(&reopened, &model, "reopened history tree");

        let mut model2 = Model { start, end: start, ..Model::default() };
        let mut mem = StateSystem::in_memory(start);
        run(&calls, &mut mem, &mut model2, tail);
        check_against_model(&mem, &model2, "in-memory");
    }

    #[test]
    fn queries_while_building_see_stored_and_ongoing_state(
        calls in proptest::collection::vec(call(), 1..300),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = HtConfig { block_size: 4096, max_children: 3, provider_version: 0, start: 0 };
        let mut building = StateSystem::create_history_tree(dir.path().join("b.ht"), config).unwrap();
        let mut model = Model::default();
        apply(&calls, &mut building, &mut model);
        prop_assert!(building.is_building());
        // Every interval already produced is answered as stored.
        for i in &model.intervals {
            prop_assert_eq!(&building.query_single(i.end, i.quark).unwrap(), i);
        }
        // Ongoing values and their start times come from the transient state.
        for (q, (value, since)) in model.current.iter().enumerate() {
            prop_assert_eq!(&building.query_ongoing(q as Quark).unwrap(), value);
            prop_assert_eq!(building.ongoing_start_time(q as Quark).unwrap(), *since);
        }
    }
}
