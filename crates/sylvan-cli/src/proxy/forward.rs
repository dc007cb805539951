//! One client connection: choose an upstream, connect (retrying on the
//! next upstream), then copy bytes both ways until both sides are done.
//!
//! The upstream connection is made before a single byte is read from the
//! client, so a retry can never replay data: once bytes flow, a failure
//! closes the client connection and is not retried.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use sylvan::GreenThread;
use sylvan::net::TcpStream;

use super::Local;
use super::upstream::Upstream;

/// The copy buffer of each direction.
const BUF: usize = 16 * 1024;

/// Serves one client connection to the end.
///
/// Per-connection failures (an upstream reset, an idle timeout) are logged
/// at `debug` and end only this connection.
pub fn handle(local: &Local, client: TcpStream) {
    let shared = &local.shared;
    let _active = Gauge::inc(&shared.active);
    shared.accepted.fetch_add(1, Relaxed);
    let _ = client.set_nodelay(true);
    let Some((up, server)) = connect_upstream(local) else {
        shared.failed.fetch_add(1, Relaxed);
        return;
    };
    // `up` is held to the end: if discovery removes it meanwhile, this
    // connection still finishes and counts.
    let up = &up;
    up.connections.fetch_add(1, Relaxed);
    let _up_active = Gauge::inc(&up.active);
    if let Err(e) = pump(client, server, up, shared.config.idle_timeout) {
        tracing::debug!(upstream = %up.addr, "connection ended: {e}");
    }
}

/// Connects to an upstream chosen by the balancer; on failure tries the
/// next one, each upstream at most once and at most `1 + retries` in all.
///
/// Upstreams that are down or ejected are skipped; when none is left, the
/// ones that remain untried are tried anyway (Envoy's "panic mode"): a
/// stale verdict should not turn away a client that one of them could
/// serve.
///
/// The upstream set is the snapshot taken when the connection arrived.
fn connect_upstream(local: &Local) -> Option<(Arc<Upstream>, TcpStream)> {
    let shared = &local.shared;
    let ups = shared.upstreams();
    let n = ups.len();
    let mut tried = vec![false; n];
    let attempts = shared.config.retries.saturating_add(1).min(n);
    for attempt in 0..attempts {
        let now = sylvan::time::now();
        let load = |i: usize| ups[i].active.load(Relaxed);
        let mut balancer = local.balancer.borrow_mut();
        let idx = balancer
            .pick(n, |i| !tried[i] && ups[i].available(now), load)
            .or_else(|| balancer.pick(n, |i| !tried[i], load))?;
        drop(balancer);
        tried[idx] = true;
        let up = &ups[idx];
        if attempt > 0 {
            shared.retries.fetch_add(1, Relaxed);
        }
        match local.connector.connect(up.addr.as_str()) {
            Ok(s) => {
                up.connect_succeeded();
                return Some((up.clone(), s));
            }
            Err(e) => {
                if sylvan::Cancelled::from_io(&e).is_some() {
                    return None; // the proxy is stopping
                }
                let now = sylvan::time::now();
                match up.connect_failed(now) {
                    Some(d) => {
                        tracing::warn!(upstream = %up.addr, "connect failed: {e}; ejected for {d:?}")
                    }
                    None => tracing::info!(upstream = %up.addr, "connect failed: {e}"),
                }
            }
        }
    }
    tracing::warn!("no upstream could be connected; closing the client connection");
    None
}

/// Increments a gauge for as long as it is held.
struct Gauge<'a>(&'a AtomicUsize);

impl<'a> Gauge<'a> {
    fn inc(g: &'a AtomicUsize) -> Gauge<'a> {
        g.fetch_add(1, Relaxed);
        Gauge(g)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Kills a green thread when dropped: the second direction of a connection
/// must not outlive the first (e.g. when the connection is killed at the
/// end of a drain).
struct KillOnDrop(Option<GreenThread<io::Result<()>>>);

impl KillOnDrop {
    /// Waits for the green thread and returns what it returned.
    fn join(mut self) -> io::Result<()> {
        let Some(g) = self.0.take() else {
            return Ok(());
        };
        if let Err(e) = g.wait() {
            g.kill();
            return Err(e.into());
        }
        match g.join() {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(g) = &self.0 {
            g.kill();
        }
    }
}

/// Copies both ways until both directions have seen end-of-stream, or one
/// fails (then both sockets are shut down, which ends the other).
///
/// The idle timeout closes the connection once neither direction has
/// carried a byte for that long; each direction checks on its own read
/// timeout whether the other moved meanwhile, so a connection is closed
/// between one and two idle timeouts after its last byte.
fn pump(
    client: TcpStream,
    server: TcpStream,
    up: &Arc<Upstream>,
    idle: Option<Duration>,
) -> io::Result<()> {
    for s in [&client, &server] {
        s.set_read_timeout(idle)?;
        s.set_write_timeout(idle)?;
    }
    let (client, server) = (Rc::new(client), Rc::new(server));
    let activity = Rc::new(Cell::new(0u64));
    let back = {
        let (client, server, activity, up) =
            (client.clone(), server.clone(), activity.clone(), up.clone());
        KillOnDrop(Some(sylvan::spawn(move || {
            let r = copy(&server, &client, &up.bytes_received, &activity, idle);
            if r.is_err() {
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
            }
            r
        })))
    };
    let forward = copy(&client, &server, &up.bytes_sent, &activity, idle);
    if forward.is_err() {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
    let backward = back.join();
    forward.and(backward)
}

/// Copies `from` → `to` until end-of-stream (then half-closes `to`),
/// counting the bytes into `bytes`.
fn copy(
    from: &TcpStream,
    to: &TcpStream,
    bytes: &AtomicU64,
    activity: &Cell<u64>,
    idle: Option<Duration>,
) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    let mut seen = activity.get();
    loop {
        let n = match (&*from).read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if idle.is_some() && e.kind() == io::ErrorKind::TimedOut => {
                if sylvan::Cancelled::from_io(&e).is_none() && activity.get() != seen {
                    seen = activity.get(); // the other direction moved
                    continue;
                }
                return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
            }
            Err(e) => return Err(e),
        };
        (&*to).write_all(&buf[..n])?;
        bytes.fetch_add(n as u64, Relaxed);
        activity.set(activity.get().wrapping_add(1));
        seen = activity.get();
    }
}
