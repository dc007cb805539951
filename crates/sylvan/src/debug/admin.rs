//! An HTTP admin endpoint: [`serve`] (or [`Builder`]) starts sylvan's own
//! HTTP server on a dedicated OS thread, `sylvan-admin`, which answers from
//! the state hubs publish, so it stays responsive while the program's hubs
//! are busy or stuck.
//!
//! | path | what |
//! |---|---|
//! | `/` | a self-contained web page: hubs, green threads by state, the slowest-parked green threads, scheduling lag over the last minutes, and any extra tables (`sylvan proxy`: its upstreams), refreshed every second |
//! | `/threads` | the Go-style dump ([`Snapshot`](super::Snapshot)'s `Display`); `?format=json` for [`Snapshot::to_json`](super::Snapshot::to_json) |
//! | `/hubs` | JSON: one object per hub, green threads counted by state, without the list |
//! | `/metrics` | Prometheus text ([`Snapshot::to_prometheus`](super::Snapshot::to_prometheus)) |
//! | `/x/NAME` | JSON from a [`Builder::json`] callback |
//! | others | from [`Builder::route`] callbacks |
//!
//! # Access
//!
//! The endpoint shows where every green thread of the process waits. It
//! listens on a loopback address unless a bearer token is set
//! ([`Builder::token`]); with a token, every request must carry
//! `Authorization: Bearer TOKEN` (or, for a browser, `?token=TOKEN`,
//! which the page passes on to its own requests), else `401`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::format::json_str;
use crate::http::{Request, Response, Server};

/// The page at `/`.
const PAGE: &str = include_str!("page.html");

type JsonFn = Arc<dyn Fn() -> String + Send + Sync>;

/// Settings of an admin endpoint before it starts.
///
/// # Examples
///
/// ```
/// let admin = sylvan::debug::admin::Builder::new()
///     .json("upstreams", || r#"[{"name":"a","healthy":true}]"#.to_string())
///     .serve("127.0.0.1:0".parse().unwrap())
///     .unwrap();
/// assert!(admin.local_addr().ip().is_loopback());
/// ```
#[derive(Clone, Default)]
pub struct Builder {
    token: Option<String>,
    extra: Vec<(String, JsonFn)>,
    routes: Vec<(String, &'static str, JsonFn)>,
    metrics: Vec<JsonFn>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field(
                "extra",
                &self.extra.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field(
                "routes",
                &self.routes.iter().map(|(p, _, _)| p).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A running admin endpoint. It runs until the process exits (dropping
/// this handle does not stop it).
#[derive(Debug, Clone, Copy)]
pub struct Admin {
    addr: SocketAddr,
}

impl Admin {
    /// The address it listens on.
    ///
    /// # Examples
    ///
    /// ```
    /// let admin = sylvan::debug::admin::serve("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert_ne!(admin.local_addr().port(), 0);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Starts an admin endpoint on `addr` with no token: `addr` must be a
/// loopback address. See the [module docs](self).
///
/// # Errors
///
/// A non-loopback `addr` (`InvalidInput`, saying to set a token), or the
/// address cannot be bound.
///
/// # Examples
///
/// ```
/// let admin = sylvan::debug::admin::serve("127.0.0.1:0".parse().unwrap()).unwrap();
/// let mut conn = sylvan::connect(admin.local_addr()).unwrap();
/// use std::io::{Read, Write};
/// conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
/// let mut text = String::new();
/// conn.read_to_string(&mut text).unwrap();
/// assert!(text.contains("sylvan_green_threads"));
///
/// let err = sylvan::debug::admin::serve("0.0.0.0:0".parse().unwrap()).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// ```
pub fn serve(addr: SocketAddr) -> io::Result<Admin> {
    Builder::new().serve(addr)
}

impl Builder {
    /// No token, no extra tables.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Requires `Authorization: Bearer TOKEN` (or `?token=TOKEN`) on every
    /// request, and allows a non-loopback address (default: no token,
    /// loopback only).
    pub fn token(mut self, token: impl Into<String>) -> Builder {
        self.token = Some(token.into());
        self
    }

    /// Serves `f()` (a JSON document) at `/x/NAME`, and shows it on the
    /// page as a table titled `name`: a JSON array of flat objects becomes
    /// one row per object. `f` runs on the admin thread, so it must read
    /// shared state (`Arc`, atomics, a lock it takes briefly), never a
    /// hub's `Rc`.
    ///
    /// # Panics
    ///
    /// If `name` is not made of ASCII letters, digits, `-` and `_`.
    pub fn json(mut self, name: &str, f: impl Fn() -> String + Send + Sync + 'static) -> Builder {
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "admin json table name {name:?}: use ASCII letters, digits, '-' and '_'"
        );
        self.extra.push((name.to_string(), Arc::new(f)));
        self
    }

    /// Serves `f()` with content type `content_type` at `path` (an exact
    /// path, query ignored; the built-in paths win). `f` runs on the admin
    /// thread, as for [`json`](Self::json).
    ///
    /// # Examples
    ///
    /// ```
    /// let admin = sylvan::debug::admin::Builder::new()
    ///     .route("/health", "text/plain", || "ok\n".to_string())
    ///     .serve("127.0.0.1:0".parse().unwrap())
    ///     .unwrap();
    /// # let _ = admin;
    /// ```
    pub fn route(
        mut self,
        path: &str,
        content_type: &'static str,
        f: impl Fn() -> String + Send + Sync + 'static,
    ) -> Builder {
        self.routes
            .push((path.to_string(), content_type, Arc::new(f)));
        self
    }

    /// Appends `f()` (more Prometheus text, with metric names of its own)
    /// to `/metrics`.
    ///
    /// # Examples
    ///
    /// ```
    /// let admin = sylvan::debug::admin::Builder::new()
    ///     .metrics(|| "# TYPE my_requests_total counter\nmy_requests_total 3\n".to_string())
    ///     .serve("127.0.0.1:0".parse().unwrap())
    ///     .unwrap();
    /// # let _ = admin;
    /// ```
    pub fn metrics(mut self, f: impl Fn() -> String + Send + Sync + 'static) -> Builder {
        self.metrics.push(Arc::new(f));
        self
    }

    /// Starts the endpoint on `addr` (port 0 picks one; see
    /// [`Admin::local_addr`]).
    ///
    /// # Errors
    ///
    /// A non-loopback `addr` without a token (`InvalidInput`), or the
    /// address cannot be bound, or the thread cannot start.
    pub fn serve(self, addr: SocketAddr) -> io::Result<Admin> {
        if !addr.ip().is_loopback() && self.token.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "admin endpoint: refusing to listen on {addr}, which is not a loopback \
                     address, without a bearer token (it shows every green thread of the \
                     process); listen on 127.0.0.1 or set a token"
                ),
            ));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sylvan-admin".into())
            .spawn(move || {
                let server = Server::bind(addr)
                    .and_then(|s| s.header_timeout(Duration::from_secs(10)))
                    .and_then(|s| s.max_connections(64));
                let server = match server {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let handle = server.serve(move |req| self.handle(&req));
                let _ = tx.send(Ok(handle.local_addr()));
                let _ = handle.wait();
            })?;
        let addr = rx
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the admin thread ended early")))?;
        Ok(Admin { addr })
    }

    fn authorized(&self, req: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let header = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|t| eq_ct(t.trim().as_bytes(), token.as_bytes()));
        header || query(req, "token").is_some_and(|t| eq_ct(t.as_bytes(), token.as_bytes()))
    }

    fn handle(&self, req: &Request) -> Response {
        if !self.authorized(req) {
            return Response::text("401 Unauthorized: this admin endpoint needs a bearer token\n")
                .with_status(401)
                .header("www-authenticate", "Bearer");
        }
        if req.method() != "GET" && req.method() != "HEAD" {
            return Response::status_page(405);
        }
        match req.path() {
            "/" => Response::html(PAGE),
            "/threads" => match query(req, "format").as_deref() {
                Some("json") => json(super::snapshot().to_json()),
                None | Some("text") => Response::text(super::snapshot().to_string()),
                Some(_) => Response::text("format: use json or text\n").with_status(400),
            },
            "/hubs" => json(hubs_json(&super::snapshot())),
            "/metrics" => {
                let mut text = super::snapshot().to_prometheus();
                for f in &self.metrics {
                    text.push_str(&f());
                }
                typed(
                    Response::text(text),
                    "text/plain; version=0.0.4; charset=utf-8",
                )
            }
            "/x" => {
                let mut o = String::from("[");
                for (i, (n, _)) in self.extra.iter().enumerate() {
                    if i > 0 {
                        o.push(',');
                    }
                    json_str(&mut o, n);
                }
                o.push(']');
                json(o)
            }
            p => {
                if let Some((_, ct, f)) = self.routes.iter().find(|(path, _, _)| path == p) {
                    return typed(Response::text(f()), ct);
                }
                match p
                    .strip_prefix("/x/")
                    .and_then(|n| self.extra.iter().find(|(name, _)| name == n))
                {
                    Some((_, f)) => json(f()),
                    None => Response::status_page(404),
                }
            }
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn eq_ct(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| v.to_string())
    })
}

fn typed(r: Response, content_type: &'static str) -> Response {
    r.set_header("content-type", content_type)
}

fn json(body: String) -> Response {
    typed(
        Response::text(body).header("cache-control", "no-store"),
        "application/json",
    )
}

/// `/hubs`: each hub with its green threads counted by state.
fn hubs_json(s: &super::Snapshot) -> String {
    use super::GreenState::*;
    let mut o = String::from("[");
    for (i, h) in s.hubs.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let n = |st| {
            h.green_threads
                .iter()
                .filter(|g| !g.root && g.state == st)
                .count()
        };
        o.push_str(&format!("{{\"id\":{},\"thread\":", h.id));
        json_str(&mut o, &h.thread);
        o.push_str(&format!(
            ",\"running\":{},\"ready\":{},\"parked\":{},\"unjoined\":{},\"lag_now\":{},\"timers\":{},\"io_sources\":{},\"switches\":{},\"spawned\":{},\"finished\":{},\"panicked\":{},\"killed\":{},\"watchdog_warnings\":{}}}",
            n(Running),
            n(Ready),
            n(Parked),
            n(Finished),
            h.lag_now.as_secs_f64(),
            h.timers,
            h.io_sources,
            h.counters.switches,
            h.counters.spawned,
            h.counters.finished,
            h.counters.panicked,
            h.counters.killed,
            h.counters.watchdog_warnings
        ));
    }
    o.push(']');
    o
}
