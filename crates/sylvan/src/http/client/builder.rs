//! [`ClientBuilder`]: a client's settings, each with its default.

use std::rc::Rc;
use std::time::Duration;

use super::pool::{Pool, PoolConfig};
use super::proxy::{NoProxy, Proxies};
use super::{Breakers, Client, Config, Inner, Url};
use crate::net::Connector;
use crate::resilience::CircuitBreaker;

/// Configures a [`Client`]; every setter states its default.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::http::Client;
///
/// let client = Client::builder()
///     .connect_timeout(Duration::from_secs(3))
///     .read_timeout(Some(Duration::from_secs(10)))
///     .write_timeout(Some(Duration::from_secs(10)))
///     .timeout(Some(Duration::from_secs(30)))
///     .max_redirects(5)
///     .max_idle_per_host(64)
///     .idle_timeout(Some(Duration::from_secs(30)))
///     .max_lifetime(Some(Duration::from_secs(600)))
///     .max_body_size(1 << 20)
///     .max_header_size(16 * 1024)
///     .user_agent(Some("crawler/1.0"))
///     .build();
/// # drop(client);
/// ```
#[derive(Debug)]
pub struct ClientBuilder {
    cfg: Config,
    pool: PoolConfig,
    breakers: Breakers,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder::new()
    }
}

/// Default connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl ClientBuilder {
    /// The defaults, as each setter states.
    ///
    /// # Examples
    ///
    /// ```
    /// let client = sylvan::http::ClientBuilder::new().build();
    /// # drop(client);
    /// ```
    pub fn new() -> ClientBuilder {
        ClientBuilder {
            cfg: Config {
                connector: Connector::new()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .nodelay(true),
                read_timeout: Some(Duration::from_secs(30)),
                write_timeout: Some(Duration::from_secs(30)),
                timeout: None,
                max_redirects: 10,
                max_head: 64 * 1024,
                max_headers: 100,
                max_body: 10 * 1024 * 1024,
                user_agent: Some(concat!("sylvan/", env!("CARGO_PKG_VERSION")).to_string()),
                decompress: false,
                retry: None,
                expect_continue: Some(1024 * 1024),
                expect_timeout: Duration::from_secs(1),
                proxy: Proxies::default(),
                #[cfg(feature = "tls")]
                tls: None,
            },
            pool: PoolConfig {
                max_idle_per_host: 32,
                idle_timeout: Some(Duration::from_secs(90)),
                max_lifetime: None,
            },
            breakers: Breakers::default(),
        }
    }

    /// How long connecting may take, resolution and every address
    /// together (default 30 s). Sets it on the current connector.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let client = sylvan::http::Client::builder().connect_timeout(Duration::from_secs(3)).build();
    /// # drop(client);
    /// ```
    pub fn connect_timeout(mut self, d: Duration) -> ClientBuilder {
        self.cfg.connector = self.cfg.connector.connect_timeout(d);
        self
    }

    /// Replaces the [`Connector`] (default: `Connector::new()` with a
    /// 30 s connect timeout and `TCP_NODELAY`), e.g. for TCP keepalive,
    /// a local address or a stub resolver. Its connect timeout replaces
    /// the one set so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Client, Response, Server};
    /// use sylvan::net::Connector;
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap()
    ///     .serve(|req| Response::text(req.header("host").unwrap_or("-").to_string()));
    /// let port = server.local_addr().port();
    /// // A stub resolver: every name is this test server.
    /// let client = Client::builder()
    ///     .connector(Connector::new().resolver(move |_, _| Ok(vec![([127, 0, 0, 1], port).into()])))
    ///     .build();
    /// let resp = client.get(format!("http://api.internal:{port}/")).send().unwrap();
    /// assert_eq!(resp.text().unwrap(), format!("api.internal:{port}"));
    /// ```
    pub fn connector(mut self, c: Connector) -> ClientBuilder {
        self.cfg.connector = c;
        self
    }

    /// Timeout of each read from the server (default 30 s; `None`: no
    /// limit), e.g. waiting for the head or for the next body bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::http::Client;
    ///
    /// let listener = sylvan::listen("127.0.0.1:0").unwrap(); // connects, never answers
    /// let url = format!("http://{}/", listener.local_addr().unwrap());
    /// let client = Client::builder().read_timeout(Some(Duration::from_millis(20))).build();
    /// let err = client.get(&url).send().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn read_timeout(mut self, d: Option<Duration>) -> ClientBuilder {
        self.cfg.read_timeout = d;
        self
    }

    /// Timeout of each write to the server (default 30 s; `None`: no
    /// limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let client = sylvan::http::Client::builder().write_timeout(Some(Duration::from_secs(5))).build();
    /// # drop(client);
    /// ```
    pub fn write_timeout(mut self, d: Option<Duration>) -> ClientBuilder {
        self.cfg.write_timeout = d;
        self
    }

    /// Whole-request timeout: connecting, sending, waiting for the head
    /// and reading the body, from the call to `send` (default: none).
    /// [`RequestBuilder::timeout`](super::RequestBuilder::timeout) overrides it per request.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::http::Client;
    ///
    /// let listener = sylvan::listen("127.0.0.1:0").unwrap(); // connects, never answers
    /// let url = format!("http://{}/", listener.local_addr().unwrap());
    /// let client = Client::builder()
    ///     .read_timeout(None)
    ///     .timeout(Some(Duration::from_millis(20)))
    ///     .build();
    /// let err = client.get(&url).send().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// assert!(err.to_string().contains("timeout of 20ms passed"), "{err}");
    /// ```
    pub fn timeout(mut self, d: Option<Duration>) -> ClientBuilder {
        self.cfg.timeout = d;
        self
    }

    /// Most redirects followed per request (default 10); `0` returns the
    /// redirect response itself. More than this is an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap()
    ///     .serve(|_| Response::new(302).header("Location", "/elsewhere"));
    /// let url = format!("http://{}/", server.local_addr());
    /// let client = Client::builder().max_redirects(0).build();
    /// let resp = client.get(&url).send().unwrap();
    /// assert_eq!((resp.status(), resp.header("location")), (302, Some("/elsewhere")));
    /// ```
    pub fn max_redirects(mut self, n: usize) -> ClientBuilder {
        self.cfg.max_redirects = n;
        self
    }

    /// Most idle connections kept per (scheme, host, port) (default 32);
    /// `0` turns reuse off.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let client = Client::builder().max_idle_per_host(0).build();
    /// client.get(&url).send().unwrap().text().unwrap();
    /// assert_eq!(client.idle_connections(), 0); // closed, not kept
    /// ```
    pub fn max_idle_per_host(mut self, n: usize) -> ClientBuilder {
        self.pool.max_idle_per_host = n;
        self
    }

    /// How long an idle connection is kept (default 90 s; `None`: no
    /// limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let client = sylvan::http::Client::builder().idle_timeout(Some(Duration::from_secs(5))).build();
    /// # drop(client);
    /// ```
    pub fn idle_timeout(mut self, d: Option<Duration>) -> ClientBuilder {
        self.pool.idle_timeout = d;
        self
    }

    /// Age after which a connection is not reused (default: none).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let client = sylvan::http::Client::builder().max_lifetime(Some(Duration::from_secs(300))).build();
    /// # drop(client);
    /// ```
    pub fn max_lifetime(mut self, d: Option<Duration>) -> ClientBuilder {
        self.pool.max_lifetime = d;
        self
    }

    /// Most bytes [`ClientResponse::bytes`](super::ClientResponse::bytes) and
    /// [`text`](super::ClientResponse::text) read (default 10 MiB); streaming
    /// through [`Read`](std::io::Read) is not limited.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let client = Client::builder().max_body_size(2).build();
    /// let err = client.get(&url).send().unwrap().text().unwrap_err(); // "GET" is 3 bytes
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    /// ```
    pub fn max_body_size(mut self, bytes: u64) -> ClientBuilder {
        self.cfg.max_body = bytes;
        self
    }

    /// Largest response head, status line and fields together (default
    /// 64 KiB); a larger one is an `InvalidData` error.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap()
    ///     .serve(|_| Response::text("x").header("X-Big", "v".repeat(2000)));
    /// let url = format!("http://{}/", server.local_addr());
    /// let client = Client::builder().max_header_size(1024).build();
    /// let err = client.get(&url).send().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    /// ```
    pub fn max_header_size(mut self, bytes: usize) -> ClientBuilder {
        self.cfg.max_head = bytes;
        self
    }

    /// The `User-Agent` sent when a request sets none (default
    /// `sylvan/<version>`; `None`: no header).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap()
    ///     .serve(|req| Response::text(req.header("user-agent").unwrap_or("none").to_string()));
    /// let url = format!("http://{}/", server.local_addr());
    /// let default = Client::new().get(&url).send().unwrap().text().unwrap();
    /// assert!(default.starts_with("sylvan/"));
    /// let client = Client::builder().user_agent(None).build();
    /// assert_eq!(client.get(&url).send().unwrap().text().unwrap(), "none");
    /// ```
    pub fn user_agent(mut self, ua: Option<&str>) -> ClientBuilder {
        self.cfg.user_agent = ua.map(str::to_string);
        self
    }

    /// Asks for compressed responses and decodes them (default `false`;
    /// feature `gzip`): a request that sets no `Accept-Encoding` is sent
    /// with `Accept-Encoding: gzip, deflate`, and a response with
    /// `Content-Encoding: gzip` (or `x-gzip`) or `deflate` (zlib, as RFC
    /// 9110 defines it) is decoded as it is read. The response keeps its
    /// `Content-Encoding` header, and its
    /// [`content_length`](super::ClientResponse::content_length) is `None`
    /// (the length is that of the encoded bytes).
    /// [`max_body_size`](Self::max_body_size) applies to the *decoded*
    /// size, so a small gzip bomb is a "response too large" error, not a
    /// gigabyte in memory. A request that sets its own `Accept-Encoding`
    /// gets the body as sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    /// gz.write_all(&b"hello ".repeat(1000)).unwrap();
    /// let gz = gz.finish().unwrap();
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
    ///     assert_eq!(req.header("accept-encoding"), Some("gzip, deflate"));
    ///     Response::new(200).header("Content-Encoding", "gzip").with_body(gz.clone())
    /// });
    /// let url = format!("http://{}/", server.local_addr());
    /// let client = Client::builder().decompress(true).build();
    /// assert_eq!(client.get(&url).send().unwrap().text().unwrap(), "hello ".repeat(1000));
    ///
    /// let small = Client::builder().decompress(true).max_body_size(100).build();
    /// let err = small.get(&url).send().unwrap().text().unwrap_err();
    /// assert!(err.to_string().contains("too large"), "{err}");
    /// ```
    #[cfg(feature = "gzip")]
    pub fn decompress(mut self, yes: bool) -> ClientBuilder {
        self.cfg.decompress = yes;
        self
    }

    /// Bodies of at least this many bytes, and bodies of unknown size
    /// (chunked readers), are sent with `Expect: 100-continue` (default
    /// 1 MiB, as curl; `None`: never): the head goes first, and the body
    /// only after the server's `100 Continue`, or after
    /// [`expect_continue_timeout`](Self::expect_continue_timeout) without
    /// an answer. A server that answers at once with a final status (a
    /// `413`, a `401`) is spared the upload: that response is returned,
    /// the body is left unsent and the connection is closed after it. A
    /// request that sets its own `Expect: 100-continue` header is treated
    /// so whatever its size.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// // Refuses every upload by its head alone.
    /// let server = Server::bind("127.0.0.1:0").unwrap()
    ///     .serve(|_| Response::new(413).header("Connection", "close"));
    /// let url = format!("http://{}/", server.local_addr());
    /// let client = Client::builder().expect_continue(Some(1000)).build();
    /// let resp = client.post(&url).body(vec![0u8; 100_000_000]).send().unwrap();
    /// assert_eq!(resp.status(), 413); // and the 100 MB were not sent
    /// ```
    pub fn expect_continue(mut self, min_size: Option<u64>) -> ClientBuilder {
        self.cfg.expect_continue = min_size;
        self
    }

    /// How long a request with `Expect: 100-continue` waits for the
    /// server's answer before sending its body anyway (default 1 s, as
    /// curl), for servers that ignore the header.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let client = sylvan::http::Client::builder()
    ///     .expect_continue_timeout(Duration::from_millis(200))
    ///     .build();
    /// # drop(client);
    /// ```
    pub fn expect_continue_timeout(mut self, d: Duration) -> ClientBuilder {
        self.cfg.expect_timeout = d;
        self
    }

    /// Sends every request through this HTTP proxy (default: none; the
    /// `HTTP_PROXY` family of variables is read only by
    /// [`proxy_from_env`](Self::proxy_from_env)), except to the hosts of
    /// [`no_proxy`](Self::no_proxy). An `http://` target
    /// goes to the proxy in absolute form (`GET http://host/path`); an
    /// `https://` one through a `CONNECT` tunnel, with TLS end to end.
    /// Only `http://` proxies, without authentication for now (a
    /// `Proxy-Authorization` header set on a request reaches the proxy
    /// for `http://` targets only).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use sylvan::http::{Client, Url};
    ///
    /// // A stand-in proxy that answers with the request line it got.
    /// let listener = sylvan::listen("127.0.0.1:0").unwrap();
    /// let proxy = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    /// let fake = sylvan::spawn(move || -> std::io::Result<()> {
    ///     let (mut s, _) = listener.accept()?;
    ///     let mut buf = [0; 1024];
    ///     let n = s.read(&mut buf)?;
    ///     let line = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string();
    ///     write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{line}", line.len())
    /// });
    /// let client = Client::builder().proxy(proxy).build();
    /// let resp = client.get("http://example.invalid/a?b").send().unwrap();
    /// assert_eq!(resp.text().unwrap(), "GET http://example.invalid/a?b HTTP/1.1");
    /// fake.join().unwrap().unwrap();
    /// ```
    pub fn proxy(mut self, proxy: Url) -> ClientBuilder {
        self.cfg.proxy.http = Some(proxy.clone());
        self.cfg.proxy.https = Some(proxy);
        self
    }

    /// Hosts reached directly, not through the proxy (default: none), in
    /// curl's `NO_PROXY` syntax: a comma-separated list of host names
    /// (each also matching its subdomains; a leading dot changes nothing),
    /// IP addresses, CIDR ranges (`10.0.0.0/8`), or `*` for every host.
    /// Replaces the list set so far, also one read by
    /// [`proxy_from_env`](Self::proxy_from_env).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Client, Response, Server, Url};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(|_| Response::text("direct"));
    /// let url = format!("http://{}/", server.local_addr());
    /// // A proxy that does not exist: every request through it would fail.
    /// let client = Client::builder()
    ///     .proxy(Url::parse("http://127.0.0.1:9").unwrap())
    ///     .no_proxy("localhost, 127.0.0.0/8")
    ///     .build();
    /// assert_eq!(client.get(&url).send().unwrap().text().unwrap(), "direct");
    /// ```
    pub fn no_proxy(mut self, list: &str) -> ClientBuilder {
        self.cfg.proxy.no_proxy = NoProxy::parse(list);
        self
    }

    /// Reads the proxies from the environment as curl does, replacing
    /// those set so far: `http_proxy` for `http://` (lower case only, as
    /// curl: `HTTP_PROXY` can be set by a CGI request's `Proxy:` header),
    /// `HTTPS_PROXY`/`https_proxy` for `https://`, `ALL_PROXY`/`all_proxy`
    /// for a scheme without its own, and `NO_PROXY`/`no_proxy` as
    /// [`no_proxy`](Self::no_proxy) reads it; the lower-case name wins
    /// when both are set, an empty value counts as unset, a value without
    /// a scheme is `http://`. Without this call the environment is not
    /// read.
    ///
    /// # Examples
    ///
    /// ```
    /// // With no proxy variables set, requests go direct.
    /// let client = sylvan::http::Client::builder().proxy_from_env().unwrap().build();
    /// # drop(client);
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the variable if a proxy is not a valid URL.
    pub fn proxy_from_env(mut self) -> std::io::Result<ClientBuilder> {
        self.cfg.proxy = Proxies::from_vars(|name| std::env::var(name).ok())?;
        Ok(self)
    }

    /// Enables `https://` with this rustls configuration (default: none,
    /// and `https://` URLs fail with `Unsupported`); feature `tls`. The
    /// handshake may take 10 s (see
    /// [`tls_connector`](Self::tls_connector) to change that), within the
    /// request's whole timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::net::tls::rustls;
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let roots = rustls::RootCertStore::empty(); // add your CA's certificates here
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let client = sylvan::http::Client::builder().tls_config(Arc::new(config)).build();
    /// # drop(client);
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_config(self, config: std::sync::Arc<rustls::ClientConfig>) -> ClientBuilder {
        self.tls_connector(crate::net::tls::TlsConnector::new(config))
    }

    /// Enables `https://` trusting the system's certificate authorities,
    /// as rustls-native-certs finds them (feature `native-roots`): the
    /// platform's store, or the PEM file or directory named by
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR` when set. Certificates that do not
    /// parse are skipped.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let client = sylvan::http::Client::builder().tls_native_roots().unwrap().build();
    /// let resp = client.get("https://example.com/").send().unwrap();
    /// # drop(resp);
    /// ```
    ///
    /// # Errors
    ///
    /// `NotFound` if no certificate could be loaded at all (saying what
    /// went wrong where).
    #[cfg(feature = "native-roots")]
    pub fn tls_native_roots(self) -> std::io::Result<ClientBuilder> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no usable certificate authority in the system's store{}",
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", why.join("; "))
                    }
                ),
            ));
        }
        Ok(self.tls_roots(roots))
    }

    /// Enables `https://` trusting Mozilla's certificate authorities, as
    /// compiled into webpki-roots (feature `webpki-roots`): the same on
    /// every machine, whatever its system store holds.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let client = sylvan::http::Client::builder().tls_webpki_roots().build();
    /// let resp = client.get("https://example.com/").send().unwrap();
    /// # drop(resp);
    /// ```
    #[cfg(feature = "webpki-roots")]
    pub fn tls_webpki_roots(self) -> ClientBuilder {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        self.tls_roots(roots)
    }

    /// A rustls configuration with ring, the safe default protocol
    /// versions and `roots`.
    #[cfg(any(feature = "native-roots", feature = "webpki-roots"))]
    fn tls_roots(self, roots: rustls::RootCertStore) -> ClientBuilder {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        self.tls_config(std::sync::Arc::new(config))
    }

    /// Enables `https://` with this [`TlsConnector`](crate::net::tls::TlsConnector)
    /// (default: none), e.g. for another handshake timeout; feature `tls`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use sylvan::net::tls::{rustls, TlsConnector};
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(rustls::RootCertStore::empty())
    ///     .with_no_client_auth();
    /// let tls = TlsConnector::new(Arc::new(config)).handshake_timeout(Duration::from_secs(3));
    /// let client = sylvan::http::Client::builder().tls_connector(tls).build();
    /// # drop(client);
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_connector(mut self, c: crate::net::tls::TlsConnector) -> ClientBuilder {
        self.cfg.tls = Some(c);
        self
    }

    /// Retries failed requests under `policy` (default: none; the
    /// keep-alive race is retried once in any case, see
    /// [`RequestBuilder::send`](super::RequestBuilder::send)). Each
    /// request, and each redirect hop, runs as one
    /// [`Retry::run`](crate::resilience::Retry::run): its attempts, backoff,
    /// `retry_if` predicate (e.g.
    /// [`is_transient`](crate::resilience::is_transient)), deadline and
    /// shared [`RetryBudget`](crate::resilience::RetryBudget) apply, all
    /// within the request's own [`timeout`](Self::timeout). A failure
    /// before any byte of the request was written (resolve, connect, TLS,
    /// the proxy's tunnel, an open circuit breaker) is retryable for every
    /// request; one after that only for an idempotent request (by method,
    /// or [`RequestBuilder::idempotent`](super::RequestBuilder::idempotent))
    /// whose body is bytes — the policy's own `idempotent` flag is
    /// replaced by the request's. Responses, `5xx` included, are never
    /// retried. When more than one attempt was made, the error says
    /// "gave up after N attempts" and why.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::http::Client;
    /// use sylvan::resilience::{Backoff, Retry, RetryBudget, is_transient};
    ///
    /// let port = sylvan::listen("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed now
    /// let budget = RetryBudget::token_bucket(100, 0.1); // shared by every request
    /// let client = Client::builder()
    ///     .retry(
    ///         Retry::new()
    ///             .max_attempts(3)
    ///             .retry_if(is_transient)
    ///             .backoff(Backoff::new().initial(Duration::from_millis(1)))
    ///             .budget(budget),
    ///     )
    ///     .build();
    /// let err = client.post(format!("http://127.0.0.1:{port}/")).body("x").send().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    /// assert!(err.to_string().contains("gave up after 3 attempts"), "{err}"); // never sent: retried
    /// ```
    pub fn retry(mut self, policy: crate::resilience::Retry) -> ClientBuilder {
        self.cfg.retry = Some(policy);
        self
    }

    /// Guards each host (`scheme://host:port`) with its own
    /// [`CircuitBreaker`], made by `make` on the first request to it
    /// (default: none). A request, and each redirect hop, asks the host's
    /// breaker first: while it is open the request fails at once, with
    /// kind `Other` and a message naming the host and "circuit breaker",
    /// without connecting. A transport error (connect, TLS, timeout, a
    /// closed connection) or a `5xx` response counts as a failure; any
    /// other response as a success; a killed request as neither. Errors
    /// while reading a body are not counted. See
    /// [`Client::breaker`](super::Client::breaker) to watch one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::http::{Client, Response, Server};
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(|_| Response::new(503));
    /// let url = format!("http://{}/", server.local_addr());
    /// let client = Client::builder()
    ///     .circuit_breaker(|_host| {
    ///         CircuitBreaker::builder().count_window(4).minimum_calls(4).wait_in_open(Duration::from_secs(30)).build()
    ///     })
    ///     .build();
    /// for _ in 0..4 {
    ///     assert_eq!(client.get(&url).send().unwrap().status(), 503);
    /// }
    /// let err = client.get(&url).send().unwrap_err(); // open: not even sent
    /// assert!(err.to_string().contains("circuit breaker"), "{err}");
    /// assert_eq!(server.accepted(), 1);
    /// ```
    pub fn circuit_breaker(
        mut self,
        make: impl Fn(&str) -> CircuitBreaker + 'static,
    ) -> ClientBuilder {
        self.breakers.factory = Some(std::rc::Rc::new(make));
        self
    }

    /// The client.
    ///
    /// # Examples
    ///
    /// ```
    /// let client = sylvan::http::Client::builder().build();
    /// let twin = client.clone(); // shares the pool
    /// # drop((client, twin));
    /// ```
    pub fn build(self) -> Client {
        Client {
            inner: Rc::new(Inner {
                cfg: self.cfg,
                pool: Pool::new(self.pool),
                breakers: self.breakers,
            }),
        }
    }
}
