//! The metadata model shared by the TSDL (CTF 1.8) and JSON (CTF 2) parsers:
//! field classes, clock classes, stream and event classes.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Byte order of a fixed-length field. `Native` is resolved against the trace's byte
/// order when layouts are compiled (LTTng declares its aliases before `trace {}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Native,
    Little,
    Big,
}

/// What a field means to the reader (CTF 2 roles; CTF 1.8 well-known names map to them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    PacketMagic,
    StreamClassId,
    StreamInstanceId,
    PacketTotalLength,
    PacketContentLength,
    DefaultClockTimestamp,
    PacketEndTimestamp,
    DiscardedCounter,
    PacketSequenceNumber,
    EventClassId,
    /// Blob holding the trace UUID (packet header).
    MetadataStreamUuid,
}

/// One label of an enumeration: the value ranges it covers (inclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct EnumMapping {
    pub label: String,
    pub ranges: Vec<(i128, i128)>,
}

/// A fixed-length integer (or the container of an enumeration).
#[derive(Debug, Clone, PartialEq)]
pub struct IntType {
    pub size: u32,
    pub align: u32,
    pub signed: bool,
    pub order: ByteOrder,
    pub base: u32,
    /// Text encoding (`UTF8`/`ASCII`): arrays/sequences of 8-bit such ints are strings.
    pub text: bool,
    /// Name of the clock this integer is mapped to (`map = clock.NAME.value`).
    pub clock: Option<String>,
    pub roles: Vec<Role>,
    /// Enumeration labels, when this is an enumeration.
    pub mappings: Option<Arc<Vec<EnumMapping>>>,
}

impl IntType {
    pub fn new(size: u32) -> Self {
        IntType {
            size,
            align: if size.is_multiple_of(8) { 8 } else { 1 },
            signed: false,
            order: ByteOrder::Native,
            base: 10,
            text: false,
            clock: None,
            roles: Vec::new(),
            mappings: None,
        }
    }
}

/// A field class.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Int(IntType),
    /// LEB128 variable-length integer (CTF 2).
    VarInt {
        signed: bool,
        roles: Vec<Role>,
        mappings: Option<Arc<Vec<EnumMapping>>>,
    },
    Float {
        size: u32,
        align: u32,
        order: ByteOrder,
    },
    /// Null-terminated string.
    String,
    /// CTF 2 static/dynamic-length string (bytes, up to the first NUL).
    SizedString {
        len: Length,
    },
    /// CTF 2 blob (bytes); `uuid` blobs carry the metadata-stream-uuid role.
    Blob {
        len: Length,
        roles: Vec<Role>,
    },
    Struct(StructType),
    Variant(VariantType),
    Array {
        elem: Box<Type>,
        len: Length,
        min_align: u32,
    },
    /// CTF 2 optional: present when the selector is true / within ranges.
    Optional {
        selector: FieldRef,
        ranges: Option<Vec<(i128, i128)>>,
        inner: Box<Type>,
    },
}

/// Length of an array, sequence, blob or sized string.
#[derive(Debug, Clone, PartialEq)]
pub enum Length {
    Fixed(u64),
    /// Length taken from a previously decoded unsigned integer.
    Field(FieldRef),
}

/// A reference to a previously decoded field: a scope (None = relative lookup)
/// and a path of member names.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    pub scope: Option<Scope>,
    pub path: Vec<String>,
}

/// The dynamic scopes of a CTF trace, in decoding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    PacketHeader,
    PacketContext,
    EventHeader,
    StreamEventContext,
    EventContext,
    EventPayload,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StructType {
    pub fields: Vec<(String, Type)>,
    pub min_align: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariantType {
    /// `None` while an untagged variant declaration waits for its use site.
    pub tag: Option<FieldRef>,
    pub options: Vec<VariantOption>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariantOption {
    pub name: String,
    pub ty: Type,
    /// CTF 2: the selector values choosing this option. CTF 1.8: None (chosen by the
    /// tag enumeration's label equal to the option name).
    pub ranges: Option<Vec<(i128, i128)>>,
}

impl Type {
    /// Alignment in bits before the field is decoded (variants: 1, their option aligns itself).
    pub fn align(&self) -> u32 {
        match self {
            Type::Int(i) => i.align.max(1),
            Type::VarInt { .. } | Type::String | Type::SizedString { .. } | Type::Blob { .. } => 8,
            Type::Float { align, .. } => (*align).max(1),
            Type::Struct(s) => s
                .fields
                .iter()
                .map(|(_, t)| t.align())
                .fold(s.min_align.max(1), u32::max),
            Type::Variant(_) | Type::Optional { .. } => 1,
            Type::Array {
                elem, min_align, ..
            } => elem.align().max(*min_align).max(1),
        }
    }
}

/// A clock class.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockClass {
    pub name: String,
    pub freq: u64,
    pub offset_s: i64,
    pub offset: i64,
    pub uuid: Option<[u8; 16]>,
}

impl Default for ClockClass {
    fn default() -> Self {
        ClockClass {
            name: String::new(),
            freq: 1_000_000_000,
            offset_s: 0,
            offset: 0,
            uuid: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamClass {
    pub id: u64,
    pub packet_context: Option<Type>,
    pub event_header: Option<Type>,
    pub event_context: Option<Type>,
    /// Clock named by the stream class (CTF 2), else found from clock-mapped fields.
    pub clock: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventClass {
    pub id: u64,
    pub stream_id: u64,
    pub name: String,
    pub context: Option<Type>,
    pub fields: Option<Type>,
}

/// A trace's metadata, CTF 1.8 or CTF 2.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub byte_order: ByteOrder,
    pub uuid: Option<[u8; 16]>,
    pub packet_header: Option<Type>,
    pub env: BTreeMap<String, String>,
    pub clocks: Vec<ClockClass>,
    pub streams: Vec<StreamClass>,
    pub events: Vec<EventClass>,
    /// CTF 2 metadata: field names are used as written (no underscore stripping).
    pub ctf2: bool,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            byte_order: ByteOrder::Little,
            uuid: None,
            packet_header: None,
            env: BTreeMap::new(),
            clocks: Vec::new(),
            streams: Vec::new(),
            events: Vec::new(),
            ctf2: false,
        }
    }
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` into 16 bytes.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}
