//! `Queue` and `Event`: ordering (FIFO, LIFO, priority), capacity,
//! rendezvous, and model-based property tests under random interleavings of
//! put, get, kill and timeout.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use sylvan::sync::{Event, Queue, QueueOrder};
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

#[derive(Debug, Clone)]
enum Op {
    Put { timeout_s: Option<u8> },
    Get { timeout_s: Option<u8> },
    TryGet,
    TryPut,
    Kill(usize),
    Advance(u8),
    Yield,
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
    ]
}

/// What a green thread of the test did.
enum Actor {
    Putter(u32, GreenThread<Result<(), u32>>),
    Getter(GreenThread<Result<u32, Cancelled>>),
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
                            .unwrap_or(Err(Cancelled::Killed)),
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
            }
            if cap > 0 {
                prop_assert!(q.len() <= cap, "len {} > cap {}", q.len(), cap);
            }
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
