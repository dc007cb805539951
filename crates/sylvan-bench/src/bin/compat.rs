//! The cost of `sylvan::compat` — futures from green threads and green
//! closures from async code — against doing the same inside tokio, side by
//! side, in one run.
//!
//! ```text
//! cargo build --release -p sylvan-bench
//! target/release/compat            # full run, about 10 s
//! target/release/compat --quick    # smoke test: shorter repetitions
//! ```
//!
//! Progress goes to standard error; standard output gets a Markdown table
//! (benchmark | sylvan | tokio | what the tokio column does | ratio). Time
//! per operation. What is measured:
//!
//! 1. **`block_on` of a ready future, from the root context**: one
//!    `sylvan::block_on(async { i })` per iteration; tokio: one
//!    `Runtime::block_on` of the same future on a `current_thread` runtime
//!    (what a blocking caller of tokio does).
//! 2. **The same, from a green thread**, against `.await`ing the same
//!    future inline in a tokio task (the floor: no executor round at all).
//! 3. **`compat::tokio::run(async { i })` round trip**, from the root
//!    context of a hub: spawn on the shared tokio runtime, park, get woken
//!    across threads. tokio: from a plain thread, `Handle::block_on` of the
//!    same future on that runtime (runs it on the calling thread) — and
//!    `tokio::spawn(async { i }).await` inside a `Handle::block_on` (the
//!    same cross-thread trip, tokio to tokio).
//! 4. **`HubHandle::spawn(|| i).await` round trip** from async code (a
//!    `Handle::block_on` on a plain thread) to a background hub started
//!    with `compat::start_hubs`: a green thread per call, woken across
//!    threads both ways. tokio: `spawn_blocking(|| i).await` (tokio's way
//!    to run blocking code), from the same place.
//!
//! Each timing is the best of 5 repetitions of about 100 ms, the sides
//! alternating. Nothing asserts speed; ratios only describe. Cross-thread
//! rows are noisy on a loaded machine.

use std::future::ready;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sylvan::compat::tokio as ctokio;
use sylvan_bench::{Plan, Progress, Sample, Table, compare, fmt_ns, fmt_ratio};

const USAGE: &str = "usage: compat [--quick]\n\
    Benchmarks sylvan::compat (block_on, compat::tokio::run, HubHandle) against tokio.\n\
    --quick   shorter repetitions (a smoke test; numbers are noisier)";

fn main() -> ExitCode {
    let plan = match Plan::from_args(USAGE) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    run(plan);
    ExitCode::SUCCESS
}

fn block_on_ready_root(n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        black_box(sylvan::block_on(ready(black_box(i))).unwrap());
    }
    start.elapsed()
}

fn block_on_ready_tokio(rt: &tokio::runtime::Runtime, n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        black_box(rt.block_on(ready(black_box(i))));
    }
    start.elapsed()
}

fn block_on_ready_green(n: u64) -> Duration {
    sylvan::spawn(move || {
        let start = Instant::now();
        for i in 0..n {
            black_box(sylvan::block_on(ready(black_box(i))).unwrap());
        }
        start.elapsed()
    })
    .join()
    .unwrap()
}

fn await_ready_in_task(rt: &tokio::runtime::Runtime, n: u64) -> Duration {
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            for i in 0..n {
                black_box(ready(black_box(i)).await);
            }
            start.elapsed()
        })
        .await
        .unwrap()
    })
}

fn run_round_trip(n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        black_box(ctokio::run(async move { black_box(i) }).unwrap());
    }
    start.elapsed()
}

fn handle_block_on(handle: &tokio::runtime::Handle, n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        black_box(handle.block_on(async move { black_box(i) }));
    }
    start.elapsed()
}

fn tokio_spawn_await(handle: &tokio::runtime::Handle, n: u64) -> Duration {
    handle.block_on(async move {
        let start = Instant::now();
        for i in 0..n {
            black_box(tokio::spawn(async move { black_box(i) }).await.unwrap());
        }
        start.elapsed()
    })
}

fn hub_spawn(handle: &tokio::runtime::Handle, hub: &sylvan::compat::HubHandle, n: u64) -> Duration {
    handle.block_on(async move {
        let start = Instant::now();
        for i in 0..n {
            black_box(hub.spawn(move || black_box(i)).await.unwrap());
        }
        start.elapsed()
    })
}

fn spawn_blocking(handle: &tokio::runtime::Handle, n: u64) -> Duration {
    handle.block_on(async move {
        let start = Instant::now();
        for i in 0..n {
            black_box(
                tokio::task::spawn_blocking(move || black_box(i))
                    .await
                    .unwrap(),
            );
        }
        start.elapsed()
    })
}

fn run(plan: Plan) {
    let progress = Progress::new();
    let mut table = Table::new(&[
        "benchmark",
        "sylvan",
        "tokio",
        "tokio side does",
        "sylvan / tokio",
    ]);
    let mut raw = Vec::new();
    let mut row = |name: &str, tokio_does: &str, (s, t): (Sample, Sample), table: &mut Table| {
        table.row(vec![
            name.to_string(),
            fmt_ns(s.best_ns),
            fmt_ns(t.best_ns),
            tokio_does.to_string(),
            fmt_ratio(s.best_ns, t.best_ns),
        ]);
        raw.push(format!("{name}: sylvan {s:?}, tokio {t:?}"));
    };

    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // The shared runtime of compat::tokio, used by both sides of rows 3-4.
    let shared = ctokio::handle();
    let threads = shared.metrics().num_workers();

    progress.say("block_on(ready), root context");
    row(
        "`block_on` of a ready future, root context",
        "`Runtime::block_on` (current_thread)",
        compare(plan, block_on_ready_root, |n| {
            block_on_ready_tokio(&current, n)
        }),
        &mut table,
    );

    progress.say("block_on(ready), green thread");
    row(
        "`block_on` of a ready future, green thread",
        "`.await` inline in a task",
        compare(plan, block_on_ready_green, |n| {
            await_ready_in_task(&current, n)
        }),
        &mut table,
    );

    progress.say("compat::tokio::run round trip vs Handle::block_on");
    row(
        "`compat::tokio::run(async { i })` round trip",
        "`Handle::block_on` of the same future",
        compare(plan, run_round_trip, |n| handle_block_on(&shared, n)),
        &mut table,
    );

    progress.say("compat::tokio::run round trip vs tokio::spawn + await");
    row(
        "`compat::tokio::run(async { i })` round trip",
        "`tokio::spawn(..).await` from `Handle::block_on`",
        compare(plan, run_round_trip, |n| tokio_spawn_await(&shared, n)),
        &mut table,
    );

    progress.say("HubHandle::spawn round trip vs spawn_blocking");
    let rt = sylvan::Runtime::builder()
        .threads(1)
        .build()
        .expect("sylvan runtime");
    let hub = sylvan::compat::start_hubs(&rt)
        .expect("background hub")
        .remove(0);
    row(
        "`HubHandle::spawn(|| i).await` round trip",
        "`spawn_blocking(|| i).await`",
        compare(
            plan,
            |n| hub_spawn(&shared, &hub, n),
            |n| spawn_blocking(&shared, n),
        ),
        &mut table,
    );

    progress.say("done");
    println!("{}", table.to_markdown());
    println!(
        "Best of {} repetitions of ~{} ms each; shared tokio runtime with {threads} worker threads.",
        plan.reps,
        plan.target.as_millis()
    );
    for r in raw {
        println!("    {r}");
    }
}
