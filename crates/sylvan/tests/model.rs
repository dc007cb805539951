//! A randomized model test of the runtime: random programs of spawns,
//! kills, nested timeouts, sleeps, queue/semaphore/channel/event
//! operations, panics, destructors that block or yield, virtual time, and
//! the end of the thread (with or without `sylvan::shutdown`).
//!
//! Invariants, checked on every program:
//! - queue and channel items are conserved: everything put or sent was got,
//!   received, or is still there; nothing is duplicated;
//! - semaphore permits are conserved once every green thread has ended;
//! - every green thread ends (after a final kill, every join completes):
//!   each waiter got its value or its `Cancelled`, none was left parked;
//! - every destructor runs at most once, and exactly once unless its green
//!   thread was leaked at thread exit;
//! - the process never aborts (an abort fails the whole test binary).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use sylvan::GreenThread;
use sylvan::sync::{Event, Queue, Semaphore};

const HOUR: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
enum Job {
    Sleep(u8),
    Get,
    Put(u8),
    Acquire(u8),
    Recv,
    Send(u8),
    Wait,
    Nested(u8, u8, u8),
    Panic,
    DropBlocks,
    DropYields,
    Spawner(u8),
}

#[derive(Debug, Clone)]
enum Act {
    Spawn(Job),
    Kill(usize),
    Yield,
    Advance(u8),
    RootPut(u8),
    RootSend(u8),
    AddPermit,
    SetEvent,
}

fn job() -> impl Strategy<Value = Job> {
    prop_oneof![
        (0u8..20).prop_map(Job::Sleep),
        Just(Job::Get),
        any::<u8>().prop_map(Job::Put),
        (0u8..10).prop_map(Job::Acquire),
        Just(Job::Recv),
        any::<u8>().prop_map(Job::Send),
        Just(Job::Wait),
        (0u8..20, 0u8..20, 0u8..20).prop_map(|(a, b, c)| Job::Nested(a, b, c)),
        Just(Job::Panic),
        Just(Job::DropBlocks),
        Just(Job::DropYields),
        (0u8..10).prop_map(Job::Spawner),
    ]
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => job().prop_map(Act::Spawn),
        2 => any::<usize>().prop_map(Act::Kill),
        2 => Just(Act::Yield),
        2 => (0u8..15).prop_map(Act::Advance),
        1 => any::<u8>().prop_map(Act::RootPut),
        1 => any::<u8>().prop_map(Act::RootSend),
        1 => Just(Act::AddPermit),
        1 => Just(Act::SetEvent),
    ]
}

/// Counts the drops of one job's destructor-carrying value.
#[derive(Clone, Default)]
struct Drops(Arc<Mutex<BTreeMap<usize, u32>>>);

struct Tracked(usize, Drops);
impl Drop for Tracked {
    fn drop(&mut self) {
        *self.1.0.lock().unwrap().entry(self.0).or_default() += 1;
    }
}

/// A value whose destructor blocks (sleeps).
struct BlocksOnDrop;
impl Drop for BlocksOnDrop {
    fn drop(&mut self) {
        let _ = sylvan::sleep(Duration::from_millis(1));
    }
}

/// A value whose destructor yields.
struct YieldsOnDrop;
impl Drop for YieldsOnDrop {
    fn drop(&mut self) {
        sylvan::yield_now();
    }
}

#[derive(Default)]
struct Ledger {
    put: Vec<u8>,
    got: Vec<u8>,
    sent: Vec<u8>,
    received: Vec<u8>,
}

fn sorted(mut v: Vec<u8>) -> Vec<u8> {
    v.sort_unstable();
    v
}

/// Runs one program on a fresh OS thread; returns the drop counts and the
/// number of jobs spawned, or a broken invariant.
/// How a program ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The thread exits with green threads alive: they are leaked.
    Leak,
    /// Every green thread is killed and joined, then the hub shut down.
    KillAndJoin,
    /// `sylvan::shutdown` force-unwinds whatever is still parked.
    Shutdown,
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![Just(End::Leak), Just(End::KillAndJoin), Just(End::Shutdown)]
}

fn run_program(acts: Vec<Act>, end: End) -> Result<(), String> {
    let shutdown = end != End::Leak;
    let drops = Drops::default();
    let d = drops.clone();
    let spawned = Arc::new(Mutex::new(0usize));
    let s = spawned.clone();
    let inner = std::thread::spawn(move || -> Result<(), String> {
        sylvan::time::pause();
        let q = Queue::<u8>::bounded(2);
        let sem = Semaphore::new(1);
        let (tx, rx) = sylvan::sync::bounded::<u8>(1);
        let ev = Event::<()>::new();
        let ledger = Rc::new(RefCell::new(Ledger::default()));
        let mut added = 0usize;
        let mut handles: Vec<GreenThread<()>> = Vec::new();
        for a in acts {
            match a {
                Act::Spawn(j) => {
                    let id = handles.len();
                    let t = Tracked(id, d.clone());
                    let (q, sem, tx, rx, ev, l) = (
                        q.clone(),
                        sem.clone(),
                        tx.clone(),
                        rx.clone(),
                        ev.clone(),
                        ledger.clone(),
                    );
                    handles.push(sylvan::spawn(move || {
                        let _t = t;
                        match j {
                            Job::Sleep(ms) => {
                                let _ = sylvan::sleep(Duration::from_millis(ms.into()));
                            }
                            Job::Get => {
                                if let Ok(v) = q.get() {
                                    l.borrow_mut().got.push(v);
                                }
                            }
                            Job::Put(v) => {
                                if q.put(v).is_ok() {
                                    l.borrow_mut().put.push(v);
                                }
                            }
                            Job::Acquire(ms) => {
                                if let Ok(p) = sem.acquire() {
                                    let _ = sylvan::sleep(Duration::from_millis(ms.into()));
                                    drop(p);
                                }
                            }
                            Job::Recv => {
                                if let Ok(v) = rx.recv() {
                                    l.borrow_mut().received.push(v);
                                }
                            }
                            Job::Send(v) => {
                                if tx.send(v).is_ok() {
                                    l.borrow_mut().sent.push(v);
                                }
                            }
                            Job::Wait => {
                                let _ = ev.wait();
                            }
                            Job::Nested(a, b, c) => {
                                let _ = sylvan::timeout(Duration::from_millis(a.into()), || {
                                    sylvan::timeout(Duration::from_millis(b.into()), || {
                                        sylvan::sleep(Duration::from_millis(c.into()))
                                    })
                                });
                            }
                            Job::Panic => {
                                let _y = YieldsOnDrop;
                                let _b = BlocksOnDrop;
                                panic!("model panic");
                            }
                            Job::DropBlocks => {
                                let _b = BlocksOnDrop;
                                let _ = sylvan::sleep(Duration::from_millis(3));
                            }
                            Job::DropYields => {
                                let _y = YieldsOnDrop;
                                let _ = sylvan::sleep(Duration::from_millis(5));
                            }
                            Job::Spawner(ms) => {
                                let child = sylvan::spawn(move || {
                                    let _b = BlocksOnDrop;
                                    sylvan::sleep(Duration::from_millis(ms.into()))
                                });
                                let _ = child.join();
                            }
                        }
                    }));
                    *s.lock().unwrap() += 1;
                }
                Act::Kill(i) => {
                    if !handles.is_empty() {
                        handles[i % handles.len()].kill();
                    }
                }
                Act::Yield => sylvan::yield_now(),
                Act::Advance(ms) => sylvan::time::advance(Duration::from_millis(ms.into())),
                Act::RootPut(v) => {
                    if q.try_put(v).is_ok() {
                        ledger.borrow_mut().put.push(v);
                    }
                }
                Act::RootSend(v) => {
                    if tx.try_send(v).is_ok() {
                        ledger.borrow_mut().sent.push(v);
                    }
                }
                Act::AddPermit => {
                    sem.add_permits(1).unwrap();
                    added += 1;
                }
                Act::SetEvent => {
                    let _ = ev.send(());
                }
            }
        }
        if !shutdown {
            // Thread exit with green threads possibly alive: they are leaked.
            return Ok(());
        }
        if end == End::KillAndJoin {
            // Let time run out for every sleeper, then kill what is left:
            // every join must complete (nobody stays parked).
            sylvan::time::advance(HOUR);
            for h in &handles {
                h.kill();
            }
            let joined = sylvan::timeout(HOUR, || {
                for h in handles {
                    let _ = h.join();
                }
            });
            if joined.is_err() {
                return Err("a killed green thread never finished".into());
            }
        } else {
            drop(handles);
        }
        sylvan::shutdown();
        if sylvan::debug::stats().green_threads != 0 {
            return Err("green threads left after shutdown".into());
        }
        let l = ledger.borrow();
        let mut left = Vec::new();
        while let Some(v) = q.try_get() {
            left.push(v);
        }
        let mut have = l.got.clone();
        have.extend(left);
        if sorted(l.put.clone()) != sorted(have.clone()) {
            return Err(format!("queue: put {:?}, got+left {:?}", l.put, have));
        }
        let mut left = Vec::new();
        while let Ok(v) = rx.try_recv() {
            left.push(v);
        }
        let mut have = l.received.clone();
        have.extend(left);
        if sorted(l.sent.clone()) != sorted(have.clone()) {
            return Err(format!(
                "channel: sent {:?}, received+left {:?}",
                l.sent, have
            ));
        }
        if sem.available_permits() != 1 + added {
            return Err(format!(
                "semaphore: {} permits free, expected {}",
                sem.available_permits(),
                1 + added
            ));
        }
        Ok(())
    });
    let r = inner
        .join()
        .map_err(|_| "the program's thread panicked".to_string())?;
    r?;
    let n = *spawned.lock().unwrap();
    let counts = drops.0.lock().unwrap();
    for id in 0..n {
        let c = counts.get(&id).copied().unwrap_or(0);
        if c > 1 || (shutdown && c != 1) {
            return Err(format!("job {id}: its destructor ran {c} times"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn the_runtime_keeps_its_invariants(acts in prop::collection::vec(act(), 1..60), end in end()) {
        if let Err(e) = run_program(acts, end) {
            prop_assert!(false, "{}", e);
        }
    }
}
