//! `CircuitBreaker` against resilience4j's definition, on virtual time:
//! the state sequence, minimum calls, exactly N half-open probes, slow
//! calls, sliding windows, listeners, forced-open and disabled.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use sylvan::Cancelled;
use sylvan::resilience::{BreakerError, BreakerState, CircuitBreaker};

use BreakerState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ok(b: &CircuitBreaker) -> Result<(), BreakerError<&'static str>> {
    b.call(|| Ok(()))
}

fn fail(b: &CircuitBreaker) -> Result<(), BreakerError<&'static str>> {
    b.call(|| Err("down"))
}

/// Records every transition the breaker announces.
fn record_transitions(b: &CircuitBreaker) -> Rc<RefCell<Vec<(BreakerState, BreakerState)>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    b.on_state_change(move |from, to| s.borrow_mut().push((from, to)));
    seen
}

fn breaker(window: u32, minimum: u32, probes: u32) -> CircuitBreaker {
    CircuitBreaker::builder()
        .count_window(window)
        .minimum_calls(minimum)
        .failure_rate_threshold(50.0)
        .wait_in_open(secs(30))
        .half_open_calls(probes)
        .build()
        .unwrap()
}

#[test]
fn state_sequence_closed_open_half_open_closed() {
    sylvan::time::pause();
    let b = breaker(10, 5, 3);
    let seen = record_transitions(&b);

    // Below the minimum number of calls, even 100 % failures don't trip it.
    for _ in 0..4 {
        assert!(matches!(fail(&b), Err(BreakerError::Inner("down"))));
    }
    assert_eq!(b.state(), Closed);
    assert_eq!(b.metrics().failure_rate, None);
    // The fifth call reaches the minimum: 100 % >= 50 %.
    let _ = fail(&b);
    assert_eq!(b.state(), Open);
    let m = b.metrics();
    assert_eq!(
        (m.calls, m.failed_calls, m.failure_rate),
        (5, 5, Some(100.0))
    );

    // Open: rejected at once, without running the operation, with the
    // time left.
    let ran = Cell::new(false);
    let t0 = sylvan::time::now();
    let e = b
        .call(|| {
            ran.set(true);
            Ok::<(), &str>(())
        })
        .unwrap_err();
    assert!(!ran.get());
    assert_eq!(sylvan::time::now(), t0, "rejected without waiting");
    assert!(matches!(
        e,
        BreakerError::Open {
            state: Open,
            remaining: Some(r),
            ..
        } if r == secs(30)
    ));
    assert!(b.try_acquire().is_none());
    sylvan::time::advance(secs(30) - ms(1));
    assert_eq!(b.state(), Open);
    assert_eq!(fail(&b).unwrap_err().remaining(), Some(ms(1)));
    assert_eq!(b.metrics().not_permitted_calls, 3);

    // After the wait: half-open, exactly 3 probes.
    sylvan::time::advance(ms(1));
    assert_eq!(b.state(), HalfOpen);
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire().expect("a probe")).collect();
    assert!(
        b.try_acquire().is_none(),
        "the 4th concurrent call is rejected"
    );
    let e = ok(&b).unwrap_err();
    assert!(matches!(
        e,
        BreakerError::Open {
            state: HalfOpen,
            remaining: None,
            ..
        }
    ));
    let mut probes = probes.into_iter();
    probes.next().unwrap().success();
    probes.next().unwrap().success();
    assert_eq!(b.state(), HalfOpen, "undecided until all 3 report");
    assert!(
        b.try_acquire().is_none(),
        "finished probes don't free slots"
    );
    probes.next().unwrap().success();
    assert_eq!(b.state(), Closed);

    // Closed again, with an empty window.
    assert_eq!(b.metrics().calls, 0);
    assert_eq!(
        *seen.borrow(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
}

#[test]
fn failed_probes_open_the_breaker_again() {
    sylvan::time::pause();
    let b = breaker(4, 2, 3);
    let seen = record_transitions(&b);
    let _ = fail(&b);
    let _ = fail(&b);
    assert_eq!(b.state(), Open);
    sylvan::sleep(secs(30)).unwrap();

    // 2 of 3 probes fail: 67 % >= 50 %: open again, for a new full wait.
    let _ = fail(&b);
    let _ = ok(&b);
    let _ = fail(&b);
    assert_eq!(b.state(), Open);
    assert_eq!(ok(&b).unwrap_err().remaining(), Some(secs(30)));

    // 1 of 3 probes fails: 33 % < 50 %: closed.
    sylvan::sleep(secs(30)).unwrap();
    let _ = fail(&b);
    let _ = ok(&b);
    let _ = ok(&b);
    assert_eq!(b.state(), Closed);

    assert_eq!(
        *seen.borrow(),
        [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed)
        ]
    );
}

#[test]
fn exactly_n_concurrent_probes() {
    sylvan::time::pause();
    let b = breaker(2, 2, 3);
    let _ = fail(&b);
    let _ = fail(&b);
    sylvan::sleep(secs(30)).unwrap();

    // Ten green threads call at once; each probe takes a second.
    let ran = Rc::new(Cell::new(0));
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let (b, ran) = (b.clone(), ran.clone());
            sylvan::spawn(move || {
                b.call(|| {
                    ran.set(ran.get() + 1);
                    sylvan::sleep(secs(1))
                })
            })
        })
        .collect();
    let results: Vec<_> = callers.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(ran.get(), 3, "exactly 3 probes ran");
    let rejected = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(BreakerError::Open {
                    state: HalfOpen,
                    ..
                })
            )
        })
        .count();
    assert_eq!(rejected, 7);
    assert_eq!(b.state(), Closed);
}

#[test]
fn a_dropped_probe_frees_its_slot() {
    sylvan::time::pause();
    let b = breaker(1, 1, 1);
    let _ = fail(&b);
    sylvan::sleep(secs(30)).unwrap();
    let p = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_none());
    drop(p); // the caller gave up: nothing recorded
    assert_eq!(b.state(), HalfOpen);
    let p = b.try_acquire().expect("the slot is free again");
    p.success();
    assert_eq!(b.state(), Closed);
}

#[test]
fn a_killed_caller_is_not_recorded() {
    sylvan::time::pause();
    let b = breaker(1, 1, 1);
    let _ = fail(&b);
    sylvan::sleep(secs(30)).unwrap();
    assert_eq!(b.state(), HalfOpen);
    let b2 = b.clone();
    let g = sylvan::spawn(move || b2.call(|| sylvan::sleep(secs(60))));
    sylvan::yield_now();
    assert!(b.try_acquire().is_none(), "the probe is in flight");
    g.kill();
    let r = g.join().unwrap();
    assert!(matches!(r, Err(BreakerError::Inner(Cancelled::Killed))));
    assert_eq!(b.state(), HalfOpen, "a kill is not the peer's failure");
    assert!(
        b.try_acquire().is_some(),
        "and its probe slot is free again"
    );
}

#[test]
fn a_passed_deadline_counts_as_a_failure() {
    sylvan::time::pause();
    let b = breaker(1, 1, 1);
    let r = sylvan::timeout(secs(1), || b.call(|| sylvan::sleep(secs(60))));
    assert!(r.is_err());
    assert_eq!(b.state(), Open);
}

#[test]
fn results_from_an_earlier_state_are_ignored() {
    sylvan::time::pause();
    let b = breaker(2, 2, 2);
    let old = b.try_acquire().unwrap(); // granted while closed
    let _ = fail(&b);
    let _ = fail(&b);
    assert_eq!(b.state(), Open);
    sylvan::sleep(secs(30)).unwrap();
    assert_eq!(b.state(), HalfOpen);
    old.success(); // reports into half-open: must not count as a probe
    assert_eq!(b.metrics().calls, 0);
    let _ = ok(&b);
    assert_eq!(b.state(), HalfOpen, "one probe of two so far");
    let _ = ok(&b);
    assert_eq!(b.state(), Closed);
}

#[test]
fn count_window_slides() {
    let b = breaker(4, 4, 1);
    for _ in 0..3 {
        let _ = ok(&b);
    }
    let _ = fail(&b); // S S S F: 25 %
    assert_eq!(b.state(), Closed);
    assert_eq!(b.metrics().failure_rate, Some(25.0));
    let _ = fail(&b); // S S F F: 50 %
    assert_eq!(b.state(), Open);
    let m = b.metrics();
    assert_eq!((m.calls, m.failed_calls), (4, 2));
}

#[test]
fn slow_calls_are_counted_and_can_open_the_breaker() {
    sylvan::time::pause();
    let b = CircuitBreaker::builder()
        .count_window(4)
        .minimum_calls(4)
        .slow_call_duration(secs(1))
        .slow_call_rate_threshold(50.0)
        .failure_rate_threshold(100.0)
        .build()
        .unwrap();
    let slow_ok = || b.call(|| sylvan::sleep(secs(2)).map_err(|_| "cancelled"));
    let fast_ok = || b.call(|| sylvan::sleep(ms(500)).map_err(|_| "cancelled"));
    let slow_fail = || {
        b.call(|| {
            sylvan::sleep(secs(3)).unwrap();
            Err::<(), _>("down")
        })
    };
    fast_ok().unwrap();
    // Exactly the threshold duration is not slow ("longer than").
    b.call(|| sylvan::sleep(secs(1)).map_err(|_| "cancelled"))
        .unwrap();
    slow_ok().unwrap();
    assert_eq!(b.state(), Closed);
    let m = b.metrics();
    assert_eq!((m.calls, m.slow_calls, m.slow_failed_calls), (3, 1, 0));
    let _ = slow_fail();
    // 2 slow of 4: 50 % >= 50 %, though only 25 % failed.
    assert_eq!(b.state(), Open);
    let m = b.metrics();
    assert_eq!(
        (m.calls, m.failed_calls, m.slow_calls, m.slow_failed_calls),
        (4, 1, 2, 1)
    );
    assert_eq!(m.slow_call_rate, Some(50.0));
    assert_eq!(m.failure_rate, Some(25.0));
}

#[test]
fn slow_probes_reopen_the_breaker() {
    sylvan::time::pause();
    let b = CircuitBreaker::builder()
        .count_window(2)
        .minimum_calls(2)
        .slow_call_duration(secs(1))
        .wait_in_open(secs(5))
        .half_open_calls(2)
        .build()
        .unwrap();
    let seen = record_transitions(&b);
    for _ in 0..2 {
        b.call(|| sylvan::sleep(secs(2)).map_err(|_| "cancelled"))
            .unwrap();
    }
    assert_eq!(b.state(), Open, "100 % slow calls >= the default 100 %");
    sylvan::sleep(secs(5)).unwrap();
    for _ in 0..2 {
        let p = b.try_acquire().unwrap();
        sylvan::sleep(secs(2)).unwrap();
        assert_eq!(p.elapsed(), secs(2));
        p.success();
    }
    assert_eq!(
        *seen.borrow(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Open)]
    );
}

#[test]
fn time_window_drops_old_calls() {
    sylvan::time::pause();
    let make = || {
        CircuitBreaker::builder()
            .time_window(secs(10))
            .minimum_calls(3)
            .failure_rate_threshold(50.0)
            .build()
            .unwrap()
    };
    let b = make();
    let _ = fail(&b);
    let _ = fail(&b);
    sylvan::time::advance(secs(11));
    // The two old failures have left the window: 1 call < the minimum.
    let _ = fail(&b);
    assert_eq!(b.state(), Closed);
    assert_eq!(b.metrics().calls, 1);

    // Calls 5 s old are still in it.
    let b = make();
    let _ = fail(&b);
    sylvan::time::advance(secs(5));
    let _ = fail(&b);
    sylvan::time::advance(ms(5500));
    let m = b.metrics();
    assert_eq!(m.calls, 1, "the call at 0 s left, the one at 5 s stays");
    let _ = ok(&b);
    let _ = fail(&b);
    assert_eq!(b.state(), Open, "2 failures of 3 in the last 10 s");

    // Bucket precision: a call leaves between 0.9 and 1.0 window later.
    let b = make();
    let _ = fail(&b);
    sylvan::time::advance(ms(8999));
    assert_eq!(b.metrics().calls, 1);
    sylvan::time::advance(ms(1001));
    assert_eq!(b.metrics().calls, 0);
}

#[test]
fn count_window_would_have_tripped() {
    // The contrast to `time_window_drops_old_calls`: a count window keeps
    // old calls however long ago they were.
    sylvan::time::pause();
    let b = breaker(10, 3, 1);
    let _ = fail(&b);
    let _ = fail(&b);
    sylvan::time::advance(secs(3600));
    let _ = fail(&b);
    assert_eq!(b.state(), Open);
}

#[test]
fn listeners_see_every_transition_in_order() {
    sylvan::time::pause();
    let b = breaker(1, 1, 1);
    let first = record_transitions(&b);
    let second = record_transitions(&b);

    let _ = fail(&b); // Closed -> Open
    sylvan::sleep(secs(30)).unwrap();
    let _ = fail(&b); // -> HalfOpen -> Open
    sylvan::sleep(secs(30)).unwrap();
    let _ = ok(&b); // -> HalfOpen -> Closed
    b.force_open();
    b.force_open(); // no change, no event
    b.reset();
    b.disable();
    let _ = fail(&b);
    b.reset();
    let want = [
        (Closed, Open),
        (Open, HalfOpen),
        (HalfOpen, Open),
        (Open, HalfOpen),
        (HalfOpen, Closed),
        (Closed, ForcedOpen),
        (ForcedOpen, Closed),
        (Closed, Disabled),
        (Disabled, Closed),
    ];
    assert_eq!(*first.borrow(), want);
    assert_eq!(*second.borrow(), want);
}

#[test]
fn listeners_may_use_the_breaker_and_still_see_order() {
    let b = breaker(1, 1, 1);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (s, handle) = (seen.clone(), b.clone());
    b.on_state_change(move |from, to| {
        s.borrow_mut().push(("a", from, to, handle.state()));
        if to == Open {
            handle.force_open(); // a nested change, from inside a listener
        }
    });
    let s = seen.clone();
    b.on_state_change(move |from, to| s.borrow_mut().push(("b", from, to, to)));
    let _ = fail(&b);
    assert_eq!(
        *seen.borrow(),
        [
            ("a", Closed, Open, Open),
            ("b", Closed, Open, Open),
            ("a", Open, ForcedOpen, ForcedOpen),
            ("b", Open, ForcedOpen, ForcedOpen),
        ]
    );
}

#[test]
fn forced_open_rejects_everything_until_reset() {
    sylvan::time::pause();
    let b = breaker(10, 1, 1);
    b.force_open();
    for _ in 0..5 {
        let e = ok(&b).unwrap_err();
        assert!(matches!(
            e,
            BreakerError::Open {
                state: ForcedOpen,
                remaining: None,
                ..
            }
        ));
    }
    sylvan::time::advance(secs(3600));
    assert_eq!(b.state(), ForcedOpen, "no wait ends a forced open");
    assert!(b.try_acquire().is_none());
    assert_eq!(b.metrics().not_permitted_calls, 6);
    b.reset();
    assert_eq!(b.state(), Closed);
    ok(&b).unwrap();
}

#[test]
fn disabled_lets_everything_through_and_records_nothing() {
    sylvan::time::pause();
    let b = breaker(2, 1, 1);
    let seen = record_transitions(&b);
    b.disable();
    for _ in 0..20 {
        assert!(matches!(fail(&b), Err(BreakerError::Inner("down"))));
    }
    let p = b.try_acquire().unwrap();
    p.failure();
    assert_eq!(b.state(), Disabled);
    assert_eq!(b.metrics().calls, 0);
    b.reset();
    assert_eq!(b.state(), Closed);
    let _ = fail(&b);
    assert_eq!(b.state(), Open, "recording again after reset");
    assert_eq!(
        *seen.borrow(),
        [(Closed, Disabled), (Disabled, Closed), (Closed, Open)]
    );
}

#[test]
fn reset_ignores_permits_granted_before_it() {
    let b = breaker(2, 2, 1);
    let p = b.try_acquire().unwrap();
    let _ = fail(&b);
    b.reset();
    p.failure();
    let _ = fail(&b);
    assert_eq!(b.state(), Closed, "only one failure since the reset");
    assert_eq!(b.metrics().calls, 1);
}

#[test]
fn into_io_error() {
    let b = breaker(1, 1, 1);
    let r: Result<(), _> =
        b.call(|| Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
    let e: std::io::Error = r.unwrap_err().into();
    assert_eq!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset,
        "the inner error, unchanged"
    );
    let r: Result<(), BreakerError<std::io::Error>> = b.call(|| Ok(()));
    let e: std::io::Error = r.unwrap_err().into();
    assert_eq!(e.kind(), std::io::ErrorKind::Other);
    assert!(e.to_string().starts_with("circuit breaker is open"), "{e}");
}
