//! `sync::{Mutex, RwLock, Condvar}`: FIFO hand-off without barging, guards
//! held across blocking calls, kills and timeouts while waiting (before
//! and after a hand-off), poisoning, condvar notification and timeouts,
//! the reader/writer policy, a model-based property test, and the
//! `Send`/`Sync` shape of every public type (hub-local and shared).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::TryLockError;
use std::time::Duration;

use proptest::prelude::*;
use sylvan::sync::{Condvar, Event, LockError, Mutex, RwLock};
use sylvan::{Cancelled, GreenThread, JoinError};

fn cancelled<G>(r: Result<G, LockError<G>>) -> Option<Cancelled> {
    match r {
        Err(e) => e.cancelled(),
        Ok(_) => None,
    }
}

#[test]
fn waiters_get_the_mutex_first_come_first_served() {
    let m = Rc::new(Mutex::new(Vec::new()));
    let first = m.lock().unwrap();
    let gs: Vec<_> = (0..5)
        .map(|i| {
            let m = m.clone();
            sylvan::spawn(move || {
                let mut g = m.lock().unwrap();
                g.push(i);
                sylvan::yield_now(); // others stay queued meanwhile
                g.push(i);
            })
        })
        .collect();
    sylvan::yield_now();
    drop(first);
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(*m.lock().unwrap(), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
}

#[test]
fn unlocking_hands_the_mutex_over_so_a_newcomer_cannot_barge_in() {
    let m = Rc::new(Mutex::new(Vec::new()));
    let guard = m.lock().unwrap();
    let m2 = m.clone();
    let waiter = sylvan::spawn(move || m2.lock().unwrap().push("waiter"));
    sylvan::yield_now();
    drop(guard); // handed to `waiter`, which has not run yet
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    // A newcomer's `lock` queues behind it, too.
    m.lock().unwrap().push("newcomer");
    waiter.join().unwrap();
    assert_eq!(*m.lock().unwrap(), ["waiter", "newcomer"]);
}

#[test]
fn a_guard_is_held_across_a_sleep() {
    sylvan::time::pause();
    let m = Rc::new(Mutex::new(0));
    let m2 = m.clone();
    let holder = sylvan::spawn(move || {
        let mut g = m2.lock().unwrap();
        sylvan::sleep(Duration::from_secs(10)).unwrap();
        *g = 1;
        sylvan::time::now()
    });
    sylvan::yield_now();
    let start = sylvan::time::now();
    let g = m.lock().unwrap(); // waits for the whole sleep
    assert_eq!(*g, 1);
    assert!(sylvan::time::now() - start >= Duration::from_secs(10));
    drop(g);
    holder.join().unwrap();
}

#[test]
fn a_killed_waiter_leaves_the_queue() {
    let m = Rc::new(Mutex::new(()));
    let guard = m.lock().unwrap();
    let (m1, m2) = (m.clone(), m.clone());
    let w1 = sylvan::spawn(move || cancelled(m1.lock()));
    let w2 = sylvan::spawn(move || m2.lock().is_ok());
    sylvan::yield_now();
    w1.kill();
    assert_eq!(w1.join().unwrap(), Some(Cancelled::Killed));
    drop(guard);
    assert!(w2.join().unwrap(), "the next waiter got it");
    assert!(m.try_lock().is_ok(), "free, nobody queued");
}

#[test]
fn a_waiter_whose_deadline_passes_leaves_the_queue() {
    sylvan::time::pause();
    let m = Rc::new(Mutex::new(()));
    let m2 = m.clone();
    let holder = sylvan::spawn(move || {
        let _g = m2.lock().unwrap();
        sylvan::sleep(Duration::from_secs(60))
    });
    sylvan::yield_now();
    let r = sylvan::timeout(Duration::from_secs(1), || cancelled(m.lock()));
    assert!(r.is_err(), "the timeout's own deadline fired");
    holder.join().unwrap().unwrap();
    assert!(m.try_lock().is_ok());
}

#[test]
fn a_waiter_handed_the_mutex_keeps_it_even_if_killed_before_it_runs() {
    let m = Rc::new(Mutex::new(0));
    let guard = m.lock().unwrap();
    let m2 = m.clone();
    let w = sylvan::spawn(move || {
        let mut g = m2.lock().expect("the hand-off is kept");
        *g += 1;
        // The kill shows at the next blocking call.
        sylvan::sleep(Duration::ZERO)
    });
    sylvan::yield_now();
    drop(guard); // handed to w
    w.kill();
    assert_eq!(w.join().unwrap(), Err(Cancelled::Killed));
    assert_eq!(*m.try_lock().expect("w unlocked it"), 1);
}

#[test]
fn a_waiter_handed_the_mutex_keeps_it_even_if_its_deadline_passes_before_it_runs() {
    sylvan::time::pause();
    let m = Rc::new(Mutex::new(()));
    let guard = m.lock().unwrap();
    let m2 = m.clone();
    let w = sylvan::spawn(move || sylvan::timeout(Duration::from_secs(1), || m2.lock().is_ok()));
    sylvan::yield_now();
    drop(guard); // handed to w...
    sylvan::time::advance(Duration::from_secs(5)); // ...before its deadline passes
    assert_eq!(w.join().unwrap(), Ok(true));
    assert!(m.try_lock().is_ok());
}

/// A killed waiter still counted as queued (its cancellation has not run)
/// makes a newcomer queue although the mutex is free; when the killed one
/// leaves, the newcomer must get it.
#[test]
fn a_newcomer_queued_behind_a_killed_waiter_is_not_stranded() {
    sylvan::time::pause();
    let m = Rc::new(Mutex::new(()));
    let first = m.lock().unwrap();
    let go = Event::new();
    let (m1, m2, go2) = (m.clone(), m.clone(), go.clone());
    let w1 = sylvan::spawn(move || cancelled(m1.lock()));
    let w2 = sylvan::spawn(move || {
        go2.wait().unwrap();
        m2.lock().is_ok()
    });
    sylvan::yield_now(); // w1 queued; w2 waits for `go`
    go.send(()).unwrap(); // w2 is ready to run...
    w1.kill(); // ...before w1, whose cancellation is now pending
    drop(first); // no live waiter to hand it to: it is free
    let r = sylvan::timeout(Duration::from_secs(3600), || w2.join());
    assert!(r.expect("w2 got the free mutex").unwrap());
    assert_eq!(w1.join().unwrap(), Some(Cancelled::Killed));
    assert!(m.try_lock().is_ok());
}

/// A waiter handed the mutex and then force-unwound by `shutdown` before it
/// ran unlocks on the way out: the hand-off is not lost.
#[test]
fn a_waiter_unwound_at_shutdown_after_the_hand_off_unlocks() {
    let m = Rc::new(Mutex::new(()));
    let guard = m.lock().unwrap();
    let m2 = m.clone();
    let w = sylvan::spawn(move || drop(m2.lock()));
    sylvan::yield_now();
    drop(guard); // handed to w, which never runs
    sylvan::shutdown();
    assert!(w.is_finished());
    assert!(m.try_lock().is_ok(), "the unwound waiter gave it back");
    let rw = Rc::new(RwLock::new(()));
    let wg = rw.write().unwrap();
    let (r1, r2) = (rw.clone(), rw.clone());
    let a = sylvan::spawn(move || drop(r1.read()));
    let b = sylvan::spawn(move || drop(r2.read()));
    sylvan::yield_now();
    drop(wg); // both readers handed the lock
    sylvan::shutdown();
    assert!(a.is_finished() && b.is_finished());
    assert!(rw.try_write().is_ok(), "both unwound readers gave it back");
}

#[test]
fn a_guard_dropped_while_panicking_poisons_the_mutex() {
    let m = Rc::new(Mutex::new(1));
    let m2 = m.clone();
    let g = sylvan::spawn(move || {
        let mut g = m2.lock().unwrap();
        *g = 2;
        panic!("boom");
    });
    assert!(matches!(g.join(), Err(JoinError::Panicked(_))));
    assert!(m.is_poisoned());
    let e = m.lock().unwrap_err();
    assert!(e.is_poisoned());
    assert!(e.to_string().contains("poisoned"));
    let guard = e.ignore_poison().unwrap();
    assert_eq!(*guard, 2, "the guard of a poisoned lock still works");
    drop(guard);
    assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
    m.clear_poison();
    assert!(m.try_lock().is_ok());
    // A guard taken while already panicking does not poison on drop.
    let m = Mutex::new(());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        struct LockOnDrop<'a>(&'a Mutex<()>);
        impl Drop for LockOnDrop<'_> {
            fn drop(&mut self) {
                drop(self.0.try_lock());
            }
        }
        let _d = LockOnDrop(&m);
        panic!("unwinding");
    }));
    assert!(r.is_err());
    assert!(!m.is_poisoned());
    assert_eq!(
        Rc::try_unwrap(Rc::new(Mutex::new(5)))
            .ok()
            .unwrap()
            .into_inner()
            .unwrap(),
        5
    );
}

/// Shutdown's forced unwind cuts a critical section short: the guard it
/// drops poisons the mutex, as a panic would.
#[test]
fn a_guard_held_through_shutdown_poisons_the_mutex() {
    let m = Rc::new(Mutex::new(0));
    let m2 = m.clone();
    let holder = sylvan::spawn(move || {
        let mut g = m2.lock().unwrap();
        *g = 1;
        sylvan::sleep(Duration::from_secs(3600))
    });
    sylvan::yield_now();
    sylvan::shutdown();
    assert!(holder.is_finished());
    assert!(m.is_poisoned());
    assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
}

#[test]
fn only_write_guards_poison_an_rwlock() {
    let l = Rc::new(RwLock::new(0));
    let l2 = l.clone();
    let _ = sylvan::spawn(move || {
        let _r = l2.read().unwrap();
        panic!("reader");
    })
    .join();
    assert!(!l.is_poisoned());
    let l2 = l.clone();
    let _ = sylvan::spawn(move || {
        let _w = l2.write().unwrap();
        panic!("writer");
    })
    .join();
    assert!(l.is_poisoned());
    assert!(l.read().unwrap_err().is_poisoned());
    assert!(matches!(l.try_write(), Err(TryLockError::Poisoned(_))));
}

#[test]
fn readers_share_and_a_waiting_writer_holds_back_newcomers() {
    let l = Rc::new(RwLock::new(Vec::new()));
    let r1 = l.read().unwrap();
    let r2 = l.try_read().unwrap();
    let lw = l.clone();
    let writer = sylvan::spawn(move || lw.write().unwrap().push("writer"));
    sylvan::yield_now();
    // Writer-preferring: a new reader queues behind the waiting writer.
    assert!(matches!(l.try_read(), Err(TryLockError::WouldBlock)));
    let lr = l.clone();
    let reader = sylvan::spawn(move || lr.read().unwrap().len());
    sylvan::yield_now();
    drop(r1);
    assert!(!writer.is_finished(), "one reader still holds it");
    drop(r2);
    writer.join().unwrap();
    assert_eq!(
        reader.join().unwrap(),
        1,
        "the reader came after the writer"
    );
}

#[test]
fn releasing_hands_an_rwlock_to_every_reader_at_the_head_at_once() {
    let l = Rc::new(RwLock::new(()));
    let w = l.write().unwrap();
    let inside = Rc::new(Cell::new(0));
    let most = Rc::new(Cell::new(0));
    let order = Rc::new(RefCell::new(Vec::new()));
    let mk = |name: &'static str, write: bool| {
        let (l, inside, most, order) = (l.clone(), inside.clone(), most.clone(), order.clone());
        sylvan::spawn(move || {
            let hold = || {
                order.borrow_mut().push(name);
                inside.set(inside.get() + 1);
                most.set(most.get().max(inside.get()));
                sylvan::yield_now();
                sylvan::yield_now();
                inside.set(inside.get() - 1);
            };
            if write {
                let _g = l.write().unwrap();
                hold();
            } else {
                let _g = l.read().unwrap();
                hold();
            }
        })
    };
    let gs = [
        mk("r1", false),
        mk("r2", false),
        mk("w2", true),
        mk("r3", false),
    ];
    sylvan::yield_now();
    drop(w);
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(*order.borrow(), ["r1", "r2", "w2", "r3"]);
    assert_eq!(most.get(), 2, "r1 and r2 held it together, w2 alone");
}

#[test]
fn a_writer_that_gives_up_lets_the_readers_behind_it_in() {
    sylvan::time::pause();
    let l = Rc::new(RwLock::new(()));
    let r = l.read().unwrap();
    let (lw, lr) = (l.clone(), l.clone());
    let writer =
        sylvan::spawn(move || sylvan::timeout(Duration::from_secs(1), || lw.write().is_ok()));
    sylvan::yield_now();
    let reader = sylvan::spawn(move || lr.read().is_ok()); // queues behind the writer
    sylvan::yield_now();
    assert!(writer.join().unwrap().is_err(), "the writer timed out");
    assert!(reader.join().unwrap(), "and the reader joined the holder");
    drop(r);
    assert!(l.try_write().is_ok());
}

#[test]
fn notify_one_wakes_the_oldest_waiter_and_notify_all_wakes_everyone() {
    let s = Rc::new((Mutex::new(0), Condvar::new()));
    let woke = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let (s, woke) = (s.clone(), woke.clone());
            sylvan::spawn(move || {
                let (m, cv) = &*s;
                let g = cv.wait(m.lock().unwrap()).unwrap();
                woke.borrow_mut().push((i, *g));
            })
        })
        .collect();
    sylvan::yield_now();
    let (m, cv) = &*s;
    *m.lock().unwrap() = 1;
    cv.notify_one();
    sylvan::yield_now();
    sylvan::yield_now();
    assert_eq!(*woke.borrow(), [(0, 1)]);
    *m.lock().unwrap() = 2;
    cv.notify_all();
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(*woke.borrow(), [(0, 1), (1, 2), (2, 2), (3, 2)]);
}

#[test]
fn wait_while_never_returns_with_the_condition_still_true() {
    let s = Rc::new((Mutex::new(0), Condvar::new()));
    let s2 = s.clone();
    let checks = Rc::new(Cell::new(0));
    let c2 = checks.clone();
    let waiter = sylvan::spawn(move || {
        let (m, cv) = &*s2;
        let g = cv
            .wait_while(m.lock().unwrap(), |n| {
                c2.set(c2.get() + 1);
                *n < 3
            })
            .unwrap();
        *g
    });
    let (m, cv) = &*s;
    for i in 1..=3 {
        sylvan::yield_now();
        assert!(!waiter.is_finished(), "returned early at {i}");
        *m.lock().unwrap() = i;
        cv.notify_all();
    }
    assert_eq!(waiter.join().unwrap(), 3);
    assert_eq!(
        checks.get(),
        4,
        "checked once up front and once per notification"
    );
}

#[test]
fn wait_timeout_reports_whether_it_timed_out() {
    sylvan::time::pause();
    let s = Rc::new((Mutex::new(false), Condvar::new()));
    let (m, cv) = &*s;
    let start = sylvan::time::now();
    let (g, r) = cv
        .wait_timeout(m.lock().unwrap(), Duration::from_secs(5))
        .unwrap();
    assert!(r.timed_out());
    assert_eq!(sylvan::time::now() - start, Duration::from_secs(5));
    drop(g);
    let s2 = s.clone();
    let notifier = sylvan::spawn_after(Duration::from_secs(1), move || {
        *s2.0.lock().unwrap() = true;
        s2.1.notify_one();
    });
    let (g, r) = cv
        .wait_timeout_while(m.lock().unwrap(), Duration::from_secs(5), |ready| !*ready)
        .unwrap();
    assert!(!r.timed_out() && *g);
    assert_eq!(sylvan::time::now() - start, Duration::from_secs(6));
    drop(g);
    notifier.join().unwrap();
}

#[test]
fn a_condvar_waiter_that_is_cancelled_leaves_the_mutex_unlocked() {
    sylvan::time::pause();
    let s = Rc::new((Mutex::new(()), Condvar::new()));
    let (s1, s2) = (s.clone(), s.clone());
    let killed = sylvan::spawn(move || cancelled(s1.1.wait(s1.0.lock().unwrap())));
    let timed = sylvan::spawn(move || {
        sylvan::timeout(Duration::from_secs(1), || {
            cancelled(s2.1.wait(s2.0.lock().unwrap()))
        })
    });
    sylvan::yield_now();
    killed.kill();
    assert_eq!(killed.join().unwrap(), Some(Cancelled::Killed));
    assert!(timed.join().unwrap().is_err());
    assert!(s.0.try_lock().is_ok());
    // Nobody is left waiting: a notification finds no one.
    s.1.notify_all();
}

/// A waiter notified, then killed while it waits for the mutex again,
/// passes the notification to the next waiter.
#[test]
fn a_notification_spent_on_a_waiter_killed_before_relocking_is_passed_on() {
    let s = Rc::new((Mutex::new(0), Condvar::new()));
    let (s1, s2) = (s.clone(), s.clone());
    let a = sylvan::spawn(move || cancelled(s1.1.wait(s1.0.lock().unwrap())));
    let b = sylvan::spawn(move || *s2.1.wait(s2.0.lock().unwrap()).unwrap());
    sylvan::yield_now();
    let (m, cv) = &*s;
    let mut g = m.lock().unwrap();
    cv.notify_one(); // a is notified, then waits for the mutex we hold
    sylvan::yield_now();
    a.kill();
    assert_eq!(a.join().unwrap(), Some(Cancelled::Killed));
    *g = 7;
    drop(g);
    assert_eq!(b.join().unwrap(), 7, "b got a's notification");
}

#[derive(Debug, Clone)]
enum Op {
    Lock {
        timeout_s: Option<u8>,
    },
    TryLock,
    Release(usize),
    Kill(usize),
    Advance(u8),
    /// Run the hub until every green thread is parked or done.
    Settle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::option::of(1u8..4).prop_map(|t| Op::Lock { timeout_s: t }),
        1 => Just(Op::TryLock),
        3 => (0usize..16).prop_map(Op::Release),
        2 => (0usize..16).prop_map(Op::Kill),
        2 => (1u8..3).prop_map(Op::Advance),
        2 => Just(Op::Settle),
    ]
}

/// What the model sees of each green thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Holding,
    Done,
}

struct Actor {
    g: GreenThread<()>,
    release: Event<()>,
    phase: Rc<Cell<Phase>>,
}

/// Runs the hub until no green thread is ready (every one is parked on
/// something the test controls, or finished): every run of an actor
/// changes its phase, so a round of the hub that changes none ran none.
fn settle(actors: &[Actor]) {
    let phases = || actors.iter().map(|a| a.phase.get()).collect::<Vec<_>>();
    for _ in 0..10_000 {
        let before = phases();
        sylvan::yield_now();
        if phases() == before {
            return;
        }
    }
    panic!("the hub never settled");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Under random locks (some with deadlines), try_locks, releases, kills
    /// and time jumps: never two holders; once the hub settles, nobody is
    /// left waiting while the mutex is free (no lost hand-off); waiters
    /// get it in the order they queued; at the end it is free.
    #[test]
    fn mutex_keeps_mutual_exclusion_and_hands_off(ops in proptest::collection::vec(op(), 1..60)) {
        sylvan::time::pause();
        let m = Rc::new(Mutex::new(()));
        let holders = Rc::new(Cell::new(0usize));
        let violated = Rc::new(Cell::new(false));
        let grants = Rc::new(RefCell::new(Vec::new()));
        let queued = Rc::new(RefCell::new(Vec::new()));
        let mut actors: Vec<Actor> = Vec::new();
        let mut try_held = None;
        for op in ops.into_iter().chain([Op::Settle]) {
            let op_kind = op.clone();
            match op {
                Op::Lock { timeout_s } => {
                    let id = actors.len();
                    let (m, holders, violated, grants, queued) =
                        (m.clone(), holders.clone(), violated.clone(), grants.clone(), queued.clone());
                    let release = Event::new();
                    let rel = release.clone();
                    let phase = Rc::new(Cell::new(Phase::Waiting));
                    let ph = phase.clone();
                    let g = sylvan::spawn(move || {
                        if m.try_lock().is_err() {
                            queued.borrow_mut().push(id);
                        }
                        let lock = || m.lock();
                        let guard = match timeout_s {
                            Some(s) => match sylvan::timeout(Duration::from_secs(s.into()), lock) {
                                Ok(Ok(g)) => g,
                                _ => return ph.set(Phase::Done),
                            },
                            None => match lock() {
                                Ok(g) => g,
                                Err(_) => return ph.set(Phase::Done),
                            },
                        };
                        holders.set(holders.get() + 1);
                        if holders.get() > 1 {
                            violated.set(true);
                        }
                        grants.borrow_mut().push(id);
                        ph.set(Phase::Holding);
                        let _ = rel.wait();
                        holders.set(holders.get() - 1);
                        ph.set(Phase::Done);
                        drop(guard);
                    });
                    actors.push(Actor { g, release, phase });
                }
                Op::TryLock => {
                    if try_held.is_none() {
                        if let Ok(g) = m.try_lock() {
                            prop_assert_eq!(holders.get(), 0);
                            try_held = Some(g);
                        }
                    }
                }
                Op::Release(i) => {
                    if let Some(a) = actors.get(i % actors.len().max(1)) {
                        let _ = a.release.send(());
                    }
                    if i % 3 == 0 {
                        try_held = None;
                    }
                }
                Op::Kill(i) => {
                    if let Some(a) = actors.get(i % actors.len().max(1)) {
                        a.g.kill();
                    }
                }
                Op::Advance(s) => sylvan::time::advance(Duration::from_secs(s.into())),
                Op::Settle => settle(&actors),
            }
            prop_assert!(!violated.get(), "two holders at once");
            let holding = actors.iter().filter(|a| a.phase.get() == Phase::Holding).count()
                + usize::from(try_held.is_some());
            prop_assert!(holding <= 1);
            // Between settles, ops pile up (a kill, a release and a new
            // waiter all pending at once); once settled, check hand-off.
            if matches!(op_kind, Op::Settle) && holding == 0 {
                // (An actor killed before it ever ran stays `Waiting`.)
                let waiting = actors
                    .iter()
                    .filter(|a| a.phase.get() == Phase::Waiting && !a.g.is_finished())
                    .count();
                prop_assert_eq!(waiting, 0, "waiters left parked while the mutex is free");
                prop_assert!(m.try_lock().is_ok(), "free and nobody queued");
            }
        }
        drop(try_held);
        for a in &actors {
            let _ = a.release.send(());
            a.g.kill();
        }
        for a in actors {
            match a.g.join() {
                Ok(()) | Err(JoinError::Killed) => {}
                Err(e) => panic!("{e}"),
            }
        }
        prop_assert_eq!(holders.get(), 0);
        prop_assert!(m.try_lock().is_ok(), "free at the end");
        let queued = queued.borrow();
        let granted_queued: Vec<usize> =
            grants.borrow().iter().copied().filter(|id| queued.contains(id)).collect();
        let mut sorted = granted_queued.clone();
        sorted.sort_unstable_by_key(|id| queued.iter().position(|q| q == id));
        prop_assert_eq!(granted_queued, sorted, "first come, first served");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The same random schedules on an `RwLock`, each lock a read or a
    /// write: a writer is always alone; once the hub settles, nobody waits
    /// while the lock is free, and a reader waits only behind a writer
    /// (holding, or queued); grants follow the queue; it ends free.
    #[test]
    fn rwlock_keeps_writers_alone_and_hands_off(
        ops in proptest::collection::vec((op(), proptest::bool::ANY), 1..60),
    ) {
        sylvan::time::pause();
        let l = Rc::new(RwLock::new(()));
        let readers = Rc::new(Cell::new(0usize));
        let writers = Rc::new(Cell::new(0usize));
        let violated = Rc::new(Cell::new(false));
        let grants = Rc::new(RefCell::new(Vec::new()));
        let queued = Rc::new(RefCell::new(Vec::new()));
        let mut actors: Vec<Actor> = Vec::new();
        let mut writes: Vec<bool> = Vec::new();
        for (op, write) in ops.into_iter().chain([(Op::Settle, false)]) {
            let settled = matches!(op, Op::Settle);
            match op {
                Op::Lock { timeout_s } => {
                    let id = actors.len();
                    let (l, readers, writers, violated, grants, queued) = (
                        l.clone(), readers.clone(), writers.clone(), violated.clone(),
                        grants.clone(), queued.clone(),
                    );
                    let release = Event::new();
                    let rel = release.clone();
                    let phase = Rc::new(Cell::new(Phase::Waiting));
                    let ph = phase.clone();
                    let g = sylvan::spawn(move || {
                        let free = if write { l.try_write().is_ok() } else { l.try_read().is_ok() };
                        if !free {
                            queued.borrow_mut().push(id);
                        }
                        let hold = |count: &Cell<usize>| {
                            count.set(count.get() + 1);
                            if writers.get() > 1 || (writers.get() == 1 && readers.get() > 0) {
                                violated.set(true);
                            }
                            grants.borrow_mut().push(id);
                            ph.set(Phase::Holding);
                            let _ = rel.wait();
                            count.set(count.get() - 1);
                        };
                        let limit = timeout_s.map(|s| Duration::from_secs(s.into()));
                        if write {
                            let guard = match limit {
                                Some(d) => sylvan::timeout(d, || l.write()).ok().and_then(Result::ok),
                                None => l.write().ok(),
                            };
                            if let Some(_guard) = guard {
                                hold(&writers);
                            }
                        } else {
                            let guard = match limit {
                                Some(d) => sylvan::timeout(d, || l.read()).ok().and_then(Result::ok),
                                None => l.read().ok(),
                            };
                            if let Some(_guard) = guard {
                                hold(&readers);
                            }
                        }
                        ph.set(Phase::Done);
                    });
                    actors.push(Actor { g, release, phase });
                    writes.push(write);
                }
                Op::TryLock => {}
                Op::Release(i) => {
                    if let Some(a) = actors.get(i % actors.len().max(1)) {
                        let _ = a.release.send(());
                    }
                }
                Op::Kill(i) => {
                    if let Some(a) = actors.get(i % actors.len().max(1)) {
                        a.g.kill();
                    }
                }
                Op::Advance(s) => sylvan::time::advance(Duration::from_secs(s.into())),
                Op::Settle => settle(&actors),
            }
            prop_assert!(!violated.get(), "a writer was not alone");
            if settled {
                let count = |phase: Phase, w: bool| {
                    actors.iter().zip(&writes)
                        .filter(|(a, ww)| **ww == w && a.phase.get() == phase && !a.g.is_finished())
                        .count()
                };
                let (rw, ww) = (count(Phase::Waiting, false), count(Phase::Waiting, true));
                let (rh, wh) = (count(Phase::Holding, false), count(Phase::Holding, true));
                if rh + wh == 0 {
                    prop_assert_eq!(rw + ww, 0, "waiters left parked while the lock is free");
                }
                if rw > 0 {
                    prop_assert!(wh + ww > 0, "a reader waits with no writer to wait for");
                }
            }
        }
        for a in &actors {
            let _ = a.release.send(());
            a.g.kill();
        }
        for a in actors {
            match a.g.join() {
                Ok(()) | Err(JoinError::Killed) => {}
                Err(e) => panic!("{e}"),
            }
        }
        prop_assert_eq!(readers.get() + writers.get(), 0);
        prop_assert!(l.try_write().is_ok(), "free at the end");
        let queued = queued.borrow();
        let granted_queued: Vec<usize> =
            grants.borrow().iter().copied().filter(|id| queued.contains(id)).collect();
        let mut sorted = granted_queued.clone();
        sorted.sort_unstable_by_key(|id| queued.iter().position(|q| q == id));
        prop_assert_eq!(granted_queued, sorted, "grants follow the queue");
    }
}

/// Compile-time `Send`/`Sync` shape of the public lock types.
mod send_sync {
    use super::*;
    use sylvan::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard, WaitTimeoutResult, shared};

    fn send<T: Send>() {}
    fn sync<T: Sync>() {}

    /// Fails to compile (ambiguous impl) if `T: Send`.
    trait NotSend<A> {
        fn check() {}
    }
    impl<T: ?Sized> NotSend<()> for T {}
    impl<T: ?Sized + Send> NotSend<u8> for T {}

    /// Fails to compile (ambiguous impl) if `T: Sync`.
    trait NotSync<A> {
        fn check() {}
    }
    impl<T: ?Sized> NotSync<()> for T {}
    impl<T: ?Sized + Sync> NotSync<u8> for T {}

    #[test]
    fn hub_local_locks_stay_on_their_thread() {
        <Mutex<u8> as NotSend<_>>::check();
        <Mutex<u8> as NotSync<_>>::check();
        <RwLock<u8> as NotSend<_>>::check();
        <RwLock<u8> as NotSync<_>>::check();
        <Condvar as NotSend<_>>::check();
        <Condvar as NotSync<_>>::check();
        <MutexGuard<'static, u8> as NotSend<_>>::check();
        <RwLockReadGuard<'static, u8> as NotSend<_>>::check();
        <RwLockWriteGuard<'static, u8> as NotSend<_>>::check();
        send::<WaitTimeoutResult>();
        sync::<WaitTimeoutResult>();
        send::<LockError<u8>>();
        sync::<LockError<u8>>();
    }

    #[test]
    fn shared_locks_cross_threads() {
        send::<shared::Mutex<u8>>();
        sync::<shared::Mutex<u8>>();
        send::<shared::RwLock<u8>>();
        sync::<shared::RwLock<u8>>();
        send::<shared::Condvar>();
        sync::<shared::Condvar>();
        // As std: the mutex is Sync for Send data, the RwLock needs Sync.
        sync::<shared::Mutex<Cell<u8>>>();
        <shared::RwLock<Cell<u8>> as NotSync<_>>::check();
        <shared::Mutex<Rc<u8>> as NotSend<_>>::check();
        <shared::Mutex<Rc<u8>> as NotSync<_>>::check();
        // Guards stay on their thread, and share only `Sync` data.
        <shared::MutexGuard<'static, u8> as NotSend<_>>::check();
        <shared::RwLockReadGuard<'static, u8> as NotSend<_>>::check();
        <shared::RwLockWriteGuard<'static, u8> as NotSend<_>>::check();
        sync::<shared::MutexGuard<'static, u8>>();
        <shared::MutexGuard<'static, Cell<u8>> as NotSync<_>>::check();
    }
}
