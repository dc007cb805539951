//! Talks to the echo server: connects with a timeout, sends lines from
//! standard input (or its arguments) and prints what comes back.
//!
//! ```sh
//! cargo run --release -p sylvan --example echo_client -- 127.0.0.1:7000 hello world
//! ```

use std::io::{BufRead, Read, Write};
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7000".into());
    let words: Vec<String> = args.collect();
    let mut conn = sylvan::net::Connector::new()
        .connect_timeout(Duration::from_secs(5))
        .nodelay(true)
        .connect(addr.as_str())
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot reach the echo server at {addr}: {e}"),
            )
        })?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let lines: Vec<String> = if words.is_empty() {
        std::io::stdin().lock().lines().collect::<Result<_, _>>()?
    } else {
        vec![words.join(" ")]
    };
    for line in lines {
        let msg = format!("{line}\n");
        conn.write_all(msg.as_bytes())?;
        let mut back = vec![0; msg.len()];
        conn.read_exact(&mut back)?;
        print!("{}", String::from_utf8_lossy(&back));
    }
    Ok(())
}
