//! Per-trace formulas as an experiment applies them while merging its traces.

use super::transform::{Applier, LinearTransform};

/// One optional formula per trace (none: timestamps unchanged).
#[derive(Debug, Clone, Default)]
pub struct TimeTransforms {
    per_trace: Vec<Option<Applier>>,
}

impl TimeTransforms {
    /// Formulas in trace order; identities and missing entries leave timestamps unchanged.
    pub fn new(transforms: &[LinearTransform]) -> TimeTransforms {
        Self::with_bases(transforms, &[])
    }

    /// [`new`](Self::new), each formula made fastest for its trace's timestamps from
    /// `bases[trace]` on (0 where not given); results are the same.
    pub fn with_bases(transforms: &[LinearTransform], bases: &[i64]) -> TimeTransforms {
        let per_trace = transforms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let base = bases.get(i).copied().unwrap_or(0);
                (!t.is_identity()).then(|| t.applier_from(base))
            })
            .collect::<Vec<_>>();
        if per_trace.iter().all(Option::is_none) {
            return TimeTransforms::default();
        }
        TimeTransforms { per_trace }
    }

    /// The formulas of traces `indices`, in that order (e.g. one host's traces when an
    /// experiment is split), without computing them again.
    pub(crate) fn select(&self, indices: &[usize]) -> TimeTransforms {
        if self.is_empty() {
            return TimeTransforms::default();
        }
        let per_trace: Vec<Option<Applier>> = indices
            .iter()
            .map(|&i| self.per_trace.get(i).cloned().flatten())
            .collect();
        if per_trace.iter().all(Option::is_none) {
            return TimeTransforms::default();
        }
        TimeTransforms { per_trace }
    }

    pub fn is_empty(&self) -> bool {
        self.per_trace.is_empty()
    }

    /// The formula of a trace (the identity when it has none).
    pub fn get(&self, trace: usize) -> LinearTransform {
        match self.per_trace.get(trace) {
            Some(Some(a)) => a.transform().clone(),
            _ => LinearTransform::identity(),
        }
    }

    /// Synchronized time of a trace's timestamp.
    #[inline]
    pub fn apply(&self, trace: usize, ns: i64) -> i64 {
        match self.per_trace.get(trace) {
            Some(Some(a)) => a.apply(ns),
            _ => ns,
        }
    }

    /// A trace timestamp not after any timestamp whose synchronized time is `>= ns`: where
    /// reading may start for a synchronized time range (`i64::MIN` when unknown).
    pub fn original_lower_bound(&self, trace: usize, ns: i64) -> i64 {
        match self.per_trace.get(trace) {
            Some(Some(a)) => {
                let t = a.transform();
                if t.slope().is_negative() || t.slope().is_zero() {
                    return i64::MIN;
                }
                // floor(inverse) may land 1 ns past the first qualifying original time.
                t.inverse()
                    .map_or(i64::MIN, |inv| inv.apply(ns).saturating_sub(1))
            }
            _ => ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Ratio;

    #[test]
    fn identities_are_dropped_and_lower_bounds_are_safe() {
        assert!(TimeTransforms::new(&[LinearTransform::identity()]).is_empty());
        let tr = LinearTransform::new(
            Ratio::frac(999_941, 1_000_000),
            Ratio::from_int(79_796_507_913_179),
        );
        let tt = TimeTransforms::new(&[LinearTransform::identity(), tr.clone()]);
        assert_eq!(tt.apply(0, 42), 42);
        let b = 1_361_214_076_525_090_092i64;
        let lo = tt.original_lower_bound(1, b);
        // every original time whose image is >= b is >= lo
        assert!(tr.apply(lo) <= b);
        assert!(tr.apply(lo + 2) >= b);
        assert_eq!(tt.original_lower_bound(0, b), b);
    }
}
