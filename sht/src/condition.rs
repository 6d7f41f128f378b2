//! Query conditions on quarks and times (Trace Compass range conditions).

use crate::Quark;

/// The times a 2D query asks about: a closed range, or a set of instants.
#[derive(Clone, Debug)]
pub enum TimeCondition {
    Range {
        lo: i64,
        hi: i64,
    },
    /// Sorted, without duplicates, non-empty.
    Instants(Vec<i64>),
}

impl TimeCondition {
    /// `[min(a, b), max(a, b)]`.
    pub fn range(a: i64, b: i64) -> Self {
        TimeCondition::Range {
            lo: a.min(b),
            hi: a.max(b),
        }
    }

    /// A set of sample times; `None` if empty.
    pub fn instants(times: impl IntoIterator<Item = i64>) -> Option<Self> {
        let mut v: Vec<i64> = times.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        v.dedup();
        Some(TimeCondition::Instants(v))
    }

    pub fn min(&self) -> i64 {
        match self {
            TimeCondition::Range { lo, .. } => *lo,
            TimeCondition::Instants(v) => v[0],
        }
    }

    pub fn max(&self) -> i64 {
        match self {
            TimeCondition::Range { hi, .. } => *hi,
            TimeCondition::Instants(v) => v[v.len() - 1],
        }
    }

    /// Whether `[start, end]` meets the condition.
    #[inline]
    pub fn intersects(&self, start: i64, end: i64) -> bool {
        match self {
            TimeCondition::Range { lo, hi } => start <= *hi && end >= *lo,
            TimeCondition::Instants(v) => {
                let i = v.partition_point(|&t| t < start);
                i < v.len() && v[i] <= end
            }
        }
    }
}

/// A set of quarks, with fast membership and range tests.
#[derive(Clone, Debug)]
pub struct QuarkSet {
    sorted: Vec<Quark>,
    /// Dense membership table indexed by `quark - min`.
    dense: Vec<bool>,
}

impl QuarkSet {
    /// `None` if empty.
    pub fn new(quarks: impl IntoIterator<Item = Quark>) -> Option<Self> {
        let mut sorted: Vec<Quark> = quarks.into_iter().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_unstable();
        sorted.dedup();
        let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
        let span = (hi as i64 - lo as i64 + 1) as usize;
        // A table is cheap up to a few times the set size; beyond, binary search.
        let dense = if span <= 4 * sorted.len() + 1024 {
            let mut d = vec![false; span];
            for &q in &sorted {
                d[(q - lo) as usize] = true;
            }
            d
        } else {
            Vec::new()
        };
        Some(QuarkSet { sorted, dense })
    }

    pub fn min(&self) -> Quark {
        self.sorted[0]
    }

    pub fn max(&self) -> Quark {
        self.sorted[self.sorted.len() - 1]
    }

    pub fn as_slice(&self) -> &[Quark] {
        &self.sorted
    }

    #[inline]
    pub fn contains(&self, q: Quark) -> bool {
        let lo = self.sorted[0];
        if q < lo || q > self.max() {
            return false;
        }
        if self.dense.is_empty() {
            self.sorted.binary_search(&q).is_ok()
        } else {
            self.dense[(q - lo) as usize]
        }
    }

    /// Whether some member lies in `[lo, hi]`.
    #[inline]
    pub fn intersects(&self, lo: Quark, hi: Quark) -> bool {
        let i = self.sorted.partition_point(|&q| q < lo);
        i < self.sorted.len() && self.sorted[i] <= hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        let r = TimeCondition::range(10, 5);
        assert!(r.intersects(0, 5) && r.intersects(10, 20) && !r.intersects(11, 20));
        let s = TimeCondition::instants([30, 10, 20]).unwrap();
        assert!(s.intersects(15, 20) && !s.intersects(11, 19) && s.intersects(0, 100));
        assert_eq!((s.min(), s.max()), (10, 30));
        let q = QuarkSet::new([5, 1, 9, 5]).unwrap();
        assert!(q.contains(5) && !q.contains(4) && q.intersects(6, 9) && !q.intersects(6, 8));
        let sparse = QuarkSet::new([0, 1_000_000]).unwrap();
        assert!(sparse.contains(1_000_000) && !sparse.contains(7));
    }
}
