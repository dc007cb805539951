//! A WebSocket echo server with a tiny page to try it from a browser.
//!
//! ```text
//! cargo run --example websocket_echo -- 127.0.0.1:8080
//! python3 -c 'import websocket; ws = websocket.create_connection("ws://127.0.0.1:8080/"); ws.send("hi"); print(ws.recv())'
//! ```

use std::time::Duration;

use sylvan::http::{Response, Server};
use sylvan::websocket::{self, Options};

const PAGE: &str = r#"<!doctype html>
<input id=m value="hello"><button onclick="ws.send(m.value)">send</button><pre id=log></pre>
<script>
const ws = new WebSocket(location.href.replace(/^http/, "ws"));
ws.onmessage = e => log.textContent += e.data + "\n";
</script>
"#;

fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "sylvan::http=info".into()),
        )
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let opts = Options::new()
        .ping_interval(Some(Duration::from_secs(20)))
        .idle_timeout(Some(Duration::from_secs(60)))
        .max_message_size(1 << 20)
        .max_frame_size(1 << 20);
    // 1 MiB messages: at most 256 sessions keep the worst case near 512 MiB.
    let server = Server::bind(addr.as_str())?
        .max_connections(256)?
        .serve(move |req| {
            if !websocket::is_upgrade(&req) {
                return Response::html(PAGE);
            }
            opts.accept(&req, |ws| {
                eprintln!("{:?} connected", ws.peer_addr());
                loop {
                    match ws.recv() {
                        Ok(msg) => {
                            if let Err(e) = ws.send(msg) {
                                eprintln!("send failed: {e}");
                                break;
                            }
                        }
                        Err(e) => {
                            eprintln!("{:?}: {e}", ws.peer_addr());
                            break;
                        }
                    }
                }
            })
        });
    eprintln!("listening on http://{}", server.local_addr());
    server.wait().map_err(std::io::Error::from)
}
