//! HTTPS: the server's connection engine over a TLS stream.

use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use super::conn::Transport;
use super::upgrade::UpgradedIo;
use crate::net::tls::SharedTls;

impl Transport for SharedTls {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        SharedTls::read(self, buf)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        SharedTls::write(self, buf)
    }

    fn set_read_timeout(&self, t: Option<Duration>) {
        let _ = self
            .tcp()
            .set_read_timeout(t.map(|d| d.max(Duration::from_millis(1))));
    }

    fn shutdown(&self, how: Shutdown) {
        if how != Shutdown::Read {
            // Never blocks: this also runs from the server's stop, in
            // another green thread than the connection's.
            self.close_notify_nowait();
        }
        let _ = self.tcp().shutdown(how);
    }

    fn now(&self) -> Instant {
        crate::time::now()
    }

    fn into_upgraded(self) -> Option<UpgradedIo> {
        Some(UpgradedIo::Tls(Box::new(self)))
    }
}
