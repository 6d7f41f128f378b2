//! Synchronization of XML stub traces (Trace Compass's test trace format): the same matching
//! on events named as in kernel traces, fields looked up by name.

use super::algorithm::{SyncResult, Synchronizer};
use super::matching::{Direction, MatchKey, TcpKey};
use crate::xmlstub::{StubEvent, StubValue, XmlStubTrace};

fn int_field(ev: &StubEvent, name: &str) -> Option<u64> {
    ev.fields
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| match v {
            StubValue::Int(i) | StubValue::Long(i) => Some(*i as u64),
            _ => None,
        })
}

/// Direction and key of a stub event that is a packet send/receive or a VM hypercall.
pub fn stub_key(ev: &StubEvent) -> Option<(Direction, MatchKey)> {
    let direction = match ev.name.as_str() {
        "inet_sock_local_out" | "net_dev_queue" | "vmsync_gh_guest" | "vmsync_hg_host" => {
            Direction::Send
        }
        "inet_sock_local_in" | "netif_receive_skb" | "vmsync_gh_host" | "vmsync_hg_guest" => {
            Direction::Receive
        }
        _ => return None,
    };
    let key = if ev.name.starts_with("vmsync_") {
        MatchKey::VmSync {
            vm_uid: int_field(ev, "vm_uid")?,
            cnt: int_field(ev, "cnt")?,
        }
    } else {
        MatchKey::Tcp(TcpKey {
            seq: int_field(ev, "seq")?,
            ack_seq: int_field(ev, "ack_seq")?,
            flags: int_field(ev, "flags")?,
        })
    };
    Some((direction, key))
}

/// Matches over stub traces merged by timestamp (ties: trace order, then file order); each
/// trace is its own host, named by the trace name (Trace Compass's default host id).
pub fn synchronize_stubs(traces: &[&XmlStubTrace]) -> SyncResult {
    let hosts: Vec<&str> = traces.iter().map(|t| t.name()).collect();
    let mut sync = Synchronizer::new(&hosts);
    let mut events: Vec<(i64, usize, usize)> = traces
        .iter()
        .enumerate()
        .flat_map(|(ti, t)| {
            t.events()
                .iter()
                .enumerate()
                .filter(|(_, e)| stub_key(e).is_some())
                .map(move |(ei, e)| (e.timestamp, ti, ei))
        })
        .collect();
    events.sort_unstable();
    for (ts, ti, ei) in events {
        if let Some((dir, key)) = stub_key(&traces[ti].events()[ei]) {
            sync.process(ti, ts, dir, key);
        }
    }
    sync.result()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, fields: &[(&str, StubValue)]) -> StubEvent {
        StubEvent {
            timestamp: 1,
            name: name.to_string(),
            cpu: None,
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
            line: 1,
        }
    }

    #[test]
    fn keys_need_every_field_with_an_integer_value() {
        let full = ev(
            "inet_sock_local_out",
            &[
                ("seq", StubValue::Long(5)),
                ("ack_seq", StubValue::Long(6)),
                ("flags", StubValue::Int(0x18)),
            ],
        );
        assert_eq!(
            stub_key(&full),
            Some((
                Direction::Send,
                MatchKey::Tcp(TcpKey {
                    seq: 5,
                    ack_seq: 6,
                    flags: 0x18
                })
            ))
        );
        let missing = ev("inet_sock_local_in", &[("seq", StubValue::Long(5))]);
        assert_eq!(stub_key(&missing), None);
        let text = ev(
            "vmsync_gh_host",
            &[
                ("cnt", StubValue::Str("1".into())),
                ("vm_uid", StubValue::Long(9)),
            ],
        );
        assert_eq!(stub_key(&text), None);
        let vm = ev(
            "vmsync_gh_host",
            &[("cnt", StubValue::Int(1)), ("vm_uid", StubValue::Long(9))],
        );
        assert_eq!(
            stub_key(&vm),
            Some((Direction::Receive, MatchKey::VmSync { vm_uid: 9, cnt: 1 }))
        );
        assert_eq!(stub_key(&ev("sched_switch", &[])), None);
    }
}
