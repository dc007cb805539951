//! Which proxy a request goes through: one per scheme, and the `NO_PROXY`
//! exceptions, read from the environment as curl does.

use std::io;
use std::net::IpAddr;

use super::url::Url;

/// The proxies of a client, and the hosts that bypass them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Proxies {
    pub(crate) http: Option<Url>,
    pub(crate) https: Option<Url>,
    pub(crate) no_proxy: NoProxy,
}

impl Proxies {
    /// The proxy for `url`, if any.
    pub(crate) fn for_url(&self, url: &Url) -> Option<&Url> {
        let p = if url.is_https() {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        };
        p.filter(|_| !self.no_proxy.matches(url.host()))
    }

    /// curl's rules over `var` (the environment, or a stand-in in tests):
    /// `http_proxy` (lower case only: `HTTP_PROXY` may be set by a CGI
    /// request's `Proxy:` header), `HTTPS_PROXY` or `https_proxy`,
    /// `ALL_PROXY` or `all_proxy` for a scheme without its own, and
    /// `NO_PROXY` or `no_proxy`; the lower-case name wins when both are
    /// set. An empty value counts as unset.
    pub(crate) fn from_vars(var: impl Fn(&str) -> Option<String>) -> io::Result<Proxies> {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
        };
        let all = get(&["all_proxy", "ALL_PROXY"]);
        let parse = |v: Option<String>, name: &str| -> io::Result<Option<Url>> {
            v.or_else(|| all.clone())
                .map(|v| {
                    parse_proxy(v.trim()).map_err(|e| {
                        io::Error::new(e.kind(), format!("the {name} proxy variable: {e}"))
                    })
                })
                .transpose()
        };
        Ok(Proxies {
            http: parse(get(&["http_proxy"]), "http_proxy")?,
            https: parse(get(&["https_proxy", "HTTPS_PROXY"]), "https_proxy")?,
            no_proxy: NoProxy::parse(&get(&["no_proxy", "NO_PROXY"]).unwrap_or_default()),
        })
    }
}

/// A proxy as the variables give it: a URL, or `host:port` meaning
/// `http://host:port`.
pub(crate) fn parse_proxy(s: &str) -> io::Result<Url> {
    if s.contains("://") {
        Url::parse(s)
    } else {
        Url::parse(&format!("http://{s}"))
    }
}

/// `NO_PROXY` as curl reads it: a comma-separated list of `*` (every
/// host), host names (matching the name and its subdomains; a leading dot
/// is ignored), IP addresses, and IP ranges in CIDR notation. A `:port`
/// on an entry is ignored, matching case-insensitively.
#[derive(Debug, Clone, Default)]
pub(crate) struct NoProxy {
    all: bool,
    names: Vec<String>,
    nets: Vec<(IpAddr, u8)>,
}

impl NoProxy {
    pub(crate) fn parse(list: &str) -> NoProxy {
        let mut np = NoProxy::default();
        for entry in list.split([',', ' ']).map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                np.all = true;
                continue;
            }
            let (addr, bits) = match entry.split_once('/') {
                Some((a, b)) => (a, b.parse::<u8>().ok()),
                None => (entry, None),
            };
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = addr.parse::<IpAddr>() {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                np.nets.push((ip, bits.unwrap_or(max).min(max)));
                continue;
            }
            // A name, maybe with a port (ignored) and a leading dot.
            let name = match entry.rsplit_once(':') {
                Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => entry,
            };
            let name = name.trim_start_matches('.').trim_end_matches('.');
            if !name.is_empty() {
                np.names.push(name.to_ascii_lowercase());
            }
        }
        np
    }

    /// Whether `host` (a name or an IP address, IPv6 without brackets)
    /// bypasses the proxy.
    pub(crate) fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.nets.iter().any(|&(net, bits)| in_net(ip, net, bits));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|n| {
            host == *n
                || (host.len() > n.len()
                    && host.ends_with(n.as_str())
                    && host.as_bytes()[host.len() - n.len() - 1] == b'.')
        })
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (a, b, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let bits = u32::from(bits);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn no_proxy_matches_as_curl_does() {
        let np = NoProxy::parse("example.com, .internal,10.0.0.0/8 ,::1, 192.168.1.7,host:8080");
        for yes in [
            "example.com",
            "www.example.com",
            "a.b.EXAMPLE.com",
            "internal",
            "db.internal",
            "10.200.3.4",
            "::1",
            "192.168.1.7",
            "host",
        ] {
            assert!(np.matches(yes), "{yes} should bypass the proxy");
        }
        for no in [
            "notexample.com",
            "example.com.evil",
            "11.0.0.1",
            "192.168.1.8",
            "::2",
            "otherhost",
            "xinternal",
        ] {
            assert!(!np.matches(no), "{no} should use the proxy");
        }
        assert!(NoProxy::parse("*").matches("anything.at.all"));
        assert!(!NoProxy::parse("").matches("example.com"));
        assert!(NoProxy::parse("0.0.0.0/0").matches("8.8.8.8"));
    }

    #[test]
    fn variables_follow_curl() {
        // Upper-case HTTP_PROXY is ignored (the CGI "httpoxy" rule).
        let p = Proxies::from_vars(vars(&[("HTTP_PROXY", "evil:1")])).unwrap();
        assert!(p.http.is_none());
        let p = Proxies::from_vars(vars(&[
            ("http_proxy", "http://p1:3128"),
            ("HTTPS_PROXY", "p2:3129"),
            ("NO_PROXY", "localhost,.corp"),
        ]))
        .unwrap();
        assert_eq!(p.for_url(&url("http://a.example/")).unwrap().port(), 3128);
        let https = p.for_url(&url("https://a.example/")).unwrap();
        assert_eq!((https.host(), https.port()), ("p2", 3129));
        assert!(p.for_url(&url("http://localhost/")).is_none());
        assert!(p.for_url(&url("https://git.corp/")).is_none());
        // ALL_PROXY fills in for a scheme without its own; lower case wins.
        let p = Proxies::from_vars(vars(&[
            ("ALL_PROXY", "all:1"),
            ("https_proxy", "lower:2"),
            ("HTTPS_PROXY", "upper:3"),
            ("no_proxy", "*"),
        ]))
        .unwrap();
        assert_eq!(p.http.as_ref().unwrap().host(), "all");
        assert_eq!(p.https.as_ref().unwrap().host(), "lower");
        assert!(p.for_url(&url("http://a/")).is_none());
        // A bad value is an error naming the variable.
        let err = Proxies::from_vars(vars(&[("http_proxy", "http://[bad")])).unwrap_err();
        assert!(err.to_string().contains("http_proxy"), "{err}");
    }
}
