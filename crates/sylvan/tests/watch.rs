//! `sync::Watch`: latest value plus version, `changed` waits and wakes,
//! closing, cancellation, dropped receivers cost nothing, and a
//! model-based property test under random sends, subscribes, drops, kills
//! and timeouts.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use sylvan::sync::{Watch, WatchError, WatchReceiver};
use sylvan::{Cancelled, GreenThread};

#[test]
fn watch_types_are_hub_local() {
    // `Watch` and its receiver are `Rc` handles for one hub: not `Send`.
    fn is_debug<T: std::fmt::Debug>() {}
    is_debug::<Watch<u8>>();
    is_debug::<WatchReceiver<u8>>();
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<WatchError>();
    // A compile-time !Send check: this only type-checks for !Send types.
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
    <Watch<u8> as AmbiguousIfSend<_>>::some_item();
    <WatchReceiver<u8> as AmbiguousIfSend<_>>::some_item();
}

#[test]
fn changed_waits_for_a_send_and_sees_the_latest_value() {
    let w = Watch::new(0);
    let mut rx = w.subscribe();
    let waiter = sylvan::spawn(move || {
        rx.changed()?;
        let v = *rx.borrow_and_update();
        Ok::<_, WatchError>(v)
    });
    sylvan::yield_now();
    assert!(!waiter.is_finished(), "no send yet: it waits");
    w.send(1);
    w.send(2); // before the waiter runs: it sees only the latest
    assert_eq!(waiter.join().unwrap(), Ok(2));
}

#[test]
fn every_waiting_receiver_is_woken() {
    let w = Watch::new("a");
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let mut rx = w.subscribe();
            sylvan::spawn(move || rx.changed().map(|_| *rx.borrow()))
        })
        .collect();
    sylvan::yield_now();
    w.send("b");
    for g in waiters {
        assert_eq!(g.join().unwrap(), Ok("b"));
    }
}

#[test]
fn dropping_the_last_sender_ends_waiting_but_not_an_unseen_change() {
    let w = Watch::new(1);
    let w2 = w.clone();
    let mut rx = w.subscribe();
    let mut waiting = w.subscribe();
    let waiter = sylvan::spawn(move || waiting.changed());
    sylvan::yield_now();
    w.send(2);
    drop(w);
    drop(w2);
    assert_eq!(waiter.join().unwrap(), Ok(()), "the send before closing");
    assert_eq!(rx.changed(), Ok(()), "an unseen change comes first");
    assert_eq!(*rx.borrow(), 2);
    assert_eq!(rx.changed(), Err(WatchError::Closed));
    assert!(rx.is_closed());
}

#[test]
fn a_waiting_receiver_is_woken_when_the_sender_goes() {
    let w = Watch::new(());
    let mut rx = w.subscribe();
    let waiter = sylvan::spawn(move || rx.changed());
    sylvan::yield_now();
    drop(w);
    assert_eq!(waiter.join().unwrap(), Err(WatchError::Closed));
}

#[test]
fn a_cancelled_wait_keeps_the_change_for_the_next_call() {
    sylvan::time::pause();
    let w = Watch::new(0);
    let mut rx = w.subscribe();
    let r = sylvan::timeout(Duration::from_secs(1), || rx.changed());
    assert!(r.is_err(), "timed out: nothing was sent");
    w.send(1);
    assert_eq!(rx.changed(), Ok(()));
    assert_eq!(*rx.borrow(), 1);

    let mut rx2 = w.subscribe();
    let killed = sylvan::spawn(move || rx2.changed());
    sylvan::yield_now();
    killed.kill();
    assert_eq!(
        killed.join().unwrap(),
        Err(WatchError::Cancelled(Cancelled::Killed))
    );
}

/// The leak this type exists to prevent: subscribers that come and go
/// leave nothing behind, also those that were waiting when cancelled.
#[test]
fn dropped_receivers_cost_nothing() {
    sylvan::time::pause();
    let w = Watch::new(0u64);
    for _ in 0..100_000 {
        drop(w.subscribe());
    }
    assert_eq!(w.receiver_count(), 0);
    let keep = w.subscribe();
    for _ in 0..100 {
        let waiters: Vec<_> = (0..100)
            .map(|_| {
                let mut rx = w.subscribe();
                sylvan::spawn(move || rx.changed())
            })
            .collect();
        sylvan::yield_now();
        for g in &waiters {
            g.kill();
        }
        for g in waiters {
            let _ = g.join();
        }
    }
    assert_eq!(w.receiver_count(), 1);
    w.send(1);
    assert!(keep.has_changed());
}

#[test]
fn send_replace_hands_back_the_old_value() {
    let w = Watch::new(String::from("a"));
    let held = w.borrow();
    assert_eq!(w.send_replace(String::from("b")), "a");
    assert_eq!(*held, "a", "a held snapshot is not disturbed");
    assert_eq!(w.send_replace(String::from("c")), "b");
}

#[derive(Debug, Clone)]
enum Op {
    Send(u8),
    SendReplace(u8),
    Subscribe,
    Drop(usize),
    BorrowAndUpdate(usize),
    Wait { timeout_s: Option<u8> },
    Kill(usize),
    Advance(u8),
    Yield,
    CloseSender,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::Send),
        1 => any::<u8>().prop_map(Op::SendReplace),
        2 => Just(Op::Subscribe),
        2 => (0usize..16).prop_map(Op::Drop),
        2 => (0usize..16).prop_map(Op::BorrowAndUpdate),
        4 => proptest::option::of(1u8..4).prop_map(|t| Op::Wait { timeout_s: t }),
        2 => (0usize..16).prop_map(Op::Kill),
        2 => (1u8..3).prop_map(Op::Advance),
        2 => Just(Op::Yield),
        1 => Just(Op::CloseSender),
    ]
}

/// A green thread that subscribed at `version` and waits once for a change.
struct Waiter {
    g: GreenThread<Result<u8, WatchError>>,
    version: u64,
    timeout: bool,
    killed: bool,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Against a model (the list of values sent, with their versions):
    /// the value read is always the latest sent; `has_changed` is true
    /// exactly when a send happened since the receiver last looked; a
    /// waiter returns `Ok` only after a send made after it subscribed and
    /// reads a value sent since, `Closed` only when no such send came and
    /// the sender is gone, `Cancelled` only when killed or timed out; no
    /// waiter is left waiting once the sender is gone; and the receiver
    /// count is always exactly the receivers alive.
    #[test]
    fn watch_follows_its_model(init in any::<u8>(), ops in proptest::collection::vec(op(), 1..60)) {
        sylvan::time::pause();
        let mut sender = Some(Watch::new(init));
        let w = sender.as_ref().unwrap().subscribe(); // to read the value after closing
        // The model: every value sent, in order; version = index.
        let sent = Rc::new(RefCell::new(vec![init]));
        let mut held: Vec<(WatchReceiver<u8>, u64)> = Vec::new();
        let mut waiters: Vec<Waiter> = Vec::new();
        for op in ops {
            match op {
                Op::Send(v) => if let Some(s) = &sender {
                    s.send(v);
                    sent.borrow_mut().push(v);
                },
                Op::SendReplace(v) => if let Some(s) = &sender {
                    let old = s.send_replace(v);
                    prop_assert_eq!(old, *sent.borrow().last().unwrap());
                    sent.borrow_mut().push(v);
                },
                Op::Subscribe => if let Some(s) = &sender {
                    held.push((s.subscribe(), sent.borrow().len() as u64 - 1));
                },
                Op::Drop(i) => if !held.is_empty() {
                    let i = i % held.len();
                    held.remove(i);
                },
                Op::BorrowAndUpdate(i) => if !held.is_empty() {
                    let i = i % held.len();
                    let (rx, seen) = &mut held[i];
                    let latest = sent.borrow().len() as u64 - 1;
                    let r = rx.borrow_and_update();
                    prop_assert_eq!(*r, *sent.borrow().last().unwrap());
                    prop_assert_eq!(r.has_changed(), *seen != latest);
                    *seen = latest;
                    prop_assert!(!rx.has_changed());
                },
                Op::Wait { timeout_s } => if let Some(s) = &sender {
                    let mut rx = s.subscribe();
                    let version = sent.borrow().len() as u64 - 1;
                    let g = sylvan::spawn(move || {
                        let r = match timeout_s {
                            Some(t) => match sylvan::timeout(Duration::from_secs(t.into()), || rx.changed()) {
                                Ok(r) => r,
                                Err(_) => Err(WatchError::Cancelled(Cancelled::Killed)),
                            },
                            None => rx.changed(),
                        };
                        r.map(|_| *rx.borrow())
                    });
                    waiters.push(Waiter { g, version, timeout: timeout_s.is_some(), killed: false });
                },
                Op::Kill(i) => if !waiters.is_empty() {
                    let i = i % waiters.len();
                    waiters[i].g.kill();
                    waiters[i].killed = true;
                },
                Op::Advance(s) => sylvan::time::advance(Duration::from_secs(s.into())),
                Op::Yield => sylvan::yield_now(),
                Op::CloseSender => sender = None,
            }
            // The value and the change flags follow the model.
            let latest = sent.borrow().len() as u64 - 1;
            prop_assert_eq!(*w.borrow(), *sent.borrow().last().unwrap());
            for (rx, seen) in &held {
                prop_assert_eq!(rx.has_changed(), *seen != latest);
                prop_assert_eq!(*rx.borrow(), *sent.borrow().last().unwrap());
            }
            let running = waiters.iter().filter(|a| !a.g.is_finished()).count();
            prop_assert!(w.receiver_count() > held.len(), "the test's own receiver and the held ones");
            prop_assert!(w.receiver_count() <= 1 + held.len() + running);
        }
        // Closing wakes every waiter still waiting: all finish, none hangs.
        drop(sender);
        let sent = sent.borrow();
        for a in waiters {
            let later = &sent[a.version as usize + 1..];
            match a.g.join() {
                Ok(Ok(v)) => prop_assert!(later.contains(&v), "{} not sent after subscribing", v),
                Ok(Err(WatchError::Closed)) => prop_assert!(later.is_empty()),
                Ok(Err(WatchError::Cancelled(_))) => prop_assert!(a.killed || a.timeout),
                Ok(Err(e)) => prop_assert!(false, "unexpected {:?}", e),
                Err(sylvan::JoinError::Killed) => prop_assert!(a.killed),
                Err(e) => prop_assert!(false, "{}", e),
            }
        }
        drop(held);
        prop_assert_eq!(w.receiver_count(), 1);
        prop_assert!(w.is_closed());
    }
}
