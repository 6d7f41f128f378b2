//! Linear timestamp transforms `f(t) = slope * t + offset`, exact.
//!
//! The formula is kept as exact rationals. Applying it to a timestamp gives
//! `floor(f(t))` exactly (Trace Compass truncates its `BigDecimal` result, the
//! same for positive times): a 128-bit fixed-point path answers almost every
//! call, and the rare timestamp whose result lies within 2^-64 ns of an integer
//! is recomputed with the rationals. Trace Compass's own fast transform
//! (`TmfTimestampTransformLinearFast`) keeps the slope to 2^-30 and may be off
//! by a few ns; this one is not.

use super::exact::{BigInt, Ratio};
use std::fmt;
use std::sync::OnceLock;

/// `synchronized = slope * original + offset` (ns), exact.
#[derive(Clone)]
pub struct LinearTransform {
    slope: Ratio,
    offset: Ratio,
    /// Computed on first use: synchronization builds several intermediate formulas
    /// (per pair, inverses, compositions) that are never applied, and the fixed-point
    /// constants cost big-integer divisions.
    fast: OnceLock<Option<FixedPoint>>,
}

impl PartialEq for LinearTransform {
    fn eq(&self, other: &Self) -> bool {
        // `fast` is a function of these two.
        self.slope == other.slope && self.offset == other.offset
    }
}

impl Eq for LinearTransform {}

/// `f(t) = slope_int * u + hi(slope_frac * u) + base` with `u = t + 2^63` (so `u` is a `u64`)
/// and 128 fraction bits for the slope's and the base's fractional parts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FixedPoint {
    slope_int: i128,
    slope_frac: u128,
    base_int: i128,
    base_frac: u128,
    /// First tier, for `t >= 0`: `f(t) = slope_int * t + offset_int + (slope_frac64 * t +
    /// offset_frac64) / 2^64` with both fractions truncated to 64 bits (one 64x64 product).
    slope_frac64: u64,
    offset_int: i128,
    offset_frac64: u64,
}

/// |slope_int| bound keeping `slope_int * u` (u < 2^64) inside i128.
const MAX_FAST_SLOPE_INT: i128 = 1 << 62;

impl FixedPoint {
    fn new(slope: &Ratio, offset: &Ratio) -> Option<FixedPoint> {
        let two63 = Ratio::from_int(1 << 63);
        // f(t) = slope * (u - 2^63) + offset = slope * u + (offset - slope * 2^63)
        let base = offset.sub(&slope.mul(&two63));
        let split = |r: &Ratio| -> Option<(i128, u128)> {
            let int = r.floor();
            let frac = r.sub(&Ratio::new(int.clone(), BigInt::from_i128(1)));
            let frac_bits = frac.floor_shifted(128);
            // frac in [0, 1): its 128-bit image fits a u128.
            let f = frac_bits.to_i128().map(|v| v as u128).or_else(|| {
                let hi = frac_bits.div_floor(&BigInt::from_i128(1i128 << 64));
                let (h, l) = (hi.0.to_i128()?, hi.1.to_i128()?);
                Some(((h as u128) << 64) | l as u128)
            })?;
            Some((int.to_i128()?, f))
        };
        let (slope_int, slope_frac) = split(slope)?;
        let (base_int, base_frac) = split(&base)?;
        let (offset_int, offset_frac) = split(offset)?;
        if slope_int.abs() >= MAX_FAST_SLOPE_INT
            || base_int.abs() >= 1 << 125
            || offset_int.abs() >= 1 << 125
        {
            return None;
        }
        Some(FixedPoint {
            slope_int,
            slope_frac,
            base_int,
            base_frac,
            slope_frac64: (slope_frac >> 64) as u64,
            offset_int,
            offset_frac64: (offset_frac >> 64) as u64,
        })
    }

    /// `floor(f(t))`, or `None` when the fixed-point value is too close to an integer to be sure.
    #[inline]
    fn apply(&self, t: i64) -> Option<i128> {
        if t >= 0 {
            // Truncating the fractions to 64 bits makes the computed value low by less than
            // (t + 1) * 2^-64: the floor is sure unless the fraction is that close to 1
            // (about t / 2^64 of the times: a few percent for times since 1970).
            let p = self.slope_frac64 as u128 * t as u128;
            let (frac, carry) = (p as u64).overflowing_add(self.offset_frac64);
            if frac < u64::MAX - t as u64 {
                return Some(
                    // |slope_int| < 2^62: one 64x64 product.
                    (self.slope_int as i64 as i128) * t as i128
                        + (p >> 64) as i128
                        + self.offset_int
                        + carry as i128,
                );
            }
        }
        self.tier2(t)
    }

    /// The 128-bit path of [`apply`](Self::apply), for any `t`.
    #[inline]
    fn tier2(&self, t: i64) -> Option<i128> {
        let u = (t as u64) ^ (1 << 63); // t + 2^63 as unsigned
                                        // slope_frac * u: 192-bit product; keep its top 64 bits (integer) and low 128 (fraction).
        let (fh, fl) = ((self.slope_frac >> 64) as u64, self.slope_frac as u64);
        let p_lo = fl as u128 * u as u128;
        let p_hi = fh as u128 * u as u128 + (p_lo >> 64);
        let prod_int = (p_hi >> 64) as i128;
        let prod_frac = (p_hi << 64) | (p_lo & u64::MAX as u128);
        let (frac, carry) = prod_frac.overflowing_add(self.base_frac);
        // The slope fraction was truncated by < 2^-128 and u < 2^64, the base by < 2^-128: the
        // exact value is in [computed, computed + 2^-63). Only a fraction that close to 1 is unsure.
        if frac > u128::MAX - (1u128 << 65) {
            return None;
        }
        Some(self.slope_int * u as i128 + prod_int + self.base_int + carry as i128)
    }
}

impl LinearTransform {
    /// The identity (slope 1, offset 0).
    pub fn identity() -> LinearTransform {
        LinearTransform::new(Ratio::one(), Ratio::zero())
    }

    pub fn new(slope: Ratio, offset: Ratio) -> LinearTransform {
        LinearTransform {
            slope,
            offset,
            fast: OnceLock::new(),
        }
    }

    fn fast(&self) -> Option<&FixedPoint> {
        self.fast
            .get_or_init(|| FixedPoint::new(&self.slope, &self.offset))
            .as_ref()
    }

    /// The per-event form of this formula, fastest for timestamps from `base` on (from the
    /// trace's clock offset: LTTng timestamps are that plus the time since boot).
    pub(crate) fn applier_from(&self, base: i64) -> Applier {
        let f = self.fast();
        // f(base), to 64 fraction bits: f(t) = f(base) + slope * (t - base).
        let at_base = self
            .slope
            .mul(&Ratio::from_int(base as i128))
            .add(&self.offset);
        let split64 = |r: &Ratio| -> Option<(i64, u64)> {
            let int = r.floor();
            let frac = r.sub(&Ratio::new(int.clone(), BigInt::from_i128(1)));
            let bits = frac.floor_shifted(64).to_i128()?;
            Some((
                i64::try_from(int.to_i128()?).ok()?,
                u64::try_from(bits).ok()?,
            ))
        };
        let tier1 = f.and_then(|f| {
            let slope_int = i64::try_from(f.slope_int).ok()?;
            let (base_int, base_frac) = split64(&at_base)?;
            Some((slope_int, base_int, base_frac))
        });
        Applier {
            tier1: tier1.is_some(),
            base,
            slope_int: tier1.map_or(0, |t| t.0),
            base_int: tier1.map_or(0, |t| t.1),
            slope_frac: f.map_or(0, |f| f.slope_frac64),
            base_frac: tier1.map_or(0, |t| t.2),
            fixed: f.copied(),
            transform: Box::new(self.clone()),
        }
    }

    /// Parses decimal slope and offset texts (as Trace Compass prints them).
    pub fn from_decimal(
        slope: &str,
        offset: &str,
    ) -> Result<LinearTransform, super::exact::BadDecimal> {
        Ok(LinearTransform::new(
            Ratio::parse_decimal(slope)?,
            Ratio::parse_decimal(offset)?,
        ))
    }

    pub fn slope(&self) -> &Ratio {
        &self.slope
    }

    pub fn offset(&self) -> &Ratio {
        &self.offset
    }

    pub fn is_identity(&self) -> bool {
        self.slope == Ratio::one() && self.offset.is_zero()
    }

    /// `floor(slope * t + offset)`, saturated to the `i64` range.
    #[inline]
    pub fn apply(&self, t: i64) -> i64 {
        // (By reference: copying the fixed-point constants per call costs more than using them.)
        let exact = match self.fast().and_then(|f| f.apply(t)) {
            Some(v) => v,
            None => self.apply_exact(t),
        };
        i64::try_from(exact).unwrap_or(if exact < 0 { i64::MIN } else { i64::MAX })
    }

    /// The same through rationals only (reference for the fast path).
    pub fn apply_exact(&self, t: i64) -> i128 {
        let v = self
            .slope
            .mul(&Ratio::from_int(t as i128))
            .add(&self.offset)
            .floor();
        v.to_i128().unwrap_or(if v.is_negative() {
            i128::MIN
        } else {
            i128::MAX
        })
    }

    /// `self ∘ inner`: `t -> self(inner(t))`.
    pub fn compose(&self, inner: &LinearTransform) -> LinearTransform {
        if self.is_identity() {
            return inner.clone();
        }
        LinearTransform::new(
            self.slope.mul(&inner.slope),
            self.slope.mul(&inner.offset).add(&self.offset),
        )
    }

    /// The inverse formula, `None` for a zero slope.
    pub fn inverse(&self) -> Option<LinearTransform> {
        let slope = Ratio::one().div(&self.slope)?;
        let offset = self.offset.neg().div(&self.slope)?;
        Some(LinearTransform::new(slope, offset))
    }
}

/// A formula as an experiment applies it to every event: a first tier in 64-bit arithmetic
/// from a base time (one 64x64 product), anything else through [`FixedPoint::apply`]'s second
/// tier or [`LinearTransform::apply`] (same results).
#[derive(Clone, Debug)]
pub(crate) struct Applier {
    /// Whether the integer parts fit 64 bits (else always the general path).
    tier1: bool,
    /// The first tier serves timestamps from here on.
    base: i64,
    slope_int: i64,
    /// The slope's fraction, truncated to 64 bits.
    slope_frac: u64,
    /// `f(base)`: integer part and fraction truncated to 64 bits.
    base_int: i64,
    base_frac: u64,
    fixed: Option<FixedPoint>,
    transform: Box<LinearTransform>,
}

impl Applier {
    #[inline(always)]
    pub(crate) fn apply(&self, t: i64) -> i64 {
        if self.tier1 && t >= self.base {
            // f(t) = f(base) + slope * d. Both fractions are truncated, so the computed value
            // is low by less than (d + 1) * 2^-64: its floor is sure unless the fraction is
            // that close to 1 (about d / 2^64 of the times: rare, d being the time since boot
            // for LTTng clocks).
            let d = t.wrapping_sub(self.base) as u64;
            let p = self.slope_frac as u128 * d as u128;
            let (frac, carry) = (p as u64).overflowing_add(self.base_frac);
            if frac < u64::MAX - d {
                let v = i64::try_from(d).ok().and_then(|d| {
                    self.slope_int
                        .checked_mul(d)?
                        .checked_add(self.base_int)?
                        .checked_add((p >> 64) as i64 + carry as i64)
                });
                if let Some(v) = v {
                    return v;
                }
            }
        }
        self.slow(t)
    }

    #[cold]
    #[inline(never)]
    fn slow(&self, t: i64) -> i64 {
        // (The first tier already failed: straight to the second.)
        match self.fixed.as_ref().and_then(|f| f.tier2(t)) {
            Some(v) => i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX }),
            None => self.transform.apply(t),
        }
    }

    pub(crate) fn transform(&self) -> &LinearTransform {
        &self.transform
    }
}

impl fmt::Debug for LinearTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LinearTransform [ slope = {}, offset = {} ]",
            self.slope.to_decimal(34),
            self.offset.to_decimal(34)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden() -> LinearTransform {
        LinearTransform::from_decimal(
            "0.9999413783703139011056845831168394",
            "79796507913179.33347660124688298171",
        )
        .unwrap()
    }

    #[test]
    fn fast_path_agrees_with_exact_rationals() {
        let transforms = [
            golden(),
            LinearTransform::identity(),
            LinearTransform::new(
                Ratio::frac(1_000_000_007, 1_000_000_000),
                Ratio::frac(-7, 3),
            ),
            LinearTransform::new(Ratio::frac(3, 2), Ratio::from_int(-5)),
            LinearTransform::new(Ratio::frac(-1, 3), Ratio::zero()),
            LinearTransform::new(Ratio::frac(999_999_999, 1_000_000_000), Ratio::frac(1, 2)),
        ];
        let mut ts: Vec<i64> = vec![
            0,
            1,
            -1,
            2,
            3,
            1_000_000_000,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ts.push(1_361_214_076_525_090_092 + (x % 40_000_000_000) as i64);
            ts.push(x as i64);
            ts.push((x % 1_000_000) as i64 - 500_000);
        }
        for tr in &transforms {
            let fast = *tr.fast().expect("a fast path");
            // Results landing exactly on an integer (frequent for small denominators like 1/3)
            // take the exact path; a formula fitted to real data almost never does.
            if tr == &transforms[0] {
                let sure = ts.iter().filter(|&&t| fast.apply(t).is_some()).count();
                assert!(
                    sure * 100 >= ts.len() * 99,
                    "fast path sure for {sure} of {}",
                    ts.len()
                );
            }
            // The per-event form an experiment uses must agree too, whatever its base time
            // (times before it, or more than 2^63 ns after it, take the other tiers).
            let bases = [0, 1_361_214_000_000_000_000, -1_000_000, i64::MIN, i64::MAX];
            let appliers: Vec<_> = bases.iter().map(|&b| tr.applier_from(b)).collect();
            for &t in &ts {
                let want = tr.apply_exact(t).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
                assert_eq!(tr.apply(t), want, "{tr:?} at {t}");
                for (a, b) in appliers.iter().zip(bases) {
                    assert_eq!(a.apply(t), want, "applier {tr:?} from {b} at {t}");
                }
            }
        }
    }

    #[test]
    fn exact_results_at_integer_boundaries_are_not_lost() {
        // slope 3/2: every even t lands exactly on an integer; odd t at .5.
        let tr = LinearTransform::new(Ratio::frac(3, 2), Ratio::zero());
        for t in [-4i64, -3, -1, 0, 1, 2, 1 << 40, (1 << 40) + 1] {
            assert_eq!(tr.apply(t) as i128, (3 * t as i128).div_euclid(2));
        }
        // offset just below an integer by far less than the fixed-point resolution.
        let tiny = Ratio::new(BigInt::from_i128(-1), BigInt::from_i128(1).shl(200));
        let tr = LinearTransform::new(Ratio::one(), Ratio::from_int(10).add(&tiny));
        assert_eq!(tr.apply(5), 14);
        assert_eq!(tr.apply(-5), 4);
    }

    #[test]
    fn golden_formula_maps_scp_src_times_near_scp_dest_times() {
        let tr = golden();
        // first event of scp_src (babeltrace2 count file): the formula keeps it within the
        // same tens of seconds as scp_dest's events.
        let t = 1_361_214_076_525_090_092i64;
        let s = tr.apply(t);
        assert!((s - t).abs() < 60_000_000_000, "{s} vs {t}");
        // exact: slope*t + offset computed by hand with rationals
        let want = tr
            .slope()
            .mul(&Ratio::from_int(t as i128))
            .add(tr.offset())
            .floor();
        assert_eq!(Some(s as i128), want.to_i128());
    }

    #[test]
    fn compose_and_inverse_are_exact() {
        let a = golden();
        let inv = a.inverse().unwrap();
        let id = a.compose(&inv);
        assert!(id.is_identity(), "{id:?}");
        let b = LinearTransform::new(Ratio::frac(2, 1), Ratio::from_int(3));
        let c = LinearTransform::new(Ratio::frac(1, 3), Ratio::from_int(-1));
        let bc = b.compose(&c);
        // b(c(t)) = 2 * (t/3 - 1) + 3 = 2t/3 + 1
        for t in [-10i64, -9, 0, 1, 2, 9, 301] {
            assert_eq!(bc.apply(t), (2 * t).div_euclid(3) + 1, "t = {t}");
        }
        assert!(LinearTransform::new(Ratio::zero(), Ratio::one())
            .inverse()
            .is_none());
    }
}
