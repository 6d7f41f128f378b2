//! State values: what an attribute holds over an interval.

use std::fmt;
use std::sync::Arc;

/// An attribute's value. Equality follows Trace Compass (Java `equals`): values of
/// different types are never equal, doubles compare by their bits after every NaN
/// is collapsed to one NaN (so `NaN == NaN` and `0.0 != -0.0`).
#[derive(Clone, Debug, Default)]
pub enum StateValue {
    #[default]
    Null,
    Int(i32),
    Long(i64),
    Double(f64),
    String(Arc<str>),
    /// A provider-defined value: a type id outside 0..=20 and opaque bytes.
    Custom(CustomValue),
}

/// Opaque custom state value (Trace Compass `CustomStateValue`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CustomValue {
    pub type_id: i8,
    pub bytes: Arc<[u8]>,
}

/// The type an attribute is locked to by its first non-null value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    Int,
    Long,
    Double,
    String,
    Custom(i8),
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueType::Int => f.write_str("int"),
            ValueType::Long => f.write_str("long"),
            ValueType::Double => f.write_str("double"),
            ValueType::String => f.write_str("string"),
            ValueType::Custom(id) => write!(f, "custom({id})"),
        }
    }
}

impl StateValue {
    /// The value's type, `None` for null.
    #[inline]
    pub fn value_type(&self) -> Option<ValueType> {
        match self {
            StateValue::Null => None,
            StateValue::Int(_) => Some(ValueType::Int),
            StateValue::Long(_) => Some(ValueType::Long),
            StateValue::Double(_) => Some(ValueType::Double),
            StateValue::String(_) => Some(ValueType::String),
            StateValue::Custom(c) => Some(ValueType::Custom(c.type_id)),
        }
    }

    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self, StateValue::Null)
    }

    /// Builds a string value.
    pub fn string(s: &str) -> StateValue {
        StateValue::String(Arc::from(s))
    }

    pub fn as_int(&self) -> Option<i32> {
        match self {
            StateValue::Int(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_long(&self) -> Option<i64> {
        match self {
            StateValue::Long(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_double(&self) -> Option<f64> {
        match self {
            StateValue::Double(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            StateValue::String(v) => Some(v),
            _ => None,
        }
    }
}

/// Java's `Double.equals`: bits after collapsing NaNs.
#[inline]
fn double_bits_for_equality(d: f64) -> u64 {
    if d.is_nan() {
        f64::NAN.to_bits()
    } else {
        d.to_bits()
    }
}

impl PartialEq for StateValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StateValue::Null, StateValue::Null) => true,
            (StateValue::Int(a), StateValue::Int(b)) => a == b,
            (StateValue::Long(a), StateValue::Long(b)) => a == b,
            (StateValue::Double(a), StateValue::Double(b)) => {
                double_bits_for_equality(*a) == double_bits_for_equality(*b)
            }
            (StateValue::String(a), StateValue::String(b)) => a == b,
            (StateValue::Custom(a), StateValue::Custom(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for StateValue {}

impl From<i32> for StateValue {
    fn from(v: i32) -> Self {
        StateValue::Int(v)
    }
}
impl From<i64> for StateValue {
    fn from(v: i64) -> Self {
        StateValue::Long(v)
    }
}
impl From<f64> for StateValue {
    fn from(v: f64) -> Self {
        StateValue::Double(v)
    }
}
impl From<&str> for StateValue {
    fn from(v: &str) -> Self {
        StateValue::string(v)
    }
}
impl From<String> for StateValue {
    fn from(v: String) -> Self {
        StateValue::String(Arc::from(v))
    }
}

/// The text form used by `sextant dump` and the golden files:
/// `null`, `int 5`, `long 5`, `double 0x<16 hex>`, `string "<json>"`.
impl fmt::Display for StateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateValue::Null => f.write_str("null"),
            StateValue::Int(v) => write!(f, "int {v}"),
            StateValue::Long(v) => write!(f, "long {v}"),
            StateValue::Double(v) => write!(f, "double 0x{:016x}", v.to_bits()),
            StateValue::String(s) => {
                f.write_str("string ")?;
                f.write_str(&serde_json::to_string(&**s).map_err(|_| fmt::Error)?)
            }
            StateValue::Custom(c) => {
                write!(f, "custom {} 0x", c.type_id)?;
                for b in c.bytes.iter() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// A state interval: `quark` held `value` from `start` to `end`, both inclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    pub start: i64,
    pub end: i64,
    pub quark: crate::Quark,
    pub value: StateValue,
}

impl Interval {
    pub fn new(start: i64, end: i64, quark: crate::Quark, value: StateValue) -> Self {
        Interval {
            start,
            end,
            quark,
            value,
        }
    }

    /// Whether `t` falls in `[start, end]`.
    #[inline]
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t <= self.end
    }

    /// Whether the interval meets `[lo, hi]`.
    #[inline]
    pub fn intersects(&self, lo: i64, hi: i64) -> bool {
        self.start <= hi && self.end >= lo
    }
}

/// `<quark> <start> <end> <value>`, the line format of dumps and query answers.
impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.quark, self.start, self.end, self.value
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_equality_rules() {
        assert_eq!(
            StateValue::Double(f64::NAN),
            StateValue::Double(f64::from_bits(0x7ff8000000000123))
        );
        assert_ne!(StateValue::Double(0.0), StateValue::Double(-0.0));
        assert_ne!(StateValue::Int(1), StateValue::Long(1));
        assert_ne!(StateValue::Null, StateValue::Int(0));
        assert_eq!(StateValue::string("a"), StateValue::from("a"));
    }

    #[test]
    fn display_matches_the_dump_format() {
        assert_eq!(StateValue::Null.to_string(), "null");
        assert_eq!(StateValue::Int(-5).to_string(), "int -5");
        assert_eq!(
            StateValue::Long(i64::MAX).to_string(),
            "long 9223372036854775807"
        );
        assert_eq!(
            StateValue::Double(1.5).to_string(),
            "double 0x3ff8000000000000"
        );
        assert_eq!(
            StateValue::string("a\"\u{1}é").to_string(),
            "string \"a\\\"\\u0001é\""
        );
    }
}
