//! A small element tree with line numbers, read with quick-xml. The compiler
//! walks it once; nothing walks XML per event.

use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::XmlError;

/// One XML element: name, attributes in document order, child elements, text.
#[derive(Clone, Debug, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Concatenated character data directly inside this element (trimmed).
    pub text: String,
    /// 1-based line of the start tag.
    pub line: u32,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Direct children with this exact tag name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    /// Every descendant (document order) with this name, self included.
    pub fn descendants_named<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        if self.name == name {
            out.push(self);
        }
        for c in &self.children {
            c.descendants_named(name, out);
        }
    }
}

/// Deeper documents are refused (analyses nest a few dozen levels at most), so
/// recursive passes over the tree cannot exhaust the stack.
pub const MAX_DEPTH: usize = 256;

fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(
        bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1),
    );
    v
}

/// Parses a whole document; `file` only names it in errors.
pub fn parse(bytes: &[u8], file: &Path) -> Result<Element, XmlError> {
    let starts = line_starts(bytes);
    let line_at = |pos: u64| -> u32 {
        let pos = usize::try_from(pos).unwrap_or(usize::MAX);
        u32::try_from(starts.partition_point(|&s| s <= pos)).unwrap_or(u32::MAX)
    };
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let malformed = |line: u32, message: String| XmlError::Malformed {
        file: file.to_path_buf(),
        line,
        message,
    };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let pos = reader.buffer_position();
        let line = line_at(pos);
        let ev = reader
            .read_event()
            .map_err(|e| malformed(line_at(reader.buffer_position()), e.to_string()))?;
        match ev {
            Event::Start(s) | Event::Empty(s) if root.is_some() => {
                let _ = s;
                return Err(malformed(line, "content after the root element".into()));
            }
            Event::Start(s) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(
                        line,
                        format!("elements nested deeper than {MAX_DEPTH}"),
                    ));
                }
                stack.push(element(&s, line, file)?)
            }
            Event::Empty(s) => {
                let el = element(&s, line, file)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| malformed(line, "unexpected end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| malformed(line, e.to_string()))?
                    .into_owned();
                match stack.last_mut() {
                    Some(el) => {
                        let trimmed = text.trim();
                        if !trimmed.is_empty() {
                            el.text.push_str(trimmed);
                        }
                    }
                    None if text.trim().is_empty() => {}
                    None => return Err(malformed(line, "text outside the root element".into())),
                }
            }
            Event::CData(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(
            line_at(reader.buffer_position()),
            format!("<{}> (line {}) is not closed", open.name, open.line),
        ));
    }
    root.ok_or_else(|| malformed(1, "no root element".into()))
}

fn element(s: &BytesStart<'_>, line: u32, file: &Path) -> Result<Element, XmlError> {
    let name = String::from_utf8_lossy(s.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in s.attributes() {
        let a = a.map_err(|e| XmlError::Malformed {
            file: file.to_path_buf(),
            line,
            message: format!("<{name}>: {e}"),
        })?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|e| XmlError::Malformed {
                file: file.to_path_buf(),
                line,
                message: format!("<{name} {key}>: {e}"),
            })?
            .into_owned();
        if attrs.iter().any(|(k, _)| *k == key) {
            return Err(XmlError::Malformed {
                file: file.to_path_buf(),
                line,
                message: format!("<{name}> repeats attribute {key}"),
            });
        }
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
        line,
    })
}
