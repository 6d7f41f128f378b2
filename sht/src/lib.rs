//! `sht`: the state system of Sextant, compatible with Trace Compass.
//!
//! A state provider drives a [`StateSystem`] through the [`StateSystemBuilder`]
//! interface: it names attributes by path in the [`AttributeTree`] (getting dense
//! integer *quarks*) and records state changes (modify, push, pop, remove,
//! increment). The transient state turns changes into [`Interval`]s, which a
//! [`StateHistoryBackend`] stores: the on-disk history tree ([`ht`], Trace Compass's
//! `.ht` file version 11, byte for byte), memory, or nothing. Views then ask the
//! [`StateSystemQuerier`] interface for single, full-state and 2D queries.
//! [`changelog`] replays recorded state changes, and [`dump`] prints files and
//! query answers in the canonical text formats of the golden tests.

pub mod attribute;
pub mod backend;
pub mod changelog;
pub mod columns;
pub mod condition;
pub mod dump;
pub mod error;
pub mod handoff;
pub mod ht;
pub mod statesystem;
pub mod threaded;
pub mod value;

/// An attribute's identifier: dense, from 0, in creation order.
pub type Quark = i32;

pub use attribute::{AttributeTree, INVALID_QUARK, ROOT_QUARK};
pub use backend::{HistoryTreeBackend, InMemoryBackend, NullBackend, StateHistoryBackend};
pub use condition::{QuarkSet, TimeCondition};
pub use error::{Error, Result};
pub use ht::{HistoryTreeReader, HistoryTreeWriter, HtConfig, HtHeader};
pub use statesystem::{StateSystem, StateSystemBuilder, StateSystemQuerier};
pub use threaded::ThreadedBackend;
pub use value::{Interval, StateValue, ValueType};
