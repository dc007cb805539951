//! `Retry` and `RetryBudget` on virtual time: attempt limits, the overall
//! deadline, the error predicate, the idempotency rule, the budget against a
//! retry storm, and cancellation of the caller.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sylvan::Cancelled;
use sylvan::resilience::{
    Backoff, Jitter, Retry, RetryBudget, RetryError, StopReason, is_transient, retry,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn refused() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused")
}

/// A fixed, jitter-free backoff, so delays are known exactly.
fn fixed(delay: Duration) -> Backoff {
    Backoff::new()
        .initial(delay)
        .multiplier(1.0)
        .unwrap()
        .jitter(Jitter::None)
        .unwrap()
}

#[test]
fn stops_after_max_attempts() {
    sylvan::time::pause();
    let t0 = sylvan::time::now();
    let calls = Cell::new(0);
    let policy = Retry::new().max_attempts(5).unwrap().backoff(
        Backoff::new()
            .initial(ms(100))
            .multiplier(2.0)
            .unwrap()
            .jitter(Jitter::None)
            .unwrap(),
    );
    let r: Result<(), _> = policy.run(|a| {
        calls.set(calls.get() + 1);
        assert_eq!(a.number(), calls.get());
        assert_eq!(a.is_retry(), a.number() > 1);
        Err(refused())
    });
    let e = r.unwrap_err();
    assert_eq!(calls.get(), 5);
    assert_eq!(e.reason(), StopReason::AttemptsExhausted);
    assert_eq!(e.attempts(), 5);
    assert_eq!(e.error().kind(), io::ErrorKind::ConnectionRefused);
    // Four delays between five attempts: 100 + 200 + 400 + 800 ms.
    assert_eq!(sylvan::time::now() - t0, ms(1500));
}

#[test]
fn succeeds_on_a_later_attempt() {
    sylvan::time::pause();
    let budget = RetryBudget::new(10, 0.5).unwrap();
    let policy = Retry::new()
        .max_attempts(3)
        .unwrap()
        .backoff(fixed(ms(10)))
        .budget(budget.clone());
    let v = retry(&policy, |a| {
        if a.number() < 3 {
            Err(refused())
        } else {
            Ok(a.number())
        }
    });
    assert_eq!(v.unwrap(), 3);
    // Two failures, one success: 10 - 2 + 0.5.
    assert_eq!(budget.tokens(), 8.5);
}

#[test]
fn max_attempts_one_means_no_retry() {
    let calls = Cell::new(0);
    let r: Result<(), _> = Retry::new().max_attempts(1).unwrap().run(|_| {
        calls.set(calls.get() + 1);
        Err(refused())
    });
    assert_eq!(r.unwrap_err().reason(), StopReason::AttemptsExhausted);
    assert_eq!(calls.get(), 1);
}

#[test]
fn overall_deadline_is_respected() {
    sylvan::time::pause();
    let t0 = sylvan::time::now();
    let deadline = secs(2);
    let starts = RefCell::new(Vec::new());
    let policy = Retry::new()
        .max_attempts(u32::MAX)
        .unwrap()
        .deadline(deadline)
        .backoff(fixed(ms(150)));
    let r = policy.run(|a| -> io::Result<()> {
        starts.borrow_mut().push(sylvan::time::now() - t0);
        assert_eq!(a.deadline(), Some(t0 + deadline));
        sylvan::sleep(ms(300))?; // a slow failure
        Err(refused())
    });
    let elapsed = sylvan::time::now() - t0;
    let e = r.unwrap_err();
    assert_eq!(e.reason(), StopReason::Deadline);
    assert!(elapsed <= deadline, "took {elapsed:?}");
    let starts = starts.into_inner();
    assert!(starts.iter().all(|s| *s < deadline), "{starts:?}");
    // Attempts start every 450 ms: 0, 0.45, 0.9, 1.35, 1.8 s; the last is
    // cut by the deadline at 2 s.
    assert_eq!(
        starts,
        [ms(0), ms(450), ms(900), ms(1350), ms(1800)],
        "attempt start times"
    );
    assert_eq!(elapsed, deadline);
    assert_eq!(e.attempts(), 5);
    // The cut attempt's error is the cancelled sleep, as an io::Error.
    assert!(Cancelled::from_io(e.error()).is_some_and(|c| c.is_timed_out()));
}

#[test]
fn no_attempt_starts_when_the_next_delay_ends_past_the_deadline() {
    sylvan::time::pause();
    let t0 = sylvan::time::now();
    let calls = Cell::new(0);
    let r: Result<(), _> = Retry::new()
        .max_attempts(10)
        .unwrap()
        .deadline(secs(3))
        .backoff(fixed(secs(2)))
        .run(|_| {
            calls.set(calls.get() + 1);
            Err(refused())
        });
    let e = r.unwrap_err();
    // Attempts at 0 and 2 s; a third at 4 s would be past the deadline, so
    // the run stops at 2 s instead of sleeping in vain.
    assert_eq!(calls.get(), 2);
    assert_eq!(e.reason(), StopReason::Deadline);
    assert_eq!(e.error().kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(sylvan::time::now() - t0, secs(2));
}

#[test]
fn first_attempt_runs_even_with_a_zero_deadline() {
    sylvan::time::pause();
    let policy = Retry::new().deadline(Duration::ZERO);
    let ran = Cell::new(false);
    let r = policy.run(|_| -> io::Result<()> {
        ran.set(true);
        // Any blocking call fails at once.
        sylvan::sleep(secs(1))?;
        Ok(())
    });
    assert!(ran.get());
    assert_eq!(r.unwrap_err().reason(), StopReason::Deadline);
    // A non-blocking operation still succeeds.
    assert_eq!(policy.run(|_| Ok::<_, io::Error>(7)).unwrap(), 7);
}

#[test]
fn an_outer_deadline_is_cancellation_not_the_policy_deadline() {
    sylvan::time::pause();
    let policy = Retry::new()
        .max_attempts(u32::MAX)
        .unwrap()
        .deadline(secs(10))
        .backoff(fixed(ms(100)));
    let reason = Cell::new(None);
    let outer = sylvan::timeout(secs(1), || {
        let r: Result<(), _> = policy.run(|_| Err(refused()));
        reason.set(Some(r.unwrap_err().reason()));
    });
    assert!(outer.is_err(), "the outer scope's deadline fired");
    assert!(matches!(
        reason.get(),
        Some(StopReason::Cancelled(Cancelled::TimedOut(_)))
    ));

    // And the other way round: the policy's own deadline is `Deadline`,
    // and it does not leak into the outer scope.
    let outer = sylvan::timeout(secs(10), || {
        let r: Result<(), _> = Retry::new()
            .max_attempts(u32::MAX)
            .unwrap()
            .deadline(secs(1))
            .backoff(fixed(ms(100)))
            .run(|_| -> io::Result<()> {
                sylvan::sleep(ms(70))?;
                Err(refused())
            });
        r.unwrap_err().reason()
    });
    assert_eq!(outer, Ok(StopReason::Deadline));
}

#[test]
fn non_retryable_error_stops_at_once() {
    sylvan::time::pause();
    let t0 = sylvan::time::now();
    let budget = RetryBudget::new(10, 0.1).unwrap();
    let calls = Cell::new(0);
    let r: Result<(), _> = Retry::new()
        .max_attempts(10)
        .unwrap()
        .retry_if(is_transient)
        .budget(budget.clone())
        .run(|_| {
            calls.set(calls.get() + 1);
            Err(io::Error::from(io::ErrorKind::PermissionDenied))
        });
    let e = r.unwrap_err();
    assert_eq!(e.reason(), StopReason::NotRetryable);
    assert_eq!(calls.get(), 1);
    assert_eq!(sylvan::time::now(), t0, "no delay");
    assert_eq!(budget.tokens(), 10.0, "non-retryable errors cost no token");
}

#[test]
fn predicate_sees_each_error() {
    sylvan::time::pause();
    // Retry "busy", stop at "fatal".
    let answers = RefCell::new(vec!["fatal", "busy", "busy"]);
    let r: Result<(), _> = Retry::new()
        .max_attempts(10)
        .unwrap()
        .backoff(fixed(ms(1)))
        .retry_if(|e: &&str| *e == "busy")
        .run(|_| Err(answers.borrow_mut().pop().unwrap()));
    let e = r.unwrap_err();
    assert_eq!(
        (e.reason(), e.attempts(), *e.error()),
        (StopReason::NotRetryable, 3, "fatal")
    );
}

#[test]
fn non_idempotent_request_is_not_replayed_after_it_was_sent() {
    sylvan::time::pause();
    let sent = Cell::new(0);
    let r: Result<(), _> = Retry::new().max_attempts(5).unwrap().run(|a| {
        a.mark_sent();
        sent.set(sent.get() + 1);
        Err(io::Error::from(io::ErrorKind::ConnectionReset))
    });
    let e = r.unwrap_err();
    assert_eq!(e.reason(), StopReason::NotIdempotent);
    assert_eq!(sent.get(), 1, "the request reached the server once");
}

#[test]
fn connect_failures_are_retried_even_when_not_idempotent() {
    sylvan::time::pause();
    let connects = Cell::new(0);
    let sent = Cell::new(0);
    let v = Retry::new()
        .max_attempts(5)
        .unwrap()
        .idempotent(false)
        .backoff(fixed(ms(10)))
        .run(|a| {
            connects.set(connects.get() + 1);
            if connects.get() < 4 {
                return Err(refused()); // connect failed: nothing sent
            }
            a.mark_sent();
            sent.set(sent.get() + 1);
            Ok("reply")
        });
    assert_eq!(v.unwrap(), "reply");
    assert_eq!((connects.get(), sent.get()), (4, 1));

    // A connect failure after a sent-and-failed attempt is never reached:
    // the first sent failure ends the run.
    let attempts = Cell::new(0);
    let r: Result<(), _> = Retry::new()
        .max_attempts(5)
        .unwrap()
        .backoff(fixed(ms(10)))
        .run(|a| {
            attempts.set(attempts.get() + 1);
            if attempts.get() == 1 {
                return Err(refused());
            }
            a.mark_sent();
            Err(io::Error::from(io::ErrorKind::UnexpectedEof))
        });
    let e = r.unwrap_err();
    assert_eq!((e.reason(), e.attempts()), (StopReason::NotIdempotent, 2));
}

#[test]
fn idempotent_request_is_replayed() {
    sylvan::time::pause();
    let sent = Cell::new(0);
    let v = Retry::new()
        .idempotent(true)
        .max_attempts(3)
        .unwrap()
        .backoff(fixed(ms(10)))
        .run(|a| {
            a.mark_sent();
            sent.set(sent.get() + 1);
            if sent.get() < 3 {
                Err(io::Error::from(io::ErrorKind::ConnectionReset))
            } else {
                Ok(())
            }
        });
    assert!(v.is_ok());
    assert_eq!(sent.get(), 3);
}

/// 100 clients, one shared budget, a server that always fails.
fn storm(budget: Option<RetryBudget>, max_attempts: u32) -> (u32, Vec<StopReason>) {
    sylvan::time::pause();
    let attempts = Rc::new(Cell::new(0u32));
    let mut policy = Retry::new().max_attempts(max_attempts).unwrap().backoff(
        Backoff::new()
            .initial(ms(100))
            .max(secs(5))
            .jitter(Jitter::Full)
            .unwrap()
            .seed(42),
    );
    if let Some(b) = budget {
        policy = policy.budget(b);
    }
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let policy = policy.clone();
            let attempts = attempts.clone();
            sylvan::spawn(move || {
                let r: Result<(), _> = policy.run(|_| {
                    attempts.set(attempts.get() + 1);
                    sylvan::sleep(ms(5))?; // the server takes a while to fail
                    Err(io::Error::from(io::ErrorKind::ConnectionReset))
                });
                r.unwrap_err().reason()
            })
        })
        .collect();
    let reasons = clients.into_iter().map(|c| c.join().unwrap()).collect();
    (attempts.get(), reasons)
}

#[test]
fn budget_stops_a_retry_storm() {
    // Without a budget: every client retries to its limit.
    let (attempts, _) = storm(None, 10);
    assert_eq!(attempts, 1000);

    // With gRPC's throttling (10 tokens, 0.1 per success): retries stop
    // once tokens fall to max/2. Tokens only fall here, one per failed
    // attempt, and a retry follows a failure only while more than 5 tokens
    // remain after it: at 9, 8, 7 and 6 tokens, so ceil(10/2) - 1 = 4
    // retries in all, whatever the interleaving.
    let budget = RetryBudget::new(10, 0.1).unwrap();
    let (attempts, reasons) = storm(Some(budget.clone()), 10);
    assert_eq!(attempts, 100 + 4);
    assert_eq!(budget.tokens(), 0.0);
    assert!(!budget.can_retry());
    let exhausted = reasons
        .iter()
        .filter(|r| **r == StopReason::BudgetExhausted)
        .count();
    assert_eq!(exhausted, 100, "{reasons:?}");

    // An odd bucket: threshold 5.5, retries at 10, 9, 8, 7 and 6 tokens.
    let budget = RetryBudget::new(11, 0.1).unwrap();
    let (attempts, _) = storm(Some(budget), 10);
    assert_eq!(attempts, 100 + 5);
}

#[test]
fn budget_refills_with_successes() {
    let budget = RetryBudget::new(10, 0.5).unwrap();
    for _ in 0..5 {
        budget.record_failure();
    }
    assert_eq!(budget.tokens(), 5.0);
    assert!(!budget.can_retry(), "at the threshold: no retries");
    budget.record_success();
    assert_eq!(budget.tokens(), 5.5);
    assert!(budget.can_retry());
    for _ in 0..100 {
        budget.record_success();
    }
    assert_eq!(budget.tokens(), 10.0, "capped at max_tokens");
    for _ in 0..100 {
        budget.record_failure();
    }
    assert_eq!(budget.tokens(), 0.0, "floored at zero");
}

#[test]
fn budget_is_shared_by_clones_and_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RetryBudget>();
    assert_send_sync::<Retry<io::Error>>();
    let budget = RetryBudget::new(1000, 1.0).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let b = budget.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    b.record_failure();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(budget.tokens(), 600.0);
}

#[test]
fn killing_the_caller_stops_retrying_during_a_delay() {
    sylvan::time::pause();
    let t0 = sylvan::time::now();
    let attempts = Rc::new(Cell::new(0));
    let a = attempts.clone();
    let g = sylvan::spawn(move || {
        Retry::new()
            .max_attempts(u32::MAX)
            .unwrap()
            .backoff(fixed(secs(10)))
            .run(|_| -> io::Result<()> {
                a.set(a.get() + 1);
                Err(refused())
            })
    });
    // Attempts at 0, 10 and 20 s; kill at 25 s, during the third delay.
    sylvan::sleep(secs(25)).unwrap();
    g.kill();
    let e = g.join().unwrap().unwrap_err();
    assert_eq!(e.reason(), StopReason::Cancelled(Cancelled::Killed));
    assert_eq!(e.attempts(), 3);
    assert_eq!(attempts.get(), 3);
    assert_eq!(sylvan::time::now() - t0, secs(25), "stopped promptly");
    // As an io::Error it is recognisably a kill.
    let io: io::Error = e.into();
    assert_eq!(Cancelled::from_io(&io), Some(Cancelled::Killed));
}

#[test]
fn killing_the_caller_stops_retrying_during_an_attempt() {
    sylvan::time::pause();
    let t0 = sylvan::time::now();
    let attempts = Rc::new(Cell::new(0));
    let a = attempts.clone();
    let g = sylvan::spawn(move || {
        Retry::new()
            .max_attempts(u32::MAX)
            .unwrap()
            .idempotent(true)
            .backoff(fixed(ms(1)))
            .run(|_| -> io::Result<()> {
                a.set(a.get() + 1);
                sylvan::sleep(secs(60))?; // waiting for a reply
                Err(refused())
            })
    });
    sylvan::sleep(secs(1)).unwrap();
    g.kill();
    let e = g.join().unwrap().unwrap_err();
    assert_eq!(e.reason(), StopReason::Cancelled(Cancelled::Killed));
    assert_eq!(attempts.get(), 1, "no retry after the kill");
    assert_eq!(sylvan::time::now() - t0, secs(1));
}

#[test]
fn a_timeout_around_the_caller_stops_retrying() {
    sylvan::time::pause();
    let t0 = sylvan::time::now();
    let attempts = Cell::new(0);
    let r = sylvan::timeout(ms(2500), || {
        Retry::new()
            .max_attempts(u32::MAX)
            .unwrap()
            .backoff(fixed(secs(1)))
            .run(|_| -> io::Result<()> {
                attempts.set(attempts.get() + 1);
                Err(refused())
            })
    });
    assert!(r.is_err());
    assert_eq!(attempts.get(), 3); // at 0, 1 and 2 s
    assert_eq!(sylvan::time::now() - t0, ms(2500));
}

#[test]
fn pleasant_with_the_question_mark() {
    sylvan::time::pause();
    fn fetch(policy: &Retry) -> io::Result<u32> {
        let v = policy.run(|_| Err(refused()))?;
        Ok(v)
    }
    let e = fetch(&Retry::new().max_attempts(2).unwrap().backoff(fixed(ms(1)))).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    assert!(e.to_string().contains("gave up after 2 attempts"), "{e}");
    let inner = e.get_ref().unwrap().downcast_ref::<RetryError<io::Error>>();
    assert_eq!(inner.unwrap().reason(), StopReason::AttemptsExhausted);
    let source = std::error::Error::source(inner.unwrap()).unwrap();
    assert_eq!(source.to_string(), "connection refused");

    // A stop by the policy's deadline reads as TimedOut.
    let e = fetch(&Retry::new().deadline(ms(5)).backoff(fixed(ms(10)))).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);

    // Any E: take the last error out.
    fn parse() -> Result<u8, std::num::ParseIntError> {
        Retry::new()
            .max_attempts(2)
            .unwrap()
            .backoff(fixed(ms(1)))
            .run(|_| "x".parse::<u8>())
            .map_err(RetryError::into_inner)
    }
    assert!(parse().is_err());
}

#[test]
fn each_run_starts_its_own_backoff() {
    sylvan::time::pause();
    let policy = Retry::new().max_attempts(3).unwrap().backoff(
        Backoff::new()
            .initial(secs(1))
            .multiplier(2.0)
            .unwrap()
            .jitter(Jitter::None)
            .unwrap(),
    );
    for _ in 0..3 {
        let t0: Instant = sylvan::time::now();
        let _ = policy.run(|_| -> io::Result<()> { Err(refused()) });
        assert_eq!(sylvan::time::now() - t0, secs(3), "1 s + 2 s every run");
    }
}

/// gRPC's form refills only on successes: after an outage, time alone never
/// brings a retry back. (The documented trade-off that Finagle's form
/// fixes.)
#[test]
fn token_bucket_budget_is_not_refilled_by_time() {
    sylvan::time::pause();
    let budget = RetryBudget::token_bucket(10, 0.1).unwrap();
    while budget.record_failure() {}
    sylvan::time::advance(secs(3600));
    assert!(!budget.can_retry());
}

/// Finagle's `RetryBudget(ttl, minRetriesPerSec, percentCanRetry)`: a
/// reserve of `min_retries_per_sec × ttl` retries, plus `percent_can_retry`
/// of the requests of the last `ttl`; what is spent comes back once it is
/// `ttl` old, with no success needed.
#[test]
fn finagle_budget_is_restored_by_time_alone() {
    sylvan::time::pause();
    // Reserve: 1 retry/s over 10 s = 10 retries; no requests yet.
    let budget = RetryBudget::finagle(secs(10), 1, 0.2).unwrap();
    assert_eq!(budget.tokens(), 10.0);
    let mut allowed = 0;
    while budget.record_failure() {
        allowed += 1;
    }
    assert_eq!(allowed, 10, "the reserve");
    assert!(!budget.can_retry());
    // An outage: nothing succeeds, no request is made. Before the
    // withdrawals are `ttl` old, nothing comes back...
    sylvan::time::advance(secs(9));
    assert!(!budget.can_retry());
    // ...then all of it does.
    sylvan::time::advance(secs(1));
    assert!(budget.can_retry());
    assert_eq!(budget.tokens(), 10.0);
}

#[test]
fn finagle_budget_lets_a_percentage_of_requests_retry() {
    sylvan::time::pause();
    // No reserve: only 20 % of the requests of the last 10 s may retry.
    let budget = RetryBudget::finagle(secs(10), 0, 0.2).unwrap();
    assert!(!budget.can_retry());
    for _ in 0..10 {
        budget.record_request();
    }
    assert_eq!(budget.tokens(), 2.0);
    assert!(budget.record_failure());
    assert!(budget.record_failure());
    assert!(!budget.record_failure(), "20 % of 10 requests is 2 retries");
    // Deposits expire with the window too.
    for _ in 0..10 {
        budget.record_request();
    }
    sylvan::time::advance(secs(10));
    assert!(!budget.can_retry());
}

/// `Retry` with a Finagle budget: an outage exhausts it, and a later run
/// may retry again once the window has passed.
#[test]
fn retry_with_a_finagle_budget_recovers_after_the_ttl() {
    sylvan::time::pause();
    let budget = RetryBudget::finagle(secs(10), 1, 0.1).unwrap(); // 10 in reserve
    let policy = Retry::new()
        .max_attempts(100)
        .unwrap()
        .backoff(
            Backoff::new()
                .initial(ms(1))
                .jitter(Jitter::None)
                .unwrap()
                .max(ms(1)),
        )
        .budget(budget.clone());
    let failing = |_: &mut sylvan::resilience::Attempt| -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::ConnectionRefused))
    };
    let e = policy.run(failing).unwrap_err();
    assert_eq!(e.reason(), StopReason::BudgetExhausted);
    // 1 request deposits 0.1 retry: 10 + 0 whole retries, then stop.
    assert_eq!(e.attempts(), 11);
    let e = policy.run(failing).unwrap_err();
    assert_eq!(e.attempts(), 1, "still exhausted: no retry");
    sylvan::time::advance(secs(10));
    let e = policy.run(failing).unwrap_err();
    assert!(e.attempts() > 10, "the window passed: retries are back");
}
