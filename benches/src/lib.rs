//! Shared workload generators for the criterion benches and `sextant bench`.
