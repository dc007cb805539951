//! `sync::channel`/`bounded`: across OS threads and hubs, disconnection,
//! rendezvous, cancellation (no value lost or duplicated, no wake-up
//! stranded on a cancelled waiter), drops, and a model-based property test.

mod util;

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use proptest::prelude::*;
use sylvan::sync::{
    Receiver, RecvError, SendError, Sender, TryRecvError, TrySendError, bounded, channel,
};
use sylvan::{Cancelled, GreenThread, JoinError};

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn halves_are_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Sender<Vec<u8>>>();
    is_send_sync::<Receiver<Vec<u8>>>();
    is_send_sync::<SendError<Vec<u8>>>();
    is_send_sync::<RecvError>();
    is_send_sync::<sylvan::sync::RecvIntoIter<u8>>();
    is_send_sync::<sylvan::sync::RecvIter<'static, u8>>();
}

/// One million messages from a plain OS thread to another (each its own
/// hub's root), in order, none lost.
fn stress(cap: Option<usize>, n: u64) {
    let (tx, rx) = match cap {
        Some(c) => bounded(c),
        None => channel(),
    };
    let producer = thread::spawn(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    });
    let mut expect = 0;
    while let Ok(v) = rx.recv() {
        assert_eq!(v, expect);
        expect += 1;
    }
    assert_eq!(expect, n);
    producer.join().unwrap();
}

#[test]
fn stress_unbounded_one_million_across_two_threads() {
    stress(None, 1_000_000);
}

#[test]
fn stress_bounded_one_million_across_two_threads() {
    stress(Some(128), 1_000_000);
}

#[test]
fn stress_rendezvous_across_two_threads() {
    stress(Some(0), 5_000);
}

/// Several producer threads, several consumer green threads on two hubs:
/// every value is received exactly once.
#[test]
fn mpmc_across_hubs_delivers_each_value_once() {
    const PER: u64 = 50_000;
    let (tx, rx) = bounded::<u64>(64);
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..PER {
                    tx.send(p * PER + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || {
                // Three green threads receive on this hub.
                let gs: Vec<_> = (0..3)
                    .map(|_| {
                        let rx = rx.clone();
                        sylvan::spawn(move || {
                            let mut got = Vec::new();
                            while let Ok(v) = rx.recv() {
                                got.push(v);
                            }
                            got
                        })
                    })
                    .collect();
                gs.into_iter()
                    .flat_map(|g| g.join().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    drop(rx);
    for p in producers {
        p.join().unwrap();
    }
    let mut all: Vec<u64> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..3 * PER).collect::<Vec<_>>());
}

#[test]
fn close_from_either_side_refuses_senders_and_drains_receivers() {
    for from_receiver in [false, true] {
        let (tx, rx) = bounded(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let tx2 = tx.clone();
        let blocked = sylvan::spawn(move || tx2.send(3));
        sylvan::yield_now();
        assert!(!blocked.is_finished());
        if from_receiver {
            rx.close();
        } else {
            tx.close();
        }
        let back = blocked.join().unwrap().unwrap_err();
        assert!(back.is_disconnected());
        assert_eq!(back.into_inner(), 3);
        assert!(matches!(tx.try_send(4), Err(TrySendError::Disconnected(4))));
        assert!(rx.is_disconnected() && tx.is_disconnected());
        assert_eq!(rx.iter().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(rx.recv(), Err(RecvError::Disconnected));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }
}

#[test]
fn close_wakes_receivers_on_other_threads() {
    let (tx, rx) = channel::<u8>();
    let (ready_tx, ready_rx) = channel();
    let t = std::thread::spawn(move || {
        ready_tx.send(()).unwrap();
        rx.iter().count()
    });
    ready_rx.recv().unwrap();
    tx.send(7).unwrap();
    tx.close(); // `tx` is still alive: only the close ends the iteration
    assert_eq!(t.join().unwrap(), 1);
    drop(tx);
}

#[test]
fn rendezvous_close_withdraws_the_blocked_senders_offer() {
    let (tx, rx) = bounded(0);
    let s = sylvan::spawn(move || tx.send("x"));
    sylvan::yield_now();
    assert!(!s.is_finished());
    rx.close();
    // The woken sender withdraws its offer before anyone takes it.
    assert_eq!(s.join().unwrap().unwrap_err().into_inner(), "x");
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
}

#[test]
fn receiver_iteration_ends_at_cancellation_without_losing_values() {
    sylvan::time::pause();
    let (tx, rx) = channel();
    let r = sylvan::timeout(Duration::from_secs(1), || rx.iter().count());
    assert!(
        r.is_err(),
        "the deadline ended the iteration; timeout says so"
    );
    let rx2 = rx.clone();
    let g = sylvan::spawn(move || rx2.iter().next());
    sylvan::yield_now();
    g.kill();
    assert_eq!(g.join().unwrap(), None);
    tx.send(5).unwrap();
    drop(tx);
    assert_eq!(rx.into_iter().collect::<Vec<_>>(), vec![5]);
}

#[test]
fn recv_drains_then_reports_disconnection() {
    let (tx, rx) = channel();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn blocked_recv_is_woken_by_the_last_sender_leaving_another_thread() {
    let (tx, rx) = channel::<u8>();
    let tx2 = tx.clone();
    let (ready_tx, ready_rx) = channel::<()>();
    let t = thread::spawn(move || {
        ready_rx.recv().unwrap();
        drop(tx);
        drop(tx2);
    });
    let g = sylvan::spawn(move || rx.recv());
    sylvan::yield_now(); // g is parked in recv now
    ready_tx.send(()).unwrap();
    assert_eq!(g.join().unwrap(), Err(RecvError::Disconnected));
    t.join().unwrap();
}

#[test]
fn blocked_senders_get_their_values_back_when_receivers_leave() {
    for cap in [0, 1] {
        let (tx, rx) = bounded(cap);
        if cap == 1 {
            tx.send(0).unwrap();
        }
        let senders: Vec<_> = (1..=3)
            .map(|v| {
                let tx = tx.clone();
                sylvan::spawn(move || tx.send(v))
            })
            .collect();
        sylvan::yield_now();
        assert!(senders.iter().all(|g| !g.is_finished()), "all wait");
        let rx2 = rx.clone();
        drop(rx);
        sylvan::yield_now();
        assert!(
            senders.iter().all(|g| !g.is_finished()),
            "one receiver left"
        );
        drop(rx2);
        for (v, g) in (1..=3).zip(senders) {
            match g.join().unwrap() {
                Err(SendError::Disconnected(back)) => assert_eq!(back, v),
                other => panic!("cap {cap}: {other:?}"),
            }
        }
        assert!(tx.is_disconnected());
        assert!(matches!(tx.try_send(9), Err(TrySendError::Disconnected(9))));
    }
}

#[test]
fn rendezvous_send_returns_only_once_taken() {
    let (tx, rx) = bounded(0);
    let g = sylvan::spawn(move || tx.send("x"));
    sylvan::yield_now();
    sylvan::yield_now();
    assert!(!g.is_finished(), "no receiver yet");
    assert_eq!(rx.len(), 1, "one sender is offering");
    assert_eq!(rx.recv(), Ok("x"));
    g.join().unwrap().unwrap();
}

#[test]
fn rendezvous_try_send_needs_a_waiting_receiver() {
    let (tx, rx) = bounded(0);
    assert!(tx.try_send(1).unwrap_err().is_full());
    let g = sylvan::spawn(move || rx.recv());
    sylvan::yield_now();
    tx.try_send(2).unwrap();
    assert_eq!(g.join().unwrap(), Ok(2));
}

#[test]
fn cancelled_send_hands_the_value_back() {
    sylvan::time::pause();
    for cap in [0, 1] {
        let (tx, rx) = bounded(cap);
        if cap == 1 {
            tx.send(0).unwrap();
        }
        // By timeout.
        let mut back = None;
        let r = sylvan::timeout(Duration::from_secs(1), || {
            if let Err(e) = tx.send(1) {
                assert!(e.cancelled().unwrap().is_timed_out());
                back = Some(e.into_inner());
            }
        });
        assert!(r.is_err());
        assert_eq!(back, Some(1));
        // By kill.
        let tx2 = tx.clone();
        let g = sylvan::spawn(move || tx2.send(2));
        sylvan::yield_now();
        g.kill();
        match g.join().unwrap() {
            Err(SendError::Cancelled(2, Cancelled::Killed)) => {}
            other => panic!("{other:?}"),
        }
        // Nothing was left behind.
        assert_eq!(rx.len(), usize::from(cap == 1));
        if cap == 1 {
            assert_eq!(rx.try_recv(), Ok(0));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }
}

#[test]
fn cancelled_recv_leaves_the_value_for_the_next_receiver() {
    sylvan::time::pause();
    let (tx, rx) = channel::<u8>();
    assert!(sylvan::timeout(Duration::from_secs(1), || rx.recv()).is_err());
    let rx2 = rx.clone();
    let g = sylvan::spawn(move || rx2.recv());
    sylvan::yield_now();
    g.kill();
    assert_eq!(
        g.join().unwrap(),
        Err(RecvError::Cancelled(Cancelled::Killed))
    );
    tx.send(5).unwrap();
    assert_eq!(rx.recv(), Ok(5));
}

/// A receiver is cancelled (its wake-up is queued) and, before it runs, a
/// sender picks it as the one to wake: the value must reach the next
/// receiver instead of being stranded.
#[test]
fn a_wakeup_spent_on_a_cancelled_receiver_is_passed_on() {
    sylvan::time::pause();
    let (tx, rx) = channel::<u8>();
    let (rx1, rx2) = (rx.clone(), rx.clone());
    let r1 = sylvan::spawn(move || rx1.recv());
    let r2 = sylvan::spawn(move || rx2.recv());
    sylvan::yield_now(); // both parked, r1 first
    r1.kill(); // r1 is queued to run, still registered
    tx.send(7).unwrap(); // picks r1
    let got = sylvan::timeout(HOUR, || r2.join()).expect("r2 was woken");
    assert_eq!(got.unwrap(), Ok(7));
    assert_eq!(
        r1.join().unwrap(),
        Err(RecvError::Cancelled(Cancelled::Killed))
    );
}

#[test]
fn a_wakeup_spent_on_a_cancelled_sender_is_passed_on() {
    sylvan::time::pause();
    let (tx, rx) = bounded::<u8>(1);
    tx.send(0).unwrap();
    let (tx1, tx2) = (tx.clone(), tx.clone());
    let s1 = sylvan::spawn(move || tx1.send(1));
    let s2 = sylvan::spawn(move || tx2.send(2));
    sylvan::yield_now(); // both wait for room, s1 first
    s1.kill();
    assert_eq!(rx.recv(), Ok(0)); // makes room, picks s1
    sylvan::timeout(HOUR, || s2.join())
        .expect("s2 was woken")
        .unwrap()
        .unwrap();
    assert!(matches!(
        s1.join().unwrap(),
        Err(SendError::Cancelled(1, _))
    ));
    assert_eq!(rx.recv(), Ok(2));
}

/// A green thread parked in `recv` when its hub's thread exits is leaked
/// (never resumed); its waiter entry must not swallow a later wake-up.
#[test]
fn receivers_unwound_at_thread_exit_leave_the_channel() {
    sylvan::time::pause();
    let (tx, rx) = channel::<u8>();
    let rx1 = rx.clone();
    thread::spawn(move || {
        drop(sylvan::spawn(move || rx1.recv()));
        sylvan::yield_now(); // parked, first in line
    })
    .join()
    .unwrap();
    let g = sylvan::spawn(move || rx.recv());
    sylvan::yield_now();
    tx.send(3).unwrap();
    assert_eq!(sylvan::timeout(HOUR, || g.join()).unwrap().unwrap(), Ok(3));
}

#[test]
fn buffered_values_are_dropped_with_the_last_receiver() {
    let drops = util::SyncDropCounter::default();
    let (tx, rx) = channel();
    for _ in 0..5 {
        tx.send(drops.track()).unwrap();
    }
    let rx2 = rx.clone();
    drop(rx);
    assert_eq!(drops.dropped(), 0);
    drop(rx2);
    assert_eq!(drops.dropped(), 5);
    let back = tx.send(drops.track()).unwrap_err().into_inner();
    drop(back);
    assert_eq!(drops.dropped(), 6);

    let (tx, rx) = bounded(3);
    tx.send(drops.track()).unwrap();
    drop(rx);
    drop(tx);
    assert_eq!(drops.dropped(), 7);
    let (tx, rx) = channel();
    tx.send(drops.track()).unwrap();
    drop(tx);
    drop(rx);
    assert_eq!(drops.dropped(), 8);
}

/// Cancellation racing with delivery across OS threads: receivers with
/// short real-time deadlines on one hub, senders with short deadlines on
/// another, retrying with what they get back. Whatever the timing, every
/// value arrives exactly once.
#[test]
fn cancellation_racing_across_threads_loses_nothing() {
    const N: u64 = 20_000;
    let (tx, rx) = bounded::<u64>(4);
    let next = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..2)
        .map(|_| {
            let (tx, next) = (tx.clone(), next.clone());
            thread::spawn(move || {
                let gs: Vec<_> = (0..4)
                    .map(|k| {
                        let (tx, next) = (tx.clone(), next.clone());
                        sylvan::spawn(move || {
                            let mut cancels = 0u64;
                            loop {
                                let v = next.fetch_add(1, Ordering::Relaxed);
                                if v >= N {
                                    return cancels;
                                }
                                let mut held = Some(v);
                                while let Some(v) = held.take() {
                                    let d = Duration::from_micros(1 + (v + k) % 50);
                                    let r = sylvan::timeout(d, || {
                                        tx.send(v).map_err(|e| e.into_inner())
                                    });
                                    match r {
                                        Ok(Ok(())) => {}
                                        Ok(Err(back)) => {
                                            cancels += 1;
                                            held = Some(back);
                                        }
                                        // The scope fired: the send's error
                                        // (and value) was dropped with the
                                        // closure's result, so resend it.
                                        Err(_) => {
                                            cancels += 1;
                                            held = Some(v);
                                        }
                                    }
                                }
                            }
                        })
                    })
                    .collect();
                gs.into_iter().map(|g| g.join().unwrap()).sum::<u64>()
            })
        })
        .collect();
    drop(tx);
    let consumer = thread::spawn(move || {
        let done = Rc::new(Cell::new(false));
        let gs: Vec<_> = (0..4u64)
            .map(|k| {
                let (rx, done) = (rx.clone(), done.clone());
                sylvan::spawn(move || {
                    let mut got = Vec::new();
                    let mut i = k;
                    while !done.get() {
                        i += 1;
                        let d = Duration::from_micros(1 + i % 40);
                        match sylvan::timeout(d, || rx.recv()) {
                            Ok(Ok(v)) => got.push(v),
                            Ok(Err(RecvError::Disconnected)) => done.set(true),
                            Ok(Err(RecvError::Cancelled(_))) | Err(_) => {}
                            Ok(Err(e)) => panic!("{e}"),
                        }
                    }
                    got
                })
            })
            .collect();
        gs.into_iter()
            .flat_map(|g| g.join().unwrap())
            .collect::<Vec<u64>>()
    });
    let cancels: u64 = producers.into_iter().map(|p| p.join().unwrap()).sum();
    let got = consumer.join().unwrap();
    let unique: HashSet<u64> = got.iter().copied().collect();
    assert_eq!(
        got.len() as u64,
        N,
        "no value duplicated or lost ({cancels} send cancels)"
    );
    assert_eq!(unique.len() as u64, N);
}

#[derive(Debug, Clone)]
enum Op {
    Send {
        timeout_s: Option<u8>,
    },
    Recv {
        timeout_s: Option<u8>,
    },
    TrySend,
    TryRecv,
    Kill(usize),
    Advance(u8),
    Yield,
    /// Close from the sending (false) or receiving (true) side.
    Close(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => proptest::option::of(1u8..4).prop_map(|t| Op::Send { timeout_s: t }),
        3 => proptest::option::of(1u8..4).prop_map(|t| Op::Recv { timeout_s: t }),
        1 => Just(Op::TrySend),
        1 => Just(Op::TryRecv),
        2 => (0usize..16).prop_map(Op::Kill),
        2 => (1u8..3).prop_map(Op::Advance),
        2 => Just(Op::Yield),
        1 => any::<bool>().prop_map(Op::Close),
    ]
}

enum Actor {
    Sender(u32, GreenThread<Result<(), u32>>),
    Receiver(GreenThread<Result<u32, RecvError>>),
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random blocking sends and receives, kills and timeouts on one hub,
    /// for unbounded, bounded and rendezvous channels: every value is
    /// received once or handed back once, and a bounded channel never
    /// holds more than its capacity.
    #[test]
    fn channel_conserves_values(cap in proptest::option::of(0usize..4), ops in proptest::collection::vec(op(), 1..60)) {
        sylvan::time::pause();
        let (tx, rx) = match cap {
            Some(c) => bounded::<u32>(c),
            None => channel::<u32>(),
        };
        let mut actors = Vec::new();
        let mut next = 0u32;
        let (mut offered, mut received, mut handed_back) = (Vec::new(), Vec::new(), Vec::new());
        for op in ops {
            match op {
                Op::Send { timeout_s } => {
                    next += 1;
                    let (tx, v) = (tx.clone(), next);
                    offered.push(v);
                    let g = sylvan::spawn(move || {
                        let send = || tx.send(v).map_err(|e| e.into_inner());
                        match timeout_s {
                            Some(s) => sylvan::timeout(Duration::from_secs(s.into()), send).unwrap_or(Err(v)),
                            None => send(),
                        }
                    });
                    actors.push(Actor::Sender(v, g));
                }
                Op::Recv { timeout_s } => {
                    let rx = rx.clone();
                    let g = sylvan::spawn(move || match timeout_s {
                        Some(s) => sylvan::timeout(Duration::from_secs(s.into()), || rx.recv())
                            .unwrap_or(Err(RecvError::Cancelled(Cancelled::Killed))),
                        None => rx.recv(),
                    });
                    actors.push(Actor::Receiver(g));
                }
                Op::TrySend => {
                    next += 1;
                    offered.push(next);
                    if let Err(e) = tx.try_send(next) {
                        handed_back.push(e.into_inner());
                    }
                }
                Op::TryRecv => received.extend(rx.try_recv().ok()),
                Op::Kill(i) => {
                    if !actors.is_empty() {
                        match &actors[i % actors.len()] {
                            Actor::Sender(_, g) => g.kill(),
                            Actor::Receiver(g) => g.kill(),
                        }
                    }
                }
                Op::Advance(s) => sylvan::time::advance(Duration::from_secs(s.into())),
                Op::Yield => sylvan::yield_now(),
                Op::Close(false) => tx.close(),
                Op::Close(true) => rx.close(),
            }
            if let Some(c) = cap.filter(|&c| c > 0) {
                prop_assert!(rx.len() <= c, "len {} > cap {}", rx.len(), c);
            }
        }
        if tx.is_disconnected() {
            // Closed: every blocked sender and receiver was woken; none
            // may still be parked (a lost wake-up).
            sylvan::yield_now();
            sylvan::yield_now();
            for (i, a) in actors.iter().enumerate() {
                let done = match a {
                    Actor::Sender(_, g) => g.is_finished(),
                    Actor::Receiver(g) => g.is_finished(),
                };
                prop_assert!(done, "actor {} still blocked after close", i);
            }
            prop_assert!(tx.try_send(0).unwrap_err().is_disconnected());
        }
        for a in &actors {
            match a {
                Actor::Sender(_, g) => g.kill(),
                Actor::Receiver(g) => g.kill(),
            }
        }
        for a in actors {
            match a {
                Actor::Sender(v, g) => match g.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(back)) => {
                        prop_assert_eq!(back, v);
                        handed_back.push(back);
                    }
                    Err(JoinError::Killed) => handed_back.push(v),
                    Err(e) => panic!("{e}"),
                },
                Actor::Receiver(g) => match g.join() {
                    Ok(r) => received.extend(r.ok()),
                    Err(JoinError::Killed) => {}
                    Err(e) => panic!("{e}"),
                },
            }
        }
        while let Ok(v) = rx.try_recv() {
            received.push(v);
        }
        let mut all: Vec<u32> = received.iter().chain(handed_back.iter()).copied().collect();
        all.sort_unstable();
        offered.sort_unstable();
        prop_assert_eq!(all, offered, "every value is received once or handed back once");
    }
}
