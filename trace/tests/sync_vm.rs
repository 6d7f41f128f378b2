//! VM/host synchronization by hypercalls (`vmsync_*` events) on the Trace Compass VM test
//! stub traces, and on the same events shifted by a known guest clock offset.

use sextant_trace::sync::{synchronize_stubs, SyncQuality, TraceSyncStatus};
use sextant_trace::{StubValue, XmlStubTrace};
use std::path::{Path, PathBuf};

fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SEXTANT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but the shared directory {} is missing (set SEXTANT_SHARED)",
        dir.display()
    );
    eprintln!(
        "note: skipping: shared directory {} not found (set SEXTANT_SHARED)",
        dir.display()
    );
    None
}

#[test]
fn hypercalls_pair_guest_and_host() {
    let Some(shared) = shared_dir() else { return };
    let dir = shared.join("golden/vm/one_qemukvm-model");
    let host = XmlStubTrace::open(&dir.join("host.xml")).unwrap();
    let guest = XmlStubTrace::open(&dir.join("guest.xml")).unwrap();
    let vmsync = |t: &XmlStubTrace| {
        t.events()
            .iter()
            .filter(|e| e.name.starts_with("vmsync_"))
            .count() as u64
    };
    let r = synchronize_stubs(&[&host, &guest]);
    // every hypercall is seen on both sides
    assert_eq!(r.matches, vmsync(&host));
    assert_eq!(vmsync(&host), vmsync(&guest));
    assert!(r.matches > 0);
    assert_ne!(r.quality_between(0, 1), SyncQuality::Absent);
    assert_ne!(r.quality_between(0, 1), SyncQuality::Incomplete);
    // the reference is the host id (trace name) that sorts first
    let reference = r.reference_host.clone().unwrap();
    let ri = r.traces.iter().position(|t| t.host == reference).unwrap();
    assert_eq!(r.traces[ri].status, TraceSyncStatus::Reference);
    // every hypercall keeps its causality under the formulas
    for (sender, receiver, send_name, recv_name) in [
        (&guest, &host, "vmsync_gh_guest", "vmsync_gh_host"),
        (&host, &guest, "vmsync_hg_host", "vmsync_hg_guest"),
    ] {
        let ts = |t: &XmlStubTrace, name: &str| -> Vec<(u64, i64)> {
            let idx = if std::ptr::eq(t, &host) { 0 } else { 1 };
            t.events()
                .iter()
                .filter(|e| e.name == name)
                .map(|e| {
                    let cnt = e
                        .fields
                        .iter()
                        .find_map(|(n, v)| match (n.as_str(), v) {
                            ("cnt", StubValue::Int(c) | StubValue::Long(c)) => Some(*c),
                            _ => None,
                        })
                        .unwrap();
                    (cnt as u64, r.traces[idx].transform.apply(e.timestamp))
                })
                .collect()
        };
        let sends = ts(sender, send_name);
        let recvs = ts(receiver, recv_name);
        assert_eq!(sends.len(), recvs.len());
        for (s, rcv) in sends.iter().zip(&recvs) {
            assert_eq!(s.0, rcv.0);
            assert!(
                rcv.1 >= s.1,
                "hypercall {} received at {} before sent at {}",
                s.0,
                rcv.1,
                s.1
            );
        }
    }
}

#[test]
fn a_guest_clock_offset_is_recovered() {
    let Some(shared) = shared_dir() else { return };
    let dir = shared.join("golden/vm/one_qemukvm-model");
    // the guest's clock 1 ms ahead
    let shift = 1_000_000i64;
    let text = std::fs::read_to_string(dir.join("guest.xml")).unwrap();
    let mut shifted = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("timestamp=\"") {
        let (head, tail) = rest.split_at(at + "timestamp=\"".len());
        let end = tail.find('"').unwrap();
        let ts: i64 = tail[..end].parse().unwrap();
        shifted.push_str(head);
        shifted.push_str(&(ts + shift).to_string());
        rest = &tail[end..];
    }
    shifted.push_str(rest);
    let tmp = std::env::temp_dir().join(format!("sextant-sync-vm-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("guest.xml"), shifted).unwrap();
    let host = XmlStubTrace::open(&dir.join("host.xml")).unwrap();
    let guest = XmlStubTrace::open(&tmp.join("guest.xml")).unwrap();
    let original = XmlStubTrace::open(&dir.join("guest.xml")).unwrap();
    let r = synchronize_stubs(&[&host, &guest]);
    std::fs::remove_dir_all(&tmp).unwrap();
    assert_eq!(r.quality_between(0, 1), SyncQuality::Accurate);
    // Host and unshifted guest share one clock: the host's formula applied to an original
    // guest time is where the shifted guest event must land, within the hypercalls' 10 ns.
    for (e, o) in guest.events().iter().zip(original.events()) {
        let mapped = r.traces[1].transform.apply(e.timestamp);
        let want = r.traces[0].transform.apply(o.timestamp);
        assert!(
            (mapped - want).abs() <= 10,
            "guest event at {}: {mapped} vs {want}",
            o.timestamp
        );
    }
}
