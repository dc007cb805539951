//! The seed's first program: an echo server, in plain blocking style.
//!
//! ```sh
//! cargo run --release -p sylvan --example echo_server            # 127.0.0.1:7000
//! cargo run --release -p sylvan --example echo_server -- 0.0.0.0:7000
//! ```
//!
//! Every connection gets its own green thread; a slow or silent client
//! can't hold the others up, and an idle one is dropped after 60 s.

use std::io::{Read, Write};
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into());
    let listener = sylvan::listen(addr.as_str())?;
    println!("echo server listening on {}", listener.local_addr()?);
    let server = sylvan::serve(listener, |mut conn, peer| -> std::io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut buf = [0; 4096];
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                println!("{peer} closed");
                return Ok(());
            }
            conn.write_all(&buf[..n])?;
        }
    });
    server.wait().map_err(std::io::Error::from)
}
