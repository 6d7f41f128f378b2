//! A bounded queue between two pipeline threads that wakes a sleeping side only
//! when it has a run of work to do, not for every item.
//!
//! With `std::sync::mpsc::sync_channel`, a consumer faster than its producer sleeps
//! after every item and is woken for the next one: one futex wake-up (an
//! inter-processor interrupt, costly in a virtual machine) per item on the
//! producer's thread, and a core that goes idle and busy again each time. Here a
//! sleeping consumer is woken once `wake_receiver` items wait (or at once for an
//! [`Sender::send_now`] item, or when the senders are gone), and a producer that
//! found the queue full once `wake_sender` places are free: a run for the side
//! that is not the pipeline's bottleneck, 1 for the side that is (it must not
//! wait longer than needed). Same order, same items.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receiver_gone: bool,
    receiver_asleep: bool,
    senders_asleep: usize,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    readable: Condvar,
    writable: Condvar,
    capacity: usize,
    wake_receiver: usize,
    wake_sender: usize,
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while the lock is held but an allocation failure; the queue
        // is consistent even then.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending side (cloneable; the queue closes when the last one is dropped).
pub struct Sender<T>(Arc<Inner<T>>);

/// The receiving side.
pub struct Receiver<T>(Arc<Inner<T>>);

/// Why [`Sender::try_send`] did not queue the item.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    Full(T),
    Disconnected(T),
}

/// A queue of at most `capacity` items; a sleeping receiver is woken when
/// `wake_receiver` items wait, a sleeping sender when `wake_sender` places are
/// free (both clamped to `1..=capacity`).
pub fn channel<T>(
    capacity: usize,
    wake_receiver: usize,
    wake_sender: usize,
) -> (Sender<T>, Receiver<T>) {
    let capacity = capacity.max(1);
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            queue: VecDeque::with_capacity(capacity),
            senders: 1,
            receiver_gone: false,
            receiver_asleep: false,
            senders_asleep: 0,
        }),
        readable: Condvar::new(),
        writable: Condvar::new(),
        capacity,
        wake_receiver: wake_receiver.clamp(1, capacity),
        wake_sender: wake_sender.clamp(1, capacity),
    });
    (Sender(Arc::clone(&inner)), Receiver(inner))
}

impl<T> Sender<T> {
    /// Queues `item`, waiting while the queue is full; gives it back if the
    /// receiver is gone. A sleeping receiver is woken once `wake_receiver` items wait.
    pub fn send(&self, item: T) -> Result<(), T> {
        self.push(item, false)
    }

    /// [`Sender::send`], waking a sleeping receiver at once: for items that must
    /// not wait for others (a request whose answer the sender waits for, the
    /// last items before a pause).
    pub fn send_now(&self, item: T) -> Result<(), T> {
        self.push(item, true)
    }

    fn push(&self, item: T, now: bool) -> Result<(), T> {
        let inner = &*self.0;
        let mut s = inner.lock();
        while s.queue.len() >= inner.capacity && !s.receiver_gone {
            s.senders_asleep += 1;
            s = inner.writable.wait(s).unwrap_or_else(|p| p.into_inner());
            s.senders_asleep -= 1;
        }
        if s.receiver_gone {
            return Err(item);
        }
        s.queue.push_back(item);
        if s.receiver_asleep && (now || s.queue.len() >= inner.wake_receiver) {
            s.receiver_asleep = false;
            inner.readable.notify_one();
        }
        Ok(())
    }

    /// Queues `item` if there is room, waking a sleeping receiver at once.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let inner = &*self.0;
        let mut s = inner.lock();
        if s.receiver_gone {
            return Err(TrySendError::Disconnected(item));
        }
        if s.queue.len() >= inner.capacity {
            return Err(TrySendError::Full(item));
        }
        s.queue.push_back(item);
        if s.receiver_asleep {
            s.receiver_asleep = false;
            inner.readable.notify_one();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        Sender(Arc::clone(&self.0))
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.senders -= 1;
        if s.senders == 0 || (s.receiver_asleep && !s.queue.is_empty()) {
            // The receiver takes what is left, then sees the end.
            s.receiver_asleep = false;
            self.0.readable.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// The next item, waiting for one; `None` once the queue is empty and every
    /// sender is gone.
    pub fn recv(&self) -> Option<T> {
        let inner = &*self.0;
        let mut s = inner.lock();
        loop {
            if let Some(item) = s.queue.pop_front() {
                if s.senders_asleep > 0 && s.queue.len() + inner.wake_sender <= inner.capacity {
                    inner.writable.notify_one();
                }
                return Some(item);
            }
            if s.senders == 0 {
                return None;
            }
            s.receiver_asleep = true;
            s = inner.readable.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The items until every sender is gone.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.recv())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let dropped = {
            let mut s = self.0.lock();
            s.receiver_gone = true;
            self.0.writable.notify_all();
            std::mem::take(&mut s.queue)
        };
        // Items are dropped outside the lock.
        drop(dropped);
    }
}

/// Lowers the calling thread's scheduling priority by `steps` nice levels (Linux,
/// where nice is per thread; elsewhere nothing). For the threads around a
/// pipeline's slowest stage: when three threads want two cores, a fair scheduler
/// shares both evenly, the slow stage falls behind, the others fill or drain their
/// queues and sleep, and a core idles while it catches up alone. Niced, they give
/// it a core of its own and run in what is left. Best effort: an error changes
/// nothing but the priority.
pub fn lower_thread_priority(steps: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's id; no memory is shared.
        unsafe {
            let tid = libc::gettid() as libc::id_t;
            *libc::__errno_location() = 0;
            let now = libc::getpriority(libc::PRIO_PROCESS, tid);
            if *libc::__errno_location() == 0 {
                libc::setpriority(libc::PRIO_PROCESS, tid, (now + steps).min(19));
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = steps;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_item_arrives_in_order_whatever_the_sizes() {
        for (capacity, wake_receiver, wake_sender) in [
            (1, 1, 1),
            (2, 1, 2),
            (4, 3, 1),
            (8, 8, 8),
            (16, 4, 1),
            (3, 99, 0),
        ] {
            let (tx, rx) = channel::<u32>(capacity, wake_receiver, wake_sender);
            let producer = std::thread::spawn(move || {
                for k in 0..20_000 {
                    tx.send(k).unwrap();
                }
            });
            let got: Vec<u32> = rx.iter().collect();
            producer.join().unwrap();
            assert_eq!(
                got,
                (0..20_000).collect::<Vec<_>>(),
                "{capacity}/{wake_receiver}/{wake_sender}"
            );
        }
    }

    #[test]
    fn a_sleeping_receiver_gets_an_urgent_item_and_the_end_at_once() {
        let (tx, rx) = channel::<u32>(8, 8, 1);
        let consumer = std::thread::spawn(move || {
            let first = rx.recv();
            let second = rx.recv();
            (first, second)
        });
        std::thread::sleep(Duration::from_millis(50));
        // One item of eight needed to wake it: it waits unless sent now.
        tx.send_now(7).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(tx);
        assert_eq!(consumer.join().unwrap(), (Some(7), None));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn lowering_the_priority_touches_only_the_calling_thread() {
        // SAFETY: reads the priority of the calling thread.
        let nice =
            || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let here = nice();
        let there = std::thread::spawn(move || {
            let before = nice();
            lower_thread_priority(2);
            (before, nice())
        })
        .join()
        .unwrap();
        assert_eq!(there, (here, (here + 2).min(19)));
        assert_eq!(nice(), here);
    }

    #[test]
    fn senders_learn_that_the_receiver_is_gone() {
        let (tx, rx) = channel::<u32>(2, 1, 1);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        let blocked = {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send(4))
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(rx);
        assert_eq!(blocked.join().unwrap(), Err(4));
        assert_eq!(tx.send(5), Err(5));
        assert_eq!(tx.try_send(6), Err(TrySendError::Disconnected(6)));
    }
}
