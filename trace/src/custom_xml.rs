//! Trace Compass *custom XML parser* traces (`CustomXMLTraceDefinitionList`): a
//! user-written definition maps the elements of each record (`logentry="true"`)
//! to output columns. Events come out as [`StubEvent`]s whose fields are all
//! strings, one per output column (empty when the record had no data for it), in
//! an [`XmlStubTrace`] so the XML-analysis runtime reads them like stub traces.
//!
//! Supported: element text and attributes with actions set (0), append (1) and
//! append with `" | "` (2); the `Time Stamp` column with `yyyy MM dd HH mm ss S…`
//! patterns, read as UTC (Trace Compass uses the JVM's zone: the project uses UTC).
//! Not supported: the flattened text of elements that have children (such data
//! is ignored), `eventType` overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use quick_xml::Reader;
use thiserror::Error;

use crate::xmlstub::{StubEvent, StubValue, XmlStubTrace};

#[derive(Debug, Error)]
pub enum CustomXmlError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Definition {
        path: PathBuf,
        line: u32,
        message: String,
    },
}

/// Minimal element tree for definitions and records.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
    line: u32,
}

impl Node {
    fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one element starting at the beginning of `text`; returns it and the bytes used.
fn parse_element(text: &str, first_line: u32) -> Result<(Node, usize), String> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Node> = Vec::new();
    let line_of =
        |pos: u64| first_line + text[..(pos as usize).min(text.len())].matches('\n').count() as u32;
    loop {
        let pos = reader.buffer_position();
        let ev = reader.read_event().map_err(|e| e.to_string())?;
        let node = |s: &quick_xml::events::BytesStart<'_>| -> Result<Node, String> {
            let mut attrs = Vec::new();
            for a in s.attributes() {
                let a = a.map_err(|e| e.to_string())?;
                let v = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
                attrs.push((String::from_utf8_lossy(a.key.as_ref()).into_owned(), v));
            }
            Ok(Node {
                name: String::from_utf8_lossy(s.name().as_ref()).into_owned(),
                attrs,
                line: line_of(pos),
                ..Node::default()
            })
        };
        match ev {
            Event::Start(s) => {
                if stack.len() > 256 {
                    return Err("elements nested too deeply".into());
                }
                stack.push(node(&s)?)
            }
            Event::Empty(s) => {
                let n = node(&s)?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => return Ok((n, reader.buffer_position() as usize)),
                }
            }
            Event::End(_) => {
                let n = stack.pop().ok_or("unexpected end tag")?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => return Ok((n, reader.buffer_position() as usize)),
                }
            }
            Event::Text(t) => {
                if let Some(p) = stack.last_mut() {
                    p.text.push_str(&t.unescape().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(t) => {
                if let Some(p) = stack.last_mut() {
                    p.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => return Err("unexpected end of input".into()),
            _ => {}
        }
    }
}

/// What to do with one piece of input data.
#[derive(Clone, Debug)]
struct InputData {
    column: String,
    action: u8,
    format: String,
}

#[derive(Debug)]
struct InputElement {
    name: String,
    data: Option<InputData>,
    attributes: Vec<(String, InputData)>,
    children: Vec<InputElement>,
}

/// One `Definition` of a custom XML parser file.
#[derive(Debug)]
pub struct CustomXmlDefinition {
    pub category: String,
    pub name: String,
    record: InputElement,
    output_columns: Vec<String>,
}

const TIME_STAMP: &str = "Time Stamp";

fn input_data(n: &Node) -> Option<InputData> {
    n.children
        .iter()
        .find(|c| c.name == "InputData")
        .map(|d| InputData {
            column: d.attr("name").unwrap_or("").to_string(),
            action: d.attr("action").and_then(|a| a.parse().ok()).unwrap_or(0),
            format: d.attr("format").unwrap_or("").to_string(),
        })
}

fn input_element(n: &Node) -> InputElement {
    InputElement {
        name: n.attr("name").unwrap_or("").to_string(),
        data: input_data(n),
        attributes: n
            .children
            .iter()
            .filter(|c| c.name == "Attribute")
            .filter_map(|a| Some((a.attr("name")?.to_string(), input_data(a)?)))
            .collect(),
        children: n
            .children
            .iter()
            .filter(|c| c.name == "InputElement")
            .map(input_element)
            .collect(),
    }
}

/// The first `InputElement` with `logentry="true"`, parent before children.
fn find_record(n: &Node) -> Option<&Node> {
    if n.name == "InputElement" && n.attr("logentry") == Some("true") {
        return Some(n);
    }
    n.children.iter().find_map(find_record)
}

impl CustomXmlDefinition {
    /// Every definition of a `CustomXMLTraceDefinitionList` file.
    pub fn load_all(path: &Path) -> Result<Vec<CustomXmlDefinition>, CustomXmlError> {
        let text = std::fs::read_to_string(path).map_err(|source| CustomXmlError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |line, message: String| CustomXmlError::Definition {
            path: path.to_path_buf(),
            line,
            message,
        };
        let start = text
            .find("<CustomXMLTraceDefinitionList")
            .ok_or_else(|| bad(1, "not a CustomXMLTraceDefinitionList file".into()))?;
        let first_line = 1 + text[..start].matches('\n').count() as u32;
        let (root, _) =
            parse_element(&text[start..], first_line).map_err(|m| bad(first_line, m))?;
        let mut out = Vec::new();
        for d in root.children.iter().filter(|c| c.name == "Definition") {
            let record = find_record(d)
                .ok_or_else(|| bad(d.line, "no InputElement with logentry=\"true\"".into()))?;
            out.push(CustomXmlDefinition {
                category: d.attr("category").unwrap_or("").to_string(),
                name: d.attr("name").unwrap_or("").to_string(),
                record: input_element(record),
                output_columns: d
                    .children
                    .iter()
                    .filter(|c| c.name == "OutputColumn")
                    .filter_map(|c| c.attr("name").map(str::to_string))
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Trace Compass's trace type id, as analyses name it in `traceType`.
    pub fn trace_type_id(&self) -> String {
        format!("custom.xml.trace:{}:{}", self.category, self.name)
    }

    /// Reads a trace file: every record element found line by line (no root element
    /// needed; malformed records are skipped), in file order.
    pub fn read(&self, path: &Path) -> Result<XmlStubTrace, CustomXmlError> {
        let bytes = std::fs::read(path).map_err(|source| CustomXmlError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let open = format!("<{}", self.record.name);
        let mut events = Vec::new();
        let mut pos = 0;
        let mut line = 1u32;
        while let Some(found) = text[pos..].find(&open) {
            let at = pos + found;
            line += text[pos..at].matches('\n').count() as u32;
            let next = text[at + open.len()..].chars().next();
            if next.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.') {
                pos = at + open.len();
                continue;
            }
            match parse_element(&text[at..], line) {
                Ok((node, used)) => {
                    events.push(self.event(&node));
                    line += text[at..at + used].matches('\n').count() as u32;
                    pos = at + used;
                }
                Err(_) => pos = at + open.len(),
            }
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(XmlStubTrace::from_events(
            name,
            path.to_path_buf(),
            Vec::new(),
            events,
        ))
    }

    fn event(&self, record: &Node) -> StubEvent {
        let mut data: BTreeMap<String, String> = BTreeMap::new();
        let mut extra_order: Vec<String> = Vec::new();
        let mut timestamp = 0;
        apply(
            &self.record,
            record,
            &mut data,
            &mut extra_order,
            &mut timestamp,
        );
        let mut fields: Vec<(String, StubValue)> = Vec::new();
        for col in &self.output_columns {
            if col == TIME_STAMP {
                continue;
            }
            let v = data.get(col).cloned().unwrap_or_default();
            fields.push((col.clone(), StubValue::Str(v)));
        }
        for col in extra_order {
            if !self.output_columns.contains(&col) && col != TIME_STAMP && col != "Message" {
                let v = data.get(&col).cloned().unwrap_or_default();
                fields.push((col, StubValue::Str(v)));
            }
        }
        StubEvent {
            timestamp,
            name: self.name.clone(),
            cpu: None,
            fields,
            line: record.line,
        }
    }
}

fn store(
    d: &InputData,
    text: &str,
    data: &mut BTreeMap<String, String>,
    order: &mut Vec<String>,
    ts: &mut i64,
) {
    if text.is_empty() || d.column == "Ignore" {
        return;
    }
    if d.column == TIME_STAMP {
        *ts = parse_time(text, &d.format).unwrap_or(0);
    }
    if !order.contains(&d.column) {
        order.push(d.column.clone());
    }
    let slot = data.entry(d.column.clone()).or_default();
    match d.action {
        1 => slot.push_str(text),
        2 if !slot.is_empty() => {
            slot.push_str(" | ");
            slot.push_str(text);
        }
        _ => *slot = text.to_string(),
    }
}

fn apply(
    def: &InputElement,
    el: &Node,
    data: &mut BTreeMap<String, String>,
    order: &mut Vec<String>,
    ts: &mut i64,
) {
    if let Some(d) = &def.data {
        // Only leaf text is supported (see the module documentation).
        if el.children.is_empty() {
            store(d, el.text.trim(), data, order, ts);
        }
    }
    for (attr, d) in &def.attributes {
        if let Some(v) = el.attr(attr) {
            store(d, v, data, order, ts);
        }
    }
    for child in &el.children {
        if let Some(cd) = def.children.iter().find(|c| c.name == child.name) {
            apply(cd, child, data, order, ts);
        }
    }
}

/// Days from 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A `SimpleDateFormat`-like pattern (y M d H m s S and literals), read as UTC, to ns.
pub fn parse_time(text: &str, format: &str) -> Option<i64> {
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ns) =
        (1970i64, 1i64, 1i64, 0i64, 0i64, 0i64, 0i64);
    let f: Vec<char> = format.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut i, mut j) = (0, 0);
    while i < f.len() {
        let c = f[i];
        let mut n = 1;
        while i + n < f.len() && f[i + n] == c {
            n += 1;
        }
        if c.is_ascii_alphabetic() {
            // Digits: exactly n for fixed fields, greedy for a single letter.
            let start = j;
            let max = if n == 1 || c == 'y' { usize::MAX } else { n };
            while j < t.len() && t[j].is_ascii_digit() && j - start < max {
                j += 1;
            }
            if j == start {
                return None;
            }
            if j - start > 9 {
                return None;
            }
            let digits: String = t[start..j].iter().collect();
            let v: i64 = digits.parse().ok()?;
            match c {
                'y' => y = v,
                'M' => mo = v,
                'd' => d = v,
                'H' => h = v,
                'm' => mi = v,
                's' => s = v,
                'S' => {
                    let k = (j - start) as u32;
                    if k > 9 {
                        return None;
                    }
                    ns = v * 10i64.pow(9 - k);
                }
                _ => return None,
            }
            i += n;
        } else {
            for _ in 0..n {
                if t.get(j) != Some(&c) {
                    return None;
                }
                j += 1;
            }
            i += n;
        }
    }
    if j != t.len() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsecond_pattern_in_utc() {
        // 2015-09-16T15:24:29.061258Z, computed independently (Python datetime).
        assert_eq!(
            parse_time("2015-09-16 15:24:29.061258", "yyyy-MM-dd HH:mm:ss.SSSSSS"),
            Some(1_442_417_069_061_258_000)
        );
        assert_eq!(
            parse_time("1970-01-01 00:00:01.5", "yyyy-MM-dd HH:mm:ss.S"),
            Some(1_500_000_000)
        );
        assert_eq!(parse_time("garbage", "yyyy-MM-dd"), None);
        assert_eq!(parse_time("2015-13-01", "yyyy-MM-dd"), None);
    }
}
