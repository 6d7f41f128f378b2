//! CTF 2 metadata (JSON text sequence, RFC 7464) -> [`Metadata`].
//!
//! Accepts both the final CTF2-SPEC-2.0 and release candidate 7.0 (our test traces):
//! enumeration types vs integer `mappings`, field locations as arrays vs
//! `{origin, path}` objects, clocks named by `name` vs `id` (ctf.md §9.3).

use super::types::*;
use crate::error::TraceError;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Nesting bound for field classes (hostile metadata must not overflow the stack).
const MAX_DEPTH: u32 = 64;

struct Ctx<'a> {
    path: &'a Path,
    fragment: usize,
    aliases: HashMap<String, Type>,
}

impl Ctx<'_> {
    fn err(&self, reason: impl Into<String>) -> TraceError {
        TraceError::Ctf2Metadata {
            path: self.path.to_path_buf(),
            fragment: self.fragment,
            reason: reason.into(),
        }
    }
}

type R<T> = Result<T, TraceError>;

/// Parses a CTF 2 metadata stream (fragments each introduced by RS, 0x1E).
pub fn parse(path: &Path, text: &[u8]) -> Result<Metadata, TraceError> {
    let mut ctx = Ctx {
        path,
        fragment: 0,
        aliases: HashMap::new(),
    };
    let mut meta = Metadata {
        ctf2: true,
        ..Metadata::default()
    };
    let mut saw_preamble = false;
    let mut saw_trace_class = false;
    for (i, chunk) in text.split(|&b| b == 0x1E).enumerate() {
        if i == 0 {
            if chunk.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            return Err(ctx.err("metadata does not start with a record separator (0x1E)"));
        }
        ctx.fragment = i - 1;
        let frag: Value =
            serde_json::from_slice(chunk).map_err(|e| ctx.err(format!("invalid JSON: {e}")))?;
        let Value::Object(o) = frag else {
            return Err(ctx.err("fragment is not a JSON object"));
        };
        let ty = str_field(&ctx, &o, "type")?;
        if !saw_preamble && ty != "preamble" {
            return Err(ctx.err(format!("first fragment is `{ty}`, not a preamble")));
        }
        match ty.as_str() {
            "preamble" => {
                if saw_preamble {
                    return Err(ctx.err("second preamble"));
                }
                saw_preamble = true;
                match o.get("version").and_then(Value::as_u64) {
                    Some(2) => {}
                    v => return Err(ctx.err(format!("unsupported CTF version {v:?}"))),
                }
                if let Some(u) = o.get("uuid") {
                    meta.uuid = Some(uuid_of(&ctx, u)?);
                }
                if let Some(Value::Object(ext)) = o.get("extensions") {
                    if let Some(name) = ext.keys().next() {
                        return Err(ctx.err(format!(
                            "the trace requires extension `{name}`, which this reader does not implement"
                        )));
                    }
                }
            }
            "field-class-alias" => {
                let name = str_field(&ctx, &o, "name")?;
                let fc = o
                    .get("field-class")
                    .ok_or_else(|| ctx.err("alias without field-class"))?;
                let t = field_class(&ctx, fc, 0)?;
                ctx.aliases.insert(name, t);
            }
            "trace-class" => {
                if saw_trace_class {
                    return Err(ctx.err("second trace-class"));
                }
                saw_trace_class = true;
                if let Some(u) = o.get("uuid") {
                    meta.uuid = Some(uuid_of(&ctx, u)?);
                }
                if let Some(Value::Object(env)) = o.get("environment") {
                    for (k, v) in env {
                        let text = match v {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            other => other.to_string(),
                        };
                        meta.env.insert(k.clone(), text);
                    }
                }
                if let Some(fc) = o.get("packet-header-field-class") {
                    meta.packet_header = Some(field_class(&ctx, fc, 0)?);
                }
            }
            "clock-class" => {
                let name = o
                    .get("id")
                    .or_else(|| o.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| ctx.err("clock-class without id/name"))?
                    .to_string();
                let mut c = ClockClass {
                    name,
                    ..ClockClass::default()
                };
                if let Some(f) = o.get("frequency") {
                    c.freq = f
                        .as_u64()
                        .filter(|f| *f > 0)
                        .ok_or_else(|| ctx.err("bad clock frequency"))?;
                }
                if let Some(Value::Object(off)) = o.get("offset-from-origin").or(o.get("offset")) {
                    c.offset_s = off.get("seconds").and_then(Value::as_i64).unwrap_or(0);
                    c.offset = off.get("cycles").and_then(Value::as_i64).unwrap_or(0);
                }
                if let Some(u) = o.get("uuid") {
                    c.uuid = uuid_of(&ctx, u).ok();
                }
                meta.clocks.push(c);
            }
            "data-stream-class" => {
                let mut s = StreamClass {
                    id: o.get("id").and_then(Value::as_u64).unwrap_or(0),
                    ..StreamClass::default()
                };
                s.clock = o
                    .get("default-clock-class-id")
                    .or_else(|| o.get("default-clock-class-name"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if let Some(c) = &s.clock {
                    if !meta.clocks.iter().any(|k| &k.name == c) {
                        return Err(ctx.err(format!("unknown clock class `{c}`")));
                    }
                }
                let fc = |key: &str| -> R<Option<Type>> {
                    o.get(key).map(|v| field_class(&ctx, v, 0)).transpose()
                };
                s.packet_context = fc("packet-context-field-class")?;
                s.event_header = fc("event-record-header-field-class")?;
                s.event_context = fc("event-record-common-context-field-class")?;
                if meta.streams.iter().any(|x| x.id == s.id) {
                    return Err(ctx.err(format!("two data-stream-classes with id {}", s.id)));
                }
                meta.streams.push(s);
            }
            "event-record-class" => {
                let e = EventClass {
                    id: o.get("id").and_then(Value::as_u64).unwrap_or(0),
                    stream_id: o
                        .get("data-stream-class-id")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                    name: o
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    context: o
                        .get("specific-context-field-class")
                        .map(|v| field_class(&ctx, v, 0))
                        .transpose()?,
                    fields: o
                        .get("payload-field-class")
                        .map(|v| field_class(&ctx, v, 0))
                        .transpose()?,
                };
                if !meta.streams.iter().any(|s| s.id == e.stream_id) {
                    return Err(ctx.err(format!(
                        "event-record-class `{}` names unknown data-stream-class {}",
                        e.name, e.stream_id
                    )));
                }
                meta.events.push(e);
            }
            other => return Err(ctx.err(format!("unknown fragment type `{other}`"))),
        }
    }
    if !saw_preamble {
        return Err(ctx.err("no preamble fragment"));
    }
    Ok(meta)
}

fn str_field(ctx: &Ctx, o: &Map<String, Value>, key: &str) -> R<String> {
    o.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ctx.err(format!("missing string property `{key}`")))
}

fn uuid_of(ctx: &Ctx, v: &Value) -> R<[u8; 16]> {
    let arr = v
        .as_array()
        .filter(|a| a.len() == 16)
        .ok_or_else(|| ctx.err("uuid is not an array of 16 bytes"))?;
    let mut out = [0u8; 16];
    for (i, b) in arr.iter().enumerate() {
        out[i] = b
            .as_u64()
            .and_then(|x| u8::try_from(x).ok())
            .ok_or_else(|| ctx.err("uuid byte out of range"))?;
    }
    Ok(out)
}

fn byte_order(ctx: &Ctx, o: &Map<String, Value>) -> R<ByteOrder> {
    Ok(match o.get("byte-order").and_then(Value::as_str) {
        None => ByteOrder::Native,
        Some("little-endian") | Some("le") => ByteOrder::Little,
        Some("big-endian") | Some("be") => ByteOrder::Big,
        Some(x) => return Err(ctx.err(format!("bad byte-order `{x}`"))),
    })
}

fn roles(ctx: &Ctx, o: &Map<String, Value>) -> R<Vec<Role>> {
    let mut out = Vec::new();
    let Some(v) = o.get("roles") else {
        return Ok(out);
    };
    let arr = v
        .as_array()
        .ok_or_else(|| ctx.err("roles is not an array"))?;
    for r in arr {
        let name = r.as_str().ok_or_else(|| ctx.err("role is not a string"))?;
        out.push(match name {
            "packet-magic-number" => Role::PacketMagic,
            "metadata-stream-uuid" => Role::MetadataStreamUuid,
            "data-stream-class-id" => Role::StreamClassId,
            "data-stream-id" => Role::StreamInstanceId,
            "packet-total-length" => Role::PacketTotalLength,
            "packet-content-length" => Role::PacketContentLength,
            "default-clock-timestamp" => Role::DefaultClockTimestamp,
            "packet-end-default-clock-timestamp" => Role::PacketEndTimestamp,
            "discarded-event-record-counter-snapshot" => Role::DiscardedCounter,
            "packet-sequence-number" => Role::PacketSequenceNumber,
            "event-record-class-id" => Role::EventClassId,
            // Unknown roles are informative for this reader.
            _ => continue,
        });
    }
    Ok(out)
}

fn ranges_of(ctx: &Ctx, v: &Value) -> R<Vec<(i128, i128)>> {
    let arr = v
        .as_array()
        .ok_or_else(|| ctx.err("integer range set is not an array"))?;
    let num = |x: &Value| -> R<i128> {
        x.as_i64()
            .map(i128::from)
            .or_else(|| x.as_u64().map(i128::from))
            .ok_or_else(|| ctx.err("range bound is not an integer"))
    };
    let mut out = Vec::new();
    for r in arr {
        let pair = r
            .as_array()
            .filter(|p| p.len() == 2)
            .ok_or_else(|| ctx.err("range is not a [lower, upper] pair"))?;
        let (lo, hi) = (num(&pair[0])?, num(&pair[1])?);
        if lo > hi {
            return Err(ctx.err(format!("range [{lo}, {hi}] is empty")));
        }
        out.push((lo, hi));
    }
    Ok(out)
}

fn mappings_of(ctx: &Ctx, o: &Map<String, Value>) -> R<Option<Arc<Vec<EnumMapping>>>> {
    let Some(m) = o.get("mappings") else {
        return Ok(None);
    };
    let m = m
        .as_object()
        .ok_or_else(|| ctx.err("mappings is not an object"))?;
    let mut out = Vec::new();
    for (label, r) in m {
        out.push(EnumMapping {
            label: label.clone(),
            ranges: ranges_of(ctx, r)?,
        });
    }
    Ok(Some(Arc::new(out)))
}

/// A field location: RC 7.0 array `[scope, name…]` or 2.0 object `{origin, path}`.
fn location(ctx: &Ctx, v: &Value) -> R<FieldRef> {
    let scope_of = |s: &str| -> R<Scope> {
        Ok(match s {
            "packet-header" => Scope::PacketHeader,
            "packet-context" => Scope::PacketContext,
            "event-record-header" => Scope::EventHeader,
            "event-record-common-context" => Scope::StreamEventContext,
            "event-record-specific-context" => Scope::EventContext,
            "event-record-payload" => Scope::EventPayload,
            other => return Err(ctx.err(format!("unknown field location origin `{other}`"))),
        })
    };
    let names = |arr: &[Value]| -> R<Vec<String>> {
        // `null` (go up one level) is not used by known producers; Trace Compass only
        // looks at the last element, and so does our fallback lookup.
        Ok(arr
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect())
    };
    match v {
        Value::Array(a) => {
            let first = a
                .first()
                .and_then(Value::as_str)
                .ok_or_else(|| ctx.err("empty field location"))?;
            match scope_of(first) {
                Ok(s) => Ok(FieldRef {
                    scope: Some(s),
                    path: names(&a[1..])?,
                }),
                Err(_) => Ok(FieldRef {
                    scope: None,
                    path: names(a)?,
                }),
            }
        }
        Value::Object(o) => {
            let scope = o
                .get("origin")
                .and_then(Value::as_str)
                .map(scope_of)
                .transpose()?;
            let path = o
                .get("path")
                .and_then(Value::as_array)
                .ok_or_else(|| ctx.err("field location without a path"))?;
            Ok(FieldRef {
                scope,
                path: names(path)?,
            })
        }
        _ => Err(ctx.err("field location is neither an array nor an object")),
    }
}

fn u32_prop(ctx: &Ctx, o: &Map<String, Value>, key: &str) -> R<Option<u32>> {
    o.get(key)
        .map(|v| {
            v.as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(|| ctx.err(format!("`{key}` is not a small unsigned integer")))
        })
        .transpose()
}

fn alignment(ctx: &Ctx, o: &Map<String, Value>, key: &str) -> R<u32> {
    let a = u32_prop(ctx, o, key)?.unwrap_or(1);
    if a == 0 || !a.is_power_of_two() {
        return Err(ctx.err(format!("`{key}` {a} is not a power of two")));
    }
    Ok(a)
}

fn field_class(ctx: &Ctx, v: &Value, depth: u32) -> R<Type> {
    if depth > MAX_DEPTH {
        return Err(ctx.err("field classes nested too deeply"));
    }
    let o = match v {
        Value::String(name) => {
            return ctx
                .aliases
                .get(name)
                .cloned()
                .ok_or_else(|| ctx.err(format!("unknown field-class alias `{name}`")))
        }
        Value::Object(o) => o,
        _ => return Err(ctx.err("field class is neither an object nor an alias name")),
    };
    let ty = str_field(ctx, o, "type")?;
    let sub = |key: &str| -> R<Type> {
        let fc = o
            .get(key)
            .ok_or_else(|| ctx.err(format!("`{ty}` without `{key}`")))?;
        field_class(ctx, fc, depth + 1)
    };
    Ok(match ty.as_str() {
        "fixed-length-bit-array"
        | "fixed-length-bit-map"
        | "fixed-length-boolean"
        | "fixed-length-unsigned-integer"
        | "fixed-length-signed-integer"
        | "fixed-length-unsigned-enumeration"
        | "fixed-length-signed-enumeration" => {
            let size = u32_prop(ctx, o, "length")?
                .filter(|l| (1..=64).contains(l))
                .ok_or_else(|| ctx.err(format!("`{ty}` length must be 1 to 64 bits")))?;
            let order = byte_order(ctx, o)?;
            if let Some(bo) = o.get("bit-order").and_then(Value::as_str) {
                let natural = match order {
                    ByteOrder::Big => "last-to-first",
                    _ => "first-to-last",
                };
                if bo != natural {
                    return Err(ctx.err(format!(
                        "bit-order `{bo}` with this byte order is not supported"
                    )));
                }
            }
            let mut it = IntType::new(size);
            it.align = alignment(ctx, o, "alignment")?;
            it.order = order;
            it.signed = ty.contains("signed-") && !ty.contains("unsigned");
            it.base = u32_prop(ctx, o, "preferred-display-base")?.unwrap_or(10);
            it.roles = roles(ctx, o)?;
            it.mappings = mappings_of(ctx, o)?;
            Type::Int(it)
        }
        "fixed-length-floating-point-number" => {
            let size = u32_prop(ctx, o, "length")?.unwrap_or(0);
            if size != 32 && size != 64 {
                return Err(ctx.err(format!("floating point number of {size} bits")));
            }
            Type::Float {
                size,
                align: alignment(ctx, o, "alignment")?,
                order: byte_order(ctx, o)?,
            }
        }
        "variable-length-unsigned-integer"
        | "variable-length-signed-integer"
        | "variable-length-unsigned-enumeration"
        | "variable-length-signed-enumeration" => Type::VarInt {
            signed: ty.contains("signed-") && !ty.contains("unsigned"),
            roles: roles(ctx, o)?,
            mappings: mappings_of(ctx, o)?,
        },
        "null-terminated-string" | "static-length-string" | "dynamic-length-string" => {
            if let Some(enc) = o.get("encoding").and_then(Value::as_str) {
                if enc != "utf-8" {
                    return Err(ctx.err(format!("string encoding `{enc}` is not supported")));
                }
            }
            match ty.as_str() {
                "null-terminated-string" => Type::String,
                "static-length-string" => Type::SizedString {
                    len: Length::Fixed(
                        o.get("length")
                            .and_then(Value::as_u64)
                            .ok_or_else(|| ctx.err("static-length-string without length"))?,
                    ),
                },
                _ => Type::SizedString {
                    len: Length::Field(location(
                        ctx,
                        o.get("length-field-location")
                            .ok_or_else(|| ctx.err("dynamic-length-string without location"))?,
                    )?),
                },
            }
        }
        "static-length-blob" => Type::Blob {
            len: Length::Fixed(
                o.get("length")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| ctx.err("static-length-blob without length"))?,
            ),
            roles: roles(ctx, o)?,
        },
        "dynamic-length-blob" => Type::Blob {
            len: Length::Field(location(
                ctx,
                o.get("length-field-location")
                    .ok_or_else(|| ctx.err("dynamic-length-blob without location"))?,
            )?),
            roles: roles(ctx, o)?,
        },
        "structure" => {
            let mut st = StructType {
                fields: Vec::new(),
                min_align: alignment(ctx, o, "minimum-alignment")?,
            };
            if let Some(m) = o.get("member-classes") {
                let arr = m
                    .as_array()
                    .ok_or_else(|| ctx.err("member-classes is not an array"))?;
                for mc in arr {
                    let mo = mc
                        .as_object()
                        .ok_or_else(|| ctx.err("member class is not an object"))?;
                    let name = str_field(ctx, mo, "name")?;
                    let fc = mo
                        .get("field-class")
                        .ok_or_else(|| ctx.err(format!("member `{name}` without field-class")))?;
                    st.fields.push((name, field_class(ctx, fc, depth + 1)?));
                }
            }
            Type::Struct(st)
        }
        "static-length-array" | "dynamic-length-array" => {
            let len = if ty == "static-length-array" {
                Length::Fixed(
                    o.get("length")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| ctx.err("static-length-array without length"))?,
                )
            } else {
                Length::Field(location(
                    ctx,
                    o.get("length-field-location")
                        .ok_or_else(|| ctx.err("dynamic-length-array without location"))?,
                )?)
            };
            Type::Array {
                elem: Box::new(sub("element-field-class")?),
                len,
                min_align: alignment(ctx, o, "minimum-alignment")?,
            }
        }
        "optional" => Type::Optional {
            selector: location(
                ctx,
                o.get("selector-field-location")
                    .ok_or_else(|| ctx.err("optional without selector-field-location"))?,
            )?,
            ranges: o
                .get("selector-field-ranges")
                .map(|r| ranges_of(ctx, r))
                .transpose()?,
            inner: Box::new(sub("field-class")?),
        },
        "variant" => {
            let selector = location(
                ctx,
                o.get("selector-field-location")
                    .ok_or_else(|| ctx.err("variant without selector-field-location"))?,
            )?;
            let opts = o
                .get("options")
                .and_then(Value::as_array)
                .ok_or_else(|| ctx.err("variant without options"))?;
            let mut options = Vec::new();
            for (i, op) in opts.iter().enumerate() {
                let oo = op
                    .as_object()
                    .ok_or_else(|| ctx.err("variant option is not an object"))?;
                let name = oo
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("option{i}"));
                let fc = oo.get("field-class").ok_or_else(|| {
                    ctx.err(format!("variant option `{name}` without field-class"))
                })?;
                let ranges = ranges_of(
                    ctx,
                    oo.get("selector-field-ranges").ok_or_else(|| {
                        ctx.err(format!("variant option `{name}` without ranges"))
                    })?,
                )?;
                options.push(VariantOption {
                    name,
                    ty: field_class(ctx, fc, depth + 1)?,
                    ranges: Some(ranges),
                });
            }
            Type::Variant(VariantType {
                tag: Some(selector),
                options,
            })
        }
        other => return Err(ctx.err(format!("unknown field class type `{other}`"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(frags: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frags {
            out.push(0x1E);
            out.extend_from_slice(f.as_bytes());
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn final_spec_locations_and_mappings() {
        let m = parse(
            Path::new("m"),
            &doc(&[
                r#"{"type":"preamble","version":2}"#,
                r#"{"type":"clock-class","id":"c","frequency":1000,"offset-from-origin":{"seconds":3,"cycles":7}}"#,
                r#"{"type":"data-stream-class","default-clock-class-id":"c","event-record-header-field-class":{"type":"structure","member-classes":[{"name":"id","field-class":{"type":"fixed-length-unsigned-integer","length":8,"byte-order":"little-endian","mappings":{"a":[[0,3]]},"roles":["event-record-class-id"]}},{"name":"v","field-class":{"type":"variant","selector-field-location":{"origin":"event-record-header","path":["id"]},"options":[{"name":"a","selector-field-ranges":[[0,3]],"field-class":{"type":"variable-length-unsigned-integer","roles":["default-clock-timestamp"]}}]}}]}}"#,
                r#"{"type":"event-record-class","id":1,"name":"e"}"#,
            ]),
        )
        .unwrap();
        assert_eq!(m.clocks[0].freq, 1000);
        assert_eq!(m.clocks[0].offset_s, 3);
        assert_eq!(m.streams[0].clock.as_deref(), Some("c"));
        let Some(Type::Struct(h)) = &m.streams[0].event_header else {
            panic!()
        };
        let Type::Variant(v) = &h.fields[1].1 else {
            panic!()
        };
        assert_eq!(v.tag.as_ref().unwrap().scope, Some(Scope::EventHeader));
    }

    #[test]
    fn bad_json_names_the_fragment() {
        let e = parse(
            Path::new("m"),
            &doc(&[r#"{"type":"preamble","version":2}"#, r#"{"type": "#]),
        )
        .unwrap_err();
        assert!(
            matches!(e, TraceError::Ctf2Metadata { fragment: 1, .. }),
            "{e}"
        );
    }

    #[test]
    fn required_extension_is_refused() {
        let e = parse(
            Path::new("m"),
            &doc(&[r#"{"type":"preamble","version":2,"extensions":{"x.org":{}}}"#]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("extension"), "{e}");
    }
}
