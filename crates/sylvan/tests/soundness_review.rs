//! Programs from the review of the soundness work, each of which crashed,
//! aborted or broke a counter before its fix: subscriber code run while the
//! hub believed a green thread was running, a scope child unwound as its
//! owner, a result dropped on the scheduler's path, an unrun closure's drop
//! that suspended, and a forced unwind caught and re-panicked.
//! (Each test runs on a thread of its own: subscribers are per thread.)

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use sylvan::sync::Semaphore;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

static NEXT_SPAN: AtomicU64 = AtomicU64::new(1);

/// A subscriber whose callbacks misbehave on request.
#[derive(Default)]
struct Hostile {
    yield_on_exit: AtomicBool,
    panic_on_enter: AtomicBool,
    panic_on_event: AtomicBool,
}

thread_local! { static IN_EXIT: Cell<bool> = const { Cell::new(false) }; }

impl Subscriber for &'static Hostile {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(NEXT_SPAN.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {
        if self.panic_on_event.swap(false, Ordering::Relaxed) {
            panic!("subscriber event panics");
        }
    }
    fn enter(&self, _: &Id) {
        if self.panic_on_enter.swap(false, Ordering::Relaxed) {
            panic!("subscriber enter panics");
        }
    }
    fn exit(&self, _: &Id) {
        if self.yield_on_exit.load(Ordering::Relaxed) && !IN_EXIT.with(|c| c.replace(true)) {
            // Runs as the root, on the scheduler's path: returns at once.
            sylvan::yield_now();
            assert!(sylvan::current().is_root());
            IN_EXIT.with(|c| c.set(false));
        }
    }
}

fn hostile() -> &'static Hostile {
    Box::leak(Box::default())
}

#[test]
fn a_subscriber_that_yields_in_span_exit_runs_as_the_root() {
    thread::spawn(|| {
        let sub = hostile();
        tracing::subscriber::with_default(sub, || {
            let g = sylvan::Builder::new()
                .span(tracing::info_span!("g"))
                .spawn(|| {
                    for _ in 0..3 {
                        sylvan::yield_now();
                    }
                    7
                })
                .unwrap();
            sylvan::yield_now();
            sub.yield_on_exit.store(true, Ordering::Relaxed);
            assert_eq!(g.join().unwrap(), 7);
        });
    })
    .join()
    .unwrap();
}

/// The same between two green threads, where the one that yields runs
/// the other on its own stack (a direct switch): the subscriber still runs
/// as the root.
#[test]
fn a_subscriber_that_yields_in_span_exit_runs_as_the_root_between_green_threads() {
    thread::spawn(|| {
        let sub = hostile();
        tracing::subscriber::with_default(sub, || {
            sub.yield_on_exit.store(true, Ordering::Relaxed);
            let spawn = |name: &'static str| {
                sylvan::Builder::new()
                    .span(tracing::info_span!("g", name))
                    .spawn(|| {
                        for _ in 0..5 {
                            sylvan::yield_now();
                        }
                        7
                    })
                    .unwrap()
            };
            let (a, b) = (spawn("a"), spawn("b"));
            assert_eq!(a.join().unwrap() + b.join().unwrap(), 14);
        });
    })
    .join()
    .unwrap();
}

/// A subscriber that panics while a green thread runs another on its own
/// stack (a direct switch): the panic reaches the switching green thread,
/// and leaves nothing of its yield behind. (Its slot, queued by the yield,
/// once stayed queued: its next park then "woke" at once, and a lock was
/// handed out without being granted.)
#[test]
fn a_subscriber_panic_during_a_direct_switch_leaves_no_stale_wake_up() {
    thread::spawn(|| {
        let sub = hostile();
        tracing::subscriber::with_default(sub, || {
            let m = Rc::new(sylvan::sync::Mutex::new(0));
            let (release_tx, release_rx) = sylvan::sync::channel::<()>();
            let m2 = m.clone();
            let holder = sylvan::spawn(move || {
                let mut g = m2.lock().unwrap();
                *g = 1;
                release_rx.recv().unwrap();
            });
            sylvan::yield_now(); // the holder takes the lock and parks
            let a = sylvan::spawn(move || {
                sub.panic_on_enter.store(true, Ordering::Relaxed);
                // Runs `b` nested; `b`'s span enter panics.
                let r = std::panic::catch_unwind(sylvan::yield_now);
                assert!(r.is_err(), "the subscriber's panic reaches the yield");
                release_tx.send(()).unwrap();
                let g = m.lock().unwrap();
                *g
            });
            let b = sylvan::Builder::new()
                .span(tracing::info_span!("b"))
                .spawn(|| ())
                .unwrap();
            assert_eq!(a.join().unwrap(), 1, "the lock came from the holder");
            holder.join().unwrap();
            drop(b); // popped for the panicking enter, never resumed
            sylvan::shutdown();
        });
    })
    .join()
    .unwrap();
}

#[test]
fn a_subscriber_that_panics_in_span_enter_leaves_the_root_the_root() {
    thread::spawn(|| {
        let sub = hostile();
        tracing::subscriber::with_default(sub, || {
            let g = sylvan::Builder::new()
                .span(tracing::info_span!("g"))
                .spawn(|| while sylvan::sleep(Duration::from_millis(1)).is_ok() {})
                .unwrap();
            sylvan::yield_now();
            sub.panic_on_enter.store(true, Ordering::Relaxed);
            let r = std::panic::catch_unwind(|| sylvan::sleep(Duration::from_millis(5)));
            assert!(r.is_err(), "the subscriber's panic reaches the root");
            assert!(sylvan::current().is_root());
            g.kill();
            assert_eq!(sylvan::sleep(Duration::from_millis(1)), Ok(()));
            sylvan::shutdown();
        });
    })
    .join()
    .unwrap();
}

#[test]
fn a_subscriber_that_panics_logging_a_lost_panic_is_contained() {
    thread::spawn(|| {
        let sub = hostile();
        tracing::subscriber::with_default(sub, || {
            let g = sylvan::spawn(|| {
                sylvan::yield_now();
                panic!("boom");
            });
            sylvan::yield_now();
            drop(g); // detached: its panic is logged, and the logging panics
            sub.panic_on_event.store(true, Ordering::Relaxed);
            sylvan::yield_now();
            assert!(sylvan::current().is_root());
            assert_eq!(sylvan::sleep(Duration::from_millis(1)), Ok(()));
        });
    })
    .join()
    .unwrap();
}

#[test]
fn a_scope_child_unwound_at_shutdown_gives_back_its_own_permit() {
    thread::spawn(|| {
        let sem = Rc::new(Semaphore::new(1));
        let p = sem.try_acquire().unwrap();
        let s2 = sem.clone();
        drop(sylvan::spawn(move || {
            sylvan::scope(|s| {
                let s3 = s2.clone();
                s.spawn(move || {
                    if let Ok(p) = s3.acquire() {
                        std::mem::forget(p);
                    }
                });
            });
        }));
        sylvan::yield_now(); // the owner runs, spawns the child, waits
        sylvan::yield_now(); // the child queues in acquire
        drop(p); // handed to the child, which has not run since
        sylvan::shutdown();
        assert_eq!(sem.available_permits(), 1);
        assert!(sem.try_acquire().is_some());
    })
    .join()
    .unwrap();
}

#[test]
fn a_result_is_never_dropped_by_the_scheduler_even_if_green_locals_block() {
    thread::spawn(|| {
        sylvan::time::pause();
        let seen = Rc::new(RefCell::new(None));
        type Seen = Rc<RefCell<Option<(bool, Result<(), sylvan::Cancelled>)>>>;
        struct Res(Seen);
        impl Drop for Res {
            fn drop(&mut self) {
                let root = sylvan::current().is_root();
                let r = sylvan::sleep(Duration::from_millis(1));
                *self.0.borrow_mut() = Some((root, r));
            }
        }
        struct SlowLocal;
        impl Drop for SlowLocal {
            fn drop(&mut self) {
                let _ = sylvan::sleep(Duration::from_millis(10));
            }
        }
        sylvan::green_local! {
            static L: RefCell<Option<SlowLocal>> = const { RefCell::new(None) };
        }
        let s = seen.clone();
        let g = sylvan::spawn(move || {
            L.with(|l| *l.borrow_mut() = Some(SlowLocal));
            Res(s)
        });
        sylvan::sleep(Duration::from_millis(2)).unwrap(); // g blocks in SlowLocal's drop
        drop(g); // detached meanwhile
        sylvan::sleep(Duration::from_millis(30)).unwrap();
        assert_eq!(*seen.borrow(), Some((false, Ok(()))));
    })
    .join()
    .unwrap();
}

#[test]
fn an_unrun_closure_whose_drop_yields_does_not_suspend() {
    thread::spawn(|| {
        let resumed = Rc::new(Cell::new(0));
        struct D(Rc<Cell<u32>>);
        impl Drop for D {
            fn drop(&mut self) {
                sylvan::yield_now(); // returns at once
                self.0.set(self.0.get() + 1);
            }
        }
        let d = D(resumed.clone());
        let g = sylvan::spawn(move || {
            let _d = &d;
        });
        g.kill();
        sylvan::yield_now();
        assert!(g.is_finished(), "its drop did not suspend");
        assert_eq!(resumed.get(), 1);
        sylvan::shutdown();
    })
    .join()
    .unwrap();
}

#[test]
fn catching_the_forced_unwind_and_panicking_again_does_not_abort() {
    thread::spawn(|| {
        let after = Rc::new(Cell::new(false));
        let a = after.clone();
        drop(sylvan::spawn(move || {
            let r = std::panic::catch_unwind(|| sylvan::sleep(Duration::from_secs(60)));
            a.set(true);
            // A new payload during the forced unwind:
            let _ = r.expect("sleep panicked");
        }));
        sylvan::yield_now();
        sylvan::shutdown();
        assert!(after.get(), "user code caught the forced unwind");
        assert_eq!(sylvan::debug::stats().green_threads, 0);
    })
    .join()
    .unwrap();
}

#[test]
fn a_green_local_whose_drop_panics_does_not_wedge_a_scope() {
    thread::spawn(|| {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("a green-local's destructor panics");
            }
        }
        sylvan::green_local! {
            static BOMB: Bomb = Bomb;
        }
        let x = [1, 2, 3];
        let n = sylvan::scope(|s| {
            let h = s.spawn(|| {
                BOMB.with(|_| ());
                x.len()
            });
            h.join()
        });
        // The panic is contained (logged); the child finished normally.
        assert_eq!(n.unwrap(), 3);
    })
    .join()
    .unwrap();
}
