//! A randomized model test of `Select`: random programs of green threads
//! that select over queues (bounded, rendezvous, unbounded), semaphores,
//! an event, a channel and deadlines, next to plain getters, putters,
//! acquirers, receivers, senders and waiters, with kills, scoped
//! deadlines, virtual time, event resets and a queue closing.
//!
//! Invariants, checked on every program:
//! - a select fires at most one arm, exactly one when it returns `Ok`, and
//!   none when it returns `Cancelled`; every put/send arm that did not fire
//!   still holds its value in its slot (losers untouched);
//! - items are conserved: everything put or sent was got, received, or is
//!   still there; nothing is duplicated;
//! - permits are conserved once every green thread has ended;
//! - no lost wake-ups: once the program has gone quiet (time run out, no
//!   green thread runnable), no waiter — select or plain — is parked on
//!   something that is ready (an item in its queue, room for its put, a
//!   free permit, a sent event, a waiting partner on a rendezvous queue);
//! - every green thread ends after a final kill.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use sylvan::GreenThread;
use sylvan::select::{Select, Waitable, iwait};
use sylvan::sync::{Event, Queue, Receiver, Semaphore, Sender};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arm {
    /// Get from queue 0 (bounded 1), 1 (rendezvous) or 2 (unbounded).
    Get(u8),
    Put(u8, u8),
    /// Acquire semaphore 0 (one permit) or 1 (none), hold for ms.
    Acquire(u8, u8),
    Wait,
    Recv,
    Send(u8),
    Timeout(u8),
}

#[derive(Debug, Clone)]
enum Job {
    Select(Vec<Arm>, Option<u8>),
    /// A plain blocking call of the same kind as the arm.
    Plain(Arm),
    /// `iwait(..).next()` over queues (`Get` arms), the event (`Wait`)
    /// and the receiver (`Recv`): watches, takes nothing.
    Iwait(Vec<Arm>),
}

#[derive(Debug, Clone)]
enum Act {
    Spawn(Job),
    Kill(usize),
    Yield,
    Advance(u8),
    RootPut(u8, u8),
    RootGet(u8),
    AddPermit(u8),
    SetEvent,
    ResetEvent,
    CloseUnbounded,
}

fn arm() -> impl Strategy<Value = Arm> {
    prop_oneof![
        (0u8..3).prop_map(Arm::Get),
        (0u8..3, any::<u8>()).prop_map(|(q, v)| Arm::Put(q, v)),
        (0u8..2, 0u8..10).prop_map(|(s, ms)| Arm::Acquire(s, ms)),
        Just(Arm::Wait),
        Just(Arm::Recv),
        any::<u8>().prop_map(Arm::Send),
        (0u8..30).prop_map(Arm::Timeout),
    ]
}

fn job() -> impl Strategy<Value = Job> {
    prop_oneof![
        3 => (prop::collection::vec(arm(), 0..5), prop::option::of(0u8..30))
            .prop_map(|(a, d)| Job::Select(a, d)),
        2 => arm().prop_map(Job::Plain),
        1 => prop::collection::vec(
            prop_oneof![(0u8..3).prop_map(Arm::Get), Just(Arm::Wait), Just(Arm::Recv)],
            0..4
        )
        .prop_map(Job::Iwait),
    ]
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        6 => job().prop_map(Act::Spawn),
        2 => any::<usize>().prop_map(Act::Kill),
        2 => Just(Act::Yield),
        2 => (0u8..15).prop_map(Act::Advance),
        1 => (0u8..3, any::<u8>()).prop_map(|(q, v)| Act::RootPut(q, v)),
        1 => (0u8..3).prop_map(Act::RootGet),
        1 => (0u8..2).prop_map(Act::AddPermit),
        1 => Just(Act::SetEvent),
        1 => Just(Act::ResetEvent),
        1 => Just(Act::CloseUnbounded),
    ]
}

/// Everything the program's objects saw, by the test's own accounting.
#[derive(Default)]
struct Ledger {
    put: [Vec<u8>; 3],
    got: [Vec<u8>; 3],
    sent: Vec<u8>,
    received: Vec<u8>,
    /// What each job is parked on right now (set just before it blocks),
    /// and whether it would take (not only watch).
    waiting: Vec<Option<(Vec<Arm>, bool)>>,
    errors: Vec<String>,
}

#[derive(Clone)]
struct World {
    qs: [Queue<u8>; 3],
    sems: [Semaphore; 2],
    ev: Event<()>,
    tx: Sender<u8>,
    rx: Receiver<u8>,
    l: Rc<RefCell<Ledger>>,
}

impl World {
    /// Performs one plain blocking call.
    fn plain(&self, a: Arm) {
        match a {
            Arm::Get(q) => {
                if let Ok(v) = self.qs[q as usize].get() {
                    self.l.borrow_mut().got[q as usize].push(v);
                }
            }
            Arm::Put(q, v) => {
                if self.qs[q as usize].put(v).is_ok() {
                    self.l.borrow_mut().put[q as usize].push(v);
                }
            }
            Arm::Acquire(s, ms) => {
                if let Ok(p) = self.sems[s as usize].acquire() {
                    let _ = sylvan::sleep(Duration::from_millis(ms.into()));
                    drop(p);
                }
            }
            Arm::Wait => {
                let _ = self.ev.wait();
            }
            Arm::Recv => {
                if let Ok(v) = self.rx.recv() {
                    self.l.borrow_mut().received.push(v);
                }
            }
            Arm::Send(v) => {
                if self.tx.send(v).is_ok() {
                    self.l.borrow_mut().sent.push(v);
                }
            }
            Arm::Timeout(ms) => {
                let _ = sylvan::sleep(Duration::from_millis(ms.into()));
            }
        }
    }

    /// Runs one select over `arms` and checks what it did.
    fn select(&self, arms: &[Arm], scope: Option<u8>) {
        let fired = Rc::new(Cell::new(0usize));
        // The value slots of put and send arms, by arm index.
        let mut slots: Vec<Option<u8>> = arms
            .iter()
            .map(|a| match a {
                Arm::Put(_, v) | Arm::Send(v) => Some(*v),
                _ => None,
            })
            .collect();
        let mut held = None;
        let r = {
            let mut sel: Select<'_, (usize, Option<sylvan::sync::SemaphorePermit>, u8)> =
                Select::new();
            for ((i, a), slot) in arms.iter().enumerate().zip(slots.iter_mut()) {
                let (l, fired) = (self.l.clone(), fired.clone());
                sel = match *a {
                    Arm::Get(q) => sel.get(&self.qs[q as usize], move |r| {
                        fired.set(fired.get() + 1);
                        if let Ok(v) = r {
                            l.borrow_mut().got[q as usize].push(v);
                        }
                        (i, None, 0)
                    }),
                    Arm::Put(q, v) => sel.put(&self.qs[q as usize], slot, move |r| {
                        fired.set(fired.get() + 1);
                        match r {
                            Ok(()) => l.borrow_mut().put[q as usize].push(v),
                            Err(e) => {
                                if e.into_inner() != v {
                                    l.borrow_mut()
                                        .errors
                                        .push("put error lost its value".into())
                                }
                            }
                        }
                        (i, None, 0)
                    }),
                    Arm::Acquire(s, ms) => sel.acquire(&self.sems[s as usize], move |p| {
                        fired.set(fired.get() + 1);
                        (i, Some(p), ms)
                    }),
                    Arm::Wait => sel.wait(&self.ev, move |()| {
                        fired.set(fired.get() + 1);
                        (i, None, 0)
                    }),
                    Arm::Recv => sel.recv(&self.rx, move |r| {
                        fired.set(fired.get() + 1);
                        if let Ok(v) = r {
                            l.borrow_mut().received.push(v);
                        }
                        (i, None, 0)
                    }),
                    Arm::Send(v) => sel.send(&self.tx, slot, move |r| {
                        fired.set(fired.get() + 1);
                        if r.is_ok() {
                            l.borrow_mut().sent.push(v);
                        }
                        (i, None, 0)
                    }),
                    Arm::Timeout(ms) => sel.timeout(Duration::from_millis(ms.into()), move || {
                        fired.set(fired.get() + 1);
                        (i, None, 0)
                    }),
                };
            }
            match scope {
                Some(ms) => sylvan::timeout(Duration::from_millis(ms.into()), || sel.select())
                    .unwrap_or(Err(sylvan::Cancelled::Killed)),
                None => sel.select(),
            }
        };
        let mut l = self.l.borrow_mut();
        let winner = match r {
            Ok((i, p, ms)) => {
                held = p.map(|p| (p, ms));
                if fired.get() != 1 {
                    l.errors
                        .push(format!("select returned Ok but {} arms fired", fired.get()));
                }
                Some(i)
            }
            Err(_) => {
                if fired.get() != 0 {
                    l.errors.push(format!(
                        "select was cancelled but {} arms fired",
                        fired.get()
                    ));
                }
                None
            }
        };
        for (i, a) in arms.iter().enumerate() {
            if let Arm::Put(_, v) | Arm::Send(v) = a {
                let expect = if winner == Some(i) { None } else { Some(*v) };
                if slots[i] != expect {
                    l.errors.push(format!(
                        "arm {i} ({a:?}): slot holds {:?}, expected {expect:?}",
                        slots[i]
                    ));
                }
            }
        }
        drop(l);
        if let Some((p, ms)) = held {
            let _ = sylvan::sleep(Duration::from_millis(ms.into()));
            drop(p);
        }
    }

    /// Waits for the first of `arms` (as readiness) to be ready and
    /// checks that it is, and that waiting took nothing.
    fn iwait(&self, arms: &[Arm]) {
        let objects: Vec<&dyn Waitable> = arms
            .iter()
            .map(|a| match *a {
                Arm::Get(q) => &self.qs[q as usize] as &dyn Waitable,
                Arm::Wait => &self.ev,
                _ => &self.rx,
            })
            .collect();
        if let Some(Ok(i)) = iwait(&objects).next() {
            // Reported without anything running in between: still ready.
            if !objects[i].is_ready() {
                let e = format!("iwait reported {:?}, which is not ready", arms[i]);
                self.l.borrow_mut().errors.push(e);
            }
        }
    }

    /// Whether a waiter on `a` (job `me`) could go on now.
    fn ready(
        &self,
        a: Arm,
        me: usize,
        waiting: &[Option<(Vec<Arm>, bool)>],
        alive: &[bool],
    ) -> bool {
        let partner = |want: &dyn Fn(&Arm) -> bool| {
            waiting.iter().enumerate().any(|(j, w)| {
                j != me
                    && alive[j]
                    && w.as_ref()
                        .is_some_and(|(w, takes)| *takes && w.iter().any(want))
            })
        };
        match a {
            Arm::Get(q) => !self.qs[q as usize].is_empty() || self.qs[q as usize].is_closed(),
            Arm::Put(1, _) => partner(&|b| *b == Arm::Get(1)) || self.qs[1].is_closed(),
            Arm::Put(q, _) => {
                let q = &self.qs[q as usize];
                q.is_closed() || q.capacity().is_none_or(|c| q.len() < c)
            }
            Arm::Acquire(s, _) => self.sems[s as usize].available_permits() > 0,
            Arm::Wait => self.ev.ready(),
            Arm::Recv => !self.rx.is_empty(),
            Arm::Send(_) => self.rx.is_empty(),
            Arm::Timeout(_) => true,
        }
    }
}

fn sorted(mut v: Vec<u8>) -> Vec<u8> {
    v.sort_unstable();
    v
}

fn run_program(acts: Vec<Act>) -> Result<(), String> {
    std::thread::spawn(move || -> Result<(), String> {
        sylvan::time::pause();
        let (tx, rx) = sylvan::sync::bounded(1);
        let w = World {
            qs: [Queue::bounded(1), Queue::bounded(0), Queue::unbounded()],
            sems: [Semaphore::new(1), Semaphore::new(0)],
            ev: Event::new(),
            tx,
            rx,
            l: Rc::default(),
        };
        let mut added = [0usize; 2];
        let mut handles: Vec<GreenThread<()>> = Vec::new();
        for a in acts {
            match a {
                Act::Spawn(job) => {
                    let id = handles.len();
                    w.l.borrow_mut().waiting.push(None);
                    let w2 = w.clone();
                    handles.push(sylvan::spawn(move || match job {
                        Job::Select(arms, scope) => {
                            w2.l.borrow_mut().waiting[id] = Some((arms.clone(), true));
                            w2.select(&arms, scope);
                            w2.l.borrow_mut().waiting[id] = None;
                        }
                        Job::Plain(a) => {
                            w2.l.borrow_mut().waiting[id] = Some((vec![a], true));
                            w2.plain(a);
                            w2.l.borrow_mut().waiting[id] = None;
                        }
                        Job::Iwait(arms) => {
                            w2.l.borrow_mut().waiting[id] = Some((arms.clone(), false));
                            w2.iwait(&arms);
                            w2.l.borrow_mut().waiting[id] = None;
                        }
                    }));
                }
                Act::Kill(i) => {
                    if !handles.is_empty() {
                        handles[i % handles.len()].kill();
                    }
                }
                Act::Yield => sylvan::yield_now(),
                Act::Advance(ms) => sylvan::time::advance(Duration::from_millis(ms.into())),
                Act::RootPut(q, v) => {
                    if w.qs[q as usize].try_put(v).is_ok() {
                        w.l.borrow_mut().put[q as usize].push(v);
                    }
                }
                Act::RootGet(q) => {
                    if let Some(v) = w.qs[q as usize].try_get() {
                        w.l.borrow_mut().got[q as usize].push(v);
                    }
                }
                Act::AddPermit(s) => {
                    w.sems[s as usize].add_permits(1).unwrap();
                    added[s as usize] += 1;
                }
                Act::SetEvent => {
                    let _ = w.ev.send(());
                }
                Act::ResetEvent => {
                    w.ev.reset();
                }
                Act::CloseUnbounded => w.qs[2].close(),
            }
        }
        // Let the program go quiet: every timer fires, everything runnable
        // runs.
        for _ in 0..100 {
            sylvan::time::advance(Duration::from_secs(1));
            sylvan::yield_now();
        }
        {
            let l = w.l.borrow();
            let alive: Vec<bool> = handles.iter().map(|h| !h.is_finished()).collect();
            for (j, wt) in l.waiting.iter().enumerate() {
                let Some((arms, _)) = wt.as_ref().filter(|_| alive[j]) else {
                    continue;
                };
                for &a in arms {
                    if w.ready(a, j, &l.waiting, &alive) {
                        return Err(format!(
                            "lost wake-up: job {j} is parked on {arms:?} though {a:?} is ready"
                        ));
                    }
                }
            }
        }
        for h in &handles {
            h.kill();
        }
        let joined = sylvan::timeout(Duration::from_secs(3600), || {
            for h in handles {
                let _ = h.join();
            }
        });
        if joined.is_err() {
            return Err("a killed green thread never finished".into());
        }
        let l = w.l.borrow();
        if let Some(e) = l.errors.first() {
            return Err(e.clone());
        }
        for (i, q) in w.qs.iter().enumerate() {
            let mut have = l.got[i].clone();
            while let Some(v) = q.try_get() {
                have.push(v);
            }
            if sorted(l.put[i].clone()) != sorted(have.clone()) {
                return Err(format!(
                    "queue {i}: put {:?}, got+left {:?}",
                    l.put[i], have
                ));
            }
        }
        let mut have = l.received.clone();
        while let Ok(v) = w.rx.try_recv() {
            have.push(v);
        }
        if sorted(l.sent.clone()) != sorted(have.clone()) {
            return Err(format!(
                "channel: sent {:?}, received+left {:?}",
                l.sent, have
            ));
        }
        for (i, s) in w.sems.iter().enumerate() {
            let expect = [1, 0][i] + added[i];
            if s.available_permits() != expect {
                return Err(format!(
                    "semaphore {i}: {} permits free, expected {expect}",
                    s.available_permits()
                ));
            }
        }
        drop(l);
        sylvan::shutdown();
        Ok(())
    })
    .join()
    .map_err(|_| "the program's thread panicked".to_string())?
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn select_keeps_its_invariants(acts in prop::collection::vec(act(), 1..50)) {
        if let Err(e) = run_program(acts) {
            prop_assert!(false, "{}", e);
        }
    }
}
