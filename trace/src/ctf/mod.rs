//! Native CTF reader: metadata (TSDL for CTF 1.8, JSON text sequences for CTF 2) parsed
//! into one type model ([`types`]), compiled into per-class layouts ([`decode`]), and
//! read from memory-mapped data streams packet by packet ([`reader`]).

pub mod ctf2;
pub mod decode;
pub mod gen;
pub mod index;
pub mod metadata;
pub mod reader;
pub mod tsdl;
pub mod types;
