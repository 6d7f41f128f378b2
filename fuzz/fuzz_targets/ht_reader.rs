//! Fuzzes the `.ht` reader: any bytes must open, scan and answer queries, or fail
//! with an error; never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sht::{HistoryTreeReader, StateSystem, StateSystemQuerier};

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("sextant-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.ht");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(reader) = HistoryTreeReader::open(&path, None) {
        let _ = reader.scan(&mut |_| {});
        let _ = sht::dump::dump(&reader);
    }
    if let Ok(ss) = StateSystem::open(&path, None) {
        let (s, e) = (ss.start_time(), ss.current_end_time());
        let mid = s.wrapping_add(e.wrapping_sub(s) / 2);
        let _ = ss.query_full(mid);
        let n = ss.attribute_count().min(64) as i32;
        for q in 0..n {
            let _ = ss.query_single(mid, q);
        }
        let all: Vec<i32> = (0..n).collect();
        let _ = ss.query_2d(&all, s, e);
    }
});
