//! State-change logs (`changes.jsonl`): a replayable record of the calls a
//! provider makes on a builder (`shared/spec/state-change-log.md`).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::ht::format;
use crate::ht::HtConfig;
use crate::statesystem::StateSystemBuilder;
use crate::value::StateValue;

/// Line 1 of a log.
#[derive(Clone, Debug, Deserialize)]
pub struct LogHeader {
    pub start: i64,
    pub end: i64,
    #[serde(default)]
    pub provider_version: i32,
    #[serde(default = "default_block_size")]
    pub block_size: i32,
    #[serde(default = "default_max_children")]
    pub max_children: i32,
}

fn default_block_size() -> i32 {
    format::DEFAULT_BLOCK_SIZE
}
fn default_max_children() -> i32 {
    format::DEFAULT_MAX_CHILDREN
}

impl LogHeader {
    pub fn ht_config(&self) -> HtConfig {
        HtConfig {
            block_size: self.block_size,
            max_children: self.max_children,
            provider_version: self.provider_version,
            start: self.start,
        }
    }
}

/// One recorded builder call.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Attr {
        path: Vec<String>,
    },
    Modify {
        t: i64,
        path: Vec<String>,
        value: StateValue,
    },
    Push {
        t: i64,
        path: Vec<String>,
        value: StateValue,
    },
    Pop {
        t: i64,
        path: Vec<String>,
    },
    Remove {
        t: i64,
        path: Vec<String>,
    },
    Increment {
        t: i64,
        path: Vec<String>,
        value: StateValue,
    },
    UpdateOngoing {
        path: Vec<String>,
        value: StateValue,
    },
}

impl Op {
    pub fn path(&self) -> &[String] {
        match self {
            Op::Attr { path }
            | Op::Modify { path, .. }
            | Op::Push { path, .. }
            | Op::Pop { path, .. }
            | Op::Remove { path, .. }
            | Op::Increment { path, .. }
            | Op::UpdateOngoing { path, .. } => path,
        }
    }

    /// Applies the call to `ss` (resolving the path with get-or-create first).
    pub fn apply(&self, ss: &mut dyn StateSystemBuilder) -> Result<()> {
        let path: Vec<&str> = self.path().iter().map(String::as_str).collect();
        let quark = ss.quark_and_add(&path)?;
        match self {
            Op::Attr { .. } => Ok(()),
            Op::Modify { t, value, .. } => ss.modify(*t, value.clone(), quark),
            Op::Push { t, value, .. } => ss.push(*t, value.clone(), quark),
            Op::Pop { t, .. } => ss.pop(*t, quark).map(|_| ()),
            Op::Remove { t, .. } => ss.remove(*t, quark),
            Op::Increment { t, value, .. } => ss.increment(*t, value.clone(), quark),
            Op::UpdateOngoing { value, .. } => ss.update_ongoing(value.clone(), quark),
        }
    }

    /// The op as one log line (without the newline).
    pub fn to_json_line(&self) -> String {
        let (t, name, value) = match self {
            Op::Attr { .. } => (None, "attr", None),
            Op::Modify { t, value, .. } => (Some(*t), "modify", Some(value)),
            Op::Push { t, value, .. } => (Some(*t), "push", Some(value)),
            Op::Pop { t, .. } => (Some(*t), "pop", None),
            Op::Remove { t, .. } => (Some(*t), "remove", None),
            Op::Increment { t, value, .. } => (Some(*t), "increment", Some(value)),
            Op::UpdateOngoing { value, .. } => (None, "update_ongoing", Some(value)),
        };
        let mut s = String::from("{");
        if let Some(t) = t {
            s.push_str(&format!("\"t\":{t},"));
        }
        s.push_str(&format!(
            "\"op\":\"{name}\",\"path\":{}",
            serde_json::to_string(self.path()).unwrap_or_default()
        ));
        if let Some(v) = value {
            s.push_str(",\"value\":");
            s.push_str(&value_to_json(v));
        }
        s.push('}');
        s
    }
}

fn value_to_json(v: &StateValue) -> String {
    match v {
        StateValue::Null => r#"{"type":"null"}"#.into(),
        StateValue::Int(i) => format!(r#"{{"type":"int","v":{i}}}"#),
        StateValue::Long(i) => format!(r#"{{"type":"long","v":{i}}}"#),
        StateValue::Double(d) => format!(r#"{{"type":"double","bits":"0x{:016x}"}}"#, d.to_bits()),
        StateValue::String(s) => format!(
            r#"{{"type":"string","v":{}}}"#,
            serde_json::to_string(&**s).unwrap_or_default()
        ),
        StateValue::Custom(c) => {
            let hex: String = c.bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!(r#"{{"type":"custom","id":{},"hex":"{hex}"}}"#, c.type_id)
        }
    }
}

#[derive(Deserialize)]
struct RawOp {
    t: Option<i64>,
    op: String,
    path: Vec<String>,
    value: Option<RawValue>,
}

#[derive(Deserialize)]
struct RawValue {
    #[serde(rename = "type")]
    ty: String,
    v: Option<serde_json::Value>,
    bits: Option<String>,
}

fn parse_value(raw: RawValue) -> std::result::Result<StateValue, String> {
    let v = raw.v;
    let need =
        |v: Option<serde_json::Value>| v.ok_or_else(|| format!("{} value without \"v\"", raw.ty));
    Ok(match raw.ty.as_str() {
        "null" => StateValue::Null,
        "int" => {
            let n = need(v)?;
            let i = n
                .as_i64()
                .ok_or_else(|| format!("int value {n} is not an integer"))?;
            StateValue::Int(
                i32::try_from(i).map_err(|_| format!("int value {i} does not fit 32 bits"))?,
            )
        }
        "long" => {
            let n = need(v)?;
            StateValue::Long(
                n.as_i64()
                    .ok_or_else(|| format!("long value {n} is not a 64-bit integer"))?,
            )
        }
        "double" => {
            if let Some(bits) = raw.bits {
                let hex = bits.strip_prefix("0x").unwrap_or(&bits);
                let b = u64::from_str_radix(hex, 16)
                    .map_err(|_| format!("invalid double bits {bits:?}"))?;
                StateValue::Double(f64::from_bits(b))
            } else {
                let n = need(v)?;
                let d = match &n {
                    serde_json::Value::Number(x) => x.as_f64(),
                    serde_json::Value::String(s) => match s.as_str() {
                        "NaN" => Some(f64::NAN),
                        "Infinity" => Some(f64::INFINITY),
                        "-Infinity" => Some(f64::NEG_INFINITY),
                        _ => None,
                    },
                    _ => None,
                };
                StateValue::Double(d.ok_or_else(|| format!("invalid double value {n}"))?)
            }
        }
        "string" => match need(v)? {
            serde_json::Value::String(s) => StateValue::String(Arc::from(s)),
            other => return Err(format!("string value {other} is not a string")),
        },
        other => return Err(format!("unknown value type {other:?}")),
    })
}

fn parse_op(line: &str) -> std::result::Result<Op, String> {
    let raw: RawOp = serde_json::from_str(line).map_err(|e| e.to_string())?;
    if raw.path.is_empty() {
        return Err("empty path".into());
    }
    let path = raw.path;
    let t = || raw.t.ok_or_else(|| format!("\"{}\" without \"t\"", raw.op));
    let value = || -> std::result::Result<StateValue, String> {
        match raw.value {
            Some(v) => parse_value(v),
            None => Err(format!("\"{}\" without \"value\"", raw.op)),
        }
    };
    Ok(match raw.op.as_str() {
        "attr" => Op::Attr { path },
        "modify" => Op::Modify {
            t: t()?,
            value: value()?,
            path,
        },
        "push" => Op::Push {
            t: t()?,
            value: value()?,
            path,
        },
        "pop" => Op::Pop { t: t()?, path },
        "remove" => Op::Remove { t: t()?, path },
        "increment" => Op::Increment {
            t: t()?,
            value: value()?,
            path,
        },
        "update_ongoing" => Op::UpdateOngoing {
            value: value()?,
            path,
        },
        other => return Err(format!("unknown op {other:?}")),
    })
}

/// Streams the operations of a log file.
pub struct ChangeLogReader {
    path: PathBuf,
    lines: std::io::Lines<BufReader<File>>,
    line_no: usize,
    header: LogHeader,
}

impl ChangeLogReader {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut lines = BufReader::new(file).lines();
        let mut line_no = 0;
        let header = loop {
            line_no += 1;
            let line = match lines.next() {
                Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(Error::Log {
                        path,
                        line: line_no,
                        what: "not UTF-8 text (is this a state-change log?)".into(),
                    })
                }
                Some(l) => l.map_err(|e| Error::io(&path, e))?,
                None => {
                    return Err(Error::Log {
                        path,
                        line: line_no,
                        what: "no header line".into(),
                    })
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            break serde_json::from_str::<LogHeader>(&line).map_err(|e| Error::Log {
                path: path.clone(),
                line: line_no,
                what: format!("invalid header: {e}"),
            })?;
        };
        Ok(ChangeLogReader {
            path,
            lines,
            line_no,
            header,
        })
    }

    pub fn header(&self) -> &LogHeader {
        &self.header
    }

    /// Line number of the last op returned.
    pub fn line(&self) -> usize {
        self.line_no
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn log_error(&self, what: impl Into<String>) -> Error {
        Error::Log {
            path: self.path.clone(),
            line: self.line_no,
            what: what.into(),
        }
    }

    /// Replays every remaining op into `ss`, then closes it at the header's end.
    /// Errors name the log line.
    pub fn replay(&mut self, ss: &mut dyn StateSystemBuilder) -> Result<u64> {
        let mut n = 0;
        while let Some(op) = self.next() {
            let op = op?;
            op.apply(ss).map_err(|e| self.log_error(e.to_string()))?;
            n += 1;
        }
        ss.close(self.header.end)
            .map_err(|e| self.log_error(format!("closing the history: {e}")))?;
        Ok(n)
    }
}

impl Iterator for ChangeLogReader {
    type Item = Result<Op>;

    fn next(&mut self) -> Option<Result<Op>> {
        loop {
            self.line_no += 1;
            let line = match self.lines.next()? {
                Ok(l) => l,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Some(Err(self.log_error("not UTF-8 text")))
                }
                Err(e) => return Some(Err(Error::io(&self.path, e))),
            };
            if line.trim().is_empty() {
                continue;
            }
            return Some(parse_op(&line).map_err(|what| self.log_error(what)));
        }
    }
}

/// Writes a log: the header, then one op per line.
pub struct ChangeLogWriter<W: Write> {
    out: W,
}

impl<W: Write> ChangeLogWriter<W> {
    pub fn new(mut out: W, header: &LogHeader) -> std::io::Result<Self> {
        writeln!(
            out,
            "{{\"start\":{},\"end\":{},\"provider_version\":{},\"block_size\":{},\"max_children\":{}}}",
            header.start, header.end, header.provider_version, header.block_size, header.max_children
        )?;
        Ok(ChangeLogWriter { out })
    }

    pub fn write(&mut self, op: &Op) -> std::io::Result<()> {
        writeln!(self.out, "{}", op.to_json_line())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_through_json() {
        let ops = [
            Op::Attr {
                path: vec!["a".into()],
            },
            Op::Modify {
                t: 1_700_000_000_000_000_001,
                path: vec!["a".into(), "é".into()],
                value: StateValue::Long(i64::MIN),
            },
            Op::Push {
                t: 5,
                path: vec!["s".into()],
                value: StateValue::Double(-0.0),
            },
            Op::Pop {
                t: 6,
                path: vec!["s".into()],
            },
            Op::Remove {
                t: 7,
                path: vec!["a".into()],
            },
            Op::Increment {
                t: 8,
                path: vec!["c".into()],
                value: StateValue::Int(-1),
            },
            Op::UpdateOngoing {
                path: vec!["c".into()],
                value: StateValue::string("x\"y"),
            },
        ];
        for op in ops {
            assert_eq!(parse_op(&op.to_json_line()).unwrap(), op);
        }
    }

    #[test]
    fn bad_lines_are_explained() {
        for (line, what) in [
            (
                r#"{"op":"modify","path":["a"],"value":{"type":"int","v":1}}"#,
                "without \"t\"",
            ),
            (
                r#"{"t":1,"op":"modify","path":[],"value":{"type":"int","v":1}}"#,
                "empty path",
            ),
            (
                r#"{"t":1,"op":"modify","path":["a"],"value":{"type":"int","v":4294967296}}"#,
                "32 bits",
            ),
            (r#"{"t":1,"op":"jump","path":["a"]}"#, "unknown op"),
            (
                r#"{"t":1,"op":"modify","path":["a"],"value":{"type":"double","v":"x"}}"#,
                "invalid double",
            ),
            (r#"{"t":1,"op":"modify","path":["a"]"#, "EOF"),
        ] {
            let err = parse_op(line).unwrap_err();
            assert!(err.contains(what), "{line}: {err}");
        }
    }

    #[test]
    fn doubles_parse_exactly() {
        let op =
            parse_op(r#"{"t":1,"op":"modify","path":["a"],"value":{"type":"double","v":0.1}}"#)
                .unwrap();
        let Op::Modify {
            value: StateValue::Double(d),
            ..
        } = op
        else {
            panic!()
        };
        assert_eq!(d.to_bits(), 0.1f64.to_bits());
    }
}
