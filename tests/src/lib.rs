//! Helpers for Sextant's cross-crate tests: locating `../shared`.
