//! Fuzzes the CTF 2 JSON metadata parser and the layout compiler.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_trace::ctf::ctf2;
use sextant_trace::ctf::reader::CtfTrace;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let p = Path::new("fuzz/metadata");
    // Make most inputs start like a JSON text sequence so the parser gets past byte 0.
    let mut text = Vec::with_capacity(data.len() + 1);
    if data.first() != Some(&0x1E) {
        text.push(0x1E);
    }
    text.extend_from_slice(data);
    if let Ok(m) = ctf2::parse(p, &text) {
        let _ = CtfTrace::from_metadata(Path::new("fuzz"), p, m);
    }
});
