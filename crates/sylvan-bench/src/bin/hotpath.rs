//! The runtime's hot paths, one at a time, for instruction counts under
//! `valgrind --tool=callgrind` (repeatable on a noisy machine, where wall
//! time is not).
//!
//! ```text
//! cargo build --release -p sylvan-bench --bin hotpath
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/hotpath spawn 60000
//! ```
//!
//! Run each path at two counts and divide the difference in instructions
//! by the difference in counts: that is the cost of one iteration without
//! the start-up. Paths: `yield` (two green threads alternate `yield_now`;
//! one iteration is a round trip), `spawn` (spawn + join from the root),
//! `spawn_inside` (the same from a green thread), `batch` (spawn 1000, then
//! join them; the count is of green threads), `queue` (a `Queue::bounded(1)`
//! ping-pong), `pool` (`GreenPool::new(1000)`: `spawn_n` a trivial job
//! COUNT times, then `wait_all`; the count is of jobs). The wall time per
//! iteration goes to standard error.

use std::process::ExitCode;
use std::time::Instant;

use sylvan::sync::Queue;

const USAGE: &str = "usage: hotpath yield|spawn|spawn_inside|batch|queue|pool COUNT";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, n) = match args.as_slice() {
        [p, n] => match n.parse::<u64>() {
            Ok(n) => (p.as_str(), n),
            Err(_) => {
                eprintln!("hotpath: COUNT must be a number, got {n:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    sylvan::spawn(|| ()).join().expect("warm-up"); // creates the hub
    let start = Instant::now();
    match path {
        "yield" => {
            let side = move || (0..n).for_each(|_| sylvan::yield_now());
            let (a, b) = (sylvan::spawn(side), sylvan::spawn(side));
            a.join().expect("yield side");
            b.join().expect("yield side");
        }
        "spawn" => spawn_join(n),
        "spawn_inside" => sylvan::spawn(move || spawn_join(n))
            .join()
            .expect("spawning green thread"),
        "batch" => {
            let mut handles = Vec::with_capacity(1000);
            for _ in 0..n / 1000 {
                handles.extend((0..1000u64).map(|i| sylvan::spawn(move || i)));
                for h in handles.drain(..) {
                    std::hint::black_box(h.join().expect("spawned green thread"));
                }
            }
        }
        "queue" => {
            let (there, back) = (Queue::<u64>::bounded(1), Queue::<u64>::bounded(1));
            let (t, b) = (there.clone(), back.clone());
            let echo = sylvan::spawn(move || {
                for _ in 0..n {
                    let v = t.get().expect("queue open");
                    b.put(v).expect("queue open");
                }
            });
            for i in 0..n {
                there.put(i).expect("queue open");
                back.get().expect("queue open");
            }
            echo.join().expect("echo side");
        }
        "pool" => {
            let pool = sylvan::GreenPool::new(1000);
            for i in 0..n {
                pool.spawn_n(move || {
                    std::hint::black_box(i);
                })
                .expect("the root is not cancelled");
            }
            pool.wait_all().expect("the root is not cancelled");
        }
        other => {
            eprintln!("hotpath: unknown path {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let per = start.elapsed().as_nanos() as f64 / n.max(1) as f64;
    eprintln!("{path}: {per:.1} ns per iteration (wall)");
    ExitCode::SUCCESS
}

fn spawn_join(n: u64) {
    let mut sum = 0u64;
    for i in 0..n {
        sum += sylvan::spawn(move || i)
            .join()
            .expect("spawned green thread");
    }
    std::hint::black_box(sum);
}
