//! The LTTng live viewer protocol (lttng-relayd, TCP port 5344): big-endian packed
//! structures, one request then one reply per command. Wire layout follows
//! lttng-tools' `lttng-viewer-abi.h`; every reply is checked before it is believed.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Default viewer port of lttng-relayd.
pub const DEFAULT_PORT: u16 = 5344;
/// Protocol version spoken (2.4: sessions, attach, indexes with beacons, new streams).
pub const VERSION: (u32, u32) = (2, 4);

const CMD_CONNECT: u32 = 1;
const CMD_LIST_SESSIONS: u32 = 2;
const CMD_ATTACH_SESSION: u32 = 3;
const CMD_GET_NEXT_INDEX: u32 = 4;
const CMD_GET_PACKET: u32 = 5;
const CMD_GET_METADATA: u32 = 6;
const CMD_GET_NEW_STREAMS: u32 = 7;
const CMD_CREATE_SESSION: u32 = 8;

/// Reply flag: new metadata is needed to read this packet.
pub const FLAG_NEW_METADATA: u32 = 1;
/// Reply flag: streams were added to the session.
pub const FLAG_NEW_STREAM: u32 = 2;

const HOST_NAME_MAX: usize = 64;
const NAME_MAX: usize = 255;
const PATH_MAX: usize = 4096;
pub(crate) const SESSION_LEN: usize = 8 + 4 + 4 + 4 + HOST_NAME_MAX + NAME_MAX;
pub(crate) const STREAM_LEN: usize = 8 + 8 + 4 + PATH_MAX + NAME_MAX;
pub(crate) const INDEX_LEN: usize = 7 * 8 + 4 + 4;
/// Largest counts and lengths believed in a reply (beyond: malformed).
const MAX_COUNT: u32 = 1 << 16;
const MAX_METADATA_CHUNK: u64 = 1 << 28;

/// What went wrong talking to a relay daemon.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("bad live URL `{url}`: {reason} (expected net://HOST[:PORT]/host/HOSTNAME/SESSION)")]
    Url { url: String, reason: String },
    #[error("{addr}: cannot connect: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: no reply to {command} within {secs} s")]
    Timeout {
        addr: String,
        command: &'static str,
        secs: u64,
    },
    #[error("{addr}: relay closed the connection during {command}")]
    Closed { addr: String, command: &'static str },
    #[error("{addr}: {command}: {source}")]
    Io {
        addr: String,
        command: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: malformed reply to {command} at byte {offset}: {reason}")]
    Malformed {
        addr: String,
        command: &'static str,
        offset: usize,
        reason: String,
    },
    #[error("{addr}: relay refused {command}: {reason}")]
    Refused {
        addr: String,
        command: &'static str,
        reason: String,
    },
    #[error("{addr}: no live session {hostname}/{session} (relay has: {available})")]
    NoSession {
        addr: String,
        hostname: String,
        session: String,
        available: String,
    },
    #[error("{addr}: session {session}: {reason}")]
    Session {
        addr: String,
        session: String,
        reason: String,
    },
    #[error("live trace: {0}")]
    Trace(#[from] crate::error::TraceError),
}

/// A session as listed by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: u64,
    pub live_timer_us: u32,
    pub clients: u32,
    pub streams: u32,
    pub hostname: String,
    pub name: String,
}

/// A stream of an attached session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub id: u64,
    /// Streams of one CTF trace share this id (and one metadata stream).
    pub ctf_trace_id: u64,
    pub is_metadata: bool,
    pub path_name: String,
    pub channel_name: String,
}

/// Status of a `get next index` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexStatus {
    /// A packet is available.
    Ok,
    /// Nothing yet; ask again later.
    Retry,
    /// The stream is closed (session destroyed or stream hung up).
    Hup,
    /// Inactivity beacon: no data in this stream until `timestamp_end`.
    Inactive,
    /// End of the stream's index.
    Eof,
}

/// A `get next index` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub status: IndexStatus,
    pub flags: u32,
    /// Byte offset of the packet in the stream.
    pub offset: u64,
    /// Packet and content sizes, in bits.
    pub packet_size: u64,
    pub content_size: u64,
    /// Clock cycles of the stream's clock.
    pub timestamp_begin: u64,
    pub timestamp_end: u64,
    pub events_discarded: u64,
    /// Stream class id.
    pub stream_class_id: u64,
}

/// A `get packet` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketReply {
    Data { bytes: Vec<u8>, flags: u32 },
    Retry { flags: u32 },
    Eof,
}

/// A `get metadata` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataReply {
    Data(Vec<u8>),
    NoNew,
    Hup,
}

/// A `get new streams` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewStreams {
    Streams(Vec<StreamInfo>),
    NoNew,
    /// The session is closed.
    Hup,
}

/// Reads big-endian fields from a reply, naming the command on error.
struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn new(b: &'a [u8]) -> Self {
        Rd { b, pos: 0 }
    }
    fn u32(&mut self) -> u32 {
        let v = u32::from_be_bytes(self.b[self.pos..self.pos + 4].try_into().expect("4 bytes"));
        self.pos += 4;
        v
    }
    fn u64(&mut self) -> u64 {
        let v = u64::from_be_bytes(self.b[self.pos..self.pos + 8].try_into().expect("8 bytes"));
        self.pos += 8;
        v
    }
    /// A NUL-terminated string in a fixed-size field.
    fn text(&mut self, len: usize) -> Result<String, (usize, String)> {
        let f = &self.b[self.pos..self.pos + len];
        let at = self.pos;
        self.pos += len;
        let end = f.iter().position(|&c| c == 0).ok_or_else(|| {
            (
                at,
                format!("string field of {len} bytes is not NUL-terminated"),
            )
        })?;
        String::from_utf8(f[..end].to_vec()).map_err(|_| (at, "string is not UTF-8".to_string()))
    }
}

/// A connection to a relay daemon's viewer port.
pub struct Client {
    stream: TcpStream,
    addr: String,
    timeout: Duration,
    /// Negotiated protocol version.
    pub version: (u32, u32),
    pub viewer_session_id: u64,
}

impl Client {
    /// Connects, exchanges versions and creates the viewer session. `timeout` bounds
    /// the connection and every reply.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Client, LiveError> {
        let cerr = |source| LiveError::Connect {
            addr: addr.to_string(),
            source,
        };
        let mut last = None;
        let mut stream = None;
        for sa in addr.to_socket_addrs().map_err(cerr)? {
            match TcpStream::connect_timeout(&sa, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream =
            stream.ok_or_else(|| {
                cerr(last.unwrap_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
                }))
            })?;
        for r in [
            stream.set_read_timeout(Some(timeout)),
            stream.set_write_timeout(Some(timeout)),
            stream.set_nodelay(true),
        ] {
            r.map_err(cerr)?;
        }
        let mut c = Client {
            stream,
            addr: addr.to_string(),
            timeout,
            version: VERSION,
            viewer_session_id: 0,
        };
        let mut p = Vec::with_capacity(20);
        p.extend_from_slice(&u64::MAX.to_be_bytes());
        p.extend_from_slice(&VERSION.0.to_be_bytes());
        p.extend_from_slice(&VERSION.1.to_be_bytes());
        p.extend_from_slice(&1u32.to_be_bytes()); // command connection
        let cmd = "connect";
        c.send(CMD_CONNECT, &p, cmd)?;
        let r = c.recv(20, cmd)?;
        let mut rd = Rd::new(&r);
        let (id, major, minor) = (rd.u64(), rd.u32(), rd.u32());
        if major != VERSION.0 {
            return Err(c.refused(
                cmd,
                format!(
                    "relay speaks protocol {major}.{minor}, viewer {}.{}",
                    VERSION.0, VERSION.1
                ),
            ));
        }
        c.version = (major, minor.min(VERSION.1));
        c.viewer_session_id = id;
        let cmd = "create session";
        c.send(CMD_CREATE_SESSION, &[], cmd)?;
        let st = Rd::new(&c.recv(4, cmd)?).u32();
        match st {
            1 => Ok(c),
            2 => Err(c.refused(cmd, "status ERR".into())),
            s => Err(c.malformed(cmd, 0, format!("unknown status {s}"))),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn list_sessions(&mut self) -> Result<Vec<SessionInfo>, LiveError> {
        let cmd = "list sessions";
        self.send(CMD_LIST_SESSIONS, &[], cmd)?;
        let n = Rd::new(&self.recv(4, cmd)?).u32();
        self.check_count(n, cmd)?;
        let b = self.recv(n as usize * SESSION_LEN, cmd)?;
        let mut rd = Rd::new(&b);
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (id, live_timer_us, clients, streams) = (rd.u64(), rd.u32(), rd.u32(), rd.u32());
            let hostname = rd
                .text(HOST_NAME_MAX)
                .map_err(|(o, r)| self.malformed(cmd, 4 + o, r))?;
            let name = rd
                .text(NAME_MAX)
                .map_err(|(o, r)| self.malformed(cmd, 4 + o, r))?;
            out.push(SessionInfo {
                id,
                live_timer_us,
                clients,
                streams,
                hostname,
                name,
            });
        }
        Ok(out)
    }

    /// Attaches to a session, reading from its beginning (`from_beginning`) or from now.
    pub fn attach(
        &mut self,
        session_id: u64,
        from_beginning: bool,
    ) -> Result<Vec<StreamInfo>, LiveError> {
        let cmd = "attach session";
        let mut p = Vec::with_capacity(20);
        p.extend_from_slice(&session_id.to_be_bytes());
        p.extend_from_slice(&0u64.to_be_bytes());
        p.extend_from_slice(&(if from_beginning { 1u32 } else { 2 }).to_be_bytes());
        self.send(CMD_ATTACH_SESSION, &p, cmd)?;
        let r = self.recv(8, cmd)?;
        let mut rd = Rd::new(&r);
        let (status, n) = (rd.u32(), rd.u32());
        let reason = match status {
            1 => None,
            2 => Some("another viewer is attached"),
            3 => Some("unknown session id"),
            4 => Some("session is not live"),
            5 => Some("seek error"),
            6 => Some("no viewer session"),
            s => return Err(self.malformed(cmd, 0, format!("unknown status {s}"))),
        };
        if let Some(r) = reason {
            return Err(self.refused(cmd, r.into()));
        }
        self.read_streams(n, 8, cmd)
    }

    pub fn get_new_streams(&mut self, session_id: u64) -> Result<NewStreams, LiveError> {
        let cmd = "get new streams";
        self.send(CMD_GET_NEW_STREAMS, &session_id.to_be_bytes(), cmd)?;
        let r = self.recv(8, cmd)?;
        let mut rd = Rd::new(&r);
        let (status, n) = (rd.u32(), rd.u32());
        match status {
            1 => Ok(NewStreams::Streams(self.read_streams(n, 8, cmd)?)),
            2 => Ok(NewStreams::NoNew),
            3 => Err(self.refused(cmd, "status ERR".into())),
            4 => Ok(NewStreams::Hup),
            s => Err(self.malformed(cmd, 0, format!("unknown status {s}"))),
        }
    }

    pub fn get_metadata(&mut self, stream_id: u64) -> Result<MetadataReply, LiveError> {
        let cmd = "get metadata";
        self.send(CMD_GET_METADATA, &stream_id.to_be_bytes(), cmd)?;
        let r = self.recv(12, cmd)?;
        let mut rd = Rd::new(&r);
        let (len, status) = (rd.u64(), rd.u32());
        match status {
            1 => {
                if len > MAX_METADATA_CHUNK {
                    return Err(self.malformed(cmd, 0, format!("metadata length {len}")));
                }
                Ok(MetadataReply::Data(self.recv(len as usize, cmd)?))
            }
            2 => Ok(MetadataReply::NoNew),
            3 => Err(self.refused(cmd, "status ERR".into())),
            4 => Ok(MetadataReply::Hup),
            s => Err(self.malformed(cmd, 8, format!("unknown status {s}"))),
        }
    }

    pub fn get_next_index(&mut self, stream_id: u64) -> Result<Index, LiveError> {
        let cmd = "get next index";
        self.send(CMD_GET_NEXT_INDEX, &stream_id.to_be_bytes(), cmd)?;
        let r = self.recv(INDEX_LEN, cmd)?;
        let mut rd = Rd::new(&r);
        let (offset, packet_size, content_size, tb, te, disc, sid) = (
            rd.u64(),
            rd.u64(),
            rd.u64(),
            rd.u64(),
            rd.u64(),
            rd.u64(),
            rd.u64(),
        );
        let (status, flags) = (rd.u32(), rd.u32());
        let status = match status {
            1 => IndexStatus::Ok,
            2 => IndexStatus::Retry,
            3 => IndexStatus::Hup,
            4 => return Err(self.refused(cmd, format!("status ERR for stream {stream_id}"))),
            5 => IndexStatus::Inactive,
            6 => IndexStatus::Eof,
            s => return Err(self.malformed(cmd, 56, format!("unknown status {s}"))),
        };
        if status == IndexStatus::Ok {
            if packet_size == 0 || packet_size % 8 != 0 || content_size > packet_size {
                return Err(self.malformed(
                    cmd,
                    8,
                    format!("packet size {packet_size} bits, content size {content_size} bits"),
                ));
            }
            if packet_size / 8 > u32::MAX as u64 {
                return Err(self.malformed(cmd, 8, format!("packet of {packet_size} bits")));
            }
        }
        Ok(Index {
            status,
            flags,
            offset,
            packet_size,
            content_size,
            timestamp_begin: tb,
            timestamp_end: te,
            events_discarded: disc,
            stream_class_id: sid,
        })
    }

    pub fn get_packet(
        &mut self,
        stream_id: u64,
        offset: u64,
        len: u32,
    ) -> Result<PacketReply, LiveError> {
        let cmd = "get packet";
        let mut p = Vec::with_capacity(20);
        p.extend_from_slice(&stream_id.to_be_bytes());
        p.extend_from_slice(&offset.to_be_bytes());
        p.extend_from_slice(&len.to_be_bytes());
        self.send(CMD_GET_PACKET, &p, cmd)?;
        let r = self.recv(12, cmd)?;
        let mut rd = Rd::new(&r);
        let (status, n, flags) = (rd.u32(), rd.u32(), rd.u32());
        match status {
            1 => {
                if n != len {
                    return Err(self.malformed(
                        cmd,
                        4,
                        format!("{n} bytes announced for a packet of {len} bytes"),
                    ));
                }
                Ok(PacketReply::Data {
                    bytes: self.recv(n as usize, cmd)?,
                    flags,
                })
            }
            2 => Ok(PacketReply::Retry { flags }),
            3 => Err(self.refused(cmd, format!("status ERR for stream {stream_id}"))),
            4 => Ok(PacketReply::Eof),
            s => Err(self.malformed(cmd, 0, format!("unknown status {s}"))),
        }
    }

    fn read_streams(
        &mut self,
        n: u32,
        at: usize,
        cmd: &'static str,
    ) -> Result<Vec<StreamInfo>, LiveError> {
        self.check_count(n, cmd)?;
        let b = self.recv(n as usize * STREAM_LEN, cmd)?;
        let mut rd = Rd::new(&b);
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (id, ctf_trace_id, flag) = (rd.u64(), rd.u64(), rd.u32());
            let path_name = rd
                .text(PATH_MAX)
                .map_err(|(o, r)| self.malformed(cmd, at + o, r))?;
            let channel_name = rd
                .text(NAME_MAX)
                .map_err(|(o, r)| self.malformed(cmd, at + o, r))?;
            out.push(StreamInfo {
                id,
                ctf_trace_id,
                is_metadata: flag != 0,
                path_name,
                channel_name,
            });
        }
        Ok(out)
    }

    fn check_count(&self, n: u32, cmd: &'static str) -> Result<(), LiveError> {
        if n > MAX_COUNT {
            return Err(self.malformed(cmd, 0, format!("count {n} exceeds {MAX_COUNT}")));
        }
        Ok(())
    }

    fn send(&mut self, cmd: u32, payload: &[u8], what: &'static str) -> Result<(), LiveError> {
        let mut b = Vec::with_capacity(16 + payload.len());
        b.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        b.extend_from_slice(&cmd.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(payload);
        self.stream.write_all(&b).map_err(|e| self.io_err(e, what))
    }

    fn recv(&mut self, n: usize, what: &'static str) -> Result<Vec<u8>, LiveError> {
        let mut b = vec![0u8; n];
        self.stream
            .read_exact(&mut b)
            .map_err(|e| self.io_err(e, what))?;
        Ok(b)
    }

    fn io_err(&self, e: std::io::Error, command: &'static str) -> LiveError {
        use std::io::ErrorKind::*;
        match e.kind() {
            WouldBlock | TimedOut => LiveError::Timeout {
                addr: self.addr.clone(),
                command,
                secs: self.timeout.as_secs().max(1),
            },
            UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => LiveError::Closed {
                addr: self.addr.clone(),
                command,
            },
            _ => LiveError::Io {
                addr: self.addr.clone(),
                command,
                source: e,
            },
        }
    }

    fn malformed(&self, command: &'static str, offset: usize, reason: String) -> LiveError {
        LiveError::Malformed {
            addr: self.addr.clone(),
            command,
            offset,
            reason,
        }
    }

    fn refused(&self, command: &'static str, reason: String) -> LiveError {
        LiveError::Refused {
            addr: self.addr.clone(),
            command,
            reason,
        }
    }
}
