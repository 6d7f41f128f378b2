//! The Trace Compass XML analysis interpreter: loads data-driven analyses, compiles
//! them into programs, and runs them as state providers over `sextant_trace` events.
//! (Lands with the XML-analysis issue.)
