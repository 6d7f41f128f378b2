//! TSDL (CTF 1.8 metadata language) parser: text -> [`Metadata`].
//!
//! A hand-written lexer and recursive-descent parser. Type names (typealias, typedef,
//! named structs/enums/variants) are scoped: a block or structure body opens a scope.
//! Unknown attributes are ignored, as the specification asks.

use super::types::*;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    /// Identifiers borrow the metadata text (most tokens; no allocation).
    Ident(&'a str),
    Int(i128),
    Str(String),
    /// Punctuation: one of `{ } [ ] ( ) < > ; , = : . * +` and the pairs `:=`, `...`, `-`.
    P(&'static str),
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: u32,
}

/// A parse failure: line and reason.
#[derive(Debug)]
pub struct TsdlError {
    pub line: u32,
    pub reason: String,
}

type R<T> = Result<T, TsdlError>;

impl<'a> Lexer<'a> {
    fn skip_ws(&mut self) -> R<()> {
        loop {
            let Some(&c) = self.src.get(self.pos) else {
                return Ok(());
            };
            if c == b'\n' {
                self.line += 1;
                self.pos += 1;
            } else if c.is_ascii_whitespace() || c == 0 {
                self.pos += 1;
            } else if c == b'/' && self.src.get(self.pos + 1) == Some(&b'*') {
                let start = self.line;
                self.pos += 2;
                loop {
                    match self.src.get(self.pos) {
                        None => {
                            return Err(TsdlError {
                                line: start,
                                reason: "unterminated comment".into(),
                            })
                        }
                        Some(b'*') if self.src.get(self.pos + 1) == Some(&b'/') => {
                            self.pos += 2;
                            break;
                        }
                        Some(b'\n') => {
                            self.line += 1;
                            self.pos += 1
                        }
                        _ => self.pos += 1,
                    }
                }
            } else if c == b'/' && self.src.get(self.pos + 1) == Some(&b'/') {
                while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
                    self.pos += 1;
                }
            } else {
                return Ok(());
            }
        }
    }

    fn next(&mut self) -> R<Option<(Tok<'a>, u32)>> {
        self.skip_ws()?;
        let line = self.line;
        let Some(&c) = self.src.get(self.pos) else {
            return Ok(None);
        };
        let err = |reason: String| TsdlError { line, reason };
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = self.pos;
            while self
                .src
                .get(self.pos)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            {
                self.pos += 1;
            }
            // ASCII letters, digits and '_' only: always valid UTF-8.
            let s = std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("_");
            return Ok(Some((Tok::Ident(s), line)));
        }
        if c.is_ascii_digit() {
            let start = self.pos;
            while self
                .src
                .get(self.pos)
                .is_some_and(|b| b.is_ascii_alphanumeric())
            {
                self.pos += 1;
            }
            let text = std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("");
            let digits = text.trim_end_matches(['u', 'U', 'l', 'L']);
            let v = if let Some(h) = digits
                .strip_prefix("0x")
                .or_else(|| digits.strip_prefix("0X"))
            {
                i128::from_str_radix(h, 16)
            } else if let Some(b) = digits
                .strip_prefix("0b")
                .or_else(|| digits.strip_prefix("0B"))
            {
                i128::from_str_radix(b, 2)
            } else if digits.len() > 1 && digits.starts_with('0') {
                i128::from_str_radix(&digits[1..], 8)
            } else {
                digits.parse::<i128>()
            }
            .map_err(|_| err(format!("bad integer literal `{text}`")))?;
            return Ok(Some((Tok::Int(v), line)));
        }
        if c == b'"' {
            self.pos += 1;
            let mut out = Vec::new();
            loop {
                match self.src.get(self.pos) {
                    None => return Err(err("unterminated string literal".into())),
                    Some(b'"') => {
                        self.pos += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let e = *self
                            .src
                            .get(self.pos + 1)
                            .ok_or_else(|| err("unterminated string literal".into()))?;
                        self.pos += 2;
                        out.push(match e {
                            b'n' => b'\n',
                            b't' => b'\t',
                            b'r' => b'\r',
                            b'0' => 0,
                            b'a' => 7,
                            b'b' => 8,
                            b'f' => 12,
                            b'v' => 11,
                            other => other,
                        });
                    }
                    Some(&b) => {
                        if b == b'\n' {
                            self.line += 1;
                        }
                        out.push(b);
                        self.pos += 1;
                    }
                }
            }
            return Ok(Some((
                Tok::Str(String::from_utf8_lossy(&out).into_owned()),
                line,
            )));
        }
        if c == b'\'' {
            // Character literal: its code as an integer.
            let b = *self
                .src
                .get(self.pos + 1)
                .ok_or_else(|| err("bad character literal".into()))?;
            if self.src.get(self.pos + 2) != Some(&b'\'') {
                return Err(err("bad character literal".into()));
            }
            self.pos += 3;
            return Ok(Some((Tok::Int(b as i128), line)));
        }
        let rest = &self.src[self.pos..];
        for p in [":=", "..."] {
            if rest.starts_with(p.as_bytes()) {
                self.pos += p.len();
                return Ok(Some((Tok::P(p), line)));
            }
        }
        const SINGLE: [&str; 17] = [
            "{", "}", "[", "]", "(", ")", "<", ">", ";", ",", "=", ":", ".", "*", "+", "-", "&",
        ];
        for p in SINGLE {
            if c == p.as_bytes()[0] {
                self.pos += 1;
                return Ok(Some((Tok::P(p), line)));
            }
        }
        Err(err(format!("unexpected character {:?}", c as char)))
    }
}

/// Named types visible in a scope.
#[derive(Default)]
struct TypeScope {
    aliases: HashMap<String, Type>,
    structs: HashMap<String, Type>,
    enums: HashMap<String, Type>,
    variants: HashMap<String, Type>,
}

/// Nesting bound for types (hostile metadata must not overflow the stack).
const MAX_DEPTH: u32 = 64;

struct Parser<'a> {
    toks: Vec<(Tok<'a>, u32)>,
    pos: usize,
    depth: u32,
    scopes: Vec<TypeScope>,
    meta: Metadata,
}

/// Parses a whole TSDL document.
pub fn parse(text: &str) -> Result<Metadata, TsdlError> {
    let mut lx = Lexer {
        src: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut toks = Vec::new();
    while let Some(t) = lx.next()? {
        toks.push(t);
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        scopes: vec![TypeScope::default()],
        meta: Metadata::default(),
    };
    let mut saw_byte_order = false;
    while p.pos < p.toks.len() {
        saw_byte_order |= p.top_level()?;
    }
    if !saw_byte_order {
        // The specification requires trace.byte_order; be lenient like Trace Compass (LE).
        p.meta.byte_order = ByteOrder::Little;
    }
    Ok(p.meta)
}

impl<'a> Parser<'a> {
    fn line(&self) -> u32 {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map(|t| t.1)
            .unwrap_or(1)
    }

    fn err<T>(&self, reason: impl Into<String>) -> R<T> {
        Err(TsdlError {
            line: self.line(),
            reason: reason.into(),
        })
    }

    fn peek(&self) -> Option<&Tok<'a>> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok<'a>> {
        self.toks.get(self.pos + k).map(|t| &t.0)
    }

    fn is_p(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::P(q)) if *q == p)
    }

    fn is_ident(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(q)) if *q == s)
    }

    fn bump(&mut self) -> R<Tok<'a>> {
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.0.clone())
            }
            None => self.err("unexpected end of metadata"),
        }
    }

    fn expect(&mut self, p: &str) -> R<()> {
        if self.is_p(p) {
            self.pos += 1;
            Ok(())
        } else {
            let found = format!("{:?}", self.peek());
            self.err(format!("expected `{p}`, found {found}"))
        }
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.is_p(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> R<String> {
        match self.bump()? {
            Tok::Ident(s) => Ok(s.to_string()),
            t => {
                self.pos -= 1;
                self.err(format!("expected an identifier, found {t:?}"))
            }
        }
    }

    /// Returns true when this statement set the trace byte order.
    fn top_level(&mut self) -> R<bool> {
        if self.eat(";") {
            return Ok(false);
        }
        let Some(Tok::Ident(kw)) = self.peek().cloned() else {
            return self.err(format!("unexpected {:?} at top level", self.peek()));
        };
        match kw {
            "trace" | "env" | "clock" | "stream" | "event" | "callsite"
                if matches!(self.peek_at(1), Some(Tok::P("{"))) =>
            {
                self.pos += 2;
                let attrs = self.block_body()?;
                self.eat(";");
                self.apply_block(kw, attrs)
            }
            _ => {
                self.declaration_statement()?;
                Ok(false)
            }
        }
    }

    /// Body of a top-level block up to and including `}`: `name = value;`, `name := type;`
    /// and type declarations.
    fn block_body(&mut self) -> R<Vec<(String, Attr, u32)>> {
        self.scopes.push(TypeScope::default());
        let mut out = Vec::new();
        while !self.eat("}") {
            if self.eat(";") {
                continue;
            }
            if self.pos >= self.toks.len() {
                return self.err("unterminated block");
            }
            if self.is_ident("typealias")
                || self.is_ident("typedef")
                || ((self.is_ident("struct") || self.is_ident("enum") || self.is_ident("variant"))
                    && self.looks_like_named_decl())
            {
                self.declaration_statement()?;
                continue;
            }
            let line = self.line();
            let mut name = self.attr_key()?;
            if self.eat(":=") {
                let ty = self.type_spec()?;
                // `fields := struct {...} x`? no declarator expected; allow array suffix? no.
                let (ty, _) = self.maybe_declarator(ty, false)?;
                self.expect(";")?;
                out.push((name, Attr::Type(ty), line));
            } else if self.eat("=") {
                let v = self.attr_value()?;
                self.expect(";")?;
                out.push((name, v, line));
            } else {
                name.push_str(" ?");
                return self.err(format!("expected `=` or `:=` after `{}`", name));
            }
        }
        self.scopes.pop();
        Ok(out)
    }

    /// `struct NAME {` / `enum NAME :` / `variant NAME {` declarations as statements.
    fn looks_like_named_decl(&self) -> bool {
        matches!(self.peek_at(1), Some(Tok::Ident(_)))
            && matches!(
                self.peek_at(2),
                Some(Tok::P("{")) | Some(Tok::P(":")) | Some(Tok::P("<"))
            )
    }

    /// Dotted attribute name (`packet.header`, `event.context`, `model.emf.uri`).
    fn attr_key(&mut self) -> R<String> {
        let mut s = self.ident()?;
        while self.eat(".") {
            s.push('.');
            s.push_str(&self.ident()?);
        }
        Ok(s)
    }

    fn attr_value(&mut self) -> R<Attr> {
        let neg = self.eat("-");
        if !neg {
            self.eat("+");
        }
        match self.bump()? {
            Tok::Int(v) => Ok(Attr::Int(if neg { -v } else { v })),
            Tok::Str(s) if !neg => Ok(Attr::Str(s)),
            Tok::Ident(s) if !neg => {
                let mut s = s.to_string();
                while self.eat(".") {
                    s.push('.');
                    s.push_str(&self.ident()?);
                }
                Ok(Attr::Ident(s))
            }
            t => {
                self.pos -= 1;
                self.err(format!("bad attribute value {t:?}"))
            }
        }
    }

    /// `typealias T := NAME;`, `typedef T NAME;`, `struct NAME {...};` and the like.
    fn declaration_statement(&mut self) -> R<()> {
        if self.is_ident("typealias") {
            self.pos += 1;
            let ty = self.type_spec()?;
            let (ty, _) = self.maybe_declarator(ty, false)?;
            self.expect(":=")?;
            let mut names = Vec::new();
            while let Some(Tok::Ident(_)) = self.peek() {
                names.push(self.ident()?);
            }
            while self.eat("*") {}
            if names.is_empty() {
                return self.err("typealias without a name");
            }
            let (ty, _) = self.maybe_declarator(ty, false)?;
            self.expect(";")?;
            self.scopes
                .last_mut()
                .expect("scope")
                .aliases
                .insert(names.join(" "), ty);
            return Ok(());
        }
        if self.is_ident("typedef") {
            self.pos += 1;
            let ty = self.type_spec()?;
            loop {
                let (t, name) = self.maybe_declarator(ty.clone(), true)?;
                let Some(name) = name else {
                    return self.err("typedef without a name");
                };
                self.scopes
                    .last_mut()
                    .expect("scope")
                    .aliases
                    .insert(name, t);
                if !self.eat(",") {
                    break;
                }
            }
            self.expect(";")?;
            return Ok(());
        }
        // A type specifier on its own (named struct/enum/variant declaration), possibly
        // followed by declarators which we ignore at this level.
        let ty = self.type_spec()?;
        let _ = self.maybe_declarator(ty, true)?;
        self.expect(";")
    }

    fn lookup_alias(&self, name: &str) -> Option<Type> {
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.aliases.get(name).cloned())
    }

    fn lookup_named(&self, kind: &str, name: &str) -> Option<Type> {
        self.scopes.iter().rev().find_map(|s| {
            match kind {
                "struct" => s.structs.get(name),
                "enum" => s.enums.get(name),
                _ => s.variants.get(name),
            }
            .cloned()
        })
    }

    /// A type specifier. For alias names made of several words (`unsigned long`), the
    /// longest known alias prefix is taken, so that `unsigned long x` leaves `x`.
    fn type_spec(&mut self) -> R<Type> {
        if self.depth >= MAX_DEPTH {
            return self.err("types nested too deeply");
        }
        self.depth += 1;
        let r = self.type_spec_inner();
        self.depth -= 1;
        r
    }

    fn type_spec_inner(&mut self) -> R<Type> {
        let Some(Tok::Ident(kw)) = self.peek().cloned() else {
            return self.err(format!("expected a type, found {:?}", self.peek()));
        };
        match kw {
            "integer" => {
                self.pos += 1;
                let attrs = self.type_attrs()?;
                self.integer_from(attrs)
            }
            "floating_point" => {
                self.pos += 1;
                let attrs = self.type_attrs()?;
                let mut exp = 0;
                let mut mant = 0;
                let mut align = None;
                let mut order = ByteOrder::Native;
                for (k, v, _) in attrs {
                    match k.as_str() {
                        "exp_dig" => exp = v.as_u32().unwrap_or(0),
                        "mant_dig" => mant = v.as_u32().unwrap_or(0),
                        "align" => align = v.as_u32(),
                        "byte_order" => order = byte_order_of(&v).unwrap_or(ByteOrder::Native),
                        _ => {}
                    }
                }
                let size = exp + mant;
                if size != 32 && size != 64 {
                    return self.err(format!(
                        "floating_point of {size} bits (exp_dig {exp}, mant_dig {mant}) is not supported"
                    ));
                }
                let align = align.unwrap_or(8);
                if !align.is_power_of_two() {
                    return self.err(format!("bad floating_point align {align}"));
                }
                Ok(Type::Float { size, align, order })
            }
            "string" => {
                self.pos += 1;
                if self.is_p("{") {
                    let _ = self.type_attrs()?;
                }
                Ok(Type::String)
            }
            "struct" => {
                self.pos += 1;
                self.struct_spec()
            }
            "variant" => {
                self.pos += 1;
                self.variant_spec()
            }
            "enum" => {
                self.pos += 1;
                self.enum_spec()
            }
            _ => {
                // Alias name: longest run of identifiers naming a known alias.
                let mut words = Vec::new();
                let mut k = 0;
                while let Some(Tok::Ident(w)) = self.peek_at(k) {
                    words.push(*w);
                    k += 1;
                }
                for n in (1..=words.len()).rev() {
                    if let Some(t) = self.lookup_alias(&words[..n].join(" ")) {
                        self.pos += n;
                        return Ok(t);
                    }
                }
                self.err(format!("unknown type `{}`", words.join(" ")))
            }
        }
    }

    fn type_attrs(&mut self) -> R<Vec<(String, Attr, u32)>> {
        self.expect("{")?;
        let mut out = Vec::new();
        while !self.eat("}") {
            if self.eat(";") {
                continue;
            }
            let line = self.line();
            let k = self.attr_key()?;
            self.expect("=")?;
            let v = self.attr_value()?;
            out.push((k, v, line));
            if !self.eat(";") && !self.is_p("}") {
                return self.err("expected `;` in type attributes");
            }
        }
        Ok(out)
    }

    fn integer_from(&self, attrs: Vec<(String, Attr, u32)>) -> R<Type> {
        let mut size = None;
        let mut it = IntType::new(8);
        let mut align = None;
        for (k, v, line) in attrs {
            let bad = |what: &str| {
                Err(TsdlError {
                    line,
                    reason: format!("bad integer {what}: {v:?}"),
                })
            };
            match k.as_str() {
                "size" => match v.as_u32() {
                    Some(s) if (1..=64).contains(&s) => size = Some(s),
                    _ => return bad("size"),
                },
                "align" => match v.as_u32() {
                    Some(a) if a > 0 && a.is_power_of_two() => align = Some(a),
                    _ => return bad("align"),
                },
                "signed" => {
                    it.signed = match &v {
                        Attr::Int(i) => *i != 0,
                        Attr::Ident(s) | Attr::Str(s) => {
                            matches!(s.as_str(), "true" | "TRUE" | "True" | "1")
                        }
                        Attr::Type(_) => return bad("signed"),
                    }
                }
                "byte_order" => match byte_order_of(&v) {
                    Some(o) => it.order = o,
                    None => return bad("byte_order"),
                },
                "base" => {
                    it.base = match &v {
                        Attr::Int(i) => *i as u32,
                        Attr::Ident(s) | Attr::Str(s) => match s.as_str() {
                            "decimal" | "dec" | "d" | "i" | "u" => 10,
                            "hexadecimal" | "hex" | "x" | "X" | "p" => 16,
                            "octal" | "oct" | "o" => 8,
                            "binary" | "b" => 2,
                            _ => 10,
                        },
                        Attr::Type(_) => return bad("base"),
                    }
                }
                "encoding" => {
                    it.text = matches!(&v, Attr::Ident(s) | Attr::Str(s) if s.eq_ignore_ascii_case("utf8") || s.eq_ignore_ascii_case("ascii"))
                }
                "map" => {
                    if let Attr::Ident(s) = &v {
                        let parts: Vec<&str> = s.split('.').collect();
                        if parts.len() == 3 && parts[0] == "clock" {
                            it.clock = Some(parts[1].to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        let Some(size) = size else {
            return self.err("integer without `size`");
        };
        it.size = size;
        it.align = align.unwrap_or(if size % 8 == 0 { 8 } else { 1 });
        Ok(Type::Int(it))
    }

    fn struct_spec(&mut self) -> R<Type> {
        let name = if let Some(Tok::Ident(_)) = self.peek() {
            Some(self.ident()?)
        } else {
            None
        };
        if !self.is_p("{") {
            let Some(name) = name else {
                return self.err("`struct` without a name or body");
            };
            return match self.lookup_named("struct", &name) {
                Some(t) => Ok(t),
                None => self.err(format!("unknown struct `{name}`")),
            };
        }
        self.pos += 1;
        self.scopes.push(TypeScope::default());
        let mut st = StructType::default();
        while !self.eat("}") {
            if self.pos >= self.toks.len() {
                return self.err("unterminated struct");
            }
            if self.eat(";") {
                continue;
            }
            if self.is_ident("typealias") || self.is_ident("typedef") {
                self.declaration_statement()?;
                continue;
            }
            let ty = self.type_spec()?;
            if self.eat(";") {
                continue; // a bare type declaration inside the struct
            }
            loop {
                let (t, fname) = self.maybe_declarator(ty.clone(), true)?;
                let Some(fname) = fname else {
                    return self.err("struct member without a name");
                };
                st.fields.push((fname, t));
                if !self.eat(",") {
                    break;
                }
            }
            self.expect(";")?;
        }
        self.scopes.pop();
        if self.is_ident("align") {
            self.pos += 1;
            self.expect("(")?;
            let a = match self.bump()? {
                Tok::Int(v) if v > 0 && (v as u64).is_power_of_two() => v as u32,
                t => return self.err(format!("bad struct align {t:?}")),
            };
            self.expect(")")?;
            st.min_align = a;
        }
        let ty = Type::Struct(st);
        if let Some(name) = name {
            self.scopes
                .last_mut()
                .expect("scope")
                .structs
                .insert(name, ty.clone());
        }
        Ok(ty)
    }

    fn variant_spec(&mut self) -> R<Type> {
        let name = if let Some(Tok::Ident(_)) = self.peek() {
            Some(self.ident()?)
        } else {
            None
        };
        let tag = if self.eat("<") {
            let mut path = vec![self.ident()?];
            while self.eat(".") {
                path.push(self.ident()?);
            }
            self.expect(">")?;
            Some(field_ref_from_path(path))
        } else {
            None
        };
        if !self.is_p("{") {
            let Some(name) = name else {
                return self.err("`variant` without a name or body");
            };
            let Some(Type::Variant(mut v)) = self.lookup_named("variant", &name) else {
                return self.err(format!("unknown variant `{name}`"));
            };
            if tag.is_some() {
                v.tag = tag;
            }
            return Ok(Type::Variant(v));
        }
        self.pos += 1;
        self.scopes.push(TypeScope::default());
        let mut options = Vec::new();
        while !self.eat("}") {
            if self.pos >= self.toks.len() {
                return self.err("unterminated variant");
            }
            if self.eat(";") {
                continue;
            }
            if self.is_ident("typealias") || self.is_ident("typedef") {
                self.declaration_statement()?;
                continue;
            }
            let ty = self.type_spec()?;
            loop {
                let (t, oname) = self.maybe_declarator(ty.clone(), true)?;
                let Some(oname) = oname else {
                    return self.err("variant option without a name");
                };
                options.push(VariantOption {
                    name: oname,
                    ty: t,
                    ranges: None,
                });
                if !self.eat(",") {
                    break;
                }
            }
            self.expect(";")?;
        }
        self.scopes.pop();
        let v = VariantType { tag, options };
        if let Some(name) = name {
            self.scopes
                .last_mut()
                .expect("scope")
                .variants
                .insert(name, Type::Variant(v.clone()));
        }
        Ok(Type::Variant(v))
    }

    fn enum_spec(&mut self) -> R<Type> {
        let name = if let Some(Tok::Ident(_)) = self.peek() {
            Some(self.ident()?)
        } else {
            None
        };
        let container = if self.eat(":") {
            Some(self.type_spec()?)
        } else {
            None
        };
        if !self.is_p("{") {
            let Some(name) = name else {
                return self.err("`enum` without a name or body");
            };
            return match self.lookup_named("enum", &name) {
                Some(t) => Ok(t),
                None => self.err(format!("unknown enum `{name}`")),
            };
        }
        let container = match container {
            Some(t) => t,
            None => match self.lookup_alias("int") {
                Some(t) => t,
                None => return self.err("enum without a container type and no `int` alias"),
            },
        };
        let Type::Int(mut it) = container else {
            return self.err("enum container is not an integer");
        };
        self.pos += 1;
        let mut mappings: Vec<EnumMapping> = Vec::new();
        let mut next: i128 = 0;
        while !self.eat("}") {
            if self.pos >= self.toks.len() {
                return self.err("unterminated enum");
            }
            if self.eat(",") {
                continue;
            }
            let label = match self.bump()? {
                Tok::Ident(s) => s.to_string(),
                Tok::Str(s) => s,
                t => return self.err(format!("bad enum label {t:?}")),
            };
            let (lo, hi) = if self.eat("=") {
                let lo = self.signed_int()?;
                let hi = if self.eat("...") {
                    self.signed_int()?
                } else {
                    lo
                };
                (lo.min(hi), lo.max(hi))
            } else {
                (next, next)
            };
            next = hi.saturating_add(1);
            match mappings.iter_mut().find(|m| m.label == label) {
                Some(m) => m.ranges.push((lo, hi)),
                None => mappings.push(EnumMapping {
                    label,
                    ranges: vec![(lo, hi)],
                }),
            }
        }
        it.mappings = Some(Arc::new(mappings));
        let ty = Type::Int(it);
        if let Some(name) = name {
            self.scopes
                .last_mut()
                .expect("scope")
                .enums
                .insert(name, ty.clone());
        }
        Ok(ty)
    }

    fn signed_int(&mut self) -> R<i128> {
        let neg = self.eat("-");
        match self.bump()? {
            Tok::Int(v) => Ok(if neg { -v } else { v }),
            t => self.err(format!("expected an integer, found {t:?}")),
        }
    }

    /// Optional declarator after a type: `name`, `name[3]`, `name[len_field]`, `name[2][n]`.
    fn maybe_declarator(&mut self, ty: Type, want_name: bool) -> R<(Type, Option<String>)> {
        while self.eat("*") {}
        let name = if want_name {
            match self.peek() {
                Some(Tok::Ident(_)) => Some(self.ident()?),
                _ => None,
            }
        } else {
            None
        };
        let mut dims = Vec::new();
        while self.eat("[") {
            let len = match self.bump()? {
                Tok::Int(v) if v >= 0 => Length::Fixed(v as u64),
                Tok::Ident(first) => {
                    let mut path = vec![first.to_string()];
                    while self.eat(".") {
                        path.push(self.ident()?);
                    }
                    Length::Field(field_ref_from_path(path))
                }
                t => return self.err(format!("bad array length {t:?}")),
            };
            self.expect("]")?;
            dims.push(len);
        }
        // `int a[2][3]`: an array of 2 arrays of 3; build from the innermost.
        let mut t = ty;
        for len in dims.into_iter().rev() {
            t = Type::Array {
                elem: Box::new(t),
                len,
                min_align: 1,
            };
        }
        Ok((t, name))
    }

    fn apply_block(&mut self, kw: &str, attrs: Vec<(String, Attr, u32)>) -> R<bool> {
        let mut set_bo = false;
        match kw {
            "trace" => {
                for (k, v, line) in attrs {
                    match (k.as_str(), v) {
                        ("byte_order", v) => {
                            let o = match byte_order_of(&v) {
                                Some(ByteOrder::Native) | None => {
                                    return Err(TsdlError {
                                        line,
                                        reason: "trace byte_order must be le, be or network".into(),
                                    })
                                }
                                Some(o) => o,
                            };
                            self.meta.byte_order = o;
                            set_bo = true;
                        }
                        ("uuid", Attr::Str(s)) => {
                            self.meta.uuid = Some(parse_uuid(&s).ok_or(TsdlError {
                                line,
                                reason: format!("bad uuid {s:?}"),
                            })?)
                        }
                        ("packet.header", Attr::Type(t)) => self.meta.packet_header = Some(t),
                        ("major", Attr::Int(v)) if v != 1 => {
                            return Err(TsdlError {
                                line,
                                reason: format!("unsupported CTF major version {v}"),
                            })
                        }
                        _ => {}
                    }
                }
            }
            "env" => {
                for (k, v, _) in attrs {
                    let text = match v {
                        Attr::Int(i) => i.to_string(),
                        Attr::Str(s) | Attr::Ident(s) => s,
                        Attr::Type(_) => continue,
                    };
                    self.meta.env.insert(k, text);
                }
            }
            "clock" => {
                let mut c = ClockClass::default();
                for (k, v, line) in attrs {
                    let bad = || TsdlError {
                        line,
                        reason: format!("bad clock {k}"),
                    };
                    match (k.as_str(), v) {
                        ("name", Attr::Str(s) | Attr::Ident(s)) => c.name = s,
                        ("freq", Attr::Int(f)) => {
                            c.freq = u64::try_from(f).ok().filter(|f| *f > 0).ok_or_else(bad)?
                        }
                        ("offset_s", Attr::Int(f)) => {
                            c.offset_s = i64::try_from(f).map_err(|_| bad())?
                        }
                        ("offset", Attr::Int(f)) => {
                            c.offset = i64::try_from(f).map_err(|_| bad())?
                        }
                        ("uuid", Attr::Str(s)) => c.uuid = parse_uuid(&s),
                        _ => {}
                    }
                }
                self.meta.clocks.push(c);
            }
            "stream" => {
                let mut s = StreamClass::default();
                for (k, v, _) in attrs {
                    match (k.as_str(), v) {
                        ("id", Attr::Int(i)) => s.id = i as u64,
                        ("event.header", Attr::Type(t)) => s.event_header = Some(t),
                        ("event.context", Attr::Type(t)) => s.event_context = Some(t),
                        ("packet.context", Attr::Type(t)) => s.packet_context = Some(t),
                        _ => {}
                    }
                }
                self.meta.streams.push(s);
            }
            "event" => {
                let mut e = EventClass::default();
                for (k, v, _) in attrs {
                    match (k.as_str(), v) {
                        ("name", Attr::Str(s) | Attr::Ident(s)) => e.name = s,
                        ("id", Attr::Int(i)) => e.id = i as u64,
                        ("stream_id", Attr::Int(i)) => e.stream_id = i as u64,
                        ("context", Attr::Type(t)) => e.context = Some(t),
                        ("fields", Attr::Type(t)) => e.fields = Some(t),
                        _ => {}
                    }
                }
                self.meta.events.push(e);
            }
            _ => {}
        }
        Ok(set_bo)
    }
}

#[derive(Debug, Clone)]
enum Attr {
    Int(i128),
    Str(String),
    Ident(String),
    Type(Type),
}

impl Attr {
    fn as_u32(&self) -> Option<u32> {
        match self {
            Attr::Int(i) => u32::try_from(*i).ok(),
            _ => None,
        }
    }
}

fn byte_order_of(v: &Attr) -> Option<ByteOrder> {
    match v {
        Attr::Ident(s) | Attr::Str(s) => match s.as_str() {
            "le" | "little" => Some(ByteOrder::Little),
            "be" | "big" | "network" => Some(ByteOrder::Big),
            "native" => Some(ByteOrder::Native),
            _ => None,
        },
        _ => None,
    }
}

/// Splits a dotted TSDL reference into scope + path.
fn field_ref_from_path(path: Vec<String>) -> FieldRef {
    let prefixes: [(&[&str], Scope); 6] = [
        (&["trace", "packet", "header"], Scope::PacketHeader),
        (&["stream", "packet", "context"], Scope::PacketContext),
        (&["stream", "event", "header"], Scope::EventHeader),
        (&["stream", "event", "context"], Scope::StreamEventContext),
        (&["event", "context"], Scope::EventContext),
        (&["event", "fields"], Scope::EventPayload),
    ];
    for (pre, scope) in prefixes {
        if path.len() > pre.len() && path.iter().zip(pre.iter()).all(|(a, b)| a == b) {
            return FieldRef {
                scope: Some(scope),
                path: path[pre.len()..].to_vec(),
            };
        }
    }
    FieldRef { scope: None, path }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lttng_style_header_and_event() {
        let text = r#"/* CTF 1.8 */
typealias integer { size = 8; align = 8; signed = false; } := uint8_t;
typealias integer { size = 32; align = 8; signed = false; } := uint32_t;
typealias integer { size = 64; align = 8; signed = false; } := unsigned long;
typealias integer { size = 5; align = 1; signed = false; } := uint5_t;
trace { major = 1; minor = 8; uuid = "69861fba-fe44-2b41-b75b-39acaf6930ec"; byte_order = be;
  packet.header := struct { uint32_t magic; uint8_t uuid[16]; uint32_t stream_id; }; };
env { hostname = "h"; tracer_major = 2; };
clock { name = "monotonic"; freq = 1000000000; offset = -5; };
struct hdr { enum : uint5_t { compact = 0 ... 30, extended = 31 } id;
  variant <id> { struct { uint32_t timestamp; } compact; struct { uint32_t id; } extended; } v; } align(8);
stream { id = 0; event.header := struct hdr; };
event { name = "e"; id = 3; stream_id = 0; fields := struct { unsigned long _a; uint8_t _s[_a]; string _t; }; };
"#;
        let m = parse(text).unwrap();
        assert_eq!(m.byte_order, ByteOrder::Big);
        assert_eq!(m.env["tracer_major"], "2");
        assert_eq!(m.clocks[0].offset, -5);
        assert_eq!(m.events[0].id, 3);
        let Some(Type::Struct(f)) = &m.events[0].fields else {
            panic!()
        };
        assert_eq!(f.fields.len(), 3);
        assert!(
            matches!(&f.fields[1].1, Type::Array { len: Length::Field(r), .. } if r.path == ["_a"])
        );
        let Some(Type::Struct(h)) = &m.streams[0].event_header else {
            panic!()
        };
        assert_eq!(h.min_align, 8);
    }

    #[test]
    fn unknown_type_is_an_error_with_a_line() {
        let e = parse("trace { byte_order = le; };\nevent { fields := struct { bogus_t x; }; };")
            .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("bogus_t"), "{}", e.reason);
    }
}
