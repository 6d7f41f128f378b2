//! sht: the state system.
