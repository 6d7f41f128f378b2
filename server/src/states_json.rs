//! A hand-written writer of the time-graph states answer: the bytes `serde_json`
//! writes for a [`GenericResponse<StatesAnswer>`], produced straight into one
//! pre-sized buffer (answers run to megabytes and tens of thousands of states;
//! going through serde's generic machinery was ~40% of a cold request).
//!
//! The output is byte-identical to `serde_json::to_vec` of the same value
//! (compact formatter): tests in this module and `tests/states_json.rs` compare
//! both on real answers.

use serde_json::{Map, Value};

use crate::model::{GenericResponse, Status, Style, TimeGraphRow, TimeGraphState};
use crate::states_cache::StatesAnswer;

/// Bytes a state usually takes (two 19-digit timestamps and a style key), to
/// pre-size the buffer; a wrong guess only costs a reallocation.
const STATE_BYTES: usize = 80;

/// Writes `s` as a JSON string literal, escaped as `serde_json` does: `"` and
/// `\` and control characters below 0x20 (short forms `\b \t \n \f \r`, others
/// `\u00xx` with lowercase hex); everything else, non-ASCII included, as is.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Style keys and most labels need no escape: one test per byte, one copy.
    if !bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[inline]
fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn write_values(out: &mut Vec<u8>, values: &Map<String, Value>) {
    if values.is_empty() {
        out.extend_from_slice(b"{}");
    } else {
        // Rare (a few views colour single states): serde's own output.
        serde_json::to_writer(&mut *out, values).expect("JSON values serialize");
    }
}

fn write_style(out: &mut Vec<u8>, style: &Style) {
    out.push(b'{');
    if let Some(k) = &style.parent_key {
        out.extend_from_slice(b"\"parentKey\":");
        write_str(out, k);
        out.push(b',');
    }
    out.extend_from_slice(b"\"values\":");
    write_values(out, &style.values);
    out.push(b'}');
}

fn write_state(out: &mut Vec<u8>, s: &TimeGraphState) {
    out.extend_from_slice(b"{\"start\":");
    write_i64(out, s.start);
    out.extend_from_slice(b",\"end\":");
    write_i64(out, s.end);
    if let Some(l) = &s.label {
        out.extend_from_slice(b",\"label\":");
        write_str(out, l);
    }
    if let Some(st) = &s.style {
        out.extend_from_slice(b",\"style\":");
        write_style(out, st);
    }
    out.push(b'}');
}

/// Appends `row` as serde writes a [`TimeGraphRow`].
pub fn write_row(out: &mut Vec<u8>, row: &TimeGraphRow) {
    out.extend_from_slice(b"{\"entryId\":");
    write_i64(out, row.entry_id);
    out.extend_from_slice(b",\"states\":[");
    for (i, s) in row.states.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_state(out, s);
    }
    out.extend_from_slice(b"]}");
}

/// A row's bytes alone (what the row cache keeps).
pub fn row_bytes(row: &TimeGraphRow) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + row.states.len() * STATE_BYTES);
    write_row(&mut out, row);
    out
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Running => "RUNNING",
        Status::Completed => "COMPLETED",
        Status::Failed => "FAILED",
        Status::Cancelled => "CANCELLED",
    }
}

fn write_answer(out: &mut Vec<u8>, a: &StatesAnswer) {
    out.extend_from_slice(b"{\"rows\":[");
    match a {
        StatesAnswer::Plain(m) => {
            for (i, row) in m.rows.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_row(out, row);
            }
        }
        StatesAnswer::Rows(rows) => {
            for (i, row) in rows.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(row);
            }
        }
    }
    out.extend_from_slice(b"]}");
}

fn answer_size(a: &StatesAnswer) -> usize {
    match a {
        StatesAnswer::Plain(m) => m
            .rows
            .iter()
            .map(|r| 32 + r.states.len() * STATE_BYTES)
            .sum(),
        StatesAnswer::Rows(rows) => rows.iter().map(|r| r.len() + 1).sum(),
    }
}

/// The whole states response, as `serde_json::to_vec` writes it.
pub fn states_response(r: &GenericResponse<StatesAnswer>) -> Vec<u8> {
    let size = r.model.as_ref().map_or(0, answer_size) + 64 + r.status_message.len();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"{\"model\":");
    match &r.model {
        Some(a) => write_answer(&mut out, a),
        None => out.extend_from_slice(b"null"),
    }
    write_tail(&mut out, r);
    out
}

fn write_tail(out: &mut Vec<u8>, r: &GenericResponse<StatesAnswer>) {
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(status_name(r.status).as_bytes());
    out.extend_from_slice(b"\",\"statusMessage\":");
    write_str(out, &r.status_message);
    out.push(b'}');
}

/// Rows from the cache at least this long are sent as they are kept (shared,
/// not copied); shorter ones are copied with their neighbours. Pieces must stay
/// few and large: hyper writes at most 16 per `writev`, and with 1 KiB pieces
/// the extra system calls and loopback wake-ups cost more than the copy saved
/// (CPU per request 1.63 ms against 1.39 ms, small history, under load); at
/// 32 KiB, 1.37-1.47 ms against 1.48 ms, and peak RSS 126 MiB against 176 MiB
/// (answers being sent share the cache's rows instead of holding copies).
const SHARED_ROW_BYTES: usize = 32 << 10;

/// The same bytes as [`states_response`], in pieces: rows served from the
/// cache are not copied into one buffer but sent from the cache's own memory
/// (answers run to megabytes; assembling them was the largest copy left).
/// No piece is empty.
pub fn states_pieces(r: &GenericResponse<StatesAnswer>) -> Vec<axum::body::Bytes> {
    let Some(StatesAnswer::Rows(rows)) = &r.model else {
        return vec![states_response(r).into()];
    };
    let mut pieces = Vec::new();
    let mut small = Vec::with_capacity(4096);
    small.extend_from_slice(b"{\"model\":{\"rows\":[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            small.push(b',');
        }
        if row.len() < SHARED_ROW_BYTES {
            small.extend_from_slice(row);
            continue;
        }
        pieces.push(std::mem::replace(&mut small, Vec::with_capacity(4096)).into());
        pieces.push(axum::body::Bytes::from_owner(row.clone()));
    }
    small.extend_from_slice(b"]}");
    write_tail(&mut small, r);
    pieces.push(small.into());
    pieces.retain(|p| !p.is_empty());
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings whose escaping differs between naive writers.
    const TRICKY: &[&str] = &[
        "",
        "plain",
        "a \"b\"",
        "back\\slash",
        "\\\"",
        "tab\there",
        "nl\ncr\r",
        "\u{0}\u{1}\u{7}\u{8}\u{b}\u{c}\u{1f}",
        "\u{7f}del",
        "/slash</script>",
        "é ü 漢字 🦀",
        "\u{2028}\u{2029}",
        "end\\",
        "\"",
    ];

    #[test]
    fn strings_escape_as_serde_json() {
        for s in TRICKY {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
        // Every single character below 0x80 and some beyond.
        for c in (0u32..0x80).chain([0x80, 0x7ff, 0x800, 0xfffd, 0x10000, 0x10ffff]) {
            let s = char::from_u32(c).unwrap().to_string();
            let mut out = Vec::new();
            write_str(&mut out, &s);
            assert_eq!(out, serde_json::to_vec(&s).unwrap(), "U+{c:04x}");
        }
    }

    /// The pieces are the bytes of the whole, for rows short and long.
    #[test]
    fn pieces_concatenate_to_the_response() {
        let row = |id: i64, n: usize| TimeGraphRow {
            entry_id: id,
            states: (0..n as i64)
                .map(|i| TimeGraphState {
                    start: 1_700_000_000_000_000_000 + i * 10,
                    end: 1_700_000_000_000_000_000 + i * 10 + 10,
                    label: (i % 3 == 0).then(|| "a \"b\"".into()),
                    style: Some(Style::key("USERMODE")),
                })
                .collect(),
        };
        // 1,000 states make a row longer than SHARED_ROW_BYTES, 100 do not.
        let shapes: [&[usize]; 7] = [
            &[],
            &[0],
            &[1000],
            &[0, 1000, 0],
            &[1000, 1000],
            &[100, 100],
            &[3, 0, 500, 1, 2000, 0, 100],
        ];
        for shape in shapes {
            let rows: Vec<TimeGraphRow> = shape
                .iter()
                .enumerate()
                .map(|(i, &n)| row(i as i64, n))
                .collect();
            let json: Vec<_> = rows.iter().map(crate::states_cache::row_json).collect();
            let cached =
                GenericResponse::with_progress(StatesAnswer::Rows(json.clone()), shape.len() == 2);
            let whole = states_response(&cached);
            let pieces = states_pieces(&cached);
            assert!(pieces.iter().all(|p| !p.is_empty()));
            // Long rows are sent from the cache's memory, short ones copied.
            for j in &json {
                let shared = pieces.iter().any(|p| p.as_ptr() == j.as_ptr());
                assert_eq!(shared, j.len() >= SHARED_ROW_BYTES, "{shape:?}");
            }
            assert_eq!(pieces.concat(), whole, "{shape:?}");
            // And serde's bytes for the same rows and status.
            let plain = GenericResponse::with_progress(
                StatesAnswer::Plain(crate::model::StatesModel { rows }),
                shape.len() == 2,
            );
            assert_eq!(whole, serde_json::to_vec(&plain).unwrap());
            assert_eq!(states_pieces(&plain).concat(), whole);
        }
        // A failure answer (no model).
        let failed = GenericResponse::<StatesAnswer>::failed(None, "no");
        assert_eq!(
            states_pieces(&failed).concat(),
            serde_json::to_vec(&failed).unwrap()
        );
    }

    #[test]
    fn statuses_and_null_model_as_serde() {
        for status in [
            Status::Running,
            Status::Completed,
            Status::Failed,
            Status::Cancelled,
        ] {
            for model in [None, Some(StatesAnswer::default())] {
                let r = GenericResponse {
                    model,
                    status,
                    status_message: "msg \"x\"".into(),
                };
                assert_eq!(states_response(&r), serde_json::to_vec(&r).unwrap());
            }
        }
    }

    #[test]
    fn extreme_integers_and_styles_as_serde() {
        let rows = vec![
            TimeGraphRow {
                entry_id: 0,
                states: vec![
                    TimeGraphState {
                        start: i64::MIN,
                        end: i64::MAX,
                        label: None,
                        style: None,
                    },
                    TimeGraphState {
                        start: -1,
                        end: 9_007_199_254_740_993,
                        label: Some("x\u{1}".into()),
                        style: Some(Style::default()),
                    },
                    TimeGraphState {
                        start: 0,
                        end: 1,
                        label: Some(String::from("owned").into()),
                        style: Some(Style {
                            parent_key: Some("k\"".into()),
                            values: [
                                ("background-color".to_string(), Value::from("#ff0000")),
                                ("height".to_string(), Value::from(0.5)),
                            ]
                            .into_iter()
                            .collect(),
                        }),
                    },
                ],
            },
            TimeGraphRow {
                entry_id: i64::MAX,
                states: vec![],
            },
        ];
        let r = GenericResponse::completed(StatesAnswer::Plain(crate::model::StatesModel {
            rows: rows.clone(),
        }));
        let want = serde_json::to_vec(&r).unwrap();
        assert_eq!(states_response(&r), want);
        let cached = GenericResponse::completed(StatesAnswer::Rows(
            rows.iter().map(crate::states_cache::row_json).collect(),
        ));
        assert_eq!(states_response(&cached), want);
    }
}
