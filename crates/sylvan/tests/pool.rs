//! `GreenPool`: size bound (property test), blocking spawn, inline spawn
//! from a member of a full pool, `imap` order and memory bound, panics,
//! cancellation, resize.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use sylvan::sync::{Event, Queue};
use sylvan::{Cancelled, GreenPool, JoinError};

const HOUR: Duration = Duration::from_secs(3600);

/// Counts green threads inside a section and remembers the most at once.
#[derive(Clone, Default)]
struct Gauge {
    now: Rc<Cell<usize>>,
    most: Rc<Cell<usize>>,
}

impl Gauge {
    fn enter(&self) -> GaugeGuard {
        self.now.set(self.now.get() + 1);
        self.most.set(self.most.get().max(self.now.get()));
        GaugeGuard(self.now.clone())
    }
}

struct GaugeGuard(Rc<Cell<usize>>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

#[test]
fn spawn_waits_while_the_pool_is_full() {
    let pool = GreenPool::new(2);
    let gate = Event::<()>::new();
    let hold = |g: &Event<()>| {
        let g = g.clone();
        move || g.wait()
    };
    let a = pool.spawn(hold(&gate)).unwrap();
    let b = pool.spawn(hold(&gate)).unwrap();
    assert_eq!((pool.running(), pool.free()), (2, 0));
    let p = pool.clone();
    let g2 = gate.clone();
    let spawner = sylvan::spawn(move || {
        p.spawn(move || g2.wait())
            .map(|_| ())
            .map_err(|e| e.cause())
    });
    sylvan::yield_now();
    assert!(!spawner.is_finished(), "the third spawn waits");
    assert_eq!(pool.waiting(), 1);
    gate.send(()).unwrap();
    spawner.join().unwrap().unwrap();
    a.join().unwrap().unwrap();
    b.join().unwrap().unwrap();
    pool.wait_all().unwrap();
    assert_eq!((pool.running(), pool.waiting()), (0, 0));
}

#[test]
fn a_member_spawning_into_its_full_pool_runs_the_job_inline() {
    let pool = GreenPool::new(1);
    let p = pool.clone();
    let outer = pool
        .spawn(move || {
            let me = sylvan::current().id();
            // Full (we hold the only slot): runs inline, in this green thread.
            let inner = p.spawn(move || sylvan::current().id()).unwrap();
            let ran_in = inner.join().unwrap();
            let panicked = p.spawn(|| -> u8 { panic!("inline boom") }).unwrap();
            let msg = panicked
                .join()
                .unwrap_err()
                .panic_message()
                .map(str::to_owned);
            let n = Rc::new(Cell::new(0));
            let n2 = n.clone();
            p.spawn_n(move || n2.set(n2.get() + 1))
                .unwrap_or_else(|_| unreachable!());
            (me == ran_in, msg, n.get())
        })
        .unwrap();
    let (inline, msg, n) = sylvan::timeout(HOUR, || outer.join())
        .expect("no deadlock")
        .unwrap();
    assert!(inline);
    assert_eq!(msg.as_deref(), Some("inline boom"));
    assert_eq!(n, 1);
    assert_eq!(pool.running(), 0);
}

#[test]
fn panics_come_back_from_join_and_are_logged_when_nobody_joins() {
    let logs = util::capture_logs();
    let pool = GreenPool::new(4);
    let g = pool.spawn(|| -> u8 { panic!("joined boom") }).unwrap();
    assert_eq!(g.join().unwrap_err().panic_message(), Some("joined boom"));
    pool.spawn_n(|| panic!("detached boom")).unwrap();
    pool.wait_all().unwrap();
    assert!(
        logs.text().contains("detached boom"),
        "logged: {}",
        logs.text()
    );
    assert!(!logs.text().contains("joined boom"));
    assert_eq!(pool.running(), 0, "a panicking job frees its slot");
}

#[test]
fn wait_all_from_a_member_panics_instead_of_deadlocking() {
    let pool = GreenPool::new(2);
    let p = pool.clone();
    let g = pool.spawn(move || p.wait_all()).unwrap();
    let e = g.join().unwrap_err();
    assert!(e.panic_message().unwrap().contains("wait for itself"));
}

#[test]
fn cancelled_spawn_hands_the_closure_back_and_takes_no_slot() {
    sylvan::time::pause();
    let pool = GreenPool::new(1);
    let busy = pool.spawn(|| sylvan::sleep(HOUR)).unwrap();
    let mut back = None;
    let r = sylvan::timeout(Duration::from_secs(1), || {
        back = pool.spawn(|| 5).err().map(|e| {
            assert!(e.cause().is_timed_out());
            e.into_inner()
        });
    });
    assert!(r.is_err());
    assert_eq!(back.expect("handed back")(), 5);
    // By kill, too.
    let p = pool.clone();
    let killed = sylvan::spawn(move || p.spawn_n(|| ()).map_err(|e| e.cause()));
    sylvan::yield_now();
    killed.kill();
    assert_eq!(killed.join().unwrap(), Err(Cancelled::Killed));
    assert_eq!((pool.running(), pool.waiting()), (1, 0));
    busy.kill();
    busy.join().unwrap().unwrap_err();
    assert_eq!(pool.running(), 0);
}

/// A killed spawner still counted as waiting (its cancellation has not
/// run) makes a newcomer wait although a slot is free; when the killed one
/// leaves, the newcomer must get that slot.
#[test]
fn a_spawner_queued_behind_a_killed_one_is_not_stranded() {
    sylvan::time::pause();
    let pool = GreenPool::new(1);
    let gate = Event::<()>::new();
    let g = gate.clone();
    let busy = pool.spawn(move || g.wait()).unwrap();
    let go = Event::<()>::new();
    let (p1, p2, go2) = (pool.clone(), pool.clone(), go.clone());
    let s1 = sylvan::spawn(move || p1.spawn(|| 1).map(drop).map_err(|e| e.cause()));
    let s2 = sylvan::spawn(move || {
        go2.wait()?;
        p2.spawn(|| 2)
            .map_err(|e| e.cause())?
            .join()
            .map_err(|_| Cancelled::Killed)
    });
    sylvan::yield_now(); // s1 waits for a slot; s2 waits for `go`
    // Ready to run, in this order: `busy` (frees the slot, finds no live
    // spawner: s1 is killed), s2 (queues behind s1, still counted), s1
    // (leaves the queue).
    gate.send(()).unwrap();
    go.send(()).unwrap();
    s1.kill();
    busy.join().unwrap().unwrap();
    let r = sylvan::timeout(HOUR, || s2.join());
    assert_eq!(r.expect("s2 got the free slot").unwrap(), Ok(2));
    assert_eq!(s1.join().unwrap(), Err(Cancelled::Killed));
    assert_eq!((pool.running(), pool.waiting()), (0, 0));
}

#[test]
fn a_job_killed_before_it_ran_frees_its_slot() {
    let pool = GreenPool::new(1);
    let g = pool.spawn(|| unreachable!("never runs")).unwrap();
    g.kill();
    assert!(matches!(g.join(), Err(JoinError::Killed)));
    assert_eq!(pool.running(), 0);
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
}

#[test]
fn resize_grows_at_once_and_shrinks_as_jobs_finish() {
    let pool = GreenPool::new(1);
    let gate = Event::<()>::new();
    let gauge = Gauge::default();
    let starter = {
        let (pool, gate, gauge) = (pool.clone(), gate.clone(), gauge.clone());
        sylvan::spawn(move || {
            for _ in 0..6 {
                let (gate, gauge) = (gate.clone(), gauge.clone());
                pool.spawn_n(move || {
                    let _in = gauge.enter();
                    let _ = gate.wait();
                })
                .unwrap();
            }
        })
    };
    sylvan::yield_now();
    assert_eq!(pool.running(), 1);
    pool.resize(3);
    sylvan::yield_now(); // the starter spawns two more
    sylvan::yield_now(); // and they start
    assert_eq!((pool.running(), pool.free()), (3, 0));
    assert_eq!(gauge.now.get(), 3);
    pool.resize(1);
    assert_eq!(pool.free(), 0);
    gate.send(()).unwrap();
    starter.join().unwrap();
    pool.wait_all().unwrap();
    assert_eq!(gauge.most.get(), 3);
}

#[test]
fn imap_yields_in_input_order_with_bounded_memory() {
    sylvan::time::pause();
    let pool = GreenPool::new(4);
    let started = Rc::new(Cell::new(0u64));
    let s = started.clone();
    let results = pool.imap(
        move |n: u64| {
            s.set(s.get() + 1);
            // Later items finish sooner.
            sylvan::sleep(Duration::from_millis(100 - n)).unwrap();
            n * 2
        },
        0..100u64,
    );
    let mut consumed = 0u64;
    for (i, r) in results.enumerate() {
        assert_eq!(r.unwrap(), i as u64 * 2);
        consumed += 1;
        assert!(
            started.get() - consumed <= 4,
            "at most `size` jobs pending: {} started, {consumed} consumed",
            started.get()
        );
    }
    assert_eq!(consumed, 100);
}

#[test]
fn imap_is_lazy_on_endless_input_and_reports_panics_in_place() {
    let pool = GreenPool::new(3);
    let out: Vec<_> = pool
        .imap(
            |n: u32| {
                assert!(n != 2, "two is bad");
                n
            },
            0..,
        )
        .take(5)
        .map(|r| r.map_err(|e| e.panic_message().map(str::to_owned)))
        .collect();
    assert_eq!(
        out,
        vec![Ok(0), Ok(1), Err(Some("two is bad".into())), Ok(3), Ok(4)]
    );
}

#[test]
fn imap_under_timeout_loses_no_result() {
    sylvan::time::pause();
    let pool = GreenPool::new(2);
    let mut it = pool.imap(
        |n: u64| {
            sylvan::sleep(Duration::from_secs(n + 1)).unwrap();
            n
        },
        0..6u64,
    );
    let mut got = Vec::new();
    let mut timeouts = 0;
    while got.len() < 6 {
        match sylvan::timeout(Duration::from_millis(700), || it.next()) {
            Ok(Some(r)) => got.push(r.unwrap()),
            Ok(None) => panic!("ended early"),
            Err(_) => timeouts += 1,
        }
    }
    assert!(timeouts > 0);
    assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
    assert!(it.next().is_none());
}

#[derive(Debug, Clone)]
enum Op {
    Spawn(u8),
    SpawnTimeout(u8, u8),
    Resize(u8),
    Kill(usize),
    Advance(u8),
    Yield,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4).prop_map(Op::Spawn),
        2 => (0u8..4, 1u8..3).prop_map(|(d, t)| Op::SpawnTimeout(d, t)),
        1 => (0u8..5).prop_map(Op::Resize),
        2 => (0usize..16).prop_map(Op::Kill),
        2 => (1u8..3).prop_map(Op::Advance),
        2 => Just(Op::Yield),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever mix of spawns (from several spawner green threads, some
    /// with deadlines), kills, resizes and time: the pool never runs more
    /// green threads than its size (more only right after shrinking, and
    /// then only fewer and fewer), no job runs without a slot, and at the
    /// end every slot is free and every job that was spawned ran.
    #[test]
    fn pool_never_exceeds_its_size(size in 1usize..4, ops in proptest::collection::vec(op(), 1..50)) {
        sylvan::time::pause();
        let pool = GreenPool::new(size);
        let inside = Rc::new(Cell::new(0usize));
        let violations = Rc::new(RefCell::new(Vec::new()));
        let ran = Rc::new(Cell::new(0usize));
        let spawned = Rc::new(Cell::new(0usize));
        let mut spawners = Vec::new();
        let jobs = Queue::unbounded();
        let mut prev_running = 0;
        for op in ops {
            match op {
                Op::Spawn(d) | Op::SpawnTimeout(d, _) => {
                    let deadline = match op { Op::SpawnTimeout(_, t) => Some(t), _ => None };
                    let (pool, inside, violations, ran, spawned, jobs) = (
                        pool.clone(), inside.clone(), violations.clone(), ran.clone(), spawned.clone(), jobs.clone(),
                    );
                    spawners.push(sylvan::spawn(move || {
                        let job = {
                            let (pool, inside, violations, ran) = (pool.clone(), inside.clone(), violations.clone(), ran.clone());
                            move || {
                                inside.set(inside.get() + 1);
                                if inside.get() > pool.running() {
                                    violations.borrow_mut().push((inside.get(), pool.running()));
                                }
                                let _ = sylvan::sleep(Duration::from_secs(d.into()));
                                inside.set(inside.get() - 1);
                                ran.set(ran.get() + 1);
                            }
                        };
                        let r = match deadline {
                            Some(t) => sylvan::timeout(Duration::from_secs(t.into()), || pool.spawn(job).map_err(drop))
                                .unwrap_or(Err(())),
                            None => pool.spawn(job).map_err(drop),
                        };
                        if let Ok(g) = r {
                            spawned.set(spawned.get() + 1);
                            jobs.put(g).unwrap();
                        }
                    }));
                }
                Op::Resize(n) => pool.resize(n.into()),
                Op::Kill(i) => {
                    if let Some(g) = spawners.get(i % spawners.len().max(1)) {
                        g.kill();
                    }
                }
                Op::Advance(s) => sylvan::time::advance(Duration::from_secs(s.into())),
                Op::Yield => sylvan::yield_now(),
            }
            // Above its size only after shrinking, and then only draining.
            prop_assert!(pool.running() <= pool.size().max(prev_running),
                "{} running, size {}, {} before", pool.running(), pool.size(), prev_running);
            prev_running = pool.running();
        }
        pool.resize(size);
        for s in &spawners {
            s.kill();
        }
        for s in spawners {
            // Killed before it ran is fine: it never spawned.
            let _ = s.join();
        }
        pool.wait_all().unwrap();
        while let Some(g) = jobs.try_get() {
            g.join().unwrap();
        }
        prop_assert!(violations.borrow().is_empty(), "{:?}", violations.borrow());
        prop_assert_eq!(pool.running(), 0);
        prop_assert_eq!(pool.waiting(), 0);
        prop_assert_eq!(ran.get(), spawned.get());
    }
}

#[test]
fn imap_unordered_yields_as_jobs_finish_with_bounded_concurrency() {
    sylvan::time::pause();
    let pool = GreenPool::new(2);
    let (live, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (l, p) = (live.clone(), peak.clone());
    let got: Vec<u64> = pool
        .imap_unordered(
            move |s: u64| {
                l.set(l.get() + 1);
                p.set(p.get().max(l.get()));
                sylvan::sleep(Duration::from_secs(s)).unwrap();
                l.set(l.get() - 1);
                s
            },
            [5, 1, 1, 3],
        )
        .map(Result::unwrap)
        .collect();
    // Two at a time: 5 and 1 start; 1 ends (t=1), the second 1 starts and
    // ends (t=2), 3 starts and ends (t=5, with the 5).
    assert_eq!(got, vec![1, 1, 5, 3]);
    assert_eq!(peak.get(), 2, "never more than the pool's size at once");
}

#[test]
fn imap_unordered_reports_panics_and_killed_jobs_in_place() {
    let pool = GreenPool::new(4);
    let mut it = pool.imap_unordered(
        |n: u32| {
            if n == 1 {
                panic!("one");
            }
            n
        },
        [0, 1, 2],
    );
    let mut got: Vec<String> = Vec::new();
    for r in it.by_ref() {
        got.push(match r {
            Ok(n) => n.to_string(),
            Err(e) => e.panic_message().unwrap_or("?").to_string(),
        });
    }
    assert_eq!(got, vec!["0", "one", "2"]);

    // Jobs killed before they ran still yield, as `Killed`.
    let mut it = pool.imap_unordered(|n: u32| n, [7, 8]);
    let pool2 = pool.clone();
    let first = {
        // Start both jobs without letting them run, then kill them.
        let r = sylvan::timeout(Duration::ZERO, || it.next());
        assert!(r.is_err() || r.as_ref().is_ok_and(|x| x.is_some()));
        r
    };
    drop(first);
    assert_eq!(pool2.kill_all(), 2);
    let rest: Vec<_> = it.collect();
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|r| matches!(r, Err(JoinError::Killed))));
}

#[test]
fn imap_unordered_under_timeout_loses_no_result() {
    sylvan::time::pause();
    let pool = GreenPool::new(3);
    let mut it = pool.imap_unordered(
        |s: u64| {
            sylvan::sleep(Duration::from_secs(s)).unwrap();
            s
        },
        [2, 4, 6],
    );
    let got = RefCell::new(Vec::new());
    let mut timeouts = 0;
    while got.borrow().len() < 3 {
        // A one-second window at a time: most windows end in a cancelled
        // wait, which must leave every result for a later one.
        let r = sylvan::timeout(Duration::from_secs(1), || {
            for r in it.by_ref() {
                match r {
                    Ok(x) => got.borrow_mut().push(x),
                    Err(JoinError::Cancelled(c)) => {
                        assert!(c.is_timed_out());
                        break;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        });
        timeouts += usize::from(r.is_err());
        assert!(timeouts < 20, "no progress");
    }
    assert!(timeouts >= 3);
    assert_eq!(*got.borrow(), vec![2, 4, 6]);
    assert!(it.next().is_none());
}
