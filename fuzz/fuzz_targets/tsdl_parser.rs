//! Fuzzes the TSDL parser and the layout compiler: any text must parse and compile
//! or fail with an error; never panic or recurse without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_trace::ctf::metadata;
use sextant_trace::ctf::reader::CtfTrace;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let p = Path::new("fuzz/metadata");
    if let Ok(m) = metadata::parse_bytes(p, data) {
        let _ = CtfTrace::from_metadata(Path::new("fuzz"), p, m);
    }
});
