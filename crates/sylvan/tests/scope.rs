//! Scoped green threads: every green thread of a `scope` is finished before
//! `scope` returns or unwinds past its caller, whatever happens.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use sylvan::{Cancelled, JoinError};

/// Counts drops, and records what a borrowed value held when dropped.
struct Drops<'a> {
    count: &'a Cell<u32>,
}

impl Drop for Drops<'_> {
    fn drop(&mut self) {
        self.count.set(self.count.get() + 1);
    }
}

#[test]
fn green_threads_borrow_the_callers_stack() {
    let data = [1, 2, 3];
    let mut sum = 0;
    let sizes = RefCell::new(Vec::new());
    let n = sylvan::scope(|s| {
        let a = s.spawn(|| data.iter().sum::<i32>());
        s.spawn(|| sizes.borrow_mut().push(data.len()));
        s.spawn(|| {
            sylvan::yield_now();
            sum = 10; // a mutable borrow
        });
        a.join().unwrap()
    });
    assert_eq!(n, 6);
    assert_eq!(sum, 10);
    assert_eq!(*sizes.borrow(), vec![3]);
}

#[test]
fn scope_waits_even_for_forgotten_handles() {
    sylvan::time::pause();
    let done = Cell::new(0);
    let t0 = sylvan::time::now();
    sylvan::scope(|s| {
        for i in 1..=3u64 {
            let done = &done;
            let h = s.spawn(move || {
                sylvan::sleep(Duration::from_secs(i)).unwrap();
                done.set(done.get() + 1);
            });
            std::mem::forget(h);
        }
    });
    assert_eq!(done.get(), 3, "all finished before scope returned");
    assert_eq!(sylvan::time::now() - t0, Duration::from_secs(3));
}

#[test]
fn green_threads_may_spawn_more_in_the_scope() {
    let log = RefCell::new(Vec::new());
    sylvan::scope(|s| {
        s.spawn(|| {
            log.borrow_mut().push("outer");
            s.spawn(|| {
                sylvan::yield_now();
                log.borrow_mut().push("inner");
            });
        });
    });
    assert_eq!(*log.borrow(), vec!["outer", "inner"]);
}

#[test]
fn a_panicking_body_kills_and_joins_the_green_threads_first() {
    let dropped = Cell::new(0);
    let outcomes = RefCell::new(Vec::new());
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        sylvan::scope(|s| {
            for _ in 0..3 {
                let d = Drops { count: &dropped };
                let outcomes = &outcomes;
                s.spawn(move || {
                    let _d = d;
                    let r = sylvan::sleep(Duration::from_secs(3600));
                    outcomes.borrow_mut().push(r);
                });
            }
            sylvan::yield_now(); // they start and sleep
            let d = Drops { count: &dropped };
            s.spawn(move || {
                let _d = d;
                unreachable!("killed before it ran");
            });
            panic!("body failed");
        })
    }));
    assert_eq!(
        *r.unwrap_err().downcast::<&str>().unwrap(),
        "body failed",
        "the body's panic comes out"
    );
    assert_eq!(
        dropped.get(),
        4,
        "every green thread finished, destructors run"
    );
    assert_eq!(*outcomes.borrow(), vec![Err(Cancelled::Killed); 3]);
}

#[test]
fn a_cancelled_caller_kills_then_still_waits() {
    sylvan::time::pause();
    let dropped = Cell::new(0);
    let outcomes = RefCell::new(Vec::new());
    let r = sylvan::timeout(Duration::from_secs(1), || {
        sylvan::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let _d = Drops { count: &dropped };
                    let first = sylvan::sleep(Duration::from_secs(3600));
                    // Killed: later calls fail at once too, so it ends.
                    let second = sylvan::sleep(Duration::from_secs(1));
                    outcomes.borrow_mut().push((first, second));
                });
            }
            "body done"
        })
    });
    assert!(
        r.is_err(),
        "timeout reports the deadline that cancelled the wait"
    );
    assert_eq!(dropped.get(), 2);
    assert_eq!(
        *outcomes.borrow(),
        vec![(Err(Cancelled::Killed), Err(Cancelled::Killed)); 2]
    );
}

#[test]
fn a_killed_caller_green_thread_still_waits_for_its_scope() {
    let dropped = Rc::new(Cell::new(0));
    let d = dropped.clone();
    let caller = sylvan::spawn(move || {
        let local = String::from("borrowed");
        let seen = RefCell::new(None);
        sylvan::scope(|s| {
            s.spawn(|| {
                let r = sylvan::sleep(Duration::from_secs(3600));
                *seen.borrow_mut() = Some((local.clone(), r));
                d.set(d.get() + 1);
            });
        });
        seen.into_inner()
    });
    sylvan::yield_now();
    caller.kill();
    let seen = caller.join().unwrap();
    assert_eq!(seen, Some(("borrowed".to_string(), Err(Cancelled::Killed))));
    assert_eq!(dropped.get(), 1);
}

#[test]
#[should_panic(expected = "a scoped green thread panicked")]
fn an_unjoined_panic_makes_scope_panic() {
    sylvan::scope(|s| {
        s.spawn(|| panic!("lost"));
    });
}

#[test]
fn a_joined_panic_does_not() {
    let r = sylvan::scope(|s| {
        let h = s.spawn(|| -> u8 { panic!("taken") });
        h.join()
    });
    assert!(matches!(r, Err(JoinError::Panicked(_))));
}

#[test]
fn killed_before_running_joins_as_killed() {
    sylvan::scope(|s| {
        let h = s.spawn(|| 1);
        h.kill();
        assert!(matches!(h.join(), Err(JoinError::Killed)));
    });
}

/// Calls `scope` from a destructor while its thread unwinds: nothing may
/// suspend there, so the closures run inline.
struct ScopeInDrop<'a>(&'a RefCell<Vec<String>>);

impl Drop for ScopeInDrop<'_> {
    fn drop(&mut self) {
        let log = self.0;
        sylvan::scope(|s| {
            let h = s.spawn(|| {
                let r = sylvan::sleep(Duration::from_secs(1));
                log.borrow_mut().push(format!("ran inline: {r:?}"));
                5
            });
            assert!(h.is_finished() && h.id().is_none());
            log.borrow_mut()
                .push(format!("joined {:?}", h.join().unwrap()));
        });
    }
}

#[test]
fn scope_where_the_caller_cannot_suspend_runs_closures_inline() {
    let log = RefCell::new(Vec::new());
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        let _g = ScopeInDrop(&log);
        panic!("unwinding");
    }));
    assert!(r.is_err());
    assert_eq!(
        *log.borrow(),
        vec![
            "ran inline: Err(Killed)".to_string(),
            "joined 5".to_string()
        ]
    );
}

/// Reads the borrowed string when dropped: a use after free if its owner
/// were gone first.
struct ReadsOnDrop<'a> {
    borrowed: &'a String,
    log: Rc<RefCell<Vec<String>>>,
}

impl Drop for ReadsOnDrop<'_> {
    fn drop(&mut self) {
        self.log
            .borrow_mut()
            .push(format!("child saw {}", self.borrowed));
    }
}

struct OwnerDrop(Rc<RefCell<Vec<String>>>, String);

impl Drop for OwnerDrop {
    fn drop(&mut self) {
        self.0
            .borrow_mut()
            .push(format!("owner dropped {}", self.1));
    }
}

#[test]
fn shutdown_unwinds_scoped_green_threads_before_their_owner() {
    std::thread::spawn(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        // The owner is spawned first, so the hub unwinds it first: its
        // scope must unwind the children on the spot.
        let owner = sylvan::spawn(move || {
            let local = OwnerDrop(l.clone(), String::from("data"));
            sylvan::scope(|s| {
                for _ in 0..2 {
                    let l = l.clone();
                    let local = &local;
                    s.spawn(move || {
                        let _r = ReadsOnDrop {
                            borrowed: &local.1,
                            log: l,
                        };
                        let _ = sylvan::sleep(Duration::from_secs(3600));
                    });
                }
                let unstarted = s.spawn(|| unreachable!("never runs"));
                sylvan::yield_now();
                drop(unstarted);
                let _ = sylvan::sleep(Duration::from_secs(3600));
            });
        });
        sylvan::yield_now();
        sylvan::yield_now();
        sylvan::shutdown();
        assert!(owner.is_finished());
        assert_eq!(
            *log.borrow(),
            vec!["child saw data", "child saw data", "owner dropped data"]
        );
    })
    .join()
    .unwrap();
}

#[test]
fn shutdown_unwinds_nested_scopes_innermost_first() {
    std::thread::spawn(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let owner = sylvan::spawn(move || {
            let outer = OwnerDrop(l.clone(), String::from("outer"));
            sylvan::scope(|s| {
                let (l, outer) = (l.clone(), &outer);
                s.spawn(move || {
                    let inner = OwnerDrop(l.clone(), String::from("inner"));
                    sylvan::scope(|s2| {
                        let (l, inner) = (l.clone(), &inner);
                        s2.spawn(move || {
                            let _a = ReadsOnDrop {
                                borrowed: &inner.1,
                                log: l.clone(),
                            };
                            let _b = ReadsOnDrop {
                                borrowed: &outer.1,
                                log: l,
                            };
                            let _ = sylvan::sleep(Duration::from_secs(3600));
                        });
                    });
                });
                let _ = sylvan::sleep(Duration::from_secs(3600));
            });
        });
        for _ in 0..3 {
            sylvan::yield_now();
        }
        sylvan::shutdown();
        assert!(owner.is_finished());
        assert_eq!(
            *log.borrow(),
            vec![
                "child saw outer",
                "child saw inner",
                "owner dropped inner",
                "owner dropped outer"
            ]
        );
    })
    .join()
    .unwrap();
}
