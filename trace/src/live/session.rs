//! An attached live session: metadata and streams fetched from the relay, packets
//! fed to the CTF decoder, events merged by timestamp across streams.
//!
//! An event is handed out only when no other stream can still produce an earlier
//! one: every other open stream either stands on a later event, or has told us
//! (end of its last packet, or an inactivity beacon from the live timer) that it has
//! nothing before that time. This is how babeltrace2's `src.ctf.lttng-live` keeps a
//! quiet stream from blocking the others.
//!
//! A session holds several CTF traces (per-UID buffers: one per user; per-PID: one
//! per process; one per ABI), each with its own metadata stream, and traces appear
//! while it runs (announced with the "new streams" flag). As in babeltrace2, a
//! trace seen after attaching is pending until its metadata compiles: its streams
//! hold the merge meanwhile (they may have the earliest events), then it joins the
//! experiment with class ids after every known one. Metadata that does not compile
//! within `setup_timeout` is an error. An event older than one already handed out
//! (a trace announced too late) is skipped and counted, as consumers need time
//! order. The session ends when the relay hangs it up, not when every known stream
//! has: with per-PID buffers, processes come and go.
//!
//! Per-PID buffers and lttng-relayd before 2.14 (Debian's 2.13.9): streams attached
//! after the viewer are served from their first packet (`SEEK_BEGINNING`), but
//! - "new streams" is flagged only on index replies carrying a packet (fixed in
//!   2.13.12), never on beacons or retries, so a quiet session would not learn of
//!   a new process; and a process's streams not announced by the time it exits are
//!   dropped from the session. We ask for new streams every poll interval.
//! - a stream whose process exited is moved to an empty trace chunk at the next
//!   "get next index" and hung up, even when the relay received packets the viewer
//!   was not sent yet (the last flush at exit, within a millisecond of the close):
//!   those packets never reach a viewer (babeltrace2 loses them too). Fixed in 2.14
//!   (viewer streams created on publication, no chunk switch for closed streams).
//!   A process that lives a live-timer period after its last event loses nothing.

use super::proto::{Client, Index, IndexStatus, LiveError, MetadataReply, NewStreams, PacketReply};
use super::proto::{StreamInfo, DEFAULT_PORT, FLAG_NEW_METADATA, FLAG_NEW_STREAM};
use crate::ctf::{metadata, reader::CtfTrace};
use crate::experiment::{ClassId, Event, Experiment};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `net://HOST[:PORT]/host/HOSTNAME/SESSION`, as babeltrace2 and Trace Compass write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveUrl {
    pub host: String,
    pub port: u16,
    pub hostname: String,
    pub session: String,
}

impl LiveUrl {
    pub fn parse(url: &str) -> Result<LiveUrl, LiveError> {
        let bad = |reason: &str| LiveError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let rest = url
            .strip_prefix("net://")
            .or_else(|| url.strip_prefix("net4://"))
            .ok_or_else(|| bad("scheme is not net://"))?;
        let mut parts = rest.split('/');
        let authority = parts.next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>().map_err(|_| bad("port is not a number"))?,
            ),
            _ => (authority, DEFAULT_PORT),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("host"), Some(h), Some(s), None) if !h.is_empty() && !s.is_empty() => {
                Ok(LiveUrl {
                    host: host.to_string(),
                    port,
                    hostname: h.to_string(),
                    session: s.to_string(),
                })
            }
            _ => Err(bad("path is not /host/HOSTNAME/SESSION")),
        }
    }

    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for LiveUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "net://{}/host/{}/{}",
            self.addr(),
            self.hostname,
            self.session
        )
    }
}

/// Timeouts and pacing.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Bound on connecting and on every reply.
    pub io_timeout: Duration,
    /// Pause between polls when no stream has anything new.
    pub poll_interval: Duration,
    /// How long to wait after attaching for streams and event classes to appear.
    pub setup_timeout: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            io_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(100),
            setup_timeout: Duration::from_secs(30),
        }
    }
}

/// A CTF trace of the session: one metadata stream and its data streams. A session
/// holds several (per-UID buffers: one per user; per-PID: one per process; one per
/// ABI), and new ones appear while it is traced.
struct LiveTrace {
    ctf_trace_id: u64,
    /// Relay id of the metadata stream, once announced.
    metadata_stream: Option<u64>,
    metadata: Vec<u8>,
    /// Event classes compiled so far.
    classes: usize,
    /// Index in the experiment, once the metadata compiled; until then the trace
    /// is pending and its data streams wait in `waiting`.
    exp: Option<usize>,
    waiting: Vec<StreamInfo>,
    /// When the trace was first announced (a pending trace has `setup_timeout`).
    since: Instant,
    /// Why the metadata is not usable yet, if it is not.
    error: Option<String>,
}

impl LiveTrace {
    fn pending(ctf_trace_id: u64) -> LiveTrace {
        LiveTrace {
            ctf_trace_id,
            metadata_stream: None,
            metadata: Vec::new(),
            classes: 0,
            exp: None,
            waiting: Vec::new(),
            since: Instant::now(),
            error: None,
        }
    }
}

struct LiveStream {
    relay_id: u64,
    /// Trace index in the experiment.
    trace: usize,
    /// Stream index in the experiment.
    exp: usize,
    /// Timestamp (ns) of the event the stream stands on.
    head: Option<i64>,
    /// The stream has nothing before this time (ns).
    quiet_until: i64,
    /// Index of a packet whose data the relay asked us to fetch again.
    pending: Option<Index>,
    closed: bool,
}

/// Counters of what was received.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveStats {
    pub packets: u64,
    pub bytes: u64,
    pub events: u64,
    pub beacons: u64,
    pub retries: u64,
    /// Traces added to the session after attaching (and read).
    pub traces_added: u64,
    /// Events older than one already handed out (a trace announced late), skipped.
    pub late_events: u64,
}

/// A session of a relay daemon, attached and read as one time-ordered flow.
pub struct LiveSession {
    client: Client,
    url: LiveUrl,
    session_id: u64,
    opts: LiveOptions,
    traces: Vec<LiveTrace>,
    streams: Vec<LiveStream>,
    experiment: Experiment,
    warnings: Vec<String>,
    pub stats: LiveStats,
    finished: bool,
    new_classes: Vec<ClassId>,
    /// Timestamp of the last event handed out.
    last_ns: i64,
    /// When the relay was last asked for new streams.
    polled_streams: Instant,
    /// The relay said the session is closed with no stream left holding data.
    session_hup: bool,
}

impl LiveSession {
    /// Connects, attaches to the session from its beginning, and waits (up to
    /// `setup_timeout`) until it has data streams and metadata with event classes.
    pub fn open(url: &LiveUrl, opts: LiveOptions) -> Result<LiveSession, LiveError> {
        let addr = url.addr();
        let mut client = Client::connect(&addr, opts.io_timeout)?;
        let sessions = client.list_sessions()?;
        let Some(s) = sessions
            .iter()
            .find(|s| s.hostname == url.hostname && s.name == url.session)
        else {
            let available = sessions
                .iter()
                .map(|s| format!("{}/{}", s.hostname, s.name))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(LiveError::NoSession {
                addr,
                hostname: url.hostname.clone(),
                session: url.session.clone(),
                available: if available.is_empty() {
                    "none".into()
                } else {
                    available
                },
            });
        };
        let session_id = s.id;
        let mut all = client.attach(session_id, true)?;
        let deadline = Instant::now() + opts.setup_timeout;
        let session_err = |reason: String| LiveError::Session {
            addr: url.addr(),
            session: url.session.clone(),
            reason,
        };
        // Streams and event classes appear when the traced applications register.
        let mut metas: Vec<(u64, u64, Vec<u8>)> = Vec::new();
        let parsed = loop {
            for s in all.iter().filter(|s| s.is_metadata) {
                if !metas.iter().any(|m| m.0 == s.ctf_trace_id) {
                    metas.push((s.ctf_trace_id, s.id, Vec::new()));
                }
            }
            for m in &mut metas {
                fetch_metadata(&mut client, m.1, &mut m.2)?;
            }
            let has_data = all.iter().any(|s| !s.is_metadata);
            let mut parsed = Vec::new();
            // Metadata may stop mid-declaration while the tracer is still writing it:
            // a parse error is final only when the wait is over.
            let mut parse_error = None;
            for (tid, _, bytes) in &metas {
                if bytes.is_empty() {
                    continue;
                }
                let dir = PathBuf::from(format!("{url}/trace{tid}"));
                let md = metadata::parse_bytes(&dir.join("metadata"), bytes)
                    .and_then(|md| CtfTrace::from_metadata(&dir, &dir.join("metadata"), md));
                match md {
                    Ok(t) => parsed.push(t),
                    Err(e) => parse_error = Some(e),
                }
            }
            let classes: usize = parsed.iter().map(|t| t.classes.len()).sum();
            if has_data && classes > 0 && parsed.len() == metas.len() {
                break parsed;
            }
            if Instant::now() >= deadline {
                if let Some(e) = parse_error {
                    return Err(e.into());
                }
                return Err(session_err(format!(
                    "no data streams with event classes after {} s",
                    opts.setup_timeout.as_secs()
                )));
            }
            std::thread::sleep(opts.poll_interval);
            match client.get_new_streams(session_id)? {
                NewStreams::Streams(v) => all.extend(v),
                NewStreams::NoNew => {}
                NewStreams::Hup => {
                    return Err(session_err("destroyed before any data arrived".into()))
                }
            }
        };
        let traces = metas
            .into_iter()
            .zip(&parsed)
            .enumerate()
            .map(|(i, ((tid, sid, bytes), t))| LiveTrace {
                metadata_stream: Some(sid),
                metadata: bytes,
                classes: t.classes.len(),
                exp: Some(i),
                ..LiveTrace::pending(tid)
            })
            .collect();
        let experiment = Experiment::from_memory(parsed)?;
        let mut me = LiveSession {
            client,
            url: url.clone(),
            session_id,
            opts,
            traces,
            streams: Vec::new(),
            experiment,
            warnings: Vec::new(),
            stats: LiveStats::default(),
            finished: false,
            new_classes: Vec::new(),
            last_ns: i64::MIN,
            polled_streams: Instant::now(),
            session_hup: false,
        };
        me.add_streams(all)?;
        Ok(me)
    }

    pub fn url(&self) -> &LiveUrl {
        &self.url
    }

    /// The experiment the events come from (metadata, class names, field handles).
    pub fn experiment(&self) -> &Experiment {
        &self.experiment
    }

    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.warnings.clone();
        w.extend(self.experiment.warnings());
        if self.stats.late_events > 0 {
            w.push(format!(
                "{}: {} events of traces announced late were older than events already handed out; skipped",
                self.url, self.stats.late_events
            ));
        }
        w
    }

    /// Delivers only the events of `classes` (see [`Experiment::set_class_filter`]):
    /// classes added later by the session (grown metadata, new traces) are delivered.
    pub fn set_class_filter(&mut self, classes: Option<&[ClassId]>) {
        self.experiment.set_class_filter(classes);
    }

    /// True once the session was destroyed and every event was handed out.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn add_streams(&mut self, mut v: Vec<StreamInfo>) -> Result<(), LiveError> {
        // Stream file name order, as when the trace is read from files.
        v.sort_by(|a, b| (&a.path_name, &a.channel_name).cmp(&(&b.path_name, &b.channel_name)));
        for s in v {
            let ti = match self
                .traces
                .iter()
                .position(|t| t.ctf_trace_id == s.ctf_trace_id)
            {
                Some(ti) => ti,
                None => {
                    // A trace that appeared after attaching: read once its metadata compiles.
                    self.traces.push(LiveTrace::pending(s.ctf_trace_id));
                    self.traces.len() - 1
                }
            };
            let t = &mut self.traces[ti];
            if s.is_metadata {
                t.metadata_stream.get_or_insert(s.id);
                continue;
            }
            let known = self.streams.iter().any(|x| x.relay_id == s.id)
                || t.waiting.iter().any(|x| x.id == s.id);
            if known {
                continue;
            }
            match t.exp {
                Some(exp) => self.open_stream(exp, &s)?,
                None => t.waiting.push(s),
            }
        }
        Ok(())
    }

    fn open_stream(&mut self, trace: usize, s: &StreamInfo) -> Result<(), LiveError> {
        let exp = self.experiment.add_memory_stream(trace, &s.channel_name)?;
        self.streams.push(LiveStream {
            relay_id: s.id,
            trace,
            exp,
            head: None,
            quiet_until: i64::MIN,
            pending: None,
            closed: false,
        });
        Ok(())
    }

    /// True while a trace announced with data streams has no usable metadata yet:
    /// its streams may hold events earlier than any other, so nothing is handed out.
    fn blocked_by_pending(&self) -> bool {
        self.traces
            .iter()
            .any(|t| t.exp.is_none() && !t.waiting.is_empty())
    }

    /// Fetches the metadata of traces that appeared after attaching and adds those
    /// whose metadata compiles (with a stream class) to the experiment, with their
    /// streams. A metadata text that still does not compile `setup_timeout` after
    /// the trace appeared is an error (the tracer writes it whole at registration).
    fn settle_pending(&mut self) -> Result<bool, LiveError> {
        let mut changed = false;
        for ti in 0..self.traces.len() {
            if self.traces[ti].exp.is_some() {
                continue;
            }
            let t = &mut self.traces[ti];
            if let Some(stream) = t.metadata_stream {
                match fetch_metadata(&mut self.client, stream, &mut t.metadata) {
                    Ok(()) => {}
                    // The relay no longer has it (a per-PID trace whose process
                    // ended before we read anything): nothing more will come.
                    Err(LiveError::Refused { reason, .. }) => {
                        t.metadata_stream = None;
                        t.error = Some(format!("the relay refused its metadata: {reason}"));
                    }
                    Err(e) => return Err(e),
                }
            }
            let dir = PathBuf::from(format!("{}/trace{}", self.url, t.ctf_trace_id));
            let path = dir.join("metadata");
            let compiled = if t.metadata.is_empty() {
                None
            } else {
                match metadata::parse_bytes(&path, &t.metadata)
                    .and_then(|md| CtfTrace::from_metadata(&dir, &path, md))
                {
                    Ok(c) if !c.streams.is_empty() => Some(c),
                    Ok(_) => None,
                    Err(e) => {
                        t.error = Some(format!("its metadata does not compile: {e}"));
                        None
                    }
                }
            };
            let Some(compiled) = compiled else {
                let waited = t.since.elapsed();
                if waited >= self.opts.setup_timeout && !t.waiting.is_empty() {
                    let why = match &t.error {
                        Some(e) => e.clone(),
                        None if t.metadata_stream.is_none() => "no metadata stream".into(),
                        None => "its metadata has no stream class".into(),
                    };
                    return Err(LiveError::Session {
                        addr: self.url.addr(),
                        session: self.url.session.clone(),
                        reason: format!(
                            "trace {} (announced {} s ago with {} data streams) cannot be read: {why}",
                            t.ctf_trace_id,
                            waited.as_secs(),
                            t.waiting.len()
                        ),
                    });
                }
                continue;
            };
            t.classes = compiled.classes.len();
            t.error = None;
            let before = self.experiment.class_count();
            let exp = self.experiment.add_memory_trace(compiled);
            // Every class of the new trace (its lost-event class too) is new.
            self.new_classes
                .extend((before..self.experiment.class_count()).map(ClassId));
            let t = &mut self.traces[ti];
            t.exp = Some(exp);
            let waiting = std::mem::take(&mut t.waiting);
            for s in &waiting {
                self.open_stream(exp, s)?;
            }
            self.stats.traces_added += 1;
            changed = true;
        }
        Ok(changed)
    }

    /// Acts on the flags of a reply about a stream of experiment trace `trace`.
    fn handle_flags(&mut self, flags: u32, trace: usize) -> Result<(), LiveError> {
        if flags & FLAG_NEW_STREAM != 0 {
            self.poll_new_streams()?;
        }
        if flags & FLAG_NEW_METADATA != 0 {
            // The flag is about the metadata of that stream's trace (the others may
            // be gone: a per-PID trace's metadata stream closes with its process).
            if let Some(ti) = self.traces.iter().position(|t| t.exp == Some(trace)) {
                let t = &mut self.traces[ti];
                if let Some(stream) = t.metadata_stream {
                    let before = t.metadata.len();
                    fetch_metadata(&mut self.client, stream, &mut t.metadata)?;
                    if t.metadata.len() != before {
                        self.grow_metadata(ti)?;
                    }
                }
            }
        }
        if self.traces.iter().any(|t| t.exp.is_none()) {
            self.settle_pending()?;
        }
        Ok(())
    }

    /// Compiles trace `ti`'s metadata again after it grew and registers the event
    /// classes it adds. A text cut mid-declaration (the tracer is still writing it)
    /// is left for the next update; a text that changes known classes is an error.
    fn grow_metadata(&mut self, ti: usize) -> Result<(), LiveError> {
        let t = &mut self.traces[ti];
        let Some(exp) = t.exp else { return Ok(()) };
        let dir = PathBuf::from(format!("{}/trace{}", self.url, t.ctf_trace_id));
        let path = dir.join("metadata");
        let Ok(md) = metadata::parse_bytes(&path, &t.metadata) else {
            return Ok(());
        };
        if md.events.len() <= t.classes
            && md.streams.len() <= self.experiment.ctf_traces()[exp].streams.len()
        {
            return Ok(());
        }
        let compiled = CtfTrace::from_metadata(&dir, &path, md)?;
        t.classes = compiled.classes.len();
        let added = self.experiment.grow_trace(exp, compiled)?;
        self.new_classes.extend(added);
        Ok(())
    }

    /// Classes added by metadata updates since the last call (their ids follow every
    /// class known before); a consumer subscribing per class plans them here.
    pub fn take_new_classes(&mut self) -> Vec<ClassId> {
        std::mem::take(&mut self.new_classes)
    }

    /// Asks the relay for streams added since the last call. False once the relay
    /// says the session is closed with no stream left holding data.
    fn poll_new_streams(&mut self) -> Result<bool, LiveError> {
        self.polled_streams = Instant::now();
        match self.client.get_new_streams(self.session_id)? {
            NewStreams::Streams(v) => {
                self.add_streams(v)?;
                Ok(true)
            }
            NewStreams::NoNew => Ok(true),
            NewStreams::Hup => {
                self.session_hup = true;
                Ok(false)
            }
        }
    }

    fn to_ns(&self, trace: usize, stream_class: u64, cycles: u64) -> i64 {
        let t = &self.experiment.ctf_traces()[trace];
        let layout = t
            .streams
            .iter()
            .find(|s| s.id == stream_class)
            .or(t.streams.first());
        layout.map_or(cycles as i64, |l| l.clock.to_ns(cycles))
    }

    /// Asks the relay for stream `k`'s next packet; true if anything changed.
    fn fetch(&mut self, k: usize) -> Result<bool, LiveError> {
        let relay_id = self.streams[k].relay_id;
        let idx = match self.streams[k].pending.take() {
            Some(i) => i,
            None => {
                let i = self.client.get_next_index(relay_id)?;
                self.handle_flags(i.flags, self.streams[k].trace)?;
                i
            }
        };
        let trace = self.streams[k].trace;
        match idx.status {
            IndexStatus::Retry => {
                self.stats.retries += 1;
                Ok(false)
            }
            IndexStatus::Hup | IndexStatus::Eof => {
                self.streams[k].closed = true;
                Ok(true)
            }
            IndexStatus::Inactive => {
                self.stats.beacons += 1;
                let ns = self.to_ns(trace, idx.stream_class_id, idx.timestamp_end);
                let s = &mut self.streams[k];
                let moved = ns > s.quiet_until;
                s.quiet_until = s.quiet_until.max(ns);
                Ok(moved)
            }
            IndexStatus::Ok => {
                let len = (idx.packet_size / 8) as u32;
                match self.client.get_packet(relay_id, idx.offset, len)? {
                    PacketReply::Data { bytes, flags } => {
                        self.handle_flags(flags, trace)?;
                        self.stats.packets += 1;
                        self.stats.bytes += bytes.len() as u64;
                        let exp = self.streams[k].exp;
                        self.experiment.feed_packet(exp, &bytes);
                        let end = self.to_ns(trace, idx.stream_class_id, idx.timestamp_end);
                        let head = self.advance(k)?;
                        let s = &mut self.streams[k];
                        s.head = head;
                        s.quiet_until = s.quiet_until.max(end);
                        Ok(true)
                    }
                    PacketReply::Retry { flags } => {
                        self.handle_flags(flags, trace)?;
                        self.stats.retries += 1;
                        self.streams[k].pending = Some(idx);
                        Ok(false)
                    }
                    PacketReply::Eof => {
                        self.streams[k].closed = true;
                        Ok(true)
                    }
                }
            }
        }
    }

    /// Next event of stream `k` from the packets fed; a decoding error ends the
    /// stream (recorded in the warnings), as for files.
    fn advance(&mut self, k: usize) -> Result<Option<i64>, LiveError> {
        match self.experiment.advance_stream(self.streams[k].exp) {
            Ok(h) => Ok(h),
            Err(e) => {
                self.warnings
                    .push(format!("{e}; the rest of this stream is skipped"));
                self.streams[k].closed = true;
                Ok(None)
            }
        }
    }

    /// The stream whose event comes next, when it is certain no other stream has
    /// an earlier one; `None` when some stream must be asked first.
    fn next_ready(&self) -> Option<usize> {
        if self.blocked_by_pending() {
            return None;
        }
        let (k, ns) = self
            .streams
            .iter()
            .enumerate()
            .filter_map(|(k, s)| s.head.map(|h| (k, h)))
            .min_by_key(|&(k, h)| (h, k))?;
        let blocked = self.streams.iter().enumerate().any(|(j, s)| {
            s.head.is_none() && !s.closed && (s.quiet_until < ns || (s.quiet_until == ns && j < k))
        });
        (!blocked).then_some(k)
    }

    /// Hands events to `f` in timestamp order as they arrive, until the session is
    /// destroyed (then `Ok`), `f` breaks, `stop` is set, or the relay fails.
    pub fn run(
        &mut self,
        f: &mut dyn FnMut(&Event<'_>) -> ControlFlow<()>,
        stop: &AtomicBool,
    ) -> Result<(), LiveError> {
        self.run_steps(
            &mut |step| match step {
                Some(ev) => f(ev),
                None => ControlFlow::Continue(()),
            },
            stop,
        )
    }

    /// [`LiveSession::run`], also calling `f(None)` each time nothing new arrived
    /// and the session is about to wait (once per poll interval), so that the
    /// caller can pass on what it holds or give up.
    pub fn run_steps(
        &mut self,
        f: &mut dyn FnMut(Option<&Event<'_>>) -> ControlFlow<()>,
        stop: &AtomicBool,
    ) -> Result<(), LiveError> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let mut progressed = false;
            if self.traces.iter().any(|t| t.exp.is_none()) {
                progressed |= self.settle_pending()?;
            }
            let packets = self.stats.packets;
            for k in 0..self.streams.len() {
                let s = &self.streams[k];
                if s.head.is_none() && !s.closed {
                    progressed |= self.fetch(k)?;
                }
            }
            // lttng-relayd before 2.13.12 flags new streams only on replies carrying
            // a packet, and before 2.14 never announces the streams of a process
            // that exited before the viewer asked: ask every poll interval. Asking
            // after fetching packets and before merging their events also keeps
            // time order: a stream announced later was created after those packets
            // reached the relay, so it cannot hold an earlier event.
            if !self.session_hup
                && (self.stats.packets != packets
                    || self.polled_streams.elapsed() >= self.opts.poll_interval)
            {
                let before = (self.streams.len(), self.traces.len());
                self.poll_new_streams()?;
                progressed |= before != (self.streams.len(), self.traces.len());
            }
            while let Some(k) = self.next_ready() {
                progressed = true;
                let ns = self.streams[k].head.unwrap_or(i64::MIN);
                if ns < self.last_ns {
                    // A trace announced after events later than this one were handed
                    // out: consumers need time order, so it cannot be delivered.
                    self.stats.late_events += 1;
                } else {
                    self.last_ns = ns;
                    self.stats.events += 1;
                    if self
                        .experiment
                        .visit_stream(self.streams[k].exp, &mut |ev| f(Some(ev)))
                        .is_break()
                    {
                        return Ok(());
                    }
                }
                let h = self.advance(k)?;
                self.streams[k].head = h;
                if h.is_none() && !self.streams[k].closed {
                    // The packet is read: ask for the next one before merging further.
                    break;
                }
            }
            if !self.blocked_by_pending()
                && self.streams.iter().all(|s| s.closed && s.head.is_none())
            {
                // Every stream hung up (or there is none yet). The session is over
                // when the relay says so; until then traces may still be added (a
                // process starts, with per-PID buffers).
                let before = (self.streams.len(), self.traces.len());
                if self.session_hup || !self.poll_new_streams()? {
                    self.finished = true;
                    return Ok(());
                }
                progressed |= before != (self.streams.len(), self.traces.len());
            }
            if !progressed {
                if f(None).is_break() {
                    return Ok(());
                }
                std::thread::sleep(self.opts.poll_interval);
            }
        }
    }
}

/// Appends whatever new metadata the relay has for `stream`.
fn fetch_metadata(client: &mut Client, stream: u64, into: &mut Vec<u8>) -> Result<(), LiveError> {
    loop {
        match client.get_metadata(stream)? {
            MetadataReply::Data(b) => {
                if b.is_empty() {
                    return Ok(());
                }
                into.extend_from_slice(&b)
            }
            MetadataReply::NoNew | MetadataReply::Hup => return Ok(()),
        }
    }
}
