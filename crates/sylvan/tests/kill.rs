//! Kill interrupts every kind of blocking call, is sticky, and loses nothing.

mod util;

use std::time::Duration;

use sylvan::sync::{Event, GetError, Queue};
use sylvan::{Cancelled, GreenThread};

/// Spawns `f`, lets it block, kills it, and returns what it returned.
fn kill_while_blocked<T: 'static>(f: impl FnOnce() -> T + 'static) -> T {
    let g: GreenThread<T> = sylvan::spawn(f);
    sylvan::yield_now();
    assert!(!g.is_finished(), "the green thread should be blocked");
    g.kill();
    g.join().unwrap()
}

#[test]
fn kill_interrupts_sleep() {
    assert_eq!(
        kill_while_blocked(|| sylvan::sleep(Duration::from_secs(3600))),
        Err(Cancelled::Killed)
    );
}

#[test]
fn kill_interrupts_join_and_wait() {
    let blocker = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
    let blocker_id = blocker.id();
    let r = kill_while_blocked(move || {
        let r = blocker.wait();
        (r, blocker)
    });
    assert_eq!(r.0, Err(Cancelled::Killed));
    // The handle kept by `wait` still works: the blocker is unaffected.
    assert_eq!(r.1.id(), blocker_id);
    assert!(!r.1.is_finished());
    r.1.kill();
    assert_eq!(r.1.join().unwrap(), Err(Cancelled::Killed));

    let other = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
    let r = kill_while_blocked(move || other.join().map_err(|e| e.to_string()));
    assert!(r.unwrap_err().contains("join was cancelled"));
}

#[test]
fn kill_interrupts_event_wait() {
    let ev = Event::<u8>::new();
    let e2 = ev.clone();
    assert_eq!(
        kill_while_blocked(move || e2.wait()),
        Err(Cancelled::Killed)
    );
    // The killed waiter is gone: a later send reaches a new waiter.
    let e3 = ev.clone();
    let w = sylvan::spawn(move || e3.wait());
    ev.send(9).unwrap();
    assert_eq!(w.join().unwrap(), Ok(9));
}

#[test]
fn kill_interrupts_queue_get_and_loses_no_item() {
    let q = Queue::<u32>::unbounded();
    let q2 = q.clone();
    assert_eq!(
        kill_while_blocked(move || q2.get()),
        Err(GetError::Cancelled(Cancelled::Killed))
    );
    q.put(1).unwrap();
    assert_eq!(q.len(), 1, "the item stays for the next getter");
    assert_eq!(q.get(), Ok(1));
}

#[test]
fn kill_interrupts_put_on_full_queue_and_hands_the_item_back() {
    let q = Queue::bounded(1);
    q.put(1).unwrap();
    let q2 = q.clone();
    let err = kill_while_blocked(move || q2.put(2)).unwrap_err();
    assert_eq!(err.cancelled(), Some(Cancelled::Killed));
    assert_eq!(err.into_inner(), 2);
    assert_eq!(q.len(), 1);
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.try_get(), None, "the killed put added nothing");
}

#[test]
fn kill_interrupts_rendezvous_put_and_withdraws_the_item() {
    let q = Queue::bounded(0);
    let q2 = q.clone();
    let err = kill_while_blocked(move || q2.put("offer")).unwrap_err();
    assert_eq!(err.into_inner(), "offer");
    assert_eq!(q.try_get(), None, "the withdrawn item is not delivered");
}

#[test]
fn kill_interrupts_tpool_execute() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let r = kill_while_blocked(move || {
        sylvan::tpool::execute(move || {
            // Blocks its pool thread until the test lets it go.
            let _ = rx.recv();
            5
        })
    });
    assert_eq!(r, Err(Cancelled::Killed));
    // Lets the job go if a pool thread started it. Killed while it still
    // waited in the queue, it is skipped unstarted (as `execute` documents)
    // and its receiver is gone: nothing to let go then.
    let _ = tx.send(());
}

#[test]
fn kill_is_sticky() {
    let g = sylvan::spawn(|| {
        let first = sylvan::sleep(Duration::from_secs(3600));
        let second = sylvan::sleep(Duration::from_millis(1));
        let third = Queue::<()>::unbounded().get();
        (first, second, third)
    });
    sylvan::yield_now();
    g.kill();
    let (a, b, c) = g.join().unwrap();
    assert_eq!(a, Err(Cancelled::Killed));
    assert_eq!(b, Err(Cancelled::Killed));
    assert_eq!(c, Err(GetError::Cancelled(Cancelled::Killed)));
}

#[test]
fn killed_green_thread_returns_what_its_code_returns() {
    let g = sylvan::spawn(|| match sylvan::sleep(Duration::from_secs(3600)) {
        Ok(()) => "slept",
        Err(_) => "cleaned up after kill",
    });
    sylvan::yield_now();
    g.kill();
    assert_eq!(g.join().unwrap(), "cleaned up after kill");
}

#[test]
fn killed_error_converts_to_io_other_not_interrupted() {
    let e: std::io::Error = Cancelled::Killed.into();
    assert_eq!(e.kind(), std::io::ErrorKind::Other);
    assert_eq!(Cancelled::from_io(&e), Some(Cancelled::Killed));
}

#[test]
fn kill_of_finished_thread_is_harmless() {
    let g = sylvan::spawn(|| 1);
    g.wait().unwrap();
    g.kill();
    assert_eq!(g.join().unwrap(), 1);
}
