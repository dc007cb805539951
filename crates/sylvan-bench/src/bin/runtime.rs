//! sylvan's runtime against tokio's `current_thread` runtime, side by side,
//! in one run.
//!
//! Run it with
//!
//! ```text
//! cargo build --release -p sylvan-bench
//! target/release/runtime            # full run, about 25 s
//! target/release/runtime --quick    # smoke test: shorter repetitions
//! ```
//!
//! It prints progress on standard error and, on standard output, a Markdown
//! table (benchmark | sylvan | tokio | ratio | target) followed by the raw
//! numbers. What is measured:
//!
//! 1. **Yield round trip**: two green threads alternately call
//!    `sylvan::yield_now`; two tokio tasks call `tokio::task::yield_now`.
//!    Time per round trip (one pair of switches).
//! 2. **Spawn + join**: spawn a green thread (task) returning a value and
//!    join it, one at a time; and in batches of 1000 spawned, then joined.
//!    sylvan spawns from the root context, tokio from the `block_on` future.
//! 3. **Idle memory**: 100,000 green threads parked on one
//!    `sylvan::sync::Event`, against 100,000 tasks parked on one
//!    `tokio::sync::Notify`; growth of `VmRSS` (and of `VmPTE`, the page
//!    tables) per thread, each side in its own child process (this binary
//!    re-executed with `--child`). Then all are released and joined.
//! 4. **Timer arm + cancel with many pending timers.** sylvan has no raw
//!    timer API; a timer is armed when a green thread parks with a deadline.
//!    So: two green threads ping-pong through two `Queue::bounded(1)`, each
//!    `get` wrapped in `sylvan::timeout(d)`, while P other green threads
//!    sleep for an hour (each holding a pending timer). Every round trip
//!    parks twice, each park arming and cancelling one timer, so
//!    ½ × (round trip with timeout − round trip without) is the cost of one
//!    timer insert + cancel, including entering and leaving the `timeout`
//!    scope. tokio: the same over `mpsc::channel(1)` with
//!    `tokio::time::timeout(d, rx.recv())`, while P tasks wait in
//!    `tokio::time::sleep(1 h)`. Both sides get the same P: 100,000, then
//!    1,000,000 (a million parked green threads need ~4 GiB of stack pages;
//!    this machine has them). With d = 1 h the new timer is due after every
//!    pending one (the cheap case for a heap: it stays a leaf); with
//!    d = 30 min it is due before all of them (the dear case: it goes to
//!    the root, and cancelling it sifts down the whole height).
//! 5. **Queue ping-pong**: `sylvan::sync::Queue::bounded(1)` both ways
//!    between two green threads, against `tokio::sync::mpsc::channel(1)`
//!    both ways between two tasks; time per round trip.
//!
//! Each timing is the best (minimum) of 5 repetitions of about 100 ms, the
//! two sides alternating. Nothing asserts speed; the target column only says
//! whether a goal was met.

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sylvan::sync::{Event, Queue};
use sylvan_bench::{
    Mem, Plan, Progress, Sample, Table, calibrate, compare, fmt_kib, fmt_ns, fmt_ratio, fmt_target,
    kv, run_child,
};
use tokio::runtime::Runtime;

const HOUR: Duration = Duration::from_secs(3600);
const BATCH: u64 = 1000;
const PARKED: usize = 100_000;

/// How to read the table; printed under it.
const NOTES: &str = "Notes:\n\
- 1: tokio's `yield_now` defers its wake-up until the scheduler has polled the I/O and timer \
driver, so each tokio round trip includes a non-blocking driver poll; sylvan's hub polls once \
every 128 switches.\n\
- 2a/2c: sylvan spawns and joins from the root context (2a) or a green thread (2c); tokio from \
the `block_on` future (2a) or a spawned task (2c), the cheaper place for tokio.\n\
- 3b: each parked green thread touches the top page of its own 256 KiB stack slot, so its \
page tables are sparse; `VmPTE` is kernel memory that `VmRSS` does not count.\n\
- 3c/3d: a stack slot used for the first time needs its guard page and a fresh top page; \
slots are prepared 64 at a time (two `process_madvise` calls: guards, then `MADV_POPULATE_WRITE`). \
On this VM a never-used page costs ~1.3–1.8 µs of kernel time however it is faulted in, which \
is the floor of 3d. Reused slots are what 2a–2c measure. Wall time (3c) includes waiting for \
a CPU on a shared machine; 3d does not. 1M rows only in a full run.\n";

const USAGE: &str = "usage: runtime [--quick]\n\
    Benchmarks sylvan against tokio's current_thread runtime and prints a Markdown table.\n\
    --quick   shorter repetitions (a smoke test; numbers are noisier)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        [] => run(Plan::FULL),
        ["--quick"] => run(Plan::QUICK),
        ["--child", "mem-sylvan", n] => parse_count(n).and_then(child_mem_sylvan),
        ["--child", "mem-tokio", n] => parse_count(n).and_then(child_mem_tokio),
        ["--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("runtime: unexpected arguments {args:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_count(s: &str) -> Result<usize, String> {
    s.parse()
        .map_err(|_| format!("expected a count, got {s:?}"))
}

fn tokio_rt() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio current_thread runtime")
}

/// The main table and the table of raw numbers, filled as benchmarks run.
struct Report {
    main: Table,
    raw: Table,
    mem: Table,
}

impl Report {
    fn timing(&mut self, name: &str, s: Sample, t: Sample, target: String) {
        self.main.row(vec![
            name.to_string(),
            fmt_ns(s.best_ns),
            fmt_ns(t.best_ns),
            fmt_ratio(s.best_ns, t.best_ns),
            target,
        ]);
        self.raw(name, s, t);
    }

    fn raw(&mut self, name: &str, s: Sample, t: Sample) {
        self.raw.row(vec![
            name.to_string(),
            fmt_ns(s.best_ns),
            fmt_ns(s.median_ns),
            fmt_ns(t.best_ns),
            fmt_ns(t.median_ns),
            format!("{} / {}", s.iters, t.iters),
        ]);
    }
}

fn run(plan: Plan) -> Result<(), String> {
    let progress = Progress::new();
    let mut r = Report {
        main: Table::new(&[
            "benchmark",
            "sylvan",
            "tokio",
            "ratio (sylvan/tokio)",
            "target",
        ]),
        raw: Table::new(&[
            "benchmark",
            "sylvan best",
            "sylvan median",
            "tokio best",
            "tokio median",
            "iterations per rep (sylvan / tokio)",
        ]),
        mem: Table::new(&[
            "side",
            "parked",
            "RSS before",
            "RSS parked",
            "RSS after release",
            "page tables before",
            "page tables parked",
        ]),
    };
    let rt = tokio_rt();
    let at_most = |ns: f64, limit: f64, label: &str| fmt_target(label, ns <= limit);

    progress.say("1. yield round trip");
    let (s, t) = compare(plan, sylvan_yield, |n| tokio_yield(&rt, n));
    r.timing(
        "1. yield round trip: two green threads / tasks alternate `yield_now` (per pair of switches)",
        s,
        t,
        at_most(s.best_ns, 35.0, "≤ 35 ns"),
    );

    // The floor under it: the switches alone, no scheduler.
    let floor = switch_floor(plan);

    progress.say("2. spawn + join");
    let spawn_target = |s: Sample, t: Sample| {
        fmt_target(
            "≤ 500 ns and ≤ 1.5× tokio",
            s.best_ns <= 500.0 && s.best_ns <= 1.5 * t.best_ns,
        )
    };
    let (s, t) = compare(plan, sylvan_spawn_join, |n| tokio_spawn_join(&rt, n));
    r.timing(
        "2a. spawn + join, one at a time (per spawn+join)",
        s,
        t,
        spawn_target(s, t),
    );
    let (s, t) = compare(plan, sylvan_spawn_batch, |n| tokio_spawn_batch(&rt, n));
    let (s, t) = (s.per(BATCH), t.per(BATCH));
    r.timing(
        "2b. spawn 1000, then join all (per spawn+join)",
        s,
        t,
        spawn_target(s, t),
    );
    let (s, t) = compare(plan, sylvan_spawn_join_inside, |n| {
        tokio_spawn_join_inside(&rt, n)
    });
    r.timing(
        "2c. spawn + join, one at a time, from inside a green thread / task",
        s,
        t,
        spawn_target(s, t),
    );

    // Timed now, while nothing else lives on either runtime; listed last.
    progress.say("5. queue ping-pong");
    let (s5, t5) = compare(
        plan,
        |n| sylvan_ping_pong(n, None),
        |n| tokio_ping_pong(&rt, n, None),
    );

    progress.say("3. idle memory and cold spawn (child processes)");
    memory(&mut r, PARKED, "100k")?;
    if plan.reps >= Plan::FULL.reps {
        progress.say("   the same with 1M (about 5 GiB)");
        memory(&mut r, 1_000_000, "1M")?;
    }

    progress.say("4. timer arm + cancel with many pending timers");
    timers(&mut r, &progress, plan, &rt, "100k", PARKED);
    timers(&mut r, &progress, plan, &rt, "1M", 1_000_000);

    r.timing(
        "5. queue ping-pong: `Queue::bounded(1)` / `mpsc::channel(1)` both ways (per round trip)",
        s5,
        t5,
        "—".to_string(),
    );

    println!("## sylvan vs tokio (current_thread), one OS thread each\n");
    print!("{}", r.main.to_markdown());
    println!(
        "\nTimings are the best of {} repetitions of ~{} ms each. \
         4a–4d: ½ × (ping-pong round trip with a timeout around each receive − without), \
         i.e. one timer insert + cancel plus the timeout wrapper, with that many other timers pending.\n",
        plan.reps,
        plan.target.as_millis()
    );
    println!(
        "Switch floor (1): a bare corosensei coroutine resumed and suspended, no scheduler: \
         {:.1} ns per resume + suspend (best; median {:.1} ns). With direct switches a yield \
         round trip is one resume and one suspend (the green thread that yields runs the other \
         nested on its own stack, which suspends back to it), so it costs at least that; the rest \
         is the hub's bookkeeping.\n",
        floor.best_ns, floor.median_ns
    );
    println!("{NOTES}");
    println!("### Timings: best and median\n");
    print!("{}", r.raw.to_markdown());
    println!("\n### Memory (child processes)\n");
    print!("{}", r.mem.to_markdown());
    println!(
        "\n{} CPUs, stack guard pages by MADV_GUARD_INSTALL: {}; whole run took {:.1} s.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        sylvan::debug::stats().guard_install,
        progress.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---- 1. yield round trip ----------------------------------------------------

fn sylvan_yield(iters: u64) -> Duration {
    let start = Instant::now();
    let side = move || {
        for _ in 0..iters {
            sylvan::yield_now();
        }
    };
    let (a, b) = (sylvan::spawn(side), sylvan::spawn(side));
    a.join().expect("yield side");
    b.join().expect("yield side");
    start.elapsed()
}

fn tokio_yield(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        let start = Instant::now();
        let side = move || async move {
            for _ in 0..iters {
                tokio::task::yield_now().await;
            }
        };
        let (a, b) = (tokio::spawn(side()), tokio::spawn(side()));
        a.await.expect("yield side");
        b.await.expect("yield side");
        start.elapsed()
    })
}

/// Resume + suspend of one bare corosensei coroutine (on its default
/// stack), best and median over the plan's repetitions: what sylvan's
/// two switches per yield round trip cost before any bookkeeping.
fn switch_floor(plan: Plan) -> Sample {
    use corosensei::{Coroutine, CoroutineResult};
    let mut coro = Coroutine::new(|y, ()| {
        loop {
            y.suspend(());
        }
    });
    let mut run = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            if let CoroutineResult::Return(()) = coro.resume(()) {
                unreachable!("the loop never returns");
            }
        }
        start.elapsed()
    };
    let n = calibrate(&mut run, plan.target);
    Sample::from_runs((0..plan.reps.max(1)).map(|_| run(n)).collect(), n)
}

// ---- 2. spawn + join --------------------------------------------------------

fn sylvan_spawn_join(iters: u64) -> Duration {
    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..iters {
        sum += sylvan::spawn(move || i)
            .join()
            .expect("spawned green thread");
    }
    black_box(sum);
    start.elapsed()
}

fn tokio_spawn_join(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        let start = Instant::now();
        let mut sum = 0u64;
        for i in 0..iters {
            sum += tokio::spawn(async move { i }).await.expect("spawned task");
        }
        black_box(sum);
        start.elapsed()
    })
}

/// As [`sylvan_spawn_join`], from inside a green thread instead of the root.
fn sylvan_spawn_join_inside(iters: u64) -> Duration {
    sylvan::spawn(move || sylvan_spawn_join(iters))
        .join()
        .expect("outer green thread")
}

/// As [`tokio_spawn_join`], from inside a task instead of the `block_on`
/// future.
fn tokio_spawn_join_inside(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            let mut sum = 0u64;
            for i in 0..iters {
                sum += tokio::spawn(async move { i }).await.expect("spawned task");
            }
            black_box(sum);
            start.elapsed()
        })
        .await
        .expect("outer task")
    })
}

/// `batches` times: spawn [`BATCH`] green threads, then join them all.
fn sylvan_spawn_batch(batches: u64) -> Duration {
    let mut handles = Vec::with_capacity(BATCH as usize);
    let start = Instant::now();
    let mut sum = 0u64;
    for _ in 0..batches {
        handles.extend((0..BATCH).map(|i| sylvan::spawn(move || i)));
        for h in handles.drain(..) {
            sum += h.join().expect("spawned green thread");
        }
    }
    black_box(sum);
    start.elapsed()
}

fn tokio_spawn_batch(rt: &Runtime, batches: u64) -> Duration {
    rt.block_on(async move {
        let mut handles = Vec::with_capacity(BATCH as usize);
        let start = Instant::now();
        let mut sum = 0u64;
        for _ in 0..batches {
            handles.extend((0..BATCH).map(|i| tokio::spawn(async move { i })));
            for h in handles.drain(..) {
                sum += h.await.expect("spawned task");
            }
        }
        black_box(sum);
        start.elapsed()
    })
}

// ---- 3. idle memory (in child processes) -----------------------------------

fn memory(r: &mut Report, count: usize, label: &str) -> Result<(), String> {
    let n = count.to_string();
    let s = run_child(&["--child", "mem-sylvan", &n]).map_err(|e| e.to_string())?;
    let t = run_child(&["--child", "mem-tokio", &n]).map_err(|e| e.to_string())?;
    let per = |out: &str, key: &str| -> Result<f64, String> {
        let before = kv(out, &format!("{key}_before"));
        let parked = kv(out, &format!("{key}_parked"));
        match (before, parked) {
            (Some(b), Some(p)) => Ok((p as f64 - b as f64) / count as f64),
            _ => Err(format!("child printed no {key} numbers: {out:?}")),
        }
    };
    let (s_rss, t_rss) = (per(&s, "rss")?, per(&t, "rss")?);
    let (s_pte, t_pte) = (per(&s, "pte")?, per(&t, "pte")?);
    r.main.row(vec![
        format!(
            "3a. idle memory per parked green thread / task, {label} on one `Event` / `Notify` (RSS)"
        ),
        fmt_kib(s_rss),
        fmt_kib(t_rss),
        fmt_ratio(s_rss, t_rss),
        fmt_target("≤ 6 KiB", s_rss <= 6.0 * 1024.0),
    ]);
    let s_total = s_rss + s_pte;
    let per_thread = fmt_target("≤ 4.5 KiB", s_total <= 4.5 * 1024.0);
    let total_target = if count >= 1_000_000 {
        let gib = s_total * count as f64 / (1u64 << 30) as f64;
        let all = fmt_target(&format!("{gib:.2} GiB in all, ≤ 5 GiB"), gib <= 5.0);
        format!("{per_thread}; {all}")
    } else {
        per_thread
    };
    r.main.row(vec![
        format!("3b. the same, RSS + page tables (`VmPTE`), {label}"),
        fmt_kib(s_total),
        fmt_kib(t_rss + t_pte),
        fmt_ratio(s_total, t_rss + t_pte),
        total_target,
    ]);
    let ns = |out: &str, key: &str| kv(out, key).map_or(f64::NAN, |ns| ns as f64 / count as f64);
    let (s_spawn, t_spawn) = (ns(&s, "spawn_ns"), ns(&t, "spawn_ns"));
    r.main.row(vec![
        format!(
            "3c. cold spawn: spawning those {label} until all are parked, fresh process (wall, per green thread / task)"
        ),
        fmt_ns(s_spawn),
        fmt_ns(t_spawn),
        fmt_ratio(s_spawn, t_spawn),
        "—".to_string(),
    ]);
    let (s_cpu, t_cpu) = (ns(&s, "spawn_cpu_ns"), ns(&t, "spawn_cpu_ns"));
    r.main.row(vec![
        format!("3d. the same, on-CPU time (user + kernel), {label}"),
        fmt_ns(s_cpu),
        fmt_ns(t_cpu),
        fmt_ratio(s_cpu, t_cpu),
        fmt_target("≤ 1 µs", s_cpu <= 1000.0),
    ]);
    for (side, out) in [("sylvan", &s), ("tokio", &t)] {
        let mib = |k: &str| {
            kv(out, k).map_or("?".to_string(), |v| {
                format!("{:.1} MiB", v as f64 / 1048576.0)
            })
        };
        r.mem.row(vec![
            side.to_string(),
            kv(out, "parked").map_or("?".to_string(), |n| n.to_string()),
            mib("rss_before"),
            mib("rss_parked"),
            mib("rss_released"),
            mib("pte_before"),
            mib("pte_parked"),
        ]);
    }
    Ok(())
}

/// This thread's time on a CPU so far (user and kernel), from
/// `/proc/thread-self/schedstat`; zero where that cannot be read.
fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn child_mem_sylvan(n: usize) -> Result<(), String> {
    sylvan::spawn(|| ()).join().map_err(|e| e.to_string())?; // create the hub
    let ev = Event::<()>::new();
    let mut handles = Vec::with_capacity(n);
    let before = Mem::now().map_err(|e| e.to_string())?;
    let (start, cpu) = (Instant::now(), cpu_time());
    for _ in 0..n {
        let ev = ev.clone();
        handles.push(sylvan::spawn(move || ev.wait().is_ok()));
    }
    sylvan::yield_now(); // runs each new green thread once: each parks on `ev`
    let spawn_time = (start.elapsed(), cpu_time() - cpu);
    let parked = sylvan::debug::stats().green_threads;
    let after = Mem::now().map_err(|e| e.to_string())?;
    ev.send(()).map_err(|()| "event sent twice")?;
    let ok = handles
        .into_iter()
        .map(|h| h.join())
        .all(|r| matches!(r, Ok(true)));
    sylvan::debug::trim_stacks(0);
    let released = Mem::now().map_err(|e| e.to_string())?;
    if !ok {
        return Err("a parked green thread did not wake up cleanly".to_string());
    }
    print_mem(before, after, released, parked, spawn_time);
    Ok(())
}

fn child_mem_tokio(n: usize) -> Result<(), String> {
    let rt = tokio_rt();
    rt.block_on(async move {
        tokio::spawn(async {}).await.map_err(|e| e.to_string())?; // warm up
        let notify = Arc::new(tokio::sync::Notify::new());
        let parked = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(n);
        let before = Mem::now().map_err(|e| e.to_string())?;
        let (start, cpu) = (Instant::now(), cpu_time());
        for _ in 0..n {
            let (notify, parked) = (notify.clone(), parked.clone());
            handles.push(tokio::spawn(async move {
                let notified = notify.notified();
                parked.fetch_add(1, Ordering::Relaxed);
                notified.await;
            }));
        }
        while parked.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
        let spawn_time = (start.elapsed(), cpu_time() - cpu);
        let after = Mem::now().map_err(|e| e.to_string())?;
        notify.notify_waiters();
        for h in handles {
            h.await.map_err(|e| e.to_string())?;
        }
        tokio::task::yield_now().await;
        let released = Mem::now().map_err(|e| e.to_string())?;
        print_mem(
            before,
            after,
            released,
            parked.load(Ordering::Relaxed),
            spawn_time,
        );
        Ok(())
    })
}

/// `spawn_time` is (wall, on-CPU).
fn print_mem(
    before: Mem,
    parked: Mem,
    released: Mem,
    count: usize,
    spawn_time: (Duration, Duration),
) {
    println!(
        "rss_before={} rss_parked={} rss_released={} pte_before={} pte_parked={} parked={count} spawn_ns={} spawn_cpu_ns={}",
        before.rss,
        parked.rss,
        released.rss,
        before.page_tables,
        parked.page_tables,
        spawn_time.0.as_nanos(),
        spawn_time.1.as_nanos()
    );
}

// ---- 4. timers, 5. queue ping-pong -------------------------------------------

/// Rows 4: `sleepers` green threads and tasks sleep for an hour; then the
/// ping-pong runs without a timeout, with a 1 h timeout per receive (the new
/// timer is due after every pending one) and with a 30 min timeout (due
/// before every pending one).
fn timers(r: &mut Report, p: &Progress, plan: Plan, rt: &Runtime, count: &str, sleepers: usize) {
    let green = sylvan_sleepers(sleepers, HOUR);
    p.say(&format!("   {sleepers} green threads sleeping"));
    let tasks = tokio_sleepers(rt, sleepers, HOUR);
    p.say(&format!("   {sleepers} tokio tasks sleeping"));
    let (s0, t0) = compare(
        plan,
        |n| sylvan_ping_pong(n, None),
        |n| tokio_ping_pong(rt, n, None),
    );
    r.raw(
        &format!("4. ping-pong, {count} sleepers, no timeout"),
        s0,
        t0,
    );
    let cases = [
        (
            HOUR,
            "due after every pending one (1 h)",
            if count == "1M" { "4c" } else { "4a" },
        ),
        (
            HOUR / 2,
            "due before every pending one (30 min)",
            if count == "1M" { "4d" } else { "4b" },
        ),
    ];
    for (timeout, when, id) in cases {
        let (s1, t1) = compare(
            plan,
            |n| sylvan_ping_pong(n, Some(timeout)),
            |n| tokio_ping_pong(rt, n, Some(timeout)),
        );
        let s = (s1.best_ns - s0.best_ns) / 2.0;
        let t = (t1.best_ns - t0.best_ns) / 2.0;
        r.main.row(vec![
            format!("{id}. timer arm + cancel, {count} timers pending, new timer {when}"),
            fmt_ns(s),
            fmt_ns(t),
            fmt_ratio(s, t),
            "—".to_string(),
        ]);
        r.raw(
            &format!(
                "4. ping-pong, {count} sleepers, timeout {} min",
                timeout.as_secs() / 60
            ),
            s1,
            t1,
        );
    }
    p.say("   timed; releasing the sleepers");
    for g in &green {
        g.kill();
    }
    for g in green {
        let _ = g.join();
    }
    sylvan::debug::trim_stacks(0);
    for t in &tasks {
        t.abort();
    }
    rt.block_on(async move {
        for t in tasks {
            let _ = t.await;
        }
    });
}

/// Spawns `n` green threads that each sleep `dur`, and lets them all park.
fn sylvan_sleepers(
    n: usize,
    dur: Duration,
) -> Vec<sylvan::GreenThread<Result<(), sylvan::Cancelled>>> {
    let gs: Vec<_> = (0..n)
        .map(|_| sylvan::spawn(move || sylvan::sleep(dur)))
        .collect();
    sylvan::yield_now();
    let timers = sylvan::debug::stats().timers;
    if timers < n {
        eprintln!("warning: only {timers} sylvan timers pending, expected {n}");
    }
    gs
}

/// Spawns `n` tasks that each sleep `dur`, and lets them all register.
fn tokio_sleepers(rt: &Runtime, n: usize, dur: Duration) -> Vec<tokio::task::JoinHandle<()>> {
    rt.block_on(async move {
        let armed = Arc::new(AtomicUsize::new(0));
        let hs = (0..n)
            .map(|_| {
                let armed = armed.clone();
                tokio::spawn(async move {
                    let s = tokio::time::sleep(dur);
                    armed.fetch_add(1, Ordering::Relaxed);
                    s.await;
                })
            })
            .collect();
        while armed.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
        hs
    })
}

/// `iters` round trips between two green threads over two `bounded(1)`
/// queues; with a timeout, each `get` runs inside `sylvan::timeout`.
fn sylvan_ping_pong(iters: u64, timeout: Option<Duration>) -> Duration {
    let get = move |q: &Queue<u64>| match timeout {
        Some(t) => sylvan::timeout(t, || q.get())
            .expect("timeout fired")
            .expect("get cancelled"),
        None => q.get().expect("get cancelled"),
    };
    let (ping, pong) = (Queue::bounded(1), Queue::bounded(1));
    let start = Instant::now();
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        sylvan::spawn(move || {
            for _ in 0..iters {
                pong.put(get(&ping)).expect("put cancelled");
            }
        })
    };
    let client = sylvan::spawn(move || {
        let mut sum = 0;
        for i in 0..iters {
            ping.put(i).expect("put cancelled");
            sum += get(&pong);
        }
        sum
    });
    black_box(client.join().expect("ping-pong client"));
    echo.join().expect("ping-pong echo");
    start.elapsed()
}

/// The same between two tokio tasks over two `mpsc::channel(1)`, with
/// `tokio::time::timeout` around each `recv`.
fn tokio_ping_pong(rt: &Runtime, iters: u64, timeout: Option<Duration>) -> Duration {
    async fn recv(rx: &mut tokio::sync::mpsc::Receiver<u64>, timeout: Option<Duration>) -> u64 {
        match timeout {
            Some(t) => tokio::time::timeout(t, rx.recv())
                .await
                .expect("timeout fired")
                .expect("channel closed"),
            None => rx.recv().await.expect("channel closed"),
        }
    }
    rt.block_on(async move {
        let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel(1);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel(1);
        let start = Instant::now();
        let echo = tokio::spawn(async move {
            for _ in 0..iters {
                let v = recv(&mut ping_rx, timeout).await;
                pong_tx.send(v).await.expect("channel closed");
            }
        });
        let client = tokio::spawn(async move {
            let mut sum = 0;
            for i in 0..iters {
                ping_tx.send(i).await.expect("channel closed");
                sum += recv(&mut pong_rx, timeout).await;
            }
            sum
        });
        black_box(client.await.expect("ping-pong client"));
        echo.await.expect("ping-pong echo");
        start.elapsed()
    })
}
