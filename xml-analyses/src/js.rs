//! The JavaScript subset `script` values may use: one expression over the bound
//! variables with literals, arithmetic, comparisons, `&&`/`||`/`!` and `?:`.
//! Anything else is refused when the analysis is compiled (never skipped).
//! Semantics follow JavaScript: numbers are doubles, `+` concatenates when a
//! side is a string, `==` converts numbers and strings.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum JsValue {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
    Undefined,
}

#[derive(Clone, Debug)]
pub enum Expr {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
    Var(String),
    Unary(char, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct JsSyntaxError(pub String);

impl fmt::Display for JsSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

const OPS: [&str; 23] = [
    "===", "!==", "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!", "?",
    ":", "(", ")", ";", "{", "}",
];

fn lex(src: &str) -> Result<Vec<Tok>, JsSyntaxError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            let text = &src[start..i];
            let v = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                i64::from_str_radix(hex, 16).map(|v| v as f64).ok()
            } else {
                text.parse::<f64>().ok()
            };
            out.push(Tok::Num(
                v.ok_or_else(|| JsSyntaxError(format!("bad number {text:?}")))?,
            ));
        } else if c == b'\'' || c == b'"' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&d) = b.get(i) else {
                    return Err(JsSyntaxError("unterminated string".into()));
                };
                if d == c {
                    i += 1;
                    break;
                }
                if d == b'\\' {
                    let e = *b
                        .get(i + 1)
                        .ok_or_else(|| JsSyntaxError("bad escape".into()))?;
                    s.push(match e {
                        b'n' => '\n',
                        b't' => '\t',
                        other => other as char,
                    });
                    i += 2;
                    continue;
                }
                let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
                s.push(ch);
                i += ch.len_utf8();
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            out.push(Tok::Ident(src[start..i].to_string()));
        } else if let Some(op) = OPS.iter().find(|op| src[i..].starts_with(**op)) {
            out.push(Tok::Op(op));
            i += op.len();
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(JsSyntaxError(format!("unsupported character {ch:?}")));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

/// Deeper expressions are refused, so parsing and evaluation cannot exhaust the stack.
const MAX_DEPTH: usize = 64;
const MAX_TOKENS: usize = 1024;

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Tok::Op(o)) => Some(o),
            _ => None,
        }
    }
    fn expect(&mut self, op: &str) -> Result<(), JsSyntaxError> {
        if self.peek_op() == Some(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(JsSyntaxError(format!("expected {op:?}")))
        }
    }
    fn conditional(&mut self) -> Result<Expr, JsSyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(JsSyntaxError(format!(
                "expression nested deeper than {MAX_DEPTH}"
            )));
        }
        let r = self.conditional_inner();
        self.depth -= 1;
        r
    }
    fn conditional_inner(&mut self) -> Result<Expr, JsSyntaxError> {
        let c = self.binary(0)?;
        if self.peek_op() == Some("?") {
            self.pos += 1;
            let a = self.conditional()?;
            self.expect(":")?;
            let b = self.conditional()?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(c)
    }
    fn binary(&mut self, level: usize) -> Result<Expr, JsSyntaxError> {
        const LEVELS: [&[&str]; 6] = [
            &["||"],
            &["&&"],
            &["==", "!=", "===", "!=="],
            &["<", ">", "<=", ">="],
            &["+", "-"],
            &["*", "/", "%"],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        while let Some(op) = self.peek_op().filter(|o| LEVELS[level].contains(o)) {
            self.pos += 1;
            let right = self.binary(level + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Expr, JsSyntaxError> {
        match self.peek_op() {
            Some(op @ ("!" | "-" | "+")) => {
                self.pos += 1;
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(JsSyntaxError(format!(
                        "expression nested deeper than {MAX_DEPTH}"
                    )));
                }
                let e = self.unary();
                self.depth -= 1;
                let e = e?;
                Ok(Expr::Unary(op.chars().next().unwrap_or('!'), Box::new(e)))
            }
            _ => self.primary(),
        }
    }
    fn primary(&mut self) -> Result<Expr, JsSyntaxError> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Num(v)) => Ok(Expr::Num(v)),
            Some(Tok::Str(s)) => Ok(Expr::Str(s)),
            Some(Tok::Ident(id)) => {
                if let Some(Tok::Op("(")) = self.toks.get(self.pos) {
                    return Err(JsSyntaxError(format!(
                        "function calls ({id}(...)) are outside the supported script subset"
                    )));
                }
                Ok(match id.as_str() {
                    "true" => Expr::Bool(true),
                    "false" => Expr::Bool(false),
                    "null" => Expr::Null,
                    "var" | "let" | "const" | "function" | "if" | "for" | "while" | "return"
                    | "new" => {
                        return Err(JsSyntaxError(format!(
                            "statement keyword {id:?} is outside the supported script subset (one expression)"
                        )))
                    }
                    _ => Expr::Var(id),
                })
            }
            Some(Tok::Op("(")) => {
                let e = self.conditional()?;
                self.expect(")")?;
                Ok(e)
            }
            Some(Tok::Op(o)) => Err(JsSyntaxError(format!("unexpected {o:?}"))),
            None => Err(JsSyntaxError("unexpected end of script".into())),
        }
    }
}

/// Parses one expression (an optional trailing `;` is allowed).
pub fn parse(src: &str) -> Result<Expr, JsSyntaxError> {
    let toks = lex(src)?;
    // Operator chains nest left to right: bound them like parentheses.
    if toks.len() > MAX_TOKENS {
        return Err(JsSyntaxError(format!(
            "script longer than {MAX_TOKENS} tokens"
        )));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.conditional()?;
    if p.peek_op() == Some(";") {
        p.pos += 1;
    }
    if p.pos < p.toks.len() {
        return Err(JsSyntaxError(format!(
            "unsupported syntax after the expression ({:?})",
            p.toks[p.pos]
        )));
    }
    Ok(e)
}

fn to_num(v: &JsValue) -> f64 {
    match v {
        JsValue::Num(n) => *n,
        JsValue::Bool(b) => f64::from(u8::from(*b)),
        JsValue::Null => 0.0,
        JsValue::Undefined => f64::NAN,
        JsValue::Str(s) => {
            let t = s.trim();
            if t.is_empty() {
                0.0
            } else {
                t.parse().unwrap_or(f64::NAN)
            }
        }
    }
}

fn truthy(v: &JsValue) -> bool {
    match v {
        JsValue::Num(n) => *n != 0.0 && !n.is_nan(),
        JsValue::Str(s) => !s.is_empty(),
        JsValue::Bool(b) => *b,
        JsValue::Null | JsValue::Undefined => false,
    }
}

/// JavaScript's Number-to-String.
pub fn num_to_string(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if n == n.trunc() && n.abs() < 1e21 {
        format!("{}", n as i128)
    } else {
        format!("{n}")
    }
}

pub fn to_js_string(v: &JsValue) -> String {
    match v {
        JsValue::Num(n) => num_to_string(*n),
        JsValue::Str(s) => s.clone(),
        JsValue::Bool(b) => b.to_string(),
        JsValue::Null => "null".into(),
        JsValue::Undefined => "undefined".into(),
    }
}

fn loose_eq(a: &JsValue, b: &JsValue) -> bool {
    use JsValue::*;
    match (a, b) {
        (Null | Undefined, Null | Undefined) => true,
        (Null | Undefined, _) | (_, Null | Undefined) => false,
        (Str(x), Str(y)) => x == y,
        _ => to_num(a) == to_num(b),
    }
}

fn strict_eq(a: &JsValue, b: &JsValue) -> bool {
    use JsValue::*;
    match (a, b) {
        (Num(x), Num(y)) => x == y,
        _ => a == b,
    }
}

/// Evaluates `e`; an unbound variable is a ReferenceError, reported as `Err`.
pub fn eval(e: &Expr, vars: &dyn Fn(&str) -> Option<JsValue>) -> Result<JsValue, String> {
    Ok(match e {
        Expr::Num(n) => JsValue::Num(*n),
        Expr::Str(s) => JsValue::Str(s.clone()),
        Expr::Bool(b) => JsValue::Bool(*b),
        Expr::Null => JsValue::Null,
        Expr::Var(v) => vars(v).ok_or_else(|| format!("{v} is not defined"))?,
        Expr::Unary(op, x) => {
            let x = eval(x, vars)?;
            match op {
                '!' => JsValue::Bool(!truthy(&x)),
                '-' => JsValue::Num(-to_num(&x)),
                _ => JsValue::Num(to_num(&x)),
            }
        }
        Expr::Cond(c, a, b) => {
            if truthy(&eval(c, vars)?) {
                eval(a, vars)?
            } else {
                eval(b, vars)?
            }
        }
        Expr::Binary(op, a, b) => {
            let x = eval(a, vars)?;
            if *op == "&&" {
                return if truthy(&x) { eval(b, vars) } else { Ok(x) };
            }
            if *op == "||" {
                return if truthy(&x) { Ok(x) } else { eval(b, vars) };
            }
            let y = eval(b, vars)?;
            match *op {
                "+" => {
                    if matches!(x, JsValue::Str(_)) || matches!(y, JsValue::Str(_)) {
                        JsValue::Str(to_js_string(&x) + &to_js_string(&y))
                    } else {
                        JsValue::Num(to_num(&x) + to_num(&y))
                    }
                }
                "-" => JsValue::Num(to_num(&x) - to_num(&y)),
                "*" => JsValue::Num(to_num(&x) * to_num(&y)),
                "/" => JsValue::Num(to_num(&x) / to_num(&y)),
                "%" => JsValue::Num(to_num(&x) % to_num(&y)),
                "==" => JsValue::Bool(loose_eq(&x, &y)),
                "!=" => JsValue::Bool(!loose_eq(&x, &y)),
                "===" => JsValue::Bool(strict_eq(&x, &y)),
                "!==" => JsValue::Bool(!strict_eq(&x, &y)),
                "<" | ">" | "<=" | ">=" => {
                    let ord = match (&x, &y) {
                        (JsValue::Str(p), JsValue::Str(q)) => Some(p.cmp(q)),
                        _ => to_num(&x).partial_cmp(&to_num(&y)),
                    };
                    JsValue::Bool(match (op, ord) {
                        (_, None) => false,
                        (&"<", Some(o)) => o.is_lt(),
                        (&">", Some(o)) => o.is_gt(),
                        (&"<=", Some(o)) => o.is_le(),
                        (_, Some(o)) => o.is_ge(),
                    })
                }
                other => return Err(format!("operator {other} not supported")),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str, vars: &[(&str, JsValue)]) -> JsValue {
        let e = parse(src).unwrap();
        eval(&e, &|n| {
            vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    #[test]
    fn ternary_on_string_equality() {
        let op = [("op", JsValue::Str("op1".into()))];
        assert_eq!(
            run("op == 'op1' ? 'TRUE' : 'FALSE'", &op),
            JsValue::Str("TRUE".into())
        );
        let op = [("op", JsValue::Str("x".into()))];
        assert_eq!(
            run("op == 'op1' ? 'TRUE' : 'FALSE'", &op),
            JsValue::Str("FALSE".into())
        );
    }

    #[test]
    fn arithmetic_and_concatenation() {
        assert_eq!(
            run("ts + 2", &[("ts", JsValue::Num(5.0))]),
            JsValue::Num(7.0)
        );
        assert_eq!(run("'a' + 1 * 2", &[]), JsValue::Str("a2".into()));
        assert_eq!(run("!(1 < 2) || 3 >= 3", &[]), JsValue::Bool(true));
    }

    #[test]
    fn statements_and_calls_are_refused() {
        assert!(parse("var x = 1").is_err());
        assert!(parse("Math.max(1, 2)").is_err());
        assert!(parse("a = 1").is_err());
        assert!(parse(&"(".repeat(10_000)).is_err());
        assert!(parse(&"!".repeat(10_000)).is_err());
        assert!(parse(&"1+".repeat(10_000)).is_err());
    }
}
