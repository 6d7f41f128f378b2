//! Trace Compass *custom XML parser* traces: a [`CustomXmlDefinition`] (read from
//! a `CustomXMLTraceDefinitionList` file) says which element of an XML log is a
//! record and how its elements and attributes become event fields; a
//! [`CustomXmlTrace`] applies it to a log file and yields [`CustomEvent`]s.
//!
//! The behaviour follows Trace Compass's `CustomXmlTraceDefinition`,
//! `CustomXmlTrace`, `CustomXmlEvent` and `CustomEvent`:
//! - the log is scanned line by line for `<record` (not followed by a letter or
//!   digit); from there one element is read (quote- and comment-aware) and parsed
//!   on its own, so logs need no root element;
//! - each `InputElement` matches direct children by name (the first matching
//!   definition wins); an element's text is its trimmed text, or for an element
//!   with children a flattened `name:value | name [ … ]` string;
//! - one field per output column, in order, `""` when the record had no data for
//!   it, except the time stamp column, present only when the time stamp was read;
//!   data not listed as a column follows as extra fields; all values are strings;
//! - the event type is the definition's name unless an `eventtype` or an
//!   "Event type" input sets it; a missing or unreadable time stamp gives 0.
//!
//! Differences, all on input Trace Compass fails on or garbles: a record that is
//! not well-formed XML is an error naming its line (Trace Compass stops with a
//! null-pointer exception); a definition whose `action` is not a number is an
//! error (an exception there too); an `InputElement` without `InputData` is
//! ignored (a null-pointer exception); files are read as UTF-8 (Trace Compass
//! re-encodes bytes as Latin-1); time stamps are read in UTC (see
//! [`crate::custom_time`]).

use std::path::{Path, PathBuf};

use crate::custom_time::{PatternError, TimestampFormat};

/// The record-definition file's root element.
const DEFINITION_LIST: &str = "CustomXMLTraceDefinitionList";
/// Category of definitions that do not name one.
pub const DEFAULT_CATEGORY: &str = "Custom XML";
const SEPARATOR: &str = " | ";

#[derive(Debug, thiserror::Error)]
pub enum CustomXmlError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not well-formed XML: {message}")]
    Xml {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: root element is <{root}>, expected <{DEFINITION_LIST}>")]
    NotADefinitionList { path: PathBuf, root: String },
    #[error("{path}:{line}: {reason}")]
    InvalidDefinition {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: no definition named {name:?} in category {category:?}")]
    DefinitionNotFound {
        path: PathBuf,
        category: String,
        name: String,
    },
    #[error("definition {name:?} has no record element (an InputElement with logentry=\"true\")")]
    NoRecordElement { name: String },
    #[error("definition {name:?}: {source}")]
    BadPattern {
        name: String,
        #[source]
        source: PatternError,
    },
    #[error("{path}: binary data (NUL byte at offset {offset}); not a text log")]
    NotText { path: PathBuf, offset: usize },
    #[error("{path}:{line}: malformed <{element}> record: {message}")]
    MalformedRecord {
        path: PathBuf,
        line: usize,
        element: String,
        message: String,
    },
    #[error("{path}:{line}: time stamp pattern of the record: {source}")]
    RecordPattern {
        path: PathBuf,
        line: usize,
        #[source]
        source: PatternError,
    },
}

/// What an input does with its data (Trace Compass's "tag").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tag {
    Ignore,
    Timestamp,
    EventType,
    Message,
    ExtraFieldName,
    ExtraFieldValue,
    ExtraFields,
    Other,
}

impl Tag {
    /// The name written in definition files (`tag="TIMESTAMP"`).
    pub fn from_name(s: &str) -> Option<Tag> {
        Some(match s {
            "IGNORE" => Tag::Ignore,
            "TIMESTAMP" => Tag::Timestamp,
            "EVENT_TYPE" => Tag::EventType,
            "MESSAGE" => Tag::Message,
            "EXTRA_FIELD_NAME" => Tag::ExtraFieldName,
            "EXTRA_FIELD_VALUE" => Tag::ExtraFieldValue,
            "EXTRA_FIELDS" => Tag::ExtraFields,
            "OTHER" => Tag::Other,
            _ => return None,
        })
    }

    /// The label Trace Compass shows, also the field name of tagged data.
    pub fn label(self) -> &'static str {
        match self {
            Tag::Ignore => "Ignore",
            Tag::Timestamp => "Timestamp",
            Tag::EventType => "Event type",
            Tag::Message => "Message",
            Tag::ExtraFieldName => "Extra field name",
            Tag::ExtraFieldValue => "Extra field value",
            Tag::ExtraFields => "Extra fields",
            Tag::Other => "Other",
        }
    }
}

/// Set (0), append (1), append with `" | "` (2); other values do nothing.
pub const ACTION_SET: i32 = 0;
pub const ACTION_APPEND: i32 = 1;
pub const ACTION_APPEND_WITH_SEPARATOR: i32 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputData {
    pub tag: Tag,
    /// Output column name (for [`Tag::Other`]) or the tag's label.
    pub name: String,
    pub action: i32,
    /// Time stamp pattern, for [`Tag::Timestamp`].
    pub format: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputAttribute {
    pub attribute: String,
    pub data: InputData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputElement {
    pub name: String,
    pub log_entry: bool,
    pub event_type: Option<String>,
    /// None: the element's own text is not used.
    pub data: Option<InputData>,
    pub attributes: Vec<InputAttribute>,
    pub children: Vec<InputElement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    pub tag: Tag,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomXmlDefinition {
    pub category: String,
    pub name: String,
    /// `TimeStampOutputFormat`: how the time stamp column is printed ("" = not).
    pub timestamp_output_format: String,
    pub root: InputElement,
    pub outputs: Vec<OutputColumn>,
}

/// One record of a custom-parser trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomEvent {
    /// Nanoseconds since the epoch; 0 when the record had no readable time stamp.
    pub timestamp_ns: i64,
    pub event_type: String,
    /// Field names and values, in Trace Compass's order.
    pub fields: Vec<(String, String)>,
    /// Where the record starts in the file (1-based line, byte offset).
    pub line: usize,
    pub offset: usize,
}

impl CustomEvent {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

// ---- a small DOM, with the node kinds Trace Compass's flattening tells apart ----------

pub(crate) mod dom {
    use quick_xml::events::{BytesStart, Event};
    use quick_xml::reader::Reader;

    #[derive(Debug, Clone)]
    pub(crate) enum Node {
        Element(Element),
        Text(String),
        CData(String),
        /// Comments and processing instructions: nodes, but never text.
        Other,
    }

    #[derive(Debug, Clone)]
    pub(crate) struct Element {
        pub name: String,
        pub attributes: Vec<(String, String)>,
        pub children: Vec<Node>,
        /// Byte offset of the start tag in the parsed text.
        pub offset: usize,
    }

    impl Element {
        /// The attribute's value, `""` when absent (as DOM's `getAttribute`).
        pub fn attribute(&self, name: &str) -> &str {
            self.attributes
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, v)| v.as_str())
        }

        pub fn child_elements(&self) -> impl Iterator<Item = &Element> {
            self.children.iter().filter_map(|n| match n {
                Node::Element(e) => Some(e),
                _ => None,
            })
        }

        /// All descendant text, untrimmed (DOM's `getTextContent`).
        pub fn text_content(&self) -> String {
            let mut s = String::new();
            fn walk(e: &Element, s: &mut String) {
                for n in &e.children {
                    match n {
                        Node::Text(t) | Node::CData(t) => s.push_str(t),
                        Node::Element(c) => walk(c, s),
                        Node::Other => {}
                    }
                }
            }
            walk(self, &mut s);
            s
        }
    }

    /// A parse failure: byte offset in the text and message.
    pub(crate) type DomError = (usize, String);

    fn normalize_newlines(s: &str) -> String {
        if s.contains('\r') {
            s.replace("\r\n", "\n").replace('\r', "\n")
        } else {
            s.to_string()
        }
    }

    fn start(e: &BytesStart, offset: usize) -> Result<Element, DomError> {
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let mut attributes = Vec::new();
        for a in e.attributes().with_checks(true) {
            let a = a.map_err(|err| (offset, format!("attribute: {err}")))?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            // XML attribute-value normalisation: literal white space becomes spaces.
            let raw: String = String::from_utf8_lossy(&a.value)
                .chars()
                .map(|c| {
                    if matches!(c, '\t' | '\n' | '\r') {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            let value = quick_xml::escape::unescape(&raw)
                .map_err(|err| (offset, format!("attribute {key}: {err}")))?
                .into_owned();
            if attributes.iter().any(|(k, _)| *k == key) {
                return Err((offset, format!("duplicate attribute {key}")));
            }
            attributes.push((key, value));
        }
        Ok(Element {
            name,
            attributes,
            children: Vec::new(),
            offset,
        })
    }

    /// Parses a document (or one record fragment): exactly one root element,
    /// with only white space, comments and processing instructions around it.
    pub(crate) fn parse(text: &str) -> Result<Element, DomError> {
        let mut reader = Reader::from_str(text);
        reader.config_mut().trim_text(false);
        reader.config_mut().check_end_names = true;
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let offset = reader.buffer_position() as usize;
            let event = reader
                .read_event()
                .map_err(|e| (reader.error_position() as usize, e.to_string()))?;
            let close =
                |el: Element, stack: &mut Vec<Element>, root: &mut Option<Element>| match stack
                    .last_mut()
                {
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => *root = Some(el),
                };
            match event {
                Event::Start(e) => {
                    if stack.is_empty() && root.is_some() {
                        return Err((offset, "content after the root element".into()));
                    }
                    stack.push(start(&e, offset)?);
                }
                Event::Empty(e) => {
                    if stack.is_empty() && root.is_some() {
                        return Err((offset, "content after the root element".into()));
                    }
                    let el = start(&e, offset)?;
                    close(el, &mut stack, &mut root);
                }
                Event::End(_) => {
                    let el = stack
                        .pop()
                        .ok_or_else(|| (offset, "end tag without start tag".to_string()))?;
                    close(el, &mut stack, &mut root);
                }
                Event::Text(t) => {
                    let s = t
                        .unescape()
                        .map_err(|e| (offset, format!("text: {e}")))?
                        .into_owned();
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Text(normalize_newlines(&s))),
                        None if s.trim().is_empty() => {}
                        None => return Err((offset, "text outside the root element".into())),
                    }
                }
                Event::CData(c) => {
                    let s = String::from_utf8_lossy(&c.into_inner()).into_owned();
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::CData(normalize_newlines(&s))),
                        None => return Err((offset, "CDATA outside the root element".into())),
                    }
                }
                Event::Comment(_) | Event::PI(_) => {
                    if let Some(parent) = stack.last_mut() {
                        parent.children.push(Node::Other);
                    }
                }
                Event::Decl(_) => {
                    if offset != 0 {
                        return Err((offset, "XML declaration not at the start".into()));
                    }
                }
                Event::DocType(_) => return Err((offset, "DOCTYPE is not allowed".into())),
                Event::Eof => break,
            }
        }
        if let Some(open) = stack.last() {
            return Err((text.len(), format!("<{}> is not closed", open.name)));
        }
        root.ok_or_else(|| (text.len(), "no element".to_string()))
    }
}

use dom::{Element, Node};

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Reads a text file: UTF-8 (invalid sequences replaced), refusing binary data.
pub(crate) fn read_text(path: &Path) -> Result<String, CustomXmlError> {
    let bytes = std::fs::read(path).map_err(|source| CustomXmlError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(CustomXmlError::NotText {
            path: path.to_path_buf(),
            offset,
        });
    }
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

// ---- definitions ---------------------------------------------------------------------

/// The errors of reading a definitions file that the text and XML custom parsers
/// each report in their own type.
pub(crate) trait DefinitionListError {
    fn xml(path: &Path, line: usize, message: String) -> Self;
    fn not_a_list(path: &Path, root: String) -> Self;
    fn not_found(path: &Path, category: &str, name: &str) -> Self;
}

impl DefinitionListError for CustomXmlError {
    fn xml(path: &Path, line: usize, message: String) -> Self {
        CustomXmlError::Xml {
            path: path.to_path_buf(),
            line,
            message,
        }
    }
    fn not_a_list(path: &Path, root: String) -> Self {
        CustomXmlError::NotADefinitionList {
            path: path.to_path_buf(),
            root,
        }
    }
    fn not_found(path: &Path, category: &str, name: &str) -> Self {
        CustomXmlError::DefinitionNotFound {
            path: path.to_path_buf(),
            category: category.to_string(),
            name: name.to_string(),
        }
    }
}

/// The definitions of a definitions file's `text` whose root must be `list`: each
/// `Definition` child read by `read`, in file order (`None`s left out).
pub(crate) fn definition_list<D, E: DefinitionListError>(
    text: &str,
    path: &Path,
    list: &str,
    mut read: impl FnMut(&Element) -> Result<Option<D>, E>,
) -> Result<Vec<D>, E> {
    let root = dom::parse(text)
        .map_err(|(offset, message)| E::xml(path, line_of(text, offset), message))?;
    if root.name != list {
        return Err(E::not_a_list(path, root.name));
    }
    let mut out = Vec::new();
    for e in root.child_elements().filter(|e| e.name == "Definition") {
        if let Some(d) = read(e)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// The definition `category`/`name` among `defs` (read from `path`).
pub(crate) fn find_definition<D, E: DefinitionListError>(
    defs: Vec<D>,
    path: &Path,
    category: &str,
    name: &str,
    names: impl Fn(&D) -> (&str, &str),
) -> Result<D, E> {
    defs.into_iter()
        .find(|d| names(d) == (category, name))
        .ok_or_else(|| E::not_found(path, category, name))
}

/// Trace Compass's `extractTagAndName`: an unknown or absent `tag` falls back on
/// the legacy names "Time Stamp", "Message" and "Ignore", else [`Tag::Other`].
pub(crate) fn tag_and_name(e: &Element, tag_attr: &str, name_attr: &str) -> (Tag, String) {
    let name = e.attribute(name_attr).to_string();
    match Tag::from_name(e.attribute(tag_attr)) {
        None => match name.as_str() {
            "Time Stamp" => (Tag::Timestamp, Tag::Timestamp.label().into()),
            "Message" => (Tag::Message, Tag::Message.label().into()),
            "Ignore" => (Tag::Ignore, Tag::Ignore.label().into()),
            _ => (Tag::Other, name),
        },
        Some(tag) if name.is_empty() => (tag, tag.label().into()),
        Some(tag) => (tag, name),
    }
}

struct DefinitionReader<'a> {
    path: &'a Path,
    text: &'a str,
}

impl DefinitionReader<'_> {
    fn invalid(&self, e: &Element, reason: String) -> CustomXmlError {
        CustomXmlError::InvalidDefinition {
            path: self.path.to_path_buf(),
            line: line_of(self.text, e.offset),
            reason,
        }
    }

    fn input_data(&self, e: &Element) -> Result<InputData, CustomXmlError> {
        let (tag, name) = tag_and_name(e, "tag", "name");
        let raw = e.attribute("action");
        let action = raw.parse::<i32>().map_err(|_| {
            self.invalid(
                e,
                format!("<InputData name={name:?}>: action {raw:?} is not a number"),
            )
        })?;
        Ok(InputData {
            tag,
            name,
            action,
            format: e.attribute("format").to_string(),
        })
    }

    fn input_element(&self, e: &Element) -> Result<InputElement, CustomXmlError> {
        let event_type = e.attribute("eventtype");
        let mut out = InputElement {
            name: e.attribute("name").to_string(),
            log_entry: e.attribute("logentry") == "true",
            event_type: (!event_type.is_empty()).then(|| event_type.to_string()),
            data: None,
            attributes: Vec::new(),
            children: Vec::new(),
        };
        for child in e.child_elements() {
            match child.name.as_str() {
                // Several InputData: the last one counts.
                "InputData" => out.data = Some(self.input_data(child)?),
                "Attribute" => {
                    if let Some(d) = child.child_elements().find(|c| c.name == "InputData") {
                        out.attributes.push(InputAttribute {
                            attribute: child.attribute("name").to_string(),
                            data: self.input_data(d)?,
                        });
                    }
                }
                "InputElement" => out.children.push(self.input_element(child)?),
                _ => {}
            }
        }
        Ok(out)
    }

    /// None for a definition Trace Compass drops (no name, two root elements).
    fn definition(&self, e: &Element) -> Result<Option<CustomXmlDefinition>, CustomXmlError> {
        let category = match e.attribute("category") {
            "" => DEFAULT_CATEGORY.to_string(),
            c => c.to_string(),
        };
        let name = e.attribute("name").to_string();
        if name.is_empty() {
            return Ok(None);
        }
        let mut timestamp_output_format = String::new();
        let mut root: Option<InputElement> = None;
        let mut outputs = Vec::new();
        for child in e.child_elements() {
            match child.name.as_str() {
                "TimeStampOutputFormat" => timestamp_output_format = child.text_content(),
                "InputElement" => {
                    if root.is_some() {
                        return Ok(None);
                    }
                    root = Some(self.input_element(child)?);
                }
                "OutputColumn" => {
                    let (tag, name) = tag_and_name(child, "tag", "name");
                    outputs.push(OutputColumn { tag, name });
                }
                _ => {}
            }
        }
        let Some(root) = root else {
            return Err(self.invalid(e, format!("definition {name:?} has no <InputElement>")));
        };
        Ok(Some(CustomXmlDefinition {
            category,
            name,
            timestamp_output_format,
            root,
            outputs,
        }))
    }
}

impl CustomXmlDefinition {
    /// Every definition of a `CustomXMLTraceDefinitionList` file, in file order.
    /// Like Trace Compass, definitions without a name or with two root
    /// `InputElement`s are left out.
    pub fn load_all(path: &Path) -> Result<Vec<CustomXmlDefinition>, CustomXmlError> {
        let text = read_text(path)?;
        Self::parse_all(&text, path)
    }

    /// [`Self::load_all`] on text already read; `path` names it in errors.
    pub fn parse_all(text: &str, path: &Path) -> Result<Vec<CustomXmlDefinition>, CustomXmlError> {
        let reader = DefinitionReader { path, text };
        definition_list(text, path, DEFINITION_LIST, |e| reader.definition(e))
    }

    /// The definition `category`/`name` of a definitions file.
    pub fn load(path: &Path, category: &str, name: &str) -> Result<Self, CustomXmlError> {
        find_definition(Self::load_all(path)?, path, category, name, |d| {
            (&d.category, &d.name)
        })
    }

    /// `custom.xml.trace:<category>:<name>`, the id analyses use in `traceType`.
    /// Reads a log with this definition as an [`XmlStubTrace`](crate::XmlStubTrace) (every field a
    /// string, the event type as the event name), the form the XML-analysis runtime
    /// and the stub-trace event source consume.
    pub fn read(&self, path: &Path) -> Result<crate::XmlStubTrace, CustomXmlError> {
        let trace = CustomXmlTrace::open(self, path)?;
        let events = trace
            .read_all()?
            .into_iter()
            .map(|e| crate::StubEvent {
                timestamp: e.timestamp_ns,
                name: e.event_type,
                cpu: None,
                fields: e
                    .fields
                    .into_iter()
                    .map(|(k, v)| (k, crate::StubValue::Str(v)))
                    .collect(),
                line: u32::try_from(e.line).unwrap_or(u32::MAX),
            })
            .collect();
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(crate::XmlStubTrace::from_events(
            name,
            path.to_path_buf(),
            Vec::new(),
            events,
        ))
    }

    pub fn trace_type_id(&self) -> String {
        format!("custom.xml.trace:{}:{}", self.category, self.name)
    }

    /// The record element: the first `logentry="true"` element, depth first.
    pub fn record_element(&self) -> Option<&InputElement> {
        fn find(e: &InputElement) -> Option<&InputElement> {
            if e.log_entry {
                return Some(e);
            }
            e.children.iter().find_map(find)
        }
        find(&self.root)
    }
}

// ---- reading a log -------------------------------------------------------------------------

/// Trace Compass's `indexOfElement`: `<name` not followed by a letter or digit.
pub(crate) fn index_of_element(name: &str, line: &str, from: usize) -> Option<usize> {
    let pat = format!("<{name}");
    let mut from = from;
    loop {
        let i = from + line.get(from..)?.find(&pat)?;
        let next = i + pat.len();
        match line[next..].chars().next() {
            Some(c) if c.is_alphanumeric() => from = next,
            _ => return Some(i),
        }
    }
}

/// From `start` (the rest of its line), the next line holding a record start.
fn next_record(text: &str, name: &str, start: usize) -> Option<usize> {
    let mut line_start = start;
    while line_start < text.len() {
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |i| line_start + i);
        let line = text[line_start..line_end].trim_end_matches('\r');
        if let Some(i) = index_of_element(name, line, 0) {
            return Some(line_start + i);
        }
        line_start = line_end + 1;
    }
    None
}

/// Trace Compass's `readElement` from the `<` at `start`: returns the end of
/// the element. Quotes are skipped wherever they are (also in text), comments
/// are skipped, nested `<` open nested elements. Iterative, so deep nesting
/// cannot exhaust the stack.
fn read_element(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    // Per open element: chars read in it, and whether its start tag is closed.
    let mut frames: Vec<(usize, bool)> = vec![(0, false)];
    let mut chars = text[start + 1..]
        .char_indices()
        .map(|(i, c)| (start + 1 + i, c));
    let mut end = text.len();
    while let Some((i, c)) = chars.next() {
        let frame = frames.last_mut().expect("a frame is open while reading");
        frame.0 += 1;
        let num_read = frame.0;
        match c {
            '"' | '\'' => {
                for (_, q) in chars.by_ref() {
                    if q == c {
                        break;
                    }
                }
            }
            '<' => frames.push((0, false)),
            '/' if num_read == 1 => {
                // "</": the enclosing element's end tag follows.
                frames.pop();
                if frames.is_empty() {
                    end = i + 1;
                    break;
                }
            }
            '-' if num_read == 3 && i >= 2 && &bytes[i - 2..i] == b"!-" => {
                // "<!--": skip to "-->" (the opening dashes count: "<!--->" ends
                // there). Trace Compass then goes on reading in the same frame,
                // so a comment inside a record makes it read past the record's
                // end; done the same here.
                let (mut window, mut n) = (['-', '-'], 0);
                for (_, k) in chars.by_ref() {
                    n += 1;
                    if k == '>' && n >= 2 && window == ['-', '-'] {
                        break;
                    }
                    window = [window[1], k];
                }
            }
            '>' => {
                let self_closing = i >= 1 && bytes[i - 1] == b'/';
                let frame = frames.last_mut().expect("open frame");
                if self_closing || frame.1 {
                    frames.pop();
                    if frames.is_empty() {
                        end = i + 1;
                        break;
                    }
                } else {
                    frame.1 = true;
                }
            }
            _ => {}
        }
    }
    end
}

/// Java's `String.trim`: strips characters up to U+0020.
pub(crate) fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Trace Compass's flattening of an element's content into one string.
fn flatten(e: &Element, out: &mut String) {
    let mut first = true;
    for node in &e.children {
        match node {
            Node::Element(c) => {
                if !first {
                    out.push_str(SEPARATOR);
                }
                first = false;
                out.push_str(&c.name);
                if c.children.is_empty() {
                    continue;
                }
                if let [Node::Text(t)] = c.children.as_slice() {
                    out.push(':');
                    out.push_str(java_trim(t));
                } else {
                    out.push_str(" [ ");
                    flatten(c, out);
                    out.push_str(" ]");
                }
            }
            Node::Text(t) if !java_trim(t).is_empty() => out.push_str(java_trim(t)),
            _ => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Tag(Tag),
    Name(String),
}

impl Key {
    fn label(&self) -> &str {
        match self {
            Key::Tag(t) => t.label(),
            Key::Name(n) => n,
        }
    }
}

/// Time stamp (ns), event type and fields of a processed record.
pub(crate) type FinishedEvent = (i64, String, Vec<(String, String)>);

/// The data of one record as inputs deliver it (Trace Compass's `fData`, an
/// insertion-ordered map), turned into an event by [`EventData::finish`].
pub(crate) struct EventData {
    data: Vec<(Key, Option<String>)>,
    timestamp_format: Option<String>,
    last_extra_name: Option<String>,
    pub event_type: String,
}

impl EventData {
    pub(crate) fn new(event_type: &str) -> Self {
        EventData {
            data: Vec::new(),
            timestamp_format: None,
            last_extra_name: None,
            event_type: event_type.to_string(),
        }
    }

    fn get(&self, key: &Key) -> Option<&Option<String>> {
        self.data.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets the event type as a line's `EventType` does (a plain map entry).
    pub(crate) fn put_event_type(&mut self, event_type: &str) {
        self.put(Key::Tag(Tag::EventType), Some(event_type.to_string()));
    }

    fn put(&mut self, key: Key, value: Option<String>) {
        match self.data.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.data.push((key, value)),
        }
    }

    fn remove(&mut self, key: &Key) -> Option<Option<String>> {
        let i = self.data.iter().position(|(k, _)| k == key)?;
        Some(self.data.remove(i).1)
    }

    /// Trace Compass's `parseInput`.
    pub(crate) fn input(&mut self, value: &str, data: &InputData) {
        if value.is_empty() {
            return;
        }
        let mut key = match data.tag {
            Tag::Other => Key::Name(data.name.clone()),
            t => Key::Tag(t),
        };
        if key == Key::Tag(Tag::ExtraFieldName) {
            self.last_extra_name = Some(value.to_string());
            if self.get(&Key::Name(value.to_string())).is_none() {
                self.put(Key::Name(value.to_string()), None);
            }
            return;
        } else if key == Key::Tag(Tag::ExtraFieldValue) {
            match &self.last_extra_name {
                Some(n) => key = Key::Name(n.clone()),
                None => return,
            }
        }
        let is_ts = key == Key::Tag(Tag::Timestamp);
        let joined = |old: Option<&Option<String>>, sep: &str| match old {
            Some(Some(s)) => format!("{s}{sep}{value}"),
            _ => value.to_string(),
        };
        match data.action {
            ACTION_SET => {
                self.put(key, Some(value.to_string()));
                if is_ts {
                    self.timestamp_format = Some(data.format.clone());
                }
            }
            ACTION_APPEND | ACTION_APPEND_WITH_SEPARATOR => {
                let sep = if data.action == ACTION_APPEND {
                    ""
                } else {
                    SEPARATOR
                };
                let v = joined(self.get(&key), sep);
                self.put(key, Some(v));
                if is_ts {
                    self.timestamp_format = Some(match self.timestamp_format.take() {
                        Some(f) => format!("{f}{sep}{}", data.format),
                        None => data.format.clone(),
                    });
                }
            }
            _ => {}
        }
    }

    /// Trace Compass's `processData`: time stamp, type, then one field per
    /// output column and the extra data.
    pub(crate) fn finish(
        mut self,
        outputs: &[OutputColumn],
        output_format: Option<&TimestampFormat>,
    ) -> Result<FinishedEvent, PatternError> {
        let ts_text = self.remove(&Key::Tag(Tag::Timestamp)).flatten();
        let timestamp = match (self.timestamp_format.take(), ts_text) {
            (Some(format), Some(text)) => TimestampFormat::new(&format)?.parse(&text).ok(),
            _ => None,
        };
        if let Some(Some(t)) = self.remove(&Key::Tag(Tag::EventType)) {
            self.event_type = t;
        }
        let mut fields: Vec<(String, String)> = Vec::with_capacity(outputs.len());
        let set = |fields: &mut Vec<(String, String)>, name: &str, value: String| match fields
            .iter_mut()
            .find(|(n, _)| n == name)
        {
            Some(f) => f.1 = value,
            None => fields.push((name.to_string(), value)),
        };
        for col in outputs {
            match col.tag {
                Tag::Timestamp => {
                    if let (Some(ts), Some(f)) = (timestamp, output_format) {
                        set(&mut fields, &col.name, f.format(ts));
                    }
                }
                Tag::Other | Tag::Message => {
                    let key = match col.tag {
                        Tag::Other => Key::Name(col.name.clone()),
                        t => Key::Tag(t),
                    };
                    let v = self.remove(&key).flatten().unwrap_or_default();
                    set(&mut fields, &col.name, v);
                }
                _ => {}
            }
        }
        for (key, value) in self.data {
            let name = key.label();
            if !fields.iter().any(|(n, _)| n == name) {
                fields.push((name.to_string(), value.unwrap_or_default()));
            }
        }
        Ok((timestamp.unwrap_or(0), self.event_type, fields))
    }
}

/// A log read with a custom XML definition.
#[derive(Debug, Clone)]
pub struct CustomXmlTrace {
    definition: CustomXmlDefinition,
    record: InputElement,
    output_format: Option<TimestampFormat>,
    path: PathBuf,
    text: String,
}

impl CustomXmlTrace {
    pub fn open(definition: &CustomXmlDefinition, path: &Path) -> Result<Self, CustomXmlError> {
        let text = read_text(path)?;
        Self::from_text(definition, path, text)
    }

    /// A trace over text already read; `path` names it in errors.
    pub fn from_text(
        definition: &CustomXmlDefinition,
        path: &Path,
        text: String,
    ) -> Result<Self, CustomXmlError> {
        let record = definition
            .record_element()
            .ok_or_else(|| CustomXmlError::NoRecordElement {
                name: definition.name.clone(),
            })?
            .clone();
        let bad = |source| CustomXmlError::BadPattern {
            name: definition.name.clone(),
            source,
        };
        // Check every time stamp input pattern now rather than at each record.
        fn check(
            e: &InputElement,
            bad: &dyn Fn(PatternError) -> CustomXmlError,
        ) -> Result<(), CustomXmlError> {
            let datas = e.data.iter().chain(e.attributes.iter().map(|a| &a.data));
            for d in datas.filter(|d| d.tag == Tag::Timestamp) {
                TimestampFormat::new(&d.format).map_err(bad)?;
            }
            e.children.iter().try_for_each(|c| check(c, bad))
        }
        check(&record, &bad)?;
        let output_format = match definition.timestamp_output_format.as_str() {
            "" => None,
            f => Some(TimestampFormat::new(f).map_err(bad)?),
        };
        Ok(CustomXmlTrace {
            definition: definition.clone(),
            record,
            output_format,
            path: path.to_path_buf(),
            text,
        })
    }

    pub fn definition(&self) -> &CustomXmlDefinition {
        &self.definition
    }

    /// How well `path` fits `definition`, as Trace Compass rates it when it
    /// picks a trace type: 100 when a well-formed record starts within the first
    /// 100 lines, else 0 (also for binary files). Errors only when the file
    /// cannot be read.
    pub fn confidence(
        definition: &CustomXmlDefinition,
        path: &Path,
    ) -> Result<u32, CustomXmlError> {
        let Some(record) = definition.record_element() else {
            return Ok(0);
        };
        let text = match read_text(path) {
            Ok(t) => t,
            Err(CustomXmlError::NotText { .. }) => return Ok(0),
            Err(e) => return Err(e),
        };
        let (mut pos, mut lines) = (0, 0);
        while pos < text.len() && lines < 100 {
            lines += 1;
            let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
            let line = text[pos..line_end].trim_end_matches('\r');
            if let Some(i) = index_of_element(&record.name, line, 0) {
                let start = pos + i;
                let end = read_element(&text, start);
                if dom::parse(&text[start..end]).is_ok() {
                    return Ok(100);
                }
                // Go on with the rest of the line after the element.
                pos = end;
                continue;
            }
            pos = line_end + 1;
        }
        Ok(0)
    }

    pub fn trace_type_id(&self) -> String {
        self.definition.trace_type_id()
    }

    /// The records, in file order. A record that is not well-formed yields an
    /// error and reading goes on after it.
    pub fn events(&self) -> CustomXmlEvents<'_> {
        CustomXmlEvents {
            trace: self,
            next: next_record(&self.text, &self.record.name, 0),
            line: (0, 1),
        }
    }

    /// All records, or the first error.
    pub fn read_all(&self) -> Result<Vec<CustomEvent>, CustomXmlError> {
        self.events().collect()
    }

    fn apply(&self, e: &Element, ie: &InputElement, data: &mut EventData) {
        if let Some(t) = &ie.event_type {
            data.event_type = t.clone();
        }
        if let Some(d) = ie.data.as_ref().filter(|d| d.tag != Tag::Ignore) {
            let mut s = String::new();
            flatten(e, &mut s);
            data.input(&s, d);
        }
        for a in &ie.attributes {
            data.input(e.attribute(&a.attribute), &a.data);
        }
        if ie.children.is_empty() {
            return;
        }
        for child in e.child_elements() {
            if let Some(def) = ie.children.iter().find(|d| d.name == child.name) {
                self.apply(child, def, data);
            }
        }
    }

    fn event_at(
        &self,
        start: usize,
        end: usize,
        line: usize,
    ) -> Result<CustomEvent, CustomXmlError> {
        let fragment = &self.text[start..end];
        let element =
            dom::parse(fragment).map_err(|(off, message)| CustomXmlError::MalformedRecord {
                path: self.path.clone(),
                line: line_of(&self.text, start + off.min(fragment.len())),
                element: self.record.name.clone(),
                message,
            })?;
        let mut data = EventData::new(&self.definition.name);
        self.apply(&element, &self.record, &mut data);
        let (timestamp_ns, event_type, fields) = data
            .finish(&self.definition.outputs, self.output_format.as_ref())
            .map_err(|source| CustomXmlError::RecordPattern {
                path: self.path.clone(),
                line,
                source,
            })?;
        Ok(CustomEvent {
            timestamp_ns,
            event_type,
            fields,
            line,
            offset: start,
        })
    }
}

/// Iterator over the records of a [`CustomXmlTrace`].
pub struct CustomXmlEvents<'a> {
    trace: &'a CustomXmlTrace,
    next: Option<usize>,
    /// (offset, line) of the last record, to count lines incrementally.
    line: (usize, usize),
}

impl Iterator for CustomXmlEvents<'_> {
    type Item = Result<CustomEvent, CustomXmlError>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.next?;
        let text = &self.trace.text;
        let (from, line) = self.line;
        let line = line
            + text.as_bytes()[from..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
        self.line = (start, line);
        let end = read_element(text, start);
        self.next = next_record(text, &self.trace.record.name, end);
        Some(self.trace.event_at(start, end, line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_starts_skip_longer_names() {
        assert_eq!(
            index_of_element("event", "<event_type><events><event>", 0),
            Some(0)
        );
        assert_eq!(
            index_of_element("event", "<events><event2><event>", 0),
            Some(16)
        );
        assert_eq!(index_of_element("event", "x <event", 0), Some(2));
        assert_eq!(index_of_element("event", "<eventx", 0), None);
    }

    #[test]
    fn elements_end_where_trace_compass_ends_them() {
        let t = "<e a=\"x>y\"><f/><h>'t'</h></e> tail";
        assert_eq!(&t[..read_element(t, 0)], "<e a=\"x>y\"><f/><h>'t'</h></e>");
        // A comment opens a frame that needs two more '>' to close (Trace
        // Compass's reader): the record runs on.
        let t = "<e><!-- c --><h>t</h></e> tail";
        assert_eq!(read_element(t, 0), t.len());
        let t = "<e/><e/>";
        assert_eq!(read_element(t, 0), 4);
        // An unterminated record runs to the end of the text.
        assert_eq!(read_element("<e><f>", 0), 6);
    }

    #[test]
    fn flattening_matches_trace_compass() {
        let e = dom::parse(
            "<r> lead <a> x </a><b/><c><d>1</d><e>2</e></c><!--k--><f><![CDATA[z]]></f></r>",
        )
        .unwrap();
        let mut s = String::new();
        flatten(&e, &mut s);
        assert_eq!(s, "leada:x | b | c [ d:1 | e:2 ] | f [  ]");
    }
}
