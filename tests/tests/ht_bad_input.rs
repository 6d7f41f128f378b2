//! Bad `.ht` input: every corruption gives a typed error naming the file and an
//! offset, never a panic or a huge allocation; interrupted builds leave nothing
//! that opens as a history.

use std::path::{Path, PathBuf};

use sextant_benches::{Rng, Workload};
use sht::ht::format::{header as hf, node as nf, node_offset};
use sht::{
    Error, HistoryTreeReader, HtConfig, StateSystem, StateSystemBuilder, StateSystemQuerier,
    StateValue,
};

/// A multi-level history with 4 KiB nodes and a fan-out of 3.
fn sample(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("good.ht");
    let config = HtConfig {
        block_size: 4096,
        max_children: 3,
        provider_version: 7,
        start: 0,
    };
    let mut ss = StateSystem::create_history_tree(&path, config).unwrap();
    Workload::flat(3000).run(&mut ss).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// Opens, scans and queries; returns the first error. Must never panic.
fn exercise(path: &Path) -> Result<(), Error> {
    let reader = HistoryTreeReader::open(path, None)?;
    reader.scan(&mut |_| {})?;
    let ss = StateSystem::open(path, None)?;
    let (s, e) = (ss.start_time(), ss.current_end_time());
    for t in [s, (s + e) / 2, e] {
        ss.query_full(t)?;
    }
    let all: Vec<i32> = (0..ss.attribute_count() as i32).collect();
    ss.query_2d(&all, s, e)?;
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn expect_error(path: &Path, needle: &str) -> String {
    let err = exercise(path).expect_err("corrupt file accepted");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "error does not name the file: {msg}"
    );
    assert!(
        msg.contains(needle),
        "error {msg:?} does not mention {needle:?}"
    );
    msg
}

fn set_i32(bytes: &mut [u8], at: usize, v: i32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn the_sample_is_valid_and_multi_level() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = sample(dir.path());
    exercise(&path).unwrap();
    let r = HistoryTreeReader::open(&path, None).unwrap();
    assert!(
        r.header().node_count > 10,
        "sample too small to exercise the tree"
    );
}

#[test]
fn truncated_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, good) = sample(dir.path());
    let section = node_offset(
        HistoryTreeReader::open(dir.path().join("good.ht"), None)
            .unwrap()
            .header()
            .node_count,
        4096,
    ) as usize;
    for len in [
        0,
        3,
        36,
        4095,
        4096,
        6000,
        section - 1,
        section,
        section + 10,
        good.len() - 1,
    ] {
        let p = write(dir.path(), "cut.ht", &good[..len]);
        assert!(exercise(&p).is_err(), "file cut at {len} bytes accepted");
    }
    expect_error(&write(dir.path(), "empty.ht", &[]), "empty");
}

#[test]
fn wrong_magic_version_and_provider_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (path, good) = sample(dir.path());
    let mut b = good.clone();
    b[0] ^= 0xFF;
    expect_error(&write(dir.path(), "magic.ht", &b), "magic");
    let mut b = good.clone();
    set_i32(&mut b, hf::FILE_VERSION, 10);
    expect_error(&write(dir.path(), "version.ht", &b), "version 10");
    match HistoryTreeReader::open(&path, Some(8)) {
        Err(Error::ProviderVersion {
            found: 7,
            expected: 8,
            ..
        }) => {}
        other => panic!("provider version mismatch not reported: {:?}", other.err()),
    }
    assert!(HistoryTreeReader::open(&path, Some(sht::ht::format::IGNORE_PROVIDER_VERSION)).is_ok());
}

#[test]
fn impossible_header_fields_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, good) = sample(dir.path());
    for (at, v, needle) in [
        (hf::NODE_COUNT, i32::MAX, "too short"),
        (hf::NODE_COUNT, 0, "node count"),
        (hf::ROOT_SEQ, 100_000, "root node"),
        (hf::ROOT_SEQ, -5, "root node"),
        (hf::BLOCK_SIZE, 12, "block size"),
        (hf::BLOCK_SIZE, i32::MAX, "too short"),
        (hf::MAX_CHILDREN, 0, "max children"),
        (hf::MAX_CHILDREN, 1_000_000, "max children"),
    ] {
        let mut b = good.clone();
        set_i32(&mut b, at, v);
        let msg = expect_error(&write(dir.path(), "hdr.ht", &b), needle);
        assert!(msg.contains("offset"), "{msg}");
    }
    let mut b = good.clone();
    b[hf::START_TIME] ^= 1;
    expect_error(&write(dir.path(), "start.ht", &b), "root node starts");
}

#[test]
fn corrupt_nodes_are_errors_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (path, good) = sample(dir.path());
    let r = HistoryTreeReader::open(&path, None).unwrap();
    let leaf0 = node_offset(0, 4096) as usize;
    let root = node_offset(r.header().root_seq, 4096) as usize;

    let mut b = good.clone();
    b[leaf0 + nf::TYPE] = 9;
    let msg = expect_error(&write(dir.path(), "type.ht", &b), "unknown node type 9");
    assert!(msg.contains(&format!("offset {leaf0}")), "{msg}");

    let mut b = good.clone();
    set_i32(&mut b, leaf0 + nf::INTERVAL_COUNT, 1 << 30);
    expect_error(&write(dir.path(), "count.ht", &b), "interval count");

    // The first interval of node 0 starts with two varints then the quark.
    let mut b = good.clone();
    let first = leaf0 + nf::COMMON_HEADER_SIZE;
    let (l1, l2) = (b[first] as usize, b[first + 1 + b[first] as usize] as usize);
    b[first + 2 + l1 + l2 + 4] = 0x55; // value type
    expect_error(&write(dir.path(), "value.ht", &b), "unknown value type");

    let mut b = good.clone();
    b[first] = 0x7F; // varint length byte
    expect_error(&write(dir.path(), "varint.ht", &b), "varint");

    // A root whose first child is itself.
    let mut b = good.clone();
    set_i32(&mut b, root + nf::CORE_ARRAYS, r.header().root_seq);
    assert!(exercise(&write(dir.path(), "cycle.ht", &b)).is_err());

    let mut b = good.clone();
    set_i32(&mut b, root + nf::CORE_NB_CHILDREN, 99);
    expect_error(&write(dir.path(), "children.ht", &b), "child count 99");
}

#[test]
fn garbage_attribute_sections_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (path, good) = sample(dir.path());
    let r = HistoryTreeReader::open(&path, None).unwrap();
    let section = node_offset(r.header().node_count, 4096) as usize;
    let mut rng = Rng::new(3);
    for i in 0..200 {
        let mut b = good.clone();
        let at = section + rng.below((good.len() - section) as u64) as usize;
        b[at] = rng.below(256) as u8;
        if i % 2 == 0 {
            b.truncate(section + rng.below((good.len() - section) as u64) as usize);
        }
        // Either an error naming the section, or (a harmless byte) a valid file.
        if let Err(e) = exercise(&write(dir.path(), "attr.ht", &b)) {
            assert!(e.to_string().contains("offset"), "{e}");
        }
    }
    let mut b = good[..section].to_vec();
    b.extend_from_slice(b"\xac\xed\x00\x05\x77\x04\x06\xec\x36\x71\x73\x72\xff\xff");
    expect_error(
        &write(dir.path(), "garbage.ht", &b),
        "attribute tree section",
    );
}

#[test]
fn random_corruption_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (_, good) = sample(dir.path());
    let mut rng = Rng::new(11);
    let mut errors = 0;
    for _ in 0..400 {
        let mut b = good.clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(b.len() as u64) as usize;
            b[at] = rng.below(256) as u8;
        }
        if exercise(&write(dir.path(), "flip.ht", &b)).is_err() {
            errors += 1;
        }
    }
    // Most flips land in padding; the point is that none panics.
    assert!(errors > 0, "no flip was detected at all");
}

#[test]
fn an_interrupted_build_leaves_no_history_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never.ht");
    {
        let mut ss = StateSystem::create_history_tree(&path, HtConfig::new(0, 1)).unwrap();
        let q = ss.quark_and_add(&["a"]).unwrap();
        for t in 1..100_000 {
            ss.modify(t, StateValue::Int(t as i32), q).unwrap();
        }
        // Dropped without close: as if the build were cancelled.
    }
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temporary file left behind"
    );

    // A build killed outright (no destructor) leaves only a hidden temporary file.
    let mut ss = StateSystem::create_history_tree(&path, HtConfig::new(0, 1)).unwrap();
    let q = ss.quark_and_add(&["a"]).unwrap();
    ss.modify(5, StateValue::Int(1), q).unwrap();
    std::mem::forget(ss);
    assert!(!path.exists());
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        assert!(
            HistoryTreeReader::open(&p, None).is_err(),
            "{} opens as a history",
            p.display()
        );
    }
}

#[test]
fn invalid_values_and_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let too_small = HtConfig {
        block_size: 1024,
        ..HtConfig::new(0, 1)
    };
    assert!(matches!(
        StateSystem::create_history_tree(dir.path().join("x.ht"), too_small),
        Err(Error::Config(_))
    ));
    let mut ss = StateSystem::create_history_tree(
        dir.path().join("v.ht"),
        HtConfig {
            block_size: 4096,
            ..HtConfig::new(0, 1)
        },
    )
    .unwrap();
    let q = ss.quark_and_add(&["s"]).unwrap();
    assert!(matches!(
        ss.modify(1, StateValue::string(&"y".repeat(32768)), q),
        Err(Error::StringTooLong { len: 32768, .. })
    ));
    assert!(matches!(
        ss.modify(1, StateValue::string("a\u{7}b"), q),
        Err(Error::ControlCharacter { code: 7 })
    ));
    ss.modify(1, StateValue::Int(1), q).unwrap();
    assert!(matches!(
        ss.modify(2, StateValue::Long(1), q),
        Err(Error::ValueType { .. })
    ));
    // 32767 bytes is a valid value, but cannot fit a 4 KiB node: refused, not looped on.
    let big = ss.quark_and_add(&["big"]).unwrap();
    ss.modify(1, StateValue::string(&"z".repeat(32767)), big)
        .unwrap();
    assert!(matches!(
        ss.modify(2, StateValue::Null, big),
        Err(Error::IntervalTooLarge { .. })
    ));
    assert!(ss.quark_and_add(&["a", "*"]).is_err());
    assert!(matches!(
        ss.query_single(1, 99),
        Err(Error::InvalidQuark { quark: 99, .. })
    ));
}
