//! Stress tests of `sht::handoff`: every item delivered once and in order, for
//! small and large runs, with either side closing mid-stream, and no hang (each
//! scenario runs on its own threads and fails after a time limit).

use std::sync::mpsc;
use std::time::Duration;

use sht::handoff::{channel, TrySendError};

const LIMIT: Duration = Duration::from_secs(20);

/// Runs `f` on a thread; fails the test if it does not finish within [`LIMIT`].
fn with_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(LIMIT) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what}: no progress in {LIMIT:?} (hang)"),
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const SHAPES: [(usize, usize, usize); 7] = [
    (1, 1, 1),
    (2, 2, 1),
    (3, 1, 3),
    (4, 4, 4),
    (8, 2, 1),
    (16, 16, 1),
    (64, 16, 1),
];

/// Runs of 1 to 3 items and of up to three queues' worth, with pauses between
/// some of them; the last item of some runs is urgent.
#[test]
fn every_item_once_and_in_order_in_runs() {
    for (i, &(cap, wr, ws)) in SHAPES.iter().enumerate() {
        with_deadline(&format!("shape {cap}/{wr}/{ws}"), move || {
            let (tx, rx) = channel::<u64>(cap, wr, ws);
            let producer = std::thread::spawn(move || {
                let mut rng = Rng(0x1234_5678 + i as u64);
                let mut next = 0u64;
                while next < 20_000 {
                    let run = if rng.below(2) == 0 {
                        1 + rng.below(3)
                    } else {
                        1 + rng.below(3 * cap as u64)
                    };
                    for k in 0..run {
                        if k + 1 == run && rng.below(4) == 0 {
                            tx.send_now(next).unwrap();
                        } else {
                            tx.send(next).unwrap();
                        }
                        next += 1;
                    }
                    if rng.below(64) == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                next
            });
            let mut expected = 0u64;
            let mut rng = Rng(99 + i as u64);
            while let Some(v) = rx.recv() {
                assert_eq!(v, expected);
                expected += 1;
                if rng.below(256) == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            assert_eq!(producer.join().unwrap(), expected);
        });
    }
}

/// A sender waiting for an answer to its urgent item gets it however few items
/// wait (the request/answer pattern of the pipeline and the threaded backend).
#[test]
fn an_urgent_item_is_delivered_without_more_items() {
    for &(cap, wr, ws) in &SHAPES {
        with_deadline(&format!("shape {cap}/{wr}/{ws}"), move || {
            let (tx, rx) = channel::<(u64, bool)>(cap, wr, ws);
            let (ack_tx, ack_rx) = mpsc::channel::<u64>();
            let consumer = std::thread::spawn(move || {
                let mut expected = 0;
                while let Some((v, urgent)) = rx.recv() {
                    assert_eq!(v, expected);
                    expected += 1;
                    if urgent {
                        ack_tx.send(v).unwrap();
                    }
                }
                expected
            });
            let mut rng = Rng(7);
            let mut next = 0;
            for _ in 0..500 {
                for _ in 0..rng.below(2 * cap as u64) {
                    tx.send((next, false)).unwrap();
                    next += 1;
                }
                tx.send_now((next, true)).unwrap();
                assert_eq!(ack_rx.recv().unwrap(), next);
                next += 1;
            }
            drop(tx);
            assert_eq!(consumer.join().unwrap(), next);
        });
    }
}

/// The receiver goes away mid-stream: the sender (perhaps waiting on a full
/// queue) gets its item back, and what was received is a prefix in order.
#[test]
fn receiver_dropped_mid_stream() {
    for (i, &(cap, wr, ws)) in SHAPES.iter().enumerate() {
        for stop_after in [0u64, 1, 5, 1000] {
            with_deadline(
                &format!("shape {cap}/{wr}/{ws} stop {stop_after}"),
                move || {
                    let (tx, rx) = channel::<u64>(cap, wr, ws);
                    let producer = std::thread::spawn(move || {
                        let mut rng = Rng(3 + i as u64);
                        for k in 0.. {
                            let r = if rng.below(3) == 0 {
                                tx.send_now(k)
                            } else {
                                tx.send(k)
                            };
                            if let Err(back) = r {
                                assert_eq!(back, k, "the refused item is given back");
                                // Closed for good, also for try_send.
                                assert_eq!(
                                    tx.try_send(k + 1),
                                    Err(TrySendError::Disconnected(k + 1))
                                );
                                return k;
                            }
                        }
                        unreachable!()
                    });
                    let mut got = 0;
                    while got < stop_after {
                        assert_eq!(rx.recv(), Some(got));
                        got += 1;
                    }
                    drop(rx);
                    let refused = producer.join().unwrap();
                    assert!(refused >= got, "refused {refused} after {got} received");
                },
            );
        }
    }
}

/// The sender goes away mid-stream (with items queued, and with the receiver
/// asleep waiting for a run that never fills): the receiver gets every queued
/// item, then the end.
#[test]
fn sender_dropped_mid_stream() {
    for &(cap, wr, ws) in &SHAPES {
        for count in [0u64, 1, wr as u64 - 1, cap as u64, 3 * cap as u64 + 1] {
            with_deadline(&format!("shape {cap}/{wr}/{ws} count {count}"), move || {
                let (tx, rx) = channel::<u64>(cap, wr, ws);
                let consumer = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
                // Let the receiver fall asleep first, sometimes.
                if count % 2 == 1 {
                    std::thread::sleep(Duration::from_millis(5));
                }
                for k in 0..count {
                    tx.send(k).unwrap();
                }
                drop(tx);
                assert_eq!(consumer.join().unwrap(), (0..count).collect::<Vec<_>>());
            });
        }
    }
}

/// Items of values that own memory are dropped exactly once whichever side closes.
#[test]
fn queued_items_are_dropped_once() {
    use std::sync::Arc;
    with_deadline("drops", || {
        let token = Arc::new(());
        let (tx, rx) = channel::<Arc<()>>(8, 4, 1);
        for _ in 0..8 {
            tx.send(Arc::clone(&token)).unwrap();
        }
        assert_eq!(Arc::strong_count(&token), 9);
        drop(rx.recv());
        drop(rx);
        assert_eq!(Arc::strong_count(&token), 1);
        assert!(tx.send(Arc::clone(&token)).is_err());
        assert_eq!(Arc::strong_count(&token), 1);
    });
}

/// Two cloned senders both wait on a full queue; the receiver then takes
/// everything. Both must be woken.
#[test]
fn two_blocked_senders_are_both_woken() {
    with_deadline("two blocked senders", || {
        let (tx, rx) = channel::<u32>(1, 1, 1);
        tx.send(0).unwrap();
        let a = {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send(1))
        };
        let b = {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send(2))
        };
        // Both are now waiting on the full queue.
        std::thread::sleep(Duration::from_millis(100));
        drop(tx);
        let mut got: Vec<u32> = rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
        assert!(a.join().unwrap().is_ok() && b.join().unwrap().is_ok());
    });
}

/// Several cloned senders: every sender's items arrive once, in its order.
#[test]
fn many_senders_every_item_once_in_order() {
    for &(cap, wr, ws) in &SHAPES {
        with_deadline(&format!("shape {cap}/{wr}/{ws}"), move || {
            let (tx, rx) = channel::<(usize, u32)>(cap, wr, ws);
            let producers: Vec<_> = (0..4)
                .map(|p| {
                    let tx = tx.clone();
                    std::thread::spawn(move || {
                        for k in 0..5_000 {
                            tx.send((p, k)).unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);
            let mut next = [0u32; 4];
            for (p, k) in rx.iter() {
                assert_eq!(k, next[p], "producer {p}");
                next[p] += 1;
            }
            for p in producers {
                p.join().unwrap();
            }
            assert_eq!(next, [5_000; 4]);
        });
    }
}
