//! Timestamp patterns of Trace Compass custom parsers (its `TmfTimestampFormat`):
//! a Java `SimpleDateFormat` date/time part followed by a sub-second part whose
//! `S`, `C`, `N` letters stand for decimal digits down to the nanosecond, plus
//! `T` for seconds since the epoch (`Tm`, `Tu`, `Tn`… for other units).
//!
//! Date/time fields are read and written in **UTC**. (Trace Compass uses the
//! JVM's default time zone, which makes its absolute times machine-dependent.)
//! Parsing is lenient like Java's: out-of-range fields roll over, text after
//! the last pattern field is ignored.

use std::fmt::Write;

/// A pattern that Trace Compass would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

/// A timestamp that does not match its pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {text:?} does not match pattern {pattern:?}: {reason}")]
pub struct TimestampParseError {
    pub text: String,
    pub pattern: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A `SimpleDateFormat` letter repeated `count` times.
    Field(char, usize),
    Literal(String),
    /// Seconds since the epoch (date part) — `T` repeated `count` times.
    Epoch(usize),
    /// Sub-second digits: `S` (fraction of a second), `C` (µs), `N` (ns).
    SubSec(char, usize),
}

const SUB_SEC_LETTERS: &str = "SCN";
const DELIMITERS: &str = " .,-_:;/'\"";

#[derive(Debug, Clone)]
pub struct TimestampFormat {
    pattern: String,
    date: Vec<Token>,
    sub: Vec<Token>,
    /// The raw sub-second part of the pattern (from the decimal separator on).
    sub_pattern: Vec<char>,
    decimal_separator: Option<char>,
    decimal_index: usize,
    /// Denominator of a second for `T` (1 = seconds, 1000 = ms, …).
    unit_of_seconds: i64,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];

impl TimestampFormat {
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        let chars: Vec<char> = pattern.chars().collect();
        let err = |reason: &str| PatternError {
            pattern: pattern.to_string(),
            reason: reason.to_string(),
        };
        // Where the sub-second part starts: the last delimiter before the first
        // unquoted S/C/N (Trace Compass's rule).
        let (decimal_index, decimal_separator) = {
            let mut last_delim = chars.len();
            let mut in_quote = false;
            let mut i = 0;
            let mut found = None;
            while i < chars.len() {
                let mut ch = chars[i];
                if ch == '\'' && i + 1 < chars.len() {
                    i += 1;
                    ch = chars[i];
                    if ch != '\'' {
                        in_quote = !in_quote;
                    }
                }
                if !in_quote {
                    if SUB_SEC_LETTERS.contains(ch) {
                        let sep = (last_delim < chars.len()).then(|| chars[last_delim]);
                        found = Some((last_delim, sep));
                        break;
                    }
                    if DELIMITERS.contains(ch) {
                        last_delim = if ch == '\'' { i.saturating_sub(1) } else { i };
                    }
                }
                i += 1;
            }
            found.unwrap_or((chars.len(), None))
        };
        let date_chars = &chars[..decimal_index];
        let mut unit_of_seconds = 1;
        let date = tokenize(date_chars, false, &mut unit_of_seconds).map_err(|r| err(&r))?;
        for t in &date {
            if let Token::Field(c, _) = t {
                if *c == 'S' || *c == 'W' {
                    return Err(err(&format!("illegal pattern character '{c}'")));
                }
                if !"GyYMLwWDdFEuaHkKhmsSzZX".contains(*c) {
                    return Err(err(&format!("illegal pattern character '{c}'")));
                }
            }
        }
        let mut unused = 1;
        let sub = tokenize(&chars[decimal_index..], true, &mut unused).map_err(|r| err(&r))?;
        Ok(TimestampFormat {
            pattern: pattern.to_string(),
            date,
            sub,
            sub_pattern: chars[decimal_index..].to_vec(),
            decimal_separator,
            decimal_index,
            unit_of_seconds,
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    fn has_epoch(&self) -> bool {
        self.date.iter().any(|t| matches!(t, Token::Epoch(_)))
    }

    /// Nanoseconds since the epoch.
    pub fn parse(&self, text: &str) -> Result<i64, TimestampParseError> {
        let fail = |reason: String| TimestampParseError {
            text: text.to_string(),
            pattern: self.pattern.clone(),
            reason,
        };
        if text.is_empty() {
            return Ok(0);
        }
        let chars: Vec<char> = text.chars().collect();
        let index = self.source_decimal_index(&chars);
        let ns_per_unit = 1_000_000_000 / self.unit_of_seconds;
        if self.has_epoch() {
            let negative = chars[0] == '-';
            let whole: String = chars[..index].iter().collect();
            if index == chars.len() {
                let v = parse_java_long(&whole).ok_or_else(|| fail("not a number".into()))?;
                return Ok(v.wrapping_mul(ns_per_unit));
            }
            let units = if index == 0 || (negative && index <= 1) {
                0
            } else {
                parse_java_long(&whole).ok_or_else(|| fail("not a number".into()))?
            };
            let mut nanos = self.parse_sub_seconds(&chars[index..]).map_err(fail)?;
            if negative {
                nanos = -nanos;
            }
            return Ok(units.wrapping_mul(ns_per_unit).wrapping_add(nanos));
        }
        let seconds = if self.date.is_empty() {
            0
        } else {
            let ms = parse_date(&self.date, &chars[..index]).map_err(fail)?;
            ms / 1000
        };
        let nanos = self.parse_sub_seconds(&chars[index..]).map_err(fail)?;
        Ok(seconds.wrapping_mul(1_000_000_000).wrapping_add(nanos))
    }

    /// Where the sub-second digits start in `source` (Trace Compass's rule: the
    /// n-th separator of the text for the n-th one in the date part of the pattern).
    fn source_decimal_index(&self, source: &[char]) -> usize {
        let Some(sep) = self.decimal_separator else {
            return source.len();
        };
        let pattern: Vec<char> = self.pattern.chars().collect();
        let sep_str: Vec<char> = if sep == '\'' {
            vec!['\'', '\'']
        } else {
            vec![sep]
        };
        let find = |from: usize| -> Option<usize> {
            (from..pattern.len()).find(|&i| pattern[i..].starts_with(&sep_str))
        };
        let mut pattern_pos = find(0);
        let mut source_pos: Option<usize> = None;
        while let Some(pp) = pattern_pos {
            if pp > self.decimal_index {
                break;
            }
            let from = source_pos.map_or(0, |p| p + 1);
            source_pos = (from..source.len()).find(|&i| source[i] == sep);
            let Some(mut sp) = source_pos else {
                break;
            };
            let next = pattern.get(pp + 1).copied().unwrap_or('\0');
            if next.is_ascii_alphabetic() {
                while sp + 1 < source.len() && (source[sp + 1] == ' ' || source[sp + 1] == '\t') {
                    sp += 1;
                }
                source_pos = Some(sp);
            }
            pattern_pos = find(pp + sep_str.len());
        }
        source_pos.unwrap_or(source.len())
    }

    fn parse_sub_seconds(&self, input: &[char]) -> Result<i64, String> {
        let mut digits = ['0'; 9];
        let pattern = &self.sub_pattern;
        let (mut in_quote, mut digit_index, mut ii, mut pi) = (false, 0usize, 0usize, 0usize);
        while pi < pattern.len() {
            let mut ch = pattern[pi];
            if ch == '\'' {
                pi += 1;
                if pi < pattern.len() {
                    ch = pattern[pi];
                    if ch != '\'' {
                        in_quote = !in_quote;
                    }
                } else if in_quote {
                    break;
                }
            }
            if DELIMITERS.contains(ch) && !in_quote {
                if ii < input.len() && input[ii] == ch {
                    ii += 1;
                }
                pi += 1;
                continue;
            } else if SUB_SEC_LETTERS.contains(ch) && !in_quote {
                if ii < input.len() && input[ii].is_ascii_digit() {
                    if digit_index < digits.len() {
                        digits[digit_index] = input[ii];
                        digit_index += 1;
                    }
                    ii += 1;
                } else {
                    digit_index = digits.len();
                }
                pi += 1;
                continue;
            }
            if ii >= input.len() || input[ii] != ch {
                return Err(format!(
                    "unparseable sub-seconds {:?}",
                    input.iter().collect::<String>()
                ));
            }
            pi += 1;
            ii += 1;
        }
        let value: i64 = digits.iter().collect::<String>().parse().unwrap_or(0);
        Ok(value / self.unit_of_seconds)
    }

    /// Formats nanoseconds since the epoch.
    pub fn format(&self, value: i64) -> String {
        let mut date_ms = value / 1_000_000;
        let sec = value / 1_000_000_000;
        let mut ms = (value % 1_000_000_000 / 1_000_000).abs();
        let mut us = (value % 1_000_000 / 1000).abs();
        let mut ns = (value % 1000).abs();
        if value < 0 && ms + us + ns > 0 && !self.has_epoch() {
            date_ms -= 1;
            let nanosec = 1_000_000_000 - (1_000_000 * ms + 1000 * us + ns);
            ms = nanosec / 1_000_000;
            us = nanosec % 1_000_000 / 1000;
            ns = nanosec % 1000;
        }
        let mut out = String::new();
        let epoch_value = if self.unit_of_seconds != 1 {
            value / (1_000_000_000 / self.unit_of_seconds)
        } else {
            sec
        };
        if value < 0 && sec == 0 && self.has_epoch() {
            out.push('-');
        }
        format_date(&self.date, date_ms, epoch_value, &mut out);
        let mut printed = 0;
        for t in &self.sub {
            match t {
                Token::Literal(s) => out.push_str(s),
                Token::SubSec('S', len) => {
                    let mut v = 1_000_000 * ms + 1000 * us + ns;
                    if self.unit_of_seconds != 1 {
                        v = v * self.unit_of_seconds % 1_000_000_000;
                    }
                    let s = format!("{v:09}");
                    let end = 9.min(printed + len);
                    let start = printed.min(end);
                    out.push_str(&s[start..end]);
                    printed = end;
                }
                Token::SubSec(c, len) => {
                    let v = if *c == 'C' { us } else { ns };
                    let _ = write!(out, "{v:0width$}", width = (*len).min(3));
                }
                Token::Field(c, n) => out.extend(std::iter::repeat_n(*c, *n)),
                Token::Epoch(_) => {}
            }
        }
        out
    }
}

/// Splits a pattern part into tokens. In the sub-second part only S/C/N are
/// letters; in the date part `T` is seconds since the epoch.
fn tokenize(chars: &[char], sub_part: bool, unit: &mut i64) -> Result<Vec<Token>, String> {
    let mut out: Vec<Token> = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let flush = |lit: &mut String, out: &mut Vec<Token>| {
        if !lit.is_empty() {
            out.push(Token::Literal(std::mem::take(lit)));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                lit.push('\'');
                i += 2;
                continue;
            }
            // Quoted literal up to the closing quote ('' inside is a quote).
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated quote".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        lit.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        lit.push(ch);
                        i += 1;
                    }
                }
            }
            continue;
        }
        let is_letter = c.is_ascii_alphabetic();
        if !is_letter || (sub_part && !SUB_SEC_LETTERS.contains(c)) {
            lit.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        flush(&mut lit, &mut out);
        i += n;
        if sub_part {
            out.push(Token::SubSec(c, n));
        } else if c == 'T' {
            if let Some(&u) = chars.get(i) {
                let unit_of = match u {
                    'd' => Some(10),
                    'c' => Some(100),
                    'm' => Some(1000),
                    'u' => Some(1_000_000),
                    'n' => Some(1_000_000_000),
                    _ => None,
                };
                if let Some(v) = unit_of {
                    *unit = v;
                    i += 1;
                }
            }
            out.push(Token::Epoch(n));
        } else {
            out.push(Token::Field(c, n));
        }
    }
    flush(&mut lit, &mut out);
    Ok(out)
}

fn parse_java_long(s: &str) -> Option<i64> {
    // DecimalFormat("0").parse: optional sign, digits, stops at the first other char.
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let v: i64 = digits[..end].parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month may be out of
/// 1..=12: it rolls over, as Java's lenient calendar does).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let m0 = month - 1;
    let y = year + m0.div_euclid(12);
    let m = m0.rem_euclid(12) + 1;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5; // day of year of the 1st of the month, March-based
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + (day - 1)
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_numeric_field(c: char, count: usize) -> bool {
    match c {
        'M' | 'L' => count <= 2,
        'E' | 'a' | 'z' | 'Z' | 'X' | 'G' => false,
        _ => true,
    }
}

/// Milliseconds since the epoch (UTC) of `text` read with `tokens`.
fn parse_date(tokens: &[Token], text: &[char]) -> Result<i64, String> {
    let (mut year, mut month, mut day) = (1970i64, 1i64, 1i64);
    let (mut hour, mut minute, mut second, mut milli) = (0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut hour12 = false;
    let mut offset_ms = 0i64;
    let mut day_of_year: Option<i64> = None;
    let mut pos = 0usize;
    for (k, tok) in tokens.iter().enumerate() {
        match tok {
            Token::Literal(s) => {
                for c in s.chars() {
                    if text.get(pos) == Some(&c) {
                        pos += 1;
                    } else {
                        return Err(format!("expected {c:?} at position {pos}"));
                    }
                }
            }
            Token::Epoch(_) | Token::SubSec(..) => {}
            Token::Field(c, count) => {
                while pos < text.len() && (text[pos] == ' ' || text[pos] == '\t') {
                    pos += 1;
                }
                if is_numeric_field(*c, *count) {
                    // Adjacent numeric fields use the pattern width; otherwise read all digits.
                    let obey = matches!(tokens.get(k + 1), Some(Token::Field(n, nc)) if is_numeric_field(*n, *nc));
                    let start = pos;
                    while pos < text.len()
                        && text[pos].is_ascii_digit()
                        && (!obey || pos - start < *count)
                    {
                        pos += 1;
                    }
                    if pos == start {
                        return Err(format!("expected digits for '{c}' at position {start}"));
                    }
                    let digits: String = text[start..pos].iter().collect();
                    let v: i64 = digits
                        .parse()
                        .map_err(|_| format!("number {digits} too large"))?;
                    match c {
                        'y' | 'Y' | 'u' => {
                            year = if *count <= 2 && digits.len() == 2 {
                                // Java: within 80 years before and 20 after now; fixed here
                                // to the 1946..2045 window for reproducible results.
                                if v < 46 {
                                    2000 + v
                                } else {
                                    1900 + v
                                }
                            } else {
                                v
                            }
                        }
                        'M' | 'L' => month = v,
                        'd' => day = v,
                        'D' => day_of_year = Some(v),
                        'H' => hour = v,
                        'k' => hour = if v == 24 { 0 } else { v },
                        'K' => {
                            hour = v;
                            hour12 = true;
                        }
                        'h' => {
                            hour = if v == 12 { 0 } else { v };
                            hour12 = true;
                        }
                        'm' => minute = v,
                        's' => second = v,
                        'S' => milli = v,
                        _ => {} // week fields and the like: read, not used
                    }
                } else {
                    let rest: String = text[pos..].iter().collect();
                    let lower = rest.to_ascii_lowercase();
                    match c {
                        'M' | 'L' => {
                            let (i, len) = match_name(&lower, &MONTHS).ok_or_else(|| {
                                format!("expected a month name at position {pos}")
                            })?;
                            month = i as i64 + 1;
                            pos += len;
                        }
                        'E' => {
                            let (_, len) = match_name(&lower, &DAYS)
                                .ok_or_else(|| format!("expected a day name at position {pos}"))?;
                            pos += len;
                        }
                        'a' => {
                            if lower.starts_with("am") {
                                pm = Some(false);
                            } else if lower.starts_with("pm") {
                                pm = Some(true);
                            } else {
                                return Err(format!("expected AM or PM at position {pos}"));
                            }
                            pos += 2;
                        }
                        'G' => {
                            if lower.starts_with("ad") || lower.starts_with("bc") {
                                pos += 2;
                            } else {
                                return Err(format!("expected an era at position {pos}"));
                            }
                        }
                        _ => {
                            let (off, len) = parse_zone(&rest)
                                .ok_or_else(|| format!("expected a time zone at position {pos}"))?;
                            offset_ms = off;
                            pos += len;
                        }
                    }
                }
            }
        }
    }
    if hour12 && pm == Some(true) {
        hour += 12;
    }
    // Lenient fields may be huge: compute wide, refuse what no i64 ns can hold.
    if !(-1_000_000..=1_000_000).contains(&year)
        || [month, day, hour, minute, second, milli]
            .iter()
            .chain(day_of_year.iter())
            .any(|v| v.abs() > 1_000_000_000_000)
    {
        return Err("field out of range".into());
    }
    let days = match day_of_year {
        Some(d) => days_from_civil(year, 1, 1) as i128 + d as i128 - 1,
        None => days_from_civil(year, month, day) as i128,
    };
    let ms = (((days * 24 + hour as i128) * 60 + minute as i128) * 60 + second as i128) * 1000
        + milli as i128
        - offset_ms as i128;
    i64::try_from(ms)
        .ok()
        .filter(|ms| ms.checked_mul(1_000_000).is_some())
        .ok_or_else(|| "time out of range".to_string())
}

/// Longest full name, else 3-letter abbreviation, at the start of `lower`.
fn match_name(lower: &str, names: &[&str]) -> Option<(usize, usize)> {
    for (i, n) in names.iter().enumerate() {
        if lower.starts_with(&n.to_ascii_lowercase()) {
            return Some((i, n.len()));
        }
    }
    for (i, n) in names.iter().enumerate() {
        if lower.starts_with(&n[..3].to_ascii_lowercase()) {
            return Some((i, 3));
        }
    }
    None
}

/// `Z`, `UTC`, `GMT`, `+hh`, `+hhmm`, `+hh:mm`, `GMT+hh:mm` → (offset ms, chars read).
fn parse_zone(s: &str) -> Option<(i64, usize)> {
    let b = s.as_bytes();
    if b.first() == Some(&b'Z') {
        return Some((0, 1));
    }
    let mut read = 0;
    for name in ["UTC", "GMT"] {
        if s.starts_with(name) {
            read = 3;
            if !matches!(b.get(3), Some(b'+') | Some(b'-')) {
                return Some((0, 3));
            }
        }
    }
    let sign = match b.get(read)? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    read += 1;
    let digit = |i: usize| {
        b.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| (c - b'0') as i64)
    };
    let h = digit(read)? * 10 + digit(read + 1)?;
    read += 2;
    let mut m = 0;
    let colon = b.get(read) == Some(&b':');
    let mstart = if colon { read + 1 } else { read };
    if let (Some(a), Some(c)) = (digit(mstart), digit(mstart + 1)) {
        m = a * 10 + c;
        read = mstart + 2;
    }
    Some((sign * (h * 60 + m) * 60_000, read))
}

fn format_date(tokens: &[Token], ms: i64, epoch_value: i64, out: &mut String) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    for t in tokens {
        match t {
            Token::Literal(l) => out.push_str(l),
            Token::Epoch(n) => {
                let _ = write!(out, "{epoch_value:0width$}", width = (*n).min(10));
            }
            Token::SubSec(..) => {}
            Token::Field(c, n) => {
                let n = *n;
                let num = |v: i64, out: &mut String| {
                    let _ = write!(out, "{v:0n$}");
                };
                match c {
                    'y' | 'Y' | 'u' => {
                        if n == 2 {
                            num(y.rem_euclid(100), out)
                        } else {
                            num(y, out)
                        }
                    }
                    'M' | 'L' => match n {
                        1 | 2 => num(mo, out),
                        3 => out.push_str(&MONTHS[mo as usize - 1][..3]),
                        _ => out.push_str(MONTHS[mo as usize - 1]),
                    },
                    'd' => num(d, out),
                    'D' => num(days - days_from_civil(y, 1, 1) + 1, out),
                    'H' => num(h, out),
                    'k' => num(if h == 0 { 24 } else { h }, out),
                    'K' => num(h % 12, out),
                    'h' => num(if h % 12 == 0 { 12 } else { h % 12 }, out),
                    'm' => num(mi, out),
                    's' => num(s, out),
                    'S' => num(milli, out),
                    'a' => out.push_str(if h < 12 { "AM" } else { "PM" }),
                    'E' => {
                        let name = DAYS[days.rem_euclid(7) as usize];
                        out.push_str(if n >= 4 { name } else { &name[..3] });
                    }
                    'z' => out.push_str("UTC"),
                    'Z' => out.push_str("+0000"),
                    'X' => out.push('Z'),
                    'G' => out.push_str("AD"),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsecond_dates_round_trip() {
        let f = TimestampFormat::new("yyyy-MM-dd HH:mm:ss.SSSSSS").unwrap();
        let ns = f.parse("2015-09-16 15:24:28.627866").unwrap();
        // 2015-09-16 is day 16694 since the epoch.
        assert_eq!(
            ns,
            (16694 * 86_400 + 15 * 3600 + 24 * 60 + 28) * 1_000_000_000 + 627_866_000
        );
        assert_eq!(f.format(ns), "2015-09-16 15:24:28.627866");
        assert_eq!(f.format(0), "1970-01-01 00:00:00.000000");
    }

    #[test]
    fn epoch_seconds_units_and_names() {
        let t = TimestampFormat::new("TTT.SSS SSS SSS").unwrap();
        assert_eq!(t.parse("12.345678901").unwrap(), 12_345_678_901);
        assert_eq!(t.parse("42").unwrap(), 42_000_000_000);
        // Trace Compass pads T to its pattern width (up to 10 digits).
        assert_eq!(t.format(12_345_678_901), "012.345 678 901");
        let ms = TimestampFormat::new("Tm").unwrap();
        assert_eq!(ms.parse("1500").unwrap(), 1_500_000_000);
        let named = TimestampFormat::new("dd MMM yyyy hh:mm a").unwrap();
        let v = named.parse("02 Jan 1970 01:30 PM").unwrap();
        assert_eq!(v, (86_400 + 13 * 3600 + 30 * 60) * 1_000_000_000);
        assert_eq!(named.format(v), "02 Jan 1970 01:30 PM");
        let zoned = TimestampFormat::new("yyyy-MM-dd'T'HH:mm:ssXXX").unwrap();
        assert_eq!(zoned.parse("1970-01-01T01:00:00+01:00").unwrap(), 0);
    }

    #[test]
    fn mismatches_and_bad_patterns_are_errors() {
        let f = TimestampFormat::new("yyyy-MM-dd HH:mm:ss.SSSSSS").unwrap();
        assert!(f.parse("2015/09/16 15:24:28.627866").is_err());
        assert!(f.parse("yesterday").is_err());
        assert!(TimestampFormat::new("HHmmssSSS").is_err()); // S with no delimiter before
        assert!(TimestampFormat::new("yyyy 'unterminated").is_err());
        assert!(TimestampFormat::new("yyyy-qq").is_err());
    }

    #[test]
    fn civil_conversions_agree() {
        for days in [-1000i64, -1, 0, 59, 365, 16694, 20000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2015, 13, 1), days_from_civil(2016, 1, 1));
    }
}
