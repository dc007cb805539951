//! Direct switches: a green thread about to yield or park while the root
//! waits runs the ready green threads itself, nested on its own stack,
//! until its own turn comes (the hub's `dispatch`). Each test drives one
//! path through that: the order green threads run in, the I/O, timers and
//! wakes from other threads the loop must still take, a kill, a panic or an end while nested, green
//! threads last resumed by another unwound at shutdown, scoped children
//! run on their owner's stack, and a small stack. Each runs on a thread of
//! its own and reports through a channel, so a hang fails the test instead
//! of stalling the run.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use sylvan::Cancelled;
use sylvan::sync::channel;

/// Runs `f` on a fresh OS thread (its own hub); fails if it panics or has
/// not returned within a minute (a hang).
fn on_own_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("the test's thread hung (no result within 60 s)"),
    }
}

#[test]
fn green_threads_that_yield_run_in_turn() {
    let log = on_own_thread(|| {
        let log = Rc::new(RefCell::new(String::new()));
        let handles: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let log = log.clone();
                sylvan::spawn(move || {
                    for _ in 0..4 {
                        log.borrow_mut().push_str(name);
                        sylvan::yield_now();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        Rc::try_unwrap(log).unwrap().into_inner()
    });
    assert_eq!(log, "abcabcabcabc");
}

#[test]
fn the_order_holds_when_the_loop_stops_to_poll_mid_round() {
    // More green threads than the loop runs between two polls (128): a
    // yielding one that runs those ahead of it is stopped by the budget
    // with some still ahead, and its turn must stay where it was (after
    // them, before those that yielded meanwhile), round after round.
    const N: usize = 300;
    const ROUNDS: usize = 5;
    let log = on_own_thread(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let log = log.clone();
                sylvan::spawn(move || {
                    for _ in 0..ROUNDS {
                        log.borrow_mut().push(i);
                        sylvan::yield_now();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        Rc::try_unwrap(log).unwrap().into_inner()
    });
    let expected: Vec<usize> = (0..ROUNDS).flat_map(|_| 0..N).collect();
    assert_eq!(log.len(), expected.len());
    if let Some(at) = (0..log.len()).find(|&i| log[i] != expected[i]) {
        panic!(
            "out of turn at {at} (round {}): ran {}, expected {}",
            at / N,
            log[at],
            expected[at]
        );
    }
}

#[test]
fn a_green_thread_yielding_in_a_loop_still_lets_timers_fire() {
    // Nothing else is ready while `a` spins, so it keeps finding its own
    // turn next; the loop's budget must still send it to the root now and
    // then, or the timer never fires and this never ends.
    let spins = on_own_thread(|| {
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        let a = sylvan::spawn(move || {
            let mut spins = 0u64;
            while !d.get() {
                sylvan::yield_now();
                spins += 1;
            }
            spins
        });
        let b = sylvan::spawn(move || {
            sylvan::sleep(Duration::from_millis(5)).unwrap();
            done.set(true);
        });
        b.join().unwrap();
        a.join().unwrap()
    });
    assert!(spins > 0);
}

#[test]
fn a_green_thread_yielding_in_a_loop_still_lets_io_complete() {
    let got = on_own_thread(|| {
        let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        let spinner = sylvan::spawn(move || {
            while !d.get() {
                sylvan::yield_now();
            }
        });
        let server = sylvan::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let client = sylvan::spawn(move || {
            let mut c = sylvan::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"hello").unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            done.set(true);
            buf
        });
        server.join().unwrap();
        spinner.join().unwrap();
        client.join().unwrap()
    });
    assert_eq!(&got, b"hello");
}

/// While nothing waits on I/O, the loop's turns skip the poll's system
/// call; wakes from other OS threads must still arrive.
#[test]
fn a_green_thread_yielding_in_a_loop_still_lets_other_threads_wake_the_hub() {
    let got = on_own_thread(|| {
        let (tx, rx) = channel::<u32>();
        let (ack_tx, ack_rx) = mpsc::channel::<()>();
        // Each send waits for the previous value's ack, so it nearly
        // always finds the receiver parked: a wake from another thread.
        let sender = std::thread::spawn(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
                ack_rx.recv().unwrap();
            }
        });
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        let spinner = sylvan::spawn(move || {
            while !d.get() {
                sylvan::yield_now();
            }
        });
        let receiver = sylvan::spawn(move || {
            let mut sum = 0;
            for _ in 0..100 {
                sum += rx.recv().unwrap();
                ack_tx.send(()).unwrap();
            }
            done.set(true);
            sum
        });
        let sum = receiver.join().unwrap();
        spinner.join().unwrap();
        sender.join().unwrap();
        sum
    });
    assert_eq!(got, (0..100).sum::<u32>());
}

#[test]
fn a_green_thread_killed_by_one_it_runs_sees_the_kill() {
    let (slept, killer_done) = on_own_thread(|| {
        // `sleeper` parks while the root waits and `killer` is ready: it
        // runs `killer` on its own stack, which kills it and ends there.
        let sleeper = Rc::new(sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600))));
        let s = sleeper.clone();
        let killer = sylvan::spawn(move || {
            s.kill();
            true
        });
        sleeper.wait().unwrap();
        let killer_done = killer.join().unwrap();
        let slept = Rc::try_unwrap(sleeper).ok().unwrap().join().unwrap();
        (slept, killer_done)
    });
    assert_eq!(slept, Err(Cancelled::Killed));
    assert!(killer_done);
}

#[test]
fn a_panic_in_a_green_thread_run_by_another_is_its_own() {
    let (steady, boom) = on_own_thread(|| {
        let steady = sylvan::spawn(|| {
            for _ in 0..10 {
                sylvan::yield_now();
            }
            "steady"
        });
        let boom = sylvan::spawn(|| {
            sylvan::yield_now();
            panic!("boom while run by another green thread");
        });
        let steady = steady.join().unwrap();
        let boom = boom.join().unwrap_err();
        (steady, boom.panic_message().map(str::to_owned))
    });
    assert_eq!(steady, "steady");
    assert_eq!(
        boom.as_deref(),
        Some("boom while run by another green thread")
    );
}

#[test]
fn shutdown_unwinds_green_threads_last_resumed_by_another() {
    let dropped = on_own_thread(|| {
        struct Count(Rc<Cell<u32>>);
        impl Drop for Count {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        let dropped = Rc::new(Cell::new(0));
        let (to_b, from_a) = channel::<u32>();
        let (to_a, from_b) = channel::<u32>();
        let (d1, d2) = (dropped.clone(), dropped.clone());
        let (parked_tx, parked_rx) = channel::<()>();
        let parked_b = parked_tx.clone();
        let a = sylvan::spawn(move || {
            let _c = Count(d1);
            for i in 0..100 {
                to_b.send(i).unwrap();
                from_b.recv().unwrap();
            }
            // Both park for ever, `b` having last run on `a`'s stack. (A
            // green thread runs on until it parks: once the root has both
            // messages, both are parked.)
            let _keep = to_b;
            parked_tx.send(()).unwrap();
            sylvan::sleep(Duration::from_secs(3600))
        });
        let b = sylvan::spawn(move || {
            let _c = Count(d2);
            while let Ok(i) = from_a.recv() {
                to_a.send(i).unwrap();
                if i == 99 {
                    break;
                }
            }
            let _keep = to_a;
            parked_b.send(()).unwrap();
            sylvan::sleep(Duration::from_secs(3600))
        });
        parked_rx.recv().unwrap();
        parked_rx.recv().unwrap();
        assert!(!a.is_finished() && !b.is_finished());
        sylvan::shutdown();
        assert!(matches!(a.join(), Err(sylvan::JoinError::Killed)));
        assert!(matches!(b.join(), Err(sylvan::JoinError::Killed)));
        dropped.get()
    });
    assert_eq!(dropped, 2, "both green threads' destructors ran");
}

#[test]
fn scoped_children_run_on_their_owner_stack_and_see_its_frames() {
    let total = on_own_thread(|| {
        sylvan::spawn(|| {
            let numbers: Vec<u64> = (1..=100).collect();
            let sum = Cell::new(0u64);
            sylvan::scope(|s| {
                for chunk in numbers.chunks(10) {
                    let sum = &sum;
                    s.spawn(move || {
                        for n in chunk {
                            sum.set(sum.get() + n);
                            sylvan::yield_now();
                        }
                    });
                }
            });
            sum.get()
        })
        .join()
        .unwrap()
    });
    assert_eq!(total, 5050);
}

#[test]
fn a_green_thread_with_the_smallest_stack_hands_off_safely() {
    let rounds = on_own_thread(|| {
        let (to_small, from_big) = channel::<u32>();
        let (to_big, from_small) = channel::<u32>();
        let small = sylvan::Builder::new()
            .stack_size(16 * 1024)
            .spawn(move || {
                let mut n = 0;
                while let Ok(i) = from_big.recv() {
                    to_big.send(i + 1).unwrap();
                    n += 1;
                }
                n
            })
            .unwrap();
        let big = sylvan::spawn(move || {
            let mut i = 0;
            for _ in 0..1000 {
                to_small.send(i).unwrap();
                i = from_small.recv().unwrap();
            }
            i
        });
        assert_eq!(big.join().unwrap(), 1000);
        small.join().unwrap()
    });
    assert_eq!(rounds, 1000);
}
