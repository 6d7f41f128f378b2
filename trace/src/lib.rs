//! Event sources for Sextant: the CTF reader, XML stub traces and multi-trace experiments.
//!
//! Data flows from a trace on disk to a time-ordered stream of events that state
//! providers consume: [`Experiment::open`] parses each trace's metadata
//! ([`ctf::metadata`], [`ctf::tsdl`], [`ctf::ctf2`]) and compiles one layout per event
//! class ([`ctf::decode`]); [`Experiment::for_each`] merges the per-stream cursors
//! ([`ctf::reader::Cursor`]) by timestamp and hands out [`Event`]s whose fields are
//! read through pre-resolved [`FieldHandle`]s. Errors are [`TraceError`]s.
//! Logs in Trace Compass custom-parser formats are read by [`custom_xml`] and
//! [`custom_txt`] into [`custom_xml::CustomEvent`]s; [`gen`] writes synthetic LTTng kernel traces.

pub mod ctf;
pub mod custom_time;
pub mod custom_txt;
pub mod custom_xml;
pub mod error;
pub mod experiment;
pub mod gen;
pub mod live;
pub mod stats;
pub mod sync;
pub mod timing;

pub use error::TraceError;
pub use experiment::{Access, ClassId, Event, Experiment, FieldHandle, TraceMeta, Value};
pub mod xmlstub;
pub use xmlstub::{StubEvent, StubTimeUnit, StubValue, XmlStubError, XmlStubTrace};

/// How many threads can run at once (`std::thread::available_parallelism`, 1 if unknown),
/// found once per process: finding it reads several files (the cgroup's CPU quota), which
/// costs about a tenth of a millisecond each time.
pub fn available_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
