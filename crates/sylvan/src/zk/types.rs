//! Plain data of the ZooKeeper API: [`Stat`], [`CreateMode`], [`Acl`].

use std::fmt;

/// The metadata of a znode (ZooKeeper's `Stat`).
///
/// zxids are ZooKeeper transaction ids; times are milliseconds since the
/// Unix epoch, as the server's clock saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stat {
    /// The zxid of the change that created this node.
    pub czxid: i64,
    /// The zxid of the change that last modified this node's data.
    pub mzxid: i64,
    /// When this node was created (ms since the epoch).
    pub ctime: i64,
    /// When this node's data was last modified (ms since the epoch).
    pub mtime: i64,
    /// How many times the data changed: the version for
    /// [`set_data`](super::Client::set_data) and
    /// [`delete`](super::Client::delete).
    pub version: i32,
    /// How many times the children changed.
    pub cversion: i32,
    /// How many times the ACL changed.
    pub aversion: i32,
    /// The session id of the owner if this is an ephemeral node, else 0.
    pub ephemeral_owner: i64,
    /// The length of the data.
    pub data_length: i32,
    /// How many children it has.
    pub num_children: i32,
    /// The zxid of the change that last modified its children.
    pub pzxid: i64,
}

/// How [`create`](super::Client::create) makes a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CreateMode {
    /// Stays until deleted.
    Persistent,
    /// Deleted when the session that made it ends.
    Ephemeral,
    /// Persistent, with a 10-digit, monotonically increasing counter
    /// appended to the name by the server.
    PersistentSequential,
    /// Ephemeral and sequential.
    EphemeralSequential,
}

impl CreateMode {
    pub(crate) fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
        }
    }

    /// Whether the server appends a sequence number.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential | CreateMode::EphemeralSequential
        )
    }

    /// Whether the node ends with its session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }
}

/// One access-control entry: permissions for an identity.
///
/// # Examples
///
/// ```
/// use sylvan::zk::Acl;
///
/// let open = Acl::open_unsafe();
/// assert_eq!(open[0].perms, Acl::ALL);
/// assert_eq!((open[0].scheme.as_str(), open[0].id.as_str()), ("world", "anyone"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Acl {
    /// A bit set of [`READ`](Self::READ), [`WRITE`](Self::WRITE),
    /// [`CREATE`](Self::CREATE), [`DELETE`](Self::DELETE),
    /// [`ADMIN`](Self::ADMIN).
    pub perms: u32,
    /// The scheme: `world`, `auth`, `digest`, `ip`, …
    pub scheme: String,
    /// The identity within the scheme (`anyone` for `world`).
    pub id: String,
}

impl Acl {
    /// May read the data and list the children.
    pub const READ: u32 = 1;
    /// May set the data.
    pub const WRITE: u32 = 2;
    /// May create children.
    pub const CREATE: u32 = 4;
    /// May delete children.
    pub const DELETE: u32 = 8;
    /// May set the ACL.
    pub const ADMIN: u32 = 16;
    /// Every permission.
    pub const ALL: u32 = 31;

    /// Anyone may do anything (ZooKeeper's `OPEN_ACL_UNSAFE`), the default
    /// of [`create`](super::Client::create).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: Acl::ALL,
            scheme: "world".into(),
            id: "anyone".into(),
        }]
    }

    /// Anyone may read, nobody may change (`READ_ACL_UNSAFE`).
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: Acl::READ,
            scheme: "world".into(),
            id: "anyone".into(),
        }]
    }
}

impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{:#x}", self.scheme, self.id, self.perms)
    }
}

/// Checks a znode path the way the server would, before sending it:
/// absolute, no empty, `.` or `..` segments, no trailing `/` (except the
/// root, or a sequential name's prefix), no NUL.
pub(crate) fn validate_path(path: &str, sequential: bool) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid znode path {path:?}: {why}"));
    if !path.starts_with('/') {
        return bad("must start with '/'");
    }
    if path.contains('\0') {
        return bad("contains a NUL character");
    }
    if path == "/" {
        return if sequential {
            bad("the root cannot be sequential")
        } else {
            Ok(())
        };
    }
    let body = if sequential && path.ends_with('/') {
        &path[1..path.len() - 1]
    } else {
        &path[1..]
    };
    if !sequential && path.ends_with('/') {
        return bad("must not end with '/'");
    }
    for seg in body.split('/') {
        match seg {
            "" if !(sequential && body.is_empty()) => return bad("has an empty segment"),
            "." | ".." => return bad("has a relative segment"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_path;

    #[test]
    fn paths() {
        for ok in ["/", "/a", "/a/b", "/a-b/c.d"] {
            assert!(validate_path(ok, false).is_ok(), "{ok}");
        }
        for bad in ["", "a", "/a/", "//a", "/a//b", "/a/./b", "/..", "/a\0"] {
            assert!(validate_path(bad, false).is_err(), "{bad:?}");
        }
        assert!(validate_path("/a/", true).is_ok());
        assert!(validate_path("/a/n-", true).is_ok());
        assert!(validate_path("/", true).is_err());
    }
}
