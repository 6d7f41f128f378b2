//! Event matching: pairs a packet's send event on one trace with its receive event on
//! another (Trace Compass's `TmfEventMatching`, rule for rule).
//!
//! Events arrive in experiment order. An event whose companion is waiting in the other
//! direction's table makes a match; otherwise it waits, keyed by trace and key (the first
//! event per key is kept). After each match, once a host has matched with every other host,
//! its waiting events older than the oldest of those last matches are dropped: that is what
//! keeps memory bounded on long traces.

use std::collections::HashMap;

/// TCP packet identity, as Trace Compass's `TcpEventKey`: sequence number, acknowledgment
/// number and the 16 bits after it (data offset, reserved bits, flags). Addresses and ports
/// are not part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpKey {
    pub seq: u64,
    pub ack_seq: u64,
    pub flags: u64,
}

/// What identifies a message on both sides. One variant per kind of matching; cleanup only
/// touches keys of the same kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchKey {
    Tcp(TcpKey),
    /// A VM/host synchronization hypercall (lttng-modules addons `vmsync_*` events; Trace
    /// Compass incubator's `QemuPacketKey`): the guest's id and the hypercall counter.
    VmSync {
        vm_uid: u64,
        cnt: u64,
    },
}

impl MatchKey {
    fn kind(&self) -> u8 {
        match self {
            MatchKey::Tcp(_) => 0,
            MatchKey::VmSync { .. } => 1,
        }
    }
}

/// Which side of a message an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent (Trace Compass: `CAUSE`).
    Send,
    /// Received (Trace Compass: `EFFECT`).
    Receive,
}

/// One side of a match: trace index and timestamp (ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchSide {
    pub trace: usize,
    pub timestamp: i64,
}

/// A matched message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub source: MatchSide,
    pub destination: MatchSide,
}

/// Matches send and receive events across the traces of an experiment.
#[derive(Debug)]
pub struct EventMatcher {
    /// Host index of each trace.
    trace_host: Vec<usize>,
    distinct_hosts: usize,
    /// Per trace: waiting receive events.
    unmatched_in: Vec<HashMap<MatchKey, i64>>,
    /// Per trace: waiting send events.
    unmatched_out: Vec<HashMap<MatchKey, i64>>,
    /// Last match per (key kind, source host, destination host).
    last_matches: HashMap<(u8, usize, usize), Dependency>,
    matches: u64,
    peak_waiting: usize,
}

impl EventMatcher {
    /// `trace_host[i]` is the host index of trace `i` (traces of one host share an index).
    pub fn new(trace_host: Vec<usize>) -> EventMatcher {
        let mut hosts = trace_host.clone();
        hosts.sort_unstable();
        hosts.dedup();
        let n = trace_host.len();
        EventMatcher {
            trace_host,
            distinct_hosts: hosts.len(),
            unmatched_in: vec![HashMap::new(); n],
            unmatched_out: vec![HashMap::new(); n],
            last_matches: HashMap::new(),
            matches: 0,
            peak_waiting: 0,
        }
    }

    /// Matches found so far (including same-host ones a receive event makes, which Trace
    /// Compass counts too but synchronization ignores).
    pub fn matches(&self) -> u64 {
        self.matches
    }

    /// Events waiting for a companion now.
    pub fn waiting(&self) -> usize {
        self.unmatched_in.iter().map(HashMap::len).sum::<usize>()
            + self.unmatched_out.iter().map(HashMap::len).sum::<usize>()
    }

    /// The most events that waited at once.
    pub fn peak_waiting(&self) -> usize {
        self.peak_waiting
    }

    /// Feeds one send or receive event; returns the match it completes, if any.
    pub fn process(
        &mut self,
        trace: usize,
        timestamp: i64,
        direction: Direction,
        key: MatchKey,
    ) -> Option<Dependency> {
        let this = MatchSide { trace, timestamp };
        let host = self.trace_host[trace];
        let mut dep = None;
        // Every trace holding the key in the companion table gives up its event; the last one
        // found makes the match (traces in index order).
        for t in 0..self.trace_host.len() {
            match direction {
                Direction::Receive => {
                    if let Some(ts) = self.unmatched_out[t].remove(&key) {
                        dep = Some(Dependency {
                            source: MatchSide {
                                trace: t,
                                timestamp: ts,
                            },
                            destination: this,
                        });
                    }
                }
                Direction::Send => {
                    if let Some(&ts) = self.unmatched_in[t].get(&key) {
                        // A receive on the same host is not this packet's (it crossed a local
                        // interface): leave it for another match.
                        if self.trace_host[t] != host {
                            self.unmatched_in[t].remove(&key);
                            dep = Some(Dependency {
                                source: this,
                                destination: MatchSide {
                                    trace: t,
                                    timestamp: ts,
                                },
                            });
                        }
                    }
                }
            }
        }
        match dep {
            Some(d) => {
                self.matches += 1;
                self.after_match(key, d);
            }
            None => {
                let table = match direction {
                    Direction::Receive => &mut self.unmatched_in[trace],
                    Direction::Send => &mut self.unmatched_out[trace],
                };
                table.entry(key).or_insert(timestamp);
                let waiting = self.waiting();
                self.peak_waiting = self.peak_waiting.max(waiting);
            }
        }
        dep
    }

    /// Remembers the match per host pair and drops events that can no longer match well.
    fn after_match(&mut self, key: MatchKey, dep: Dependency) {
        let kind = key.kind();
        let src_host = self.trace_host[dep.source.trace];
        let dst_host = self.trace_host[dep.destination.trace];
        self.last_matches.insert((kind, src_host, dst_host), dep);
        let wanted = self.distinct_hosts.saturating_sub(1);

        // Sends of the source trace older than its last send matched by every other host.
        // (The count leaves out a same-host match; the minimum does not, as in Trace Compass.)
        let row: Vec<(usize, i64)> = self
            .last_matches
            .iter()
            .filter(|((k, s, _), _)| *k == kind && *s == src_host)
            .map(|((_, _, d), v)| (*d, v.source.timestamp))
            .collect();
        if row.iter().filter(|(d, _)| *d != src_host).count() == wanted {
            let earliest = row.iter().map(|(_, ts)| *ts).min().unwrap_or(0);
            if earliest > 0 {
                self.unmatched_out[dep.source.trace]
                    .retain(|k, ts| !(*ts < earliest && k.kind() == kind));
            }
        }
        // Receives of the destination trace older than its last receive matched from every
        // other host.
        let column: Vec<(usize, i64)> = self
            .last_matches
            .iter()
            .filter(|((k, _, d), _)| *k == kind && *d == dst_host)
            .map(|((_, s, _), v)| (*s, v.destination.timestamp))
            .collect();
        if column.iter().filter(|(s, _)| *s != dst_host).count() == wanted {
            let earliest = column.iter().map(|(_, ts)| *ts).min().unwrap_or(0);
            if earliest > 0 {
                self.unmatched_in[dep.destination.trace]
                    .retain(|k, ts| !(*ts < earliest && k.kind() == kind));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seq: u64) -> MatchKey {
        MatchKey::Tcp(TcpKey {
            seq,
            ack_seq: 7,
            flags: 0x5018,
        })
    }

    #[test]
    fn send_then_receive_on_another_host_matches() {
        let mut m = EventMatcher::new(vec![0, 1]);
        assert_eq!(m.process(0, 100, Direction::Send, key(1)), None);
        let d = m.process(1, 150, Direction::Receive, key(1)).unwrap();
        assert_eq!(
            d.source,
            MatchSide {
                trace: 0,
                timestamp: 100
            }
        );
        assert_eq!(
            d.destination,
            MatchSide {
                trace: 1,
                timestamp: 150
            }
        );
        assert_eq!(m.matches(), 1);
        assert_eq!(m.waiting(), 0);
    }

    #[test]
    fn receive_seen_first_matches_a_later_send() {
        // the receiver's clock is behind: its event comes first in the merged order
        let mut m = EventMatcher::new(vec![0, 1]);
        assert_eq!(m.process(1, 90, Direction::Receive, key(2)), None);
        let d = m.process(0, 100, Direction::Send, key(2)).unwrap();
        assert_eq!(d.source.trace, 0);
        assert_eq!(d.destination.timestamp, 90);
    }

    #[test]
    fn a_send_does_not_take_a_receive_of_its_own_host() {
        let mut m = EventMatcher::new(vec![0, 1]);
        m.process(0, 90, Direction::Receive, key(3));
        assert_eq!(m.process(0, 100, Direction::Send, key(3)), None);
        // still there for the real receiver... which here is a send from host 1
        let d = m.process(1, 120, Direction::Send, key(3)).unwrap();
        assert_eq!(
            d.destination,
            MatchSide {
                trace: 0,
                timestamp: 90
            }
        );
    }

    #[test]
    fn the_first_event_per_key_waits() {
        let mut m = EventMatcher::new(vec![0, 1]);
        m.process(0, 100, Direction::Send, key(4));
        m.process(0, 200, Direction::Send, key(4)); // retransmission
        let d = m.process(1, 250, Direction::Receive, key(4)).unwrap();
        assert_eq!(d.source.timestamp, 100);
        assert_eq!(m.waiting(), 0);
    }

    #[test]
    fn old_unmatched_events_are_dropped_after_matches() {
        let mut m = EventMatcher::new(vec![0, 1]);
        // lost packets that will never be received
        for s in 0..50 {
            m.process(0, 1_000 + s, Direction::Send, key(1000 + s as u64));
        }
        assert_eq!(m.waiting(), 50);
        m.process(0, 5_000, Direction::Send, key(1));
        m.process(1, 5_100, Direction::Receive, key(1));
        assert_eq!(
            m.waiting(),
            0,
            "sends older than the last match are dropped"
        );
        assert_eq!(m.peak_waiting(), 51);
    }

    #[test]
    fn unmatched_events_only_wait() {
        let mut m = EventMatcher::new(vec![0]);
        m.process(0, 1, Direction::Send, key(1));
        m.process(0, 2, Direction::Send, key(2));
        assert_eq!(m.matches(), 0);
        assert_eq!(m.waiting(), 2);
    }
}
