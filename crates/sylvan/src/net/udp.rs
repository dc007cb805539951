//! Green UDP: [`UdpSocket`], with std's names.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use super::addr::{ToSocketAddrs, resolve_all};
use crate::runtime::GreenIo;

/// A UDP socket whose blocking calls park only the calling green thread;
/// `std::net::UdpSocket`'s API.
///
/// # Examples
///
/// ```
/// let a = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
/// let mut buf = [0; 16];
/// let (n, from) = b.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// ```
///
/// # Cancellation
///
/// A send or receive parked when the green thread is killed or its deadline
/// passes returns that error (as `io::Error`); no datagram was sent or
/// consumed by that call.
pub struct UdpSocket {
    io: GreenIo<mio::net::UdpSocket>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UdpSocket {
    /// Binds to the first address of `addr` that works.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.local_addr().is_ok());
    /// ```
    ///
    /// # Cancellation
    ///
    /// Blocks only to resolve a host name (on the thread pool); if the
    /// green thread is killed or its deadline passes then, returns that
    /// error and nothing is bound or connected.
    #[track_caller]
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in resolve_all(&addr)? {
            match mio::net::UdpSocket::bind(a) {
                Ok(s) => {
                    return Ok(UdpSocket {
                        io: GreenIo::new(s)?,
                    });
                }
                Err(e) => last = Some(io::Error::new(e.kind(), format!("cannot bind {a}: {e}"))),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to bind")))
    }

    /// Wraps a std socket (it is made non-blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let g = sylvan::net::UdpSocket::from_std(s).unwrap();
    /// assert!(g.local_addr().is_ok());
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            io: GreenIo::new(mio::net::UdpSocket::from_std(socket))?,
        })
    }

    /// Unregisters from the hub and returns a blocking std socket.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        let s = std::net::UdpSocket::from(std::os::fd::OwnedFd::from(self.io.into_inner()));
        s.set_nonblocking(false)?;
        Ok(s)
    }

    /// Sends a datagram to `target` (resolved like `bind`'s address).
    ///
    /// # Cancellation
    ///
    /// See the type's docs.
    #[track_caller]
    pub fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let addr = *resolve_all(&target)?
            .first()
            .expect("resolve_all returns at least one");
        self.io.write_with(|s| s.send_to(buf, addr))
    }

    /// Receives a datagram and its sender's address.
    ///
    /// # Cancellation
    ///
    /// See the type's docs.
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.recv_from(buf))
    }

    /// Like `recv_from`, without consuming the datagram.
    ///
    /// # Cancellation
    ///
    /// As `recv_from`: a parked call returns the cancellation as an
    /// `io::Error`, and no datagram was consumed.
    #[track_caller]
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.peek_from(buf))
    }

    /// Sets the default peer: `send` and `recv` then use it, and datagrams
    /// from others are dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// a.send(b"hi").unwrap();
    /// let mut buf = [0; 2];
    /// assert_eq!(b.recv_from(&mut buf).unwrap().0, 2);
    /// ```
    ///
    /// # Cancellation
    ///
    /// Blocks only to resolve a host name (on the thread pool); if the
    /// green thread is killed or its deadline passes then, returns that
    /// error and nothing is bound or connected.
    #[track_caller]
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addr = *resolve_all(&addr)?
            .first()
            .expect("resolve_all returns at least one");
        self.io.get().connect(addr)
    }

    /// Sends to the connected peer.
    ///
    /// # Cancellation
    ///
    /// See the type's docs.
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| s.send(buf))
    }

    /// Receives from the connected peer.
    ///
    /// # Cancellation
    ///
    /// See the type's docs.
    #[track_caller]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.recv(buf))
    }

    /// Like `recv`, without consuming the datagram.
    ///
    /// # Cancellation
    ///
    /// As `recv_from`: a parked call returns the cancellation as an
    /// `io::Error`, and no datagram was consumed.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.peek(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().peer_addr()
    }

    /// Sets the timeout of each receive call (`None`: none).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let s = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    /// let err = s.recv_from(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.io.set_read_timeout(timeout)
    }

    /// Sets the timeout of each send call (`None`: none).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.io.set_write_timeout(timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.io.read_timeout()
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.io.write_timeout()
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get().set_broadcast(on)
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get().set_ttl(ttl)
    }

    /// The pending socket error, clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// A second handle to the same socket, registered separately.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let fd = self.io.get().as_fd().try_clone_to_owned()?;
        UdpSocket::from_std(std::net::UdpSocket::from(fd))
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get().as_fd()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get().as_raw_fd()
    }
}
