//! Toxiproxy's HTTP control API over a [`Registry`] of chaos proxies, so
//! that existing Toxiproxy clients and test suites drive sylvan's proxies
//! unchanged (feature `chaos-api`).
//!
//! | Method | Path | Does | Success |
//! |---|---|---|---|
//! | `GET` | `/proxies` | every proxy with its toxics, by name | 200 |
//! | `POST` | `/proxies` | creates a proxy | 201 |
//! | `POST` | `/populate` | creates or replaces a list of proxies | 201 |
//! | `GET` | `/proxies/{proxy}` | the proxy with its toxics | 200 |
//! | `POST`, `PATCH` | `/proxies/{proxy}` | changes `listen`, `upstream`, `enabled` | 200 |
//! | `DELETE` | `/proxies/{proxy}` | removes the proxy | 204 |
//! | `GET` | `/proxies/{proxy}/toxics` | its toxics (upstream ones first) | 200 |
//! | `POST` | `/proxies/{proxy}/toxics` | adds a toxic | 200 |
//! | `GET` | `/proxies/{proxy}/toxics/{toxic}` | the toxic | 200 |
//! | `POST`, `PATCH` | `/proxies/{proxy}/toxics/{toxic}` | changes its `attributes`, `toxicity` | 200 |
//! | `DELETE` | `/proxies/{proxy}/toxics/{toxic}` | removes the toxic | 204 |
//! | `POST` | `/reset` | enables every proxy, removes every toxic | 204 |
//! | `GET` | `/version` | `{"version": "2.12.0"}` (the Toxiproxy API version) | 200 |
//!
//! Bodies are Toxiproxy's JSON. A proxy is
//! `{"name", "listen", "upstream", "enabled", "toxics": [...]}` (`enabled`
//! defaults to `true`; an empty `listen` to
//! [`DEFAULT_LISTEN`](super::DEFAULT_LISTEN)); a toxic is
//! `{"name", "type", "stream", "toxicity", "attributes": {...}}`, with
//! `stream` `"upstream"` or `"downstream"` (the default), `toxicity`
//! defaulting to 1, `name` to `<type>_<stream>`, and the attributes of
//! [`Toxic::from_attributes`] (integers, Toxiproxy's units; missing ones
//! are 0). Errors are `{"error": "<message>", "status": <code>}` with
//! Toxiproxy's codes and messages: 404 `proxy not found` / `toxic not
//! found`, 409 `proxy already exists` / `toxic already exists`, 400 `bad
//! request body: …`, `missing required field: name`, `invalid toxic type`,
//! `stream was invalid, can be either upstream or downstream`; 500 when a
//! proxy can't bind its address. As in Toxiproxy, requests whose
//! `User-Agent` starts with `Mozilla/` get 403 (so a web page can't drive
//! the proxies), unknown JSON fields and unknown attribute names are
//! ignored, and `/populate` replies `{"proxies": [...]}`.
//!
//! Where sylvan checks more than Toxiproxy (a toxicity outside `[0, 1]`, a
//! bandwidth `rate` of 0, a malformed address, a negative attribute) the
//! reply is a 400 naming the problem.
//!
//! # Examples
//!
//! ```
//! use std::io::{Read, Write};
//! use sylvan::chaos::Registry;
//! use sylvan::chaos::api::ApiServer;
//!
//! # fn main() -> std::io::Result<()> {
//! let api = ApiServer::bind("127.0.0.1:0", Registry::new())?;
//! let body = r#"{"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379"}"#;
//! let mut c = sylvan::connect(api.local_addr())?;
//! write!(
//!     c,
//!     "POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
//!     body.len()
//! )?;
//! let mut reply = String::new();
//! c.read_to_string(&mut reply)?;
//! assert!(reply.starts_with("HTTP/1.1 201 Created\r\n"));
//! assert!(reply.contains(r#""name":"redis""#) && reply.contains(r#""enabled":true"#));
//! assert!(api.registry().get("redis").unwrap().enabled);
//! # api.stop(std::time::Duration::from_secs(1));
//! # api.registry().clear();
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::registry::{ProxyConfig, ProxyState, ProxyUpdate, Registry, RegistryError};
use super::{ChaosError, Direction, Toxic, ToxicInfo};
use crate::Cancelled;
use crate::http::{Request, Response, RunningServer, Server};
use crate::net::{StopReport, ToSocketAddrs};

/// The Toxiproxy version whose API this one follows, as `GET /version`
/// reports it.
pub const TOXIPROXY_VERSION: &str = "2.12.0";

/// Largest request body [`ApiServer::bind`] accepts (1 MiB).
const MAX_BODY: u64 = 1 << 20;

/// The HTTP API served on this hub: a [`Server`] whose handler is
/// [`handle`], over a [`Registry`].
///
/// # Examples
///
/// ```
/// use sylvan::chaos::{ProxyConfig, Registry};
/// use sylvan::chaos::api::ApiServer;
///
/// let reg = Registry::new();
/// reg.create(ProxyConfig::new("db", "127.0.0.1:0", "127.0.0.1:5432")).unwrap();
/// let api = ApiServer::bind("127.0.0.1:0", reg.clone()).unwrap();
/// assert!(api.local_addr().port() != 0);
/// api.stop(std::time::Duration::from_secs(1)); // the proxies stay
/// assert!(reg.get("db").unwrap().enabled);
/// ```
#[derive(Debug)]
pub struct ApiServer {
    server: RunningServer,
    registry: Registry,
}

impl ApiServer {
    /// Binds `addr` (Toxiproxy's default is `127.0.0.1:8474`) and serves
    /// the API over `registry` in green threads of this hub, with request
    /// bodies limited to 1 MiB.
    ///
    /// # Errors
    ///
    /// As [`Server::bind`] (e.g. `AddrInUse`).
    ///
    /// # Examples
    ///
    /// ```
    /// let api = sylvan::chaos::api::ApiServer::bind("127.0.0.1:0", Default::default()).unwrap();
    /// assert!(api.local_addr().ip().is_loopback());
    /// ```
    pub fn bind(addr: impl ToSocketAddrs, registry: Registry) -> io::Result<ApiServer> {
        let server = Server::bind(addr)?.max_body_size(MAX_BODY);
        Ok(ApiServer::serve(server, registry))
    }

    /// Serves the API on a [`Server`] set up by the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::chaos::api::ApiServer;
    ///
    /// let server = sylvan::http::Server::bind("127.0.0.1:0")
    ///     .unwrap()
    ///     .keep_alive_timeout(Duration::from_secs(5))
    ///     .unwrap();
    /// let api = ApiServer::serve(server, Default::default());
    /// assert!(api.registry().proxies().is_empty());
    /// ```
    pub fn serve(server: Server, registry: Registry) -> ApiServer {
        let reg = registry.clone();
        let server = server.serve(move |req| handle(&reg, req));
        ApiServer { server, registry }
    }

    /// The address the API listens on.
    ///
    /// # Examples
    ///
    /// ```
    /// let api = sylvan::chaos::api::ApiServer::bind("127.0.0.1:0", Default::default()).unwrap();
    /// assert!(sylvan::connect(api.local_addr()).is_ok());
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The proxies the API drives.
    ///
    /// # Examples
    ///
    /// ```
    /// let api = sylvan::chaos::api::ApiServer::bind("127.0.0.1:0", Default::default()).unwrap();
    /// assert!(api.registry().proxies().is_empty());
    /// ```
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Stops the HTTP server gracefully (see
    /// [`RunningServer::stop`](crate::http::RunningServer::stop)). The
    /// proxies keep running; [`Registry::clear`] stops them.
    ///
    /// # Cancellation
    ///
    /// As [`RunningServer::stop`](crate::http::RunningServer::stop).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let api = sylvan::chaos::api::ApiServer::bind("127.0.0.1:0", Default::default()).unwrap();
    /// let addr = api.local_addr();
    /// api.stop(Duration::from_secs(1));
    /// assert!(sylvan::connect(addr).is_err());
    /// ```
    pub fn stop(&self, grace: Duration) -> StopReport {
        self.server.stop(grace)
    }

    /// Blocks until the HTTP server stops.
    ///
    /// # Cancellation
    ///
    /// Returns the error if the caller is killed or its deadline passes;
    /// the server keeps running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use std::time::Duration;
    ///
    /// let api = Rc::new(sylvan::chaos::api::ApiServer::bind("127.0.0.1:0", Default::default()).unwrap());
    /// let stopper = api.clone();
    /// sylvan::spawn(move || stopper.stop(Duration::from_secs(1)));
    /// api.wait().unwrap(); // returns once the green thread stopped it
    /// ```
    pub fn wait(&self) -> Result<(), Cancelled> {
        self.server.wait()
    }
}

/// An API error: an HTTP status and Toxiproxy's message, sent as
/// `{"error": message, "status": status}`.
///
/// # Examples
///
/// ```
/// use sylvan::chaos::RegistryError;
/// use sylvan::chaos::api::ApiError;
///
/// let e = ApiError::from(RegistryError::NoSuchProxy("db".into()));
/// assert_eq!((e.status(), e.message()), (404, "proxy not found"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: u16,
    message: String,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_body(detail: impl fmt::Display) -> ApiError {
        ApiError::new(400, format!("bad request body: {detail}"))
    }

    /// The HTTP status code.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = sylvan::chaos::api::parse_config(b"nope").unwrap_err();
    /// assert_eq!(e.status(), 400);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message (the `error` field).
    ///
    /// # Examples
    ///
    /// ```
    /// let e = sylvan::chaos::api::parse_config(b"").unwrap_err();
    /// assert_eq!(e.message(), "bad request body: EOF");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    fn response(&self) -> Response {
        json(
            self.status,
            &ErrorBody {
                error: &self.message,
                status: self.status,
            },
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        match e {
            RegistryError::NoSuchProxy(_) => ApiError::new(404, "proxy not found"),
            RegistryError::ProxyExists(_) => ApiError::new(409, "proxy already exists"),
            RegistryError::Chaos(ChaosError::NoSuchToxic(_)) => {
                ApiError::new(404, "toxic not found")
            }
            RegistryError::Chaos(ChaosError::ToxicExists(_)) => {
                ApiError::new(409, "toxic already exists")
            }
            RegistryError::Chaos(ChaosError::UnknownDirection(_)) => ApiError::new(
                400,
                "stream was invalid, can be either upstream or downstream",
            ),
            RegistryError::Chaos(e @ ChaosError::UnknownToxicType(_)) => {
                ApiError::new(400, format!("invalid toxic type: {e}"))
            }
            e @ (RegistryError::MissingField(_)
            | RegistryError::DuplicateName(_)
            | RegistryError::InvalidListen(_)
            | RegistryError::Chaos(_)) => ApiError::new(400, e.to_string()),
            e => ApiError::new(500, e.to_string()),
        }
    }
}

/// Parses a Toxiproxy config file (or `/populate` body): a JSON array of
/// proxies, `[{"name", "listen", "upstream", "enabled"}, ...]`, `enabled`
/// defaulting to `true`. Feed the result to [`Registry::populate`].
///
/// # Errors
///
/// A 400 [`ApiError`] (`bad request body: …`) for JSON that is not such
/// an array.
///
/// # Examples
///
/// ```
/// let json = br#"[{"name": "db", "listen": "[::]:15432", "upstream": "db.local:5432", "enabled": false}]"#;
/// let list = sylvan::chaos::api::parse_config(json).unwrap();
/// assert_eq!((list[0].listen.as_str(), list[0].enabled), ("[::]:15432", false));
/// assert!(sylvan::chaos::api::parse_config(b"{}").is_err());
/// ```
pub fn parse_config(json: &[u8]) -> Result<Vec<ProxyConfig>, ApiError> {
    let list: Vec<ProxyBody> = decode(json)?;
    Ok(list.into_iter().map(ProxyBody::into_config).collect())
}

/// Answers one API request: the handler [`ApiServer`] serves, for use in
/// a server of one's own.
///
/// # Examples
///
/// ```
/// use sylvan::chaos::{api, Registry};
/// use sylvan::http::{Response, Server};
///
/// let reg = Registry::new();
/// let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
///     if req.path().starts_with("/health") {
///         return Response::text("ok");
///     }
///     api::handle(&reg, req)
/// });
/// # server.stop(std::time::Duration::from_secs(1));
/// ```
pub fn handle(registry: &Registry, mut req: Request) -> Response {
    if req
        .header("User-Agent")
        .is_some_and(|ua| ua.starts_with("Mozilla/"))
    {
        return Response::text("User agent not allowed\n").with_status(403);
    }
    let (method, path) = (req.method().to_owned(), req.path().to_owned());
    let mut body = || read_body(&mut req);
    match route(registry, &method, &path, &mut body) {
        Ok(r) => r,
        Err(e) => e.response(),
    }
}

/// Entry point of the fuzz target (`fuzz/fuzz_targets/chaos_api.rs`):
/// answers a request given as its parts and returns the status. Not a
/// public API.
#[doc(hidden)]
pub fn __fuzz(registry: &Registry, method: &str, path: &str, body: &[u8]) -> u16 {
    let mut body = || Ok(body.to_vec());
    match route(registry, method, path, &mut body) {
        Ok(r) => r.status(),
        Err(e) => e.status,
    }
}

/// The request body, read when a route needs it.
type BodyFn<'a> = dyn FnMut() -> Result<Vec<u8>, ApiError> + 'a;

fn route(
    reg: &Registry,
    method: &str,
    path: &str,
    body: &mut BodyFn<'_>,
) -> Result<Response, ApiError> {
    let segments: Vec<String> = path
        .strip_prefix('/')
        .unwrap_or("")
        .split('/')
        .map(percent_decode)
        .collect::<Option<_>>()
        .ok_or_else(|| ApiError::new(400, "invalid percent-encoding in the path"))?;
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    if seg.iter().any(|s| s.is_empty()) {
        return Err(no_endpoint(path));
    }
    let update = method == "POST" || method == "PATCH";
    match (seg.as_slice(), method) {
        (["reset"], "POST") => {
            reg.reset()?;
            Ok(Response::new(204))
        }
        (["version"], "GET") => Ok(Response::new(200)
            .header("Content-Type", "application/json;charset=utf-8")
            .with_body(format!("{{\"version\": \"{TOXIPROXY_VERSION}\"}}\n"))),
        (["populate"], "POST") => Ok(populate(reg, &body()?)),
        (["proxies"], "GET") => {
            let all: serde_json::Map<String, Value> = reg
                .proxies()
                .iter()
                .map(|p| (p.name.clone(), proxy_json(p)))
                .collect();
            Ok(json(200, &all))
        }
        (["proxies"], "POST") => {
            let body: ProxyBody = decode(&body()?)?;
            let state = reg.create(body.into_config())?;
            Ok(json(201, &proxy_json(&state)))
        }
        ([p, name], "GET") if *p == "proxies" => {
            let state = reg.get(name).ok_or_else(not_found_proxy)?;
            Ok(json(200, &proxy_json(&state)))
        }
        ([p, name], _) if *p == "proxies" && update => {
            reg.get(name).ok_or_else(not_found_proxy)?;
            let body: ProxyBody = decode(&body()?)?;
            let mut u = ProxyUpdate::new();
            u.listen = body.listen;
            u.upstream = body.upstream;
            u.enabled = body.enabled;
            let state = reg.update(name, u)?;
            Ok(json(200, &proxy_json(&state)))
        }
        ([p, name], "DELETE") if *p == "proxies" => {
            reg.remove(name)?;
            Ok(Response::new(204))
        }
        ([p, name, t], "GET") if *p == "proxies" && *t == "toxics" => {
            let toxics = sorted(reg.toxics(name)?);
            let list: Vec<Value> = toxics.iter().map(toxic_json).collect();
            Ok(json(200, &list))
        }
        ([p, name, t], "POST") if *p == "proxies" && *t == "toxics" => {
            reg.get(name).ok_or_else(not_found_proxy)?;
            let body: ToxicBody = decode(&body()?)?;
            let info = create_toxic(reg, name, body)?;
            Ok(json(200, &toxic_json(&info)))
        }
        ([p, name, t, toxic], m) if *p == "proxies" && *t == "toxics" => match m {
            "GET" => Ok(json(200, &toxic_json(&reg.toxic(name, toxic)?))),
            "DELETE" => {
                reg.remove_toxic(name, toxic)?;
                Ok(Response::new(204))
            }
            _ if update => {
                let current = reg.toxic(name, toxic)?;
                let body: ToxicUpdateBody = decode(&body()?)?;
                let mut t = current.toxic;
                for (attr, v) in attributes(body.attributes)? {
                    match t.set_attribute(&attr, v) {
                        Err(ChaosError::UnknownAttribute { .. }) => ignored(&t, &attr),
                        r => r.map_err(RegistryError::Chaos)?,
                    }
                }
                let toxicity = body.toxicity.unwrap_or(current.toxicity);
                let info = reg.update_toxic(name, toxic, t, toxicity)?;
                Ok(json(200, &toxic_json(&info)))
            }
            _ => Err(not_allowed(m)),
        },
        (["reset" | "version" | "populate" | "proxies"], m)
        | (["proxies", _] | ["proxies", _, "toxics"], m) => Err(not_allowed(m)),
        _ => Err(no_endpoint(path)),
    }
}

fn no_endpoint(path: &str) -> ApiError {
    ApiError::new(404, format!("no such endpoint: {path}"))
}

fn not_found_proxy() -> ApiError {
    ApiError::from(RegistryError::NoSuchProxy(String::new()))
}

fn not_allowed(method: &str) -> ApiError {
    ApiError::new(405, format!("method {method} not allowed here"))
}

fn populate(reg: &Registry, body: &[u8]) -> Response {
    let result = parse_config(body).and_then(|list| reg.populate(list).map_err(ApiError::from));
    match result {
        Ok(states) => json(
            201,
            &PopulateBody {
                error: None,
                status: None,
                proxies: states.iter().map(proxy_json).collect(),
            },
        ),
        Err(e) => json(
            e.status,
            &PopulateBody {
                error: Some(&e.message),
                status: Some(e.status),
                proxies: Vec::new(),
            },
        ),
    }
}

/// Adds a toxic from its JSON, checking in Toxiproxy's order: stream,
/// type, name taken, attributes.
fn create_toxic(reg: &Registry, proxy: &str, body: ToxicBody) -> Result<ToxicInfo, ApiError> {
    let stream = body.stream.unwrap_or_else(|| "downstream".to_owned());
    let direction: Direction = stream
        .to_ascii_lowercase()
        .parse()
        .map_err(RegistryError::Chaos)?;
    let kind = body.kind.unwrap_or_default();
    if !Toxic::TYPES.contains(&kind.as_str()) {
        let e = ChaosError::UnknownToxicType(kind);
        return Err(RegistryError::Chaos(e).into());
    }
    let name = match body.name {
        Some(n) if !n.is_empty() => n,
        _ => format!("{kind}_{direction}"),
    };
    if reg.toxic(proxy, &name).is_ok() {
        return Err(RegistryError::Chaos(ChaosError::ToxicExists(name)).into());
    }
    let mut attrs = attributes(body.attributes)?;
    let toxic = loop {
        let given = attrs.iter().map(|(n, v)| (n.as_str(), *v));
        match Toxic::from_attributes(&kind, given) {
            Err(ChaosError::UnknownAttribute { toxic, attribute }) => {
                tracing::debug!(
                    "chaos api: the {toxic} toxic has no attribute {attribute:?}; ignored"
                );
                attrs.retain(|(n, _)| *n != attribute);
            }
            r => break r.map_err(RegistryError::Chaos)?,
        }
    };
    let toxicity = body.toxicity.unwrap_or(1.0);
    Ok(reg.add_toxic(proxy, &name, toxic, direction, toxicity)?)
}

fn ignored(t: &Toxic, attr: &str) {
    tracing::debug!(
        "chaos api: the {} toxic has no attribute {attr:?}; ignored",
        t.type_name()
    );
}

/// The attributes as integers; `null` ones are left out (unchanged).
fn attributes(attrs: Option<Map<String, Value>>) -> Result<Vec<(String, i64)>, ApiError> {
    let mut out = Vec::new();
    for (name, v) in attrs.unwrap_or_default() {
        let n = match &v {
            Value::Null => continue,
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            }),
            _ => None,
        };
        let n = n.ok_or_else(|| {
            ApiError::bad_body(format!("attribute {name:?} must be an integer, not {v}"))
        })?;
        out.push((name, n));
    }
    Ok(out)
}

/// Upstream toxics first, then downstream, each in the order added (as
/// Toxiproxy lists them).
fn sorted(mut toxics: Vec<ToxicInfo>) -> Vec<ToxicInfo> {
    toxics.sort_by_key(|t| t.direction == Direction::Downstream);
    toxics
}

fn read_body(req: &mut Request) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    match req.read_to_end(&mut body) {
        Ok(_) => Ok(body),
        Err(e) => Err(ApiError::bad_body(e)),
    }
}

/// Decodes the first JSON value of `body` (trailing bytes are ignored, as
/// Go's `json.Decoder` does).
fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<T>();
    match values.next() {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(ApiError::bad_body(e)),
        None => Err(ApiError::bad_body("EOF")),
    }
}

fn json(status: u16, v: &impl Serialize) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_else(|e| {
        format!("{{\"error\": \"cannot encode the reply: {e}\", \"status\": 500}}").into_bytes()
    });
    Response::new(status)
        .header("Content-Type", "application/json")
        .with_body(body)
}

fn proxy_json(p: &ProxyState) -> Value {
    let toxics: Vec<Value> = sorted(p.toxics.clone()).iter().map(toxic_json).collect();
    serde_json::json!({
        "name": p.name,
        "listen": p.listen,
        "upstream": p.upstream,
        "enabled": p.enabled,
        "toxics": toxics,
    })
}

fn toxic_json(t: &ToxicInfo) -> Value {
    let attributes: Map<String, Value> = t
        .toxic
        .attributes()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), Value::from(v)))
        .collect();
    serde_json::json!({
        "attributes": attributes,
        "name": t.name,
        "type": t.toxic.type_name(),
        "stream": t.direction.as_str(),
        // As an f32 prints (0.1, not 0.10000000149011612), as Go does.
        "toxicity": t.toxicity.to_string().parse::<f64>().unwrap_or(1.0),
    })
}

/// Decodes `%XX` escapes; `None` for a bad escape or bytes that are not
/// UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A proxy as clients send it.
#[derive(Deserialize)]
struct ProxyBody {
    name: Option<String>,
    listen: Option<String>,
    upstream: Option<String>,
    enabled: Option<bool>,
}

impl ProxyBody {
    fn into_config(self) -> ProxyConfig {
        ProxyConfig::new(
            self.name.unwrap_or_default(),
            self.listen.unwrap_or_default(),
            self.upstream.unwrap_or_default(),
        )
        .enabled(self.enabled.unwrap_or(true))
    }
}

/// A new toxic as clients send it.
#[derive(Deserialize)]
struct ToxicBody {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    stream: Option<String>,
    toxicity: Option<f32>,
    attributes: Option<Map<String, Value>>,
}

/// A toxic change: only these two fields count.
#[derive(Deserialize)]
struct ToxicUpdateBody {
    toxicity: Option<f32>,
    attributes: Option<Map<String, Value>>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    status: u16,
}

#[derive(Serialize)]
struct PopulateBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    proxies: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn attributes_must_be_integers() {
        let m = |v: Value| Some(v.as_object().unwrap().clone());
        let ok = attributes(m(serde_json::json!({"a": 5, "b": 7.0, "c": null}))).unwrap();
        assert_eq!(ok, vec![("a".to_owned(), 5), ("b".to_owned(), 7)]);
        for bad in [
            serde_json::json!({"a": "5"}),
            serde_json::json!({"a": 1.5}),
            serde_json::json!({"a": [1]}),
        ] {
            let e = attributes(m(bad)).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.message().starts_with("bad request body: attribute \"a\""));
        }
    }

    /// A few thousand random requests built from API fragments (what
    /// the fuzz target does at scale): never a panic, always a known
    /// status.
    #[test]
    fn random_requests_never_panic() {
        let paths = [
            "/proxies",
            "/proxies/a",
            "/proxies/b/toxics",
            "/proxies/a/toxics/t",
            "/populate",
            "/reset",
            "/version",
            "/proxies/%61",
            "/proxies/a/toxics/latency_downstream",
            "/x",
        ];
        let bodies = [
            r#"{"name": "a", "upstream": "127.0.0.1:9"}"#,
            r#"{"name": "b", "upstream": "127.0.0.1:9", "enabled": false}"#,
            r#"{"enabled": false}"#,
            r#"{"enabled": true, "upstream": "localhost:1"}"#,
            r#"{"name": "t", "type": "timeout", "attributes": {"timeout": 1}}"#,
            r#"{"type": "latency", "stream": "upstream", "toxicity": 0.5}"#,
            r#"{"type": "slicer", "attributes": {"average_size": 3, "size_variation": 9}}"#,
            r#"{"attributes": {"latency": 5, "jitter": -1}, "toxicity": 1.5}"#,
            r#"[{"name": "a", "upstream": "127.0.0.1:9"}, {"name": "c", "upstream": "x:1"}]"#,
            r#"[{"name": "", "upstream": ""}]"#,
            "",
            "{",
            "null",
        ];
        let methods = ["GET", "POST", "PATCH", "DELETE", "PUT"];
        let mut rng = fastrand::Rng::with_seed(7);
        let reg = Registry::new();
        for _ in 0..2000 {
            let m = methods[rng.usize(..methods.len())];
            let p = paths[rng.usize(..paths.len())];
            let mut b = bodies[rng.usize(..bodies.len())].to_owned();
            if rng.u8(..4) == 0 && !b.is_empty() {
                b.truncate(rng.usize(..b.len()));
            }
            let status = __fuzz(&reg, m, p, b.as_bytes());
            assert!(
                matches!(status, 200 | 201 | 204 | 400 | 404 | 405 | 409 | 500),
                "{m} {p} {b}: {status}"
            );
        }
        reg.clear();
    }

    #[test]
    fn decode_takes_the_first_value() {
        let v: Vec<u8> = decode(b"[1, 2] trailing").unwrap();
        assert_eq!(v, [1, 2]);
        let e = decode::<Vec<u8>>(b"").unwrap_err();
        assert_eq!(e.message(), "bad request body: EOF");
    }
}
