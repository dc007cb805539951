//! A tour of sylvan's runtime, printed as it happens.
//!
//! Run with `cargo run --release -p sylvan --example tour`.
//!
//! 1. 10,000 green threads sleep for random times and report through one
//!    queue, in wake-up order.
//! 2. A producer and a consumer share a bounded queue.
//! 3. A scoped timeout fires around a slow call.
//! 4. A green thread blocked forever is killed.
//! 5. Blocking work goes to the thread pool while the hub keeps running.

use std::time::{Duration, Instant};

use sylvan::sync::Queue;

fn main() {
    let start = Instant::now();
    let t = move || format!("{:>7.1} ms", start.elapsed().as_secs_f64() * 1e3);

    // 1. Ten thousand sleepers.
    let n = 10_000u64;
    let done = Queue::unbounded();
    let base = sylvan::time::now();
    for i in 0..n {
        let done = done.clone();
        // Detached: each reports through the queue instead of a join.
        drop(sylvan::spawn(move || {
            let ms = 20 + (i * 7919) % 200; // spread over 20-219 ms
            let at = base + Duration::from_millis(ms);
            sylvan::time::sleep_until(at).expect("nobody cancels us");
            done.put((i, ms)).expect("unbounded put never waits");
        }));
    }
    println!(
        "{}  spawned {n} green threads, each sleeping until 20-219 ms from now",
        t()
    );
    let (mut last, mut in_order) = (0, 0);
    for k in 1..=n {
        let (_, ms) = done.get().expect("no deadline here");
        if ms >= last {
            in_order += 1;
        }
        last = ms;
        if k % 2_500 == 0 {
            println!("{}  {k} woke up so far (latest slept {ms} ms)", t());
        }
    }
    let s = sylvan::debug::stats();
    println!(
        "{}  all woke; {in_order} of {n} in deadline order; {} green threads left, RSS {} MiB",
        t(),
        s.green_threads,
        sylvan::debug::rss_bytes().unwrap_or(0) >> 20
    );

    // 2. Producer and consumer on a bounded queue.
    let q = Queue::bounded(4);
    let producer = {
        let q = q.clone();
        sylvan::Builder::new()
            .name("producer")
            .spawn(move || {
                for i in 1..=8 {
                    q.put(i)?; // waits while 4 items are queued
                    sylvan::sleep(Duration::from_millis(2))?;
                }
                Ok::<_, Box<dyn std::error::Error>>(())
            })
            .expect("spawn producer")
    };
    let mut sum = 0;
    for _ in 0..8 {
        sum += q.get().expect("no deadline here");
    }
    producer
        .join()
        .expect("producer ran")
        .expect("producer finished");
    println!("{}  consumer got 8 items from the producer, sum {sum}", t());

    // 3. A scoped timeout firing.
    let slow = || -> Result<&str, sylvan::Cancelled> {
        sylvan::sleep(Duration::from_secs(10))?;
        Ok("slow answer")
    };
    match sylvan::timeout(Duration::from_millis(50), slow) {
        Ok(v) => println!("{}  unexpected: {v:?}", t()),
        Err(e) => println!("{}  timeout(50 ms) around a 10 s call: {e}", t()),
    }

    // 4. Kill a green thread blocked forever.
    let never = Queue::<()>::unbounded();
    let stuck = {
        let never = never.clone();
        sylvan::Builder::new()
            .name("stuck")
            .spawn(move || never.get())
            .expect("spawn")
    };
    sylvan::sleep(Duration::from_millis(5)).expect("no deadline here");
    stuck.kill();
    println!(
        "{}  killed 'stuck'; its get() returned {:?}",
        t(),
        stuck.join().expect("it ran")
    );

    // 5. The thread pool.
    let ticker = sylvan::spawn(|| {
        let mut ticks = 0;
        while sylvan::sleep(Duration::from_millis(10)).is_ok() {
            ticks += 1;
        }
        ticks
    });
    let answer = sylvan::tpool::execute(|| {
        std::thread::sleep(Duration::from_millis(60)); // blocking, off the hub
        42
    })
    .expect("no deadline here");
    ticker.kill();
    let ticks = ticker.join().expect("ticker ran");
    println!(
        "{}  tpool computed {answer} while the hub ticked {ticks} times",
        t()
    );
}
