//! Typed errors of the state system and of `.ht` files.

use std::path::PathBuf;

use crate::value::ValueType;
use crate::Quark;

/// Everything that can go wrong building, opening or querying a state system.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Trace Compass `TimeRangeException` for a point query.
    #[error("time {t} is outside the history range [{start}, {end}]")]
    TimeRange { t: i64, start: i64, end: i64 },
    /// Trace Compass `TimeRangeException` for a 2D query starting before the history.
    #[error("time {t} is before the history start {start}")]
    BeforeStart { t: i64, start: i64 },
    #[error("no attribute at path {0}")]
    AttributeNotFound(String),
    /// A quark below 0 or at/after the attribute count.
    #[error("quark {quark} does not exist (the state system has {count} attributes)")]
    InvalidQuark { quark: Quark, count: usize },
    /// Trace Compass `StateValueTypeException`.
    #[error("attribute {quark} holds {expected} values; cannot store a {found} value")]
    ValueType {
        quark: Quark,
        expected: ValueType,
        found: ValueType,
    },
    #[error("attribute {quark}: stack depth limit ({limit}) reached")]
    StackOverflow { quark: Quark, limit: i32 },
    #[error("attribute {quark}: stack sub-attribute for depth {depth} is missing")]
    StackCorrupt { quark: Quark, depth: i32 },
    #[error("string of {len} bytes is too long to be stored in a state system (limit {limit})")]
    StringTooLong { len: usize, limit: usize },
    #[error("string value contains the control character U+{code:04X}")]
    ControlCharacter { code: u32 },
    #[error("invalid attribute name {name:?}: {why}")]
    InvalidAttributeName { name: String, why: &'static str },
    #[error("interval [{start}, {end}] of quark {quark} ends before it starts")]
    InvalidInterval { start: i64, end: i64, quark: Quark },
    #[error("an interval of {size} bytes cannot fit in a node of {block_size} bytes")]
    IntervalTooLarge { size: usize, block_size: i32 },
    /// The backend has no interval where one must exist (Trace Compass's
    /// "Incoherent interval storage"): a null backend, or a damaged file.
    #[error("no interval of quark {quark} at time {t} in the {backend} backend")]
    MissingInterval {
        quark: Quark,
        t: i64,
        backend: &'static str,
    },
    #[error("invalid history-tree configuration: {0}")]
    Config(String),
    #[error("the history is closed: no more state changes can be made")]
    Closed,
    /// The cause is the source error (printed after this by error reporters).
    #[error("I/O error on {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A history file that cannot be used; `offset` is where the problem was found.
    #[error("{}: at offset {offset}: {what}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{}: provider version {found} does not match the expected {expected}", path.display())]
    ProviderVersion {
        path: PathBuf,
        found: i32,
        expected: i32,
    },
    /// A state-change log line that cannot be replayed.
    #[error("{}:{line}: {what}", path.display())]
    Log {
        path: PathBuf,
        line: usize,
        what: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            offset,
            what: what.into(),
        }
    }
}
