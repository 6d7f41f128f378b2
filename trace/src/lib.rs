//! Event sources for Sextant: the CTF reader, XML stub traces and multi-trace experiments.
//!
//! Data flows from a trace on disk to a time-ordered stream of events that state
//! providers consume. (The readers land with the trace-reader issue.)

pub mod custom_time;
pub mod custom_txt;
pub mod custom_xml;
pub mod gen;
