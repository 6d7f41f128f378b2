//! Bad input, one test per class: each gives a typed error naming the file and the
//! byte offset (or line/fragment), never a panic; other streams are still read.

mod common;

use sextant_trace::ctf::reader::{CtfTrace, Cursor};
use sextant_trace::{ClassId, Experiment, TraceError};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A temporary copy of a shared trace.
fn copy_trace(shared: &Path, name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(&shared.join("traces/ctf").join(name).join("ctf"), &dir);
    (tmp, dir)
}

/// Reads everything: events per stream file, and the typed errors.
fn read_all(dir: &Path) -> Result<(BTreeMap<String, u64>, Vec<String>), TraceError> {
    let mut exp = Experiment::open(&[dir])?;
    let mut per_stream = BTreeMap::new();
    exp.for_each(
        &mut |ev| {
            *per_stream.entry(ev.stream_name().to_string()).or_insert(0) += 1;
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )?;
    assert_eq!(exp.warnings().len(), exp.errors().len());
    Ok((
        per_stream,
        exp.errors().iter().map(|e| e.to_string()).collect(),
    ))
}

fn stream_error(dir: &Path) -> (BTreeMap<String, u64>, PathBuf, u64, String) {
    let mut exp = Experiment::open(&[dir]).unwrap();
    let mut per_stream = BTreeMap::new();
    exp.for_each(
        &mut |ev| {
            *per_stream.entry(ev.stream_name().to_string()).or_insert(0) += 1;
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    match exp.errors() {
        [TraceError::Stream {
            path,
            offset,
            reason,
        }] => (per_stream, path.clone(), *offset, reason.clone()),
        other => panic!("want one stream error, got {other:?}"),
    }
}

fn packet_offsets(dir: &Path, file: &str) -> Vec<u64> {
    let t = CtfTrace::open(dir).unwrap();
    let f = t.files.iter().find(|f| f.name == file).unwrap();
    Cursor::open(&t, f)
        .unwrap()
        .scan_packets(&t)
        .unwrap()
        .iter()
        .map(|p| p.offset)
        .collect()
}

#[test]
fn truncated_packet_stops_that_stream_only() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (_tmp, dir) = copy_trace(&shared, "glxgears-cyg-profile");
    let (full, errs) = read_all(&dir).unwrap();
    assert!(errs.is_empty());
    let victim = full.iter().max_by_key(|(_, n)| **n).unwrap().0.clone();
    let file = dir.join(&victim);
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    std::fs::remove_dir_all(dir.join("index")).ok();
    let (got, path, offset, reason) = stream_error(&dir);
    assert_eq!(path, file);
    let last_packet = *packet_offsets(&shared.join("traces/ctf/glxgears-cyg-profile/ctf"), &victim)
        .last()
        .unwrap();
    assert_eq!(offset, last_packet, "{reason}");
    assert!(reason.contains("past the end of the file"), "{reason}");
    for (s, n) in &full {
        if *s != victim {
            assert_eq!(got.get(s), Some(n), "stream {s} must be read whole");
        }
    }
}

#[test]
fn bad_packet_magic_names_the_packet() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (_tmp, dir) = copy_trace(&shared, "many-threads");
    let offs = packet_offsets(&dir, "channel0_0");
    assert!(offs.len() > 1);
    let file = dir.join("channel0_0");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[offs[1] as usize..offs[1] as usize + 4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    std::fs::write(&file, bytes).unwrap();
    let (got, path, offset, reason) = stream_error(&dir);
    assert_eq!((path, offset), (file, offs[1]));
    assert!(reason.contains("magic"), "{reason}");
    assert!(got["channel0_0"] > 0, "the first packet is still read");
}

#[test]
fn packet_uuid_mismatch_is_an_error() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (_tmp, dir) = copy_trace(&shared, "glxgears-cyg-profile");
    let file = dir.join("channel0_1");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[4] ^= 0xff; // first uuid byte of the first packet header
    std::fs::write(&file, bytes).unwrap();
    let (_, path, offset, reason) = stream_error(&dir);
    assert_eq!((path, offset), (file, 4));
    assert!(reason.contains("UUID"), "{reason}");
}

#[test]
fn unknown_type_in_tsdl_names_the_line() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (_tmp, dir) = copy_trace(&shared, "glxgears-cyg-profile");
    let raw = std::fs::read(dir.join("metadata")).unwrap();
    let text = sextant_trace::ctf::metadata::unwrap_packets(Path::new("m"), &raw).unwrap();
    let text = String::from_utf8(text).unwrap();
    let needle = "uint64_clock_monotonic_t timestamp_end;";
    let line = text[..text.find(needle).unwrap()].lines().count() as u32;
    std::fs::write(
        dir.join("metadata"),
        text.replacen(needle, "bogus_type_t timestamp_end;", 1),
    )
    .unwrap();
    match Experiment::open(&[&dir]) {
        Err(TraceError::Tsdl {
            path,
            line: l,
            reason,
        }) => {
            assert_eq!(path, dir.join("metadata"));
            assert_eq!(l, line);
            assert!(reason.contains("bogus_type_t"), "{reason}");
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("bad TSDL accepted"),
    }
}

#[test]
fn truncated_packetized_metadata_names_the_packet() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (_tmp, dir) = copy_trace(&shared, "many-threads");
    let m = dir.join("metadata");
    let len = std::fs::metadata(&m).unwrap().len();
    // Cut inside the first packet's text: its content size now points past the end.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&m)
        .unwrap()
        .set_len(len.min(1000))
        .unwrap();
    match Experiment::open(&[&dir]) {
        Err(TraceError::MetadataPacket { path, offset, .. }) => assert_eq!((path, offset), (m, 0)),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("truncated metadata accepted"),
    }
}

#[test]
fn bad_json_metadata_names_the_fragment() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (_tmp, dir) = copy_trace(&shared, "CTF2-7.0-trace-with-index");
    let m = dir.join("metadata");
    let text = std::fs::read_to_string(&m).unwrap();
    // Break the third fragment (the clock class).
    let at = text.match_indices('\u{1e}').nth(2).unwrap().0;
    let broken = format!(
        "{}{{\"type\": \"clock-class\", ]{}",
        &text[..at + 1],
        &text[text[at + 1..].find('\u{1e}').unwrap() + at + 1..]
    );
    std::fs::write(&m, broken).unwrap();
    match Experiment::open(&[&dir]) {
        Err(TraceError::Ctf2Metadata {
            path,
            fragment,
            reason,
        }) => {
            assert_eq!((path, fragment), (m, 2), "{reason}");
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("bad JSON accepted"),
    }
}

#[test]
fn missing_metadata_is_no_trace() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (_tmp, dir) = copy_trace(&shared, "hello-lost");
    std::fs::remove_file(dir.join("metadata")).unwrap();
    assert!(matches!(Experiment::open(&[&dir]), Err(TraceError::NoTrace { path }) if path == dir));
    let nowhere = dir.join("does-not-exist");
    assert!(matches!(
        Experiment::open(&[&nowhere]),
        Err(TraceError::NoTrace { .. })
    ));
}

#[test]
fn stale_index_is_ignored() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (_tmp, dir) = copy_trace(&shared, "many-threads");
    let idx = dir.join("index/channel0_3.idx");
    let mut bytes = std::fs::read(&idx).unwrap();
    let n = bytes.len();
    bytes[n - 20] ^= 0x55; // inside the last entry
    std::fs::write(&idx, &bytes).unwrap();
    std::fs::write(dir.join("index/channel0_4.idx"), &bytes[..30]).unwrap();
    let (got, errs) = read_all(&dir).unwrap();
    assert!(errs.is_empty(), "{errs:?}");
    let (want, _) = read_all(&shared.join("traces/ctf/many-threads/ctf")).unwrap();
    assert_eq!(got, want);
}

/// A hand-made CTF 1.8 trace: one stream, events with a sequence and a variant.
const SYNTH_TSDL: &str = r#"/* CTF 1.8 */
typealias integer { size = 8; align = 8; signed = false; } := uint8_t;
typealias integer { size = 32; align = 8; signed = false; } := uint32_t;
typealias integer { size = 64; align = 8; signed = false; } := uint64_t;
trace { major = 1; minor = 8; byte_order = le;
  packet.header := struct { uint32_t magic; uint32_t stream_id; }; };
clock { name = c; freq = 1000000000; offset = 1000; };
typealias integer { size = 64; align = 8; signed = false; map = clock.c.value; } := clk_t;
stream { id = 0;
  packet.context := struct { uint64_t content_size; uint64_t packet_size; };
  event.header := struct { uint32_t id; clk_t timestamp; }; };
event { name = "seq"; id = 0; stream_id = 0; fields := struct { uint32_t _n; uint8_t _s[_n]; }; };
event { name = "var"; id = 1; stream_id = 0;
  fields := struct { enum : uint8_t { a = 0, b = 1 } _tag; variant <_tag> { uint32_t a; uint64_t b; } _v; }; };
"#;

fn synth_event(id: u32, ts: u64, payload: &[u8]) -> Vec<u8> {
    let mut e = id.to_le_bytes().to_vec();
    e.extend_from_slice(&ts.to_le_bytes());
    e.extend_from_slice(payload);
    e
}

fn synth_trace(events: &[Vec<u8>]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("synth");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("metadata"), SYNTH_TSDL).unwrap();
    let body: Vec<u8> = events.concat();
    let size = (24 + body.len()) as u64 * 8;
    let mut p = 0xC1FC1FC1u32.to_le_bytes().to_vec();
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&size.to_le_bytes());
    p.extend_from_slice(&size.to_le_bytes());
    p.extend_from_slice(&body);
    std::fs::write(dir.join("stream_0"), p).unwrap();
    (tmp, dir)
}

fn seq_payload(n: u32, bytes: &[u8]) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    v.extend_from_slice(bytes);
    v
}

#[test]
fn synthetic_trace_reads_back() {
    let (_tmp, dir) = synth_trace(&[
        synth_event(0, 5, &seq_payload(3, b"abc")),
        synth_event(1, 6, &[1, 9, 0, 0, 0, 0, 0, 0, 0]),
        synth_event(1, 7, &[0, 4, 0, 0, 0]),
    ]);
    let mut exp = Experiment::open(&[&dir]).unwrap();
    let var = (0..exp.class_count())
        .map(ClassId)
        .find(|c| exp.class_name(*c) == "var")
        .unwrap();
    let (a, b) = (
        exp.field_handle(var, "v").unwrap(),
        exp.field_handle(var, "tag").unwrap(),
    );
    let mut seen = Vec::new();
    exp.for_each(
        &mut |ev| {
            seen.push((ev.timestamp(), ev.int(a), ev.int(b)));
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    )
    .unwrap();
    assert!(exp.errors().is_empty(), "{:?}", exp.warnings());
    assert_eq!(
        seen,
        vec![
            (1005, None, None),
            (1006, Some(9), Some(1)),
            (1007, Some(4), Some(0))
        ]
    );
}

#[test]
fn absurd_sequence_length_is_an_error_without_allocation() {
    let (_tmp, dir) = synth_trace(&[
        synth_event(0, 5, &seq_payload(3, b"abc")),
        synth_event(0, 6, &seq_payload(u32::MAX, b"xyz")),
    ]);
    let (got, path, offset, reason) = stream_error(&dir);
    assert_eq!(path, dir.join("stream_0"));
    assert_eq!(offset, 24 + 12 + 7 + 12 + 4, "{reason}");
    assert!(reason.contains("length 4294967295"), "{reason}");
    assert_eq!(got["stream_0"], 1);
}

#[test]
fn unknown_variant_tag_is_an_error() {
    let (_tmp, dir) = synth_trace(&[synth_event(1, 5, &[7, 1, 2, 3, 4])]);
    let (_, _, offset, reason) = stream_error(&dir);
    assert_eq!(offset, 24 + 12 + 1, "{reason}");
    assert!(reason.contains("variant tag value 7"), "{reason}");
}

#[test]
fn unknown_event_id_is_an_error() {
    let (_tmp, dir) = synth_trace(&[
        synth_event(0, 5, &seq_payload(0, b"")),
        synth_event(42, 6, &[]),
    ]);
    let (got, _, offset, reason) = stream_error(&dir);
    assert_eq!(offset, 24 + 16, "{reason}");
    assert!(reason.contains("unknown event class id 42"), "{reason}");
    assert_eq!(got["stream_0"], 1);
}

#[test]
fn content_size_past_packet_size_is_an_error() {
    let (_tmp, dir) = synth_trace(&[synth_event(0, 5, &seq_payload(0, b""))]);
    let file = dir.join("stream_0");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&file, bytes).unwrap();
    let (_, _, offset, reason) = stream_error(&dir);
    assert_eq!(offset, 0);
    assert!(reason.contains("exceeds packet size"), "{reason}");
}

#[test]
fn a_bad_stream_is_reported_once_with_a_time_range_too() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (_tmp, dir) = copy_trace(&shared, "glxgears-cyg-profile");
    std::fs::remove_dir_all(dir.join("index")).ok();
    let file = dir.join("channel0_1");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 0xff; // magic of the first packet
    std::fs::write(&file, bytes).unwrap();
    let mut exp = Experiment::open(&[&dir]).unwrap();
    exp.set_time_range(Some(0), None);
    exp.for_each(&mut |_| ControlFlow::Continue(()), &AtomicU64::new(0))
        .unwrap();
    assert_eq!(exp.errors().len(), 1, "{:?}", exp.warnings());
    assert!(
        matches!(&exp.errors()[0], TraceError::Stream { path, offset: 0, .. } if *path == file)
    );
}
