//! Live analysis: reading an LTTng session from `lttng-relayd` while it is traced.
//!
//! [`proto::Client`] speaks the viewer protocol (connect, list, attach, metadata,
//! next index, packet, new streams). [`LiveSession`] attaches to the session named by
//! a [`LiveUrl`], feeds each packet to the CTF decoder through an in-memory
//! [`Experiment`](crate::Experiment) stream, and merges streams by timestamp, using
//! packet ends and inactivity beacons to know when a quiet stream cannot hold an
//! earlier event. Every reply is bounded by a timeout; malformed replies,
//! disconnects and refusals are [`LiveError`]s.

pub mod fake;
pub mod proto;
pub mod session;

pub use proto::{LiveError, DEFAULT_PORT};
pub use session::{LiveOptions, LiveSession, LiveStats, LiveUrl};
