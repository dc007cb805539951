//! [`ZkUrl`]: `zk://HOST:PORT[,HOST:PORT...]/PATH`.

use std::fmt;
use std::str::FromStr;

use super::error::Error;
use super::types::validate_path;

/// An ensemble and a znode path in one string, as the `sylvan` CLI takes
/// them: `zk://HOST:PORT[,HOST:PORT...]/PATH`.
///
/// # Examples
///
/// ```
/// use sylvan::zk::ZkUrl;
///
/// let u: ZkUrl = "zk://10.0.0.1:2181,10.0.0.2:2181/services/echo".parse().unwrap();
/// assert_eq!(u.hosts, "10.0.0.1:2181,10.0.0.2:2181");
/// assert_eq!(u.path, "/services/echo");
/// assert!("http://x/y".parse::<ZkUrl>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ZkUrl {
    /// The host list, for [`Client::builder`](super::Client::builder).
    pub hosts: String,
    /// The znode path (absolute).
    pub path: String,
}

impl FromStr for ZkUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<ZkUrl, Error> {
        let bad = |why: &str| {
            Error::BadArguments(format!(
                "invalid ZooKeeper URL {s:?}: {why} (expected zk://HOST:PORT[,HOST:PORT...]/PATH)"
            ))
        };
        let rest = s
            .strip_prefix("zk://")
            .ok_or_else(|| bad("must start with zk://"))?;
        let (hosts, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => return Err(bad("no path")),
        };
        if hosts.is_empty() {
            return Err(bad("no hosts"));
        }
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        validate_path(path, false).map_err(|e| bad(&e))?;
        Ok(ZkUrl {
            hosts: hosts.to_string(),
            path: path.to_string(),
        })
    }
}

impl fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zk://{}{}", self.hosts, self.path)
    }
}
