//! Trace Compass "XML trace stub" files: `<trace><set_aspects/>?<event>*</trace>`.
//!
//! [`XmlStubTrace::open`] parses and validates a whole file (structure of
//! `TmfXmlDevelopmentTrace.xsd`), then converts every `<event>` to a [`StubEvent`]
//! the way Trace Compass's `TmfXmlTraceStub` does. That stub is built on a custom
//! XML parser that joins all names, values and types of an event with `" | "`
//! and splits them again; we reproduce that (empty values shift later ones,
//! values holding `" | "` are split) because analyses tested against Trace
//! Compass see exactly those events.

use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use thiserror::Error;

/// Unit of the `timestamp` attribute; events always carry nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StubTimeUnit {
    /// `org.eclipse.linuxtools.tmf.core.tests.xmlstub` (what all XML-analysis tests use).
    #[default]
    Nanoseconds,
    /// `org.eclipse.linuxtools.tmf.core.tests.xmlstubsec`: value × 10⁹.
    Seconds,
}

/// Value of one event field, typed by the `type` attribute of `<field>`.
#[derive(Clone, Debug, PartialEq)]
pub enum StubValue {
    /// `type="int"` (a Java Integer: 32-bit range; unparsable text gives 0).
    Int(i64),
    /// `type="long"` (unparsable text gives 0).
    Long(i64),
    /// `type="string"`, and also `type="double"`: Trace Compass keeps doubles as text.
    Str(String),
    /// `type="intArray"`: comma-separated; any unparsable element gives an empty array.
    IntArray(Vec<i64>),
    /// `type="longArray"`.
    LongArray(Vec<i64>),
    /// Never produced from a stub file (see `Str`); for sources that build events in code.
    Float(f64),
}

impl StubValue {
    /// Integer value of `Int`/`Long`, as Trace Compass's number fields.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            StubValue::Int(v) | StubValue::Long(v) => Some(*v),
            _ => None,
        }
    }
    /// Text of a `Str` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            StubValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One `<event>` of a stub trace.
#[derive(Clone, Debug, PartialEq)]
pub struct StubEvent {
    /// Nanoseconds.
    pub timestamp: i64,
    /// Event type name (the `name` attribute).
    pub name: String,
    /// The CPU aspect: only when `set_aspects` declares `cpu` and the event has a numeric `cpu` field.
    pub cpu: Option<u32>,
    /// Content fields in file order.
    pub fields: Vec<(String, StubValue)>,
    /// 1-based line of the `<event>` tag, for error messages downstream.
    pub line: u32,
}

impl StubEvent {
    /// The content field called `name`.
    pub fn field(&self, name: &str) -> Option<&StubValue> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Why a stub trace could not be read. Every variant names the file; content errors name the line.
#[derive(Debug, Error)]
pub enum XmlStubError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: malformed XML: {message}")]
    Malformed {
        path: PathBuf,
        line: u32,
        message: String,
    },
    #[error("{path}:{line}: not an XML stub trace: {message}")]
    Schema {
        path: PathBuf,
        line: u32,
        message: String,
    },
    #[error("{path}:{line}: event timestamp {value:?} is not an integer nanosecond count")]
    BadTimestamp {
        path: PathBuf,
        line: u32,
        value: String,
    },
    #[error("{path}:{line}: event {event:?} has field {field:?} twice")]
    DuplicateField {
        path: PathBuf,
        line: u32,
        event: String,
        field: String,
    },
    #[error("{path}:{line}: event at {timestamp} comes after one at {previous} (stub traces are not sorted)")]
    OutOfOrder {
        path: PathBuf,
        line: u32,
        timestamp: i64,
        previous: i64,
    },
}

/// A whole XML stub trace in memory.
#[derive(Clone, Debug)]
pub struct XmlStubTrace {
    name: String,
    path: PathBuf,
    aspects: Vec<String>,
    events: Vec<StubEvent>,
}

/// Separator the Trace Compass stub joins and splits field attributes with.
const JOIN: &str = " | ";
const FIELD_TYPES: [&str; 6] = ["int", "long", "string", "double", "longArray", "intArray"];

impl XmlStubTrace {
    /// Opens a nanosecond stub trace.
    pub fn open(path: &Path) -> Result<XmlStubTrace, XmlStubError> {
        Self::open_with_unit(path, StubTimeUnit::Nanoseconds)
    }

    pub fn open_with_unit(path: &Path, unit: StubTimeUnit) -> Result<XmlStubTrace, XmlStubError> {
        let bytes = std::fs::read(path).map_err(|source| XmlStubError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::parse(&bytes, path, name, unit)
    }

    /// Parses stub-trace text; `path` is only used in errors, `name` becomes the trace name.
    pub fn parse(
        bytes: &[u8],
        path: &Path,
        name: String,
        unit: StubTimeUnit,
    ) -> Result<XmlStubTrace, XmlStubError> {
        let mut parser = Parser::new(bytes, path, unit)?;
        let (aspects, events) = parser.document()?;
        Ok(XmlStubTrace {
            name,
            path: path.to_path_buf(),
            aspects,
            events,
        })
    }

    /// A trace built from events read elsewhere (custom parsers), in the given order.
    pub fn from_events(
        name: String,
        path: PathBuf,
        aspects: Vec<String>,
        events: Vec<StubEvent>,
    ) -> XmlStubTrace {
        XmlStubTrace {
            name,
            path,
            aspects,
            events,
        }
    }

    /// File name, as Trace Compass names the trace (also its host ID).
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn events(&self) -> &[StubEvent] {
        &self.events
    }
    /// Field names declared by `<set_aspects>` (values there are ignored).
    pub fn aspects(&self) -> &[String] {
        &self.aspects
    }
    /// Whether the trace has a CPU aspect (`set_aspects` declares `cpu`).
    pub fn has_cpu_aspect(&self) -> bool {
        self.aspects.iter().any(|a| a == "cpu")
    }
    /// Distinct event names in first-seen order.
    pub fn event_names(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.events
            .iter()
            .filter(|e| seen.insert(e.name.as_str()))
            .map(|e| e.name.clone())
            .collect()
    }
    /// First event's timestamp: the trace (and state system) start.
    pub fn start_time(&self) -> Option<i64> {
        self.events.first().map(|e| e.timestamp)
    }
    pub fn end_time(&self) -> Option<i64> {
        self.events.last().map(|e| e.timestamp)
    }
}

/// One `<field>` as written.
struct RawField {
    name: String,
    value: String,
    kind: String,
}

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    path: &'a Path,
    unit: StubTimeUnit,
    /// Byte offsets of line starts, to turn reader positions into line numbers.
    line_starts: Vec<usize>,
    /// Line of the last element start read.
    line: u32,
}

enum Item<'a> {
    Open(BytesStart<'a>, bool),
    Close,
    Eof,
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8], path: &'a Path, unit: StubTimeUnit) -> Result<Self, XmlStubError> {
        let mut line_starts = vec![0];
        line_starts.extend(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let mut reader = Reader::from_reader(bytes);
        reader.config_mut().check_end_names = true;
        Ok(Parser {
            reader,
            path,
            unit,
            line_starts,
            line: 1,
        })
    }

    fn line_at(&self, pos: u64) -> u32 {
        let pos = usize::try_from(pos).unwrap_or(usize::MAX);
        let idx = self.line_starts.partition_point(|&s| s <= pos);
        u32::try_from(idx).unwrap_or(u32::MAX)
    }

    fn malformed(&self, message: String) -> XmlStubError {
        XmlStubError::Malformed {
            path: self.path.to_path_buf(),
            line: self.line,
            message,
        }
    }
    fn schema(&self, message: String) -> XmlStubError {
        XmlStubError::Schema {
            path: self.path.to_path_buf(),
            line: self.line,
            message,
        }
    }

    /// Next element boundary, skipping comments, declarations and whitespace.
    fn next(&mut self) -> Result<Item<'a>, XmlStubError> {
        loop {
            let pos = self.reader.buffer_position();
            self.line = self.line_at(pos);
            let ev = self
                .reader
                .read_event()
                .map_err(|e| self.malformed(e.to_string()))?;
            match ev {
                Event::Start(s) => return Ok(Item::Open(s, false)),
                Event::Empty(s) => return Ok(Item::Open(s, true)),
                Event::End(_) => return Ok(Item::Close),
                Event::Eof => return Ok(Item::Eof),
                Event::Text(t) => {
                    if let Some(i) = t.iter().position(|b| !b.is_ascii_whitespace()) {
                        self.line = self.line_at(pos + i as u64);
                        let text = String::from_utf8_lossy(&t);
                        return Err(self.schema(format!("unexpected text {:?}", text.trim())));
                    }
                }
                Event::CData(_) => return Err(self.schema("unexpected CDATA section".into())),
                Event::DocType(_) => {
                    return Err(self.schema("DOCTYPE declarations are not allowed".into()))
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            }
        }
    }

    fn element_name(&self, s: &BytesStart<'_>) -> String {
        String::from_utf8_lossy(s.name().as_ref()).into_owned()
    }

    /// Attributes of `s`, checked against the allowed names (all required).
    fn attributes(
        &self,
        s: &BytesStart<'_>,
        allowed: &[&str],
    ) -> Result<Vec<Option<String>>, XmlStubError> {
        let element = self.element_name(s);
        let mut values = vec![None; allowed.len()];
        for attr in s.attributes() {
            let attr = attr.map_err(|e| self.malformed(format!("<{element}>: {e}")))?;
            let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
            let Some(i) = allowed.iter().position(|a| *a == key) else {
                return Err(self.schema(format!("<{element}> has unknown attribute {key:?}")));
            };
            let value = attr
                .unescape_value()
                .map_err(|e| self.malformed(format!("<{element} {key}>: {e}")))?;
            values[i] = Some(value.into_owned());
        }
        Ok(values)
    }

    fn required(
        &self,
        element: &str,
        attr: &str,
        v: Option<String>,
    ) -> Result<String, XmlStubError> {
        v.ok_or_else(|| self.schema(format!("<{element}> lacks required attribute {attr:?}")))
    }

    fn document(&mut self) -> Result<(Vec<String>, Vec<StubEvent>), XmlStubError> {
        let empty_root = match self.next()? {
            Item::Open(s, empty) if s.name().as_ref() == b"trace" => {
                self.attributes(&s, &[])?;
                empty
            }
            Item::Open(s, _) => {
                let name = self.element_name(&s);
                return Err(self.schema(format!("root element is <{name}>, expected <trace>")));
            }
            Item::Close => return Err(self.malformed("unexpected end tag".into())),
            Item::Eof => return Err(self.schema("no <trace> element".into())),
        };
        let mut aspects = Vec::new();
        let mut events: Vec<StubEvent> = Vec::new();
        let mut seen_aspects = false;
        if !empty_root {
            loop {
                match self.next()? {
                    Item::Open(s, empty) => match s.name().as_ref() {
                        b"set_aspects" if !seen_aspects && events.is_empty() => {
                            seen_aspects = true;
                            self.attributes(&s, &[])?;
                            let fields = if empty {
                                Vec::new()
                            } else {
                                self.fields("set_aspects")?
                            };
                            aspects = fields.into_iter().map(|f| f.name).collect();
                        }
                        b"set_aspects" => {
                            return Err(self.schema(
                                "<set_aspects> must come once, before the first <event>".into(),
                            ))
                        }
                        b"event" => {
                            let line = self.line;
                            let mut attrs =
                                self.attributes(&s, &["timestamp", "name"])?.into_iter();
                            let ts_text =
                                self.required("event", "timestamp", attrs.next().flatten())?;
                            let name = self.required("event", "name", attrs.next().flatten())?;
                            let fields = if empty {
                                Vec::new()
                            } else {
                                self.fields("event")?
                            };
                            let timestamp = self.timestamp(&ts_text, line)?;
                            if let Some(prev) = events.last() {
                                if timestamp < prev.timestamp {
                                    return Err(XmlStubError::OutOfOrder {
                                        path: self.path.to_path_buf(),
                                        line,
                                        timestamp,
                                        previous: prev.timestamp,
                                    });
                                }
                            }
                            let fields = self.convert(&name, fields, line)?;
                            let cpu = if aspects.iter().any(|a| a == "cpu") {
                                fields
                                    .iter()
                                    .find(|(n, _)| n == "cpu")
                                    .and_then(|(_, v)| v.as_int())
                                    .map(|v| v as u32)
                            } else {
                                None
                            };
                            events.push(StubEvent {
                                timestamp,
                                name,
                                cpu,
                                fields,
                                line,
                            });
                        }
                        other => {
                            let other = String::from_utf8_lossy(other).into_owned();
                            return Err(self.schema(format!("unexpected <{other}> in <trace>")));
                        }
                    },
                    Item::Close => break,
                    Item::Eof => return Err(self.malformed("unclosed <trace>".into())),
                }
            }
        }
        match self.next()? {
            Item::Eof => Ok((aspects, events)),
            _ => Err(self.schema("content after </trace>".into())),
        }
    }

    /// The `<field>` children of the current element, up to its end tag.
    fn fields(&mut self, parent: &str) -> Result<Vec<RawField>, XmlStubError> {
        let mut out = Vec::new();
        loop {
            match self.next()? {
                Item::Open(s, empty) if s.name().as_ref() == b"field" => {
                    let mut attrs = self.attributes(&s, &["name", "value", "type"])?.into_iter();
                    let name = self.required("field", "name", attrs.next().flatten())?;
                    let value = self.required("field", "value", attrs.next().flatten())?;
                    let kind = self.required("field", "type", attrs.next().flatten())?;
                    if !FIELD_TYPES.contains(&kind.as_str()) {
                        return Err(self.schema(format!(
                            "<field name={name:?}> has type {kind:?}, expected one of {FIELD_TYPES:?}"
                        )));
                    }
                    if !empty {
                        match self.next()? {
                            Item::Close => {}
                            _ => return Err(self.schema("<field> must be empty".into())),
                        }
                    }
                    out.push(RawField { name, value, kind });
                }
                Item::Open(s, _) => {
                    let name = self.element_name(&s);
                    return Err(self.schema(format!("unexpected <{name}> in <{parent}>")));
                }
                Item::Close => return Ok(out),
                Item::Eof => return Err(self.malformed(format!("unclosed <{parent}>"))),
            }
        }
    }

    fn timestamp(&self, text: &str, line: u32) -> Result<i64, XmlStubError> {
        let bad = || XmlStubError::BadTimestamp {
            path: self.path.to_path_buf(),
            line,
            value: text.to_string(),
        };
        // xs:integer allows surrounding whitespace and a leading '+'.
        let value: i64 = text.trim().parse().map_err(|_| bad())?;
        match self.unit {
            StubTimeUnit::Nanoseconds => Ok(value),
            StubTimeUnit::Seconds => value.checked_mul(1_000_000_000).ok_or_else(bad),
        }
    }

    /// Trace Compass's join-and-split conversion of one event's fields.
    fn convert(
        &self,
        event: &str,
        raw: Vec<RawField>,
        line: u32,
    ) -> Result<Vec<(String, StubValue)>, XmlStubError> {
        // The custom parser appends only non-empty attribute texts.
        let join = |get: fn(&RawField) -> &str| {
            raw.iter()
                .map(get)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(JOIN)
        };
        let (names, values, kinds) = (join(|f| &f.name), join(|f| &f.value), join(|f| &f.kind));
        let (names, values, kinds) = (java_split(&names), java_split(&values), java_split(&kinds));
        let mut out: Vec<(String, StubValue)> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let value = values.get(i).copied().unwrap_or("");
            let converted = match kinds.get(i).copied() {
                Some("int") => StubValue::Int(value.parse::<i32>().map_or(0, i64::from)),
                Some("long") => StubValue::Long(value.parse::<i64>().unwrap_or(0)),
                Some("longArray") => StubValue::LongArray(parse_array::<i64>(value)),
                Some("intArray") => StubValue::IntArray(parse_array::<i32>(value)),
                _ => StubValue::Str(value.to_string()),
            };
            if out.iter().any(|(n, _)| n == name) {
                return Err(XmlStubError::DuplicateField {
                    path: self.path.to_path_buf(),
                    line,
                    event: event.to_string(),
                    field: name.to_string(),
                });
            }
            out.push((name.to_string(), converted));
        }
        Ok(out)
    }
}

/// Java's `String.split(" \\| ")`: trailing empty pieces dropped, but "" gives [""].
fn java_split(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut parts: Vec<&str> = s.split(JOIN).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].is_empty() {
        // Java drops all trailing empties, even the only piece, when the input was not empty.
        parts.clear();
    }
    parts
}

/// Comma-separated numbers; any bad element empties the array, as Trace Compass does.
fn parse_array<T: std::str::FromStr + Into<i64>>(text: &str) -> Vec<i64> {
    text.split(',')
        .map(|p| p.parse::<T>().map(Into::into))
        .collect::<Result<Vec<i64>, _>>()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<XmlStubTrace, XmlStubError> {
        XmlStubTrace::parse(
            text.as_bytes(),
            Path::new("t.xml"),
            "t.xml".into(),
            StubTimeUnit::Nanoseconds,
        )
    }

    #[test]
    fn java_split_matches_java_semantics() {
        assert_eq!(java_split(""), vec![""]);
        assert_eq!(java_split("a | b"), vec!["a", "b"]);
        assert_eq!(java_split("a | b | "), vec!["a", "b"]);
        assert!(java_split(" | ").is_empty());
    }

    #[test]
    fn empty_value_shifts_following_values() {
        let t = parse(
            r#"<trace><event timestamp="1" name="e">
               <field name="a" value="" type="string"/>
               <field name="b" value="x" type="string"/></event></trace>"#,
        )
        .unwrap();
        let e = &t.events()[0];
        assert_eq!(e.field("a"), Some(&StubValue::Str("x".into())));
        assert_eq!(e.field("b"), Some(&StubValue::Str(String::new())));
    }

    #[test]
    fn event_without_fields_has_one_empty_field() {
        let t = parse(r#"<trace><event timestamp="1" name="e"/></trace>"#).unwrap();
        assert_eq!(
            t.events()[0].fields,
            vec![(String::new(), StubValue::Str(String::new()))]
        );
    }
}
