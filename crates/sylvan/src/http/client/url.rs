//! [`Url`]: the small part of URLs an HTTP client needs — scheme, host,
//! port, path and query — parsed strictly, with clear errors.

use std::fmt;
use std::io;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// An `http://` or `https://` URL, parsed into what a request needs.
///
/// The host is lower-cased (an IPv6 literal is kept without its
/// brackets), the port defaults to the scheme's (80, 443), the path
/// defaults to `/`, and a `#fragment` is dropped (it is never sent).
/// Spaces and non-ASCII bytes in the path and query are percent-encoded;
/// control characters are refused. User info (`user:pass@`) is refused
/// rather than silently sent or dropped: set an `Authorization` header.
///
/// # Examples
///
/// ```
/// use sylvan::http::Url;
///
/// let u: Url = "HTTP://Example.COM:8080/a b?q=1#frag".parse().unwrap();
/// assert_eq!(u.scheme(), "http");
/// assert_eq!(u.host(), "example.com");
/// assert_eq!(u.port(), 8080);
/// assert_eq!(u.path_and_query(), "/a%20b?q=1");
/// assert_eq!(u.to_string(), "http://example.com:8080/a%20b?q=1");
///
/// let v6 = Url::parse("http://[::1]/").unwrap();
/// assert_eq!((v6.host(), v6.port(), v6.authority().as_str()), ("::1", 80, "[::1]"));
///
/// let err = Url::parse("ftp://example.com/").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// assert!(err.to_string().contains("unsupported URL scheme"));
///
/// let next = u.join("../c?d").unwrap();
/// assert_eq!(next.to_string(), "http://example.com:8080/c?d");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Url {
    https: bool,
    host: String,
    port: u16,
    path: String,
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Url({self})")
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme(), self.authority(), self.path)
    }
}

impl FromStr for Url {
    type Err = io::Error;

    fn from_str(s: &str) -> io::Result<Url> {
        Url::parse(s)
    }
}

fn bad(url: &str, what: impl fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid URL {url:?}: {what}"),
    )
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL.
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the URL and what is wrong with it: no or
    /// another scheme, an empty or invalid host, a bad port, user info,
    /// control characters.
    ///
    /// # Examples
    ///
    /// ```
    /// let u = sylvan::http::Url::parse("http://localhost:8000?x").unwrap();
    /// assert_eq!(u.path_and_query(), "/?x");
    /// assert!(sylvan::http::Url::parse("localhost:8000").is_err());
    /// ```
    pub fn parse(url: &str) -> io::Result<Url> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad(url, "expected scheme://host"))?;
        let https = if scheme.eq_ignore_ascii_case("http") {
            false
        } else if scheme.eq_ignore_ascii_case("https") {
            true
        } else {
            return Err(bad(url, format!("unsupported URL scheme {scheme:?}")));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad(
                url,
                "user info in URLs is not supported; send an Authorization header",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (ip, after) = v6
                .split_once(']')
                .ok_or_else(|| bad(url, "unclosed '[' in host"))?;
            ip.parse::<Ipv6Addr>()
                .map_err(|_| bad(url, format!("invalid IPv6 address {ip:?}")))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad(url, "expected ':' after ']'"))?,
                ),
            };
            (ip.to_ascii_lowercase(), port)
        } else {
            let (h, p) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if h.is_empty() {
                return Err(bad(url, "empty host"));
            }
            if let Some(c) = h
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
            {
                return Err(bad(url, format!("invalid character {c:?} in host")));
            }
            (h.to_ascii_lowercase(), p)
        };
        let port = match port {
            None | Some("") => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(bad(url, format!("invalid port {p:?}"))),
            },
        };
        let tail = tail.split('#').next().unwrap_or("");
        let path = encode_path(tail).map_err(|m| bad(url, m))?;
        let path = match path.as_bytes().first() {
            None => "/".to_string(),
            Some(b'?') => format!("/{path}"),
            _ => path,
        };
        let path = match path.split_once('?') {
            Some((p, q)) => format!("{}?{q}", remove_dot_segments(p)),
            None => remove_dot_segments(&path),
        };
        Ok(Url {
            https,
            host,
            port,
            path,
        })
    }

    /// Resolves `reference` against this URL (RFC 3986 §5.2), as a
    /// browser resolves a `Location` header: absolute URLs, `//host/p`,
    /// `/p`, `?q` and relative paths with `.` and `..`.
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse), for the resolved URL.
    ///
    /// # Examples
    ///
    /// ```
    /// let base = sylvan::http::Url::parse("http://h/a/b?x").unwrap();
    /// assert_eq!(base.join("c").unwrap().to_string(), "http://h/a/c");
    /// assert_eq!(base.join("/d").unwrap().to_string(), "http://h/d");
    /// assert_eq!(base.join("?y").unwrap().to_string(), "http://h/a/b?y");
    /// assert_eq!(base.join("//other:81/").unwrap().to_string(), "http://other:81/");
    /// assert_eq!(base.join("https://s/").unwrap().to_string(), "https://s/");
    /// ```
    pub fn join(&self, reference: &str) -> io::Result<Url> {
        let r = reference.trim();
        let has_scheme = r.find(':').is_some_and(|i| {
            i > 0
                && r[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && r.as_bytes()[0].is_ascii_alphabetic()
        });
        if has_scheme {
            return Url::parse(r);
        }
        if r.starts_with("//") {
            return Url::parse(&format!("{}:{r}", self.scheme()));
        }
        let base = format!("{}://{}", self.scheme(), self.authority());
        let r = r.split('#').next().unwrap_or("");
        let path = if r.is_empty() {
            self.path.clone()
        } else if r.starts_with('/') {
            r.to_string()
        } else if r.starts_with('?') {
            format!("{}{r}", self.path())
        } else {
            let dir = &self.path()[..self.path().rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{r}")
        };
        Url::parse(&format!("{base}{path}"))
    }

    /// `"http"` or `"https"`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::http::Url::parse("HTTPS://h/").unwrap().scheme(), "https");
    /// ```
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// Whether the scheme is `https`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!sylvan::http::Url::parse("http://h/").unwrap().is_https());
    /// ```
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The host: a lower-case name, or an IP address (IPv6 without
    /// brackets).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::http::Url::parse("http://[::1]:8080/").unwrap().host(), "::1");
    /// ```
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::http::Url::parse("https://h/").unwrap().port(), 443);
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host[:port]` as sent in the `Host` header: the port only when it
    /// is not the scheme's default, an IPv6 host in brackets.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::Url;
    ///
    /// assert_eq!(Url::parse("http://h:80/").unwrap().authority(), "h");
    /// assert_eq!(Url::parse("http://[::1]:81/").unwrap().authority(), "[::1]:81");
    /// ```
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.https { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `scheme://host:port`, always with the port (a circuit breaker's key).
    pub(crate) fn origin(&self) -> String {
        format!("{}://{}", self.scheme(), self.host_port())
    }

    /// `host:port`, always with the port (a `CONNECT` target).
    pub(crate) fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The request target: path and query, percent-encoded, starting
    /// with `/`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::http::Url::parse("http://h/a?b#c").unwrap().path_and_query(), "/a?b");
    /// ```
    pub fn path_and_query(&self) -> &str {
        &self.path
    }

    /// The path, without the query.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::http::Url::parse("http://h/a/b?c").unwrap().path(), "/a/b");
    /// ```
    pub fn path(&self) -> &str {
        self.path.split('?').next().unwrap_or("/")
    }

    /// The query after `?`, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::Url;
    ///
    /// assert_eq!(Url::parse("http://h/?x=1").unwrap().query(), Some("x=1"));
    /// assert_eq!(Url::parse("http://h/").unwrap().query(), None);
    /// ```
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, q)| q)
    }

    /// Whether `other` has the same origin (scheme, host and port).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::Url;
    ///
    /// let a = Url::parse("http://h/a").unwrap();
    /// assert!(a.same_origin(&Url::parse("http://h:80/b").unwrap()));
    /// assert!(!a.same_origin(&Url::parse("http://h:8080/a").unwrap()));
    /// assert!(!a.same_origin(&Url::parse("https://h/a").unwrap()));
    /// ```
    pub fn same_origin(&self, other: &Url) -> bool {
        self.https == other.https && self.host == other.host && self.port == other.port
    }
}

/// Percent-encodes what may not appear raw in a request target; refuses
/// control characters.
fn encode_path(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            0..=0x1f | 0x7f => {
                return Err(format!("control character {:?} in path", b as char));
            }
            b' ' | b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'\\' | b'^' | 0x80.. => {
                out.push_str(&format!("%{b:02X}"));
            }
            _ => out.push(b as char),
        }
    }
    Ok(out)
}

/// RFC 3986 §5.2.4, on a path that starts with `/`.
fn remove_dot_segments(path: &str) -> String {
    if !path.split('/').any(|s| s == "." || s == "..") {
        return path.to_string();
    }
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match *seg {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let u = Url::parse("http://a.b").unwrap();
        assert_eq!((u.host(), u.port(), u.path_and_query()), ("a.b", 80, "/"));
        let u = Url::parse("https://a.b:8443/x/../y/./z?q=./..").unwrap();
        assert_eq!(u.to_string(), "https://a.b:8443/y/z?q=./..");
        assert_eq!(u.authority(), "a.b:8443");
        let u = Url::parse("http://[2001:DB8::1]:8080/é").unwrap();
        assert_eq!(u.host(), "2001:db8::1");
        assert_eq!(u.to_string(), "http://[2001:db8::1]:8080/%C3%A9");
        assert_eq!(Url::parse("http://h:80/").unwrap().authority(), "h");
    }

    #[test]
    fn refuses() {
        for bad in [
            "",
            "h/p",
            "gopher://h/",
            "http://",
            "http:///p",
            "http://u:p@h/",
            "http://h:0/",
            "http://h:99999/",
            "http://h:+1/",
            "http://h:x/",
            "http://[::1/",
            "http://[zz]/",
            "http://[::1]x/",
            "http://h h/",
            "http://h/\n",
        ] {
            let e = Url::parse(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
            assert!(e.to_string().contains("invalid URL"), "{e}");
        }
    }

    #[test]
    fn joins() {
        let b = Url::parse("http://h/a/b/c?q").unwrap();
        let j = |r: &str| b.join(r).unwrap().to_string();
        assert_eq!(j("d"), "http://h/a/b/d");
        assert_eq!(j("../d"), "http://h/a/d");
        assert_eq!(j("../../../../d"), "http://h/d");
        assert_eq!(j("./"), "http://h/a/b/");
        assert_eq!(j(""), "http://h/a/b/c?q");
        assert_eq!(j("#f"), "http://h/a/b/c?q");
        assert_eq!(j("//x:1/y"), "http://x:1/y");
        assert_eq!(j("HTTPS://X/"), "https://x/");
    }
}
