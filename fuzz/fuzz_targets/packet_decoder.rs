//! Fuzzes the packet/event decoder: arbitrary stream bytes under fixed metadata that
//! uses most of the type system (bit fields, both byte orders, LTTng compact header
//! with its variant, enums, sequences, strings, floats, nested structs, CTF 2 LEB128;
//! fixed-layout classes behind short and extended headers take the reader's fast path).
//! Reading must end with events and/or typed errors; never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_trace::Experiment;
use std::ops::ControlFlow;
use std::sync::atomic::AtomicU64;

const TSDL: &str = r#"/* CTF 1.8 */
typealias integer { size = 8; align = 8; signed = false; } := uint8_t;
typealias integer { size = 16; align = 8; signed = false; } := uint16_t;
typealias integer { size = 32; align = 8; signed = false; } := uint32_t;
typealias integer { size = 64; align = 8; signed = false; } := uint64_t;
typealias integer { size = 5; align = 1; signed = false; } := uint5_t;
trace { major = 1; minor = 8; byte_order = le;
  packet.header := struct { uint32_t magic; uint32_t stream_id; }; };
clock { name = c; freq = 1000000000; offset = 1000; };
typealias integer { size = 27; align = 1; signed = false; map = clock.c.value; } := uint27_clock_c_t;
typealias integer { size = 64; align = 8; signed = false; map = clock.c.value; } := uint64_clock_c_t;
stream { id = 0;
  packet.context := struct { uint64_clock_c_t timestamp_begin; uint64_clock_c_t timestamp_end;
    uint64_t content_size; uint64_t packet_size; uint32_t events_discarded; uint32_t cpu_id; };
  event.header := struct {
    enum : uint5_t { compact = 0 ... 30, extended = 31 } id;
    variant <id> { struct { uint27_clock_c_t timestamp; } compact;
                   struct { uint32_t id; uint64_clock_c_t timestamp; } extended; } v;
  } align(8);
  event.context := struct { integer { size = 8; align = 8; signed = 1; encoding = UTF8; } _comm[4]; };
};
event { name = "seq"; id = 0; stream_id = 0; fields := struct { uint32_t _n; uint16_t _s[_n]; string _t; }; };
event { name = "var"; id = 1; stream_id = 0;
  fields := struct { enum : uint8_t { a = 0, b = 1, c = 2 ... 9 } _tag;
    variant <_tag> { uint32_t a; uint64_t b; string c; } _v; }; };
event { name = "bits"; id = 2; stream_id = 0;
  fields := struct { integer { size = 3; align = 1; signed = true; } _x;
    integer { size = 13; align = 1; signed = false; byte_order = be; } _y;
    floating_point { exp_dig = 8; mant_dig = 24; align = 8; } _f;
    floating_point { exp_dig = 11; mant_dig = 53; align = 64; } _d;
    struct { uint8_t _k; uint8_t _m[_k]; } _nested[2]; }; };
event { name = "fixed"; id = 3; stream_id = 0;
  fields := struct { uint32_t _a; integer { size = 16; align = 8; signed = 1; } _b; uint64_t _c; }; };
event { name = "fixed_ext"; id = 40; stream_id = 0; fields := struct { uint8_t _a; uint8_t _b[3]; }; };
"#;

const CTF2: &str = "\u{1e}{\"type\":\"preamble\",\"version\":2}\n\
\u{1e}{\"type\":\"data-stream-class\"}\n\
\u{1e}{\"type\":\"event-record-class\",\"name\":\"v\",\"payload-field-class\":{\"type\":\"structure\",\"member-classes\":[\
{\"name\":\"u\",\"field-class\":{\"type\":\"variable-length-unsigned-integer\"}},\
{\"name\":\"s\",\"field-class\":{\"type\":\"variable-length-signed-integer\"}},\
{\"name\":\"b\",\"field-class\":{\"type\":\"dynamic-length-blob\",\"length-field-location\":{\"origin\":\"event-record-payload\",\"path\":[\"u\"]}}}]}}\n";

fuzz_target!(|data: &[u8]| {
    let Some((&which, stream)) = data.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("sextant-fuzz-ctf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let meta = if which & 1 == 0 { TSDL } else { CTF2 };
    if std::fs::write(dir.join("metadata"), meta).is_err()
        || std::fs::write(dir.join("stream_0"), stream).is_err()
    {
        return;
    }
    let Ok(mut exp) = Experiment::open(&[&dir]) else {
        return;
    };
    let handles: Vec<_> = (0..exp.class_count())
        .flat_map(|c| {
            let c = sextant_trace::ClassId(c);
            exp.field_names(c)
                .into_iter()
                .filter_map(move |n| Some(n.to_string()))
                .map(move |n| (c, n))
                .collect::<Vec<_>>()
        })
        .filter_map(|(c, n)| exp.field_handle(c, &n))
        .collect();
    let _ = exp.for_each(
        &mut |ev| {
            for h in &handles {
                let _ = (ev.int(*h), ev.string(*h), ev.value(*h));
            }
            let _ = ev.babeltrace_fields();
            ControlFlow::Continue(())
        },
        &AtomicU64::new(0),
    );
});
