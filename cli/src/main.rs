//! `sextant`: thin command-line wiring over the Sextant crates.
fn main() {}
