//! LTTng index files: their entries equal the packet headers and contexts they
//! describe; reading a time range (which skips packets through the index) gives
//! exactly the events of a full read inside that range.

mod common;

use sextant_trace::ctf::reader::{CtfTrace, Cursor};
use sextant_trace::Experiment;
use std::ops::ControlFlow;
use std::sync::atomic::AtomicU64;

#[test]
fn index_entries_equal_packet_contexts() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let mut checked = 0;
    for (name, dir, _) in common::all_traces(&shared) {
        if !dir.join("index").is_dir() {
            continue;
        }
        let trace = CtfTrace::open(&dir).unwrap();
        for f in &trace.files {
            let mut c = Cursor::open(&trace, f).unwrap();
            let idx = c
                .index_entries()
                .unwrap_or_else(|| panic!("{name}/{}: index not usable", f.name))
                .to_vec();
            let packets = c.scan_packets(&trace).unwrap();
            assert!(
                c.has_index(),
                "{name}/{}: index disagrees with the packets",
                f.name
            );
            assert_eq!(idx.len(), packets.len(), "{name}/{}", f.name);
            for (e, p) in idx.iter().zip(&packets) {
                assert_eq!(e.offset, p.offset);
                assert_eq!(e.packet_bits, p.packet_bits);
                assert_eq!(e.content_bits, p.content_bits);
                assert_eq!(Some(e.ts_begin), p.ts_begin);
                assert_eq!(Some(e.ts_end), p.ts_end);
                assert_eq!(Some(e.discarded), p.discarded);
                assert_eq!(e.stream_id, p.stream_id);
                if let (Some(a), Some(b)) = (e.packet_seq_num, p.seq_num) {
                    assert_eq!(a, b);
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no indexed stream found");
}

fn events(dir: &std::path::Path, range: (Option<i64>, Option<i64>)) -> Vec<(i64, u32, String)> {
    let mut exp = Experiment::open(&[dir]).unwrap();
    exp.set_time_range(range.0, range.1);
    let mut out = Vec::new();
    exp.for_each(
        &mut |ev| {
            out.push((ev.timestamp(), ev.class().0, ev.stream_name().to_string()));
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    out
}

#[test]
fn time_range_equals_filtered_full_read() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    // Indexed (many-threads) and unindexed with lost events (hello-lost).
    for name in ["many-threads", "hello-lost"] {
        let dir = shared.join("traces/ctf").join(name).join("ctf");
        let all = events(&dir, (None, None));
        let (b, e) = (all[all.len() / 3].0, all[all.len() * 2 / 3].0);
        let want: Vec<_> = all
            .iter()
            .filter(|x| x.0 >= b && x.0 <= e)
            .cloned()
            .collect();
        let got = events(&dir, (Some(b), Some(e)));
        assert_eq!(got.len(), want.len(), "{name}");
        assert!(got == want, "{name}: ranged read differs");
    }
}
