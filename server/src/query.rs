//! Request bodies: `{"parameters": {...}}` parsing and the time sampling of
//! tsp.md §6.1. Numbers are read as exact `i64`, never through `f64`.

use serde_json::{Map, Value};

/// Largest `nbTimes` honoured (Trace Compass's cap); larger values are clamped.
pub const MAX_NB_TIMES: i64 = 65_536;
/// Most entries one states/xy/tooltip request may name.
pub const MAX_REQUESTED_ITEMS: usize = 100_000;
/// Most explicit `requested_times` accepted.
pub const MAX_REQUESTED_TIMES: usize = MAX_NB_TIMES as usize + 1;

/// Why a request's parameters were refused (HTTP 400, tsp.md §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// No body, or a body that is not JSON: `Missing query parameters`.
    MissingBody,
    /// Body present but not a JSON object: `Invalid query parameters`.
    MalformedBody(String),
    /// `Missing query parameters: <key>`.
    Missing(&'static str),
    /// `Invalid query parameters: <key>` with a detail.
    Invalid(&'static str, String),
    /// `requested_timerange` with start after end: answered as a FAILED response.
    BadInterval,
}

/// The status message Trace Compass uses for a reversed interval.
pub const BAD_INTERVAL_MESSAGE: &str =
    "Incorrect query interval. Start time must be smaller than end time";

/// Parses a request body into its `parameters` object (`null`/absent = `{}`).
pub fn parse_parameters(body: &[u8]) -> Result<Map<String, Value>, QueryError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(QueryError::MissingBody);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| QueryError::MalformedBody(e.to_string()))?;
    let Value::Object(mut top) = value else {
        return Err(QueryError::MalformedBody(
            "the body must be a JSON object".into(),
        ));
    };
    match top.remove("parameters") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(p)) => Ok(p),
        Some(_) => Err(QueryError::Invalid(
            "parameters",
            "`parameters` must be an object".into(),
        )),
    }
}

/// A required string parameter.
pub fn required_str<'a>(
    p: &'a Map<String, Value>,
    key: &'static str,
) -> Result<&'a str, QueryError> {
    match p.get(key) {
        None | Some(Value::Null) => Err(QueryError::Missing(key)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(QueryError::Invalid(
            key,
            format!("`{key}` must be a string"),
        )),
    }
}

/// An optional string parameter.
pub fn optional_str<'a>(
    p: &'a Map<String, Value>,
    key: &'static str,
) -> Result<Option<&'a str>, QueryError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(QueryError::Invalid(
            key,
            format!("`{key}` must be a string"),
        )),
    }
}

fn exact_i64(v: &Value, key: &'static str, what: &str) -> Result<i64, QueryError> {
    v.as_i64().ok_or_else(|| {
        QueryError::Invalid(
            key,
            format!("`{what}` must be an integer within the i64 range"),
        )
    })
}

/// The sample times of tsp.md §6.1 for `[start, end]` and `nb_times`.
///
/// `nb_times` ≤ 1 or absent gives `[start, end]`; otherwise a step of
/// `max((end - start) / (nb - 1), 1)` from `start` while below `end`, then `end`.
/// `start` must not exceed `end`.
pub fn sample_times(start: i64, end: i64, nb_times: Option<i64>) -> Vec<i64> {
    let nb = nb_times.map(|n| n.min(MAX_NB_TIMES));
    match nb {
        Some(nb) if nb > 1 => {
            let span = end as i128 - start as i128;
            let step = (span / (nb as i128 - 1)).max(1);
            let mut times = Vec::with_capacity((nb + 1) as usize);
            let mut t = start as i128;
            while t < end as i128 {
                times.push(t as i64);
                t += step;
            }
            times.push(end);
            times
        }
        _ => {
            if start == end {
                vec![start]
            } else {
                vec![start, end]
            }
        }
    }
}

/// `requested_timerange` as (start, end, nbTimes), if present.
pub fn time_range(p: &Map<String, Value>) -> Result<Option<(i64, i64, Option<i64>)>, QueryError> {
    const KEY: &str = "requested_timerange";
    let range = match p.get(KEY) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(r)) => r,
        Some(_) => return Err(QueryError::Invalid(KEY, "must be an object".into())),
    };
    let start = range.get("start").ok_or(QueryError::Missing(KEY))?;
    let end = range.get("end").ok_or(QueryError::Missing(KEY))?;
    let start = exact_i64(start, KEY, "start")?;
    let end = exact_i64(end, KEY, "end")?;
    let nb = match range.get("nbTimes") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let nb = exact_i64(v, KEY, "nbTimes")?;
            // The protocol's nbTimes is an int32; larger values are refused, valid
            // ones above the sample cap are clamped (tsp.md §6.1).
            if i32::try_from(nb).is_err() {
                return Err(QueryError::Invalid(
                    KEY,
                    format!("`nbTimes` {nb} is not a 32-bit integer"),
                ));
            }
            Some(nb)
        }
    };
    Ok(Some((start, end, nb)))
}

/// `requested_times`, sorted and without duplicates, if present.
pub fn requested_times(p: &Map<String, Value>) -> Result<Option<Vec<i64>>, QueryError> {
    const KEY: &str = "requested_times";
    let list = match p.get(KEY) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(QueryError::Invalid(
                KEY,
                "must be an array of integers".into(),
            ))
        }
    };
    if list.is_empty() {
        return Err(QueryError::Invalid(KEY, "must not be empty".into()));
    }
    if list.len() > MAX_REQUESTED_TIMES {
        return Err(QueryError::Invalid(
            KEY,
            format!("at most {MAX_REQUESTED_TIMES} times per request"),
        ));
    }
    let mut times = list
        .iter()
        .map(|v| exact_i64(v, KEY, "requested_times[]"))
        .collect::<Result<Vec<_>, _>>()?;
    times.sort_unstable();
    times.dedup();
    Ok(Some(times))
}

/// `requested_items`, if present (at most [`MAX_REQUESTED_ITEMS`]).
pub fn requested_items(p: &Map<String, Value>) -> Result<Option<Vec<i64>>, QueryError> {
    const KEY: &str = "requested_items";
    let list = match p.get(KEY) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(QueryError::Invalid(
                KEY,
                "must be an array of integers".into(),
            ))
        }
    };
    if list.len() > MAX_REQUESTED_ITEMS {
        return Err(QueryError::Invalid(
            KEY,
            format!("at most {MAX_REQUESTED_ITEMS} items per request"),
        ));
    }
    list.iter()
        .map(|v| exact_i64(v, KEY, "requested_items[]"))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A tree request: the optional requested range.
#[derive(Clone, Debug, Default)]
pub struct TreeQuery {
    pub range: Option<(i64, i64)>,
    pub parameters: Map<String, Value>,
}

impl TreeQuery {
    pub fn parse(p: Map<String, Value>) -> Result<Self, QueryError> {
        let range = match time_range(&p)? {
            Some((s, e, _)) if s > e => return Err(QueryError::BadInterval),
            Some((s, e, _)) => Some((s, e)),
            None => None,
        };
        Ok(TreeQuery {
            range,
            parameters: p,
        })
    }
}

/// A sampled data request (states, xy, arrows, annotations).
#[derive(Clone, Debug)]
pub struct DataQuery {
    /// Sorted sample times (tsp.md §6.1), never empty.
    pub times: Vec<i64>,
    /// Entry ids asked for; `None` when the request named none.
    pub items: Option<Vec<i64>>,
    /// The whole `parameters` object, for provider-specific keys.
    pub parameters: Map<String, Value>,
}

impl DataQuery {
    /// Parses `requested_timerange` (or `requested_times`) and `requested_items`;
    /// `items_required` makes a missing `requested_items` an error.
    pub fn parse(p: Map<String, Value>, items_required: bool) -> Result<Self, QueryError> {
        let times = match time_range(&p)? {
            Some((s, e, _)) if s > e => return Err(QueryError::BadInterval),
            Some((s, e, nb)) => sample_times(s, e, nb),
            None => requested_times(&p)?.ok_or(QueryError::Missing("requested_timerange"))?,
        };
        let items = requested_items(&p)?;
        if items_required && items.is_none() {
            return Err(QueryError::Missing("requested_items"));
        }
        Ok(DataQuery {
            times,
            items,
            parameters: p,
        })
    }

    pub fn start(&self) -> i64 {
        self.times[0]
    }

    pub fn end(&self) -> i64 {
        self.times[self.times.len() - 1]
    }
}

/// A tooltip request: the time (first of `requested_times`), items and element.
#[derive(Clone, Debug)]
pub struct TooltipQuery {
    pub time: i64,
    pub items: Vec<i64>,
    pub element: Map<String, Value>,
}

impl TooltipQuery {
    pub fn parse(p: Map<String, Value>) -> Result<Self, QueryError> {
        let times = requested_times(&p)?.ok_or(QueryError::Missing("requested_times"))?;
        let items = requested_items(&p)?.ok_or(QueryError::Missing("requested_items"))?;
        let element = match p.get("requested_element") {
            None | Some(Value::Null) => return Err(QueryError::Missing("requested_element")),
            Some(Value::Object(o)) => o.clone(),
            Some(_) => {
                return Err(QueryError::Invalid(
                    "requested_element",
                    "must be an object".into(),
                ))
            }
        };
        Ok(TooltipQuery {
            time: times[0],
            items,
            element,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_matches_the_spec_examples() {
        assert_eq!(
            sample_times(1000, 2000, Some(5)),
            [1000, 1250, 1500, 1750, 2000]
        );
        assert_eq!(sample_times(0, 10, Some(4)), [0, 3, 6, 9, 10]);
        assert_eq!(sample_times(0, 3, Some(10)), [0, 1, 2, 3]);
        assert_eq!(sample_times(0, 10, None), [0, 10]);
        assert_eq!(sample_times(0, 10, Some(1)), [0, 10]);
        assert_eq!(sample_times(5, 5, Some(100)), [5]);
        // The 92.4 s kernel trace with nbTimes 1501 → 1502 times (truncated step),
        // an exactly divisible range → 1501.
        assert_eq!(
            sample_times(1450193684107249704, 1450193776505076263, Some(1501)).len(),
            1502
        );
        assert_eq!(sample_times(0, 92_400_000_000, Some(1501)).len(), 1501);
        // Clamped to 65536 samples (+1 for the end).
        assert!(sample_times(0, i64::MAX, Some(i64::MAX)).len() <= 65_537);
        // Extreme range without overflow.
        let t = sample_times(i64::MIN, i64::MAX, Some(3));
        assert_eq!((t[0], *t.last().unwrap()), (i64::MIN, i64::MAX));
    }

    #[test]
    fn parameters_parsing() {
        assert_eq!(parse_parameters(b""), Err(QueryError::MissingBody));
        assert!(matches!(
            parse_parameters(b"{"),
            Err(QueryError::MalformedBody(_))
        ));
        assert!(parse_parameters(b"{}").unwrap().is_empty());
        assert!(parse_parameters(br#"{"parameters":null}"#)
            .unwrap()
            .is_empty());
        let p = parse_parameters(
            br#"{"parameters":{"requested_timerange":{"start":1700000000025765430,"end":1700000000025765431}}}"#,
        )
        .unwrap();
        assert_eq!(
            time_range(&p).unwrap(),
            Some((1700000000025765430, 1700000000025765431, None))
        );
        let p =
            parse_parameters(br#"{"parameters":{"requested_timerange":{"start":1.5,"end":2}}}"#)
                .unwrap();
        assert!(matches!(time_range(&p), Err(QueryError::Invalid(..))));
    }
}
