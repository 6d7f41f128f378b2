//! A backend wrapper that stores intervals on a writer thread (Trace Compass's
//! `ThreadedHistoryTreeBackend`): the state system hands finished intervals over in
//! chunks and goes on with the next events while the history tree packs nodes and
//! writes blocks on another core.
//!
//! Queries stay exact: before answering, the wrapper hands over its pending chunk
//! and waits until the writer has stored everything sent so far. An error of the
//! writer thread (an invalid interval, a full disk) is reported by the next call.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::attribute::AttributeTree;
use crate::backend::StateHistoryBackend;
use crate::condition::{QuarkSet, TimeCondition};
use crate::error::{Error, Result};
use crate::handoff;
use crate::ht::chunk::IntervalChunk;
use crate::value::Interval;
use crate::Quark;

enum Message {
    Chunk(IntervalChunk),
    /// Answered once every earlier chunk is stored.
    Sync(SyncSender<()>),
}

type Shared = Arc<Mutex<Box<dyn StateHistoryBackend>>>;

/// Nice levels the writer thread runs below the thread that feeds it
/// ([`handoff::lower_thread_priority`]).
pub const SIDE_NICE: i32 = 3;

/// Runs another backend's inserts on a writer thread.
pub struct ThreadedBackend {
    inner: Shared,
    pending: Mutex<IntervalChunk>,
    chunk: usize,
    sender: Option<handoff::Sender<Message>>,
    // Emptied chunks coming back from the writer (a Mutex only to make the backend Sync).
    spare: Mutex<Receiver<IntervalChunk>>,
    failure: Arc<Mutex<Option<Error>>>,
    worker: Option<JoinHandle<()>>,
    start: i64,
    kind: &'static str,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on the writer thread poisons the lock; the data is still consistent
    // for reporting, and the failure slot says what happened.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ThreadedBackend {
    /// Wraps `inner`; intervals travel to the writer thread `chunk` at a time, with
    /// at most `queue` chunks waiting. A writer thread that caught up sleeps until a
    /// quarter of the queue is full (one wake-up per run of chunks, not per chunk);
    /// a state system that found the queue full goes on at the first free place.
    pub fn new(inner: Box<dyn StateHistoryBackend>, chunk: usize, queue: usize) -> Result<Self> {
        let start = inner.start_time();
        let kind = inner.kind();
        let inner: Shared = Arc::new(Mutex::new(inner));
        let failure = Arc::new(Mutex::new(None));
        let queue = queue.max(1);
        // The writer wakes for a run of chunks; the builder as soon as it has room.
        let (sender, receiver) = handoff::channel::<Message>(queue, queue.div_ceil(4), 1);
        let (spare_tx, spare) = mpsc::channel();
        let worker = {
            let inner = Arc::clone(&inner);
            let failure = Arc::clone(&failure);
            std::thread::Builder::new()
                .name("sht-writer".into())
                .spawn(move || write_loop(&inner, &failure, &receiver, &spare_tx))
                .map_err(|e| Error::Config(format!("cannot start the writer thread: {e}")))?
        };
        Ok(ThreadedBackend {
            inner,
            pending: Mutex::new(IntervalChunk::with_capacity(chunk)),
            chunk: chunk.max(1),
            sender: Some(sender),
            spare: Mutex::new(spare),
            failure,
            worker: Some(worker),
            start,
            kind,
        })
    }

    fn check(&self) -> Result<()> {
        match lock(&self.failure).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn send(&self, chunk: IntervalChunk) -> Result<()> {
        let sender = self.sender.as_ref().ok_or(Error::Closed)?;
        if sender.send(Message::Chunk(chunk)).is_err() {
            self.check()?;
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Hands over the pending chunk and waits until the writer stored all of it.
    fn sync(&self) -> Result<()> {
        let chunk = {
            let mut pending = lock(&self.pending);
            let fresh = lock(&self.spare).try_recv().unwrap_or_default();
            std::mem::replace(&mut *pending, fresh)
        };
        if !chunk.is_empty() {
            self.send(chunk)?;
        }
        if let Some(sender) = &self.sender {
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            if sender.send_now(Message::Sync(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
        self.check()
    }

    /// Sends the full pending chunk to the writer thread.
    #[cold]
    #[inline(never)]
    fn hand_over(&mut self) -> Result<()> {
        let fresh = self
            .spare
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .try_recv()
            .unwrap_or_else(|_| IntervalChunk::with_capacity(self.chunk));
        let pending = self.pending.get_mut().unwrap_or_else(|p| p.into_inner());
        let chunk = std::mem::replace(pending, fresh);
        self.check()?;
        self.send(chunk)
    }

    fn stop_worker(&mut self) {
        self.sender = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn write_loop(
    inner: &Shared,
    failure: &Mutex<Option<Error>>,
    receiver: &handoff::Receiver<Message>,
    spare: &mpsc::Sender<IntervalChunk>,
) {
    // The builder feeding this thread is the slower stage: it gets a core first.
    handoff::lower_thread_priority(SIDE_NICE);
    let mut failed = false;
    for message in receiver.iter() {
        match message {
            Message::Chunk(mut chunk) => {
                if !failed {
                    if let Err(e) = lock(inner).insert_chunk(&mut chunk) {
                        *lock(failure) = Some(e);
                        failed = true;
                    }
                }
                chunk.clear();
                let _ = spare.send(chunk);
            }
            Message::Sync(done) => {
                let _ = done.send(());
            }
        }
    }
}

impl Drop for ThreadedBackend {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

impl StateHistoryBackend for ThreadedBackend {
    fn start_time(&self) -> i64 {
        self.start
    }

    fn end_time(&self) -> i64 {
        let pending_end = lock(&self.pending).max_end();
        let stored = lock(&self.inner).end_time();
        pending_end.map_or(stored, |p| p.max(stored))
    }

    #[inline]
    fn insert(&mut self, interval: Interval) -> Result<()> {
        let pending = self.pending.get_mut().unwrap_or_else(|p| p.into_inner());
        pending.push(interval);
        if pending.len() >= self.chunk {
            return self.hand_over();
        }
        Ok(())
    }

    fn defers_inserts(&self) -> bool {
        true
    }

    fn insert_chunk(&mut self, chunk: &mut IntervalChunk) -> Result<()> {
        let pending = self.pending.get_mut().unwrap_or_else(|p| p.into_inner());
        if pending.is_empty() {
            // Take the caller's vector as it is (the caller gets an empty one back).
            std::mem::swap(pending, chunk);
        } else {
            pending.append(chunk);
        }
        if pending.len() >= self.chunk {
            return self.hand_over();
        }
        Ok(())
    }

    fn finish(&mut self, end: i64, attributes: &AttributeTree) -> Result<()> {
        self.sync()?;
        self.stop_worker();
        self.check()?;
        lock(&self.inner).finish(end, attributes)
    }

    fn query_single(&self, t: i64, quark: Quark) -> Result<Option<Interval>> {
        self.sync()?;
        lock(&self.inner).query_single(t, quark)
    }

    fn query_full(&self, t: i64, out: &mut [Interval]) -> Result<()> {
        self.sync()?;
        lock(&self.inner).query_full(t, out)
    }

    fn query_range(
        &self,
        quarks: &QuarkSet,
        times: &TimeCondition,
        visit: &mut dyn FnMut(&Interval),
    ) -> Result<()> {
        self.sync()?;
        lock(&self.inner).query_range(quarks, times, visit)
    }

    fn kind(&self) -> &'static str {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{HistoryTreeBackend, InMemoryBackend};
    use crate::ht::HtConfig;
    use crate::value::StateValue;

    fn interval(start: i64, end: i64, quark: Quark, v: i32) -> Interval {
        Interval {
            start,
            end,
            quark,
            value: StateValue::Int(v),
        }
    }

    #[test]
    fn queries_see_every_interval_inserted_so_far() {
        for chunk in [1, 3, 1000] {
            let mut b = ThreadedBackend::new(Box::new(InMemoryBackend::new(0)), chunk, 2).unwrap();
            for k in 0..100 {
                b.insert(interval(k * 10, k * 10 + 9, (k % 3) as Quark, k as i32))
                    .unwrap();
                let got = b.query_single(k * 10 + 5, (k % 3) as Quark).unwrap();
                assert_eq!(got.map(|i| i.value), Some(StateValue::Int(k as i32)));
            }
            assert_eq!(b.end_time(), 999);
        }
    }

    #[test]
    fn writes_the_same_file_as_the_plain_backend() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, threaded) = (dir.path().join("p.ht"), dir.path().join("t.ht"));
        let mut attrs = AttributeTree::new();
        let quarks: Vec<Quark> = (0..20)
            .map(|i| {
                attrs
                    .quark_absolute_and_add(&["a", &i.to_string()])
                    .unwrap()
            })
            .collect();
        let mut a = HistoryTreeBackend::create(&plain, HtConfig::new(0, 3)).unwrap();
        let inner = HistoryTreeBackend::create(&threaded, HtConfig::new(0, 3)).unwrap();
        let mut b = ThreadedBackend::new(Box::new(inner), 64, 4).unwrap();
        for k in 0..20_000i64 {
            let q = quarks[(k % 20) as usize];
            let i = interval(k, k + (k % 7), q, k as i32);
            a.insert(i.clone()).unwrap();
            b.insert(i).unwrap();
        }
        a.finish(30_000, &attrs).unwrap();
        b.finish(30_000, &attrs).unwrap();
        assert_eq!(
            std::fs::read(&plain).unwrap(),
            std::fs::read(&threaded).unwrap()
        );
        assert_eq!(
            b.query_single(100, quarks[0]).unwrap(),
            a.query_single(100, quarks[0]).unwrap()
        );
    }

    #[test]
    fn a_writer_error_is_reported_by_a_later_call() {
        let mut b = ThreadedBackend::new(Box::new(InMemoryBackend::new(100)), 1, 1).unwrap();
        // Starts before the history: the in-memory backend refuses it on the writer thread.
        let err = match b.insert(interval(5, 10, 0, 1)) {
            Err(e) => e,
            Ok(()) => b.query_single(150, 0).expect_err("the error must surface"),
        };
        assert!(
            matches!(err, Error::BeforeStart { t: 5, start: 100 }),
            "{err}"
        );
    }
}
