//! `Send`/`Sync` of every public type, checked at compile time (in the
//! style of tokio's `tests/async_send_sync.rs`).
//!
//! A green thread never leaves its OS thread, so everything bound to a hub
//! — handles to green threads, sockets registered with the hub's poller,
//! `Rc` state shared by the green threads of one OS thread — must be
//! `!Send` and `!Sync`: on another OS thread it would touch that hub
//! without a lock. Types made to cross threads (channels, `Runtime`,
//! `compat` hub handles, the retry budget, TLS configs) must stay `Send`
//! (and `Sync`), and so must plain values and errors, so they can travel
//! in a cross-thread channel or a `JoinHandle`.
//!
//! Nothing here runs: the file compiles or it doesn't. `assert_value!(T:
//! Send & Sync)` fails to compile with "the trait bound `T: Send` is not
//! satisfied" when `T` is not `Send`; `assert_value!(T: !Send & !Sync)`
//! fails with "type annotations needed" (two impls of `AmbiguousIfSend`
//! apply) when `T` is `Send`. Generic types are checked with `Send + Sync`
//! arguments, so what is asserted is the type's own property.

#![allow(dead_code, clippy::diverging_sub_expression)]

use std::io;
use std::rc::Rc;

fn require_send<T: Send>(_: &T) {}
fn require_sync<T: Sync>(_: &T) {}

struct Invalid;

/// Implemented twice for `Send` types, so calling `some_item` on one is
/// ambiguous and fails to compile.
trait AmbiguousIfSend<A> {
    fn some_item(&self) {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}

/// As [`AmbiguousIfSend`], for `Sync`.
trait AmbiguousIfSync<A> {
    fn some_item(&self) {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
impl<T: ?Sized + Sync> AmbiguousIfSync<Invalid> for T {}

macro_rules! check_send {
    (Send & $(!)?Sync, $v:expr) => {
        require_send(&$v)
    };
    (!Send & $(!)?Sync, $v:expr) => {
        AmbiguousIfSend::some_item(&$v)
    };
}

macro_rules! check_sync {
    ($(!)?Send & Sync, $v:expr) => {
        require_sync(&$v)
    };
    ($(!)?Send & !Sync, $v:expr) => {
        AmbiguousIfSync::some_item(&$v)
    };
}

/// `assert_value!(Type: Send & Sync)`, `Send & !Sync`, `!Send & !Sync`.
macro_rules! assert_value {
    ($type:ty: $($tok:tt)*) => {
        #[allow(unreachable_code, unused_variables)]
        const _: fn() = || {
            let v: $type = todo!();
            check_send!($($tok)*, v);
            check_sync!($($tok)*, v);
        };
    };
}

/// A `Send + Sync` connection type for the generic resilience types.
type Conn = std::net::TcpStream;

// --- Hub-bound: green threads and their groups --------------------------

assert_value!(sylvan::GreenThread<u8>: !Send & !Sync);
assert_value!(sylvan::GreenPool: !Send & !Sync);
assert_value!(sylvan::GreenPile<u8>: !Send & !Sync);
assert_value!(sylvan::pool::Imap<std::vec::IntoIter<u8>, u8>: !Send & !Sync);

// --- Hub-bound: sync (one hub's green threads) ---------------------------

assert_value!(sylvan::sync::Event<u8>: !Send & !Sync);
assert_value!(sylvan::sync::Semaphore: !Send & !Sync);
assert_value!(sylvan::sync::SemaphorePermit: !Send & !Sync);
assert_value!(sylvan::sync::Queue<u8>: !Send & !Sync);
assert_value!(sylvan::sync::Watch<u8>: !Send & !Sync);
assert_value!(sylvan::sync::WatchReceiver<u8>: !Send & !Sync);
// A green-local key is a `static`: shareable, its values are not.
assert_value!(sylvan::GreenLocal<std::cell::Cell<u8>>: Send & Sync);
assert_value!(sylvan::local::AccessError: Send & Sync);

// --- Hub-bound: sockets, registered with one hub's poller ----------------

assert_value!(sylvan::net::TcpStream: !Send & !Sync);
assert_value!(sylvan::net::TcpListener: !Send & !Sync);
assert_value!(sylvan::net::Incoming<'static>: !Send & !Sync);
assert_value!(sylvan::net::UdpSocket: !Send & !Sync);
assert_value!(sylvan::net::UnixStream: !Send & !Sync);
assert_value!(sylvan::net::UnixListener: !Send & !Sync);
assert_value!(sylvan::net::ServerHandle: !Send & !Sync);
// A `Connector` may carry a custom resolver closure, which need not be
// `Send`; build one on each hub.
assert_value!(sylvan::net::Connector: !Send & !Sync);
#[cfg(feature = "tls")]
assert_value!(sylvan::net::tls::TlsStream<sylvan::net::tls::rustls::ClientConnection>: !Send & !Sync);
#[cfg(feature = "tls")]
assert_value!(sylvan::net::tls::TlsStream<sylvan::net::tls::rustls::ServerConnection>: !Send & !Sync);

// --- Hub-bound: HTTP server and WebSocket --------------------------------

assert_value!(sylvan::http::Server: !Send & !Sync);
assert_value!(sylvan::http::ServerHandle: !Send & !Sync);
assert_value!(sylvan::http::Request: !Send & !Sync);
assert_value!(sylvan::http::RequestBody: !Send & !Sync);
assert_value!(sylvan::http::Response: !Send & !Sync);
assert_value!(sylvan::http::Body: !Send & !Sync);
assert_value!(sylvan::http::Upgraded: !Send & !Sync);
assert_value!(sylvan::http::Client: !Send & !Sync);
assert_value!(sylvan::http::ClientBuilder: !Send & !Sync);
assert_value!(sylvan::http::RequestBuilder: !Send & !Sync);
assert_value!(sylvan::http::ClientResponse: !Send & !Sync);
assert_value!(sylvan::http::ResponseBody: !Send & !Sync);
assert_value!(sylvan::websocket::WebSocket: !Send & !Sync);
// Holds a `Connector` (see above).
assert_value!(sylvan::websocket::ClientBuilder: !Send & !Sync);
assert_value!(sylvan::websocket::Options: Send & Sync);

// --- Hub-bound: resilience ------------------------------------------------

assert_value!(sylvan::resilience::CircuitBreaker: !Send & !Sync);
assert_value!(sylvan::resilience::Permit: !Send & !Sync);
assert_value!(sylvan::resilience::Reconnecting<Conn>: !Send & !Sync);
assert_value!(sylvan::resilience::Session: !Send & !Sync);
assert_value!(sylvan::resilience::Pool<Conn>: !Send & !Sync);
assert_value!(sylvan::resilience::Pooled<Conn>: !Send & !Sync);
// Builders holding the user's closures, which run on the hub and need not
// be `Send`.
assert_value!(sylvan::resilience::ReconnectingBuilder<Conn>: !Send & !Sync);
assert_value!(sylvan::resilience::SessionBuilder: !Send & !Sync);
assert_value!(sylvan::resilience::PoolBuilder<Conn>: !Send & !Sync);

// --- Hub-bound: chaos and ZooKeeper ---------------------------------------

assert_value!(sylvan::chaos::ChaosProxy: !Send & !Sync);
assert_value!(sylvan::chaos::Registry: !Send & !Sync);
#[cfg(feature = "chaos-api")]
assert_value!(sylvan::chaos::api::ApiServer: !Send & !Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::Client: !Send & !Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::ClientBuilder: !Send & !Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::Registration: !Send & !Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::Discovery: !Send & !Sync);

// --- Cross-thread by design -----------------------------------------------

assert_value!(sylvan::Runtime: Send & Sync);
assert_value!(sylvan::RuntimeBuilder: Send & Sync);
assert_value!(sylvan::sync::Sender<u8>: Send & Sync);
assert_value!(sylvan::sync::Receiver<u8>: Send & Sync);
// ...but only for values that may cross threads themselves.
assert_value!(sylvan::sync::Sender<Rc<u8>>: !Send & !Sync);
assert_value!(sylvan::sync::Receiver<Rc<u8>>: !Send & !Sync);
assert_value!(sylvan::compat::HubHandle: Send & Sync);
assert_value!(sylvan::compat::RemoteJoinHandle<u8>: Send & Sync);
assert_value!(sylvan::compat::RemoteJoinHandle<Rc<u8>>: !Send & !Sync);
// An atomic token bucket, documented as shareable by several hubs.
assert_value!(sylvan::resilience::RetryBudget: Send & Sync);
#[cfg(feature = "tls")]
assert_value!(sylvan::net::tls::TlsConnector: Send & Sync);
#[cfg(feature = "tls")]
assert_value!(sylvan::net::tls::TlsAcceptor: Send & Sync);
// `tpool` has no types of its own: `tpool::execute` takes `Send` closures
// and results by its signature.

// --- Plain values and settings ---------------------------------------------

assert_value!(sylvan::GreenId: Send & Sync);
// A snapshot (id and name) of the context running now, not a handle.
assert_value!(sylvan::Current: Send & Sync);
assert_value!(sylvan::Builder: Send & Sync);
assert_value!(sylvan::ScopeId: Send & Sync);
assert_value!(sylvan::sync::QueueOrder: Send & Sync);
assert_value!(sylvan::net::ListenOptions: Send & Sync);
assert_value!(sylvan::net::ServeOptions: Send & Sync);
assert_value!(sylvan::net::StopReport: Send & Sync);
assert_value!(sylvan::http::Headers: Send & Sync);
assert_value!(sylvan::http::Version: Send & Sync);
assert_value!(sylvan::http::Url: Send & Sync);
assert_value!(sylvan::websocket::Options: Send & Sync);
assert_value!(sylvan::resilience::Backoff: Send & Sync);
assert_value!(sylvan::resilience::Jitter: Send & Sync);
assert_value!(sylvan::resilience::Retry: Send & Sync);
assert_value!(sylvan::resilience::Attempt: Send & Sync);
assert_value!(sylvan::resilience::StopReason: Send & Sync);
assert_value!(sylvan::resilience::CircuitBreakerBuilder: Send & Sync);
assert_value!(sylvan::resilience::BreakerState: Send & Sync);
assert_value!(sylvan::resilience::BreakerMetrics: Send & Sync);
assert_value!(sylvan::resilience::ConnState: Send & Sync);
assert_value!(sylvan::resilience::SessionState: Send & Sync);
// Interval and timeout only; `run` borrows the connection.
assert_value!(sylvan::resilience::Heartbeat: Send & Sync);
assert_value!(sylvan::resilience::PoolState: Send & Sync);
assert_value!(sylvan::chaos::ProxyBuilder: Send & Sync);
assert_value!(sylvan::chaos::ProxyStats: Send & Sync);
assert_value!(sylvan::chaos::Toxic: Send & Sync);
assert_value!(sylvan::chaos::ToxicInfo: Send & Sync);
assert_value!(sylvan::chaos::Direction: Send & Sync);
assert_value!(sylvan::chaos::ProxyConfig: Send & Sync);
assert_value!(sylvan::chaos::ProxyState: Send & Sync);
assert_value!(sylvan::chaos::ProxyUpdate: Send & Sync);
assert_value!(sylvan::debug::HubStats: Send & Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::ZkUrl: Send & Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::Stat: Send & Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::CreateMode: Send & Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::Acl: Send & Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::Member: Send & Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::EventKind: Send & Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::WatchEvent: Send & Sync);

// --- Errors -----------------------------------------------------------------

assert_value!(sylvan::Cancelled: Send & Sync);
assert_value!(sylvan::Elapsed: Send & Sync);
// Errors carrying a panic payload (`Box<dyn Any + Send>`) are `Send` but
// not `Sync`, as std's `thread::Result` is: they can't go into
// `Box<dyn Error + Send + Sync>` or `io::Error::other` as they are.
assert_value!(sylvan::JoinError: Send & !Sync);
assert_value!(sylvan::compat::RemoteJoinError: Send & !Sync);
#[cfg(feature = "tokio")]
assert_value!(sylvan::compat::tokio::RunError: Send & !Sync);
#[cfg(feature = "tokio")]
assert_value!(sylvan::compat::tokio::AlreadyStarted: Send & Sync);
assert_value!(sylvan::pool::SpawnError<fn()>: Send & Sync);
assert_value!(sylvan::sync::SendError<u8>: Send & Sync);
assert_value!(sylvan::sync::TrySendError<u8>: Send & Sync);
assert_value!(sylvan::sync::RecvError: Send & Sync);
assert_value!(sylvan::sync::TryRecvError: Send & Sync);
assert_value!(sylvan::sync::PutError<u8>: Send & Sync);
assert_value!(sylvan::sync::TryPutError<u8>: Send & Sync);
assert_value!(sylvan::sync::OverLimit: Send & Sync);
assert_value!(sylvan::websocket::Error: Send & Sync);
assert_value!(sylvan::resilience::RetryError<io::Error>: Send & Sync);
assert_value!(sylvan::resilience::BreakerError<io::Error>: Send & Sync);
assert_value!(sylvan::resilience::CallError: Send & Sync);
assert_value!(sylvan::resilience::PoolError: Send & Sync);
assert_value!(sylvan::chaos::ChaosError: Send & Sync);
assert_value!(sylvan::chaos::RegistryError: Send & Sync);
#[cfg(feature = "chaos-api")]
assert_value!(sylvan::chaos::api::ApiError: Send & Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::Code: Send & Sync);
#[cfg(feature = "zookeeper")]
assert_value!(sylvan::zk::Error: Send & Sync);
