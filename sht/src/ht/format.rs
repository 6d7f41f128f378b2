//! The `.ht` file layout (file version 11) as named constants.
//!
//! This module is the code twin of `docs/ht-format.md`: every offset and size the
//! writer and the reader use is named here, and nowhere else.

/// Magic number at offset 0 of every history file (`00 A9 FF 05` on disk).
pub const HISTORY_FILE_MAGIC: i32 = 0x05FF_A900;
/// The only file version Trace Compass accepts today.
pub const FILE_VERSION: i32 = 11;
/// Provider version that makes a reader skip the provider-version check.
pub const IGNORE_PROVIDER_VERSION: i32 = -42;
/// Bytes reserved for the tree header, whatever the block size.
pub const TREE_HEADER_SIZE: u64 = 4096;
/// Trace Compass's default block size (64 KiB).
pub const DEFAULT_BLOCK_SIZE: i32 = 64 * 1024;
/// Trace Compass's default core-node fan-out.
pub const DEFAULT_MAX_CHILDREN: i32 = 50;
/// Smallest block size Trace Compass's tree constructor accepts.
pub const MIN_BLOCK_SIZE: i32 = 4096;

/// Offsets inside the tree header (little-endian).
pub mod header {
    pub const MAGIC: usize = 0;
    pub const FILE_VERSION: usize = 4;
    pub const PROVIDER_VERSION: usize = 8;
    pub const BLOCK_SIZE: usize = 12;
    pub const MAX_CHILDREN: usize = 16;
    pub const NODE_COUNT: usize = 20;
    pub const ROOT_SEQ: usize = 24;
    pub const START_TIME: usize = 28;
    /// Bytes of the header that carry data; the rest of the 4096 are zero.
    pub const USED_SIZE: usize = 36;
}

/// Offsets inside a node's common header (little-endian), then the core extension.
pub mod node {
    pub const TYPE: usize = 0;
    pub const START: usize = 1;
    pub const END: usize = 9;
    pub const MIN_QUARK: usize = 17;
    pub const MAX_QUARK: usize = 21;
    pub const SEQ: usize = 25;
    pub const PARENT_SEQ: usize = 29;
    pub const INTERVAL_COUNT: usize = 33;
    /// Size of the common header; a leaf's intervals start here.
    pub const COMMON_HEADER_SIZE: usize = 37;
    /// Core nodes: number of children (i32), followed by the five child arrays
    /// (seqs i32 x M, starts varint x M, ends varint x M, min quark i32 x M,
    /// max quark i32 x M).
    pub const CORE_NB_CHILDREN: usize = 37;
    pub const CORE_ARRAYS: usize = 41;

    pub const TYPE_CORE: u8 = 1;
    pub const TYPE_LEAF: u8 = 2;

    /// Min/max quark written for a node that stores no interval.
    pub const EMPTY_MIN_QUARK: i32 = i32::MAX;
    pub const EMPTY_MAX_QUARK: i32 = i32::MIN;
    /// Values of the unused child slots of a core node.
    pub const UNUSED_CHILD_SEQ: i32 = 0;
    pub const UNUSED_CHILD_START: i64 = i64::MIN;
    pub const UNUSED_CHILD_END: i64 = i64::MAX;
    pub const UNUSED_CHILD_MIN: i32 = 0;
    pub const UNUSED_CHILD_MAX: i32 = i32::MAX;
}

/// Interval encoding: varint start offset, varint duration, i32 quark, i8 type, payload.
pub mod interval {
    /// Quark (4) + type byte (1).
    pub const FIXED_SIZE: usize = 5;
    pub const TYPE_NULL: i8 = -1;
    pub const TYPE_INT: i8 = 0;
    pub const TYPE_STRING: i8 = 1;
    pub const TYPE_LONG: i8 = 2;
    pub const TYPE_DOUBLE: i8 = 3;
    pub const TYPE_CUSTOM: i8 = 20;
    /// Longest string (UTF-8 bytes) a state value may hold.
    pub const MAX_STRING_LEN: usize = 32767;
}

/// The attribute-tree section: a Java serialization stream (big-endian).
pub mod attributes {
    pub const ATTRIBUTE_TREE_MAGIC: i32 = 0x06EC_3671;
    pub const STREAM_MAGIC: u16 = 0xACED;
    pub const STREAM_VERSION: u16 = 5;
    pub const TC_NULL: u8 = 0x70;
    pub const TC_REFERENCE: u8 = 0x71;
    pub const TC_CLASSDESC: u8 = 0x72;
    pub const TC_OBJECT: u8 = 0x73;
    pub const TC_STRING: u8 = 0x74;
    pub const TC_ARRAY: u8 = 0x75;
    pub const TC_BLOCKDATA: u8 = 0x77;
    pub const TC_ENDBLOCKDATA: u8 = 0x78;
    pub const TC_LONGSTRING: u8 = 0x7C;
    pub const BASE_HANDLE: u32 = 0x7E_0000;
    pub const ARRAYLIST_CLASS: &str = "java.util.ArrayList";
    pub const ARRAYLIST_SUID: i64 = 8_683_452_581_122_892_189;
    pub const STRING_ARRAY_CLASS: &str = "[Ljava.lang.String;";
    pub const STRING_ARRAY_SUID: i64 = -5_921_575_005_990_323_385;
    pub const SC_WRITE_METHOD: u8 = 0x01;
    pub const SC_SERIALIZABLE: u8 = 0x02;
    /// The path element that stands for "same as the previous path's element".
    pub const SAME_AS_PREVIOUS: &str = "*";
}

/// Offset of node `seq` in a file of block size `block_size`.
#[inline]
pub fn node_offset(seq: i32, block_size: i32) -> u64 {
    TREE_HEADER_SIZE + seq as u64 * block_size as u64
}

/// Size of a core node's fixed part (common header, child count, the three
/// fixed-width child arrays), to which the varint child times are added.
#[inline]
pub fn core_fixed_header_size(max_children: usize) -> usize {
    node::CORE_ARRAYS + 12 * max_children
}

/// Encoded length of `v` as an HTVarInt (1 to 9 bytes).
#[inline]
pub fn varint_len(v: i64) -> usize {
    let e = v.wrapping_add(3);
    if e < 0 {
        9
    } else {
        // Bytes needed for e (0 for e == 0), plus the length byte.
        1 + (64 - e.leading_zeros() as usize).div_ceil(8)
    }
}

/// Appends `v` as an HTVarInt.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    let e = v.wrapping_add(3);
    let n = varint_len(v) - 1;
    out.push(n as u8);
    out.extend_from_slice(&e.to_le_bytes()[..n]);
}

/// Reads an HTVarInt at `*pos`, advancing it. `None` if the bytes run out or the
/// length byte is not 0..=8.
#[inline]
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let n = *buf.get(*pos)? as usize;
    if n > 8 {
        return None;
    }
    let bytes = buf.get(*pos + 1..*pos + 1 + n)?;
    let mut raw = [0u8; 8];
    raw[..n].copy_from_slice(bytes);
    *pos += 1 + n;
    Some(i64::from_le_bytes(raw).wrapping_sub(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varint_examples_from_the_spec() {
        assert_eq!(enc(-4), [8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(enc(-3), [0]);
        assert_eq!(enc(-2), [1, 1]);
        assert_eq!(enc(0), [1, 3]);
        assert_eq!(enc(1), [1, 4]);
        assert_eq!(enc(252), [1, 0xff]);
        assert_eq!(enc(253), [2, 0, 1]);
        assert_eq!(enc(65533), [3, 0, 0, 1]);
        assert_eq!(enc((1 << 56) - 3), [8, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(enc(i64::MIN), [8, 3, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(enc(i64::MAX), [8, 2, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(
            enc(1_700_000_000_000_000_000),
            [8, 0x03, 0x00, 0x2a, 0x36, 0xfe, 0x9c, 0x97, 0x17]
        );
    }

    #[test]
    fn varint_round_trips_and_lengths_agree() {
        for v in [
            i64::MIN,
            i64::MIN + 1,
            -1_000_000,
            -4,
            -3,
            -2,
            -1,
            0,
            1,
            252,
            253,
            65532,
            65533,
            1 << 40,
            i64::MAX - 3,
            i64::MAX - 2,
            i64::MAX,
        ] {
            let bytes = enc(v);
            assert_eq!(bytes.len(), varint_len(v), "length of {v}");
            let mut pos = 0;
            assert_eq!(get_varint(&bytes, &mut pos), Some(v));
            assert_eq!(pos, bytes.len());
        }
    }

    #[test]
    fn varint_rejects_truncated_and_bad_lengths() {
        let mut pos = 0;
        assert_eq!(get_varint(&[9, 0, 0], &mut pos), None);
        assert_eq!(get_varint(&[3, 0], &mut pos), None);
        assert_eq!(get_varint(&[], &mut pos), None);
        assert_eq!(pos, 0);
    }
}
