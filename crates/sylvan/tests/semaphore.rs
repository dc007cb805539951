//! `sync::Semaphore`: fairness, the bounded variant, and a model-based
//! property test: under random acquires, releases, kills and timeouts no
//! permit is lost or duplicated.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use sylvan::sync::{Event, Semaphore};
use sylvan::{Cancelled, GreenThread, JoinError};

#[test]
fn permit_is_released_on_drop_and_not_after_forget() {
    let sem = Semaphore::new(2);
    let a = sem.acquire().unwrap();
    let b = sem.try_acquire().unwrap();
    assert_eq!(sem.available_permits(), 0);
    assert!(sem.try_acquire().is_none());
    drop(a);
    assert_eq!(sem.available_permits(), 1);
    b.forget();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let sem = Semaphore::new(1);
    let first = sem.acquire().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..5)
        .map(|i| {
            let (sem, order) = (sem.clone(), order.clone());
            sylvan::spawn(move || {
                let _p = sem.acquire().unwrap();
                order.borrow_mut().push(i);
                sylvan::yield_now();
            })
        })
        .collect();
    sylvan::yield_now();
    assert_eq!(sem.waiting(), 5);
    drop(first);
    // A newcomer does not overtake the queue, even right after a release.
    assert!(sem.try_acquire().is_none());
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4]);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn a_killed_waiter_gives_its_turn_to_the_next() {
    let sem = Semaphore::new(0);
    let (s1, s2) = (sem.clone(), sem.clone());
    let w1 = sylvan::spawn(move || s1.acquire().map(drop));
    let w2 = sylvan::spawn(move || s2.acquire().map(|p| p.forget()));
    sylvan::yield_now();
    w1.kill();
    assert_eq!(w1.join().unwrap(), Err(Cancelled::Killed));
    assert_eq!(sem.waiting(), 1);
    sem.add_permits(1).unwrap();
    w2.join().unwrap().unwrap();
    assert_eq!(sem.available_permits(), 0);
}

#[test]
fn a_waiter_handed_a_permit_keeps_it_even_if_killed_before_it_runs() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let w = sylvan::spawn(move || s.acquire());
    sylvan::yield_now();
    sem.add_permits(1).unwrap(); // handed to w, which has not run yet
    w.kill();
    let permit = w.join().unwrap().expect("the handed permit is returned");
    assert_eq!(sem.available_permits(), 0);
    drop(permit);
    assert_eq!(sem.available_permits(), 1);
}

/// A killed waiter still counted as queued (its cancellation has not run)
/// makes a newcomer queue although a permit is free; when the killed one
/// leaves, the newcomer must get that permit.
#[test]
fn a_newcomer_queued_behind_a_killed_waiter_is_not_stranded() {
    sylvan::time::pause();
    let sem = Semaphore::new(1);
    let first = sem.acquire().unwrap();
    let go = Event::new();
    let (s1, s2, go2) = (sem.clone(), sem.clone(), go.clone());
    let w1 = sylvan::spawn(move || s1.acquire().map(drop));
    let w2 = sylvan::spawn(move || {
        go2.wait()?;
        s2.acquire().map(drop)
    });
    sylvan::yield_now(); // w1 queued; w2 waits for `go`
    go.send(()).unwrap(); // w2 is ready to run...
    w1.kill(); // ...before w1, whose cancellation is now pending
    drop(first); // no live waiter to hand it to: the permit stays free
    let r = sylvan::timeout(Duration::from_secs(3600), || w2.join());
    assert_eq!(r.expect("w2 got the free permit").unwrap(), Ok(()));
    assert_eq!(w1.join().unwrap(), Err(Cancelled::Killed));
    assert_eq!(sem.available_permits(), 1);
    assert_eq!(sem.waiting(), 0);
}

#[test]
fn acquire_times_out_and_leaves_the_queue() {
    sylvan::time::pause();
    let sem = Semaphore::new(0);
    let r = sylvan::timeout(Duration::from_secs(1), || sem.acquire());
    assert!(r.is_err());
    assert_eq!(sem.waiting(), 0);
    sem.add_permits(1).unwrap();
    assert_eq!(
        sem.available_permits(),
        1,
        "no permit went to the gone waiter"
    );
}

#[test]
fn bounded_semaphore_refuses_to_grow_past_its_bound() {
    let sem = Semaphore::bounded(2);
    let e = sem.add_permits(1).unwrap_err();
    assert_eq!(e.bound(), 2);
    let p = sem.acquire().unwrap();
    // One held + one free = 2: still no room.
    assert!(sem.add_permits(1).is_err());
    p.forget();
    sem.add_permits(1).unwrap();
    assert!(sem.add_permits(1).is_err());
    assert_eq!(sem.available_permits(), 2);
    // Unbounded ones grow freely.
    let free = Semaphore::new(0);
    free.add_permits(1000).unwrap();
    assert_eq!(free.available_permits(), 1000);
}

#[derive(Debug, Clone)]
enum Op {
    Acquire { timeout_s: Option<u8> },
    TryAcquire,
    Release(usize),
    Kill(usize),
    AddPermits(u8),
    Advance(u8),
    Yield,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::option::of(1u8..4).prop_map(|t| Op::Acquire { timeout_s: t }),
        1 => Just(Op::TryAcquire),
        3 => (0usize..16).prop_map(Op::Release),
        2 => (0usize..16).prop_map(Op::Kill),
        1 => (0u8..3).prop_map(Op::AddPermits),
        2 => (1u8..3).prop_map(Op::Advance),
        2 => Just(Op::Yield),
    ]
}

/// A green thread that acquires, then holds its permit until told to let
/// go (or killed). Returns whether it ever held one.
struct Actor {
    g: GreenThread<bool>,
    release: Event<()>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Under random acquires (some with deadlines), releases, kills and
    /// added permits: permits held never exceed the permits there are,
    /// held + free never exceed them either (a permit in flight to a woken
    /// waiter counts as neither), and once everyone is gone every permit
    /// is free again. Waiters are served in the order they queued.
    #[test]
    fn semaphore_conserves_permits(initial in 0usize..4, ops in proptest::collection::vec(op(), 1..60)) {
        sylvan::time::pause();
        let sem = Semaphore::new(initial);
        let mut total = initial;
        let holding = Rc::new(Cell::new(0usize));
        let grants = Rc::new(RefCell::new(Vec::new()));
        let queued_order = Rc::new(RefCell::new(Vec::new()));
        let mut actors: Vec<Actor> = Vec::new();
        let mut try_held = Vec::new();
        for op in ops {
            match op {
                Op::Acquire { timeout_s } => {
                    let id = actors.len();
                    let (sem, holding, grants, queued_order) =
                        (sem.clone(), holding.clone(), grants.clone(), queued_order.clone());
                    let release = Event::new();
                    let rel = release.clone();
                    let g = sylvan::spawn(move || {
                        if sem.available_permits() == 0 || sem.waiting() > 0 {
                            queued_order.borrow_mut().push(id);
                        }
                        let acquire = || sem.acquire();
                        let permit = match timeout_s {
                            Some(s) => match sylvan::timeout(Duration::from_secs(s.into()), acquire) {
                                Ok(Ok(p)) => p,
                                _ => return false,
                            },
                            None => match acquire() {
                                Ok(p) => p,
                                Err(_) => return false,
                            },
                        };
                        grants.borrow_mut().push(id);
                        holding.set(holding.get() + 1);
                        let _ = rel.wait();
                        holding.set(holding.get() - 1);
                        drop(permit);
                        true
                    });
                    actors.push(Actor { g, release });
                }
                Op::TryAcquire => try_held.extend(sem.try_acquire()),
                Op::Release(i) => {
                    if let Some(a) = actors.get(i % actors.len().max(1)) {
                        let _ = a.release.send(());
                    }
                    if i % 3 == 0 {
                        try_held.pop();
                    }
                }
                Op::Kill(i) => {
                    if let Some(a) = actors.get(i % actors.len().max(1)) {
                        a.g.kill();
                    }
                }
                Op::AddPermits(n) => {
                    sem.add_permits(n.into()).unwrap();
                    total += usize::from(n);
                }
                Op::Advance(s) => sylvan::time::advance(Duration::from_secs(s.into())),
                Op::Yield => sylvan::yield_now(),
            }
            let held = holding.get() + try_held.len();
            prop_assert!(held <= total, "{} held of {}", held, total);
            prop_assert!(held + sem.available_permits() <= total);
        }
        // Wind down: let holders go, kill whoever still waits.
        for a in &actors {
            let _ = a.release.send(());
            a.g.kill();
        }
        drop(try_held);
        for a in actors {
            match a.g.join() {
                Ok(_) | Err(JoinError::Killed) => {}
                Err(e) => panic!("{e}"),
            }
        }
        prop_assert_eq!(holding.get(), 0);
        prop_assert_eq!(sem.waiting(), 0);
        prop_assert_eq!(sem.available_permits(), total, "every permit is back");
        // Among actors that queued, grants went in queue order.
        let queued = queued_order.borrow();
        let granted_queued: Vec<usize> =
            grants.borrow().iter().copied().filter(|id| queued.contains(id)).collect();
        let mut sorted = granted_queued.clone();
        sorted.sort_unstable_by_key(|id| queued.iter().position(|q| q == id));
        prop_assert_eq!(granted_queued, sorted, "first come, first served");
    }
}

/// Waiters force-unwound by `sylvan::shutdown` give back a permit they were
/// handed but never ran to take, and leave the queue otherwise.
#[test]
fn waiters_unwound_at_shutdown_give_back_their_permit_and_their_place() {
    std::thread::spawn(|| {
        let sem = Semaphore::new(1);
        let held = sem.acquire().unwrap();
        let (a, b) = (sem.clone(), sem.clone());
        drop(sylvan::spawn(move || a.acquire().map(drop)));
        drop(sylvan::spawn(move || b.acquire().map(drop)));
        sylvan::yield_now(); // both queue
        drop(held); // handed to the first, which has not run since
        sylvan::shutdown();
        assert_eq!(sem.available_permits(), 1, "the handed permit came back");
        assert_eq!(sem.waiting(), 0);
        assert!(sem.try_acquire().is_some(), "nobody is left queued");
    })
    .join()
    .unwrap();
}
