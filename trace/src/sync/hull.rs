//! The fully incremental convex hull algorithm between two hosts (Jabbarifar, Dagenais and
//! Shameli-Sendi, "Streaming Mode Incremental Clock Synchronization"), with Trace Compass's
//! exact update rules (`SyncAlgorithmFullyIncremental.ConvexHull`), so that the same matches
//! in the same order select the same hull points.
//!
//! Each match is a point `(x, y)`: `x` the reference host's timestamp, `y` the other host's.
//! A packet sent by the reference host and received by the other is above the true clock
//! line (it lands on the "lower" hull list); one sent by the other host and received by the
//! reference is below it (the "upper" list). Two lines through the hulls bound the slope:
//! `lmax` joins an upper point to the latest lower point, `lmin` a lower point to the latest
//! upper point. The formula is their bisector. Coordinates differences are multiplied in
//! `i128`, exactly (Trace Compass uses wrapping `long`s, equal while the true product fits
//! 63 bits), and the bisector is built with exact rationals.

use super::exact::{BigInt, Ratio};
use std::cmp::Ordering;

/// Exact comparison of `a * b` with `c * d` (i128 when the products fit, else big integers:
/// timestamps spanning the whole i64 range make 129-bit products).
fn cmp_products(a: i128, b: i128, c: i128, d: i128) -> Ordering {
    match (a.checked_mul(b), c.checked_mul(d)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => BigInt::from_i128(a)
            .mul(&BigInt::from_i128(b))
            .cmp(&BigInt::from_i128(c).mul(&BigInt::from_i128(d))),
    }
}
use super::transform::LinearTransform;

/// How trustworthy a pair's synchronization is (Trace Compass's `SyncQuality`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SyncQuality {
    /// Packets in both directions bound the slope from both sides.
    Accurate,
    /// Best effort: one of the two bounding lines is missing a point.
    Approximate,
    /// Packets in one direction only: no formula.
    Incomplete,
    /// No packet between the two hosts.
    Absent,
    /// The bounding lines crossed (clock drift not linear, or bad matches); the last formula
    /// computed before the failure is kept, as Trace Compass does.
    Fail,
}

impl SyncQuality {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncQuality::Accurate => "accurate",
            SyncQuality::Approximate => "approximate",
            SyncQuality::Incomplete => "incomplete",
            SyncQuality::Absent => "absent",
            SyncQuality::Fail => "fail",
        }
    }

    /// Whether the pair yields a formula (Trace Compass uses it for accurate, approximate and
    /// failed pairs).
    pub fn has_formula(self) -> bool {
        matches!(
            self,
            SyncQuality::Accurate | SyncQuality::Approximate | SyncQuality::Fail
        )
    }
}

/// A hull point; `id` gives it identity (Trace Compass compares points by reference).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Point {
    x: i64,
    y: i64,
    id: u64,
}

impl Point {
    /// Sign of the cross product of `(a - self)` and `(b - self)`: 1 when self, a, b turn
    /// counter-clockwise, -1 clockwise, 0 aligned.
    fn cross(self, a: Point, b: Point) -> i128 {
        let (ax, ay) = (a.x as i128 - self.x as i128, a.y as i128 - self.y as i128);
        let (bx, by) = (b.x as i128 - self.x as i128, b.y as i128 - self.y as i128);
        match cmp_products(ax, by, ay, bx) {
            Ordering::Greater => 1,
            Ordering::Less => -1,
            Ordering::Equal => 0,
        }
    }
}

/// A slope `dy/dx` with `dx > 0` (a missing point or a vertical pair count as slope 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slope {
    dy: i128,
    dx: i128,
}

impl Slope {
    fn between(to: Point, from: Option<Point>) -> Slope {
        match from {
            Some(f) if to.x != f.x => {
                let (dy, dx) = (to.y as i128 - f.y as i128, to.x as i128 - f.x as i128);
                // adjust_bound keeps from.x <= to.x; normalise the sign anyway.
                if dx < 0 {
                    Slope { dy: -dy, dx: -dx }
                } else {
                    Slope { dy, dx }
                }
            }
            _ => Slope { dy: 1, dx: 1 },
        }
    }

    fn greater_than(self, o: Slope) -> bool {
        cmp_products(self.dy, o.dx, o.dy, self.dx) == Ordering::Greater
    }

    fn ratio(self) -> Ratio {
        Ratio::frac(self.dy, self.dx)
    }
}

/// The two lines at the last formula computation: `(latest point, slope)` for lmax and lmin.
#[derive(Clone, Copy, Debug)]
struct Fit {
    max_point: Point,
    max_slope: Slope,
    min_point: Point,
    min_slope: Slope,
}

type Line = [Option<Point>; 2];

/// Synchronization between one pair of hosts.
#[derive(Debug, Clone)]
pub struct ConvexHull {
    /// Points of packets sent by the other host (below the clock line).
    upper: Vec<Point>,
    /// Points of packets sent by the reference host (above the clock line).
    lower: Vec<Point>,
    lmax: Line,
    lmin: Line,
    quality: SyncQuality,
    fit: Option<Fit>,
    matches: u64,
    accurate_matches: u64,
    next_id: u64,
}

impl Default for ConvexHull {
    fn default() -> Self {
        ConvexHull::new()
    }
}

/// Statistics of one pair, as Trace Compass's synchronization view lists them.
#[derive(Debug, Clone)]
pub struct HullStats {
    pub quality: SyncQuality,
    pub matches: u64,
    /// Matches that moved a bounding line (Trace Compass's "number of accurate matches").
    pub accurate_matches: u64,
    pub upper_hull_points: usize,
    pub lower_hull_points: usize,
    /// Reference time -> other host time: `other = alpha * reference + beta`.
    pub alpha: Ratio,
    pub beta: Ratio,
    /// `alpha_max - alpha_min`: the width of the slope bracket.
    pub accuracy: Ratio,
}

impl ConvexHull {
    pub fn new() -> ConvexHull {
        ConvexHull {
            upper: Vec::new(),
            lower: Vec::new(),
            lmax: [None, None],
            lmin: [None, None],
            quality: SyncQuality::Absent,
            fit: None,
            matches: 0,
            accurate_matches: 0,
            next_id: 0,
        }
    }

    pub fn quality(&self) -> SyncQuality {
        self.quality
    }

    pub fn matches(&self) -> u64 {
        self.matches
    }

    /// Adds one matched packet: `reference_ts` / `other_ts` are its timestamps on the reference
    /// and the other host; `sent_by_reference` tells its direction.
    pub fn add_match(&mut self, reference_ts: i64, other_ts: i64, sent_by_reference: bool) {
        self.matches += 1;
        let p = Point {
            x: reference_ts,
            y: other_ts,
            id: self.next_id,
        };
        self.next_id += 1;
        // Sent by the other host: upper list, lmin, keep points turning clockwise (inv = 1).
        // Sent by the reference: lower list, lmax, mirrored (inv = -1).
        let inv: i128 = if sent_by_reference { -1 } else { 1 };
        let (mut bound, other, mut line, mut other_line) = if sent_by_reference {
            (
                std::mem::take(&mut self.lower),
                std::mem::take(&mut self.upper),
                self.lmax,
                self.lmin,
            )
        } else {
            (
                std::mem::take(&mut self.upper),
                std::mem::take(&mut self.lower),
                self.lmin,
                self.lmax,
            )
        };

        let qualifies = match line {
            [Some(a), Some(b)] => p.cross(a, b).signum() * inv > 0,
            _ => true,
        };
        if qualifies {
            self.accurate_matches += 1;
            while bound.len() >= 2
                && p.cross(bound[bound.len() - 2], bound[bound.len() - 1])
                    .signum()
                    * inv
                    > 0
            {
                bound.pop();
            }
            bound.push(p);
            line[1] = Some(p);
        }
        adjust_bound(&mut line, &other, inv);
        if other_line[1].is_some() && !other_line[0].is_some_and(|o| bound.contains(&o)) {
            adjust_bound(&mut other_line, &bound, -inv);
        }

        if sent_by_reference {
            self.lower = bound;
            self.upper = other;
            self.lmax = line;
            self.lmin = other_line;
        } else {
            self.upper = bound;
            self.lower = other;
            self.lmin = line;
            self.lmax = other_line;
        }
        if qualifies {
            self.approximate();
        }
    }

    /// Recomputes the quality and, unless the lines cross, the fit (Trace Compass's
    /// `approximateSync`).
    fn approximate(&mut self) {
        if self.lmax[0].is_some() || self.lmin[0].is_some() {
            if self.quality == SyncQuality::Fail {
                return; // keep the last good formula
            }
            let (Some(max_point), Some(min_point)) = (self.lmax[1], self.lmin[1]) else {
                // A point on one list implies the latest point of the other list's line.
                return;
            };
            let max_slope = Slope::between(max_point, self.lmax[0]);
            let min_slope = Slope::between(min_point, self.lmin[0]);
            let quality = if self.lmax[0].is_none() || self.lmin[0].is_none() {
                SyncQuality::Approximate
            } else if max_slope.greater_than(min_slope) {
                SyncQuality::Accurate
            } else {
                SyncQuality::Fail
            };
            if quality != SyncQuality::Fail {
                self.fit = Some(Fit {
                    max_point,
                    max_slope,
                    min_point,
                    min_slope,
                });
            }
            self.quality = quality;
        } else if self.lmin[1].is_none() || self.lmax[1].is_none() {
            self.quality = SyncQuality::Incomplete;
        }
    }

    /// `(alpha, beta)` of `other = alpha * reference + beta`, and `alpha_max - alpha_min`.
    fn alpha_beta(&self) -> (Ratio, Ratio, Ratio) {
        let Some(fit) = self.fit else {
            return (Ratio::one(), Ratio::zero(), Ratio::zero());
        };
        let amax = fit.max_slope.ratio();
        let amin = fit.min_slope.ratio();
        let at = |p: Point, a: &Ratio| {
            Ratio::from_int(p.y as i128).sub(&a.mul(&Ratio::from_int(p.x as i128)))
        };
        let beta_min = at(fit.max_point, &amax);
        let beta_max = at(fit.min_point, &amin);
        let half = Ratio::frac(1, 2);
        (
            amax.add(&amin).mul(&half),
            beta_min.add(&beta_max).mul(&half),
            amax.sub(&amin),
        )
    }

    /// The formula taking the other host's timestamps to the reference host's time, if the
    /// quality gives one (`None` also for a non-positive slope, which no clock has).
    pub fn other_to_reference(&self) -> Option<LinearTransform> {
        if !self.quality.has_formula() {
            return None;
        }
        let (alpha, beta, _) = self.alpha_beta();
        to_reference(&alpha, &beta)
    }

    pub fn stats(&self) -> HullStats {
        let (alpha, beta, accuracy) = self.alpha_beta();
        HullStats {
            quality: self.quality,
            matches: self.matches,
            accurate_matches: self.accurate_matches,
            upper_hull_points: self.upper.len(),
            lower_hull_points: self.lower.len(),
            alpha,
            beta,
            accuracy,
        }
    }

    /// Points held by the hull lists (for memory accounting).
    pub fn hull_points(&self) -> usize {
        self.upper.len() + self.lower.len()
    }
}

impl HullStats {
    /// [`ConvexHull::other_to_reference`] from these figures (no second computation of the
    /// bisector).
    pub fn other_to_reference(&self) -> Option<LinearTransform> {
        if !self.quality.has_formula() {
            return None;
        }
        to_reference(&self.alpha, &self.beta)
    }
}

/// The inverse of `other = alpha * reference + beta`; `None` for a non-positive slope.
fn to_reference(alpha: &Ratio, beta: &Ratio) -> Option<LinearTransform> {
    if alpha.is_negative() || alpha.is_zero() {
        return None;
    }
    LinearTransform::new(alpha.clone(), beta.clone()).inverse()
}

/// Moves `line[0]` along `list` (the opposite direction's hull) to the point giving the
/// tightest line through `line[1]` (Trace Compass's `adjustBound`, rule for rule).
fn adjust_bound(line: &mut Line, list: &[Point], inv: i128) {
    let Some(end) = line[1] else { return };
    let mut i = line[0]
        .and_then(|s| list.iter().position(|q| q.id == s.id))
        .unwrap_or(0);
    let mut last_examined = None;
    while i + 1 < list.len() {
        let (cur, next) = (list[i], list[i + 1]);
        last_examined = Some(cur);
        if cur.cross(next, end).signum() * inv > 0 {
            if next.x < end.x {
                i += 1;
                continue;
            }
            line[0] = None;
        } else {
            line[0] = Some(cur);
        }
        break;
    }
    if line[0].is_none() {
        line[0] = last_examined;
    }
    if line[0].is_some_and(|s| s.x > end.x) {
        line[0] = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets between a reference host R and another host O whose clock is
    /// `o = alpha * r + beta`, with latencies from a fixed pseudo-random sequence.
    fn simulate(alpha: (i128, i128), beta: i128, n: usize) -> ConvexHull {
        let mut hull = ConvexHull::new();
        let o_of = |r: i128| (alpha.0 * r).div_euclid(alpha.1) + beta;
        let mut x: u64 = 12345;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let start: i128 = 1_361_214_076_000_000_000;
        for i in 0..n {
            let r_send = start + i as i128 * 37_000_000 + (rnd() % 1_000_000) as i128;
            let latency = 20_000 + (rnd() % 200_000) as i128;
            if rnd() % 2 == 0 {
                // R -> O
                let o_recv = o_of(r_send + latency);
                hull.add_match(r_send as i64, o_recv as i64, true);
            } else {
                // O -> R: sent at true time r_send, received latency later
                let o_send = o_of(r_send);
                hull.add_match((r_send + latency) as i64, o_send as i64, false);
            }
        }
        hull
    }

    #[test]
    fn no_match_is_absent_and_gives_no_formula() {
        let hull = ConvexHull::new();
        assert_eq!(hull.quality(), SyncQuality::Absent);
        assert!(hull.other_to_reference().is_none());
    }

    #[test]
    fn one_direction_only_is_incomplete() {
        let mut hull = ConvexHull::new();
        for i in 0..10 {
            hull.add_match(1_000 + i * 100, 5_000 + i * 100, true);
        }
        assert_eq!(hull.quality(), SyncQuality::Incomplete);
        assert!(hull.other_to_reference().is_none());
        assert_eq!(hull.matches(), 10);
    }

    #[test]
    fn recovers_offset_and_drift_within_the_latency_bound() {
        // other clock runs 50 ppm slow and is 3 s ahead
        let hull = simulate((999_950, 1_000_000), 3_000_000_000, 400);
        assert_eq!(hull.quality(), SyncQuality::Accurate);
        let tr = hull.other_to_reference().unwrap();
        // Every true instant maps back within the smallest one-way latency (20 us).
        for r in (0..400).map(|i| 1_361_214_076_000_000_000i64 + i * 37_000_000) {
            let o = (999_950i128 * r as i128).div_euclid(1_000_000) + 3_000_000_000;
            let back = tr.apply(o as i64);
            assert!((back - r).abs() <= 20_000, "r={r} back={back}");
        }
        let st = hull.stats();
        assert!(st.accurate_matches <= st.matches);
        assert!(st.upper_hull_points + st.lower_hull_points <= 400);
        assert!(!st.accuracy.is_negative());
    }

    #[test]
    fn crossing_lines_fail_and_keep_the_last_formula() {
        let mut hull = ConvexHull::new();
        // consistent exchanges around o = r + 1000
        hull.add_match(0, 1_100, true);
        hull.add_match(200, 1_100, false);
        hull.add_match(1_000, 2_100, true);
        hull.add_match(1_200, 2_100, false);
        hull.add_match(2_000, 3_100, true);
        let before = hull.other_to_reference().unwrap();
        let q = hull.quality();
        assert!(q == SyncQuality::Accurate || q == SyncQuality::Approximate);
        // a packet from the reference received "before" it was sent (o < r + 1000), then
        // ordinary traffic: the bounding lines cross.
        hull.add_match(3_000, 3_000, true);
        hull.add_match(3_200, 4_300, false);
        hull.add_match(4_000, 5_100, true);
        hull.add_match(4_200, 5_100, false);
        assert_eq!(hull.quality(), SyncQuality::Fail);
        assert_eq!(hull.other_to_reference(), Some(before.clone()));
        // once failed, it stays failed with the same formula
        hull.add_match(5_000, 6_100, true);
        assert_eq!(hull.quality(), SyncQuality::Fail);
        assert_eq!(hull.other_to_reference(), Some(before));
    }
}
