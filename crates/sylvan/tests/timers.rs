//! Timers on the virtual clock: order, cancellation, auto-advance.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

#[test]
fn ten_thousand_timers_fire_in_deadline_order_and_cancelled_ones_never() {
    sylvan::time::pause();
    let t0 = sylvan::time::now();
    let fired: Rc<RefCell<Vec<(u64, usize)>>> = Rc::new(RefCell::new(Vec::new()));
    // Pseudo-random deadlines (xorshift, fixed seed: reproducible).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let delays: Vec<u64> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1 + x % 1_000_000
        })
        .collect();
    let handles: Vec<_> = delays
        .iter()
        .enumerate()
        .map(|(i, &ms)| {
            let fired = fired.clone();
            sylvan::Builder::new()
                .stack_size(16 * 1024)
                .spawn(move || {
                    sylvan::sleep(Duration::from_millis(ms))?;
                    let at = (sylvan::time::now() - t0).as_millis() as u64;
                    fired.borrow_mut().push((at, i));
                    Ok::<_, sylvan::Cancelled>(())
                })
                .unwrap()
        })
        .collect();
    sylvan::yield_now(); // everyone is now parked with a timer armed
    // Cancel every third one.
    for (i, h) in handles.iter().enumerate() {
        if i % 3 == 0 {
            h.kill();
        }
    }
    for h in handles {
        let _ = h.join().unwrap();
    }
    let fired = fired.borrow();
    assert_eq!(
        fired.len(),
        delays
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .count()
    );
    for w in fired.windows(2) {
        assert!(w[0].0 <= w[1].0, "fired out of order: {w:?}");
    }
    for &(at, i) in fired.iter() {
        assert_ne!(i % 3, 0, "cancelled timer {i} fired");
        assert_eq!(
            at, delays[i],
            "virtual time at wake-up is exactly the deadline"
        );
    }
}

#[test]
fn equal_deadlines_fire_in_arming_order() {
    sylvan::time::pause();
    let log = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..5)
        .map(|i| {
            let log = log.clone();
            sylvan::spawn(move || {
                sylvan::sleep(Duration::from_secs(1)).unwrap();
                log.borrow_mut().push(i);
            })
        })
        .collect();
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(*log.borrow(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn advance_runs_what_became_due_and_nothing_else() {
    sylvan::time::pause();
    let log = Rc::new(RefCell::new(Vec::new()));
    for s in [1u64, 2, 3] {
        let log = log.clone();
        drop(sylvan::spawn(move || {
            sylvan::sleep(Duration::from_secs(s)).unwrap();
            log.borrow_mut().push(s);
        }));
    }
    sylvan::yield_now();
    sylvan::time::advance(Duration::from_millis(2500));
    assert_eq!(*log.borrow(), vec![1, 2]);
    sylvan::time::advance(Duration::from_secs(1));
    assert_eq!(*log.borrow(), vec![1, 2, 3]);
}

#[test]
fn resume_keeps_virtual_time_monotonic() {
    sylvan::time::pause();
    let before = sylvan::time::now();
    sylvan::time::advance(Duration::from_secs(100));
    sylvan::time::resume();
    let after = sylvan::time::now();
    assert!(after - before >= Duration::from_secs(100));
    sylvan::sleep(Duration::from_millis(1)).unwrap();
    assert!(sylvan::time::now() > after);
}

#[test]
#[should_panic(expected = "needs a paused clock")]
fn advance_without_pause_panics_clearly() {
    sylvan::time::advance(Duration::from_secs(1));
}

#[test]
#[should_panic(expected = "deadlock")]
fn root_blocked_forever_reports_a_deadlock() {
    let q = sylvan::sync::Queue::<u8>::unbounded();
    let _ = q.get();
}

/// A deadline made from a timeout at the end of (virtual) time saturates
/// there and has passed at once: a read with a timeout times out and a
/// sleep returns without suspending, so a green thread that is ready (and
/// would send the read its data) has not run.
#[test]
fn a_deadline_saturated_at_the_end_of_time_has_passed_at_once() {
    use std::io::{Read, Write};
    sylvan::time::pause();
    sylvan::time::advance(Duration::MAX);
    let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = sylvan::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let ran = Rc::new(std::cell::Cell::new(false));
    let r = ran.clone();
    let writer = sylvan::spawn(move || {
        r.set(true);
        client.write_all(b"x").unwrap();
        client
    });
    let mut buf = [0u8; 1];
    let err = server.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    sylvan::sleep(Duration::from_secs(1)).unwrap();
    assert!(!ran.get(), "the read or the sleep suspended");
    drop(writer.join().unwrap());
}
