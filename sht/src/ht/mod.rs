//! The on-disk history tree (`.ht`, file version 11): layout constants, node and
//! attribute-section codecs, the writer, the reader and their shared traversals.

pub mod attributes;
pub mod chunk;
pub mod format;
pub mod node;
pub mod packed;
pub(crate) mod query;
pub mod reader;
pub mod writer;

pub use reader::{HistoryTreeReader, HtHeader};
pub use writer::{HistoryTreeWriter, HtConfig};
