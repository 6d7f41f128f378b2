//! Event sources (in progress).
