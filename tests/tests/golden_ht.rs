//! The golden `.ht` cases of `shared/golden/ht/`: writer byte identity, reader
//! dump, and query answers, for the history-tree and in-memory backends.

use std::path::Path;

use sextant_tests::{case_dirs, first_difference, first_line_difference, shared_dir};
use sht::changelog::ChangeLogReader;
use sht::dump::{answer_queries, dump};
use sht::{HistoryTreeReader, StateSystem};

fn cases() -> Vec<std::path::PathBuf> {
    let Some(shared) = shared_dir() else {
        return Vec::new();
    };
    let dirs = case_dirs(&shared, "golden/ht");
    assert!(
        dirs.len() >= 10,
        "expected the 10 golden cases, found {}",
        dirs.len()
    );
    dirs
}

fn name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn replaying_each_log_writes_the_expected_file_byte_for_byte() {
    for dir in cases() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out.ht");
        let mut log = ChangeLogReader::open(dir.join("changes.jsonl")).unwrap();
        let mut ss = StateSystem::create_history_tree(&out, log.header().ht_config()).unwrap();
        log.replay(&mut ss).unwrap();
        let got = std::fs::read(&out).unwrap();
        let want = std::fs::read(dir.join("expected.ht")).unwrap();
        if let Some(at) = first_difference(&got, &want) {
            panic!(
                "{}: written file differs from expected.ht at byte {at} (sizes {} / {})",
                name(&dir),
                got.len(),
                want.len()
            );
        }
    }
}

#[test]
fn dumping_each_expected_file_prints_the_expected_dump() {
    for dir in cases() {
        let reader = HistoryTreeReader::open(dir.join("expected.ht"), None).unwrap();
        let got = dump(&reader).unwrap();
        let want = std::fs::read_to_string(dir.join("expected.dump")).unwrap();
        if let Some(diff) = first_line_difference(&got, &want) {
            panic!("{}: dump differs: {diff}", name(&dir));
        }
    }
}

#[test]
fn queries_on_each_expected_file_give_the_expected_answers() {
    for dir in cases() {
        let ss = StateSystem::open(dir.join("expected.ht"), None).unwrap();
        let want = std::fs::read_to_string(dir.join("expected.queries")).unwrap();
        let got = answer_queries(&ss, &want).unwrap();
        if let Some(diff) = first_line_difference(&got, &want) {
            panic!("{}: query answers differ: {diff}", name(&dir));
        }
    }
}

#[test]
fn the_in_memory_backend_gives_the_same_answers() {
    for dir in cases() {
        let mut log = ChangeLogReader::open(dir.join("changes.jsonl")).unwrap();
        let mut ss = StateSystem::in_memory(log.header().start);
        log.replay(&mut ss).unwrap();
        let want = std::fs::read_to_string(dir.join("expected.queries")).unwrap();
        let got = answer_queries(&ss, &want).unwrap();
        if let Some(diff) = first_line_difference(&got, &want) {
            panic!("{}: in-memory answers differ: {diff}", name(&dir));
        }
    }
}
