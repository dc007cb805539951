//! The policy of the crate docs' `# Invalid settings`, builder by builder:
//! a setting that makes no sense is an `InvalidInput` error naming the
//! setting and the value, from `build()` or, for types that are their own
//! settings, from the setter — never a panic, never a silent repair.

use std::io;
use std::time::Duration;

use sylvan::http::Server;
use sylvan::net::ServeOptions;
use sylvan::resilience::{Backoff, CircuitBreaker, Jitter, Pool, Retry, RetryBudget};

/// `r` failed with `InvalidInput`, its message naming `names` (the setting
/// and the value).
#[track_caller]
fn invalid<T>(r: io::Result<T>, names: &str) {
    let Err(e) = r else {
        panic!("accepted an invalid {names}")
    };
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    let msg = e.to_string();
    assert!(msg.contains(names), "{msg:?} should name {names:?}");
    assert!(!msg.contains('\n'), "one line: {msg:?}");
}

fn server() -> Server {
    Server::bind("127.0.0.1:0").unwrap()
}

#[test]
fn http_server_rejects_zero_counts_and_timeouts() {
    invalid(server().max_connections(0), "max_connections(0)");
    invalid(server().max_headers(0), "max_headers(0)");
    invalid(
        server().header_timeout(Duration::ZERO),
        "header_timeout(0s)",
    );
    invalid(
        server().keep_alive_timeout(Duration::ZERO),
        "keep_alive_timeout(0s)",
    );
    // Below 16 bytes was raised to 16 without a word before.
    invalid(server().max_request_line(15), "max_request_line(15)");
    invalid(server().max_header_size(0), "max_header_size(0)");
    // The smallest valid values are accepted as they are.
    let s = server()
        .max_connections(1)
        .and_then(|s| s.max_headers(1))
        .and_then(|s| s.header_timeout(Duration::from_nanos(1)))
        .and_then(|s| s.keep_alive_timeout(Duration::from_nanos(1)))
        .and_then(|s| s.max_request_line(16))
        .and_then(|s| s.max_header_size(16));
    assert!(s.is_ok());
}

#[cfg(feature = "tls")]
#[test]
fn http_server_rejects_a_zero_tls_handshake_timeout() {
    invalid(
        server().tls_handshake_timeout(Duration::ZERO),
        "tls_handshake_timeout(0s)",
    );
}

#[test]
fn serve_options_reject_zero_connections() {
    invalid(ServeOptions::new().max_connections(0), "max_connections(0)");
    assert!(ServeOptions::new().max_connections(1).is_ok());
}

#[test]
fn breaker_build_rejects_each_invalid_setting() {
    let b = CircuitBreaker::builder;
    invalid(
        b().failure_rate_threshold(0.0).build(),
        "failure_rate_threshold(0)",
    );
    invalid(
        b().failure_rate_threshold(100.5).build(),
        "failure_rate_threshold(100.5)",
    );
    invalid(
        b().failure_rate_threshold(f64::NAN).build(),
        "failure_rate_threshold(NaN)",
    );
    invalid(
        b().slow_call_rate_threshold(-1.0).build(),
        "slow_call_rate_threshold(-1)",
    );
    invalid(b().count_window(0).build(), "count_window(0)");
    invalid(b().time_window(Duration::ZERO).build(), "time_window(0s)");
    invalid(b().minimum_calls(0).build(), "minimum_calls(0)");
    invalid(b().half_open_calls(0).build(), "half_open_calls(0)");
    // Setters only store: a later valid value replaces an invalid one.
    assert!(b().count_window(0).count_window(1).build().is_ok());
    assert!(b().failure_rate_threshold(100.0).build().is_ok());
}

#[test]
fn pool_build_rejects_zero_size_and_min_idle_above_max() {
    invalid(Pool::builder(|| Ok(())).max_size(0).build(), "max_size(0)");
    invalid(
        Pool::builder(|| Ok(())).max_size(2).min_idle(3).build(),
        "min_idle(3)",
    );
    // The order of the setters does not matter, and min_idle == max_size
    // is fine.
    assert!(
        Pool::builder(|| Ok(()))
            .min_idle(2)
            .max_size(2)
            .build()
            .is_ok()
    );
}

#[test]
fn backoff_setters_reject_what_would_break_the_sequence() {
    invalid(Backoff::new().multiplier(0.9), "multiplier(0.9)");
    invalid(Backoff::new().multiplier(f64::INFINITY), "multiplier(inf)");
    invalid(
        Backoff::new().jitter(Jitter::Proportional(2.0)),
        "Jitter::Proportional(2)",
    );
    assert!(Backoff::new().jitter(Jitter::Decorrelated).is_ok());
}

#[test]
fn retry_rejects_zero_attempts() {
    invalid(Retry::<io::Error>::new().max_attempts(0), "max_attempts(0)");
    assert!(Retry::<io::Error>::new().max_attempts(1).is_ok());
}

#[test]
fn retry_budget_constructors_reject_out_of_range_values() {
    invalid(RetryBudget::new(0, 0.1), "max_tokens(0)");
    invalid(RetryBudget::token_bucket(10, 0.0), "token_ratio(0)");
    invalid(RetryBudget::token_bucket(10, f64::NAN), "token_ratio(NaN)");
    invalid(
        RetryBudget::finagle(Duration::from_millis(999), 10, 0.2),
        "ttl(999ms)",
    );
    invalid(
        RetryBudget::finagle(Duration::from_secs(10), 10, 1000.5),
        "percent_can_retry(1000.5)",
    );
    assert!(RetryBudget::finagle(Duration::from_secs(60), 0, 0.0).is_ok());
}

#[test]
fn websocket_options_reject_a_zero_read_buffer() {
    invalid(
        sylvan::websocket::Options::new().read_buffer_size(0),
        "read_buffer_size(0)",
    );
}

#[test]
fn runtime_builder_rejects_zero_threads() {
    let e = sylvan::Runtime::builder().threads(0).build().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

/// Settings without invalid values keep their documented meaning: a
/// green pool of size 0 admits nothing until resized.
#[test]
fn a_green_pool_of_size_zero_admits_nothing_until_resized() {
    let pool = sylvan::GreenPool::new(0);
    assert_eq!(pool.free(), 0);
    pool.resize(1);
    assert_eq!(pool.spawn(|| 7).unwrap().join().unwrap(), 7);
}
