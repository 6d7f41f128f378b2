//! The attribute-tree section: the list of attribute paths, in quark order, as the
//! Java serialization stream Trace Compass writes (`docs/ht-format.md`, section 6).

use std::path::Path;

use super::format::attributes as af;
use crate::attribute::{AttributeTree, ROOT_QUARK};
use crate::error::{Error, Result};
use crate::Quark;

/// Java's modified UTF-8 (`DataOutput.writeUTF` without the length).
fn modified_utf8(s: &str, out: &mut Vec<u8>) {
    for unit in s.encode_utf16() {
        match unit {
            0x0001..=0x007F => out.push(unit as u8),
            0x0000 | 0x0080..=0x07FF => {
                out.push(0xC0 | (unit >> 6) as u8);
                out.push(0x80 | (unit & 0x3F) as u8);
            }
            _ => {
                out.push(0xE0 | (unit >> 12) as u8);
                out.push(0x80 | ((unit >> 6) & 0x3F) as u8);
                out.push(0x80 | (unit & 0x3F) as u8);
            }
        }
    }
}

fn decode_modified_utf8(bytes: &[u8]) -> Option<String> {
    let mut units = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (unit, n) = if b & 0x80 == 0 {
            (b as u16, 1)
        } else if b & 0xE0 == 0xC0 {
            let b2 = *bytes.get(i + 1)?;
            (((b as u16 & 0x1F) << 6) | (b2 as u16 & 0x3F), 2)
        } else if b & 0xF0 == 0xE0 {
            let b2 = *bytes.get(i + 1)?;
            let b3 = *bytes.get(i + 2)?;
            (
                ((b as u16 & 0x0F) << 12) | ((b2 as u16 & 0x3F) << 6) | (b3 as u16 & 0x3F),
                3,
            )
        } else {
            return None;
        };
        units.push(unit);
        i += n;
    }
    Some(String::from_utf16_lossy(&units))
}

struct StreamWriter {
    out: Vec<u8>,
    next_handle: u32,
}

impl StreamWriter {
    fn handle(&mut self) -> u32 {
        let h = self.next_handle;
        self.next_handle += 1;
        h
    }

    fn utf(&mut self, s: &str) {
        self.out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    fn reference(&mut self, handle: u32) {
        self.out.push(af::TC_REFERENCE);
        self.out.extend_from_slice(&handle.to_be_bytes());
    }

    /// A new string object; returns its handle.
    fn new_string(&mut self, s: &str) -> u32 {
        let mut bytes = Vec::with_capacity(s.len());
        modified_utf8(s, &mut bytes);
        if bytes.len() <= u16::MAX as usize {
            self.out.push(af::TC_STRING);
            self.out
                .extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        } else {
            self.out.push(af::TC_LONGSTRING);
            self.out
                .extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        }
        self.out.extend_from_slice(&bytes);
        self.handle()
    }
}

/// Encodes the attribute section exactly as Trace Compass writes it, with the
/// string back-reference convention of the golden files: one string object per
/// attribute node (or per shared name object), and one shared `"*"`.
pub fn encode_attribute_tree(tree: &AttributeTree) -> Vec<u8> {
    let mut w = StreamWriter {
        out: Vec::with_capacity(64 + tree.len() * 16),
        next_handle: af::BASE_HANDLE,
    };
    let count = tree.len() as i32;
    w.out.extend_from_slice(&af::STREAM_MAGIC.to_be_bytes());
    w.out.extend_from_slice(&af::STREAM_VERSION.to_be_bytes());
    w.out.extend_from_slice(&[af::TC_BLOCKDATA, 4]);
    w.out
        .extend_from_slice(&af::ATTRIBUTE_TREE_MAGIC.to_be_bytes());
    w.out.extend_from_slice(&[af::TC_OBJECT, af::TC_CLASSDESC]);
    w.utf(af::ARRAYLIST_CLASS);
    w.out.extend_from_slice(&af::ARRAYLIST_SUID.to_be_bytes());
    w.out.push(af::SC_SERIALIZABLE | af::SC_WRITE_METHOD);
    w.out.extend_from_slice(&1u16.to_be_bytes());
    w.out.push(b'I');
    w.utf("size");
    w.out.extend_from_slice(&[af::TC_ENDBLOCKDATA, af::TC_NULL]);
    w.handle(); // ArrayList class descriptor
    w.handle(); // the ArrayList
    w.out.extend_from_slice(&count.to_be_bytes());
    w.out.extend_from_slice(&[af::TC_BLOCKDATA, 4]);
    w.out.extend_from_slice(&count.to_be_bytes());

    let mut array_class: Option<u32> = None;
    let mut star: Option<u32> = None;
    // Keyed by name object: one per attribute node, unless a provider shared one
    // name object between several nodes (`AttributeTree::child_and_add_shared`).
    let mut name_handles: std::collections::HashMap<u64, u32> =
        std::collections::HashMap::with_capacity(tree.len());
    let mut prev: Vec<Quark> = Vec::new();
    let mut path: Vec<Quark> = Vec::new();
    for q in 0..count {
        tree.path_quarks(q, &mut path);
        w.out.push(af::TC_ARRAY);
        match array_class {
            Some(h) => w.reference(h),
            None => {
                w.out.push(af::TC_CLASSDESC);
                w.utf(af::STRING_ARRAY_CLASS);
                w.out
                    .extend_from_slice(&af::STRING_ARRAY_SUID.to_be_bytes());
                w.out.push(af::SC_SERIALIZABLE);
                w.out.extend_from_slice(&0u16.to_be_bytes());
                w.out.extend_from_slice(&[af::TC_ENDBLOCKDATA, af::TC_NULL]);
                array_class = Some(w.handle());
            }
        }
        w.handle(); // the array
        w.out.extend_from_slice(&(path.len() as i32).to_be_bytes());
        for (i, &attr) in path.iter().enumerate() {
            let (name, id) = tree.name_and_id(attr);
            let same_as_prev = prev.get(i).is_some_and(|&p| tree.name_and_id(p).0 == name);
            if same_as_prev {
                match star {
                    Some(h) => w.reference(h),
                    None => star = Some(w.new_string(af::SAME_AS_PREVIOUS)),
                }
            } else {
                match name_handles.get(&id) {
                    Some(&h) => w.reference(h),
                    None => {
                        let h = w.new_string(name);
                        name_handles.insert(id, h);
                    }
                }
            }
        }
        std::mem::swap(&mut prev, &mut path);
    }
    w.out.push(af::TC_ENDBLOCKDATA);
    w.out
}

/// What a handle of the stream refers to; only strings are looked up by value.
enum Handle {
    Other,
    Str(std::sync::Arc<str>),
}

struct StreamReader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    path: &'a Path,
    handles: Vec<Handle>,
}

impl<'a> StreamReader<'a> {
    fn err(&self, what: impl Into<String>) -> Error {
        Error::corrupt(
            self.path,
            self.base + self.pos as u64,
            format!("attribute tree section: {}", what.into()),
        )
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.pos.checked_add(n).filter(|&e| e <= self.buf.len()) {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err("truncated")),
        }
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<()> {
        let b = self.u8()?;
        if b != byte {
            self.pos -= 1;
            return Err(self.err(format!("expected {what} (0x{byte:02X}), found 0x{b:02X}")));
        }
        Ok(())
    }

    fn utf(&mut self) -> Result<String> {
        let len = self.u16()? as usize;
        let bytes = self.take(len)?;
        decode_modified_utf8(bytes).ok_or_else(|| self.err("invalid modified UTF-8"))
    }

    fn handle(&mut self, h: Handle) {
        self.handles.push(h);
    }

    fn lookup(&self, handle: u32) -> Result<&Handle> {
        handle
            .checked_sub(af::BASE_HANDLE)
            .and_then(|i| self.handles.get(i as usize))
            .ok_or_else(|| self.err(format!("reference to unknown handle 0x{handle:X}")))
    }

    /// A class descriptor (new or by reference); returns its name when new.
    fn class_desc(&mut self, depth: usize) -> Result<()> {
        if depth > 8 {
            return Err(self.err("class descriptors nested too deeply"));
        }
        match self.u8()? {
            af::TC_NULL => Ok(()),
            af::TC_REFERENCE => {
                let h = self.take(4)?;
                self.lookup(u32::from_be_bytes(h.try_into().unwrap()))?;
                Ok(())
            }
            af::TC_CLASSDESC => {
                let _name = self.utf()?;
                self.take(8)?; // serialVersionUID
                self.handle(Handle::Other);
                let _flags = self.u8()?;
                let fields = self.u16()?;
                for _ in 0..fields {
                    let code = self.u8()?;
                    let _field = self.utf()?;
                    if code == b'L' || code == b'[' {
                        self.string()?; // the field's type name
                    }
                }
                self.expect(af::TC_ENDBLOCKDATA, "end of class annotation")?;
                self.class_desc(depth + 1) // superclass
            }
            other => {
                self.pos -= 1;
                Err(self.err(format!("expected a class descriptor, found 0x{other:02X}")))
            }
        }
    }

    /// A string object: new, long or back-reference.
    fn string(&mut self) -> Result<std::sync::Arc<str>> {
        match self.u8()? {
            af::TC_STRING => {
                let s: std::sync::Arc<str> = self.utf()?.into();
                self.handle(Handle::Str(s.clone()));
                Ok(s)
            }
            af::TC_LONGSTRING => {
                let len = self.u64()?;
                let len = usize::try_from(len).map_err(|_| self.err("string too long"))?;
                let bytes = self.take(len)?;
                let s: std::sync::Arc<str> = decode_modified_utf8(bytes)
                    .ok_or_else(|| self.err("invalid modified UTF-8"))?
                    .into();
                self.handle(Handle::Str(s.clone()));
                Ok(s)
            }
            af::TC_REFERENCE => {
                let h = u32::from_be_bytes(self.take(4)?.try_into().unwrap());
                match self.lookup(h)? {
                    Handle::Str(s) => Ok(s.clone()),
                    Handle::Other => Err(self.err(format!("handle 0x{h:X} is not a string"))),
                }
            }
            other => {
                self.pos -= 1;
                Err(self.err(format!("expected a string, found 0x{other:02X}")))
            }
        }
    }
}

/// Decodes an attribute section (at file offset `base` of `path`) into an attribute tree.
pub fn decode_attribute_tree(buf: &[u8], path: &Path, base: u64) -> Result<AttributeTree> {
    let mut r = StreamReader {
        buf,
        pos: 0,
        base,
        path,
        handles: Vec::new(),
    };
    if r.u16()? != af::STREAM_MAGIC || r.u16()? != af::STREAM_VERSION {
        r.pos = 0;
        return Err(r.err("not a Java serialization stream"));
    }
    r.expect(af::TC_BLOCKDATA, "block data")?;
    r.expect(4, "4-byte block")?;
    let magic = r.i32()?;
    if magic != af::ATTRIBUTE_TREE_MAGIC {
        r.pos -= 4;
        return Err(r.err(format!("wrong attribute tree magic 0x{magic:08X}")));
    }
    r.expect(af::TC_OBJECT, "the attribute list object")?;
    r.class_desc(0)?;
    r.handle(Handle::Other); // the list
    let size = r.i32()?;
    r.expect(af::TC_BLOCKDATA, "list block data")?;
    r.expect(4, "4-byte block")?;
    let _capacity = r.i32()?;
    // Each entry needs at least 6 bytes: bound the count by what is left.
    if size < 0 || size as usize > (buf.len() - r.pos) / 6 {
        return Err(r.err(format!("implausible attribute count {size}")));
    }
    let mut tree = AttributeTree::new();
    let mut prev: Vec<std::sync::Arc<str>> = Vec::new();
    for expected in 0..size {
        let entry_at = r.pos;
        r.expect(af::TC_ARRAY, "a path array")?;
        r.class_desc(0)?;
        r.handle(Handle::Other);
        let len = r.i32()?;
        if len <= 0 || len as usize > buf.len() - r.pos {
            return Err(r.err(format!("invalid path length {len} for quark {expected}")));
        }
        let mut names = Vec::with_capacity(len as usize);
        for i in 0..len as usize {
            let s = r.string()?;
            let name = if &*s == af::SAME_AS_PREVIOUS && i < prev.len() {
                prev[i].clone()
            } else {
                s
            };
            names.push(name);
        }
        let q = tree.add_path_unchecked(ROOT_QUARK, &names)?;
        if q != expected || tree.len() != expected as usize + 1 {
            r.pos = entry_at;
            return Err(r.err(format!(
                "path of quark {expected} does not extend the tree in quark order"
            )));
        }
        prev = names;
    }
    r.expect(af::TC_ENDBLOCKDATA, "end of the attribute list")?;
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_bytes() {
        let bytes = encode_attribute_tree(&AttributeTree::new());
        assert_eq!(bytes.len(), 64);
        assert_eq!(
            &bytes[..10],
            &[0xac, 0xed, 0, 5, 0x77, 4, 6, 0xec, 0x36, 0x71]
        );
        let tree = decode_attribute_tree(&bytes, Path::new("x"), 0).unwrap();
        assert!(tree.is_empty());
    }

    #[test]
    fn round_trip_with_compression_and_unicode() {
        let mut t = AttributeTree::new();
        for p in [
            vec!["CPUs", "0", "Status"],
            vec!["Threads", "1000"],
            vec!["Threads", "1000", "Exec_name"],
            vec!["", "e\u{0}x"],
            vec!["😀", "é文"],
        ] {
            t.quark_absolute_and_add(&p).unwrap();
        }
        let bytes = encode_attribute_tree(&t);
        let back = decode_attribute_tree(&bytes, Path::new("x"), 0).unwrap();
        assert_eq!(back.len(), t.len());
        for q in 0..t.len() as Quark {
            assert_eq!(back.path(q).unwrap(), t.path(q).unwrap());
        }
        for cut in [0, 5, 20, bytes.len() - 1] {
            assert!(decode_attribute_tree(&bytes[..cut], Path::new("x"), 0).is_err());
        }
    }

    /// A name object shared by several attributes is written once, then
    /// back-referenced (`71 <handle>`), as Java does for a provider's constants;
    /// equal names created separately stay separate string objects.
    #[test]
    fn shared_name_objects_are_back_referenced() {
        let count = |bytes: &[u8], needle: &[u8]| {
            bytes.windows(needle.len()).filter(|w| *w == needle).count()
        };
        let shared: std::sync::Arc<str> = "Exec_name".into();
        let mut t = AttributeTree::new();
        for tid in ["1", "2"] {
            let th = t.quark_absolute_and_add(&["Threads", tid]).unwrap();
            t.child_and_add_shared(th, &shared).unwrap();
            t.quark_and_add(th, &["Prio"]).unwrap();
        }
        let bytes = encode_attribute_tree(&t);
        assert_eq!(count(&bytes, b"Exec_name"), 1, "shared: one string object");
        assert_eq!(
            count(&bytes, b"Prio"),
            2,
            "not shared: one object per attribute"
        );
        let back = decode_attribute_tree(&bytes, Path::new("x"), 0).unwrap();
        for q in 0..t.len() as Quark {
            assert_eq!(back.path(q).unwrap(), t.path(q).unwrap());
        }
        // Asking again finds the existing child.
        let th = t.quark_absolute_and_add(&["Threads", "1"]).unwrap();
        let before = t.len();
        t.child_and_add_shared(th, &shared).unwrap();
        assert_eq!(t.len(), before);
        assert!(
            t.child_and_add_shared(th, &"*".into()).is_err(),
            "reserved name"
        );
    }
}
