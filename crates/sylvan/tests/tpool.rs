//! `tpool::execute`: results, panics, cancellation, concurrency, and the
//! pool's own bookkeeping (abandoned jobs, nested calls, panicking drops).

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::Duration;

use sylvan::Cancelled;

/// The pool is one per process and these tests size it, fill it and count
/// its jobs: they take turns.
static POOL: Mutex<()> = Mutex::new(());

/// Exclusive use of the pool, at `size` threads, until dropped.
struct Exclusive {
    old_size: usize,
    _turn: MutexGuard<'static, ()>,
}

fn exclusive(size: usize) -> Exclusive {
    let turn = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let old_size = sylvan::tpool::size();
    sylvan::tpool::set_size(size);
    Exclusive {
        old_size,
        _turn: turn,
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        sylvan::tpool::set_size(self.old_size);
    }
}

/// Takes a turn without resizing the pool.
fn turn() -> MutexGuard<'static, ()> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn runs_on_another_thread_and_returns_the_value() {
    let _turn = turn();
    let me = std::thread::current().id();
    let (v, other) = sylvan::tpool::execute(move || (21 * 2, std::thread::current().id())).unwrap();
    assert_eq!(v, 42);
    assert_ne!(other, me);
}

#[test]
fn the_hub_keeps_running_while_a_job_blocks() {
    let _turn = turn();
    let (tx, rx) = std::sync::mpsc::channel::<u32>();
    let job = sylvan::spawn(move || sylvan::tpool::execute(move || rx.recv().unwrap()));
    let ticker = sylvan::spawn(move || {
        for _ in 0..3 {
            sylvan::sleep(Duration::from_millis(1)).unwrap();
        }
        tx.send(7).unwrap();
    });
    ticker.join().unwrap();
    assert_eq!(job.join().unwrap(), Ok(7));
}

#[test]
fn panics_resume_in_the_caller() {
    let _turn = turn();
    let g = sylvan::spawn(|| sylvan::tpool::execute(|| -> u8 { panic!("in the pool") }));
    let err = g.join().unwrap_err();
    assert_eq!(err.panic_message(), Some("in the pool"));
}

#[test]
fn timeout_while_in_the_pool_drops_the_late_result_safely() {
    let _turn = turn();
    let drops = util::SyncDropCounter::default();
    let d = drops.clone();
    let (started_tx, started_rx) = sylvan::sync::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let caller = sylvan::spawn(move || {
        sylvan::timeout(Duration::from_millis(10), move || {
            sylvan::tpool::execute(move || {
                started_tx.send(()).unwrap();
                rx.recv().unwrap();
                let t = d.track();
                // The caller is gone; dropping the result happens on this thread.
                struct Notify(std::sync::mpsc::Sender<()>);
                impl Drop for Notify {
                    fn drop(&mut self) {
                        let _ = self.0.send(());
                    }
                }
                (t, Notify(done_tx))
            })
        })
    });
    // The job is running (a job whose caller gives up before it starts
    // never starts); the caller's deadline passes while it blocks.
    started_rx.recv().unwrap();
    assert!(caller.join().unwrap().is_err());
    tx.send(()).unwrap();
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the late result is dropped");
    assert_eq!(drops.dropped(), 1);
}

#[test]
fn already_cancelled_caller_never_starts_the_job() {
    let _turn = turn();
    let g = sylvan::spawn(|| {
        sylvan::sleep(Duration::from_secs(3600)).ok();
        sylvan::tpool::execute(|| unreachable!("must not run"))
    });
    sylvan::yield_now();
    g.kill();
    assert_eq!(g.join().unwrap(), Err::<(), _>(Cancelled::Killed));
}

#[test]
fn many_concurrent_jobs_from_one_hub() {
    let _turn = turn();
    let gs: Vec<_> = (0..200u64)
        .map(|i| sylvan::spawn(move || sylvan::tpool::execute(move || i * i)))
        .collect();
    let sum: u64 = gs.into_iter().map(|g| g.join().unwrap().unwrap()).sum();
    assert_eq!(sum, (0..200u64).map(|i| i * i).sum::<u64>());
}

#[test]
fn virtual_time_waits_for_jobs_in_flight() {
    let _turn = turn();
    sylvan::time::pause();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let job = sylvan::spawn(move || {
        sylvan::timeout(Duration::from_secs(1), || {
            sylvan::tpool::execute(move || rx.recv())
        })
    });
    let releaser = std::thread::spawn(move || tx.send(()).unwrap());
    // Paused time would jump past the 1 s deadline at once if the in-flight
    // job did not hold it back.
    let r = job.join().unwrap();
    releaser.join().unwrap();
    assert!(matches!(r, Ok(Ok(Ok(())))), "{r:?}");
}

#[test]
fn a_job_whose_caller_gave_up_before_it_started_never_starts() {
    let _pool = exclusive(1);
    // Hold the only pool thread, as a slow DNS server would.
    let (started_tx, started_rx) = sylvan::sync::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = sylvan::spawn(move || {
        sylvan::tpool::execute(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        })
    });
    started_rx.recv().unwrap();

    // A burst of calls that give up while their jobs wait in the queue:
    // deadlines that pass, and kills.
    let ran = Arc::new(AtomicUsize::new(0));
    let job = |ran: &Arc<AtomicUsize>| {
        let ran = ran.clone();
        move || {
            ran.fetch_add(1, Ordering::SeqCst);
        }
    };
    let timed_out: Vec<_> = (0..8)
        .map(|_| {
            let job = job(&ran);
            sylvan::spawn(move || {
                sylvan::timeout(Duration::from_millis(1), || sylvan::tpool::execute(job))
            })
        })
        .collect();
    let killed: Vec<_> = (0..4)
        .map(|_| {
            let job = job(&ran);
            sylvan::spawn(move || sylvan::tpool::execute(job))
        })
        .collect();
    // Every green thread above runs up to its park in `execute`.
    sylvan::yield_now();
    for g in &killed {
        g.kill();
    }
    for g in timed_out {
        assert!(
            g.join().unwrap().is_err(),
            "the deadline passed in the queue"
        );
    }
    for g in killed {
        assert_eq!(g.join().unwrap(), Err(Cancelled::Killed));
    }

    release_tx.send(()).unwrap();
    holder.join().unwrap().unwrap();
    // One pool thread and a FIFO queue: this job starts only after every
    // abandoned one was taken off the queue.
    let seen = {
        let ran = ran.clone();
        sylvan::tpool::execute(move || ran.load(Ordering::SeqCst)).unwrap()
    };
    assert_eq!(seen, 0, "jobs whose callers had given up were started");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn execute_from_a_pool_thread_runs_inline_on_that_thread() {
    let _pool = exclusive(1);
    // With one pool thread, waiting for another from inside a job would
    // never end; the timeout only bounds how long a regression hangs.
    let r = sylvan::tpool::execute(|| {
        let outer = std::thread::current().id();
        sylvan::timeout(Duration::from_secs(5), move || {
            sylvan::tpool::execute(move || std::thread::current().id() == outer)
        })
    })
    .unwrap();
    assert!(matches!(r, Ok(Ok(true))), "{r:?}");
}

#[test]
fn lookup_host_from_a_pool_thread_does_not_deadlock_a_full_pool() {
    let _pool = exclusive(1);
    let r = sylvan::tpool::execute(|| {
        sylvan::net::lookup_host_timeout(("localhost", 80), Duration::from_secs(5))
    })
    .unwrap();
    let addrs = r.expect("localhost resolves from inside a pool job");
    assert!(addrs.iter().all(|a| a.port() == 80));
}

/// Sends on its channel, then panics, when dropped.
struct PanicOnDrop(sylvan::sync::Sender<()>);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
        panic!("PanicOnDrop dropped");
    }
}

#[test]
fn panics_dropping_abandoned_results_leave_the_pool_at_full_size() {
    let logs = util::capture_logs();
    let size = 2;
    let _pool = exclusive(size);
    let (started_tx, started_rx) = sylvan::sync::channel::<()>();
    let (dropped_tx, dropped_rx) = sylvan::sync::channel::<()>();
    let mut releases = Vec::new();
    let callers: Vec<_> = (0..size)
        .map(|i| {
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            releases.push(release_tx);
            let (started, dropped) = (started_tx.clone(), dropped_tx.clone());
            sylvan::spawn(move || {
                sylvan::tpool::execute(move || {
                    started.send(()).unwrap();
                    release_rx.recv().unwrap();
                    let value = PanicOnDrop(dropped);
                    if i % 2 == 1 {
                        // A panic payload whose own drop panics.
                        std::panic::panic_any(value);
                    }
                    value
                })
            })
        })
        .collect();
    // Every pool thread runs one of the jobs; then their callers go away,
    // so each result (or panic payload) is dropped on its pool thread. (The
    // timeout only bounds how long a regression hangs: the pool once
    // started no second thread for two jobs submitted while one idled.)
    for _ in 0..size {
        sylvan::timeout(Duration::from_secs(10), || started_rx.recv())
            .expect("all `size` jobs run at once")
            .unwrap();
    }
    for c in callers {
        c.kill();
        assert!(matches!(c.join(), Ok(Err(Cancelled::Killed))));
    }
    for r in releases {
        r.send(()).unwrap();
    }
    for _ in 0..size {
        dropped_rx.recv().unwrap();
    }

    // `size()` jobs still run at once: each waits for all the others (and
    // this test) at the barrier. The timeout bounds a regression's hang.
    let barrier = Arc::new(Barrier::new(size + 1));
    let waiters: Vec<_> = (0..size)
        .map(|_| {
            let b = barrier.clone();
            sylvan::spawn(move || {
                sylvan::timeout(Duration::from_secs(10), || {
                    sylvan::tpool::execute(move || {
                        b.wait();
                    })
                })
            })
        })
        .collect();
    let b = barrier.clone();
    let me = std::thread::spawn(move || {
        b.wait();
    });
    for w in waiters {
        assert!(
            matches!(w.join(), Ok(Ok(Ok(())))),
            "a pool thread was lost to a panicking drop"
        );
    }
    me.join().unwrap();
    assert!(
        logs.text().contains("PanicOnDrop dropped"),
        "{}",
        logs.text()
    );
}

/// A caller leaked with its hub (its thread exited without
/// `sylvan::shutdown` while it waited) never gets its queued job run.
#[test]
fn a_job_whose_caller_was_leaked_at_thread_exit_never_starts() {
    let _pool = exclusive(1);
    let ran = Arc::new(AtomicUsize::new(0));
    // Hold the only pool thread until the caller's thread is gone.
    let hold = Arc::new(Barrier::new(2));
    let h = hold.clone();
    let (busy_tx, busy_rx) = std::sync::mpsc::channel();
    let blocker = std::thread::spawn(move || {
        sylvan::tpool::execute(move || {
            busy_tx.send(()).unwrap();
            h.wait();
        })
    });
    // The caller's job must queue behind this one, not take the thread.
    busy_rx.recv().unwrap();
    let r = ran.clone();
    let (queued_tx, queued_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(sylvan::spawn(move || {
            sylvan::tpool::execute(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
        }));
        sylvan::yield_now(); // it queues its job and parks
        queued_tx.send(()).unwrap();
        // The thread ends without `sylvan::shutdown`: the caller is leaked.
    })
    .join()
    .unwrap();
    queued_rx.recv().unwrap();
    hold.wait();
    blocker.join().unwrap().unwrap();
    // The pool is free again: a job submitted now runs after the leaked
    // one was looked at.
    sylvan::tpool::execute(|| ()).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the leaked caller's job ran");
}
