//! The byte stream under a WebSocket session: plain TCP or TLS, server
//! side (an upgraded HTTPS connection) or client side (`wss://`).

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;

use crate::http::UpgradedIo;
use crate::net::TcpStream;

#[derive(Debug)]
pub(crate) enum WsStream {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<crate::net::tls::SharedTls>),
}

impl From<UpgradedIo> for WsStream {
    fn from(io: UpgradedIo) -> WsStream {
        match io {
            UpgradedIo::Tcp(s) => WsStream::Tcp(s),
            #[cfg(feature = "tls")]
            UpgradedIo::Tls(s) => WsStream::Tls(s),
        }
    }
}

impl WsStream {
    /// The TCP stream (under TLS, the one the records travel on).
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            WsStream::Tcp(s) => s,
            #[cfg(feature = "tls")]
            WsStream::Tls(s) => s.tcp(),
        }
    }

    /// Reads without waiting: `WouldBlock` when nothing is there.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            WsStream::Tcp(s) => {
                // The fd is non-blocking: a plain read returns `WouldBlock`
                // when nothing is buffered.
                let sock = socket2::SockRef::from(s);
                (&*sock).read(buf)
            }
            #[cfg(feature = "tls")]
            WsStream::Tls(s) => s.try_read(buf),
        }
    }

    /// A green blocking read (with the socket's read timeout).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            WsStream::Tcp(s) => (&*s).read(buf),
            #[cfg(feature = "tls")]
            WsStream::Tls(s) => s.read(buf),
        }
    }

    /// Writes all of `buf` (green blocking, with the write timeout).
    pub(crate) fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A green blocking write (with the socket's write timeout).
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            WsStream::Tcp(s) => (&*s).write(buf),
            #[cfg(feature = "tls")]
            WsStream::Tls(s) => s.write(buf),
        }
    }

    /// Ends our direction without waiting (TLS: `close_notify` first).
    pub(crate) fn shutdown_write(&self) {
        match self {
            WsStream::Tcp(_) => {}
            #[cfg(feature = "tls")]
            WsStream::Tls(s) => s.close_notify_nowait(),
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }
}

/// The stream as a session sees it: reads never wait (the session waits
/// for readability itself, without holding its lock), writes are green
/// blocking writes with the write timeout.
pub(crate) struct WsIo(pub(crate) Rc<WsStream>);

impl Read for WsIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl WsIo {
    pub(crate) fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
}
