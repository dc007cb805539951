//! [`ClientBuilder`]: a client's settings, each with its default.

use std::rc::Rc;
use std::time::Duration;

use super::pool::{Pool, PoolConfig};
use super::{Client, Config, Inner, Url};
use crate::net::Connector;

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
                proxy: None,
                #[cfg(feature = "tls")]
                tls: None,
            },
            pool: PoolConfig {
                max_idle_per_host: 32,
                idle_timeout: Some(Duration::from_secs(90)),
                max_lifetime: None,
            },
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

    /// Sends every request through this HTTP proxy (default: none; the
    /// `HTTP_PROXY` family of variables is not read). An `http://` target
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
        self.cfg.proxy = Some(proxy);
        self
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
            }),
        }
    }
}
