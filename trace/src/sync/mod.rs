//! Trace synchronization by event matching (Trace Compass's fully incremental convex hull).
//!
//! Packets seen leaving one host and arriving at another give pairs of timestamps
//! ([`matching::EventMatcher`]); per pair of hosts a [`hull::ConvexHull`] bounds the clock
//! relation; a [`Synchronizer`] chains the pair formulas from a reference host into one exact
//! [`LinearTransform`] per trace ([`SyncResult`]).
//!
//! The packets are read by [`events`]: stream by stream after opening ([`synchronize`]), or
//! while opening ([`start_scanning_packets`]: each trace's streams as soon as its metadata is
//! parsed, on other threads; the caller's thread joins in with [`ScanningPackets::finish`]).
//! [`apply()`] gives an experiment its formulas as the user asked (`--sync auto|off|FILE`),
//! computing them once and saving them beside the histories.

pub mod algorithm;
pub mod apply;
pub mod events;
pub mod exact;
pub mod hull;
pub mod matching;
pub mod report;
pub mod stub;
pub mod timeline;
pub mod transform;

pub use algorithm::{PairSync, SyncResult, Synchronizer, TraceSync, TraceSyncStatus};
pub use apply::{
    apply, apply_prescanned, apply_saving_later, apply_scanned, computed, trace_names, PendingSave,
    SyncApplied, SyncError, SyncMode, SyncOrigin, SAVED_SYNC_FILE,
};
pub use events::{
    host_ids, host_ids_of, open_scanning_packets, read_packets, start_scanning_packets,
    synchronize, synchronize_hosts, synchronize_in_one_pass, synchronize_scanned,
    synchronize_with_reference, MatchPlan, PacketScan, ScanningPackets, TraceOpened,
};
pub use exact::{BigInt, Ratio};
pub use hull::{ConvexHull, HullStats, SyncQuality};
pub use matching::{Dependency, Direction, EventMatcher, MatchKey, MatchSide, TcpKey};
pub use report::{transforms_from_json, SavedSyncError};
pub use stub::{stub_key, synchronize_stubs};
pub use timeline::TimeTransforms;
pub use transform::LinearTransform;
