//! sylvan's channels and `GreenPool` against `crossbeam-channel` and tokio,
//! side by side, in one run.
//!
//! ```text
//! cargo build --release -p sylvan-bench
//! target/release/sync            # full run, about half a minute
//! target/release/sync --quick    # smoke test: shorter repetitions
//! ```
//!
//! Progress goes to standard error; standard output gets a Markdown table
//! (benchmark | sylvan | crossbeam | tokio | ratios). What is measured:
//!
//! 1. **Channel throughput across two OS threads**: one thread sends N
//!    `u64`s, another receives them; time per message, from a barrier that
//!    starts both to the last message received. Unbounded, then bounded
//!    (capacity 1024). sylvan: `sync::channel`/`bounded` between two plain
//!    threads (each the root of its own hub). crossbeam: `unbounded` /
//!    `bounded(1024)` between two threads. tokio: `mpsc::unbounded_channel`
//!    / `channel(1024)`, each side in a `current_thread` runtime on its own
//!    thread.
//! 2. **Ping-pong across two OS threads**: a message goes to the other
//!    thread and back through two channels; time per round trip (two
//!    cross-thread wake-ups when both sides sleep).
//! 3. **GreenPool spawn throughput**: spawn N trivial jobs into a
//!    `GreenPool` of 1000 from the root context, then `wait_all`; against
//!    tokio, a `Semaphore` of 1000 permits bounding `tokio::spawn` on a
//!    `current_thread` runtime (acquire an owned permit, spawn a task that
//!    drops it, then wait for all). Time per job.
//!
//! Each timing is the best of 5 repetitions of about 100 ms, the sides
//! alternating. Nothing asserts speed; ratios only describe. On a loaded
//! machine (other builds running) cross-thread numbers are noisy.

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use sylvan_bench::{Plan, Progress, Sample, Table, calibrate, fmt_ns, fmt_ratio};

const USAGE: &str = "usage: sync [--quick]\n\
    Benchmarks sylvan's channels and GreenPool against crossbeam-channel and tokio.\n\
    --quick   shorter repetitions (a smoke test; numbers are noisier)";

fn main() -> ExitCode {
    let plan = match Plan::from_args(USAGE) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    run(plan);
    ExitCode::SUCCESS
}

/// Times up to three implementations side by side: each calibrated on its
/// own, then repetitions alternate.
fn compare_n(plan: Plan, sides: &mut [&mut dyn FnMut(u64) -> Duration]) -> Vec<Sample> {
    let iters: Vec<u64> = sides
        .iter_mut()
        .map(|s| calibrate(&mut |n| s(n), plan.target))
        .collect();
    let mut runs: Vec<Vec<Duration>> = vec![Vec::new(); sides.len()];
    for _ in 0..plan.reps.max(1) {
        for (i, s) in sides.iter_mut().enumerate() {
            runs[i].push(s(iters[i]));
        }
    }
    runs.into_iter()
        .zip(iters)
        .map(|(r, n)| Sample::from_runs(r, n))
        .collect()
}

/// Runs `send(n)` and `recv(n)` on two fresh threads released together by
/// a barrier; returns the time until `recv` is done. `prepare` runs on each
/// thread before the barrier (to create a hub, say).
fn two_threads(
    n: u64,
    prepare: fn(),
    send: impl FnOnce(u64) + Send,
    recv: impl FnOnce(u64) + Send,
) -> Duration {
    let barrier = Arc::new(Barrier::new(2));
    thread::scope(|s| {
        let b = barrier.clone();
        s.spawn(move || {
            prepare();
            b.wait();
            send(n);
        });
        prepare();
        barrier.wait();
        let start = Instant::now();
        recv(n);
        start.elapsed()
    })
}

fn no_prep() {}

fn sylvan_prep() {
    // Creates this thread's hub outside the timing.
    sylvan::yield_now();
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

fn throughput_sylvan(cap: Option<usize>, n: u64) -> Duration {
    let (tx, rx) = match cap {
        Some(c) => sylvan::sync::bounded(c),
        None => sylvan::sync::channel(),
    };
    two_threads(
        n,
        sylvan_prep,
        move |n| {
            for i in 0..n {
                tx.send(i).unwrap();
            }
        },
        move |n| {
            for _ in 0..n {
                black_box(rx.recv().unwrap());
            }
        },
    )
}

fn throughput_crossbeam(cap: Option<usize>, n: u64) -> Duration {
    let (tx, rx) = match cap {
        Some(c) => crossbeam_channel::bounded(c),
        None => crossbeam_channel::unbounded(),
    };
    two_threads(
        n,
        no_prep,
        move |n| {
            for i in 0..n {
                tx.send(i).unwrap();
            }
        },
        move |n| {
            for _ in 0..n {
                black_box(rx.recv().unwrap());
            }
        },
    )
}

fn throughput_tokio(cap: Option<usize>, n: u64) -> Duration {
    match cap {
        None => {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            two_threads(
                n,
                no_prep,
                move |n| {
                    for i in 0..n {
                        tx.send(i).unwrap();
                    }
                },
                move |n| {
                    tokio_rt().block_on(async {
                        for _ in 0..n {
                            black_box(rx.recv().await.unwrap());
                        }
                    })
                },
            )
        }
        Some(c) => {
            let (tx, mut rx) = tokio::sync::mpsc::channel(c);
            two_threads(
                n,
                no_prep,
                move |n| {
                    tokio_rt().block_on(async {
                        for i in 0..n {
                            tx.send(i).await.unwrap();
                        }
                    })
                },
                move |n| {
                    tokio_rt().block_on(async {
                        for _ in 0..n {
                            black_box(rx.recv().await.unwrap());
                        }
                    })
                },
            )
        }
    }
}

fn pingpong_sylvan(n: u64) -> Duration {
    let (a_tx, a_rx) = sylvan::sync::bounded::<u64>(1);
    let (b_tx, b_rx) = sylvan::sync::bounded::<u64>(1);
    two_threads(
        n,
        sylvan_prep,
        move |n| {
            for _ in 0..n {
                b_tx.send(a_rx.recv().unwrap()).unwrap();
            }
        },
        move |n| {
            for i in 0..n {
                a_tx.send(i).unwrap();
                black_box(b_rx.recv().unwrap());
            }
        },
    )
}

fn pingpong_crossbeam(n: u64) -> Duration {
    let (a_tx, a_rx) = crossbeam_channel::bounded::<u64>(1);
    let (b_tx, b_rx) = crossbeam_channel::bounded::<u64>(1);
    two_threads(
        n,
        no_prep,
        move |n| {
            for _ in 0..n {
                b_tx.send(a_rx.recv().unwrap()).unwrap();
            }
        },
        move |n| {
            for i in 0..n {
                a_tx.send(i).unwrap();
                black_box(b_rx.recv().unwrap());
            }
        },
    )
}

fn pingpong_tokio(n: u64) -> Duration {
    let (a_tx, mut a_rx) = tokio::sync::mpsc::channel::<u64>(1);
    let (b_tx, mut b_rx) = tokio::sync::mpsc::channel::<u64>(1);
    two_threads(
        n,
        no_prep,
        move |n| {
            tokio_rt().block_on(async {
                for _ in 0..n {
                    b_tx.send(a_rx.recv().await.unwrap()).await.unwrap();
                }
            })
        },
        move |n| {
            tokio_rt().block_on(async {
                for i in 0..n {
                    a_tx.send(i).await.unwrap();
                    black_box(b_rx.recv().await.unwrap());
                }
            })
        },
    )
}

fn pool_sylvan(n: u64) -> Duration {
    let pool = sylvan::GreenPool::new(1000);
    let start = Instant::now();
    for i in 0..n {
        pool.spawn_n(move || {
            black_box(i);
        })
        .unwrap();
    }
    pool.wait_all().unwrap();
    start.elapsed()
}

fn pool_tokio(rt: &tokio::runtime::Runtime, n: u64) -> Duration {
    rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(1000));
        let start = Instant::now();
        for i in 0..n {
            let permit = sem.clone().acquire_owned().await.unwrap();
            tokio::spawn(async move {
                black_box(i);
                drop(permit);
            });
        }
        let _all = sem.acquire_many(1000).await.unwrap();
        start.elapsed()
    })
}

fn run(plan: Plan) {
    let progress = Progress::new();
    let mut table = Table::new(&[
        "benchmark",
        "sylvan",
        "crossbeam",
        "tokio",
        "sylvan / crossbeam",
        "sylvan / tokio",
    ]);
    let mut raw = Vec::new();
    let mut row = |name: &str, s: &[Sample], table: &mut Table| {
        let cell = |i: usize| s.get(i).map_or("—".to_string(), |x| fmt_ns(x.best_ns));
        let (cb, tk) = match s.len() {
            3 => (Some(&s[1]), Some(&s[2])),
            _ => (None, s.get(1)),
        };
        table.row(vec![
            name.to_string(),
            cell(0),
            cb.map_or("—".into(), |x| fmt_ns(x.best_ns)),
            tk.map_or("—".into(), |x| fmt_ns(x.best_ns)),
            cb.map_or("—".into(), |x| fmt_ratio(s[0].best_ns, x.best_ns)),
            tk.map_or("—".into(), |x| fmt_ratio(s[0].best_ns, x.best_ns)),
        ]);
        raw.push(format!("{name}: {s:?}"));
    };

    for (label, cap) in [
        ("channel throughput, unbounded (per message)", None),
        ("channel throughput, bounded 1024 (per message)", Some(1024)),
    ] {
        progress.say(label);
        let s = compare_n(
            plan,
            &mut [
                &mut |n| throughput_sylvan(cap, n),
                &mut |n| throughput_crossbeam(cap, n),
                &mut |n| throughput_tokio(cap, n),
            ],
        );
        row(label, &s, &mut table);
    }

    progress.say("ping-pong across threads");
    let s = compare_n(
        plan,
        &mut [
            &mut pingpong_sylvan,
            &mut pingpong_crossbeam,
            &mut pingpong_tokio,
        ],
    );
    row(
        "ping-pong across two threads (per round trip)",
        &s,
        &mut table,
    );

    progress.say("GreenPool spawn throughput");
    let rt = tokio_rt();
    let s = compare_n(plan, &mut [&mut pool_sylvan, &mut |n| pool_tokio(&rt, n)]);
    row(
        "GreenPool(1000) spawn_n + wait_all (per job)",
        &s,
        &mut table,
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
