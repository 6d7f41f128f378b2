//! Fuzzes the XML analysis loader (parse, schema checks, compilation) and runs
//! whatever compiles over a tiny stub trace: any bytes must load or fail with an
//! error; never panic.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sextant_trace::{StubTimeUnit, XmlStubTrace};

const TRACE: &str = r#"<trace>
<event timestamp="1" name="entry"><field name="cpu" value="0" type="int"/><field name="op" value="a" type="string"/></event>
<event timestamp="3" name="exit"><field name="cpu" value="0" type="int"/><field name="op" value="b" type="string"/></event>
<event timestamp="3" name="test"><field name="testField" value="10" type="long"/></event>
</trace>"#;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = sextant_xml::load_bytes(data, Path::new("fuzz.xml")) else {
        return;
    };
    let trace = XmlStubTrace::parse(
        TRACE.as_bytes(),
        Path::new("t.xml"),
        "t.xml".into(),
        StubTimeUnit::Nanoseconds,
    )
    .expect("the fixed trace parses");
    for a in &file.analyses {
        let _ = sextant_xml::build_in_memory(&Arc::clone(a), &trace);
    }
});
