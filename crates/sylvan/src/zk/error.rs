//! [`Error`] and the server's error [`Code`]s.

use std::fmt;
use std::io;

use crate::cancel::Cancelled;

/// An error code the server answered with (`KeeperException.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// The node does not exist.
    NoNode,
    /// The node exists already.
    NodeExists,
    /// The expected version did not match the node's.
    BadVersion,
    /// The node has children and cannot be deleted.
    NotEmpty,
    /// Ephemeral nodes cannot have children.
    NoChildrenForEphemerals,
    /// The ACL forbids it.
    NoAuth,
    /// The ACL is invalid.
    InvalidAcl,
    /// The arguments are invalid.
    BadArguments,
    /// The session has expired.
    SessionExpired,
    /// The session moved to another server.
    SessionMoved,
    /// The server is read-only.
    NotReadOnly,
    /// The server is throttling requests.
    Throttled,
    /// The quota was exceeded.
    QuotaExceeded,
    /// Another code, by number.
    Other(i32),
}

impl Code {
    pub(crate) fn from_i32(n: i32) -> Code {
        match n {
            -101 => Code::NoNode,
            -110 => Code::NodeExists,
            -103 => Code::BadVersion,
            -111 => Code::NotEmpty,
            -108 => Code::NoChildrenForEphemerals,
            -102 => Code::NoAuth,
            -114 => Code::InvalidAcl,
            -8 => Code::BadArguments,
            -112 => Code::SessionExpired,
            -118 => Code::SessionMoved,
            -119 => Code::NotReadOnly,
            -127 => Code::Throttled,
            -125 => Code::QuotaExceeded,
            n => Code::Other(n),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::NoNode => f.write_str("no such node"),
            Code::NodeExists => f.write_str("node exists"),
            Code::BadVersion => f.write_str("version mismatch"),
            Code::NotEmpty => f.write_str("node has children"),
            Code::NoChildrenForEphemerals => f.write_str("ephemeral nodes may not have children"),
            Code::NoAuth => f.write_str("not authorized"),
            Code::InvalidAcl => f.write_str("invalid ACL"),
            Code::BadArguments => f.write_str("bad arguments"),
            Code::SessionExpired => f.write_str("session expired"),
            Code::SessionMoved => f.write_str("session moved to another server"),
            Code::NotReadOnly => f.write_str("server is read-only"),
            Code::Throttled => f.write_str("request throttled"),
            Code::QuotaExceeded => f.write_str("quota exceeded"),
            Code::Other(n) => write!(f, "server error {n}"),
        }
    }
}

/// Why a ZooKeeper operation failed.
///
/// Converts into `io::Error` with a fitting kind (`NotFound` for
/// [`Code::NoNode`], `AlreadyExists` for [`Code::NodeExists`],
/// `ConnectionAborted` for a connection loss, `TimedOut` for a deadline,
/// `InvalidData` for a protocol error, …).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The server refused the operation on `path`.
    Server {
        /// What the server said.
        code: Code,
        /// The path the operation was about.
        path: String,
    },
    /// The connection dropped before the reply came, or none came back in
    /// time. The request may or may not have been applied: read again
    /// before retrying anything that is not idempotent.
    ConnectionLoss(String),
    /// The session expired: every ephemeral node and watch of it is gone.
    SessionExpired,
    /// The peer is not a ZooKeeper server, or sent a malformed or oversized
    /// reply.
    Protocol(String),
    /// The arguments were refused before anything was sent (e.g. a
    /// relative path).
    BadArguments(String),
    /// No session could be established (every server refused, timed out or
    /// was not ZooKeeper); carries the last attempt's error.
    Connect(io::Error),
    /// The client was closed.
    Closed,
    /// The calling green thread was killed or its deadline passed.
    Cancelled(Cancelled),
}

impl Error {
    /// The server's code, if the server refused the operation.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Server { code, .. } => Some(*code),
            Error::SessionExpired => Some(Code::SessionExpired),
            _ => None,
        }
    }

    /// Whether this is the server's [`Code::NoNode`].
    pub fn is_no_node(&self) -> bool {
        self.code() == Some(Code::NoNode)
    }

    /// Whether this is the server's [`Code::NodeExists`].
    pub fn is_node_exists(&self) -> bool {
        self.code() == Some(Code::NodeExists)
    }

    /// Whether the outcome is unknown because the connection dropped: the
    /// request may have been applied.
    pub fn is_connection_loss(&self) -> bool {
        matches!(self, Error::ConnectionLoss(_))
    }

    pub(crate) fn server(code: i32, path: &str) -> Error {
        match Code::from_i32(code) {
            Code::SessionExpired => Error::SessionExpired,
            code => Error::Server {
                code,
                path: path.to_string(),
            },
        }
    }

    /// A copy for fanning one failure out to many waiters.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Server { code, path } => Error::Server {
                code: *code,
                path: path.clone(),
            },
            Error::ConnectionLoss(s) => Error::ConnectionLoss(s.clone()),
            Error::SessionExpired => Error::SessionExpired,
            Error::Protocol(s) => Error::Protocol(s.clone()),
            Error::BadArguments(s) => Error::BadArguments(s.clone()),
            Error::Connect(e) => Error::Connect(io::Error::new(e.kind(), e.to_string())),
            Error::Closed => Error::Closed,
            Error::Cancelled(c) => Error::Cancelled(*c),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Server { code, path } => write!(f, "zookeeper: {path}: {code}"),
            Error::ConnectionLoss(why) => write!(f, "zookeeper: connection lost: {why}"),
            Error::SessionExpired => f.write_str("zookeeper: session expired"),
            Error::Protocol(why) => write!(f, "zookeeper: protocol error: {why}"),
            Error::BadArguments(why) => write!(f, "zookeeper: {why}"),
            Error::Connect(e) => write!(f, "zookeeper: could not establish a session: {e}"),
            Error::Closed => f.write_str("zookeeper: client is closed"),
            Error::Cancelled(c) => write!(f, "zookeeper: {c}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect(e) => Some(e),
            Error::Cancelled(c) => Some(c),
            _ => None,
        }
    }
}

impl From<Cancelled> for Error {
    fn from(c: Cancelled) -> Error {
        Error::Cancelled(c)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Server { code, .. } => match code {
                Code::NoNode => io::ErrorKind::NotFound,
                Code::NodeExists => io::ErrorKind::AlreadyExists,
                Code::NoAuth => io::ErrorKind::PermissionDenied,
                Code::BadArguments | Code::InvalidAcl => io::ErrorKind::InvalidInput,
                _ => io::ErrorKind::Other,
            },
            Error::ConnectionLoss(_) => io::ErrorKind::ConnectionAborted,
            Error::SessionExpired => io::ErrorKind::ConnectionReset,
            Error::Protocol(_) => io::ErrorKind::InvalidData,
            Error::BadArguments(_) => io::ErrorKind::InvalidInput,
            Error::Connect(e) => e.kind(),
            Error::Closed => io::ErrorKind::NotConnected,
            Error::Cancelled(c) => return (*c).into(),
        };
        io::Error::new(kind, e)
    }
}
