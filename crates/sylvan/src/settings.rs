//! The error of a setting that makes no sense; see the crate docs'
//! [`# Invalid settings`](crate#invalid-settings).

use std::fmt::Display;
use std::io;

/// `InvalidInput`: `{setting}({value}): {rule}`, e.g.
/// `CircuitBreaker count_window(0): the window must hold at least 1 call`.
pub(crate) fn invalid(setting: &str, value: impl Display, rule: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid setting {setting}({value}): {rule}"),
    )
}
