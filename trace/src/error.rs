//! Typed errors of the trace readers: each names the file and, where it applies,
//! the byte offset, line or field that was wrong.

use std::path::PathBuf;

/// Everything that can go wrong while opening or reading a trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A file could not be opened, mapped or read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A path given to open is neither a CTF trace nor a directory holding traces.
    #[error("{path}: no CTF trace found (no `metadata` file in it or below it)")]
    NoTrace { path: PathBuf },
    /// The metadata stream's packet framing is broken (packetized metadata).
    #[error("{path}: metadata packet at byte {offset}: {reason}")]
    MetadataPacket {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// TSDL text that does not parse or refers to something undeclared.
    #[error("{path}: TSDL line {line}: {reason}")]
    Tsdl {
        path: PathBuf,
        line: u32,
        reason: String,
    },
    /// CTF 2 JSON metadata that is malformed or not understood.
    #[error("{path}: CTF 2 metadata fragment {fragment}: {reason}")]
    Ctf2Metadata {
        path: PathBuf,
        fragment: usize,
        reason: String,
    },
    /// Metadata that parses but cannot describe a readable trace (missing stream class,
    /// unresolvable field reference, unsupported float size...).
    #[error("{path}: metadata: {reason}")]
    Metadata { path: PathBuf, reason: String },
    /// A data stream whose bytes contradict the metadata (bad magic, truncated packet,
    /// unknown event id, absurd sequence length...).
    #[error("{path}: byte {offset}: {reason}")]
    Stream {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// An LTTng index file that cannot be used (the reader then scans the stream).
    #[error("{path}: index: {reason}")]
    Index { path: PathBuf, reason: String },
    /// An XML stub trace or custom XML trace that cannot be read.
    #[error("{path}: {reason}")]
    Xml { path: PathBuf, reason: String },
}

impl TraceError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TraceError::Io {
            path: path.into(),
            source,
        }
    }
}
