//! `IntervalChunk`: finished intervals in transit from a state system to its backend,
//! in a compact form (32 bytes an interval instead of the 48 of an [`Interval`]).
//!
//! The form is the one the history-tree writer keeps in its open nodes: sort key,
//! the `.ht` type byte and inline bits for ints, longs and doubles; strings and
//! custom values ride beside, by index. Less to write on the building thread and to
//! read on the writer thread (the chunks cross cores), and no conversion there.

use crate::value::{Interval, StateValue};
use crate::Quark;

use super::format::interval as iv;

/// One interval: times, quark, and its value as the type byte written to disk plus
/// inline bits, or the index of the value in the owner's side vector.
#[derive(Clone, Copy, Debug)]
pub struct PackedInterval {
    pub end: i64,
    pub start: i64,
    pub quark: Quark,
    pub(crate) kind: i8,
    pub(crate) bits: u64,
}

impl PackedInterval {
    /// On-disk order: (end, start, quark).
    #[inline(always)]
    pub(crate) fn key(&self) -> (i64, i64, i32) {
        (self.end, self.start, self.quark)
    }

    /// Whether the value is kept in the side vector.
    #[inline(always)]
    pub(crate) fn is_aside(&self) -> bool {
        self.kind == iv::TYPE_STRING || self.kind == iv::TYPE_CUSTOM
    }

    /// Packs `value`, pushing it to `aside` if it has no inline form.
    #[inline(always)]
    pub(crate) fn pack(
        start: i64,
        end: i64,
        quark: Quark,
        value: StateValue,
        aside: &mut Vec<StateValue>,
    ) -> Self {
        let (kind, bits) = match value {
            StateValue::Null => (iv::TYPE_NULL, 0),
            StateValue::Int(v) => (iv::TYPE_INT, v as u32 as u64),
            StateValue::Long(v) => (iv::TYPE_LONG, v as u64),
            StateValue::Double(v) => (iv::TYPE_DOUBLE, v.to_bits()),
            v @ StateValue::String(_) => {
                aside.push(v);
                (iv::TYPE_STRING, aside.len() as u64 - 1)
            }
            v @ StateValue::Custom(_) => {
                aside.push(v);
                (iv::TYPE_CUSTOM, aside.len() as u64 - 1)
            }
        };
        PackedInterval {
            end,
            start,
            quark,
            kind,
            bits,
        }
    }

    /// The value, cloned from `aside` when it is kept there.
    #[inline]
    pub(crate) fn value(&self, aside: &[StateValue]) -> StateValue {
        match self.kind {
            iv::TYPE_INT => StateValue::Int(self.bits as u32 as i32),
            iv::TYPE_LONG => StateValue::Long(self.bits as i64),
            iv::TYPE_DOUBLE => StateValue::Double(f64::from_bits(self.bits)),
            iv::TYPE_STRING | iv::TYPE_CUSTOM => aside[self.bits as usize].clone(),
            _ => StateValue::Null,
        }
    }

    /// Whether `t` falls in `[start, end]`.
    #[inline]
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t <= self.end
    }
}

/// Intervals in insertion order.
#[derive(Default, Debug)]
pub struct IntervalChunk {
    recs: Vec<PackedInterval>,
    aside: Vec<StateValue>,
}

impl IntervalChunk {
    pub fn with_capacity(n: usize) -> Self {
        IntervalChunk {
            recs: Vec::with_capacity(n),
            aside: Vec::new(),
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    pub fn clear(&mut self) {
        self.recs.clear();
        self.aside.clear();
    }

    /// Appends an interval.
    #[inline(always)]
    pub fn push_parts(&mut self, start: i64, end: i64, quark: Quark, value: StateValue) {
        let rec = PackedInterval::pack(start, end, quark, value, &mut self.aside);
        self.recs.push(rec);
    }

    #[inline]
    pub fn push(&mut self, i: Interval) {
        self.push_parts(i.start, i.end, i.quark, i.value);
    }

    /// Moves `other`'s intervals to the end of this chunk, leaving `other` empty.
    pub fn append(&mut self, other: &mut IntervalChunk) {
        let base = self.aside.len() as u64;
        self.recs.extend(other.recs.drain(..).map(|mut r| {
            if r.is_aside() {
                r.bits += base;
            }
            r
        }));
        self.aside.append(&mut other.aside);
    }

    /// The packed intervals, in insertion order.
    pub fn packed(&self) -> &[PackedInterval] {
        &self.recs
    }

    /// Interval `i` (its value cloned).
    pub fn get(&self, i: usize) -> Interval {
        let r = &self.recs[i];
        Interval::new(r.start, r.end, r.quark, r.value(&self.aside))
    }

    /// The intervals, values cloned.
    pub fn iter(&self) -> impl Iterator<Item = Interval> + '_ {
        (0..self.recs.len()).map(|i| self.get(i))
    }

    /// Largest end, if any.
    pub fn max_end(&self) -> Option<i64> {
        self.recs.iter().map(|r| r.end).max()
    }

    /// The packed intervals and, for those whose value is kept aside, the values
    /// (to be moved out with `std::mem::take`).
    pub(crate) fn parts_mut(&mut self) -> (&[PackedInterval], &mut [StateValue]) {
        (&self.recs, &mut self.aside)
    }

    /// Takes the intervals out as [`Interval`]s, in order, leaving the chunk empty.
    pub fn drain(&mut self) -> impl Iterator<Item = Interval> + '_ {
        let aside = &mut self.aside;
        self.recs.drain(..).map(move |r| {
            let value = if r.is_aside() {
                std::mem::take(&mut aside[r.bits as usize])
            } else {
                r.value(&[])
            };
            Interval::new(r.start, r.end, r.quark, value)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn round_trips_every_kind_and_appends() {
        let values = [
            StateValue::Null,
            StateValue::Int(-7),
            StateValue::Long(1 << 40),
            StateValue::Double(-0.5),
            StateValue::string("read"),
            StateValue::Custom(crate::value::CustomValue {
                type_id: 42,
                bytes: Arc::from(&[1u8, 2, 3][..]),
            }),
        ];
        let mut a = IntervalChunk::default();
        let mut b = IntervalChunk::default();
        for (k, v) in values.iter().enumerate() {
            a.push(Interval::new(k as i64, 10 + k as i64, k as i32, v.clone()));
            b.push(Interval::new(100, 200, 9, v.clone()));
        }
        a.append(&mut b);
        assert!(b.is_empty());
        assert_eq!(a.len(), 12);
        assert_eq!(a.max_end(), Some(200));
        let back: Vec<Interval> = a.iter().collect();
        for (k, v) in values.iter().enumerate() {
            assert_eq!(back[k].value, *v);
            assert_eq!(
                (back[k].start, back[k].end, back[k].quark),
                (k as i64, 10 + k as i64, k as i32)
            );
            assert_eq!(back[6 + k].value, *v);
        }
        let drained: Vec<Interval> = a.drain().collect();
        assert_eq!(drained, back);
        assert!(a.is_empty());
    }
}
