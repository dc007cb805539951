//! `Backoff` and `Jitter` against their definitions: bounds of every jitter
//! kind, growth to the cap, reset, no convergence at the cap, sleeping on
//! virtual time.

use std::time::Duration;

use proptest::prelude::*;
use sylvan::resilience::{Backoff, Jitter};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The un-jittered delays `min(max, initial × multiplier^n)`, computed the
/// slow way.
fn exponential(initial: Duration, multiplier: f64, max: Duration, n: usize) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut b = initial.min(max);
    for _ in 0..n {
        out.push(b);
        b = Duration::from_secs_f64(b.as_secs_f64() * multiplier).min(max);
    }
    out
}

fn close(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) <= Duration::from_micros(1)
}

#[test]
fn defaults_are_grpc_connection_backoff() {
    let mut b = Backoff::new().jitter(Jitter::None).unwrap();
    let got: Vec<Duration> = b.by_ref().take(15).collect();
    let want = exponential(secs(1), 1.6, secs(120), 15);
    for (g, w) in got.iter().zip(&want) {
        assert!(close(*g, *w), "{got:?} != {want:?}");
    }
    // 1.6^10 ≈ 110 s, 1.6^11 ≈ 176 s: capped from the 12th delay on.
    assert_eq!(got[11], secs(120));
    assert_eq!(got[14], secs(120));

    // And the default jitter is ±20 %.
    let mut b = Backoff::new().seed(1);
    for w in want {
        let d = b.next_delay();
        assert!(d >= w.mul_f64(0.8) - ms(1) && d <= w.mul_f64(1.2) + ms(1));
    }
}

#[test]
fn backoff_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
    assert_send_sync::<Backoff>();
    assert_send_sync::<Jitter>();
}

#[test]
fn grows_by_multiplier_until_the_cap() {
    let b = Backoff::new()
        .initial(ms(100))
        .multiplier(2.0)
        .unwrap()
        .max(secs(2))
        .jitter(Jitter::None)
        .unwrap();
    let got: Vec<u128> = b.take(8).map(|d| d.as_millis()).collect();
    assert_eq!(got, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
}

#[test]
fn initial_above_max_is_capped() {
    let mut b = Backoff::new()
        .initial(secs(10))
        .max(secs(3))
        .jitter(Jitter::None)
        .unwrap();
    assert_eq!(b.next_delay(), secs(3));
    assert_eq!(b.next_delay(), secs(3));
}

#[test]
fn reset_starts_over() {
    let mut b = Backoff::new()
        .initial(ms(10))
        .multiplier(3.0)
        .unwrap()
        .jitter(Jitter::None)
        .unwrap();
    let first: Vec<Duration> = b.by_ref().take(5).collect();
    assert_eq!(b.attempts(), 5);
    b.reset();
    assert_eq!(b.attempts(), 0);
    let again: Vec<Duration> = b.by_ref().take(5).collect();
    assert_eq!(first, again);

    // Decorrelated jitter restarts from `initial` too.
    let mut b = Backoff::new()
        .initial(ms(10))
        .max(secs(60))
        .jitter(Jitter::Decorrelated)
        .unwrap()
        .seed(3);
    for _ in 0..30 {
        b.next_delay();
    }
    b.reset();
    let d = b.next_delay();
    assert!(d >= ms(10) && d <= ms(30), "{d:?}");
}

#[test]
fn iterator_never_ends_and_matches_next_delay() {
    let a: Vec<Duration> = Backoff::new().seed(9).take(50).collect();
    let mut b = Backoff::new().seed(9);
    let c: Vec<Duration> = (0..50).map(|_| b.next_delay()).collect();
    assert_eq!(a, c);
    assert_eq!(Backoff::new().size_hint(), (usize::MAX, None));
    assert_eq!(Backoff::new().skip(10_000).take(3).count(), 3);
}

#[test]
fn seeded_clones_repeat_unseeded_clones_differ() {
    let seeded = Backoff::new()
        .initial(secs(1))
        .jitter(Jitter::Full)
        .unwrap()
        .seed(5);
    let a: Vec<Duration> = seeded.clone().take(20).collect();
    let b: Vec<Duration> = seeded.clone().take(20).collect();
    assert_eq!(a, b);

    let template = Backoff::new()
        .initial(secs(1))
        .jitter(Jitter::Full)
        .unwrap();
    let a: Vec<Duration> = template.clone().take(20).collect();
    let b: Vec<Duration> = template.clone().take(20).collect();
    assert_ne!(
        a, b,
        "clones of an unseeded backoff must not jitter in lockstep"
    );
}

#[test]
fn splay_is_below_initial() {
    let mut b = Backoff::new().initial(ms(1000)).seed(11);
    let mut spread = std::collections::HashSet::new();
    for _ in 0..1000 {
        let d = b.splay();
        assert!(d < ms(1000));
        spread.insert(d.as_millis() / 100);
    }
    assert_eq!(spread.len(), 10, "covers every 100 ms bucket of [0, 1 s)");
    assert_eq!(b.attempts(), 0);
    assert_eq!(
        Backoff::new().initial(Duration::ZERO).splay(),
        Duration::ZERO
    );
}

#[test]
fn sleep_waits_each_delay_on_virtual_time() {
    sylvan::time::pause();
    let mut b = Backoff::new()
        .initial(ms(100))
        .multiplier(2.0)
        .unwrap()
        .jitter(Jitter::None)
        .unwrap();
    let t0 = sylvan::time::now();
    for _ in 0..4 {
        b.sleep().unwrap();
    }
    assert_eq!(sylvan::time::now() - t0, ms(100 + 200 + 400 + 800));
}

#[test]
fn sleep_is_cancellable() {
    sylvan::time::pause();
    let mut b = Backoff::new()
        .initial(secs(60))
        .jitter(Jitter::None)
        .unwrap();
    let t0 = sylvan::time::now();
    let r = sylvan::timeout(secs(1), || b.sleep());
    assert!(r.is_err());
    assert_eq!(sylvan::time::now() - t0, secs(1));
    assert_eq!(b.attempts(), 1);

    let g = sylvan::spawn(move || {
        let mut b = Backoff::new().initial(secs(60));
        b.sleep()
    });
    sylvan::yield_now();
    g.kill();
    assert_eq!(g.join().unwrap(), Err(sylvan::Cancelled::Killed));
}

/// The policy of the crate docs' `# Invalid settings`: an error naming
/// the setting and the value, not a panic.
#[test]
fn proportional_jitter_out_of_range_is_an_error() {
    for f in [1.5, -0.1, f64::NAN] {
        let e = Backoff::new().jitter(Jitter::Proportional(f)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("Backoff::jitter"), "{e}");
        assert!(e.to_string().contains("[0, 1]"), "{e}");
    }
    assert!(Backoff::new().jitter(Jitter::Proportional(1.0)).is_ok());
}

#[test]
fn multiplier_below_one_is_an_error() {
    for m in [0.5, f64::NAN, f64::INFINITY] {
        let e = Backoff::new().multiplier(m).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("Backoff::multiplier"), "{e}");
    }
    assert!(Backoff::new().multiplier(1.0).is_ok());
}

/// Standard deviation, in seconds.
fn std_dev(xs: &[Duration]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().map(Duration::as_secs_f64).sum::<f64>() / n;
    let var = xs
        .iter()
        .map(|d| (d.as_secs_f64() - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt()
}

/// The delay of each of 1000 differently seeded clients after `warmup`
/// delays: all of them at the cap by then.
fn at_the_cap(jitter: Jitter, warmup: usize) -> Vec<Duration> {
    (0..1000)
        .map(|seed| {
            let mut b = Backoff::new().jitter(jitter).unwrap().seed(seed);
            for _ in 0..warmup {
                b.next_delay();
            }
            b.next_delay()
        })
        .collect()
}

#[test]
fn clients_at_the_cap_do_not_converge() {
    let max = 120.0;
    // gRPC defaults: ±20 % around 120 s, uniform, so σ = 0.2·120/√3 ≈ 13.9 s.
    let d = at_the_cap(Jitter::Proportional(0.2), 40);
    let s = std_dev(&d);
    assert!(s >= 0.5 * max * 0.2 / 3f64.sqrt(), "σ = {s} s");
    // Full: uniform on [0, 120] s, σ ≈ 34.6 s.
    let s = std_dev(&at_the_cap(Jitter::Full, 40));
    assert!(s >= 0.5 * max / 12f64.sqrt(), "σ = {s} s");
    // Equal: uniform on [60, 120] s, σ ≈ 17.3 s.
    let s = std_dev(&at_the_cap(Jitter::Equal, 40));
    assert!(s >= 0.5 * (max / 2.0) / 12f64.sqrt(), "σ = {s} s");
    // Decorrelated: spread over [1, 120] s, not piled up on 120 s.
    let d = at_the_cap(Jitter::Decorrelated, 40);
    let s = std_dev(&d);
    assert!(s >= 0.5 * max / 12f64.sqrt(), "σ = {s} s");
    let exactly_max = d.iter().filter(|d| **d == secs(120)).count();
    assert!(
        exactly_max < 10,
        "{exactly_max} of 1000 clients wait exactly max"
    );

    // No two of the 1000 gRPC-default clients share a delay to the
    // millisecond... nearly: allow a few collisions out of 48,000 values.
    let mut millis: Vec<u128> = at_the_cap(Jitter::Proportional(0.2), 40)
        .iter()
        .map(Duration::as_millis)
        .collect();
    millis.sort_unstable();
    millis.dedup();
    assert!(millis.len() > 980, "{} distinct delays", millis.len());

    // Without jitter they all converge: the property is real.
    assert_eq!(std_dev(&at_the_cap(Jitter::None, 40)), 0.0);
}

fn jitter_kind() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        (0.0..=1.0f64).prop_map(Jitter::Proportional),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every delay lies within the bounds the jitter kind documents.
    #[test]
    fn delays_within_jitter_bounds(
        seed in any::<u64>(),
        jitter in jitter_kind(),
        initial_ms in 1u64..5_000,
        multiplier in 1.0f64..4.0,
        max_ms in 1u64..200_000,
        n in 1usize..60,
    ) {
        let (initial, max) = (ms(initial_ms), ms(max_ms));
        let mut b = Backoff::new()
            .initial(initial)
            .multiplier(multiplier).unwrap()
            .max(max)
            .jitter(jitter).unwrap()
            .seed(seed);
        let bases = exponential(initial, multiplier, max, n);
        let mut previous = initial.min(max);
        for (i, base) in bases.into_iter().enumerate() {
            let d = b.next_delay();
            let slack = Duration::from_micros(1);
            let (lo, hi) = match jitter {
                Jitter::None => (base, base),
                Jitter::Full => (Duration::ZERO, base),
                Jitter::Equal => (base / 2, base),
                Jitter::Proportional(f) => (base.mul_f64(1.0 - f), base.mul_f64(1.0 + f)),
                Jitter::Decorrelated => {
                    let lo = initial.min(max);
                    (lo, previous.mul_f64(3.0).min(max).max(lo))
                }
                _ => unreachable!(),
            };
            prop_assert!(
                d + slack >= lo && d <= hi + slack,
                "delay {i}: {d:?} not in [{lo:?}, {hi:?}]"
            );
            // The documented overall bound.
            let bound = match jitter {
                Jitter::Proportional(f) => max + max.mul_f64(f),
                _ => max,
            };
            prop_assert!(d <= bound, "delay {i}: {d:?} above {bound:?}");
            if matches!(jitter, Jitter::Decorrelated) {
                prop_assert!(d >= initial.min(max) && d <= max);
            }
            previous = d;
        }
    }

    /// The same seed gives the same delays.
    #[test]
    fn seeded_is_reproducible(seed in any::<u64>(), jitter in jitter_kind()) {
        let a: Vec<Duration> = Backoff::new().jitter(jitter).unwrap().seed(seed).take(30).collect();
        let b: Vec<Duration> = Backoff::new().jitter(jitter).unwrap().seed(seed).take(30).collect();
        prop_assert_eq!(a, b);
    }
}
