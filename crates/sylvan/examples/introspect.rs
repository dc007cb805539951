//! Introspection of a running program: a few green threads in different
//! states, a dump on `SIGQUIT`, and the admin endpoint (web page at `/`,
//! `/threads`, `/metrics`; watch it with `sylvan top ADDR`).
//!
//! ```text
//! cargo run --example introspect -- 127.0.0.1:9100
//! kill -QUIT <pid>          # prints every green thread to stderr
//! sylvan top 127.0.0.1:9100
//! ```

use std::time::Duration;

use sylvan::sync::Queue;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9100".into());
    let addr = addr
        .parse()
        .map_err(|_| std::io::Error::other(format!("{addr:?} is not IP:PORT")))?;
    sylvan::debug::dump_on_signal(sylvan::signal::SIGQUIT)?;
    let admin = sylvan::debug::admin::serve(addr)?;
    eprintln!(
        "pid {}: admin on http://{}/ ; kill -QUIT {} for a dump",
        std::process::id(),
        admin.local_addr(),
        std::process::id()
    );
    let jobs: Queue<u64> = Queue::unbounded();
    for i in 0..3 {
        let jobs = jobs.clone();
        sylvan::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || {
                while let Ok(n) = jobs.get() {
                    let _ = sylvan::sleep(Duration::from_millis(10 * n));
                }
            })?;
    }
    sylvan::Builder::new().name("ticker").spawn(move || {
        for n in 0.. {
            let _ = jobs.put(n % 50);
            let _ = sylvan::timeout(Duration::from_secs(30), || {
                sylvan::sleep(Duration::from_millis(500))
            });
        }
    })?;
    sylvan::signal::wait(&[sylvan::signal::SIGINT, sylvan::signal::SIGTERM])
        .map_err(std::io::Error::from)?;
    sylvan::shutdown();
    Ok(())
}
