//! Trace synchronization by event matching (Trace Compass's fully incremental convex hull).
//!
//! Packets seen leaving one host and arriving at another give pairs of timestamps; per pair of
//! hosts a convex hull bounds the clock relation, and a spanning tree from a reference host
//! chains the per-pair formulas into one [`LinearTransform`] per trace.

pub mod exact;
pub mod hull;
pub mod transform;

pub use exact::{BigInt, Ratio};
pub use transform::LinearTransform;
