//! The Trace Server Protocol (TSP) server behind `sextant serve`: answers viewers'
//! time-graph, XY and data-tree requests from `sht` state systems.
//! (Lands with the server issue.)
