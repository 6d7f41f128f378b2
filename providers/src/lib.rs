//! Native state providers (Linux kernel, disk I/O, virtual machines, OpenStack, ...).
//!
//! A provider consumes events from `sextant_trace` and drives an `sht` state-system
//! builder. (The provider contract lands with the kernel-analysis issue.)
