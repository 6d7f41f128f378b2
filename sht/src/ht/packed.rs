//! `PackedNode`: the reader's cached form of a node. Times, quarks and fixed-size
//! values are decoded into flat arrays (cheap to build, vectorisable to search);
//! strings and custom values stay in the memory-mapped block and are decoded only
//! for the intervals a query returns.

use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use super::node::{self, ChildEntry, NodeHeader, ValueRef};
use crate::error::Result;
use crate::value::{Interval, StateValue};

/// How a packed value is stored: inline bits, or the offset of its bytes in the block.
const KIND_NULL: u8 = 0;
const KIND_INT: u8 = 1;
const KIND_LONG: u8 = 2;
const KIND_DOUBLE: u8 = 3;
const KIND_IN_BLOCK: u8 = 4;

pub struct PackedNode {
    pub header: NodeHeader,
    pub children: Vec<ChildEntry>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    quarks: Vec<i32>,
    kinds: Vec<u8>,
    /// Value bits for inline kinds, the type byte's offset in the block otherwise.
    payloads: Vec<u64>,
    map: Arc<Mmap>,
    base: usize,
    block_size: usize,
}

impl PackedNode {
    /// Decodes the block at `base` of `map`.
    pub fn decode(
        map: Arc<Mmap>,
        base: usize,
        block_size: usize,
        max_children: usize,
        path: &Path,
    ) -> Result<Self> {
        let block = &map[base..base + block_size];
        let layout = node::decode_layout(block, max_children, path, base as u64)?;
        let n = layout.header.interval_count as usize;
        let mut starts = Vec::with_capacity(n);
        let mut ends = Vec::with_capacity(n);
        let mut quarks = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut payloads = Vec::with_capacity(n);
        node::for_each_interval(block, &layout, path, base as u64, |r| {
            starts.push(r.start);
            ends.push(r.end);
            quarks.push(r.quark);
            let (kind, payload) = match r.value {
                ValueRef::Null => (KIND_NULL, 0),
                ValueRef::Int(v) => (KIND_INT, v as u32 as u64),
                ValueRef::Long(v) => (KIND_LONG, v as u64),
                ValueRef::Double(v) => (KIND_DOUBLE, v.to_bits()),
                ValueRef::Str(_) | ValueRef::Custom(..) => (KIND_IN_BLOCK, r.value_at as u64),
            };
            kinds.push(kind);
            payloads.push(payload);
        })?;
        Ok(PackedNode {
            header: layout.header,
            children: layout.children,
            starts,
            ends,
            quarks,
            kinds,
            payloads,
            map,
            base,
            block_size,
        })
    }

    /// Approximate heap bytes held (for the cache budget).
    pub fn heap_size(&self) -> usize {
        self.starts.len() * 29 + self.children.len() * std::mem::size_of::<ChildEntry>() + 128
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    #[inline]
    pub fn start(&self, i: usize) -> i64 {
        self.starts[i]
    }

    #[inline]
    pub fn end(&self, i: usize) -> i64 {
        self.ends[i]
    }

    #[inline]
    pub fn quark(&self, i: usize) -> i32 {
        self.quarks[i]
    }

    /// The value of interval `i`.
    #[inline]
    pub fn value(&self, i: usize) -> StateValue {
        let p = self.payloads[i];
        match self.kinds[i] {
            KIND_INT => StateValue::Int(p as u32 as i32),
            KIND_LONG => StateValue::Long(p as i64),
            KIND_DOUBLE => StateValue::Double(f64::from_bits(p)),
            KIND_IN_BLOCK => {
                let block = &self.map[self.base..self.base + self.block_size];
                node::value_at(block, p as usize)
            }
            _ => StateValue::Null,
        }
    }

    #[inline]
    pub fn interval(&self, i: usize) -> Interval {
        Interval {
            start: self.starts[i],
            end: self.ends[i],
            quark: self.quarks[i],
            value: self.value(i),
        }
    }

    #[inline]
    pub fn first_ending_at_or_after(&self, t: i64) -> usize {
        self.ends.partition_point(|&e| e < t)
    }

    /// Calls `f(i)` for every interval containing `t`.
    #[inline]
    pub fn for_each_containing(&self, t: i64, mut f: impl FnMut(usize)) {
        let from = self.first_ending_at_or_after(t);
        for (i, &s) in self.starts[from..].iter().enumerate() {
            if s <= t {
                f(from + i);
            }
        }
    }

    /// Index of the interval of `quark` containing `t`, searching from `from`.
    #[inline]
    pub fn find(&self, from: usize, quark: i32, t: i64) -> Option<usize> {
        let mut i = from;
        while let Some(p) = self.quarks[i..].iter().position(|&q| q == quark) {
            let idx = i + p;
            if self.starts[idx] <= t {
                return Some(idx);
            }
            i = idx + 1;
        }
        None
    }
}
