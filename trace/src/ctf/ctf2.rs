//! CTF 2 metadata (JSON text sequence) -> [`Metadata`].

use super::types::Metadata;
use crate::error::TraceError;
use std::path::Path;

/// Parses a CTF 2 metadata stream (fragments separated by RS, 0x1E).
pub fn parse(path: &Path, _text: &[u8]) -> Result<Metadata, TraceError> {
    Err(TraceError::Ctf2Metadata {
        path: path.to_path_buf(),
        fragment: 0,
        reason: "CTF 2 is not supported yet".into(),
    })
}
