//! Field layouts compiled once per scope and class into flat op lists, and the
//! machine that runs them over packet bytes.
//!
//! Every scalar field gets a *slot*; running a program stores each decoded value in
//! its slot (ints as raw 64-bit values, strings and arrays as positions into the
//! mapped file), so a consumer reads a field by slot index without any lookup or
//! allocation. Sequence lengths and variant tags are resolved to slots at compile time.

use super::types::*;
use std::sync::Arc;

/// Special meaning of an integer, for the reader (index into [`Machine::regs`]).
pub mod reg {
    pub const NONE: u8 = 0;
    pub const EVENT_ID: u8 = 1;
    pub const MAGIC: u8 = 2;
    pub const STREAM_ID: u8 = 3;
    pub const STREAM_INSTANCE: u8 = 4;
    pub const PACKET_SIZE: u8 = 5;
    pub const CONTENT_SIZE: u8 = 6;
    pub const TS_BEGIN: u8 = 7;
    pub const TS_END: u8 = 8;
    pub const DISCARDED: u8 = 9;
    pub const SEQ_NUM: u8 = 10;
    pub const CPU_ID: u8 = 11;
    pub const COUNT: usize = 12;
}

/// Where a length or a selector comes from.
#[derive(Debug, Clone, Copy)]
pub enum LenSrc {
    Fixed(u64),
    Slot(u32),
}

#[derive(Debug, Clone)]
pub enum Op {
    Align(u32),
    Int {
        slot: u32,
        size: u8,
        signed: bool,
        be: bool,
        reg: u8,
        /// Width for the default-clock update (0: not clock-mapped).
        clock: u8,
    },
    /// Little-endian 8/16/32/64-bit integer known (at compile time) to start on a
    /// byte, that the reader does not act on: one load and two shifts.
    IntLe {
        slot: u32,
        /// 64 - size.
        shift: u8,
        signed: bool,
    },
    VarInt {
        slot: u32,
        signed: bool,
        reg: u8,
    },
    Float {
        slot: u32,
        size: u8,
        be: bool,
    },
    /// Null-terminated string: slot = (byte offset, length without the NUL).
    Str {
        slot: u32,
    },
    /// Bytes (text arrays/sequences of 8-bit ints, blobs, sized strings): slot = (byte offset, count).
    Bytes {
        slot: u32,
        len: LenSrc,
        /// Check against the trace UUID (packet header `uuid`).
        uuid: bool,
    },
    /// Array of fixed-size scalars: slot = (bit offset, count); elements are not decoded.
    ScalarArray {
        slot: u32,
        len: LenSrc,
        stride: u32,
    },
    /// Array of anything else: slot = (bit offset, count); the body runs per element.
    Array {
        slot: u32,
        len: LenSrc,
        body: (u32, u32),
        next: u32,
    },
    Variant {
        tag: u32,
        tag_signed: bool,
        /// (lo, hi, option index), searched in order.
        choices: Vec<(i128, i128, u32)>,
        bodies: Vec<(u32, u32)>,
        next: u32,
    },
    Optional {
        sel: u32,
        sel_signed: bool,
        ranges: Option<Vec<(i128, i128)>>,
        body: (u32, u32),
        next: u32,
    },
}

/// A compiled scope: `ops[0..top]` at top level, bodies after.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub ops: Vec<Op>,
    pub top: u32,
    /// Fixed layout: every field at a known bit offset from the (byte-aligned) scope
    /// start and nothing the reader must act on. Such scopes are not decoded when
    /// read; their fields are decoded on access (see [`StaticField`]).
    pub fixed: Option<FixedLayout>,
}

/// A scope whose fields all sit at fixed offsets.
#[derive(Debug, Clone, Default)]
pub struct FixedLayout {
    pub bits: u64,
    /// (slot, how to read it relative to the scope start).
    pub fields: Vec<(u32, StaticField)>,
}

/// How to decode one field of a fixed layout from the scope start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticField {
    Int {
        off: u32,
        size: u8,
        signed: bool,
        be: bool,
    },
    Float {
        off: u32,
        size: u8,
        be: bool,
    },
    Bytes {
        off: u32,
        len: u32,
    },
    Array {
        off: u32,
        len: u32,
    },
}

impl StaticField {
    /// The slot the interpreter would have filled, computed from the scope start (bits).
    #[inline]
    pub fn read(&self, data: &[u8], start: u64, gen: u32) -> Slot {
        match *self {
            StaticField::Int {
                off,
                size,
                signed,
                be,
            } => {
                let raw = read_bits(data, start + off as u64, size as u32, be);
                let v = if signed && size < 64 {
                    let sh = 64 - size as u32;
                    (((raw << sh) as i64) >> sh) as u64
                } else {
                    raw
                };
                Slot { v, len: 0, gen }
            }
            StaticField::Float { off, size, be } => Slot {
                v: read_bits(data, start + off as u64, size as u32, be),
                len: 0,
                gen,
            },
            StaticField::Bytes { off, len } => Slot {
                v: (start + off as u64) / 8,
                len,
                gen,
            },
            StaticField::Array { off, len } => Slot {
                v: start + off as u64,
                len,
                gen,
            },
        }
    }
}

/// The fixed layout of a program, if it has one: it starts by aligning to a byte,
/// has no data-dependent parts, no alignment above 8 bits, and no field the reader
/// itself needs (ids, clocks, packet sizes, UUID checks).
fn fixed_layout(ops: &[Op]) -> Option<FixedLayout> {
    if ops.is_empty() {
        return Some(FixedLayout::default());
    }
    if !matches!(ops.first(), Some(Op::Align(8))) {
        return None;
    }
    let mut off: u64 = 0;
    let mut fields = Vec::new();
    for op in ops {
        let o = u32::try_from(off).ok()?;
        match *op {
            Op::Align(a) => {
                if a > 8 {
                    return None;
                }
                off = off.div_ceil(a as u64) * a as u64;
            }
            Op::Int {
                slot,
                size,
                signed,
                be,
                reg: r,
                clock,
            } => {
                if r != reg::NONE || clock != 0 {
                    return None;
                }
                fields.push((
                    slot,
                    StaticField::Int {
                        off: o,
                        size,
                        signed,
                        be,
                    },
                ));
                off += size as u64;
            }
            Op::IntLe {
                slot,
                shift,
                signed,
            } => {
                let size = 64 - shift;
                fields.push((
                    slot,
                    StaticField::Int {
                        off: o,
                        size,
                        signed,
                        be: false,
                    },
                ));
                off += size as u64;
            }
            Op::Float { slot, size, be } => {
                fields.push((slot, StaticField::Float { off: o, size, be }));
                off += size as u64;
            }
            Op::Bytes {
                slot,
                len: LenSrc::Fixed(n),
                uuid: false,
            } => {
                fields.push((
                    slot,
                    StaticField::Bytes {
                        off: o,
                        len: u32::try_from(n).ok()?,
                    },
                ));
                off += n.checked_mul(8)?;
            }
            Op::ScalarArray {
                slot,
                len: LenSrc::Fixed(n),
                stride,
            } => {
                fields.push((
                    slot,
                    StaticField::Array {
                        off: o,
                        len: u32::try_from(n).ok()?,
                    },
                ));
                off += n.checked_mul(stride as u64)?;
            }
            _ => return None,
        }
    }
    u32::try_from(off).ok()?;
    Some(FixedLayout { bits: off, fields })
}

impl Program {
    pub fn is_empty(&self) -> bool {
        self.top == 0
    }
}

/// What a slot holds, for typed access.
#[derive(Debug, Clone)]
pub enum SlotKind {
    Int {
        signed: bool,
        base: u32,
        mappings: Option<Arc<Vec<EnumMapping>>>,
    },
    Float,
    Str,
    /// Bytes shown as text up to the first NUL.
    Text,
    Blob,
    /// Array of fixed-size scalars (ints or floats).
    ScalarArray {
        elem: ScalarElem,
        stride: u32,
    },
    /// Array of compound elements (not decoded element by element here).
    Array,
}

#[derive(Debug, Clone, Copy)]
pub struct ScalarElem {
    pub size: u8,
    pub signed: bool,
    pub be: bool,
    pub float: bool,
}

/// Description of a slot.
#[derive(Debug, Clone)]
pub struct SlotInfo {
    pub scope: Scope,
    /// Member names from the scope root, as written in the metadata.
    pub path: Arc<[String]>,
    pub kind: SlotKind,
    /// True when inside an array element (not addressable by name).
    pub in_array: bool,
}

/// Name tree of a compiled scope, to resolve references and to print events.
#[derive(Debug, Clone)]
pub enum Node {
    Leaf(u32),
    Struct(Vec<(String, Node)>),
    Variant(Vec<(String, Node)>),
    /// Compound array: slot of the array (position/count) and the element's tree.
    Array(u32, Box<Node>),
    Optional(Box<Node>),
}

/// Error while compiling a layout.
#[derive(Debug)]
pub struct CompileError(pub String);

/// Compiles scopes of one stream class / event class into programs over a shared slot space.
pub struct Compiler<'a> {
    pub slots: Vec<SlotInfo>,
    /// Compiled scopes so far (for references), most recent last.
    pub scopes: Vec<(Scope, Arc<Node>)>,
    trace_order: ByteOrder,
    /// CTF 1.8: well-known field names act as roles.
    by_name: bool,
    clocks: &'a [ClockClass],
    /// Clock found mapped in this stream class (first one).
    pub clock: Option<String>,
}

struct Ctx {
    scope: Scope,
    path: Vec<String>,
    in_array: bool,
    /// Members of the enclosing structures (innermost last), for relative references.
    frames: Vec<Vec<(String, Node)>>,
}

impl<'a> Compiler<'a> {
    pub fn new(trace_order: ByteOrder, ctf2: bool, clocks: &'a [ClockClass]) -> Self {
        Compiler {
            slots: Vec::new(),
            scopes: Vec::new(),
            trace_order,
            by_name: !ctf2,
            clocks,
            clock: None,
        }
    }

    /// Continues numbering after the slots of a parent compiler (stream -> event class).
    pub fn child(&self) -> Compiler<'a> {
        Compiler {
            slots: self.slots.clone(),
            scopes: self.scopes.clone(),
            trace_order: self.trace_order,
            by_name: self.by_name,
            clocks: self.clocks,
            clock: self.clock.clone(),
        }
    }

    pub fn compile(&mut self, scope: Scope, ty: Option<&Type>) -> Result<Program, CompileError> {
        let mut prog = Program::default();
        let Some(ty) = ty else {
            self.scopes
                .push((scope, Arc::new(Node::Struct(Vec::new()))));
            prog.fixed = Some(FixedLayout::default());
            return Ok(prog);
        };
        let mut ctx = Ctx {
            scope,
            path: Vec::new(),
            in_array: false,
            frames: Vec::new(),
        };
        let mut ops = Vec::new();
        let node = self.emit(&mut ops, ty, &mut ctx)?;
        simplify(&mut ops);
        prog.top = ops.len() as u32;
        prog.fixed = fixed_layout(&ops);
        prog.ops = ops;
        self.scopes.push((scope, Arc::new(node)));
        Ok(prog)
    }

    fn order(&self, o: ByteOrder) -> bool {
        match o {
            ByteOrder::Native => self.trace_order == ByteOrder::Big,
            ByteOrder::Big => true,
            ByteOrder::Little => false,
        }
    }

    fn new_slot(&mut self, ctx: &Ctx, kind: SlotKind) -> u32 {
        self.slots.push(SlotInfo {
            scope: ctx.scope,
            path: ctx.path.as_slice().into(),
            kind,
            in_array: ctx.in_array,
        });
        (self.slots.len() - 1) as u32
    }

    fn int_reg(&self, ctx: &Ctx, it: &IntType) -> (u8, u8) {
        let name = ctx.path.last().map(String::as_str).unwrap_or("");
        let mut reg = reg::NONE;
        let mut clock_mapped = it.clock.is_some();
        for r in &it.roles {
            reg = match r {
                Role::PacketMagic => reg::MAGIC,
                Role::StreamClassId => reg::STREAM_ID,
                Role::StreamInstanceId => reg::STREAM_INSTANCE,
                Role::PacketTotalLength => reg::PACKET_SIZE,
                Role::PacketContentLength => reg::CONTENT_SIZE,
                Role::DefaultClockTimestamp => {
                    clock_mapped = true;
                    if ctx.scope == Scope::PacketContext {
                        reg::TS_BEGIN
                    } else {
                        reg
                    }
                }
                Role::PacketEndTimestamp => {
                    clock_mapped = false;
                    reg::TS_END
                }
                Role::DiscardedCounter => reg::DISCARDED,
                Role::PacketSequenceNumber => reg::SEQ_NUM,
                Role::EventClassId => reg::EVENT_ID,
                Role::MetadataStreamUuid => reg,
            };
        }
        if self.by_name || reg == reg::NONE {
            let top = ctx.path.len() == 1;
            let named = match (ctx.scope, name) {
                (Scope::PacketHeader, "magic") if top => reg::MAGIC,
                (Scope::PacketHeader, "stream_id") if top => reg::STREAM_ID,
                (Scope::PacketHeader, "stream_instance_id") if top => reg::STREAM_INSTANCE,
                (Scope::PacketContext, "packet_size") if top && self.by_name => reg::PACKET_SIZE,
                (Scope::PacketContext, "content_size") if top && self.by_name => reg::CONTENT_SIZE,
                (Scope::PacketContext, "timestamp_begin") if top && self.by_name => reg::TS_BEGIN,
                (Scope::PacketContext, "timestamp_end") if top && self.by_name => {
                    clock_mapped = false;
                    reg::TS_END
                }
                (Scope::PacketContext, "events_discarded") if top && self.by_name => reg::DISCARDED,
                (Scope::PacketContext, "packet_seq_num") if top && self.by_name => reg::SEQ_NUM,
                (Scope::PacketContext, "cpu_id") => reg::CPU_ID,
                (Scope::EventHeader, "id") if self.by_name => reg::EVENT_ID,
                _ => reg::NONE,
            };
            if named != reg::NONE {
                reg = named;
            }
        }
        if ctx.scope == Scope::PacketContext && reg != reg::TS_BEGIN {
            clock_mapped = false;
        }
        if ctx.scope == Scope::PacketHeader {
            clock_mapped = false;
        }
        let clock = if clock_mapped { it.size as u8 } else { 0 };
        (reg, clock)
    }

    fn note_clock(&mut self, it: &IntType) {
        if self.clock.is_none() {
            if let Some(c) = &it.clock {
                if self.clocks.iter().any(|k| &k.name == c) {
                    self.clock = Some(c.clone());
                }
            }
        }
    }

    fn emit(&mut self, ops: &mut Vec<Op>, ty: &Type, ctx: &mut Ctx) -> Result<Node, CompileError> {
        let align = ty.align();
        match ty {
            Type::Int(it) => {
                if align > 1 {
                    ops.push(Op::Align(align));
                }
                self.note_clock(it);
                let (reg, clock) = self.int_reg(ctx, it);
                let slot = self.new_slot(
                    ctx,
                    SlotKind::Int {
                        signed: it.signed,
                        base: it.base,
                        mappings: it.mappings.clone(),
                    },
                );
                ops.push(Op::Int {
                    slot,
                    size: it.size as u8,
                    signed: it.signed,
                    be: self.order(it.order),
                    reg,
                    clock,
                });
                Ok(Node::Leaf(slot))
            }
            Type::VarInt {
                signed,
                roles,
                mappings,
            } => {
                ops.push(Op::Align(8));
                let fake = IntType {
                    roles: roles.clone(),
                    ..IntType::new(64)
                };
                let (reg, _) = self.int_reg(ctx, &fake);
                let slot = self.new_slot(
                    ctx,
                    SlotKind::Int {
                        signed: *signed,
                        base: 10,
                        mappings: mappings.clone(),
                    },
                );
                ops.push(Op::VarInt {
                    slot,
                    signed: *signed,
                    reg,
                });
                Ok(Node::Leaf(slot))
            }
            Type::Float { size, order, .. } => {
                if align > 1 {
                    ops.push(Op::Align(align));
                }
                let slot = self.new_slot(ctx, SlotKind::Float);
                ops.push(Op::Float {
                    slot,
                    size: *size as u8,
                    be: self.order(*order),
                });
                Ok(Node::Leaf(slot))
            }
            Type::String => {
                ops.push(Op::Align(8));
                let slot = self.new_slot(ctx, SlotKind::Str);
                ops.push(Op::Str { slot });
                Ok(Node::Leaf(slot))
            }
            Type::SizedString { len } => {
                ops.push(Op::Align(8));
                let len = self.len_src(len, ctx)?;
                let slot = self.new_slot(ctx, SlotKind::Text);
                ops.push(Op::Bytes {
                    slot,
                    len,
                    uuid: false,
                });
                Ok(Node::Leaf(slot))
            }
            Type::Blob { len, roles } => {
                ops.push(Op::Align(8));
                let len = self.len_src(len, ctx)?;
                let slot = self.new_slot(ctx, SlotKind::Blob);
                let uuid = ctx.scope == Scope::PacketHeader
                    && (roles.contains(&Role::MetadataStreamUuid)
                        || ctx.path.last().is_some_and(|n| n == "uuid"));
                ops.push(Op::Bytes { slot, len, uuid });
                Ok(Node::Leaf(slot))
            }
            Type::Struct(st) => {
                if align > 1 {
                    ops.push(Op::Align(align));
                }
                ctx.frames.push(Vec::new());
                for (name, fty) in &st.fields {
                    ctx.path.push(name.clone());
                    let node = self.emit(ops, fty, ctx);
                    ctx.path.pop();
                    let node = node?;
                    ctx.frames
                        .last_mut()
                        .expect("frame")
                        .push((name.clone(), node));
                }
                let members = ctx.frames.pop().expect("frame");
                Ok(Node::Struct(members))
            }
            Type::Variant(v) => {
                let Some(tag_ref) = &v.tag else {
                    return Err(CompileError(format!(
                        "variant `{}` has no tag",
                        ctx.path.join(".")
                    )));
                };
                let (tag, tag_kind) = self.resolve(tag_ref, ctx)?;
                let (tag_signed, mappings) = match &self.slots[tag as usize].kind {
                    SlotKind::Int {
                        signed, mappings, ..
                    } => (*signed, mappings.clone()),
                    _ => {
                        return Err(CompileError(format!(
                            "variant tag `{}` is not an integer",
                            tag_kind
                        )))
                    }
                };
                let mut choices = Vec::new();
                for (i, opt) in v.options.iter().enumerate() {
                    if let Some(r) = &opt.ranges {
                        for &(lo, hi) in r {
                            choices.push((lo, hi, i as u32));
                        }
                    } else if let Some(m) = &mappings {
                        for map in m.iter().filter(|m| m.label == opt.name) {
                            for &(lo, hi) in &map.ranges {
                                choices.push((lo, hi, i as u32));
                            }
                        }
                    }
                }
                if choices.is_empty() && !v.options.is_empty() {
                    return Err(CompileError(format!(
                        "variant `{}`: tag `{}` has no enumeration label naming an option",
                        ctx.path.join("."),
                        tag_kind
                    )));
                }
                let at = ops.len();
                ops.push(Op::Align(1)); // placeholder
                let mut bodies = Vec::new();
                let mut options = Vec::new();
                for opt in &v.options {
                    let start = ops.len() as u32;
                    ctx.path.push(opt.name.clone());
                    let node = self.emit(ops, &opt.ty, ctx);
                    ctx.path.pop();
                    options.push((opt.name.clone(), node?));
                    bodies.push((start, ops.len() as u32));
                }
                ops[at] = Op::Variant {
                    tag,
                    tag_signed,
                    choices,
                    bodies,
                    next: ops.len() as u32,
                };
                Ok(Node::Variant(options))
            }
            Type::Optional {
                selector,
                ranges,
                inner,
            } => {
                let (sel, _) = self.resolve(selector, ctx)?;
                let sel_signed = matches!(
                    self.slots[sel as usize].kind,
                    SlotKind::Int { signed: true, .. }
                );
                let at = ops.len();
                ops.push(Op::Align(1));
                let start = ops.len() as u32;
                let node = self.emit(ops, inner, ctx)?;
                ops[at] = Op::Optional {
                    sel,
                    sel_signed,
                    ranges: ranges.clone(),
                    body: (start, ops.len() as u32),
                    next: ops.len() as u32,
                };
                Ok(Node::Optional(Box::new(node)))
            }
            Type::Array { elem, len, .. } => {
                let len = self.len_src(len, ctx)?;
                if align > 1 {
                    ops.push(Op::Align(align));
                }
                // Text: 8-bit integers with an encoding, byte-aligned.
                if let Type::Int(it) = &**elem {
                    if it.size == 8 && it.align % 8 == 0 && (it.text || it.mappings.is_none()) {
                        let is_uuid = ctx.scope == Scope::PacketHeader
                            && ctx.path.len() == 1
                            && (ctx.path[0] == "uuid");
                        if it.text || is_uuid {
                            let slot = self.new_slot(
                                ctx,
                                if it.text {
                                    SlotKind::Text
                                } else {
                                    SlotKind::Blob
                                },
                            );
                            ops.push(Op::Bytes {
                                slot,
                                len,
                                uuid: is_uuid,
                            });
                            return Ok(Node::Leaf(slot));
                        }
                    }
                }
                let scalar = match &**elem {
                    Type::Int(it) if it.clock.is_none() && it.roles.is_empty() => {
                        Some(ScalarElem {
                            size: it.size as u8,
                            signed: it.signed,
                            be: self.order(it.order),
                            float: false,
                        })
                    }
                    Type::Float { size, order, .. } => Some(ScalarElem {
                        size: *size as u8,
                        signed: false,
                        be: self.order(*order),
                        float: true,
                    }),
                    _ => None,
                };
                if let Some(se) = scalar {
                    let ea = elem.align();
                    let stride = (se.size as u32).div_ceil(ea) * ea;
                    let slot = self.new_slot(ctx, SlotKind::ScalarArray { elem: se, stride });
                    ops.push(Op::ScalarArray { slot, len, stride });
                    return Ok(Node::Leaf(slot));
                }
                let slot = self.new_slot(ctx, SlotKind::Array);
                let at = ops.len();
                ops.push(Op::Align(1));
                let start = ops.len() as u32;
                let was = ctx.in_array;
                ctx.in_array = true;
                ctx.path.push("[]".into());
                let node = self.emit(ops, elem, ctx);
                ctx.path.pop();
                ctx.in_array = was;
                let node = node?;
                ops[at] = Op::Array {
                    slot,
                    len,
                    body: (start, ops.len() as u32),
                    next: ops.len() as u32,
                };
                Ok(Node::Array(slot, Box::new(node)))
            }
        }
    }

    fn len_src(&self, len: &Length, ctx: &Ctx) -> Result<LenSrc, CompileError> {
        match len {
            Length::Fixed(n) => Ok(LenSrc::Fixed(*n)),
            Length::Field(r) => {
                let (slot, name) = self.resolve(r, ctx)?;
                match self.slots[slot as usize].kind {
                    SlotKind::Int { .. } => Ok(LenSrc::Slot(slot)),
                    _ => Err(CompileError(format!(
                        "length field `{name}` is not an integer"
                    ))),
                }
            }
        }
    }

    /// Finds the slot of a previously compiled field.
    fn resolve(&self, r: &FieldRef, ctx: &Ctx) -> Result<(u32, String), CompileError> {
        let name = r.path.join(".");
        let not_found = || CompileError(format!("field reference `{name}` not found"));
        if r.path.is_empty() {
            return Err(not_found());
        }
        let found = match r.scope {
            Some(s) if s == ctx.scope => {
                ctx.frames.first().and_then(|f| descend_members(f, &r.path))
            }
            Some(s) => self
                .scopes
                .iter()
                .rev()
                .find(|(sc, _)| *sc == s)
                .and_then(|(_, n)| descend(n, &r.path)),
            None => {
                // Innermost structure outward, then earlier scopes, most recent first.
                ctx.frames
                    .iter()
                    .rev()
                    .find_map(|f| descend_members(f, &r.path))
                    .or_else(|| {
                        self.scopes
                            .iter()
                            .rev()
                            .find_map(|(_, n)| descend(n, &r.path))
                    })
            }
        };
        // CTF 2 (RC 7.0 paths, or final-spec locations Trace Compass reads by last
        // element): fall back to the last path element looked up relatively.
        let found = found.or_else(|| {
            if self.by_name || r.path.len() < 2 {
                return None;
            }
            let last = std::slice::from_ref(r.path.last().expect("non-empty"));
            ctx.frames
                .iter()
                .rev()
                .find_map(|f| descend_members(f, last))
                .or_else(|| self.scopes.iter().rev().find_map(|(_, n)| descend(n, last)))
        });
        found.map(|s| (s, name.clone())).ok_or_else(not_found)
    }
}

/// Largest power of two dividing `bits` (0: any alignment survives).
fn low_bit(bits: u64) -> u32 {
    if bits == 0 {
        u32::MAX
    } else {
        1u32.checked_shl(bits.trailing_zeros()).unwrap_or(u32::MAX)
    }
}

/// Removes alignments the position is known to satisfy already (every byte-multiple
/// field after a byte alignment emits one) and turns byte-aligned little-endian
/// integers into `IntLe`, then renumbers the compound ops' jumps.
fn simplify(ops: &mut Vec<Op>) {
    let mut keep = vec![true; ops.len()];
    let n_ops = ops.len();
    walk_align(ops, &mut keep, 0, n_ops, 1);
    if keep.iter().all(|k| *k) {
        return;
    }
    // new_at[i]: index of old op i (or of the next kept op) after removal.
    let mut new_at = Vec::with_capacity(ops.len() + 1);
    let mut n = 0u32;
    for k in &keep {
        new_at.push(n);
        n += u32::from(*k);
    }
    new_at.push(n);
    let map = |i: u32| new_at[i as usize];
    let old = std::mem::take(ops);
    for (op, k) in old.into_iter().zip(keep) {
        if !k {
            continue;
        }
        ops.push(match op {
            Op::Array {
                slot,
                len,
                body,
                next,
            } => Op::Array {
                slot,
                len,
                body: (map(body.0), map(body.1)),
                next: map(next),
            },
            Op::Variant {
                tag,
                tag_signed,
                choices,
                bodies,
                next,
            } => Op::Variant {
                tag,
                tag_signed,
                choices,
                bodies: bodies.iter().map(|b| (map(b.0), map(b.1))).collect(),
                next: map(next),
            },
            Op::Optional {
                sel,
                sel_signed,
                ranges,
                body,
                next,
            } => Op::Optional {
                sel,
                sel_signed,
                ranges,
                body: (map(body.0), map(body.1)),
                next: map(next),
            },
            other => other,
        });
    }
}

/// Walks `ops[from..to]` with the position known aligned to `known` bits; returns the
/// alignment known at the end. Marks redundant alignments in `keep`.
fn walk_align(ops: &mut [Op], keep: &mut [bool], from: usize, to: usize, mut known: u32) -> u32 {
    let mut i = from;
    while i < to {
        let mut next = i + 1;
        match &ops[i] {
            Op::Align(a) => {
                if *a <= known {
                    keep[i] = false;
                } else {
                    known = *a;
                }
            }
            &Op::Int {
                slot,
                size,
                signed,
                be,
                reg: r,
                clock,
            } => {
                if known >= 8
                    && !be
                    && r == reg::NONE
                    && clock == 0
                    && matches!(size, 8 | 16 | 32 | 64)
                {
                    ops[i] = Op::IntLe {
                        slot,
                        shift: 64 - size,
                        signed,
                    };
                }
                known = known.min(low_bit(size as u64));
            }
            Op::IntLe { shift, .. } => known = known.min(low_bit(64 - *shift as u64)),
            Op::Float { size, .. } => known = known.min(low_bit(*size as u64)),
            Op::VarInt { .. } | Op::Str { .. } => known = 8,
            Op::Bytes { len, .. } => {
                known = known.min(match len {
                    LenSrc::Fixed(n) => low_bit(n.saturating_mul(8)),
                    LenSrc::Slot(_) => 8,
                })
            }
            Op::ScalarArray { len, stride, .. } => {
                known = known.min(match len {
                    LenSrc::Fixed(n) => low_bit(n.saturating_mul(*stride as u64)),
                    LenSrc::Slot(_) => low_bit(*stride as u64),
                })
            }
            Op::Array { body, next: nx, .. } => {
                let (b, nx) = (*body, *nx as usize);
                // Elements after the first start wherever the previous one ended.
                walk_align(ops, keep, b.0 as usize, b.1 as usize, 1);
                known = 1;
                next = nx;
            }
            Op::Variant {
                bodies, next: nx, ..
            } => {
                let (bodies, nx) = (bodies.clone(), *nx as usize);
                let mut out = known;
                for b in bodies {
                    out = out.min(walk_align(ops, keep, b.0 as usize, b.1 as usize, known));
                }
                known = out;
                next = nx;
            }
            Op::Optional { body, next: nx, .. } => {
                let (b, nx) = (*body, *nx as usize);
                known = known.min(walk_align(ops, keep, b.0 as usize, b.1 as usize, known));
                next = nx;
            }
        }
        i = next;
    }
    known
}

fn descend(node: &Node, path: &[String]) -> Option<u32> {
    match node {
        Node::Struct(m) => descend_members(m, path),
        _ => None,
    }
}

fn descend_members(members: &[(String, Node)], path: &[String]) -> Option<u32> {
    let (first, rest) = path.split_first()?;
    let (_, node) = members.iter().rev().find(|(n, _)| n == first)?;
    if rest.is_empty() {
        return match node {
            Node::Leaf(s) => Some(*s),
            _ => None,
        };
    }
    match node {
        Node::Struct(m) => descend_members(m, rest),
        Node::Variant(opts) => opts.iter().find_map(|(_, n)| descend(n, rest)),
        _ => None,
    }
}

/// One decoded value.
#[derive(Debug, Clone, Copy, Default)]
pub struct Slot {
    /// Integer value (sign-extended if signed), float bits, or a position (byte offset for
    /// strings/bytes, bit offset for arrays).
    pub v: u64,
    /// Length (bytes or elements).
    pub len: u32,
    /// Event generation that wrote it: stale slots (unselected variant options) are absent.
    pub gen: u32,
}

/// A decoding failure: bit position and reason.
#[derive(Debug)]
pub struct DecodeError {
    pub pos: u64,
    pub reason: String,
}

/// Per-stream decoding state.
#[derive(Debug, Clone)]
pub struct Machine {
    pub slots: Vec<Slot>,
    pub gen: u32,
    pub regs: [u64; reg::COUNT],
    /// Bit `i` set when `regs[i]` was written since the last reset.
    pub reg_set: u32,
    /// Current default clock value (cycles).
    pub clock: u64,
    /// Trace UUID to check `uuid` packet header fields against.
    pub uuid: Option<[u8; 16]>,
}

impl Machine {
    pub fn new(nslots: usize, uuid: Option<[u8; 16]>) -> Self {
        Machine {
            slots: vec![Slot::default(); nslots.max(1)],
            gen: 1,
            regs: [0; reg::COUNT],
            reg_set: 0,
            clock: 0,
            uuid,
        }
    }

    /// Starts a new event or packet: previously decoded slots become stale.
    #[inline]
    pub fn next_gen(&mut self) {
        self.gen = self.gen.wrapping_add(1);
        if self.gen == 0 {
            for s in &mut self.slots {
                s.gen = 0;
            }
            self.gen = 1;
        }
    }

    #[inline]
    pub fn has(&self, r: u8) -> bool {
        self.reg_set & (1 << r) != 0
    }

    /// Runs a program's top level from bit `pos`, not reading at or past bit `end`.
    #[inline]
    pub fn run(
        &mut self,
        prog: &Program,
        data: &[u8],
        pos: &mut u64,
        end: u64,
    ) -> Result<(), DecodeError> {
        self.run_range(&prog.ops, 0, prog.top, data, pos, end)
    }

    /// Runs `ops[from..to]` (a program's top level or a compound op's body).
    pub fn run_range(
        &mut self,
        ops: &[Op],
        from: u32,
        to: u32,
        data: &[u8],
        pos: &mut u64,
        end: u64,
    ) -> Result<(), DecodeError> {
        let mut i = from as usize;
        let to = to as usize;
        let gen = self.gen;
        while i < to {
            match &ops[i] {
                Op::Align(a) => {
                    let a = *a as u64;
                    *pos = (*pos + a - 1) & !(a - 1);
                }
                &Op::Int {
                    slot,
                    size,
                    signed,
                    be,
                    reg: r,
                    clock,
                } => {
                    let size64 = size as u64;
                    if *pos + size64 > end {
                        return Err(truncated(*pos, size64, end));
                    }
                    let raw = read_bits(data, *pos, size as u32, be);
                    *pos += size64;
                    if clock != 0 {
                        update_clock(&mut self.clock, raw, clock as u32);
                    }
                    let v = if signed && size < 64 {
                        let sh = 64 - size as u32;
                        (((raw << sh) as i64) >> sh) as u64
                    } else {
                        raw
                    };
                    // SAFETY-free bounds: slot indices come from the compiler.
                    self.slots[slot as usize] = Slot { v, len: 0, gen };
                    if r != reg::NONE {
                        self.regs[r as usize] = v;
                        self.reg_set |= 1 << r;
                    }
                }
                &Op::IntLe {
                    slot,
                    shift,
                    signed,
                } => {
                    let size = 64 - shift as u64;
                    if *pos + size > end {
                        return Err(truncated(*pos, size, end));
                    }
                    let at = (*pos >> 3) as usize;
                    let raw = match data.get(at..at + 8) {
                        Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")) << shift,
                        None => read_bits(data, *pos, size as u32, false) << shift,
                    };
                    *pos += size;
                    let v = if signed {
                        ((raw as i64) >> shift) as u64
                    } else {
                        raw >> shift
                    };
                    self.slots[slot as usize] = Slot { v, len: 0, gen };
                }
                &Op::VarInt {
                    slot,
                    signed,
                    reg: r,
                } => {
                    let mut v: u64 = 0;
                    let mut shift = 0u32;
                    let mut byte_pos = (*pos / 8) as usize;
                    let lim = (end / 8) as usize;
                    loop {
                        if byte_pos >= lim {
                            return Err(DecodeError {
                                pos: *pos,
                                reason: "variable-length integer runs past the packet content"
                                    .into(),
                            });
                        }
                        let b = data[byte_pos];
                        byte_pos += 1;
                        if shift < 64 {
                            v |= ((b & 0x7f) as u64) << shift;
                        } else if b & 0x7f != 0 {
                            return Err(DecodeError {
                                pos: *pos,
                                reason: "variable-length integer exceeds 64 bits".into(),
                            });
                        }
                        shift += 7;
                        if b & 0x80 == 0 {
                            if signed && shift < 64 && (b & 0x40) != 0 {
                                v |= u64::MAX << shift;
                            }
                            break;
                        }
                    }
                    *pos = byte_pos as u64 * 8;
                    self.slots[slot as usize] = Slot { v, len: 0, gen };
                    if r != reg::NONE {
                        self.regs[r as usize] = v;
                        self.reg_set |= 1 << r;
                    }
                }
                &Op::Float { slot, size, be } => {
                    let size64 = size as u64;
                    if *pos + size64 > end {
                        return Err(truncated(*pos, size64, end));
                    }
                    let v = read_bits(data, *pos, size as u32, be);
                    *pos += size64;
                    self.slots[slot as usize] = Slot { v, len: 0, gen };
                }
                &Op::Str { slot } => {
                    let start = (*pos / 8) as usize;
                    let lim = ((end / 8) as usize).min(data.len());
                    let hay = data.get(start..lim).unwrap_or(&[]);
                    let Some(n) = find_nul(hay) else {
                        return Err(DecodeError {
                            pos: *pos,
                            reason: "string not terminated before the end of the packet content"
                                .into(),
                        });
                    };
                    self.slots[slot as usize] = Slot {
                        v: start as u64,
                        len: n as u32,
                        gen,
                    };
                    *pos = (start + n + 1) as u64 * 8;
                }
                &Op::Bytes { slot, len, uuid } => {
                    let n = self.length(len);
                    let bits = n.saturating_mul(8);
                    if bits > end.saturating_sub(*pos) || n > u32::MAX as u64 {
                        return Err(absurd(*pos, n, end));
                    }
                    let start = *pos / 8;
                    if uuid {
                        if let Some(want) = self.uuid {
                            let got = &data[start as usize..(start + n) as usize];
                            if got != want {
                                return Err(DecodeError {
                                    pos: *pos,
                                    reason: "packet UUID differs from the trace UUID".into(),
                                });
                            }
                        }
                    }
                    self.slots[slot as usize] = Slot {
                        v: start,
                        len: n as u32,
                        gen,
                    };
                    *pos += bits;
                }
                &Op::ScalarArray { slot, len, stride } => {
                    let n = self.length(len);
                    let bits = n.saturating_mul(stride as u64);
                    if bits > end.saturating_sub(*pos) || n > u32::MAX as u64 {
                        return Err(absurd(*pos, n, end));
                    }
                    self.slots[slot as usize] = Slot {
                        v: *pos,
                        len: n as u32,
                        gen,
                    };
                    *pos += bits;
                }
                Op::Array {
                    slot,
                    len,
                    body,
                    next,
                } => {
                    let n = self.length(*len);
                    // Every element takes at least one bit (an empty one ends the loop),
                    // so more elements than bits left is corrupt data.
                    if n > end.saturating_sub(*pos).max(1) || n > u32::MAX as u64 {
                        return Err(absurd(*pos, n, end));
                    }
                    self.slots[*slot as usize] = Slot {
                        v: *pos,
                        len: n as u32,
                        gen,
                    };
                    for _ in 0..n {
                        let before = *pos;
                        self.run_range(ops, body.0, body.1, data, pos, end)?;
                        if *pos == before {
                            // Empty elements: the others would decode to the same nothing.
                            break;
                        }
                    }
                    i = *next as usize;
                    continue;
                }
                Op::Variant {
                    tag,
                    tag_signed,
                    choices,
                    bodies,
                    next,
                } => {
                    let t = self.slots[*tag as usize];
                    let val: i128 = if *tag_signed {
                        t.v as i64 as i128
                    } else {
                        t.v as i128
                    };
                    let Some(&(_, _, opt)) =
                        choices.iter().find(|(lo, hi, _)| *lo <= val && val <= *hi)
                    else {
                        return Err(DecodeError {
                            pos: *pos,
                            reason: format!("variant tag value {val} selects no option"),
                        });
                    };
                    let (a, b) = bodies[opt as usize];
                    self.run_range(ops, a, b, data, pos, end)?;
                    i = *next as usize;
                    continue;
                }
                Op::Optional {
                    sel,
                    sel_signed,
                    ranges,
                    body,
                    next,
                } => {
                    let t = self.slots[*sel as usize];
                    let val: i128 = if *sel_signed {
                        t.v as i64 as i128
                    } else {
                        t.v as i128
                    };
                    let present = match ranges {
                        None => val != 0,
                        Some(r) => r.iter().any(|(lo, hi)| *lo <= val && val <= *hi),
                    };
                    if present {
                        self.run_range(ops, body.0, body.1, data, pos, end)?;
                    }
                    i = *next as usize;
                    continue;
                }
            }
            i += 1;
        }
        Ok(())
    }

    #[inline]
    fn length(&self, l: LenSrc) -> u64 {
        match l {
            LenSrc::Fixed(n) => n,
            LenSrc::Slot(s) => self.slots[s as usize].v,
        }
    }
}

#[cold]
fn truncated(pos: u64, size: u64, end: u64) -> DecodeError {
    DecodeError {
        pos,
        reason: format!("field of {size} bits runs past the packet content (ends at bit {end})"),
    }
}

#[cold]
fn absurd(pos: u64, n: u64, end: u64) -> DecodeError {
    DecodeError {
        pos,
        reason: format!(
            "length {n} does not fit in the {} bits left in the packet",
            end.saturating_sub(pos)
        ),
    }
}

/// Position of the first NUL byte, eight bytes at a time.
#[inline]
pub fn find_nul(hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        // Classic "has a zero byte" test; exact for the lowest zero byte.
        let z = w.wrapping_sub(LO) & !w & HI;
        if z != 0 {
            return Some(base + (z.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == 0)
        .map(|i| base + i)
}

/// Reads `size` (1..=64) bits at bit position `pos` (CTF bit order of §3.4).
/// The caller guarantees `pos + size` is within `data`.
#[inline(always)]
pub fn read_bits(data: &[u8], pos: u64, size: u32, be: bool) -> u64 {
    let byte = (pos >> 3) as usize;
    let sh = (pos & 7) as u32;
    if sh + size <= 64 {
        if let Some(w) = data.get(byte..byte + 8) {
            let w: [u8; 8] = w.try_into().expect("8 bytes");
            return if be {
                (u64::from_be_bytes(w) << sh) >> (64 - size)
            } else {
                let v = u64::from_le_bytes(w) >> sh;
                if size == 64 {
                    v
                } else {
                    v & ((1u64 << size) - 1)
                }
            };
        }
    }
    read_bits_slow(data, pos, size, be)
}

#[cold]
fn read_bits_slow(data: &[u8], pos: u64, size: u32, be: bool) -> u64 {
    let byte = (pos >> 3) as usize;
    let sh = (pos & 7) as u32;
    let mut buf = [0u8; 16];
    let avail = data.len().saturating_sub(byte).min(16);
    buf[..avail].copy_from_slice(&data[byte..byte + avail]);
    if be {
        let w = u128::from_be_bytes(buf);
        ((w << sh) >> (128 - size)) as u64
    } else {
        let w = u128::from_le_bytes(buf) >> sh;
        (w & ((1u128 << size) - 1)) as u64
    }
}

/// §4.1: an N-bit clock field updates the 64-bit current value, assuming at most one wrap.
#[inline(always)]
pub fn update_clock(clock: &mut u64, v: u64, size: u32) {
    if size >= 64 {
        *clock = v;
        return;
    }
    let mask = (1u64 << size) - 1;
    let low = *clock & mask;
    let mut new = (*clock & !mask) | v;
    if v < low {
        new = new.wrapping_add(1u64 << size);
    }
    *clock = new;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_reading_both_orders() {
        // LE: 5 low bits then 27 bits (compact header, §10.1).
        let d = [0xfc, 0x25, 0x47, 0xa1, 0, 0, 0, 0, 0];
        assert_eq!(read_bits(&d, 0, 5, false), 0x1c);
        assert_eq!(read_bits(&d, 5, 27, false), 0x50a392f);
        // BE: 5 top bits then 27 (§10.2).
        let d = [0x1d, 0xdb, 0x23, 0x83, 0, 0, 0, 0];
        assert_eq!(read_bits(&d, 0, 5, true), 3);
        assert_eq!(read_bits(&d, 5, 27, true), 0x5db2383);
        // Slow path near the end of the buffer.
        let d = [0x01, 0x02, 0x03];
        assert_eq!(read_bits(&d, 8, 16, false), 0x0302);
        assert_eq!(read_bits(&d, 8, 16, true), 0x0203);
    }

    #[test]
    fn nul_search_agrees_with_a_scan() {
        let mut v = vec![7u8; 40];
        assert_eq!(find_nul(&v), None);
        for at in [0, 1, 7, 8, 9, 15, 16, 31, 39] {
            v.iter_mut().for_each(|b| *b = 0x81);
            v[at] = 0;
            if at + 1 < v.len() {
                v[at + 1] = 0;
            }
            assert_eq!(find_nul(&v), Some(at), "at {at}");
            assert_eq!(find_nul(&v[..at]), None);
        }
        assert_eq!(find_nul(&[1, 0x80, 0]), Some(2));
        assert_eq!(
            find_nul(&[0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x80, 0]),
            Some(8)
        );
    }

    #[test]
    fn clock_wraps_once() {
        let mut c = 0x224ed0a29d4;
        update_clock(&mut c, 0x50a392f, 27);
        assert_eq!(c, 0x224ed0a392f);
        let mut c = 0x7ffffff;
        update_clock(&mut c, 1, 27);
        assert_eq!(c, 0x8000001);
    }
}

/// Recognised LTTng event headers, decoded without the interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    Generic,
    /// `event_header_compact` (5-bit id, 27-bit timestamp; 31 escapes to 32 + 64 bits),
    /// byte-aligned (x86 layout).
    Compact {
        be: bool,
        slots: HeaderSlots,
    },
    /// `event_header_large` (16-bit id, 32-bit timestamp; 65535 escapes to 32 + 64 bits).
    Large {
        be: bool,
        slots: HeaderSlots,
    },
}

/// Slots of the header fields (filled by the fast path too, for references).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderSlots {
    pub id: u32,
    pub ts: u32,
    pub ext_id: u32,
    pub ext_ts: u32,
}

/// Matches the compiled event header against LTTng's two headers.
pub fn header_kind(prog: &Program) -> HeaderKind {
    let ops = &prog.ops;
    // Top-level ops only: compound ops jump over their bodies.
    let mut top: Vec<&Op> = Vec::new();
    let mut i = 0usize;
    while i < prog.top as usize {
        top.push(&ops[i]);
        i = match &ops[i] {
            Op::Variant { next, .. } | Op::Array { next, .. } | Op::Optional { next, .. } => {
                *next as usize
            }
            _ => i + 1,
        };
    }
    // The header starts on a byte; byte alignments after that change nothing for the
    // byte-multiple fields matched below.
    if !matches!(top.first(), Some(Op::Align(8))) {
        return HeaderKind::Generic;
    }
    top.retain(|op| !matches!(op, Op::Align(1) | Op::Align(8)));
    let [Op::Int {
        slot: id_slot,
        size,
        signed: false,
        be,
        reg: r,
        clock: 0,
    }, Op::Variant {
        tag,
        choices,
        bodies,
        ..
    }] = top.as_slice()
    else {
        return HeaderKind::Generic;
    };
    if *r != reg::EVENT_ID || tag != id_slot || bodies.len() != 2 {
        return HeaderKind::Generic;
    }
    let escape: i128 = if *size == 5 { 31 } else { 65535 };
    if (*size != 5 && *size != 16)
        || choices.as_slice() != [(0, escape - 1, 0), (escape, escape, 1)]
    {
        return HeaderKind::Generic;
    }
    // The options' ops, alignments of at most a byte dropped (all fields below are
    // byte multiples that start byte-aligned in these layouts).
    let body = |k: usize| -> Vec<&Op> {
        let (a, b) = bodies[k];
        ops[a as usize..b as usize]
            .iter()
            .filter(|op| !matches!(op, Op::Align(1) | Op::Align(8)))
            .collect()
    };
    let ts_size: u8 = if *size == 5 { 27 } else { 32 };
    let compact = body(0);
    let [Op::Int {
        slot: ts,
        size: s1,
        be: b1,
        reg: reg::NONE,
        clock: c1,
        ..
    }] = compact.as_slice()
    else {
        return HeaderKind::Generic;
    };
    let ext = body(1);
    let [Op::Int {
        slot: ext_id,
        size: 32,
        be: b2,
        reg: r2,
        clock: 0,
        ..
    }, Op::Int {
        slot: ext_ts,
        size: 64,
        be: b3,
        reg: reg::NONE,
        clock: 64,
        ..
    }] = ext.as_slice()
    else {
        return HeaderKind::Generic;
    };
    if *s1 != ts_size || *c1 != ts_size || *r2 != reg::EVENT_ID || b1 != be || b2 != be || b3 != be
    {
        return HeaderKind::Generic;
    }
    // For the large header the 32-bit timestamp must start on a byte: 16 + 0 bits, yes;
    // for the compact header the 27 bits follow the 5 in the same 32-bit word.
    let slots = HeaderSlots {
        id: *id_slot,
        ts: *ts,
        ext_id: *ext_id,
        ext_ts: *ext_ts,
    };
    if *size == 5 {
        HeaderKind::Compact { be: *be, slots }
    } else {
        HeaderKind::Large { be: *be, slots }
    }
}
