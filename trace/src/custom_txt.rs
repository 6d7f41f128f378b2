//! Trace Compass *custom text parser* traces: a [`CustomTxtDefinition`] (read from
//! a `CustomTxtTraceDefinitionList` file) describes records as a first line
//! matched by a regular expression, optionally followed by child lines with
//! cardinalities; capture groups become event fields. [`CustomTxtTrace`] applies
//! it to a text log and yields [`CustomEvent`]s (the type shared with
//! [`crate::custom_xml`]).
//!
//! The behaviour follows Trace Compass's `CustomTxtTraceDefinition`,
//! `CustomTxtTrace` and `CustomTxtEvent`: a record starts at a line fully matched
//! by one of the definition's top-level `InputLine`s (tried in order); the lines
//! after it are matched against the expected child lines (respecting `min`/`max`
//! cardinalities), lines that match nothing are skipped; a record ends where the
//! next record starts once its mandatory lines have been seen. A last record
//! missing mandatory lines is dropped. Captured values are trimmed; empty ones
//! are ignored. Fields, actions, time stamps and event types are those of
//! [`crate::custom_xml`].
//!
//! Differences: regular expressions use Rust's `regex` syntax, which has no
//! look-around or back-references (a definition using them is refused with its
//! line, where Trace Compass would accept it); an `InputLine` without
//! `Cardinality` counts as exactly one (Trace Compass fails on it as a child line).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::custom_time::{PatternError, TimestampFormat};
use crate::custom_xml::{
    definition_list, dom, find_definition, line_of, read_text, tag_and_name, CustomEvent,
    CustomXmlError, DefinitionListError, EventData, InputData, OutputColumn, Tag,
};

const DEFINITION_LIST: &str = "CustomTxtTraceDefinitionList";
/// Category of definitions that do not name one.
pub const DEFAULT_CATEGORY: &str = "Custom Text";
/// Unbounded cardinality, as Trace Compass writes it.
pub const INF: i32 = i32::MAX;

#[derive(Debug, thiserror::Error)]
pub enum CustomTxtError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: binary data (NUL byte at offset {offset}); not a text file")]
    NotText { path: PathBuf, offset: usize },
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
    #[error("definition {name:?} has no InputLine")]
    NoInputLine { name: String },
    #[error("definition {name:?}: {source}")]
    BadPattern {
        name: String,
        #[source]
        source: PatternError,
    },
    #[error("{path}:{line}: time stamp pattern of the record: {source}")]
    RecordPattern {
        path: PathBuf,
        line: usize,
        #[source]
        source: PatternError,
    },
}

impl DefinitionListError for CustomTxtError {
    fn xml(path: &Path, line: usize, message: String) -> Self {
        CustomTxtError::Xml {
            path: path.to_path_buf(),
            line,
            message,
        }
    }
    fn not_a_list(path: &Path, root: String) -> Self {
        CustomTxtError::NotADefinitionList {
            path: path.to_path_buf(),
            root,
        }
    }
    fn not_found(path: &Path, category: &str, name: &str) -> Self {
        CustomTxtError::DefinitionNotFound {
            path: path.to_path_buf(),
            category: category.to_string(),
            name: name.to_string(),
        }
    }
}

fn text_of(path: &Path) -> Result<String, CustomTxtError> {
    read_text(path).map_err(|e| match e {
        CustomXmlError::Io { path, source } => CustomTxtError::Io { path, source },
        CustomXmlError::NotText { path, offset } => CustomTxtError::NotText { path, offset },
        other => CustomTxtError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    })
}

/// How many times a line may repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cardinality {
    pub min: i32,
    pub max: i32,
}

#[derive(Debug, Clone)]
pub struct InputLine {
    pub cardinality: Cardinality,
    /// The regular expression as written in the definition.
    pub regex: String,
    /// The same, anchored to match whole lines (Java's `matches()`).
    matcher: Regex,
    pub event_type: Option<String>,
    /// One per capture group, in order.
    pub columns: Vec<InputData>,
    pub children: Vec<InputLine>,
}

#[derive(Debug, Clone)]
pub struct CustomTxtDefinition {
    pub category: String,
    pub name: String,
    pub timestamp_output_format: String,
    /// The top-level lines; a record starts with one of them.
    pub inputs: Vec<InputLine>,
    pub outputs: Vec<OutputColumn>,
}

struct DefinitionReader<'a> {
    path: &'a Path,
    text: &'a str,
}

impl DefinitionReader<'_> {
    fn invalid(&self, e: &dom::Element, reason: String) -> CustomTxtError {
        CustomTxtError::InvalidDefinition {
            path: self.path.to_path_buf(),
            line: line_of(self.text, e.offset),
            reason,
        }
    }

    /// None for a line Trace Compass drops (an unreadable cardinality).
    fn input_line(&self, e: &dom::Element) -> Result<Option<InputLine>, CustomTxtError> {
        let mut cardinality = Cardinality { min: 1, max: 1 };
        let mut regex: Option<(String, &dom::Element)> = None;
        let mut event_type = None;
        let mut columns = Vec::new();
        let mut children = Vec::new();
        for child in e.child_elements() {
            match child.name.as_str() {
                "Cardinality" => {
                    let (min, max) = (
                        child.attribute("min").parse(),
                        child.attribute("max").parse(),
                    );
                    match (min, max) {
                        (Ok(min), Ok(max)) => cardinality = Cardinality { min, max },
                        _ => return Ok(None),
                    }
                }
                "RegEx" => regex = Some((child.text_content(), child)),
                "EventType" => event_type = Some(child.text_content()),
                "InputData" => {
                    let (tag, name) = tag_and_name(child, "tag", "name");
                    let raw = child.attribute("action");
                    let action = raw.parse::<i32>().map_err(|_| {
                        self.invalid(
                            child,
                            format!("<InputData name={name:?}>: action {raw:?} is not a number"),
                        )
                    })?;
                    columns.push(InputData {
                        tag,
                        name,
                        action,
                        format: child.attribute("format").to_string(),
                    });
                }
                "InputLine" => {
                    if let Some(l) = self.input_line(child)? {
                        children.push(l);
                    }
                }
                _ => {}
            }
        }
        let Some((regex, at)) = regex else {
            return Err(self.invalid(e, "<InputLine> without <RegEx>".into()));
        };
        let matcher = Regex::new(&format!("^(?:{regex})$"))
            .map_err(|err| self.invalid(at, format!("regular expression {regex:?}: {err}")))?;
        Ok(Some(InputLine {
            cardinality,
            regex,
            matcher,
            event_type,
            columns,
            children,
        }))
    }

    fn definition(&self, e: &dom::Element) -> Result<Option<CustomTxtDefinition>, CustomTxtError> {
        let category = match e.attribute("category") {
            "" => DEFAULT_CATEGORY.to_string(),
            c => c.to_string(),
        };
        let name = e.attribute("name").to_string();
        if name.is_empty() {
            return Ok(None);
        }
        let mut def = CustomTxtDefinition {
            category,
            name,
            timestamp_output_format: String::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        for child in e.child_elements() {
            match child.name.as_str() {
                "TimeStampOutputFormat" => def.timestamp_output_format = child.text_content(),
                "InputLine" => {
                    if let Some(l) = self.input_line(child)? {
                        def.inputs.push(l);
                    }
                }
                "OutputColumn" => {
                    let (tag, name) = tag_and_name(child, "tag", "name");
                    def.outputs.push(OutputColumn { tag, name });
                }
                _ => {}
            }
        }
        Ok(Some(def))
    }
}

impl CustomTxtDefinition {
    /// Every definition of a `CustomTxtTraceDefinitionList` file, in file order
    /// (unnamed definitions are left out, as in Trace Compass).
    pub fn load_all(path: &Path) -> Result<Vec<CustomTxtDefinition>, CustomTxtError> {
        let text = text_of(path)?;
        Self::parse_all(&text, path)
    }

    /// [`Self::load_all`] on text already read; `path` names it in errors.
    pub fn parse_all(text: &str, path: &Path) -> Result<Vec<CustomTxtDefinition>, CustomTxtError> {
        let reader = DefinitionReader { path, text };
        definition_list(text, path, DEFINITION_LIST, |e| reader.definition(e))
    }

    /// The definition `category`/`name` of a definitions file.
    pub fn load(path: &Path, category: &str, name: &str) -> Result<Self, CustomTxtError> {
        find_definition(Self::load_all(path)?, path, category, name, |d| {
            (&d.category, &d.name)
        })
    }

    /// `custom.txt.trace:<category>:<name>`, the id analyses use in `traceType`.
    pub fn trace_type_id(&self) -> String {
        format!("custom.txt.trace:{}:{}", self.category, self.name)
    }
}

/// The input lines flattened into an arena with Trace Compass's links.
struct Node {
    line: InputLine,
    parent: Option<usize>,
    next: Option<usize>,
    first_child: Option<usize>,
    level: usize,
}

fn flatten(
    lines: &[InputLine],
    parent: Option<usize>,
    level: usize,
    nodes: &mut Vec<Node>,
) -> Vec<usize> {
    let mut ids = Vec::with_capacity(lines.len());
    for l in lines {
        let id = nodes.len();
        nodes.push(Node {
            line: InputLine {
                children: Vec::new(),
                ..l.clone()
            },
            parent,
            next: None,
            first_child: None,
            level,
        });
        let kids = flatten(&l.children, Some(id), level + 1, nodes);
        nodes[id].first_child = kids.first().copied();
        ids.push(id);
    }
    // Siblings are chained, except top-level lines (each starts a record).
    if parent.is_some() {
        for w in ids.windows(2) {
            nodes[w[0]].next = Some(w[1]);
        }
    }
    ids
}

/// A log read with a custom text definition.
pub struct CustomTxtTrace {
    definition: CustomTxtDefinition,
    nodes: Vec<Node>,
    roots: Vec<usize>,
    output_format: Option<TimestampFormat>,
    path: PathBuf,
    text: String,
}

impl CustomTxtTrace {
    pub fn open(definition: &CustomTxtDefinition, path: &Path) -> Result<Self, CustomTxtError> {
        let text = text_of(path)?;
        Self::from_text(definition, path, text)
    }

    pub fn from_text(
        definition: &CustomTxtDefinition,
        path: &Path,
        text: String,
    ) -> Result<Self, CustomTxtError> {
        if definition.inputs.is_empty() {
            return Err(CustomTxtError::NoInputLine {
                name: definition.name.clone(),
            });
        }
        let bad = |source| CustomTxtError::BadPattern {
            name: definition.name.clone(),
            source,
        };
        let mut nodes = Vec::new();
        let roots = flatten(&definition.inputs, None, 0, &mut nodes);
        for n in &nodes {
            for c in n.line.columns.iter().filter(|c| c.tag == Tag::Timestamp) {
                TimestampFormat::new(&c.format).map_err(bad)?;
            }
        }
        let output_format = match definition.timestamp_output_format.as_str() {
            "" => None,
            f => Some(TimestampFormat::new(f).map_err(bad)?),
        };
        Ok(CustomTxtTrace {
            definition: definition.clone(),
            nodes,
            roots,
            output_format,
            path: path.to_path_buf(),
            text,
        })
    }

    pub fn definition(&self) -> &CustomTxtDefinition {
        &self.definition
    }

    /// How well `path` fits `definition`, as Trace Compass rates it when it
    /// picks a trace type: over the first 100 lines, 100 × (sum over lines
    /// matching a first line with g groups of 1 + g/(g+1)) / lines read, so a
    /// perfect fit with groups exceeds 100. 0 for binary files; errors only
    /// when the file cannot be read.
    pub fn confidence(
        definition: &CustomTxtDefinition,
        path: &Path,
    ) -> Result<u32, CustomTxtError> {
        let text = match text_of(path) {
            Ok(t) => t,
            Err(CustomTxtError::NotText { .. }) => return Ok(0),
            Err(e) => return Err(e),
        };
        let (mut matches, mut confidence) = (0.0f64, 0u32);
        for (i, line) in text.lines().take(100).enumerate() {
            if let Some(m) = definition.inputs.iter().find(|l| l.matcher.is_match(line)) {
                let groups = (m.matcher.captures_len() - 1) as f64;
                matches += 1.0 + groups / (groups + 1.0);
            }
            confidence = (100.0 * matches / (i + 1) as f64) as u32;
        }
        Ok(confidence)
    }

    pub fn trace_type_id(&self) -> String {
        self.definition.trace_type_id()
    }

    pub fn events(&self) -> CustomTxtEvents<'_> {
        CustomTxtEvents {
            trace: self,
            pos: 0,
            line_no: 0,
            first: None,
            done: false,
        }
    }

    pub fn read_all(&self) -> Result<Vec<CustomEvent>, CustomTxtError> {
        self.events().collect()
    }

    fn min(&self, id: usize) -> i32 {
        self.nodes[id].line.cardinality.min
    }

    fn max(&self, id: usize) -> i32 {
        self.nodes[id].line.cardinality.max
    }

    /// Trace Compass's `getNextInputs`: the lines that may come after `id`.
    fn next_inputs(&self, id: usize, count: &HashMap<usize, i32>) -> Vec<usize> {
        let mut out = Vec::new();
        let mut next = self.nodes[id].next;
        while let Some(n) = next {
            out.push(n);
            if self.min(n) > 0 {
                return out;
            }
            next = self.nodes[n].next;
        }
        if let Some(p) = self.nodes[id].parent.filter(|&p| self.nodes[p].level > 0) {
            let parent_count = count.get(&p).copied().unwrap_or(0);
            if parent_count < self.max(p) {
                out.push(p);
            }
            if parent_count < self.min(p) {
                return out;
            }
            out.extend(self.next_inputs(p, count));
        }
        out
    }

    fn first_line_match(&self, line: &str) -> Option<usize> {
        self.roots
            .iter()
            .copied()
            .find(|&r| self.nodes[r].line.matcher.is_match(line))
    }

    fn process(&self, id: usize, line: &str, data: &mut EventData) {
        let input = &self.nodes[id].line;
        if let Some(t) = &input.event_type {
            data.put_event_type(t);
        }
        let Some(caps) = input.matcher.captures(line) else {
            return;
        };
        let groups = caps.len() - 1;
        for (i, column) in input.columns.iter().enumerate() {
            if i >= groups {
                break;
            }
            if let Some(m) = caps.get(i + 1) {
                data.input(crate::custom_xml::java_trim(m.as_str()), column);
            }
        }
    }
}

/// Iterator over the records of a [`CustomTxtTrace`].
pub struct CustomTxtEvents<'a> {
    trace: &'a CustomTxtTrace,
    /// Byte offset of the next unread line, and its 0-based number.
    pos: usize,
    line_no: usize,
    /// The first line of the next record: (offset, line number, root input).
    first: Option<(usize, usize, usize)>,
    done: bool,
}

impl<'a> CustomTxtEvents<'a> {
    /// The next line: (offset, 0-based number, text without the line break).
    fn next_line(&mut self) -> Option<(usize, usize, &'a str)> {
        let text: &'a str = &self.trace.text;
        if self.pos >= text.len() {
            return None;
        }
        let start = self.pos;
        let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        self.pos = end + 1;
        let n = self.line_no;
        self.line_no += 1;
        let line = text[start..end]
            .strip_suffix('\r')
            .unwrap_or(&text[start..end]);
        Some((start, n, line))
    }

    /// Trace Compass's level pruning of the count map.
    fn prune(trace: &CustomTxtTrace, count: &mut HashMap<usize, i32>, level: usize) {
        count.retain(|&k, _| trace.nodes[k].level <= level);
    }

    /// After `current` matched: descend to its first child, or move on when it
    /// reached its maximum count.
    fn advance(
        trace: &CustomTxtTrace,
        current: usize,
        count: &mut HashMap<usize, i32>,
    ) -> Option<usize> {
        if let Some(child) = trace.nodes[current].first_child {
            count.insert(child, 0);
            return Some(child);
        }
        if count[&current] >= trace.max(current) {
            let next = trace.next_inputs(current, count);
            let &n = next.first()?;
            count.entry(n).or_insert(0);
            Self::prune(trace, count, trace.nodes[n].level);
            return Some(n);
        }
        Some(current)
    }
}

impl Iterator for CustomTxtEvents<'_> {
    type Item = Result<CustomEvent, CustomTxtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let trace = self.trace;
        if self.first.is_none() {
            while let Some((off, n, line)) = self.next_line() {
                if let Some(root) = trace.first_line_match(line) {
                    self.first = Some((off, n, root));
                    break;
                }
            }
        }
        let (offset, first_no, root) = self.first.take()?;
        let first_end = trace.text[offset..]
            .find('\n')
            .map_or(trace.text.len(), |i| offset + i);
        let first_line = trace.text[offset..first_end].trim_end_matches('\r');
        let mut data = EventData::new(&trace.definition.name);
        trace.process(root, first_line, &mut data);
        let mut count: HashMap<usize, i32> = HashMap::new();
        let mut current = trace.nodes[root].first_child;
        if let Some(c) = current {
            count.insert(c, 0);
        }
        let mut complete = false;
        while let Some((off, n, line)) = self.next_line() {
            let Some(cur) = current else {
                if let Some(r) = trace.first_line_match(line) {
                    self.first = Some((off, n, r));
                    complete = true;
                    break;
                }
                continue;
            };
            let mut processed = false;
            if count[&cur] >= trace.min(cur) {
                let nexts = trace.next_inputs(cur, &count);
                if !matches!(nexts.last(), Some(&l) if trace.min(l) != 0) {
                    if let Some(r) = trace.first_line_match(line) {
                        self.first = Some((off, n, r));
                        complete = true;
                        break;
                    }
                }
                for input in nexts {
                    if trace.nodes[input].line.matcher.is_match(line) {
                        trace.process(input, line, &mut data);
                        *count.entry(input).or_insert(0) += 1;
                        Self::prune(trace, &mut count, trace.nodes[input].level);
                        current = Self::advance(trace, input, &mut count);
                        processed = true;
                        break;
                    }
                }
            }
            if !processed {
                if let Some(cur) = current {
                    if trace.nodes[cur].line.matcher.is_match(line) {
                        trace.process(cur, line, &mut data);
                        *count.entry(cur).or_insert(0) += 1;
                        current = Self::advance(trace, cur, &mut count);
                    }
                }
            }
        }
        if !complete {
            // End of the log: a record missing mandatory lines is dropped, and
            // reading stops.
            self.done = true;
            if count.iter().any(|(&k, &c)| c < trace.min(k)) {
                return None;
            }
        }
        let line = first_no + 1;
        Some(
            data.finish(&trace.definition.outputs, trace.output_format.as_ref())
                .map(|(timestamp_ns, event_type, fields)| CustomEvent {
                    timestamp_ns,
                    event_type,
                    fields,
                    line,
                    offset,
                })
                .map_err(|source| CustomTxtError::RecordPattern {
                    path: trace.path.clone(),
                    line,
                    source,
                }),
        )
    }
}
