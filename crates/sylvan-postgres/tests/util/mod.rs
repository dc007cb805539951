//! Helpers shared by the integration tests.
#![allow(dead_code)]

use sylvan_postgres::test_server::TempServer;

/// Fails the test, in one line naming what is missing and the command that
/// installs it, unless `present` (the pattern of sylvan's own tests: no
/// silent skips; `scripts/test.sh` installs everything).
#[track_caller]
pub fn require(present: bool, what: &str, install: &str) {
    assert!(
        present,
        "this test needs {what}, which is missing: install it with `{install}` \
         (scripts/test.sh installs everything the tests need)"
    );
}

/// A fresh PostgreSQL server for one test, stopped and deleted on drop.
#[track_caller]
pub fn server() -> TempServer {
    require(
        TempServer::bin_dir().is_some(),
        "PostgreSQL (initdb, postgres)",
        "apt-get install -y postgresql",
    );
    TempServer::start().expect("start a private PostgreSQL server")
}
