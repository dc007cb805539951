//! `Send`/`Sync` of every public type of sylvan-postgres, checked at
//! compile time (the machinery of sylvan's own `tests/send_sync.rs`).
//!
//! A session is bound to its hub (its socket is registered with the hub's
//! poller; a pool is `Rc` state of one hub's green threads), so `Client`,
//! `Transaction` and `PgPool` are `!Send & !Sync`. Settings, rows, errors
//! and cancel tokens are plain values: `Send + Sync`, so they can cross
//! threads (a `CancelToken` can be handed to another hub).

#![allow(dead_code, clippy::diverging_sub_expression)]

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

assert_value!(sylvan_postgres::Client: !Send & !Sync);
assert_value!(sylvan_postgres::Transaction<'static>: !Send & !Sync);
assert_value!(sylvan_postgres::PgPool: !Send & !Sync);

assert_value!(sylvan_postgres::Config: Send & Sync);
assert_value!(sylvan_postgres::PgPoolBuilder: Send & Sync);
assert_value!(sylvan_postgres::Row: Send & Sync);
assert_value!(sylvan_postgres::Error: Send & Sync);
assert_value!(sylvan_postgres::DbError: Send & Sync);
assert_value!(sylvan_postgres::TxStatus: Send & Sync);
assert_value!(sylvan_postgres::CancelToken: Send & Sync);
assert_value!(sylvan_postgres::test_server::TempServer: Send & Sync);
