//! Workloads for the criterion benches (`benches/benches/`) and `sextant bench`.
//!
//! Each [`Workload`] is a deterministic stream of state changes generated on the
//! fly (nothing is materialised, so a 5-million-change run costs no memory), in
//! the shapes Trace Compass was measured on: the flat `p<i>/a<j>` workload of the
//! engine issue, and the scenarios of Trace Compass's `HistoryTreeBackendBenchmark`
//! (average, vertical, horizontal, strings, longs, doubles).

pub mod nova_like;
pub mod sched_model;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use sht::{Quark, StateSystemBuilder, StateValue};

/// Small, fast, deterministic generator (xorshift64*).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }
}

/// Values a scenario cycles through (as Trace Compass's benchmark does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Ints,
    Longs,
    Doubles,
    Strings,
}

impl ValueKind {
    fn value(self, i: usize) -> StateValue {
        match self {
            ValueKind::Ints => StateValue::Int([1, 2, 3][i % 3]),
            ValueKind::Longs => StateValue::Long([i64::MAX, 1, 1_234_567][i % 3]),
            ValueKind::Doubles => StateValue::Double([f64::MAX, 1.0, 123.456][i % 3]),
            ValueKind::Strings => StateValue::string(["abc", "def", "wihi!"][i % 3]),
        }
    }
}

/// A named, deterministic state-change workload.
#[derive(Clone, Debug)]
pub enum Workload {
    /// `changes` int changes over `parents x leaves` attributes `p<i>/a<j>`,
    /// one change per 10 ns slot at a random offset in it, every change a new value
    /// (one interval each).
    Flat {
        changes: u64,
        parents: usize,
        leaves: usize,
    },
    /// Trace Compass benchmark scenario: `attributes` under `root`, each changing
    /// about `per_attribute` times, durations in [500, 1500) ns.
    Scenario {
        name: &'static str,
        attributes: usize,
        per_attribute: u64,
        values: ValueKind,
    },
}

/// Average duration of the scenario intervals, as in Trace Compass's benchmark.
const SCENARIO_AVG: i64 = 1000;

impl Workload {
    /// The engine issue's workload: 5 M changes over 10 x 100 attributes by default.
    pub fn flat(changes: u64) -> Self {
        Workload::Flat {
            changes,
            parents: 10,
            leaves: 100,
        }
    }

    /// Trace Compass `HistoryTreeBackendBenchmark` shapes.
    pub fn scenarios() -> Vec<Workload> {
        let s = |name, attributes, per_attribute, values| Workload::Scenario {
            name,
            attributes,
            per_attribute,
            values,
        };
        vec![
            s("average", 1500, 500, ValueKind::Ints),
            s("vertical", 3500, 500, ValueKind::Ints),
            s("horizontal", 1500, 20_000, ValueKind::Ints),
            s("strings", 1500, 500, ValueKind::Strings),
            s("longs", 1500, 500, ValueKind::Longs),
            s("doubles", 1500, 500, ValueKind::Doubles),
        ]
    }

    pub fn name(&self) -> String {
        match self {
            Workload::Flat {
                changes,
                parents,
                leaves,
            } => format!("flat-{changes}x{}", parents * leaves),
            Workload::Scenario { name, .. } => format!("tc-{name}"),
        }
    }

    pub fn start(&self) -> i64 {
        0
    }

    /// End time to close the history at.
    pub fn end(&self) -> i64 {
        match self {
            Workload::Flat { changes, .. } => *changes as i64 * 10 + 10,
            Workload::Scenario { per_attribute, .. } => *per_attribute as i64 * SCENARIO_AVG,
        }
    }

    /// Creates the attributes, applies every change, closes at [`Self::end`].
    /// Returns the number of changes made.
    pub fn run(&self, ss: &mut dyn StateSystemBuilder) -> sht::Result<u64> {
        let mut rng = Rng::new(5_575_784_704_147);
        let n = match self {
            Workload::Flat {
                changes,
                parents,
                leaves,
            } => {
                let mut quarks = Vec::with_capacity(parents * leaves);
                for p in 0..*parents {
                    let pn = format!("p{p}");
                    for a in 0..*leaves {
                        quarks.push(ss.quark_and_add(&[&pn, &format!("a{a}")])?);
                    }
                }
                for k in 0..*changes {
                    // Strictly increasing, evenly spread up to the end time.
                    let t = k as i64 * 10 + rng.below(10) as i64;
                    let q = quarks[rng.below(quarks.len() as u64) as usize];
                    ss.modify(t, StateValue::Int(k as i32), q)?;
                }
                *changes
            }
            Workload::Scenario {
                attributes,
                per_attribute,
                values,
                ..
            } => {
                let total = *per_attribute as i64 * SCENARIO_AVG;
                let root = ss.quark_and_add(&["root"])?;
                // (next change time, quark, value index) in time order.
                let mut queue: BinaryHeap<Reverse<(i64, Quark, usize)>> = BinaryHeap::new();
                for j in 0..*attributes {
                    let q = ss.quark_relative_and_add(root, &[&j.to_string()])?;
                    queue.push(Reverse((1 + rng.below(SCENARIO_AVG as u64) as i64, q, 0)));
                }
                let mut n = 0;
                while let Some(Reverse((t, q, i))) = queue.pop() {
                    ss.modify(t, values.value(i), q)?;
                    n += 1;
                    // Durations within [avg/2, 3avg/2), so about `per_attribute`
                    // changes per attribute.
                    let delta = SCENARIO_AVG / 2 + rng.below(SCENARIO_AVG as u64) as i64;
                    let next = t + delta;
                    if next <= total {
                        queue.push(Reverse((next, q, i + 1)));
                    }
                }
                n
            }
        };
        ss.close(self.end())?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sht::{StateSystem, StateSystemQuerier};

    #[test]
    fn flat_workload_makes_one_interval_per_change() {
        let w = Workload::flat(10_000);
        let mut ss = StateSystem::in_memory(0);
        assert_eq!(w.run(&mut ss).unwrap(), 10_000);
        assert_eq!(ss.attribute_count(), 1010);
        let all: Vec<Quark> = (0..1010).collect();
        let n = ss.query_2d(&all, 0, w.end()).unwrap().len();
        // One per change, plus the leading null and closing interval of each leaf
        // and the one null interval of each parent.
        assert!((10_000..=10_000 + 2 * 1000 + 10).contains(&n), "{n}");
    }

    #[test]
    fn scenarios_are_deterministic() {
        let w = Workload::Scenario {
            name: "t",
            attributes: 20,
            per_attribute: 50,
            values: ValueKind::Strings,
        };
        let mut a = StateSystem::in_memory(0);
        let mut b = StateSystem::in_memory(0);
        assert_eq!(w.run(&mut a).unwrap(), w.run(&mut b).unwrap());
        assert_eq!(a.query_full(500).unwrap(), b.query_full(500).unwrap());
    }
}
