//! A parser of Python literal text (`repr()` of dicts, lists, strings, numbers,
//! `None`/`True`/`False`), as written by the thesis's OpenStack instrumentation
//! into log messages (`lttng_trace:{'event_type':'...', ...}`).
//!
//! It is lenient where the real traces need it and strict elsewhere: strings may
//! be single- or double-quoted with an optional `u`/`b`/`r` prefix and backslash
//! escapes; a value may also be an unquoted token (the real Nova traces have
//! `'event_type':scheduler.select_destinations.start,`), ended by one of
//! `, : ] } / \ " [ { ; = #` or a control character, then trimmed (the rule of
//! `org.json`'s tokenizer; `)` also ends one, for tuples, and `'`, so that a
//! missing comma is an error). Like `org.json`, a
//! token may hold spaces: `[1 2]` is a list of one bare token `1 2`. Truncated or otherwise broken input is a
//! [`PyDictError`] naming the byte offset; nothing is ever evaluated.
//! Strings without escapes borrow from the input (no allocation).
//!
//! Two ways to read a text, through one parser: [`parse`] builds the whole value,
//! [`scan_dict`] checks a dict just as strictly (same errors at the same offsets)
//! but keeps only the values of a few named keys, borrowed, without building
//! anything (the per-event path of the OpenStack providers).

use std::borrow::Cow;

/// A parsed Python literal.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue<'a> {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Quoted string (escapes resolved).
    Str(Cow<'a, str>),
    /// Unquoted token that is not `None`/`True`/`False` or a number.
    Bare(&'a str),
    List(Vec<PyValue<'a>>),
    /// Key/value pairs in text order (keys rendered as text, see [`PyValue::text`]).
    Dict(Vec<(Cow<'a, str>, PyValue<'a>)>),
}

impl<'a> PyValue<'a> {
    /// The value as text, as the thesis code reads it: strings and bare tokens as
    /// they are, `None` as `"None"`, booleans and numbers in Python's spelling;
    /// `None` for containers.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        match self {
            PyValue::None => Some(Cow::Borrowed("None")),
            PyValue::Bool(true) => Some(Cow::Borrowed("True")),
            PyValue::Bool(false) => Some(Cow::Borrowed("False")),
            PyValue::Int(i) => Some(Cow::Owned(i.to_string())),
            PyValue::Float(f) => Some(Cow::Owned(f.to_string())),
            PyValue::Str(s) => Some(s.clone()),
            PyValue::Bare(s) => Some(Cow::Borrowed(s)),
            PyValue::List(_) | PyValue::Dict(_) => None,
        }
    }

    /// Value of `key` in a dict (first occurrence); `None` if not a dict or absent.
    pub fn get(&self, key: &str) -> Option<&PyValue<'a>> {
        match self {
            PyValue::Dict(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Text of `key` in a dict (see [`PyValue::text`]).
    pub fn get_text(&self, key: &str) -> Option<Cow<'a, str>> {
        self.get(key).and_then(PyValue::text)
    }
}

/// Why a text is not a Python literal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PyDictError {
    #[error("at byte {offset}: input ends inside {inside}")]
    Truncated { offset: usize, inside: &'static str },
    #[error("at byte {offset}: expected {expected}, found {found:?}")]
    Unexpected {
        offset: usize,
        expected: &'static str,
        found: char,
    },
    #[error("at byte {offset}: bad escape sequence")]
    BadEscape { offset: usize },
    #[error("at byte {offset}: empty value")]
    Empty { offset: usize },
    #[error("at byte {offset}: nesting deeper than {MAX_DEPTH}")]
    TooDeep { offset: usize },
    #[error("at byte {offset}: text after the value")]
    Trailing { offset: usize },
}

/// Containers nested deeper than this are refused (no stack overflow on hostile input).
pub const MAX_DEPTH: usize = 64;

/// Parses `text` as one literal, allowing only whitespace after it.
pub fn parse(text: &str) -> Result<PyValue<'_>, PyDictError> {
    let (v, end) = parse_prefix(text)?;
    let mut p = Parser { s: text, pos: end };
    p.skip_ws();
    if p.pos < text.len() {
        return Err(PyDictError::Trailing { offset: p.pos });
    }
    Ok(v)
}

/// Parses one literal at the start of `text` (after whitespace); returns it and
/// the byte offset just past it.
pub fn parse_prefix(text: &str) -> Result<(PyValue<'_>, usize), PyDictError> {
    let mut p = Parser { s: text, pos: 0 };
    let v = p.value::<Build>(0)?;
    Ok((v, p.pos))
}

/// A value kept by [`scan_dict`]: a scalar as written (borrowed) or the mark
/// of a container (checked, not built).
#[derive(Clone, Debug, PartialEq)]
pub enum Field<'a> {
    /// Quoted string (escapes resolved).
    Str(Cow<'a, str>),
    /// Unquoted token (`None`, a number, a bare word), trimmed.
    Token(&'a str),
    /// A list, tuple or dict.
    Container,
}

impl<'a> Field<'a> {
    /// The text [`PyValue::text`] gives for the same value (`None` for containers).
    pub fn text(&self) -> Option<Cow<'a, str>> {
        match self {
            Field::Str(s) => Some(s.clone()),
            Field::Token(t) => match classify(t) {
                // Most tokens read back as themselves: no allocation for them.
                PyValue::Bare(t) => Some(Cow::Borrowed(t)),
                v => v.text(),
            },
            Field::Container => None,
        }
    }
}

/// What [`scan_dict`] found at the start of a text.
#[derive(Clone, Debug, PartialEq)]
pub enum Scanned<'a, const N: usize> {
    /// A dict: the value of each asked key (first occurrence), in the order asked.
    Dict([Option<Field<'a>>; N]),
    /// A well-formed literal that is not a dict.
    NotADict,
}

/// Checks the literal at the start of `text` (after whitespace) as [`parse_prefix`]
/// does, with the same errors, and returns the values of `keys` when it is a
/// dict. Nothing is allocated unless a kept string or a key has escapes (or a key
/// is a number).
pub fn scan_dict<'a, const N: usize>(
    text: &'a str,
    keys: [&str; N],
) -> Result<Scanned<'a, N>, PyDictError> {
    let mut p = Parser { s: text, pos: 0 };
    p.skip_ws();
    if p.peek() != Some('{') {
        p.value::<Check>(0)?;
        return Ok(Scanned::NotADict);
    }
    if let Some(found) = flat_dict(text, p.pos, &keys) {
        return Ok(Scanned::Dict(found));
    }
    let mut found: [Option<Field<'a>>; N] = std::array::from_fn(|_| None);
    p.dict::<Check>(0, |key, value| {
        if let Some(i) = key_index(&keys, key.as_bytes()) {
            found[i].get_or_insert(value);
        }
    })?;
    Ok(Scanned::Dict(found))
}

/// Which of `keys` `key` is. Compared inline: most keys differ in length or in
/// their first byte, and a `memcmp` call costs more than such a key.
#[inline(always)]
fn key_index(keys: &[&str], key: &[u8]) -> Option<usize> {
    keys.iter()
        .position(|k| k.len() == key.len() && k.as_bytes().iter().zip(key).all(|(x, y)| x == y))
}

#[inline(always)]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// Index of the `quote` that closes a string whose text starts at `from`; `None`
/// when a backslash comes first or the text ends.
#[inline(always)]
fn closing_quote(b: &[u8], from: usize, quote: u8) -> Option<usize> {
    let i = from + find_either(b.get(from..)?, quote, b'\\')?;
    (b[i] == quote).then_some(i)
}

/// Bytes of a bare token in [`flat_dict`]: 0 continues it, 1 ends it (as
/// [`ends_token`]), 2 is not ASCII (the flat path gives up). One load per byte
/// instead of fourteen comparisons.
static TOKEN_BYTE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = if c >= 0x80 {
            2
        } else if c < 0x20 || c == 0x7f {
            1
        } else {
            match c as u8 {
                b',' | b':' | b']' | b'}' | b')' | b'\'' | b'/' | b'\\' | b'"' | b'[' | b'{'
                | b';' | b'=' | b'#' => 1,
                _ => 0,
            }
        };
        c += 1;
    }
    t
};

/// The shape of nearly every thesis payload, read in one pass over the bytes: a
/// dict (its `{` at `open`) of quoted keys and values without escapes or prefixes,
/// or ASCII bare values. `None` when the text is anything else, well-formed or
/// not: the [`Parser`] then reads it from the start (so errors and nested values
/// are its business, and both give the same result where this one answers).
fn flat_dict<'a, const N: usize>(
    s: &'a str,
    open: usize,
    keys: &[&str; N],
) -> Option<[Option<Field<'a>>; N]> {
    let b = s.as_bytes();
    let mut found: [Option<Field<'a>>; N] = std::array::from_fn(|_| None);
    let mut i = open + 1;
    loop {
        i = skip_ws(b, i);
        let q = *b.get(i)?;
        if q == b'}' {
            return Some(found);
        }
        if q != b'\'' && q != b'"' {
            return None;
        }
        let end = closing_quote(b, i + 1, q)?;
        // Known before the value: values of other keys are only stepped over.
        let want = key_index(keys, &b[i + 1..end]).filter(|&k| found[k].is_none());
        i = skip_ws(b, end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let c = *b.get(i)?;
        if c == b'\'' || c == b'"' {
            let end = closing_quote(b, i + 1, c)?;
            if let Some(k) = want {
                found[k] = Some(Field::Str(Cow::Borrowed(&s[i + 1..end])));
            }
            i = end + 1;
        } else if matches!(c, b'{' | b'[' | b'(') {
            return None;
        } else {
            let begin = i;
            while let Some(&c) = b.get(i) {
                match TOKEN_BYTE[c as usize] {
                    0 => i += 1,
                    1 => break,
                    _ => return None,
                }
            }
            // ASCII, without control characters: only spaces to trim.
            let token = s[begin..i].trim_matches(' ');
            if token.is_empty() {
                return None;
            }
            if let Some(k) = want {
                found[k] = Some(Field::Token(token));
            }
        }
        i = skip_ws(b, i);
        match *b.get(i)? {
            b',' => i += 1,
            b'}' => {}
            _ => return None,
        }
    }
}

/// What the parser does with what it reads: build [`PyValue`]s ([`Build`]) or
/// only check the text, keeping scalars as written ([`Check`]). One set of
/// loops for both, so both accept and refuse the same texts.
trait Mode<'a> {
    type Value;
    fn string(s: Cow<'a, str>) -> Self::Value;
    fn token(t: &'a str) -> Self::Value;
    /// Text of a dict key; `None` for a container (not a valid key).
    fn key(v: Self::Value) -> Option<Cow<'a, str>>;
    fn dict(p: &mut Parser<'a>, depth: usize) -> Result<Self::Value, PyDictError>;
    fn seq(p: &mut Parser<'a>, depth: usize, close: char) -> Result<Self::Value, PyDictError>;
}

struct Build;

impl<'a> Mode<'a> for Build {
    type Value = PyValue<'a>;
    fn string(s: Cow<'a, str>) -> PyValue<'a> {
        PyValue::Str(s)
    }
    fn token(t: &'a str) -> PyValue<'a> {
        classify(t)
    }
    fn key(v: PyValue<'a>) -> Option<Cow<'a, str>> {
        match v {
            PyValue::Str(s) => Some(s),
            other => other.text(),
        }
    }
    fn dict(p: &mut Parser<'a>, depth: usize) -> Result<PyValue<'a>, PyDictError> {
        // Thesis payloads have 3 to 8 keys: one allocation instead of three.
        let mut pairs = Vec::with_capacity(8);
        p.dict::<Build>(depth, |k, v| pairs.push((k, v)))?;
        Ok(PyValue::Dict(pairs))
    }
    fn seq(p: &mut Parser<'a>, depth: usize, close: char) -> Result<PyValue<'a>, PyDictError> {
        let mut items = Vec::new();
        p.seq::<Build>(depth, close, |v| items.push(v))?;
        Ok(PyValue::List(items))
    }
}

struct Check;

impl<'a> Mode<'a> for Check {
    type Value = Field<'a>;
    fn string(s: Cow<'a, str>) -> Field<'a> {
        Field::Str(s)
    }
    fn token(t: &'a str) -> Field<'a> {
        Field::Token(t)
    }
    fn key(v: Field<'a>) -> Option<Cow<'a, str>> {
        match v {
            Field::Str(s) => Some(s),
            other => other.text(),
        }
    }
    fn dict(p: &mut Parser<'a>, depth: usize) -> Result<Field<'a>, PyDictError> {
        p.dict::<Check>(depth, |_, _| {})?;
        Ok(Field::Container)
    }
    fn seq(p: &mut Parser<'a>, depth: usize, close: char) -> Result<Field<'a>, PyDictError> {
        p.seq::<Check>(depth, close, |_| {})?;
        Ok(Field::Container)
    }
}

/// A bare token as a value: Python's constants, a number, or the token itself.
fn classify(t: &str) -> PyValue<'_> {
    match t {
        "None" => PyValue::None,
        "True" => PyValue::Bool(true),
        "False" => PyValue::Bool(false),
        t => {
            if let Ok(i) = t.parse::<i64>() {
                PyValue::Int(i)
            } else if t.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
                && t.parse::<f64>().is_ok()
            {
                PyValue::Float(t.parse().unwrap_or(0.0))
            } else {
                PyValue::Bare(t)
            }
        }
    }
}

/// Index of the first `a` or `b` in `hay`, eight bytes at a time (strings in the
/// payloads are 10 to 40 bytes: a word loop beats a per-byte one and needs no
/// dependency).
#[inline(always)]
fn find_either(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (ra, rb) = (LO * a as u64, LO * b as u64);
    let mut at = 0;
    while let Some(c) = hay.get(at..at + 8) {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(c);
        let w = u64::from_le_bytes(bytes);
        let (x, y) = (w ^ ra, w ^ rb);
        // Zero bytes of x or y; the lowest flag is exact (borrows only go up).
        let m = ((x.wrapping_sub(LO) & !x) | (y.wrapping_sub(LO) & !y)) & HI;
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    hay[at..]
        .iter()
        .position(|&c| c == a || c == b)
        .map(|i| at + i)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

fn ends_token(c: char) -> bool {
    matches!(
        c,
        ',' | ':' | ']' | '}' | ')' | '\'' | '/' | '\\' | '"' | '[' | '{' | ';' | '=' | '#'
    ) || c.is_control()
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        // ASCII (nearly every byte of a payload) without UTF-8 decoding.
        match self.s.as_bytes().get(self.pos) {
            None => None,
            Some(&b) if b < 0x80 => Some(b as char),
            Some(_) => self.s[self.pos..].chars().next(),
        }
    }

    fn skip_ws(&mut self) {
        let bytes = self.s.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn value<M: Mode<'a>>(&mut self, depth: usize) -> Result<M::Value, PyDictError> {
        if depth > MAX_DEPTH {
            return Err(PyDictError::TooDeep { offset: self.pos });
        }
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(PyDictError::Truncated {
                offset: self.pos,
                inside: "a value",
            });
        };
        match c {
            '{' => M::dict(self, depth),
            '[' => M::seq(self, depth, ']'),
            '(' => M::seq(self, depth, ')'),
            '\'' | '"' => Ok(M::string(self.string()?)),
            'u' | 'U' | 'b' | 'B' | 'r' | 'R' if self.prefixed_string() => {
                Ok(M::string(self.string()?))
            }
            _ => Ok(M::token(self.bare()?)),
        }
    }

    /// Whether a string prefix (`u'`, `b"`, `r'`) starts here.
    fn prefixed_string(&self) -> bool {
        matches!(self.s.as_bytes().get(self.pos + 1), Some(b'\'' | b'"'))
    }

    /// Reads a dict (at its `{`), handing each key and value to `pair`.
    fn dict<M: Mode<'a>>(
        &mut self,
        depth: usize,
        mut pair: impl FnMut(Cow<'a, str>, M::Value),
    ) -> Result<(), PyDictError> {
        self.pos += 1; // '{'
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    return Err(PyDictError::Truncated {
                        offset: self.pos,
                        inside: "a dict",
                    })
                }
                Some('}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(_) => {}
            }
            let key_at = self.pos;
            let key = self.value::<M>(depth + 1)?;
            let Some(key) = M::key(key) else {
                return Err(PyDictError::Unexpected {
                    offset: key_at,
                    expected: "a key",
                    found: self.s[key_at..].chars().next().unwrap_or('?'),
                });
            };
            self.skip_ws();
            self.expect(':', "':' after a key", "a dict")?;
            let value = self.value::<M>(depth + 1)?;
            pair(key, value);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {}
                None => {
                    return Err(PyDictError::Truncated {
                        offset: self.pos,
                        inside: "a dict",
                    })
                }
                Some(c) => {
                    return Err(PyDictError::Unexpected {
                        offset: self.pos,
                        expected: "',' or '}'",
                        found: c,
                    })
                }
            }
        }
    }

    /// Reads a list or tuple (at its opening bracket), handing each item to `item`.
    fn seq<M: Mode<'a>>(
        &mut self,
        depth: usize,
        close: char,
        mut item: impl FnMut(M::Value),
    ) -> Result<(), PyDictError> {
        self.pos += 1;
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    return Err(PyDictError::Truncated {
                        offset: self.pos,
                        inside: "a list",
                    })
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(_) => {}
            }
            item(self.value::<M>(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {}
                None => {
                    return Err(PyDictError::Truncated {
                        offset: self.pos,
                        inside: "a list",
                    })
                }
                Some(c) => {
                    return Err(PyDictError::Unexpected {
                        offset: self.pos,
                        expected: "',' or the end of the list",
                        found: c,
                    })
                }
            }
        }
    }

    fn expect(
        &mut self,
        want: char,
        expected: &'static str,
        inside: &'static str,
    ) -> Result<(), PyDictError> {
        match self.peek() {
            Some(c) if c == want => {
                self.pos += 1;
                Ok(())
            }
            Some(c) => Err(PyDictError::Unexpected {
                offset: self.pos,
                expected,
                found: c,
            }),
            None => Err(PyDictError::Truncated {
                offset: self.pos,
                inside,
            }),
        }
    }

    fn string(&mut self) -> Result<Cow<'a, str>, PyDictError> {
        let bytes = self.s.as_bytes();
        let mut raw = false;
        while matches!(bytes[self.pos], b'u' | b'U' | b'b' | b'B' | b'r' | b'R') {
            raw |= matches!(bytes[self.pos], b'r' | b'R');
            self.pos += 1;
        }
        let quote = bytes[self.pos];
        self.pos += 1;
        let begin = self.pos;
        // Fast path: no backslash before the closing quote.
        let Some(i) = find_either(&bytes[begin..], quote, b'\\').map(|i| begin + i) else {
            return Err(PyDictError::Truncated {
                offset: bytes.len(),
                inside: "a string",
            });
        };
        if bytes[i] == quote {
            self.pos = i + 1;
            return Ok(Cow::Borrowed(&self.s[begin..i]));
        }
        let mut out = String::from(&self.s[begin..i]);
        self.pos = i;
        loop {
            let Some(c) = self.peek() else {
                return Err(PyDictError::Truncated {
                    offset: self.pos,
                    inside: "a string",
                });
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            if c as u32 == quote as u32 {
                return Ok(Cow::Owned(out));
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.peek() else {
                return Err(PyDictError::Truncated {
                    offset: self.pos,
                    inside: "a string",
                });
            };
            self.pos += e.len_utf8();
            if raw {
                out.push('\\');
                out.push(e);
                continue;
            }
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'v' => out.push('\x0b'),
                '\\' | '\'' | '"' => out.push(e),
                '\n' => {}
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex = self.s.get(self.pos..self.pos + n).ok_or(
                        if self.pos + n > self.s.len() {
                            PyDictError::Truncated {
                                offset: self.s.len(),
                                inside: "a string",
                            }
                        } else {
                            PyDictError::BadEscape { offset: at }
                        },
                    )?;
                    let code = u32::from_str_radix(hex, 16)
                        .ok()
                        .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                        .and_then(char::from_u32)
                        .ok_or(PyDictError::BadEscape { offset: at })?;
                    self.pos += n;
                    out.push(code);
                }
                // Python keeps unknown escapes as they are.
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    /// An unquoted token, trimmed (classified by the [`Mode`]).
    fn bare(&mut self) -> Result<&'a str, PyDictError> {
        let begin = self.pos;
        while let Some(c) = self.peek() {
            if ends_token(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        let token = self.s[begin..self.pos].trim();
        if token.is_empty() {
            return match self.peek() {
                None => Err(PyDictError::Truncated {
                    offset: self.pos,
                    inside: "a value",
                }),
                Some(c) if self.pos == begin => Err(PyDictError::Unexpected {
                    offset: self.pos,
                    expected: "a value",
                    found: c,
                }),
                Some(_) => Err(PyDictError::Empty { offset: begin }),
            };
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_thesis_nova_payload_with_an_unquoted_value() {
        let v = parse("{'event_type':scheduler.select_destinations.start,'vmname':'','host':'None','request_id':'req-1'}").unwrap();
        assert_eq!(
            v.get_text("event_type").as_deref(),
            Some("scheduler.select_destinations.start")
        );
        assert_eq!(v.get_text("vmname").as_deref(), Some(""));
        assert_eq!(v.get_text("host").as_deref(), Some("None"));
        assert!(v.get("missing").is_none());
    }

    #[test]
    fn parses_python_constants_numbers_and_nesting() {
        let v = parse(r#"{"a": None, 'b': True, 'c': False, 'd': -12, 'e': 1.5, 'f': [1, {'g': (2, 3)}], 7: 'x'}"#).unwrap();
        assert_eq!(v.get("a"), Some(&PyValue::None));
        assert_eq!(v.get("b"), Some(&PyValue::Bool(true)));
        assert_eq!(v.get("c"), Some(&PyValue::Bool(false)));
        assert_eq!(v.get("d"), Some(&PyValue::Int(-12)));
        assert_eq!(v.get("e"), Some(&PyValue::Float(1.5)));
        let PyValue::List(f) = v.get("f").unwrap() else {
            panic!("not a list")
        };
        assert_eq!(f[0], PyValue::Int(1));
        assert_eq!(
            f[1].get("g"),
            Some(&PyValue::List(vec![PyValue::Int(2), PyValue::Int(3)]))
        );
        assert_eq!(v.get_text("7").as_deref(), Some("x"));
        assert_eq!(v.get_text("a").as_deref(), Some("None"));
    }

    #[test]
    fn resolves_escapes_unicode_prefixes_and_raw_strings() {
        let v = parse(r#"{u'k\u00e9': u'caf\xe9 \'q\' "d" \n', 'r': r'a\nb', b"x": "it's", 'emoji': '\U0001F600'}"#).unwrap();
        assert_eq!(v.get_text("ké").as_deref(), Some("café 'q' \"d\" \n"));
        assert_eq!(v.get_text("r").as_deref(), Some("a\\nb"));
        assert_eq!(v.get_text("x").as_deref(), Some("it's"));
        assert_eq!(v.get_text("emoji").as_deref(), Some("\u{1F600}"));
        // Non-ASCII text outside escapes passes through.
        assert_eq!(
            parse("{'n': 'Gérard'}").unwrap().get_text("n").as_deref(),
            Some("Gérard")
        );
    }

    #[test]
    fn unescaped_strings_borrow_the_input() {
        let v = parse("{'k': 'plain'}").unwrap();
        assert!(matches!(
            v.get("k"),
            Some(PyValue::Str(Cow::Borrowed("plain")))
        ));
    }

    #[test]
    fn prefix_parse_reports_where_the_value_ends() {
        let (v, end) = parse_prefix("{'a': 1} trailing words").unwrap();
        assert_eq!(v.get("a"), Some(&PyValue::Int(1)));
        assert_eq!(end, 8);
        assert_eq!(
            parse("{'a': 1} x"),
            Err(PyDictError::Trailing { offset: 9 })
        );
    }

    #[test]
    fn truncated_input_is_an_error_at_every_cut() {
        let full =
            r#"{'event_type':'compute.instance.create.start','n':[1,{'x':u'\u00e9'}],'m':None}"#;
        for cut in 0..full.len() {
            let text = &full[..cut];
            match parse(text) {
                Err(PyDictError::Truncated { offset, .. }) => assert!(offset <= cut),
                Err(PyDictError::Empty { .. } | PyDictError::BadEscape { .. }) => {}
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(parse(full).is_ok());
    }

    #[test]
    fn bad_escapes_are_errors() {
        assert!(matches!(
            parse(r"{'a': '\xZZ'}"),
            Err(PyDictError::BadEscape { .. })
        ));
        assert!(matches!(
            parse(r"{'a': '\ud800'}"),
            Err(PyDictError::BadEscape { .. })
        ));
    }

    #[test]
    fn misplaced_punctuation_is_an_error() {
        for bad in [
            "{'a' 'b'}",
            "{'a': 1 'b': 2}",
            "{'a':}",
            "[1 'x']",
            "{,}",
            "{[1]: 2}",
            "}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing() {
        let deep = "[".repeat(10_000);
        assert!(matches!(parse(&deep), Err(PyDictError::TooDeep { .. })));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let samples = [
            "{'\u{0}':",
            "{'a':'b',}",
            "{'a':u",
            "{u",
            "'",
            "\"\\",
            "{'a':'\\",
            "{'a': 1e}",
        ];
        for s in samples {
            let _ = parse(s);
        }
        // Trailing comma is accepted as Python does.
        assert!(parse("{'a':'b',}").is_ok());
    }

    /// Python's `repr` of a string (single quotes unless the text has one and no
    /// double quote), as the thesis instrumentation writes keys and values.
    fn py_repr(s: &str) -> String {
        let quote = if s.contains('\'') && !s.contains('"') {
            '"'
        } else {
            '\''
        };
        let mut out = String::from(quote);
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c => out.push(c),
            }
        }
        out.push(quote);
        out
    }

    /// What [`scan_dict`] must give: the keys' values as [`parse_prefix`] reads them.
    fn scan_agrees_with_parse(text: &str) {
        const KEYS: [&str; 4] = ["a", "event_type", "7", "k\u{e9}"];
        let scanned = scan_dict(text, KEYS);
        match parse_prefix(text) {
            Err(e) => assert_eq!(scanned, Err(e), "{text:?}"),
            Ok((PyValue::Dict(_), _)) => {
                let parsed = parse_prefix(text).unwrap().0;
                let Ok(Scanned::Dict(found)) = scanned else {
                    panic!("{text:?}: {scanned:?}")
                };
                for (k, f) in KEYS.iter().zip(&found) {
                    let want = parsed.get(k);
                    assert_eq!(f.is_some(), want.is_some(), "{text:?} {k}");
                    let is_container = matches!(want, Some(PyValue::List(_) | PyValue::Dict(_)));
                    assert_eq!(f == &Some(Field::Container), is_container, "{text:?} {k}");
                    assert_eq!(
                        f.as_ref().and_then(Field::text),
                        parsed.get_text(k),
                        "{text:?} {k}"
                    );
                }
            }
            Ok(_) => assert_eq!(scanned, Ok(Scanned::NotADict), "{text:?}"),
        }
    }

    #[test]
    fn scan_keeps_asked_keys_borrowed_and_checks_the_rest() {
        let text = "{'event_type':scheduler.select_destinations.start,'vmname':'vm-1','n':[1,{'x':(2,)}],'vmname':'second','host':None,'c':12}";
        let Ok(Scanned::Dict([et, vm, host, n, c, missing])) =
            scan_dict(text, ["event_type", "vmname", "host", "n", "c", "missing"])
        else {
            panic!("not scanned")
        };
        assert_eq!(
            et,
            Some(Field::Token("scheduler.select_destinations.start"))
        );
        // First occurrence, as `PyValue::get`.
        assert_eq!(vm, Some(Field::Str(Cow::Borrowed("vm-1"))));
        assert_eq!(host.unwrap().text().as_deref(), Some("None"));
        assert_eq!(n, Some(Field::Container));
        assert_eq!(c.unwrap().text().as_deref(), Some("12"));
        assert_eq!(missing, None);
        assert_eq!(scan_dict("[1, 2] x", ["a"]), Ok(Scanned::NotADict));
        assert!(matches!(
            scan_dict("{'a': [1, {'b': 'c'}, 'd'", ["a"]),
            Err(PyDictError::Truncated { offset: 25, .. })
        ));
        for text in [
            "{'a':'x','b':{'c':[1,2,(3,)],'d':None},'event_type':'e\\'q'}",
            r#"{u'k\u00e9': u'caf\xe9', 7: 'seven', 07: 'again', 'a': -0, "a": 1}"#,
            "{'a': 1.50}",
            "{'a': +5, 'event_type': 1e3}",
            "{'a' 'b'}",
            "{[1]: 2}",
            "{{'x': 1}: 2}",
            "{'a': '\\xZZ'}",
            "  'just a string'",
            "",
        ] {
            scan_agrees_with_parse(text);
        }
        let deep = format!("{{'a': {}", "[".repeat(100));
        scan_agrees_with_parse(&deep);
        for cut in 0..text.len() {
            scan_agrees_with_parse(&text[..cut]);
        }
    }

    #[test]
    fn word_search_finds_the_first_of_two_bytes_at_every_position() {
        for len in 0..40 {
            for at in 0..len {
                let mut hay = vec![b'x'; len];
                hay[at] = b'\\';
                if at + 3 < len {
                    hay[at + 3] = b'\'';
                }
                assert_eq!(find_either(&hay, b'\'', b'\\'), Some(at));
                hay[at] = 0x80 | b'\'';
                let want = (at + 3 < len).then_some(at + 3);
                assert_eq!(find_either(&hay, b'\'', b'\\'), want);
            }
            assert_eq!(find_either(&vec![b'x'; len], b'\'', b'\\'), None);
        }
    }

    proptest::proptest! {
        #[test]
        fn scan_gives_what_parse_gives(
            text in "[{}\\[\\](),: '\"\\\\aeuNonex07.-]{0,60}"
        ) {
            scan_agrees_with_parse(&text);
        }

        #[test]
        fn scan_gives_what_parse_gives_on_dicts(
            pairs in proptest::collection::vec(
                ("(a|event_type|7|x|'a'|'7'|\"a\"|u'a')", "('[^'\\\\]{0,6}'|None|1|-0|1.5|b|\\[1,'a'\\]|\\{'a':'x'\\}|'\\\\x41')"),
                0..6,
            ),
            cut in 0usize..200,
        ) {
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let text = format!("{{{}}}", body.join(", "));
            scan_agrees_with_parse(&text);
            let mut cut = cut.min(text.len());
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            scan_agrees_with_parse(&text[..cut]);
        }

        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "\\PC{0,80}") {
            let _ = parse(&text);
            let _ = parse_prefix(&text);
        }

        #[test]
        fn repr_of_a_string_dict_parses_back(
            pairs in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,20}"), 0..6)
        ) {
            let body: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr(k), py_repr(v)))
                .collect();
            let text = format!("{{{}}}", body.join(", "));
            let parsed = parse(&text).unwrap();
            let PyValue::Dict(got) = parsed else { panic!("not a dict") };
            proptest::prop_assert_eq!(got.len(), pairs.len());
            for ((gk, gv), (k, v)) in got.iter().zip(&pairs) {
                proptest::prop_assert_eq!(gk.as_ref(), k.as_str());
                let text = gv.text();
                proptest::prop_assert_eq!(text.as_deref(), Some(v.as_str()));
            }
        }
    }
}
