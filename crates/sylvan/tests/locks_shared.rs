//! `sync::shared::{Mutex, RwLock, Condvar}` across OS threads: a counter
//! incremented from two `Runtime` hubs and a plain thread while green
//! threads wait parked (their hubs going on), hand-off and cancellation
//! racing across threads (ordered with std channels: the hub of the
//! waiting thread does not run until the test says so), poisoning, and
//! condvars woken from another thread.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, TryLockError};
use std::time::Duration;

use sylvan::Cancelled;
use sylvan::sync::LockError;
use sylvan::sync::shared::{Condvar, Mutex, RwLock};

fn cancelled<G>(r: Result<G, LockError<G>>) -> Option<Cancelled> {
    match r {
        Err(e) => e.cancelled(),
        Ok(_) => None,
    }
}

/// Spins (yielding the OS thread) until `f` holds.
fn until(mut f: impl FnMut() -> bool) {
    while !f() {
        std::thread::yield_now();
    }
}

#[test]
fn hubs_and_a_plain_thread_share_a_counter_while_waiters_stay_parked() {
    const GREEN: usize = 8; // per hub
    const ROUNDS: u64 = 200;
    let counter = Arc::new(Mutex::new(0u64));
    let about_to_lock = Arc::new(AtomicUsize::new(0));
    let ticks = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let held = counter.lock().unwrap();

    let rt = sylvan::Runtime::builder().threads(2).build().unwrap();
    let hubs = {
        let (counter, about, ticks) = (counter.clone(), about_to_lock.clone(), ticks.clone());
        std::thread::spawn(move || {
            rt.run(move || {
                let i = sylvan::Runtime::current_index().unwrap();
                let finished = std::rc::Rc::new(std::cell::Cell::new(0));
                let workers: Vec<_> = (0..GREEN)
                    .map(|_| {
                        let (counter, about, finished) =
                            (counter.clone(), about.clone(), finished.clone());
                        sylvan::spawn(move || {
                            about.fetch_add(1, Ordering::SeqCst);
                            for r in 0..ROUNDS {
                                let mut g = counter.lock().unwrap();
                                *g += 1;
                                if r % 16 == 0 {
                                    // Held across a blocking call: other
                                    // green threads of this hub run.
                                    sylvan::yield_now();
                                }
                            }
                            finished.set(finished.get() + 1);
                        })
                    })
                    .collect();
                // A green thread that never touches the lock: it keeps
                // running while the workers wait.
                let ticks = ticks.clone();
                let ticker = sylvan::spawn(move || {
                    while finished.get() < GREEN {
                        ticks[i].fetch_add(1, Ordering::SeqCst);
                        sylvan::yield_now();
                    }
                });
                for w in workers {
                    w.join().unwrap();
                }
                ticker.join().unwrap();
            })
        })
    };
    let plain = {
        let (counter, about) = (counter.clone(), about_to_lock.clone());
        std::thread::spawn(move || {
            about.fetch_add(1, Ordering::SeqCst);
            for _ in 0..ROUNDS {
                *counter.lock().unwrap() += 1;
            }
        })
    };
    // Everyone is waiting for the lock we hold; both hubs still run.
    until(|| about_to_lock.load(Ordering::SeqCst) == 2 * GREEN + 1);
    let seen = [0, 1].map(|i| ticks[i].load(Ordering::SeqCst));
    until(|| (0..2).all(|i| ticks[i].load(Ordering::SeqCst) > seen[i] + 100));
    assert_eq!(*held, 0, "nobody got in while we held it");
    drop(held);
    hubs.join().unwrap();
    plain.join().unwrap();
    assert_eq!(*counter.lock().unwrap(), (2 * GREEN as u64 + 1) * ROUNDS);
}

#[test]
fn green_waiters_on_one_hub_are_served_in_order() {
    let m = Arc::new(Mutex::new(Vec::new()));
    let first = m.lock().unwrap();
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let m = m.clone();
            sylvan::spawn(move || m.lock().unwrap().push(i))
        })
        .collect();
    sylvan::yield_now();
    drop(first);
    assert!(
        matches!(m.try_lock(), Err(TryLockError::WouldBlock)),
        "no barging"
    );
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(*m.lock().unwrap(), [0, 1, 2, 3]);
}

/// A holder on another thread, driven by commands over std channels.
struct Holder {
    cmd: mpsc::Sender<()>,
    ack: mpsc::Receiver<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Holder {
    /// Locks `m` on a new thread; returns once it holds it.
    fn lock(m: &Arc<Mutex<u32>>) -> Holder {
        let (cmd, cmd_rx) = mpsc::channel();
        let (ack_tx, ack) = mpsc::channel();
        let m = m.clone();
        let thread = std::thread::spawn(move || {
            let mut g = m.lock().unwrap();
            ack_tx.send(()).unwrap();
            cmd_rx.recv().unwrap();
            *g += 1;
            drop(g);
            ack_tx.send(()).unwrap();
        });
        ack.recv().unwrap();
        Holder { cmd, ack, thread }
    }

    /// Unlocks; returns once the guard is dropped.
    fn unlock(self) {
        self.cmd.send(()).unwrap();
        self.ack.recv().unwrap();
        self.thread.join().unwrap();
    }
}

#[test]
fn a_green_waiter_killed_while_another_thread_holds_the_lock_leaves_the_queue() {
    let m = Arc::new(Mutex::new(0));
    let holder = Holder::lock(&m);
    let m2 = m.clone();
    let w = sylvan::spawn(move || cancelled(m2.lock()));
    sylvan::yield_now();
    w.kill();
    assert_eq!(w.join().unwrap(), Some(Cancelled::Killed));
    holder.unlock();
    assert_eq!(*m.try_lock().expect("free, nobody queued"), 1);
}

/// The other thread hands the mutex over (its wake-up is queued for our
/// hub, which has not run yet), then the waiter is killed: the kill wins
/// the race to wake it, and it finds the mutex already its own.
#[test]
fn a_waiter_handed_the_mutex_from_another_thread_keeps_it_when_killed_at_once() {
    let m = Arc::new(Mutex::new(0));
    let holder = Holder::lock(&m);
    let m2 = m.clone();
    let w = sylvan::spawn(move || {
        let mut g = m2.lock().expect("the hand-off is kept");
        *g += 1;
        sylvan::sleep(Duration::ZERO) // the kill shows here
    });
    sylvan::yield_now(); // w waits
    holder.unlock(); // pops w and hands it the mutex; our hub has not run
    w.kill();
    assert_eq!(w.join().unwrap(), Err(Cancelled::Killed));
    assert_eq!(*m.try_lock().expect("w unlocked it"), 2);
}

#[test]
fn a_waiter_unwound_at_shutdown_after_the_hand_off_unlocks() {
    let m = Arc::new(Mutex::new(0));
    let holder = Holder::lock(&m);
    let m2 = m.clone();
    let w = sylvan::spawn(move || drop(m2.lock()));
    sylvan::yield_now();
    holder.unlock(); // handed to w, which never runs
    sylvan::shutdown();
    assert!(w.is_finished());
    assert!(m.try_lock().is_ok(), "the unwound waiter gave it back");
}

#[test]
fn a_plain_thread_waiting_for_the_lock_is_cancelled_by_its_timeout() {
    let m = Arc::new(Mutex::new(0));
    let holder = Holder::lock(&m);
    sylvan::time::pause(); // nothing else to do: the deadline comes at once
    let r = sylvan::timeout(Duration::from_secs(30), || cancelled(m.lock()));
    assert!(r.is_err());
    holder.unlock();
    assert!(m.try_lock().is_ok());
}

#[test]
fn a_guard_dropped_while_panicking_poisons_the_shared_mutex() {
    let m = Arc::new(Mutex::new(1));
    let m2 = m.clone();
    let t = std::thread::spawn(move || {
        let mut g = m2.lock().unwrap();
        *g = 2;
        panic!("boom");
    });
    assert!(t.join().is_err());
    assert!(m.is_poisoned());
    let g = m.lock().or_else(LockError::ignore_poison).unwrap();
    assert_eq!(*g, 2);
    drop(g);
    m.clear_poison();
    assert!(m.lock().is_ok());
    let l = Arc::new(RwLock::new(0));
    let l2 = l.clone();
    let _ = std::thread::spawn(move || {
        let _w = l2.write().unwrap();
        panic!("writer");
    })
    .join();
    assert!(l.read().unwrap_err().is_poisoned());
}

#[test]
fn a_condvar_wakes_a_green_thread_from_another_os_thread() {
    let s = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    let s2 = s.clone();
    let consumer = sylvan::spawn(move || {
        let (m, cv) = &*s2;
        let mut got = Vec::new();
        while got.len() < 3 {
            let mut q = cv.wait_while(m.lock().unwrap(), |q| q.is_empty()).unwrap();
            got.append(&mut q);
        }
        got
    });
    let s3 = s.clone();
    let producer = std::thread::spawn(move || {
        for i in 0..3 {
            s3.0.lock().unwrap().push(i);
            s3.1.notify_one();
        }
    });
    assert_eq!(consumer.join().unwrap(), [0, 1, 2]);
    producer.join().unwrap();
}

/// Notified from another thread (the wake-up is queued for our hub), then
/// killed before the hub runs: the notification passes to the next waiter.
#[test]
fn a_notification_that_races_a_kill_is_passed_on() {
    let s = Arc::new((Mutex::new(0), Condvar::new()));
    let (s1, s2) = (s.clone(), s.clone());
    let a = sylvan::spawn(move || cancelled(s1.1.wait(s1.0.lock().unwrap())));
    let b = sylvan::spawn(move || *s2.1.wait(s2.0.lock().unwrap()).unwrap());
    sylvan::yield_now(); // both wait, a first
    let s3 = s.clone();
    std::thread::spawn(move || {
        *s3.0.lock().unwrap() = 5;
        s3.1.notify_one(); // pops a
    })
    .join()
    .unwrap();
    a.kill();
    assert_eq!(a.join().unwrap(), Some(Cancelled::Killed));
    assert_eq!(b.join().unwrap(), 5, "b got a's notification");
}

#[test]
fn wait_timeout_on_a_paused_clock() {
    sylvan::time::pause();
    let (m, cv) = (Mutex::new(()), Condvar::new());
    let start = sylvan::time::now();
    let (_g, r) = cv
        .wait_timeout(m.lock().unwrap(), Duration::from_secs(9))
        .unwrap();
    assert!(r.timed_out());
    assert_eq!(sylvan::time::now() - start, Duration::from_secs(9));
}

#[test]
fn a_shared_rwlock_queues_readers_behind_a_waiting_writer() {
    let l = Arc::new(RwLock::new(0));
    let r = l.read().unwrap();
    let lw = l.clone();
    let writer_waits = Arc::new(AtomicBool::new(false));
    let ww = writer_waits.clone();
    let writer = std::thread::spawn(move || {
        ww.store(true, Ordering::SeqCst);
        *lw.write().unwrap() += 1;
    });
    until(|| writer_waits.load(Ordering::SeqCst));
    // The writer may not have queued yet; once it has, new readers wait.
    until(|| l.try_read().is_err());
    let lr = l.clone();
    let reader = sylvan::spawn(move || *lr.read().unwrap());
    sylvan::yield_now();
    drop(r);
    assert_eq!(
        reader.join().unwrap(),
        1,
        "the reader came after the writer"
    );
    writer.join().unwrap();
    assert!(l.try_write().is_ok());
}

#[test]
fn a_shared_rwlock_waiter_that_times_out_lets_the_readers_behind_it_in() {
    sylvan::time::pause();
    let l = Arc::new(RwLock::new(()));
    let r = l.read().unwrap();
    let (lw, lr) = (l.clone(), l.clone());
    let writer =
        sylvan::spawn(move || sylvan::timeout(Duration::from_secs(1), || lw.write().is_ok()));
    sylvan::yield_now();
    let reader = sylvan::spawn(move || lr.read().is_ok());
    sylvan::yield_now();
    assert!(writer.join().unwrap().is_err());
    assert!(reader.join().unwrap());
    drop(r);
    assert!(l.try_write().is_ok());
}

/// Stress: green threads on two hubs and a plain thread lock one mutex,
/// half of them under short real-time deadlines and some killed midway,
/// so cancellations race with hand-offs from other threads. Mutual
/// exclusion holds throughout, and everything finishes (a lost hand-off
/// would leave the rest waiting forever) with the mutex free.
#[test]
fn cancellations_racing_cross_thread_hand_offs_lose_nothing() {
    const GREEN: usize = 6; // per hub
    const ROUNDS: usize = 300;
    let m = Arc::new(Mutex::new(0u64));
    let inside = Arc::new(AtomicBool::new(false));
    let overlap = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel();
    let rt = sylvan::Runtime::builder().threads(2).build().unwrap();
    let hubs = {
        let (m, inside, overlap) = (m.clone(), inside.clone(), overlap.clone());
        std::thread::spawn(move || {
            rt.run(move || {
                let workers: Vec<_> = (0..GREEN)
                    .map(|w| {
                        let (m, inside, overlap) = (m.clone(), inside.clone(), overlap.clone());
                        sylvan::spawn(move || {
                            for r in 0..ROUNDS {
                                let guard = if (w + r) % 2 == 0 {
                                    let d = Duration::from_micros(((w * 7 + r * 13) % 50) as u64);
                                    match sylvan::timeout(d, || m.lock()) {
                                        Ok(Ok(g)) => g,
                                        Ok(Err(e)) => match e.cancelled() {
                                            Some(Cancelled::Killed) => return,
                                            _ => continue,
                                        },
                                        // (Hundreds per run time out, many
                                        // racing a hand-off.)
                                        Err(_) => continue,
                                    }
                                } else {
                                    match m.lock() {
                                        Ok(g) => g,
                                        Err(_) => return,
                                    }
                                };
                                if inside.swap(true, Ordering::SeqCst) {
                                    overlap.store(true, Ordering::SeqCst);
                                }
                                let mut guard = guard;
                                *guard += 1;
                                if r % 5 == 0 {
                                    sylvan::yield_now();
                                }
                                inside.store(false, Ordering::SeqCst);
                            }
                        })
                    })
                    .collect();
                // Kill two workers of each hub partway through.
                sylvan::sleep(Duration::from_micros(200)).unwrap();
                workers[0].kill();
                workers[3].kill();
                for w in workers {
                    let _ = w.join();
                }
            })
        })
    };
    let plain = {
        let (m, inside, overlap) = (m.clone(), inside.clone(), overlap.clone());
        std::thread::spawn(move || {
            for _ in 0..ROUNDS {
                let mut g = m.lock().unwrap();
                if inside.swap(true, Ordering::SeqCst) {
                    overlap.store(true, Ordering::SeqCst);
                }
                *g += 1;
                inside.store(false, Ordering::SeqCst);
            }
        })
    };
    std::thread::spawn(move || {
        hubs.join().unwrap();
        plain.join().unwrap();
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("everyone finished: no hand-off was lost");
    assert!(!overlap.load(Ordering::SeqCst), "two holders at once");
    let g = m.try_lock().expect("free at the end");
    assert!(*g >= ROUNDS as u64, "at least the plain thread's rounds");
}
