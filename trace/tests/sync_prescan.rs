//! Packets read while the traces open (`open_scanning_packets`) are those read after opening
//! (`read_packets`, what `synchronize` matches), stream errors included, and the experiment it
//! opens reads as `Experiment::open`'s; `Experiment::split` gives each part the events of its
//! traces opened alone.

use sextant_trace::sync::{
    open_scanning_packets, read_packets, synchronize, synchronize_scanned, PacketScan,
};
use sextant_trace::Experiment;
use std::ops::ControlFlow;
use std::path::PathBuf;

mod common;
use common::shared_dir;
use std::sync::atomic::AtomicU64;

fn scp_pair() -> Option<[PathBuf; 2]> {
    let ctf = shared_dir()?.join("traces/ctf");
    Some([ctf.join("scp_src"), ctf.join("scp_dest")])
}

/// (trace, timestamp, class name, cpu) of every event in visiting order, and each class's
/// field names.
type Reading = (Vec<(usize, i64, String, Option<u32>)>, Vec<Vec<String>>);

fn read_all(exp: &mut Experiment) -> Reading {
    let mut events = Vec::new();
    let mut names = std::collections::HashMap::new();
    exp.for_each(
        &mut |ev| {
            let class = ev.class();
            events.push((ev.trace_index(), ev.timestamp(), class.0, ev.cpu()));
            names.entry(class.0).or_insert(());
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    let events = events
        .into_iter()
        .map(|(t, ns, c, cpu)| {
            let name = exp.class_name(sextant_trace::ClassId(c)).to_string();
            (t, ns, name, cpu)
        })
        .collect();
    let fields = (0..exp.class_count())
        .map(|c| {
            let class = sextant_trace::ClassId(c);
            exp.field_names(class)
                .into_iter()
                .map(String::from)
                .collect()
        })
        .collect();
    (events, fields)
}

fn error_texts(scan: &PacketScan) -> Vec<String> {
    scan.errors().iter().map(|e| e.to_string()).collect()
}

/// `open_scanning_packets` on `paths` with 1 to 3 threads (from 2 on, the last trace's stream
/// is read in two halves at once) against opening then reading: the same packets and errors,
/// the same formulas, and an experiment reading the same events.
fn prescan_equals_reading_after(paths: &[PathBuf]) -> PacketScan {
    let progress = AtomicU64::new(0);
    let mut plain = Experiment::open(paths).unwrap();
    let after = read_packets(&plain, &progress);
    let want_sync = synchronize(&mut plain, &progress).unwrap();
    let want_events = read_all(&mut plain);
    for threads in 1..=3 {
        let (mut exp, scan) = open_scanning_packets(paths, threads, &progress).unwrap();
        let scan = scan.expect("traces of two hosts are read");
        assert_eq!(scan.streams(), after.streams(), "{threads} threads");
        assert_eq!(error_texts(&scan), error_texts(&after), "{threads} threads");
        let got = synchronize_scanned(&exp, scan);
        assert_eq!(
            got.transforms(),
            want_sync.transforms(),
            "{threads} threads"
        );
        assert_eq!(got.matches, want_sync.matches, "{threads} threads");
        assert_eq!(read_all(&mut exp), want_events, "{threads} threads");
    }
    after
}

#[test]
fn packets_read_while_opening_are_those_read_after() {
    let Some(pair) = scp_pair() else { return };
    let after = prescan_equals_reading_after(&pair);
    // Trace Compass's 46 matches come from these packets.
    let result = synchronize_scanned(&Experiment::open(&pair).unwrap(), after);
    assert_eq!(result.matches, 46);
}

#[test]
fn an_error_in_the_first_half_of_a_stream_hides_the_second_half() {
    let Some(pair) = scp_pair() else { return };
    let dir = std::env::temp_dir().join(format!("sextant-prescan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut paths = Vec::new();
    for src in &pair {
        let name = src.file_name().unwrap();
        let to = dir.join(name).join("ctf");
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(src.join("ctf")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
        paths.push(dir.join(name));
    }
    // scp_dest's stream has two packets of 1 MiB; bytes in the middle of the first one's
    // events are overwritten (an unknown event class): reading stops there.
    let stream = paths[1].join("ctf/channel0_0");
    let mut bytes = std::fs::read(&stream).unwrap();
    assert!(bytes.len() > (1 << 20), "a second packet");
    bytes[600_000..600_064].fill(0xff);
    std::fs::write(&stream, &bytes).unwrap();

    let after = prescan_equals_reading_after(&paths);
    let errors = error_texts(&after);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("channel0_0") && errors[0].contains("unknown event class"),
        "{errors:?}"
    );
    // Nothing of scp_dest's second packet: every packet kept is before the damaged bytes'
    // time (the stream's events are in time order).
    let last_kept = after.streams()[1].last().map(|p| p.0);
    let mut plain = Experiment::open(&paths).unwrap();
    let (events, _) = read_all(&mut plain);
    let dest_last = events.iter().filter(|e| e.0 == 1).map(|e| e.1).max();
    assert!(last_kept <= dest_last);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn traces_of_one_host_or_one_trace_give_no_scan() {
    let Some(pair) = scp_pair() else { return };
    let progress = AtomicU64::new(0);
    // The same trace twice: one clock, one host.
    let same = [pair[0].clone(), pair[0].clone()];
    let (mut exp, scan) = open_scanning_packets(&same, 2, &progress).unwrap();
    assert!(scan.is_none());
    assert_eq!(
        read_all(&mut exp),
        read_all(&mut Experiment::open(&same).unwrap())
    );
    let (exp, scan) = open_scanning_packets(&pair[..1], 2, &progress).unwrap();
    assert!(scan.is_none());
    assert_eq!(exp.traces().len(), 1);
    // A trace whose metadata cannot be parsed, after one being read: an error naming it.
    let dir = std::env::temp_dir().join(format!("sextant-prescan-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("metadata"), "/* CTF 1.8 */ trace { major = ;").unwrap();
    let err = match open_scanning_packets(&[pair[0].clone(), dir.clone()], 2, &progress) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("bad metadata opened"),
    };
    assert!(err.contains(&dir.display().to_string()), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn split_parts_read_as_their_traces_opened_alone() {
    let Some(pair) = scp_pair() else { return };
    let exp = Experiment::open(&pair).unwrap();
    // Out of order, to see each part renumbered.
    let parts = exp.split(&[vec![1], vec![0]]).unwrap();
    for (mut part, path) in parts.into_iter().zip([&pair[1], &pair[0]]) {
        let mut alone = Experiment::open(std::slice::from_ref(path)).unwrap();
        assert_eq!(part.traces()[0].name, alone.traces()[0].name);
        assert_eq!(
            read_all(&mut part),
            read_all(&mut alone),
            "{}",
            path.display()
        );
    }
    // Once read, an experiment still splits (its streams are opened again).
    let mut exp = Experiment::open(&pair).unwrap();
    let whole = read_all(&mut exp);
    let mut parts = exp.split(&[vec![0, 1]]).unwrap();
    assert_eq!(read_all(&mut parts[0]), whole);
    assert!(Experiment::open(&pair)
        .unwrap()
        .split(&[vec![0], vec![0]])
        .is_err());
}
