//! Admission control for the expensive answers (time-graph states): at most
//! `slots` of them are computed and rendered to JSON at once, the others wait
//! their turn in arrival order. The slot is given back once the answer is
//! rendered, before it is sent, so a slow reader holds no slot.
//!
//! Why: without a bound, every states request runs on its own blocking thread
//! and they all progress together (processor sharing), so with 64 clients on 2
//! cores any answer takes ~64 times its own cost and a slow one (a row-cache
//! miss) drags many fast ones with it. With a FIFO queue in front of a few
//! slots, a request's latency is the sum of the answers ahead of it (variance
//! averages out), and at most `slots` answers are being assembled at once
//! (rendered answers waiting for their client are bounded by the connections,
//! one answer each). The queue is tokio's fair semaphore: a waiter dropped
//! while queued (its client went away) leaves the queue and holds nothing; an
//! answer already being computed runs to its end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Environment variable overriding the default number of slots.
pub const SLOTS_ENV: &str = "SEXTANT_COMPUTE_SLOTS";

/// A FIFO gate with a fixed number of slots.
#[derive(Debug)]
pub struct Admission {
    slots: usize,
    semaphore: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
}

/// A slot, given back when dropped (wherever the answer ends: rendered, failed,
/// or its connection closed).
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

/// Counts a waiter while it is queued, including when it is dropped there.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    /// A gate of `slots` slots (at least one).
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        Admission {
            slots,
            semaphore: Arc::new(Semaphore::new(slots)),
            queued: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The default: `SEXTANT_COMPUTE_SLOTS` when set to a positive number,
    /// else the number of CPUs (an answer is CPU work: more slots than cores
    /// only brings back processor sharing).
    pub fn default_slots() -> usize {
        std::env::var(SLOTS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Waits for a slot, behind every request that asked before.
    pub async fn admit(&self) -> Slot {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let _queued = Queued(&self.queued);
        // The semaphore is never closed.
        let permit = self
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the admission semaphore is never closed");
        Slot(permit)
    }

    /// Slots in total.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Requests waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn slots_are_fifo_and_given_back_when_dropped() {
        let gate = Arc::new(Admission::new(1));
        assert_eq!((gate.slots(), gate.available(), gate.queued()), (1, 1, 0));
        let first = gate.admit().await;
        assert_eq!(gate.available(), 0);
        // Three waiters in order; the second is dropped while queued.
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..3 {
            let (g, o) = (gate.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let slot = g.admit().await;
                o.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(slot);
            }));
            // Queued in this order.
            while gate.queued() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        waiters[1].abort();
        while gate.queued() != 2 {
            tokio::task::yield_now().await;
        }
        drop(first);
        for w in waiters {
            let _ = w.await;
        }
        assert_eq!(*order.lock().unwrap(), [0, 2]);
        assert_eq!((gate.available(), gate.queued()), (1, 0));
        // Zero slots would block everything: at least one.
        assert_eq!(Admission::new(0).slots(), 1);
    }
}
