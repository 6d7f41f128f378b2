//! Canonical text forms of a history file and of query answers, as used by the
//! golden files (`shared/golden/ht/README.md`) and by `sextant dump` / `query`.

use std::fmt::Write as _;

use crate::attribute::format_path;
use crate::condition::TimeCondition;
use crate::error::{Error, Result};
use crate::ht::{HistoryTreeReader, HtHeader};
use crate::statesystem::StateSystemQuerier;
use crate::value::Interval;
use crate::Quark;

/// `ht-dump 1` text of a file: header, range, attributes, every stored interval
/// sorted by quark then start.
pub fn dump(reader: &HistoryTreeReader) -> Result<String> {
    let h = reader.header();
    let attrs = reader.attributes();
    let mut intervals = Vec::new();
    reader.scan(&mut |i| intervals.push(i.clone()))?;
    intervals.sort_by_key(|i| (i.quark, i.start));
    let mut s = String::with_capacity(256 + intervals.len() * 32);
    s.push_str("ht-dump 1\n");
    let _ = writeln!(
        s,
        "header magic=0x{:08X} file_version={} provider_version={} block_size={} max_children={} node_count={} root_seq={} start={}",
        h.magic as u32, h.file_version, h.provider_version, h.block_size, h.max_children, h.node_count, h.root_seq, h.start
    );
    let _ = writeln!(s, "file_size {}", reader.file_size());
    let _ = writeln!(s, "range {} {}", reader.start_time(), reader.end_time());
    let _ = writeln!(s, "attributes {}", attrs.len());
    for q in 0..attrs.len() as Quark {
        let _ = writeln!(s, "{q} {}", format_path(attrs.path(q)?));
    }
    let _ = writeln!(s, "intervals {}", intervals.len());
    for i in &intervals {
        let _ = writeln!(s, "{i}");
    }
    s.push_str("end\n");
    Ok(s)
}

/// Whether `e` is what Trace Compass reports as a `TimeRangeException`.
fn is_time_range(e: &Error) -> bool {
    matches!(e, Error::TimeRange { .. } | Error::BeforeStart { .. })
}

/// Answers a query script in the `expected.queries` format: reads its `t`,
/// `single` and `range` lines (other lines are ignored) and prints the answers.
pub fn answer_queries(ss: &dyn StateSystemQuerier, script: &str) -> Result<String> {
    let mut out = String::new();
    let all: Vec<Quark> = (0..ss.attribute_count() as Quark).collect();
    for (line_no, line) in script.lines().enumerate() {
        let mut words = line.split(' ');
        let kind = words.next().unwrap_or("");
        let num = |w: Option<&str>| -> Result<i64> {
            w.and_then(|w| w.parse().ok()).ok_or_else(|| Error::Log {
                path: "<queries>".into(),
                line: line_no + 1,
                what: format!("malformed query line {line:?}"),
            })
        };
        match kind {
            "t" => {
                let t = num(words.next())?;
                match ss.query_full(t) {
                    Ok(list) => {
                        let _ = writeln!(out, "t {t} {}", list.len());
                        for i in &list {
                            let _ = writeln!(out, "{i}");
                        }
                    }
                    Err(e) if is_time_range(&e) => {
                        let _ = writeln!(out, "t {t} TimeRangeException");
                    }
                    Err(e) => return Err(e),
                }
            }
            "single" => {
                let t = num(words.next())?;
                let q = num(words.next())? as Quark;
                match ss.query_single(t, q) {
                    Ok(i) => {
                        let _ = writeln!(out, "single {t} {i}");
                    }
                    Err(e) if is_time_range(&e) => {
                        let _ = writeln!(out, "single {t} {q} TimeRangeException");
                    }
                    Err(e) => return Err(e),
                }
            }
            "range" => {
                let t1 = num(words.next())?;
                let t2 = num(words.next())?;
                let mut found: Vec<Interval> = Vec::new();
                match ss.query_2d_visit(&all, &TimeCondition::range(t1, t2), &mut |i| {
                    found.push(i.clone())
                }) {
                    Ok(()) => {
                        found.sort_by_key(|i| (i.quark, i.start));
                        let _ = writeln!(out, "range {t1} {t2} {}", found.len());
                        for i in &found {
                            let _ = writeln!(out, "{i}");
                        }
                    }
                    Err(e) if is_time_range(&e) => {
                        let _ = writeln!(out, "range {t1} {t2} TimeRangeException");
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Summary of a file, for `sextant info`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FileInfo {
    #[serde(flatten)]
    pub header: HtHeader,
    pub end: i64,
    pub attributes: usize,
    pub file_size: u64,
    /// Levels of the tree, root to leaf.
    pub depth: usize,
}

pub fn file_info(reader: &HistoryTreeReader) -> Result<FileInfo> {
    let h = reader.header();
    // Depth: follow the latest branch (last child) from the root.
    let mut depth = 1;
    let mut node = reader.node(h.root_seq)?;
    while let Some(last) = node.children.last() {
        if depth > h.node_count as usize {
            break;
        }
        node = reader.node(last.seq)?;
        depth += 1;
    }
    Ok(FileInfo {
        header: *h,
        end: reader.end_time(),
        attributes: reader.attributes().len(),
        file_size: reader.file_size(),
        depth,
    })
}
