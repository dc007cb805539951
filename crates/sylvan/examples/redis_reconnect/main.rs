//! A Redis client that survives server restarts: `Reconnecting` +
//! `Retry` for commands, a `Pool` for parallel work, and a subscriber whose
//! `on_connect` hook re-subscribes after every reconnect.
//!
//! ```sh
//! redis-server --port 6399 &
//! cargo run --release -p sylvan --example redis_reconnect -- 127.0.0.1:6399
//! ```
//!
//! Kill and restart the server while it runs: writes pause and resume,
//! and the subscriber keeps receiving after each restart.

mod resp;

use std::io;
use std::time::Duration;

use resp::{RespConn, Value};
use sylvan::resilience::{Backoff, Pool, Reconnecting, Retry};

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6379".into());
    let io_timeout = Duration::from_secs(2);

    // Commands: one reconnecting connection, retried (SET of a fixed value
    // and GET are idempotent, so replaying them is safe).
    let a = addr.clone();
    let commands = Reconnecting::builder(move || RespConn::connect(&a, io_timeout))
        .backoff(
            Backoff::new()
                .initial(Duration::from_millis(100))
                .max(Duration::from_secs(2)),
        )
        .wait_for_ready(true)
        .build();
    let policy = Retry::<io::Error>::new()
        .max_attempts(20)?
        .deadline(Duration::from_secs(30))
        .idempotent(true);

    // Subscriber: re-subscribes in on_connect after every reconnect.
    let a = addr.clone();
    let subscriber = Reconnecting::builder(move || RespConn::connect(&a, io_timeout))
        .on_connect(|c| {
            c.command(&[b"SUBSCRIBE", b"news"])?;
            c.set_read_timeout(None)
        })
        .backoff(
            Backoff::new()
                .initial(Duration::from_millis(100))
                .max(Duration::from_secs(2)),
        )
        .wait_for_ready(true)
        .eager(true)
        .build();
    drop(sylvan::spawn(move || {
        loop {
            match subscriber.call(|c| c.read_value()) {
                Ok(Value::Array(Some(m))) if m.len() == 3 => {
                    println!("news: {}", m[2].text().unwrap_or_default());
                }
                Ok(other) => println!("subscriber got {other:?}"),
                Err(e) => println!("subscriber: {e}; reconnecting"),
            }
        }
    }));

    // A pool for parallel writers.
    let a = addr.clone();
    let pool = Pool::builder(move || RespConn::connect(&a, io_timeout))
        .max_size(4)
        .build()?;

    for i in 0u64.. {
        let key = format!("key:{i}");
        let r = policy.run(|attempt| {
            commands
                .call(|c| {
                    attempt.mark_sent();
                    c.command(&[b"SET", key.as_bytes(), i.to_string().as_bytes()])
                })
                .map_err(io::Error::from)
        });
        match r {
            Ok(_) => println!("SET {key} ok"),
            Err(e) => println!("SET {key} failed: {e}"),
        }
        if let Ok(mut c) = pool.get() {
            if c.command(&[b"PUBLISH", b"news", key.as_bytes()]).is_err() {
                c.mark_broken();
            }
        }
        sylvan::sleep(Duration::from_millis(500)).map_err(io::Error::from)?;
    }
    Ok(())
}
