//! Synchronization of every trace of an experiment (Trace Compass's
//! `SyncAlgorithmFullyIncremental` with its `SyncSpanningTree`).
//!
//! One convex hull per pair of hosts that exchanged packets, created on the pair's first
//! match. In each pair the host whose id sorts first is the pair's reference. The formulas
//! form a graph (each pair both ways); the experiment's reference host is the host id that
//! sorts first among hosts having a formula (or the one set with
//! [`Synchronizer::set_reference_host`]), and each host's formula is the composition along
//! the breadth-first path from it. Host ids are Trace Compass's: the CTF clock's `uuid` when
//! the trace has exactly one clock with one, else the trace name.

use super::hull::{ConvexHull, HullStats, SyncQuality};
use super::matching::{Dependency, Direction, EventMatcher, MatchKey};
use super::transform::LinearTransform;
use std::collections::{HashMap, VecDeque};

/// The pair hull and its hosts (indices into the host list).
#[derive(Debug, Clone)]
struct PairHull {
    reference: usize,
    other: usize,
    hull: ConvexHull,
}

/// Matching plus synchronization over the traces of one experiment.
#[derive(Debug)]
pub struct Synchronizer {
    hosts: Vec<String>,
    trace_host: Vec<usize>,
    matcher: EventMatcher,
    hulls: Vec<PairHull>,
    pair_index: HashMap<(usize, usize), usize>,
    reference_host: Option<String>,
}

/// How a trace's timestamps relate to the experiment's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceSyncStatus {
    /// On the reference host: timestamps unchanged.
    Reference,
    /// A formula links its host to the reference host.
    Synchronized,
    /// No formula links its host to the reference host (no or one-way traffic): timestamps
    /// unchanged.
    NotSynchronized,
}

impl TraceSyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceSyncStatus::Reference => "reference",
            TraceSyncStatus::Synchronized => "synchronized",
            TraceSyncStatus::NotSynchronized => "not synchronized",
        }
    }
}

/// One trace's outcome.
#[derive(Debug, Clone)]
pub struct TraceSync {
    pub host: String,
    pub status: TraceSyncStatus,
    /// Original timestamp -> experiment time (the identity unless `Synchronized`).
    pub transform: LinearTransform,
}

/// One pair of hosts' outcome.
#[derive(Debug, Clone)]
pub struct PairSync {
    /// Host whose id sorts first: the pair's time base.
    pub reference_host: String,
    pub other_host: String,
    pub stats: HullStats,
}

/// Everything synchronization found.
#[derive(Debug, Clone)]
pub struct SyncResult {
    /// Per trace, in experiment order.
    pub traces: Vec<TraceSync>,
    /// Per host pair that exchanged packets, in order of first match.
    pub pairs: Vec<PairSync>,
    /// All matches found (as Trace Compass counts them).
    pub matches: u64,
    /// Reference host of the experiment, `None` when no pair gave a formula.
    pub reference_host: Option<String>,
    /// Most send/receive events waiting for a companion at once.
    pub peak_waiting: usize,
    /// Problems met while reading the traces for matching (streams cut short).
    pub warnings: Vec<String>,
}

impl SyncResult {
    /// Whether any trace's timestamps change.
    pub fn is_synchronized(&self) -> bool {
        self.traces
            .iter()
            .any(|t| t.status == TraceSyncStatus::Synchronized)
    }

    /// The transforms in trace order.
    pub fn transforms(&self) -> Vec<LinearTransform> {
        self.traces.iter().map(|t| t.transform.clone()).collect()
    }

    /// The quality between two traces' hosts (`Absent` if they never exchanged packets or
    /// share a host).
    pub fn quality_between(&self, trace_a: usize, trace_b: usize) -> SyncQuality {
        let (a, b) = (&self.traces[trace_a].host, &self.traces[trace_b].host);
        self.pairs
            .iter()
            .find(|p| {
                (&p.reference_host == a && &p.other_host == b)
                    || (&p.reference_host == b && &p.other_host == a)
            })
            .map_or(SyncQuality::Absent, |p| p.stats.quality)
    }
}

impl Synchronizer {
    /// `trace_hosts[i]`: host id of trace `i`.
    pub fn new<S: AsRef<str>>(trace_hosts: &[S]) -> Synchronizer {
        let mut hosts: Vec<String> = Vec::new();
        let mut trace_host = Vec::with_capacity(trace_hosts.len());
        for h in trace_hosts {
            let h = h.as_ref();
            let idx = match hosts.iter().position(|x| x == h) {
                Some(i) => i,
                None => {
                    hosts.push(h.to_string());
                    hosts.len() - 1
                }
            };
            trace_host.push(idx);
        }
        Synchronizer {
            matcher: EventMatcher::new(trace_host.clone()),
            hosts,
            trace_host,
            hulls: Vec::new(),
            pair_index: HashMap::new(),
            reference_host: None,
        }
    }

    /// Forces the reference host (Trace Compass's `setRootNode`).
    pub fn set_reference_host(&mut self, host: Option<String>) {
        self.reference_host = host;
    }

    /// Feeds one send or receive event, in experiment order.
    pub fn process(&mut self, trace: usize, timestamp: i64, direction: Direction, key: MatchKey) {
        if let Some(dep) = self.matcher.process(trace, timestamp, direction, key) {
            self.add_dependency(dep);
        }
    }

    /// Feeds one match (also usable without the matcher).
    pub fn add_dependency(&mut self, dep: Dependency) {
        let src = self.trace_host[dep.source.trace];
        let dst = self.trace_host[dep.destination.trace];
        if src == dst {
            return;
        }
        let src_is_reference = self.hosts[src] <= self.hosts[dst];
        let (reference, other) = if src_is_reference {
            (src, dst)
        } else {
            (dst, src)
        };
        let idx = *self
            .pair_index
            .entry((reference, other))
            .or_insert_with(|| {
                self.hulls.push(PairHull {
                    reference,
                    other,
                    hull: ConvexHull::new(),
                });
                self.hulls.len() - 1
            });
        let hull = &mut self.hulls[idx].hull;
        if src_is_reference {
            hull.add_match(dep.source.timestamp, dep.destination.timestamp, true);
        } else {
            hull.add_match(dep.destination.timestamp, dep.source.timestamp, false);
        }
    }

    /// Matches so far.
    pub fn matches(&self) -> u64 {
        self.matcher.matches()
    }

    /// The formulas and statistics for what was fed so far.
    pub fn result(&self) -> SyncResult {
        // The graph: per usable pair, reference <- other with the hull's formula, and back with
        // its inverse; adjacency in pair order.
        // (An edge's label is `Err(formula)` until used when it is that formula's inverse: most
        // are never used, and inverting costs big-number divisions.)
        type Label = Result<LinearTransform, LinearTransform>;
        let mut adjacent: Vec<Vec<(usize, Label)>> = vec![Vec::new(); self.hosts.len()];
        let mut in_graph = vec![false; self.hosts.len()];
        // The bisector of each pair, computed once for its formula and its figures.
        let stats: Vec<HullStats> = self.hulls.iter().map(|p| p.hull.stats()).collect();
        for (p, s) in self.hulls.iter().zip(&stats) {
            let Some(to_reference) = s.other_to_reference() else {
                continue;
            };
            in_graph[p.reference] = true;
            in_graph[p.other] = true;
            // Edge reference -> other labelled with the formula taking other's time to the
            // reference's: composing labels along a path from the root gives host -> root.
            adjacent[p.other].push((p.reference, Err(to_reference.clone())));
            adjacent[p.reference].push((p.other, Ok(to_reference)));
        }
        let root = match &self.reference_host {
            Some(h) => self.hosts.iter().position(|x| x == h),
            None => (0..self.hosts.len())
                .filter(|&h| in_graph[h])
                .min_by(|&a, &b| self.hosts[a].cmp(&self.hosts[b])),
        };

        // Breadth-first from the root: each host's formula is its parent's composed with the
        // edge's (the first edge reaching a host wins).
        let mut formula: Vec<Option<LinearTransform>> = vec![None; self.hosts.len()];
        if let Some(r) = root {
            formula[r] = Some(LinearTransform::identity());
            let mut queue = VecDeque::from([r]);
            while let Some(h) = queue.pop_front() {
                let base = formula[h].clone().expect("queued hosts have a formula");
                for (to, label) in &adjacent[h] {
                    if formula[*to].is_some() {
                        continue;
                    }
                    let inverse;
                    let label = match label {
                        Ok(l) => l,
                        // A formula with a zero slope has no inverse: no edge.
                        Err(forward) => match forward.inverse() {
                            Some(l) => {
                                inverse = l;
                                &inverse
                            }
                            None => continue,
                        },
                    };
                    formula[*to] = Some(base.compose(label));
                    queue.push_back(*to);
                }
            }
        }

        let traces = self
            .trace_host
            .iter()
            .map(|&h| {
                let status = if Some(h) == root {
                    TraceSyncStatus::Reference
                } else if formula[h].is_some() {
                    TraceSyncStatus::Synchronized
                } else {
                    TraceSyncStatus::NotSynchronized
                };
                TraceSync {
                    host: self.hosts[h].clone(),
                    status,
                    transform: formula[h].clone().unwrap_or_else(LinearTransform::identity),
                }
            })
            .collect();
        let pairs = self
            .hulls
            .iter()
            .zip(stats)
            .map(|(p, stats)| PairSync {
                reference_host: self.hosts[p.reference].clone(),
                other_host: self.hosts[p.other].clone(),
                stats,
            })
            .collect();
        SyncResult {
            traces,
            pairs,
            matches: self.matcher.matches(),
            reference_host: root.map(|r| self.hosts[r].clone()),
            peak_waiting: self.matcher.peak_waiting(),
            warnings: Vec::new(),
        }
    }
}
