//! The metadata stream: packetized or plain, TSDL or CTF 2 JSON text sequence.

use super::types::Metadata;
use super::{ctf2, tsdl};
use crate::error::TraceError;
use std::path::Path;

const METADATA_MAGIC: u32 = 0x75D1_1D57;
const HEADER_LEN: usize = 37;

/// Reads and parses `metadata` of a trace directory.
pub fn load(path: &Path) -> Result<Metadata, TraceError> {
    let bytes = std::fs::read(path).map_err(|e| TraceError::io(path, e))?;
    parse_bytes(path, &bytes)
}

/// Parses the bytes of a metadata stream (`path` only names it in errors).
pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<Metadata, TraceError> {
    let text = unwrap_packets(path, bytes)?;
    if text.first() == Some(&0x1E) {
        return ctf2::parse(path, &text);
    }
    let text = String::from_utf8_lossy(&text);
    tsdl::parse(&text).map_err(|e| TraceError::Tsdl {
        path: path.to_path_buf(),
        line: e.line,
        reason: e.reason,
    })
}

/// Concatenates the text of metadata packets; plain metadata is returned as is.
pub fn unwrap_packets(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, TraceError> {
    if bytes.len() < 4 {
        if bytes.is_empty() {
            return Err(TraceError::MetadataPacket {
                path: path.to_path_buf(),
                offset: 0,
                reason: "empty metadata".into(),
            });
        }
        return Ok(bytes.to_vec());
    }
    let head = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let little = u32::from_le_bytes(head) == METADATA_MAGIC;
    let big = u32::from_be_bytes(head) == METADATA_MAGIC;
    if !little && !big {
        return Ok(bytes.to_vec());
    }
    let rd = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut off = 0usize;
    while off < bytes.len() {
        let err = |reason: String| TraceError::MetadataPacket {
            path: path.to_path_buf(),
            offset: off as u64,
            reason,
        };
        if bytes.len() - off < HEADER_LEN {
            return Err(err(format!(
                "truncated packet header ({} bytes left)",
                bytes.len() - off
            )));
        }
        let h = &bytes[off..off + HEADER_LEN];
        if rd(&h[0..4]) != METADATA_MAGIC {
            return Err(err(format!("bad magic 0x{:08x}", rd(&h[0..4]))));
        }
        let content_bits = rd(&h[24..28]) as usize;
        let packet_bits = rd(&h[28..32]) as usize;
        if h[32] != 0 || h[33] != 0 {
            return Err(err(
                "compressed or encrypted metadata is not supported".into()
            ));
        }
        if !content_bits.is_multiple_of(8)
            || !packet_bits.is_multiple_of(8)
            || content_bits / 8 < HEADER_LEN
            || content_bits > packet_bits
        {
            return Err(err(format!(
                "bad sizes: content {content_bits} bits, packet {packet_bits} bits"
            )));
        }
        let content_end = off + content_bits / 8;
        if content_end > bytes.len() {
            return Err(err(format!(
                "content ({} bytes) extends past the end of the file",
                content_bits / 8
            )));
        }
        out.extend_from_slice(&bytes[off + HEADER_LEN..content_end]);
        off += packet_bits / 8;
    }
    Ok(out)
}
