//! `PackedNode`: the reader's cached form of a node. Times and quarks are decoded
//! into flat arrays (cheap to build, vectorisable to search); values stay in the
//! memory-mapped block and are decoded only for the intervals a query returns.

use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use super::node::{self, ChildEntry, NodeHeader};
use crate::error::Result;
use crate::value::Interval;

pub struct PackedNode {
    pub header: NodeHeader,
    pub children: Vec<ChildEntry>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    quarks: Vec<i32>,
    value_at: Vec<u32>,
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
        let (mut starts, mut ends, mut quarks, mut value_at) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        node::for_each_interval(block, &layout, path, base as u64, |r| {
            starts.push(r.start);
            ends.push(r.end);
            quarks.push(r.quark);
            value_at.push(r.value_at as u32);
        })?;
        Ok(PackedNode {
            header: layout.header,
            children: layout.children,
            starts,
            ends,
            quarks,
            value_at,
            map,
            base,
            block_size,
        })
    }

    /// Approximate heap bytes held (for the cache budget).
    pub fn heap_size(&self) -> usize {
        self.starts.len() * 24 + self.children.len() * std::mem::size_of::<ChildEntry>() + 128
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

    pub fn interval(&self, i: usize) -> Interval {
        let block = &self.map[self.base..self.base + self.block_size];
        Interval {
            start: self.starts[i],
            end: self.ends[i],
            quark: self.quarks[i],
            value: node::value_at(block, self.value_at[i] as usize),
        }
    }

    #[inline]
    pub fn first_ending_at_or_after(&self, t: i64) -> usize {
        self.ends.partition_point(|&e| e < t)
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
