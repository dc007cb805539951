//! Scoped deadlines: nesting, the "is it my timeout" rule, the root context.

use std::time::Duration;

use sylvan::Cancelled;
use sylvan::sync::Queue;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn inner_timeout_fires_outer_does_not() {
    sylvan::time::pause();
    let outer = sylvan::timeout(secs(10), || {
        let inner = sylvan::timeout(secs(1), || sylvan::sleep(secs(5)));
        assert!(inner.is_err(), "the inner deadline fired");
        // The outer scope is still alive: blocking calls work.
        sylvan::sleep(secs(1))
    });
    assert_eq!(outer, Ok(Ok(())));
}

#[test]
fn outer_timeout_fires_through_inner() {
    sylvan::time::pause();
    let outer = sylvan::timeout(secs(1), || {
        let inner = sylvan::timeout(secs(10), || sylvan::sleep(secs(5)));
        // The inner scope did not fire: it hands the outer's error up.
        let inner_value = inner.expect("not the inner scope's deadline");
        assert!(matches!(inner_value, Err(Cancelled::TimedOut(_))));
        inner_value
    });
    assert!(outer.is_err(), "the outer deadline fired");
}

#[test]
fn neither_fires() {
    sylvan::time::pause();
    let r = sylvan::timeout(secs(10), || {
        sylvan::timeout(secs(5), || sylvan::sleep(secs(1)))
    });
    assert_eq!(r, Ok(Ok(Ok(()))));
}

#[test]
fn once_expired_every_blocking_call_fails_at_once() {
    sylvan::time::pause();
    let q = Queue::<u8>::unbounded();
    let r = sylvan::timeout(secs(1), || {
        let a = sylvan::sleep(secs(5));
        let t = sylvan::time::now();
        let b = q.get();
        let c = sylvan::sleep(secs(5));
        assert_eq!(
            sylvan::time::now(),
            t,
            "no time passes: the calls fail without parking"
        );
        (a, b, c)
    });
    assert!(r.is_err());
}

#[test]
fn equal_deadlines_belong_to_the_outer_scope() {
    sylvan::time::pause();
    let at = sylvan::time::now() + secs(1);
    let outer = sylvan::deadline(at, || {
        let inner = sylvan::deadline(at, || sylvan::sleep(secs(5)));
        inner.expect("the outer scope owns the shared deadline")
    });
    assert!(outer.is_err());
}

#[test]
fn deadline_in_the_root_context() {
    sylvan::time::pause();
    let q = Queue::<u8>::unbounded();
    let t0 = sylvan::time::now();
    let r = sylvan::deadline(t0 + secs(3), || q.get());
    assert!(r.is_err());
    assert_eq!(sylvan::time::now() - t0, secs(3));
}

#[test]
fn deadline_already_passed_fails_without_waiting() {
    let q = Queue::<u8>::unbounded();
    q.put(1).unwrap();
    let past = sylvan::time::now();
    // A call that does not need to block still succeeds...
    assert_eq!(sylvan::deadline(past, || q.try_get()), Ok(Some(1)));
    // ...but a blocking one fails at once.
    assert!(sylvan::deadline(past, || q.get()).is_err());
}

#[test]
fn body_that_never_blocks_is_ok_even_past_its_deadline() {
    sylvan::time::pause();
    let r = sylvan::timeout(secs(1), || {
        sylvan::time::advance(secs(2));
        "done without blocking"
    });
    assert_eq!(r, Ok("done without blocking"));
}

#[test]
fn scopes_are_per_green_thread() {
    sylvan::time::pause();
    let r = sylvan::timeout(secs(1), || {
        // The spawned green thread does not inherit the caller's scope.
        let g = sylvan::spawn(|| sylvan::sleep(secs(5)));
        let joined = g.wait();
        (joined, g)
    });
    let Err(_) = r else {
        panic!("the caller's wait should have timed out");
    };
}

#[test]
fn timed_out_error_is_io_timed_out() {
    sylvan::time::pause();
    let r = sylvan::timeout(secs(1), || {
        let e = sylvan::sleep(secs(2)).unwrap_err();
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(Cancelled::from_io(&io), Some(e));
    });
    let elapsed = r.unwrap_err();
    let io: std::io::Error = elapsed.into();
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn sleep_never_ends_early_in_real_time() {
    for ms in [1u64, 7, 15] {
        let t0 = std::time::Instant::now();
        sylvan::sleep(Duration::from_millis(ms)).unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(ms));
    }
}

#[test]
fn timeout_in_real_time_fires() {
    let q = Queue::<u8>::unbounded();
    let t0 = std::time::Instant::now();
    let r = sylvan::timeout(Duration::from_millis(20), || q.get());
    assert!(r.is_err());
    assert!(t0.elapsed() >= Duration::from_millis(20));
}
