//! `sylvan::signal`: green threads wait for signals; the disposition is put
//! back when nobody listens. Each test uses its own signals, since the
//! tests of this file share one process and a delivery is broadcast.

use std::time::Duration;

use sylvan::Cancelled;
use sylvan::signal::{self, Signal, Signals};

fn send(sig: Signal) {
    // SAFETY: kill(2) with our own pid and a valid signal number.
    let r = unsafe { libc::kill(libc::getpid(), sig.as_raw()) };
    assert_eq!(r, 0);
}

/// The handler currently installed for `sig` (`SIG_DFL` is 0).
fn disposition(sig: Signal) -> libc::sighandler_t {
    // SAFETY: querying only; `old` is writable plain data.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig.as_raw(), std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

fn rt(n: i32) -> Signal {
    Signal::from_raw(libc::SIGRTMIN() + n).unwrap()
}

#[test]
fn kill_usr1_through_a_child_process_wakes_wait() {
    let waiter = sylvan::spawn(|| signal::wait(&[signal::SIGTERM, signal::SIGUSR1]));
    sylvan::yield_now(); // listening now
    let status = sylvan::process::Command::new("kill")
        .args(["-USR1", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(waiter.join().unwrap(), Ok(signal::SIGUSR1));
}

#[test]
fn a_signal_raised_to_self_wakes_the_root() {
    // The root waits; a green thread raises the signal once the root parks.
    let sender = sylvan::spawn(|| send(signal::SIGUSR2));
    assert_eq!(signal::wait(&[signal::SIGUSR2]), Ok(signal::SIGUSR2));
    sender.join().unwrap();
}

#[test]
fn every_waiter_gets_each_delivery_and_the_hub_keeps_running() {
    let sig = rt(1);
    let waiters: Vec<_> = (0..5)
        .map(|_| sylvan::spawn(move || signal::wait(&[sig])))
        .collect();
    let ticker = sylvan::spawn(|| {
        let mut n = 0u32;
        while n < 50 {
            n += 1;
            sylvan::yield_now();
        }
        n
    });
    sylvan::yield_now(); // all five listen
    // Another green thread runs while they are parked.
    assert_eq!(ticker.join().unwrap(), 50);
    assert!(waiters.iter().all(|w| !w.is_finished()));
    send(sig);
    for w in waiters {
        assert_eq!(w.join().unwrap(), Ok(sig));
    }
}

#[test]
fn signals_is_broadcast_to_subscriptions_on_several_hubs() {
    let sig = rt(2);
    let (ready_tx, ready_rx) = sylvan::sync::channel::<()>();
    let threads = 3;
    let handle = std::thread::spawn(move || {
        sylvan::Runtime::builder()
            .threads(threads)
            .build()
            .unwrap()
            .run(move || {
                let s = Signals::new(&[sig]).unwrap();
                ready_tx.send(()).unwrap();
                s.recv()
            })
    });
    for _ in 0..threads {
        ready_rx.recv().unwrap();
    }
    send(sig);
    for r in handle.join().unwrap() {
        assert_eq!(r, Ok(sig));
    }
}

#[test]
fn a_subscription_counts_deliveries_while_nobody_receives() {
    // Real-time signals are queued by the kernel, so three sends are three
    // deliveries.
    let (a, b) = (rt(3), rt(4));
    let s = Signals::new(&[a, b]).unwrap();
    send(a);
    send(b);
    send(a);
    send(a);
    let mut got: Vec<Signal> = (0..4).map(|_| s.recv().unwrap()).collect();
    assert_eq!(s.try_recv(), None);
    got.sort();
    assert_eq!(got, [a, a, a, b]);
}

#[test]
fn cancelled_waits_return_the_error_and_stop_listening() {
    let sig = rt(5);
    assert_eq!(disposition(sig), libc::SIG_DFL);
    let r = sylvan::timeout(Duration::from_millis(10), || signal::wait(&[sig]));
    assert!(r.is_err(), "{r:?}");
    assert_eq!(disposition(sig), libc::SIG_DFL, "default put back");

    let g = sylvan::spawn(move || signal::wait(&[sig]));
    sylvan::yield_now();
    assert_ne!(disposition(sig), libc::SIG_DFL, "caught while waiting");
    g.kill();
    assert_eq!(g.join().unwrap(), Err(Cancelled::Killed));
    assert_eq!(disposition(sig), libc::SIG_DFL);

    // A cancelled recv keeps the subscription: a later delivery is kept.
    let s = Signals::new(&[sig]).unwrap();
    assert!(sylvan::timeout(Duration::from_millis(5), || s.recv()).is_err());
    send(sig);
    assert_eq!(s.recv(), Ok(sig));
}

#[test]
fn the_previous_disposition_comes_back_with_the_last_listener() {
    let sig = rt(6);
    // SAFETY: installing SIG_IGN for a real-time signal only this test uses.
    unsafe { libc::signal(sig.as_raw(), libc::SIG_IGN) };
    let a = Signals::new(&[sig]).unwrap();
    let b = Signals::new(&[sig]).unwrap();
    let caught = disposition(sig);
    assert_ne!(caught, libc::SIG_IGN);
    drop(a);
    assert_eq!(disposition(sig), caught, "b still listens");
    send(sig);
    assert_eq!(b.recv(), Ok(sig));
    drop(b);
    assert_eq!(disposition(sig), libc::SIG_IGN);
}

#[test]
fn uncatchable_signals_are_refused() {
    for n in [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        0,
        65,
        -1,
    ] {
        let e = Signal::from_raw(n).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }
    assert_eq!(signal::SIGINT.to_string(), "SIGINT");
    assert_eq!(format!("{:?}", rt(2)), "SIGRTMIN+2");
}

#[test]
fn send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Signal>();
    check::<Signals>();
}
