//! sylvan's locks against `std::sync::Mutex` and `tokio::sync::Mutex`,
//! side by side, in one run.
//!
//! ```text
//! cargo build --release -p sylvan-bench
//! target/release/locks            # full run, about 10 s
//! target/release/locks --quick    # smoke test: shorter repetitions
//! ```
//!
//! Progress goes to standard error; standard output gets a Markdown table
//! (benchmark | sylvan | other | ratio | target) and the raw numbers. What
//! is measured:
//!
//! 1. **Uncontended lock + unlock**, one thread, nobody else around:
//!    `sync::Mutex` (hub-local) and `sync::shared::Mutex` against
//!    `std::sync::Mutex`. Time per lock/unlock pair. Target ≤ 1.5× std.
//! 2. **Contended hand-off between two green threads** of one hub: each
//!    loops `lock; yield_now; unlock`, so every unlock finds the other
//!    waiting and hands the lock over (a park, a wake and two switches).
//!    Against two tasks doing the same with `tokio::sync::Mutex` and
//!    `tokio::task::yield_now` on a `current_thread` runtime (tokio's mutex
//!    is FIFO-fair too). Time per hand-off. Target ≤ 1× tokio. Both for
//!    `sync::Mutex` and for `sync::shared::Mutex` (whose waiters here are
//!    woken on their own hub: no cross-thread wake-up).
//! 3. **Two OS threads incrementing one counter** (informational, no
//!    target): `shared::Mutex` between two plain threads against
//!    `std::sync::Mutex`. std's lock lets a running thread take it again
//!    at once (barging); sylvan's hands it to the waiting thread, which
//!    must be woken, so under heavy contention it is expected to be much
//!    slower: the price of FIFO fairness.
//!
//! Each timing is the best of 5 repetitions of about 100 ms, the sides
//! alternating (the median for the two-thread row, whose best repetition
//! on a busy machine may be one where the threads never overlapped).
//! Nothing asserts speed; the target column only describes.

use std::hint::black_box;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use sylvan_bench::{Plan, Progress, Sample, Table, compare, fmt_ns, fmt_ratio, fmt_target};

const USAGE: &str = "usage: locks [--quick]\n\
    Benchmarks sylvan's Mutex (hub-local and shared) against std's and tokio's.\n\
    --quick   shorter repetitions (a smoke test; numbers are noisier)";

fn main() -> ExitCode {
    let plan = match Plan::from_args(USAGE) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    run(plan);
    ExitCode::SUCCESS
}

fn uncontended_sylvan(m: &sylvan::sync::Mutex<u64>, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        *black_box(m).lock().unwrap() += 1;
    }
    start.elapsed()
}

fn uncontended_shared(m: &sylvan::sync::shared::Mutex<u64>, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        *black_box(m).lock().unwrap() += 1;
    }
    start.elapsed()
}

fn uncontended_std(m: &std::sync::Mutex<u64>, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        *black_box(m).lock().unwrap() += 1;
    }
    start.elapsed()
}

/// Two green threads hand the hub-local mutex back and forth `n` times
/// each.
fn handoff_sylvan(n: u64) -> Duration {
    let m = Rc::new(sylvan::sync::Mutex::new(0u64));
    let start = Instant::now();
    let gs: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            sylvan::spawn(move || {
                for _ in 0..n {
                    let mut g = m.lock().unwrap();
                    *g += 1;
                    sylvan::yield_now();
                }
            })
        })
        .collect();
    for g in gs {
        g.join().unwrap();
    }
    let t = start.elapsed();
    assert_eq!(*m.lock().unwrap(), 2 * n);
    t
}

fn handoff_shared(n: u64) -> Duration {
    let m = Arc::new(sylvan::sync::shared::Mutex::new(0u64));
    let start = Instant::now();
    let gs: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            sylvan::spawn(move || {
                for _ in 0..n {
                    let mut g = m.lock().unwrap();
                    *g += 1;
                    sylvan::yield_now();
                }
            })
        })
        .collect();
    for g in gs {
        g.join().unwrap();
    }
    let t = start.elapsed();
    assert_eq!(*m.lock().unwrap(), 2 * n);
    t
}

fn handoff_tokio(rt: &tokio::runtime::Runtime, n: u64) -> Duration {
    rt.block_on(async {
        let m = Arc::new(tokio::sync::Mutex::new(0u64));
        let start = Instant::now();
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move {
                    for _ in 0..n {
                        let mut g = m.lock().await;
                        *g += 1;
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in ts {
            t.await.unwrap();
        }
        let t = start.elapsed();
        assert_eq!(*m.lock().await, 2 * n);
        t
    })
}

/// Two OS threads increment one counter `n` times each; `inc` locks and
/// increments once. Timed from the barrier that starts both to the end of
/// the slower one.
fn two_threads<M: Send + Sync>(m: M, n: u64, inc: fn(&M)) -> Duration {
    let barrier = Barrier::new(2);
    let mut start = Instant::now();
    thread::scope(|s| {
        let (m, barrier) = (&m, &barrier);
        s.spawn(move || {
            barrier.wait();
            for _ in 0..n {
                inc(m);
            }
        });
        barrier.wait();
        start = Instant::now();
        for _ in 0..n {
            inc(m);
        }
    });
    start.elapsed()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

fn run(plan: Plan) {
    let progress = Progress::new();
    let mut table = Table::new(&["benchmark", "sylvan", "other", "sylvan / other", "target"]);
    let mut raw = Vec::new();
    let mut row = |name: &str, other: &str, s: Sample, o: Sample, target: Option<f64>| {
        let ratio = s.best_ns / o.best_ns;
        table.row(vec![
            name.to_string(),
            fmt_ns(s.best_ns),
            format!("{} ({other})", fmt_ns(o.best_ns)),
            fmt_ratio(s.best_ns, o.best_ns),
            target.map_or("—".into(), |t| fmt_target(&format!("≤ {t}×"), ratio <= t)),
        ]);
        raw.push(format!("{name}: sylvan {s:?} / {other} {o:?}"));
    };
    // The hub exists before anything is timed.
    sylvan::yield_now();

    progress.say("uncontended lock + unlock");
    let (hub_m, shared_m, std_m) = (
        sylvan::sync::Mutex::new(0),
        sylvan::sync::shared::Mutex::new(0),
        std::sync::Mutex::new(0),
    );
    let (s, o) = compare(
        plan,
        |n| uncontended_sylvan(&hub_m, n),
        |n| uncontended_std(&std_m, n),
    );
    row(
        "uncontended lock + unlock, sync::Mutex",
        "std::sync::Mutex",
        s,
        o,
        Some(1.5),
    );
    let (s, o) = compare(
        plan,
        |n| uncontended_shared(&shared_m, n),
        |n| uncontended_std(&std_m, n),
    );
    row(
        "uncontended lock + unlock, sync::shared::Mutex",
        "std::sync::Mutex",
        s,
        o,
        Some(1.5),
    );

    progress.say("hand-off between two green threads");
    let rt = tokio_rt();
    let (s, o) = compare(plan, handoff_sylvan, |n| handoff_tokio(&rt, n));
    row(
        "contended hand-off, 2 green threads, sync::Mutex (per hand-off)",
        "tokio::sync::Mutex, 2 tasks, current_thread",
        s.per(2),
        o.per(2),
        Some(1.0),
    );
    let (s, o) = compare(plan, handoff_shared, |n| handoff_tokio(&rt, n));
    row(
        "contended hand-off, 2 green threads, sync::shared::Mutex (per hand-off)",
        "tokio::sync::Mutex, 2 tasks, current_thread",
        s.per(2),
        o.per(2),
        Some(1.0),
    );

    progress.say("two OS threads, one counter");
    let (s, o) = compare(
        plan,
        |n| {
            two_threads(sylvan::sync::shared::Mutex::new(0u64), n, |m| {
                *m.lock().unwrap() += 1
            })
        },
        |n| two_threads(std::sync::Mutex::new(0u64), n, |m| *m.lock().unwrap() += 1),
    );
    // On a busy machine the two threads often run one after the other
    // (no contention at all) in the best repetition: show the median.
    let median = |x: Sample| Sample {
        best_ns: x.median_ns,
        ..x
    };
    row(
        "2 OS threads incrementing, sync::shared::Mutex (per increment, median)",
        "std::sync::Mutex",
        median(s.per(2)),
        median(o.per(2)),
        None,
    );

    progress.say("done");
    println!("{}", table.to_markdown());
    println!(
        "Best of {} repetitions of ~{} ms each.",
        plan.reps,
        plan.target.as_millis()
    );
    for r in raw {
        println!("    {r}");
    }
}
