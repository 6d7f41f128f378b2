//! Synchronization results as JSON (printed by `sextant sync --json`, saved beside
//! histories) and read back: formulas keep their exact fractions so a saved file
//! reproduces the same timestamps.

use super::algorithm::SyncResult;
use super::exact::{BigInt, Ratio};
use super::transform::LinearTransform;
use serde_json::{json, Value};

/// Digits printed for decimal slopes and offsets (Trace Compass's `DECIMAL128`).
pub const DECIMAL_DIGITS: usize = 34;

fn fraction_text(r: &Ratio) -> String {
    format!("{}/{}", r.numer(), r.denom())
}

/// Parses `num/den` or a decimal.
fn parse_exact(text: &str) -> Option<Ratio> {
    match text.split_once('/') {
        Some((n, d)) => {
            let n = Ratio::parse_decimal(n).ok()?;
            let d = Ratio::parse_decimal(d).ok()?;
            if n.denom() != &BigInt::from_i128(1) || d.denom() != &BigInt::from_i128(1) {
                return None;
            }
            n.div(&d)
        }
        None => Ratio::parse_decimal(text).ok(),
    }
}

/// A formula as JSON: decimal texts to read, exact fractions to reload.
pub fn transform_json(t: &LinearTransform) -> Value {
    json!({
        "slope": t.slope().to_decimal(DECIMAL_DIGITS),
        "offset": t.offset().to_decimal(DECIMAL_DIGITS),
        "slope_exact": fraction_text(t.slope()),
        "offset_exact": fraction_text(t.offset()),
    })
}

/// Reads a formula written by [`transform_json`] (exact fractions preferred, decimals
/// accepted).
pub fn transform_from_json(v: &Value) -> Option<LinearTransform> {
    let field = |exact: &str, dec: &str| {
        v.get(exact)
            .and_then(Value::as_str)
            .or_else(|| v.get(dec).and_then(Value::as_str))
            .and_then(parse_exact)
    };
    Some(LinearTransform::new(
        field("slope_exact", "slope")?,
        field("offset_exact", "offset")?,
    ))
}

impl SyncResult {
    /// The whole result; `names[i]` labels trace `i`.
    pub fn to_json(&self, names: &[String]) -> Value {
        let traces: Vec<Value> = self
            .traces
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({
                    "name": names.get(i).cloned().unwrap_or_default(),
                    "host": t.host,
                    "status": t.status.as_str(),
                    "transform": transform_json(&t.transform),
                })
            })
            .collect();
        let pairs: Vec<Value> = self
            .pairs
            .iter()
            .map(|p| {
                let s = &p.stats;
                json!({
                    "reference_host": p.reference_host,
                    "other_host": p.other_host,
                    "quality": s.quality.as_str(),
                    "matches": s.matches,
                    "accurate_matches": s.accurate_matches,
                    "upper_hull_points": s.upper_hull_points,
                    "lower_hull_points": s.lower_hull_points,
                    "alpha": s.alpha.to_decimal(DECIMAL_DIGITS),
                    "beta": s.beta.to_decimal(DECIMAL_DIGITS),
                    "accuracy": s.accuracy.to_decimal(6),
                })
            })
            .collect();
        json!({
            "synchronized": self.is_synchronized(),
            "reference_host": self.reference_host,
            "matches": self.matches,
            "peak_waiting_events": self.peak_waiting,
            "traces": traces,
            "pairs": pairs,
        })
    }
}

/// A saved result that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SavedSyncError {
    #[error("synchronization file: no \"traces\" array")]
    NoTraces,
    #[error("synchronization file: trace {index} has no usable \"transform\"")]
    BadTransform { index: usize },
    #[error("synchronization file lists {found} traces, the experiment has {expected}")]
    TraceCount { found: usize, expected: usize },
}

/// Formulas (trace order) from a JSON written by [`SyncResult::to_json`], checked against
/// the experiment's trace count.
pub fn transforms_from_json(
    v: &Value,
    trace_count: usize,
) -> Result<Vec<LinearTransform>, SavedSyncError> {
    let traces = v
        .get("traces")
        .and_then(Value::as_array)
        .ok_or(SavedSyncError::NoTraces)?;
    if traces.len() != trace_count {
        return Err(SavedSyncError::TraceCount {
            found: traces.len(),
            expected: trace_count,
        });
    }
    traces
        .iter()
        .enumerate()
        .map(|(index, t)| {
            t.get("transform")
                .and_then(transform_from_json)
                .ok_or(SavedSyncError::BadTransform { index })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{Direction, MatchKey, Synchronizer, TcpKey};

    fn sample() -> SyncResult {
        let mut s = Synchronizer::new(&["b", "a"]);
        let key = |seq| {
            MatchKey::Tcp(TcpKey {
                seq,
                ack_seq: 0,
                flags: 0,
            })
        };
        let mut seq = 0;
        for i in 0..20i64 {
            let t = 1_000_000_000 + i * 10_000_000;
            seq += 1;
            s.process(0, t + 5_000_000_000, Direction::Send, key(seq));
            s.process(1, t + 50_000, Direction::Receive, key(seq));
            seq += 1;
            s.process(1, t + 100_000, Direction::Send, key(seq));
            s.process(0, t + 5_000_150_000, Direction::Receive, key(seq));
        }
        s.result()
    }

    #[test]
    fn json_round_trips_the_exact_formulas() {
        let r = sample();
        assert!(r.is_synchronized());
        let v = r.to_json(&["b-trace".into(), "a-trace".into()]);
        assert_eq!(v["matches"], 40);
        assert_eq!(v["traces"][0]["status"], "synchronized");
        assert_eq!(v["traces"][1]["status"], "reference");
        assert_eq!(v["pairs"][0]["quality"], "accurate");
        let back = transforms_from_json(&v, 2).unwrap();
        assert_eq!(back, r.transforms());
        // through text too
        let text = serde_json::to_string(&v).unwrap();
        let v2: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(transforms_from_json(&v2, 2).unwrap(), r.transforms());
    }

    #[test]
    fn bad_saved_files_are_typed_errors() {
        let v = sample().to_json(&[]);
        assert!(matches!(
            transforms_from_json(&v, 3),
            Err(SavedSyncError::TraceCount {
                found: 2,
                expected: 3
            })
        ));
        assert!(matches!(
            transforms_from_json(&json!({}), 2),
            Err(SavedSyncError::NoTraces)
        ));
        let bad = json!({"traces": [{"transform": {"slope": "x", "offset": "0"}}]});
        assert!(matches!(
            transforms_from_json(&bad, 1),
            Err(SavedSyncError::BadTransform { index: 0 })
        ));
        let zero_den = json!({"traces": [{"transform": {"slope_exact": "1/0", "offset": "0"}}]});
        assert!(transforms_from_json(&zero_den, 1).is_err());
        // decimals alone are accepted
        let dec = json!({"traces": [{"transform": {"slope": "1.5", "offset": "-2"}}]});
        let t = transforms_from_json(&dec, 1).unwrap();
        assert_eq!(t[0].apply(10), 13);
    }
}
