//! The green HTTP/1.1 client: blocking calls that park only the calling
//! green thread, with a keep-alive pool, timeouts that always surface as
//! `ErrorKind::TimedOut`, redirects and the keep-alive race handled.
//!
//! - [`Client`] holds the configuration and the pool; it is cheap to
//!   clone (an `Rc`) and shared by every green thread of its hub. It is
//!   `!Send`, like other hub-bound types: make one per hub.
//! - [`Client::get`], [`post`](Client::post), … return a
//!   [`RequestBuilder`]; [`send`](RequestBuilder::send) returns a
//!   [`ClientResponse`] once the head has arrived, whose body is a
//!   streaming [`Read`](std::io::Read).
//! - Connections are made by a [`Connector`] (one connect deadline across
//!   all addresses of a name, Happy Eyeballs) and kept per (scheme, host,
//!   port). One is reused only after its response body was read to the
//!   end, and only if the server allows it (HTTP/1.1 without
//!   `Connection: close`, HTTP/1.0 with `Connection: keep-alive`).
//! - Three timeouts: connect; per read (and per write); a whole-request
//!   one that also covers reading the body.
//!
//! The public overview, with an example, is in the docs of [`crate::http`].
//!
//! `https://` with feature `tls` and a `tls_config`; an `http://` proxy.
//! gzip and deflate bodies with feature `gzip`. Not (yet) supported: proxy
//! authentication, cookies, HTTP/2.

mod builder;
mod conn;
mod exchange;
mod pool;
mod proxy;
mod request;
mod response;
mod url;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::net::Connector;
use crate::resilience::CircuitBreaker;

pub use builder::ClientBuilder;
pub use request::RequestBuilder;
pub use response::{ClientResponse, ResponseBody};
pub use url::Url;

use pool::Pool;

/// Settings shared by every request of a client.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) connector: Connector,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_redirects: usize,
    pub(crate) max_head: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_body: u64,
    pub(crate) user_agent: Option<String>,
    /// Send `Accept-Encoding: gzip, deflate` and decode (feature `gzip`).
    pub(crate) decompress: bool,
    /// Retries of failed requests (besides the keep-alive race's).
    pub(crate) retry: Option<crate::resilience::Retry>,
    /// Smallest body sent with `Expect: 100-continue` (`None`: never).
    pub(crate) expect_continue: Option<u64>,
    /// How long to wait for `100 Continue` before sending anyway.
    pub(crate) expect_timeout: Duration,
    pub(crate) proxy: proxy::Proxies,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::net::tls::TlsConnector>,
}

/// A client's state: its settings and its pool.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) cfg: Config,
    pub(crate) pool: Pool,
    pub(crate) breakers: Breakers,
}

/// Makes a host's circuit breaker, given `scheme://host:port`.
pub(crate) type BreakerFactory = Rc<dyn Fn(&str) -> CircuitBreaker>;

/// The optional circuit breaker of each host, made on first use.
#[derive(Default)]
pub(crate) struct Breakers {
    pub(crate) factory: Option<BreakerFactory>,
    pub(crate) by_host: RefCell<HashMap<String, CircuitBreaker>>,
}

impl fmt::Debug for Breakers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breakers")
            .field("enabled", &self.factory.is_some())
            .field("by_host", &self.by_host)
            .finish()
    }
}

impl Breakers {
    /// The breaker of `origin`, if breakers are on.
    pub(crate) fn get(&self, origin: &str) -> Option<CircuitBreaker> {
        let factory = self.factory.as_ref()?;
        if let Some(b) = self.by_host.borrow().get(origin) {
            return Some(b.clone());
        }
        let b = factory(origin);
        self.by_host
            .borrow_mut()
            .insert(origin.to_string(), b.clone());
        Some(b)
    }
}

/// An HTTP/1.1 client with a keep-alive pool.
///
/// Clones share the pool and settings. Its blocking calls park only the
/// calling green thread, so a hub can run thousands of requests at once
/// (see the crate's `crawler` example). `!Send`: it belongs to the hub of
/// the thread that made it.
///
/// # Examples
///
/// ```
/// use sylvan::http::{Client, Response, Server};
///
/// let server = Server::bind("127.0.0.1:0").unwrap().serve(|_| Response::text("ok"));
/// let url = format!("http://{}/", server.local_addr());
/// let client = Client::new();
/// for _ in 0..3 {
///     assert_eq!(client.get(&url).send().unwrap().text().unwrap(), "ok");
/// }
/// assert_eq!(server.accepted(), 1); // one connection, kept alive
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.cfg)
            .field("idle_connections", &self.idle_connections())
            .finish()
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with the defaults of [`ClientBuilder`].
    ///
    /// # Examples
    ///
    /// ```
    /// let client = sylvan::http::Client::new();
    /// assert_eq!(client.idle_connections(), 0);
    /// ```
    pub fn new() -> Client {
        Client::builder().build()
    }

    /// A builder to configure a client.
    ///
    /// # Examples
    ///
    /// ```
    /// let client = sylvan::http::Client::builder().max_redirects(3).build();
    /// # drop(client);
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A `GET` request to `url` (parsed as [`Url`]; a bad one makes
    /// [`send`](RequestBuilder::send) fail with `InvalidInput`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().get(&url).send().unwrap();
    /// assert_eq!(resp.text().unwrap(), "GET");
    /// ```
    pub fn get(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request("GET", url)
    }

    /// A `HEAD` request to `url`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().head(&url).send().unwrap();
    /// assert_eq!(resp.status(), 200);
    /// assert_eq!(resp.bytes().unwrap(), b""); // a response to HEAD has no body
    /// ```
    pub fn head(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request("HEAD", url)
    }

    /// A `POST` request to `url`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().post(&url).body("form=1").send().unwrap();
    /// assert_eq!(resp.text().unwrap(), "POST");
    /// ```
    pub fn post(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request("POST", url)
    }

    /// A `PUT` request to `url`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().put(&url).body(vec![1, 2, 3]).send().unwrap();
    /// assert_eq!(resp.text().unwrap(), "PUT");
    /// ```
    pub fn put(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request("PUT", url)
    }

    /// A `DELETE` request to `url`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().delete(&url).send().unwrap();
    /// assert_eq!(resp.text().unwrap(), "DELETE");
    /// ```
    pub fn delete(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request("DELETE", url)
    }

    /// A request with any `method` (a token, case-sensitive: `"PATCH"`).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// let url = format!("http://{}/", server.local_addr());
    /// let client = Client::new();
    /// assert_eq!(client.request("PATCH", &url).send().unwrap().text().unwrap(), "PATCH");
    /// let err = client.request("BAD METHOD", &url).send().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn request(&self, method: &str, url: impl AsRef<str>) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url.as_ref())
    }

    /// Idle connections in the pool now, over all hosts.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let client = Client::new();
    /// let resp = client.get(&url).send().unwrap();
    /// assert_eq!(client.idle_connections(), 0); // in use until its body is read
    /// resp.text().unwrap();
    /// assert_eq!(client.idle_connections(), 1);
    /// ```
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.idle_count()
    }

    /// The circuit breaker of the host of `url` (`scheme://host:port`),
    /// made now if it was not yet; `None` if the client has no
    /// [`circuit_breaker`](ClientBuilder::circuit_breaker) or `url` does
    /// not parse.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::Client;
    /// use sylvan::resilience::{BreakerState, CircuitBreaker};
    ///
    /// let client = Client::builder().circuit_breaker(|_| CircuitBreaker::new()).build();
    /// let breaker = client.breaker("http://api.internal:8080/any/path").unwrap();
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// assert!(Client::new().breaker("http://api.internal/").is_none());
    /// ```
    pub fn breaker(&self, url: &str) -> Option<CircuitBreaker> {
        let url = Url::parse(url).ok()?;
        self.inner.breakers.get(&url.origin())
    }

    /// Closes every idle connection of the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let client = Client::new();
    /// client.get(&url).send().unwrap().text().unwrap();
    /// client.clear_idle();
    /// assert_eq!(client.idle_connections(), 0);
    /// ```
    pub fn clear_idle(&self) {
        self.inner.pool.clear();
    }
}
