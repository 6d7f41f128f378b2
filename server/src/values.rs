//! State value → label / style-key / text conversions shared by outputs
//! (tsp.md §7.2 and §7.3), following Trace Compass's Java string forms.

use sht::StateValue;

/// Java `String.hashCode`: `h = 31*h + c` over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// Java `Double.toString` (shortest digits; scientific outside [1e-3, 1e7)).
pub fn java_double_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = d.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{d}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        // Rust `{:e}` gives the shortest digits as `1.5e20` / `1e-5`.
        let s = format!("{d:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exp}")
    }
}

/// Java `String.valueOf(stateValue)`: the text of tooltips (`"null"` for null).
pub fn value_text(v: &StateValue) -> String {
    match v {
        StateValue::Null => "null".into(),
        StateValue::Int(i) => i.to_string(),
        StateValue::Long(l) => l.to_string(),
        StateValue::Double(d) => java_double_string(*d),
        StateValue::String(s) => s.to_string(),
        StateValue::Custom(c) => {
            let mut out = format!("custom({})", c.type_id);
            for b in c.bytes.iter() {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
    }
}

/// The label of a state (tsp.md §7.2): ints in decimal, longs as `0x` + hex,
/// strings as is, doubles and nulls without a label.
pub fn state_label(v: &StateValue) -> Option<String> {
    match v {
        StateValue::Int(i) => Some(i.to_string()),
        StateValue::Long(l) => Some(format!("0x{l:x}")),
        StateValue::String(s) => Some(s.to_string()),
        StateValue::Null | StateValue::Double(_) | StateValue::Custom(_) => None,
    }
}

/// Number of colour keys of the state system explorer palette.
pub const EXPLORER_PALETTE_SIZE: i32 = 9;

/// State system explorer style key (tsp.md §7.3): `floorMod(hash(text), 9)` or `Unknown`.
/// Static, so that a state's style allocates nothing.
pub fn explorer_style_key(v: &StateValue) -> &'static str {
    const KEYS: [&str; EXPLORER_PALETTE_SIZE as usize] =
        ["0", "1", "2", "3", "4", "5", "6", "7", "8"];
    if v.is_null() {
        "Unknown"
    } else {
        KEYS[java_string_hash(&value_text(v)).rem_euclid(EXPLORER_PALETTE_SIZE) as usize]
    }
}

/// The numeric reading of a value for XY outputs.
pub fn numeric(v: &StateValue) -> Option<f64> {
    match v {
        StateValue::Int(i) => Some(*i as f64),
        StateValue::Long(l) => Some(*l as f64),
        StateValue::Double(d) if d.is_finite() => Some(*d),
        _ => None,
    }
}

/// `#rrggbb` of an HSB colour (hue in degrees, saturation and brightness in 0..1).
pub fn hsb_color(hue: f64, saturation: f64, brightness: f64) -> String {
    let h = (hue.rem_euclid(360.0)) / 60.0;
    let c = brightness * saturation;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = brightness - c;
    let to = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    format!("#{:02x}{:02x}{:02x}", to(r), to(g), to(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_known_values() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99162322);
        // Wraps like Java: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(
            explorer_style_key(&StateValue::string("polygenelubricants")),
            (i32::MIN.rem_euclid(9)).to_string()
        );
    }

    #[test]
    fn java_double_strings() {
        assert_eq!(java_double_string(1.0), "1.0");
        assert_eq!(java_double_string(0.5), "0.5");
        assert_eq!(java_double_string(-0.0), "-0.0");
        assert_eq!(java_double_string(1e20), "1.0E20");
        assert_eq!(java_double_string(1.5e-5), "1.5E-5");
        assert_eq!(java_double_string(12345678.0), "1.2345678E7");
        assert_eq!(java_double_string(f64::NAN), "NaN");
    }

    #[test]
    fn labels_and_keys() {
        assert_eq!(state_label(&StateValue::Int(-3)).as_deref(), Some("-3"));
        assert_eq!(state_label(&StateValue::Long(255)).as_deref(), Some("0xff"));
        assert_eq!(state_label(&StateValue::Double(1.0)), None);
        assert_eq!(state_label(&StateValue::Null), None);
        assert_eq!(explorer_style_key(&StateValue::Null), "Unknown");
        // "2".hashCode() = 50, 50 mod 9 = 5.
        assert_eq!(explorer_style_key(&StateValue::Int(2)), "5");
        assert_eq!(value_text(&StateValue::Null), "null");
        assert_eq!(hsb_color(0.0, 1.0, 1.0), "#ff0000");
    }
}
