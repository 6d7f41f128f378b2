//! Event statistics of an experiment (per-name counts, lost events, time range).
