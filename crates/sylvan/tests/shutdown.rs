//! `sylvan::shutdown()` (and `run`, and each `Runtime` thread) force-unwinds
//! a hub's green threads so their destructors run; nothing leaks. Green
//! threads still alive at thread exit without it are leaked, never unwound
//! (see tests/soundness.rs).

mod util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sylvan::sync::{Event, Queue};

#[test]
fn shutdown_drops_every_green_thread() {
    let drops = util::SyncDropCounter::default();
    let d = drops.clone();
    let spawned = Arc::new(Mutex::new(0usize));
    let s = spawned.clone();
    let woke = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let w = woke.clone();
    std::thread::spawn(move || {
        let q = Queue::<u8>::unbounded();
        let ev = Event::<u8>::new();
        let full = Queue::bounded(1);
        full.put(0u8).unwrap();
        let mut n = 0;
        for i in 0..50 {
            let t = d.track();
            let (q, ev, full) = (q.clone(), ev.clone(), full.clone());
            let w = w.clone();
            drop(sylvan::spawn(move || {
                let _t = t;
                let _ = match i % 5 {
                    0 => sylvan::sleep(Duration::from_secs(3600)).map(|_| 0),
                    1 => q.get().map_err(|_| sylvan::Cancelled::Killed),
                    2 => ev.wait(),
                    3 => full
                        .put(1)
                        .map(|_| 0)
                        .map_err(|_| sylvan::Cancelled::Killed),
                    _ => sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)))
                        .join()
                        .map(|_| 0)
                        .map_err(|_| sylvan::Cancelled::Killed),
                };
                // Only reached if something woke us before the shutdown.
                w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }));
            n += 1;
        }
        // Some that never started.
        for _ in 0..10 {
            let t = d.track();
            drop(sylvan::spawn(move || drop(t)));
            n += 1;
        }
        *s.lock().unwrap() = n;
        // Let the first 50 park; the last 10 are started too, so spawn 10
        // more after the yield that never get to run.
        sylvan::yield_now();
        for _ in 0..10 {
            let t = d.track();
            let w = w.clone();
            drop(sylvan::spawn(move || {
                let _t = t;
                w.fetch_add(1000, std::sync::atomic::Ordering::SeqCst);
            }));
            *s.lock().unwrap() += 1;
        }
        assert!(sylvan::debug::stats().green_threads >= 60);
        sylvan::shutdown();
        assert_eq!(sylvan::debug::stats().green_threads, 0);
    })
    .join()
    .unwrap();
    assert_eq!(drops.dropped(), *spawned.lock().unwrap());
    assert_eq!(
        woke.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing ran past its park, and unstarted ones never ran"
    );
}

/// Green threads that only ever yield, each suspended in `yield_now`, are
/// unwound at shutdown from there. `yield_now` is inlined down to the
/// switch, so the forced unwind starts in the caller's own frame (and, for
/// some, in a function below the green thread's closure), running the
/// destructors of each frame on the way out. That inlining happens only in
/// an optimized build (corosensei's suspend is not inlined at `-O0`):
/// `scripts/test.sh` runs this suite with `--release` too.
#[test]
fn green_threads_suspended_in_yield_now_are_unwound_from_the_callers_frame() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    #[inline(never)]
    fn spin_below(t: util::SyncTracked, turns: &AtomicUsize) {
        let _t = t;
        loop {
            turns.fetch_add(1, SeqCst);
            sylvan::yield_now();
        }
    }

    let drops = util::SyncDropCounter::default();
    let d = drops.clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let turns = Arc::new(AtomicUsize::new(0));
        for i in 0..4 {
            let outer = d.track();
            let inner = (i % 2 == 1).then(|| d.track());
            let turns = turns.clone();
            drop(sylvan::spawn(move || {
                let _outer = outer;
                match inner {
                    Some(t) => spin_below(t, &turns),
                    None => loop {
                        turns.fetch_add(1, SeqCst);
                        sylvan::yield_now();
                    },
                }
            }));
        }
        // Each runs and yields many times (nested on one another's stacks
        // while the root is parked), then is left suspended in a yield.
        let ev = sylvan::sync::Event::<()>::new();
        let ev2 = ev.clone();
        let t2 = turns.clone();
        drop(sylvan::spawn(move || {
            while t2.load(SeqCst) < 1000 {
                sylvan::yield_now();
            }
            ev2.send(()).unwrap();
        }));
        ev.wait().unwrap();
        sylvan::shutdown();
        let _ = done_tx.send(sylvan::debug::stats().green_threads);
    });
    let left = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("shutdown returned within a minute");
    assert_eq!(left, 0, "every green thread is gone");
    assert_eq!(drops.dropped(), 6, "every frame's destructors ran");
}

#[test]
fn destructors_that_block_fail_instead_of_suspending() {
    let result = Arc::new(Mutex::new(None));
    let r = result.clone();
    std::thread::spawn(move || {
        struct BlocksInDrop(Arc<Mutex<Option<Result<(), sylvan::Cancelled>>>>);
        impl Drop for BlocksInDrop {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = Some(sylvan::sleep(Duration::from_secs(1)));
            }
        }
        let guard = BlocksInDrop(r);
        drop(sylvan::spawn(move || {
            let _g = guard;
            let _ = sylvan::sleep(Duration::from_secs(3600));
        }));
        sylvan::yield_now();
        sylvan::shutdown();
    })
    .join()
    .unwrap();
    assert_eq!(
        *result.lock().unwrap(),
        Some(Err(sylvan::Cancelled::Killed))
    );
}

#[test]
fn stacks_are_returned_and_reused() {
    let before = sylvan::debug::stats();
    let gs: Vec<_> = (0..100).map(|_| sylvan::spawn(|| ())).collect();
    assert_eq!(sylvan::debug::stats().stacks, before.stacks + 100);
    for g in gs {
        g.join().unwrap();
    }
    let after = sylvan::debug::stats();
    assert_eq!(after.stacks, before.stacks);
    assert_eq!(after.green_threads, before.green_threads);
}
