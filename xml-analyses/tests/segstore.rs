//! Segment stores: a large pattern store spills to a file beside the `.ht`, the
//! file answers queries as the in-memory store does, and damaged files give typed
//! errors naming the file and offset.

use std::path::Path;
use std::sync::Arc;

use sextant_trace::{StubTimeUnit, XmlStubTrace};
use sextant_xml::segstore::{
    sort_segments, write_segment_file, SegmentFile, SegmentSpiller, SegmentStore, BLOCK_SEGMENTS,
};
use sextant_xml::{
    build_history_tree_spilling, build_in_memory, load_bytes, segment_file_path, Segment,
    SegmentStoreError,
};
use sht::value::CustomValue;
use sht::StateValue;

/// Every "s" event ends a scenario with a segment spanning [b, b + d] that carries
/// the event's fields; overlapping spans of varied lengths exercise range queries.
const PATTERN: &str = r#"<tmfxml><pattern id="p" version="3"><patternHandler>
<action id="seg"><segment><segType segName="span"/>
<segTime><begin type="eventField" value="b"/><duration type="eventField" value="d"/></segTime>
<segContent><segField name="who" type="string"><stateValue type="eventField" value="who"/></segField>
<segField name="d" type="long"><stateValue type="eventField" value="d"/></segField></segContent>
</segment></action>
<fsm id="f" initial="idle" multiple="true">
  <state id="idle"><transition event="s" target="done" action="seg"/></state>
  <final id="done"/>
</fsm></patternHandler></pattern></tmfxml>"#;

/// Deterministic pseudo-random numbers (a 64-bit LCG) so the data varies without a dependency.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

fn trace(n: usize) -> XmlStubTrace {
    XmlStubTrace::parse(
        trace_text(n).as_bytes(),
        Path::new("t.xml"),
        "t.xml".into(),
        StubTimeUnit::Nanoseconds,
    )
    .unwrap()
}

fn trace_text(n: usize) -> String {
    let mut rng = Lcg(7);
    let mut s = String::from("<trace>");
    for i in 0..n {
        let t = 10 * i as i64 + 10;
        let b = t - rng.next(500) as i64;
        let d = rng.next(1000);
        s += &format!(
            "<event timestamp=\"{t}\" name=\"s\"><field name=\"b\" value=\"{b}\" type=\"long\"/>\
             <field name=\"d\" value=\"{d}\" type=\"long\"/><field name=\"who\" value=\"w{}\" type=\"string\"/></event>",
            i % 13
        );
    }
    s += "</trace>";
    s
}

fn brute(all: &[Segment], from: i64, to: i64) -> Vec<Segment> {
    all.iter()
        .filter(|s| s.start <= to && s.end >= from)
        .cloned()
        .collect()
}

#[test]
fn large_pattern_store_spills_beside_the_ht_and_answers_like_memory() {
    let file = load_bytes(PATTERN.as_bytes(), Path::new("p.xml")).unwrap();
    assert!(file.rejected.is_empty(), "{:?}", file.rejected);
    let prog = &file.analyses[0];
    let n = 3 * BLOCK_SEGMENTS + 17;
    let trace = trace(n);
    let mem = build_in_memory(prog, &trace).unwrap();
    assert_eq!(mem.segments.len(), n, "one segment per event");
    assert!(mem.segments.file_path().is_none());

    let dir = tempfile::tempdir().unwrap();
    let ht = dir.path().join("p.ht");
    let disk = build_history_tree_spilling(prog, &trace, &ht, n - 1).unwrap();
    let dat = segment_file_path(&ht);
    assert_eq!(disk.segments.file_path(), Some(dat.as_path()));
    assert!(dat.exists());
    assert!(!dir.path().join("p.dat.tmp").exists());
    assert_eq!(disk.segments.len(), n);

    let all = mem.segments.all().unwrap();
    assert_eq!(disk.segments.all().unwrap(), all);
    assert!(all.windows(2).all(|w| w[0].start <= w[1].start));
    let (lo, hi) = (all[0].start, all.iter().map(|s| s.end).max().unwrap());
    let mut rng = Lcg(99);
    for _ in 0..200 {
        let a = lo - 50 + rng.next((hi - lo + 100) as u64) as i64;
        let b = a + rng.next(300) as i64;
        let want = brute(&all, a, b);
        assert_eq!(mem.segments.intersecting(a, b).unwrap(), want);
        assert_eq!(
            disk.segments.intersecting(a, b).unwrap(),
            want,
            "[{a}, {b}]"
        );
        assert_eq!(disk.segments.at(a).unwrap(), brute(&all, a, a));
    }
    assert!(disk
        .segments
        .intersecting(hi + 1, hi + 10)
        .unwrap()
        .is_empty());

    // A threshold far below the count: batches of 100 go to sorted run files during
    // the run, merged at the end; the runs are removed.
    let merged = build_history_tree_spilling(prog, &trace, &ht, 100).unwrap();
    assert_eq!(merged.segments.file_path(), Some(dat.as_path()));
    assert_eq!(merged.segments.all().unwrap(), all);
    let (a, b) = (all[n / 2].start, all[n / 2].start + 200);
    assert_eq!(
        merged.segments.intersecting(a, b).unwrap(),
        brute(&all, a, b)
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".run") || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Below the threshold the store stays in memory and a stale file is removed.
    let again = build_history_tree_spilling(prog, &trace, &ht, n).unwrap();
    assert!(again.segments.file_path().is_none());
    assert!(!dat.exists());
    assert_eq!(again.segments.all().unwrap(), all);
}

fn sample_segments() -> Vec<Segment> {
    let values = [
        StateValue::Null,
        StateValue::Int(-3),
        StateValue::Long(1 << 40),
        StateValue::Double(2.5),
        StateValue::string("é"),
        StateValue::Custom(CustomValue {
            type_id: 42,
            bytes: Arc::from(&[1u8, 2, 3][..]),
        }),
    ];
    (0..(BLOCK_SEGMENTS + 5) as i64)
        .map(|i| Segment {
            start: i,
            end: i + i % 7,
            name: format!("n{}", i % 3),
            content: vec![("v".into(), values[i as usize % values.len()].clone())],
        })
        .collect()
}

fn written(dir: &Path) -> (std::path::PathBuf, Vec<u8>, Vec<Segment>) {
    let segs = sample_segments();
    let path = dir.join("s.dat");
    write_segment_file(&segs, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes, segs)
}

#[test]
fn every_value_kind_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, segs) = written(dir.path());
    let f = SegmentFile::open(&path).unwrap();
    assert_eq!(f.all().unwrap(), segs);
}

fn corrupt_offset(e: SegmentStoreError, path: &Path) -> u64 {
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    match e {
        SegmentStoreError::Corrupt { file, offset, .. } => {
            assert_eq!(file, path);
            offset
        }
        other => panic!("want Corrupt, got {other}"),
    }
}

#[test]
fn truncated_file_is_an_error_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, _) = written(dir.path());
    for len in [0, 10, 47, 48, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let off = corrupt_offset(SegmentFile::open(&path).unwrap_err(), &path);
        assert!(off <= len as u64, "offset {off} beyond length {len}");
    }
}

#[test]
fn bad_magic_and_damaged_block_are_errors_with_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, segs) = written(dir.path());
    let mut bad = bytes.clone();
    bad[0] = b'X';
    std::fs::write(&path, &bad).unwrap();
    assert_eq!(
        corrupt_offset(SegmentFile::open(&path).unwrap_err(), &path),
        0
    );

    // The first segment's value tag (after start, end, name "n0", field count, field name "v").
    let tag_at = 48 + 8 + 8 + (4 + 2) + 4 + (4 + 1);
    let mut bad = bytes.clone();
    bad[tag_at] = 77;
    std::fs::write(&path, &bad).unwrap();
    let f = SegmentFile::open(&path).unwrap();
    assert_eq!(corrupt_offset(f.all().unwrap_err(), &path), tag_at as u64);
    // A query that reads only the later block still works.
    let last = (BLOCK_SEGMENTS + 4) as i64;
    let want = brute(&segs, last, last);
    assert!(!want.is_empty());
    assert_eq!(f.intersecting(last, last).unwrap(), want);
    assert!(f.intersecting(0, 0).is_err());
}

#[test]
fn any_single_byte_damage_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, segs) = written(dir.path());
    // Every header and index byte, and every third byte of the blocks.
    let index_at = bytes.len() - 2 * 48;
    let positions = (0..bytes.len()).filter(|&i| i < 48 || i >= index_at || i % 3 == 0);
    for i in positions {
        let mut bad = bytes.clone();
        bad[i] ^= 0xA5;
        std::fs::write(&path, &bad).unwrap();
        // Either a typed error naming the file, or (damage inside a value) a read
        // that differs only in content.
        match SegmentFile::open(&path).and_then(|f| f.all()) {
            Ok(got) => assert_eq!(got.len(), segs.len()),
            Err(e) => assert!(e.to_string().contains("s.dat"), "{e}"),
        }
    }
}

#[test]
fn spiller_merges_unsorted_batches_into_one_sorted_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.dat");
    let mut segs = sample_segments();
    // Emit in reverse start order, as end-ordered pattern output can be.
    segs.reverse();
    let mut spiller = SegmentSpiller::new(&path, 40);
    for s in &segs {
        spiller.push(s.clone()).unwrap();
    }
    assert!(spiller.runs() >= segs.len() / 41);
    let store = spiller.finish().unwrap();
    let mut want = segs;
    sort_segments(&mut want);
    assert_eq!(store.all().unwrap(), want);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn memory_store_queries_by_range() {
    let segs = sample_segments();
    let store = SegmentStore::Memory(segs.clone());
    for (a, b) in [(0, 0), (5, 9), (-10, -1), (100, 400)] {
        assert_eq!(store.intersecting(a, b).unwrap(), brute(&segs, a, b));
    }
}

#[test]
fn the_pipeline_provider_writes_its_segments_to_the_named_file() {
    let file = load_bytes(PATTERN.as_bytes(), Path::new("p.xml")).unwrap();
    let prog = &file.analyses[0];
    let n = BLOCK_SEGMENTS + 30;
    let dir = tempfile::tempdir().unwrap();
    let trace_path = dir.path().join("t.xml");
    let t = trace(n);
    std::fs::write(&trace_path, trace_text(n)).unwrap();
    let want = build_in_memory(prog, &t).unwrap().segments.all().unwrap();
    for threshold in [50, 10 * n] {
        let dat = dir.path().join(format!("p{threshold}.dat"));
        let provider = sextant_xml::provider::XmlProvider::new(Arc::clone(prog))
            .with_segment_file(&dat, threshold);
        let mut source =
            sextant_providers::sources::open(std::slice::from_ref(&trace_path)).unwrap();
        let analyses = vec![sextant_providers::pipeline::Analysis {
            provider: Box::new(provider),
            output: sextant_providers::pipeline::Output::Null,
        }];
        sextant_providers::pipeline::build(&mut *source, analyses, &Default::default()).unwrap();
        let got = SegmentFile::open(&dat).unwrap().all().unwrap();
        // The pipeline hands integer fields as Long, as the stub build does for
        // `long` fields: the segments are the same.
        assert_eq!(got, want, "threshold {threshold}");
    }
}
