//! `Queue` and `Event`: ordering (FIFO, LIFO, priority), capacity,
//! rendezvous, and model-based property tests under random interleavings of
//! put, get, kill and timeout.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use sylvan::sync::{Event, GetError, PutError, Queue, QueueOrder, TryPutError};
use sylvan::{Cancelled, GreenThread};

#[test]
fn getters_are_served_in_arrival_order() {
    let q = Queue::unbounded();
    let log = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let (q, log) = (q.clone(), log.clone());
            sylvan::spawn(move || {
                let v = q.get().unwrap();
                log.borrow_mut().push((i, v));
            })
        })
        .collect();
    sylvan::yield_now();
    for v in 10..14 {
        q.put(v).unwrap();
    }
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(*log.borrow(), vec![(0, 10), (1, 11), (2, 12), (3, 13)]);
}

#[test]
fn bounded_put_waits_for_room() {
    let q = Queue::bounded(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    let q2 = q.clone();
    let putter = sylvan::spawn(move || q2.put(3));
    sylvan::yield_now();
    assert!(!putter.is_finished(), "put waits while the queue is full");
    assert_eq!(q.len(), 2);
    assert_eq!(q.get(), Ok(1));
    putter.join().unwrap().unwrap();
    assert_eq!((q.get(), q.get()), (Ok(2), Ok(3)));
}

#[test]
fn rendezvous_put_returns_only_after_a_get() {
    let q = Queue::bounded(0);
    let q2 = q.clone();
    let putter = sylvan::spawn(move || q2.put("x"));
    sylvan::yield_now();
    sylvan::yield_now();
    assert!(!putter.is_finished(), "no getter yet");
    assert_eq!(q.get(), Ok("x"));
    putter.join().unwrap().unwrap();
}

#[test]
fn rendezvous_put_with_timeout_withdraws_its_item() {
    sylvan::time::pause();
    let q = Queue::bounded(0);
    let r = sylvan::timeout(Duration::from_secs(1), || {
        q.put(5).map_err(|e| e.into_inner())
    });
    assert!(r.is_err());
    assert_eq!(q.try_get(), None);
}

#[test]
fn lifo_queue_serves_the_newest_item() {
    let q = Queue::lifo(3);
    for i in 0..3 {
        q.put(i).unwrap();
    }
    assert!(q.try_put(3).is_err(), "bounded like any queue");
    let q2 = q.clone();
    let putter = sylvan::spawn(move || q2.put(9));
    sylvan::yield_now();
    assert_eq!(q.get(), Ok(2));
    putter.join().unwrap().unwrap(); // got the room
    assert_eq!(q.get(), Ok(9));
    assert_eq!((q.get(), q.get()), (Ok(1), Ok(0)));
}

#[test]
fn priority_queue_serves_the_smallest_item_ties_in_order() {
    let q = Queue::priority_unbounded();
    for (p, s) in [(3, "c"), (1, "a1"), (2, "b"), (1, "a2")] {
        q.put((p, s)).unwrap();
    }
    let got: Vec<_> = std::iter::from_fn(|| q.try_get()).collect();
    assert_eq!(got, vec![(1, "a1"), (1, "a2"), (2, "b"), (3, "c")]);
    // A waiting getter takes the smallest of what is there when it runs.
    let q2 = q.clone();
    let getter = sylvan::spawn(move || q2.get());
    sylvan::yield_now();
    q.put((5, "x")).unwrap();
    q.put((4, "y")).unwrap();
    assert_eq!(getter.join().unwrap(), Ok((4, "y")));
    assert_eq!(q.order(), QueueOrder::Priority);
}

#[test]
fn lifo_rendezvous_hands_over_the_newest_offer() {
    let q = Queue::lifo(0);
    let putters: Vec<_> = (0..3)
        .map(|i| {
            let q = q.clone();
            sylvan::spawn(move || q.put(i))
        })
        .collect();
    sylvan::yield_now();
    assert_eq!(q.get(), Ok(2));
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Ok(0));
    for p in putters {
        p.join().unwrap().unwrap();
    }
}

#[test]
fn event_wakes_all_waiters_with_the_value() {
    let ev = Event::new();
    let gs: Vec<_> = (0..5)
        .map(|_| {
            let ev = ev.clone();
            sylvan::spawn(move || ev.wait())
        })
        .collect();
    sylvan::yield_now();
    ev.send(String::from("v")).unwrap();
    for g in gs {
        assert_eq!(g.join().unwrap().unwrap(), "v");
    }
    assert_eq!(ev.send(String::from("again")), Err(String::from("again")));
}

#[test]
fn event_wait_times_out_and_stays_usable() {
    sylvan::time::pause();
    let ev = Event::<u8>::new();
    assert!(sylvan::timeout(Duration::from_secs(1), || ev.wait()).is_err());
    ev.send(1).unwrap();
    assert_eq!(ev.wait(), Ok(1));
}

#[test]
fn close_lets_getters_drain_then_reports_closed() {
    let q = Queue::bounded(4);
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.close();
    q.close(); // idempotent
    assert!(matches!(q.put(3), Err(PutError::Closed(3))));
    assert!(matches!(q.try_put(4), Err(TryPutError::Closed(4))));
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.try_get(), Some(2));
    assert_eq!(q.get(), Err(GetError::Closed));
    assert_eq!(q.get(), Err(GetError::Closed), "stays closed");
}

#[test]
fn close_wakes_blocked_getters_with_closed() {
    let q = Queue::<u8>::unbounded();
    let getters: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            sylvan::spawn(move || q.get())
        })
        .collect();
    sylvan::yield_now();
    assert!(getters.iter().all(|g| !g.is_finished()));
    q.close();
    for g in getters {
        assert_eq!(g.join().unwrap(), Err(GetError::Closed));
    }
}

#[test]
fn close_fails_blocked_putters_and_hands_their_items_back() {
    for cap in [0, 1] {
        let q = Queue::bounded(cap);
        if cap == 1 {
            q.put(0).unwrap();
        }
        let putters: Vec<_> = (1..=2)
            .map(|v| {
                let q = q.clone();
                sylvan::spawn(move || q.put(v))
            })
            .collect();
        sylvan::yield_now();
        assert!(putters.iter().all(|g| !g.is_finished()), "cap {cap}");
        q.close();
        let mut back: Vec<i32> = putters
            .into_iter()
            .map(|g| match g.join().unwrap() {
                Err(PutError::Closed(v)) => v,
                other => panic!("cap {cap}: {other:?}"),
            })
            .collect();
        back.sort_unstable();
        assert_eq!(back, vec![1, 2], "cap {cap}");
        // Only what was really in the queue is left; withdrawn rendezvous
        // offers don't count as unfinished.
        assert_eq!(q.unfinished(), cap);
        assert_eq!(q.try_get(), (cap == 1).then_some(0));
        assert_eq!(q.get(), Err(GetError::Closed));
    }
}

#[test]
fn join_waits_until_every_item_is_marked_done() {
    let q = Queue::unbounded();
    let done = Rc::new(RefCell::new(Vec::new()));
    let worker = {
        let (q, done) = (q.clone(), done.clone());
        sylvan::spawn(move || {
            for job in &q {
                sylvan::yield_now(); // "work"
                done.borrow_mut().push(job);
                q.task_done();
            }
        })
    };
    for job in 0..5 {
        q.put(job).unwrap();
    }
    assert_eq!(q.unfinished(), 5);
    q.join().unwrap();
    assert_eq!(
        *done.borrow(),
        vec![0, 1, 2, 3, 4],
        "join returned only after all were done"
    );
    assert_eq!(q.unfinished(), 0);
    q.join().unwrap(); // nothing pending: returns at once
    q.close();
    worker.join().unwrap();
}

#[test]
fn join_is_cancellable_and_leaves_the_count() {
    sylvan::time::pause();
    let q = Queue::unbounded();
    q.put(()).unwrap();
    let r = sylvan::timeout(Duration::from_secs(1), || q.join());
    assert!(r.is_err(), "the deadline cancels join");
    assert_eq!(q.unfinished(), 1);
    let joiner = {
        let q = q.clone();
        sylvan::spawn(move || q.join())
    };
    sylvan::yield_now();
    joiner.kill();
    assert_eq!(joiner.join().unwrap(), Err(Cancelled::Killed));
    // Another joiner still gets woken.
    let joiner = {
        let q = q.clone();
        sylvan::spawn(move || q.join())
    };
    sylvan::yield_now();
    q.get().unwrap();
    q.task_done();
    assert_eq!(joiner.join().unwrap(), Ok(()));
}

#[test]
#[should_panic(expected = "task_done called more times than items were put")]
fn task_done_without_a_put_panics() {
    Queue::<u8>::unbounded().task_done();
}

#[test]
fn iteration_ends_at_close_and_at_cancellation_without_losing_items() {
    sylvan::time::pause();
    let q = Queue::unbounded();
    q.put(1).unwrap();
    let got = sylvan::timeout(Duration::from_secs(1), || q.iter().collect::<Vec<_>>());
    // The deadline ended the iteration; `timeout` reports it.
    assert!(got.is_err());
    q.put(2).unwrap();
    let killed = {
        let q = q.clone();
        sylvan::spawn(move || {
            let first = q.iter().next();
            (first, q.iter().next())
        })
    };
    sylvan::yield_now();
    killed.kill();
    assert_eq!(
        killed.join().unwrap(),
        (Some(2), None),
        "a kill ends the iteration"
    );
    q.put(3).unwrap();
    q.close();
    let rest: Vec<i32> = (&q).into_iter().collect();
    assert_eq!(
        rest,
        vec![3],
        "nothing was lost by the cancelled iterations"
    );
}

#[test]
fn event_reset_makes_it_sendable_again() {
    sylvan::time::pause();
    let ev = Event::new();
    ev.send(1).unwrap();
    assert!(ev.reset());
    assert!(!ev.reset(), "already reset");
    assert!(!ev.ready());
    assert_eq!(ev.try_get(), None);
    assert!(
        sylvan::timeout(Duration::from_secs(1), || ev.wait()).is_err(),
        "a wait after reset waits for the next send"
    );
    ev.send(2).unwrap();
    assert_eq!(ev.wait(), Ok(2));
}

#[test]
fn event_reset_never_takes_the_value_from_a_woken_waiter() {
    let ev = Event::new();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let ev = ev.clone();
            sylvan::spawn(move || ev.wait())
        })
        .collect();
    sylvan::yield_now();
    ev.send("first").unwrap();
    ev.reset(); // before the woken waiters ran
    for w in waiters {
        assert_eq!(w.join().unwrap(), Ok("first"));
    }
}

#[test]
fn event_of_result_is_an_async_result() {
    let r: Event<Result<u8, String>> = Event::new();
    let w = {
        let r = r.clone();
        sylvan::spawn(move || r.wait())
    };
    sylvan::yield_now();
    r.send(Err("failed".into())).unwrap();
    assert_eq!(w.join().unwrap(), Ok(Err("failed".to_string())));
}

#[derive(Debug, Clone)]
enum Op {
    Put { timeout_s: Option<u8> },
    Get { timeout_s: Option<u8> },
    TryGet,
    TryPut,
    Kill(usize),
    Advance(u8),
    Yield,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => proptest::option::of(1u8..4).prop_map(|t| Op::Put { timeout_s: t }),
        3 => proptest::option::of(1u8..4).prop_map(|t| Op::Get { timeout_s: t }),
        1 => Just(Op::TryGet),
        1 => Just(Op::TryPut),
        2 => (0usize..16).prop_map(Op::Kill),
        2 => (1u8..3).prop_map(Op::Advance),
        2 => Just(Op::Yield),
        1 => Just(Op::Close),
    ]
}

/// What a green thread of the test did.
enum Actor {
    Putter(u32, GreenThread<Result<(), u32>>),
    Getter(GreenThread<Result<u32, GetError>>),
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// No item is lost or duplicated whatever mix of blocking puts and gets,
    /// kills and timeouts happens, and a bounded queue never holds more than
    /// its capacity.
    #[test]
    fn queue_conserves_items(order in 0u8..3, cap in 0usize..4, ops in proptest::collection::vec(op(), 1..60)) {
        sylvan::time::pause();
        let q: Queue<u32> = match order {
            0 => Queue::bounded(cap),
            1 => Queue::lifo(cap),
            _ => Queue::priority(cap),
        };
        let mut actors: Vec<Actor> = Vec::new();
        let mut next = 0u32;
        let mut offered = Vec::new();
        let mut received = Vec::new();
        let mut handed_back = Vec::new();
        for op in ops {
            match op {
                Op::Put { timeout_s } => {
                    next += 1;
                    let (q, v) = (q.clone(), next);
                    offered.push(v);
                    let g = sylvan::spawn(move || {
                        let put = || q.put(v).map_err(|e| e.into_inner());
                        match timeout_s {
                            Some(s) => sylvan::timeout(Duration::from_secs(s.into()), put).unwrap_or(Err(v)),
                            None => put(),
                        }
                    });
                    actors.push(Actor::Putter(v, g));
                }
                Op::Get { timeout_s } => {
                    let q = q.clone();
                    let g = sylvan::spawn(move || match timeout_s {
                        Some(s) => sylvan::timeout(Duration::from_secs(s.into()), || q.get())
                            .unwrap_or(Err(GetError::Cancelled(Cancelled::Killed))),
                        None => q.get(),
                    });
                    actors.push(Actor::Getter(g));
                }
                Op::TryGet => received.extend(q.try_get()),
                Op::TryPut => {
                    next += 1;
                    offered.push(next);
                    if let Err(e) = q.try_put(next) {
                        handed_back.push(e.into_inner());
                    }
                }
                Op::Kill(i) => {
                    if !actors.is_empty() {
                        match &actors[i % actors.len()] {
                            Actor::Putter(_, g) => g.kill(),
                            Actor::Getter(g) => g.kill(),
                        }
                    }
                }
                Op::Advance(s) => sylvan::time::advance(Duration::from_secs(s.into())),
                Op::Yield => sylvan::yield_now(),
                Op::Close => q.close(),
            }
            if cap > 0 {
                prop_assert!(q.len() <= cap, "len {} > cap {}", q.len(), cap);
            }
        }
        if q.is_closed() {
            // Close wakes every waiter: getters drain or see `Closed`,
            // putters get their item back. None may be left parked (a
            // lost wake-up), whatever happened before.
            sylvan::yield_now();
            sylvan::yield_now();
            for (i, a) in actors.iter().enumerate() {
                let done = match a {
                    Actor::Putter(_, g) => g.is_finished(),
                    Actor::Getter(g) => g.is_finished(),
                };
                prop_assert!(done, "actor {} still blocked after close", i);
            }
            prop_assert!(q.try_put(0).unwrap_err().is_closed());
        }
        // Wind down: kill everyone still blocked, collect outcomes, drain.
        for a in &actors {
            match a {
                Actor::Putter(_, g) => g.kill(),
                Actor::Getter(g) => g.kill(),
            }
        }
        for a in actors {
            match a {
                Actor::Putter(v, g) => match g.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(back)) => {
                        prop_assert_eq!(back, v);
                        handed_back.push(back);
                    }
                    // Killed before it ran: it never offered its item.
                    Err(sylvan::JoinError::Killed) => handed_back.push(v),
                    Err(e) => panic!("{e}"),
                },
                Actor::Getter(g) => match g.join() {
                    Ok(r) => received.extend(r.ok()),
                    Err(sylvan::JoinError::Killed) => {}
                    Err(e) => panic!("{e}"),
                },
            }
        }
        while let Some(v) = q.try_get() {
            received.push(v);
        }
        let mut all: Vec<u32> = received.iter().chain(handed_back.iter()).copied().collect();
        all.sort_unstable();
        offered.sort_unstable();
        prop_assert_eq!(all, offered, "every item is received once or handed back once");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Puts and gets (none of which waits) against a model list: FIFO
    /// takes the first, LIFO the last, priority the smallest value (the
    /// earliest put among equals).
    #[test]
    fn queue_orders_match_a_model(order in 0u8..3, ops in proptest::collection::vec(proptest::option::of(0u8..6), 1..200)) {
        let q = match order {
            0 => Queue::unbounded(),
            1 => Queue::lifo_unbounded(),
            _ => Queue::priority_unbounded(),
        };
        let mut model: Vec<(u8, usize)> = Vec::new();
        for (seq, op) in ops.into_iter().enumerate() {
            match op {
                Some(v) => {
                    q.put((v, seq)).unwrap();
                    model.push((v, seq));
                }
                None => {
                    let expect = match order {
                        0 => (!model.is_empty()).then(|| model.remove(0)),
                        1 => model.pop(),
                        _ => {
                            let i = model.iter().enumerate().min_by_key(|(_, m)| **m).map(|(i, _)| i);
                            i.map(|i| model.remove(i))
                        }
                    };
                    let got = if expect.is_some() { Some(q.get().unwrap()) } else { q.try_get() };
                    prop_assert_eq!(got, expect);
                }
            }
            prop_assert_eq!(q.len(), model.len());
        }
    }
}
