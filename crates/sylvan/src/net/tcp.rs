//! Green TCP: [`TcpListener`] and [`TcpStream`], with std's names.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use socket2::{Domain, SockRef, Socket, Type};

use super::addr::{ToSocketAddrs, resolve_all};
use crate::runtime::{Dir, GreenIo};
use crate::sys::fd as sysfd;

/// Options applied to a socket before it connects (used by
/// [`Connector`](super::Connector)).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectOpts {
    pub(crate) local_addr: Option<SocketAddr>,
}

/// A TCP connection whose blocking calls park only the calling green
/// thread; `std::net::TcpStream`'s API.
///
/// Reads and writes obey the per-call timeouts set with
/// [`set_read_timeout`](Self::set_read_timeout) /
/// [`set_write_timeout`](Self::set_write_timeout) (`ErrorKind::TimedOut`),
/// every enclosing [`timeout`](crate::timeout) scope, and kill.
///
/// `Read` and `Write` are implemented for `TcpStream` and `&TcpStream`, so
/// one green thread can read while another writes. The stream belongs to
/// the hub of the OS thread that made it (it is not `Send`); move it with
/// [`into_std`](Self::into_std) and [`from_std`](Self::from_std).
///
/// A write to a connection the peer has closed fails with
/// `ErrorKind::BrokenPipe` (or `ConnectionReset`) and never raises
/// `SIGPIPE`, gathered writes included (std's `write_vectored` uses
/// `writev(2)`, which can), whatever the process's disposition of that
/// signal.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
///
/// let listener = sylvan::listen("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = sylvan::spawn(move || {
///     let (mut conn, _) = listener.accept()?;
///     let mut buf = [0; 5];
///     conn.read_exact(&mut buf)?;
///     conn.write_all(&buf)
/// });
/// let mut c = sylvan::connect(addr).unwrap();
/// c.write_all(b"hello").unwrap();
/// let mut back = [0; 5];
/// c.read_exact(&mut back).unwrap();
/// assert_eq!(&back, b"hello");
/// server.join().unwrap().unwrap();
/// ```
///
/// # Cancellation
///
/// A read, write or connect parked when the green thread is killed or its
/// deadline passes returns the `Cancelled` error as an `io::Error` (kind
/// `TimedOut` for a deadline, `Other` for a kill); no data was transferred
/// by that call, and the stream stays usable.
pub struct TcpStream {
    io: GreenIo<mio::net::TcpStream>,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

/// One try of a read whose caller picks the buffer: it is handed the
/// non-blocking read (see [`TcpStream::read_attempts`]).
pub(crate) type ReadAttempt<'a> =
    dyn FnMut(&mut dyn FnMut(&mut [u8]) -> io::Result<usize>) -> io::Result<usize> + 'a;

impl TcpStream {
    /// Connects to `addr`, trying each address it resolves to in turn (host
    /// names are resolved on the thread pool).
    ///
    /// # Examples
    ///
    /// ```
    /// let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let port = listener.local_addr().unwrap().port();
    /// let s = sylvan::net::TcpStream::connect(("localhost", port)).unwrap();
    /// assert_eq!(s.peer_addr().unwrap().port(), port);
    /// ```
    ///
    /// # Errors
    ///
    /// The last address's error when none can be reached.
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline while connecting: returns that error; the
    /// half-open socket is closed.
    #[track_caller]
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in resolve_all(&addr)? {
            match TcpStream::connect_addr(a, None, &ConnectOpts::default()) {
                Ok(s) => return Ok(s),
                Err(e) if crate::Cancelled::from_io(&e).is_some() => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to")
        }))
    }

    /// Connects to one address, failing with `ErrorKind::TimedOut` after
    /// `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let s = sylvan::net::TcpStream::connect_timeout(&l.local_addr().unwrap(), Duration::from_secs(5));
    /// assert!(s.is_ok());
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero timeout (as std); `TimedOut` when it passes.
    ///
    /// # Cancellation
    ///
    /// As [`connect`](Self::connect).
    #[track_caller]
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        let deadline = crate::runtime::after(timeout);
        TcpStream::connect_addr(*addr, Some(deadline), &ConnectOpts::default())
    }

    /// Non-blocking connect, then park until it completes or `deadline`
    /// (hub clock nanoseconds) passes.
    #[track_caller]
    pub(crate) fn connect_addr(
        addr: SocketAddr,
        deadline: Option<u64>,
        opts: &ConnectOpts,
    ) -> io::Result<TcpStream> {
        let sock = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            None,
        )?;
        if let Some(local) = opts.local_addr {
            sock.bind(&local.into())?;
        }
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let stream = TcpStream {
            io: GreenIo::new(mio::net::TcpStream::from_std(sock.into()))?,
        };
        loop {
            if let Some(e) = stream.io.get().take_error()? {
                return Err(e);
            }
            match stream.io.get().peer_addr() {
                Ok(_) => return Ok(stream),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => return Err(e),
            }
            stream.io.wait(Dir::Write, deadline).map_err(|e| {
                if e.kind() == io::ErrorKind::TimedOut && crate::Cancelled::from_io(&e).is_none() {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connecting to {addr} timed out"),
                    )
                } else {
                    e
                }
            })?;
        }
    }

    /// Wraps a connected std stream (it is made non-blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let std_stream = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = sylvan::net::TcpStream::from_std(std_stream).unwrap();
    /// assert!(s.peer_addr().is_ok());
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream {
            io: GreenIo::new(mio::net::TcpStream::from_std(stream))?,
        })
    }

    pub(crate) fn from_mio(stream: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: GreenIo::new(stream)?,
        })
    }

    /// Unregisters from the hub and returns a blocking std stream (to move
    /// it to another thread, for example).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let s = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// let std_stream = s.into_std().unwrap();
    /// std::thread::spawn(move || drop(std_stream)).join().unwrap();
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let mio = self.io.into_inner();
        let std = std::net::TcpStream::from(std::os::fd::OwnedFd::from(mio));
        std.set_nonblocking(false)?;
        Ok(std)
    }

    /// The remote address.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let s = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().peer_addr()
    }

    /// The local address.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let s = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// Shuts down the read half, the write half or both; never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let c = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut s, _) = l.accept().unwrap();
    /// c.shutdown(Shutdown::Write).unwrap();
    /// assert_eq!(s.read(&mut [0; 8]).unwrap(), 0); // end of stream
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get().shutdown(how)
    }

    /// Sets `TCP_NODELAY` (off by default).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let s = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nodelay(true).unwrap();
    /// assert!(s.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get().nodelay()
    }

    /// Sets the IP time-to-live.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let s = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_ttl(42).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 42);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get().set_ttl(ttl)
    }

    /// The IP time-to-live.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get().ttl()
    }

    /// Sets the timeout of each read call (`None`, the default: none). A
    /// read that waits longer fails with `ErrorKind::TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let mut s = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    /// let err = s.read(&mut [0; 1]).unwrap_err(); // the peer says nothing
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.io.set_read_timeout(timeout)
    }

    /// Sets the timeout of each write call (`None`, the default: none).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let s = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    /// assert_eq!(s.write_timeout(), Some(Duration::from_secs(1)));
    /// ```
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

    /// Reads without consuming, waiting for data like `read`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let mut c = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut s, _) = l.accept().unwrap();
    /// c.write_all(b"x").unwrap();
    /// let mut b = [0; 1];
    /// assert_eq!(s.peek(&mut b).unwrap(), 1);
    /// assert_eq!(s.read(&mut b).unwrap(), 1);
    /// ```
    ///
    /// # Cancellation
    ///
    /// As `read`.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.peek(buf))
    }

    /// A read whose buffer is chosen at each attempt rather than held
    /// while the green thread parks: `attempt` gets the non-blocking read
    /// and runs it into a buffer of its choice, of `len` bytes (the hint
    /// that tells a drained socket). An attempt that finds nothing to read
    /// gets `WouldBlock` and may let its buffer go before the park; the
    /// HTTP server uses this to hold no read buffer while a keep-alive
    /// connection waits. Timeouts and cancellation as `read`.
    #[track_caller]
    pub(crate) fn read_attempts(
        &self,
        len: usize,
        attempt: &mut ReadAttempt<'_>,
    ) -> io::Result<usize> {
        self.io
            .read_stream(len, |s| attempt(&mut |buf| sysfd::recv(s.as_fd(), buf)))
    }

    /// A second handle to the same connection, registered separately.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let s = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// let s2 = s.try_clone().unwrap();
    /// assert_eq!(s.local_addr().unwrap(), s2.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let fd = self.io.get().as_fd().try_clone_to_owned()?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(std::net::TcpStream::from(fd)))
    }

    /// The pending socket error (`SO_ERROR`), clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// Sets `SO_LINGER`. `Some(Duration::ZERO)` makes `close` send a reset
    /// (RST) instead of a graceful FIN.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let s = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_linger(Some(Duration::ZERO)).unwrap();
    /// assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
    /// ```
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        SockRef::from(self).set_linger(linger)
    }

    /// The `SO_LINGER` setting.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        SockRef::from(self).linger()
    }

    /// Turns on TCP keepalive probes: first after `idle`, then every
    /// `interval`, giving up after `retries` unanswered probes.
    ///
    /// The kernel counts both times in whole seconds: fractions of a
    /// second are dropped, and a time under one second is refused.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let s = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_keepalive(Duration::from_secs(30), Duration::from_secs(5), 3).unwrap();
    /// let e = s.set_keepalive(Duration::from_secs(1), Duration::from_millis(500), 3);
    /// assert_eq!(e.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the value when `idle` or `interval` is under
    /// one second (the kernel's own error would be a bare `EINVAL`).
    pub fn set_keepalive(
        &self,
        idle: Duration,
        interval: Duration,
        retries: u32,
    ) -> io::Result<()> {
        for (what, d) in [("idle time", idle), ("interval", interval)] {
            if d < Duration::from_secs(1) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("TCP keepalive {what} {d:?} is under the kernel's minimum of 1 s"),
                ));
            }
        }
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(interval)
            .with_retries(retries);
        SockRef::from(self).set_tcp_keepalive(&ka)
    }

    /// Sets `TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged
    /// before the kernel drops the connection (`None`: the system default).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let s = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_user_timeout(Some(Duration::from_secs(10))).unwrap();
    /// assert_eq!(s.user_timeout().unwrap(), Some(Duration::from_secs(10)));
    /// ```
    pub fn set_user_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        SockRef::from(self).set_tcp_user_timeout(timeout)
    }

    /// The `TCP_USER_TIMEOUT` setting.
    pub fn user_timeout(&self) -> io::Result<Option<Duration>> {
        SockRef::from(self).tcp_user_timeout()
    }
}

impl Read for &TcpStream {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.io.read_stream(len, |s| sysfd::recv(s.as_fd(), buf))
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.io
            .read_stream(len, |s| sysfd::read_vectored(s.as_fd(), bufs))
    }
}

impl Write for &TcpStream {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| sysfd::send(s.as_fd(), buf))
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.io
            .write_with(|s| sysfd::send_vectored(s.as_fd(), bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get().as_fd()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get().as_raw_fd()
    }
}

/// A TCP listening socket whose `accept` parks only the calling green
/// thread; `std::net::TcpListener`'s API.
///
/// # Examples
///
/// ```
/// let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let client = sylvan::spawn(move || sylvan::connect(addr).map(|_| ()));
/// let (_conn, peer) = listener.accept().unwrap();
/// assert!(peer.ip().is_loopback());
/// client.join().unwrap().unwrap();
/// ```
pub struct TcpListener {
    io: GreenIo<mio::net::TcpListener>,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

/// How to open a listening socket: backlog, `SO_REUSEADDR`, `SO_REUSEPORT`.
///
/// # Examples
///
/// ```
/// let a = sylvan::net::ListenOptions::new().backlog(16).reuse_port(true).bind("127.0.0.1:0").unwrap();
/// let port = a.local_addr().unwrap().port();
/// // A second socket on the same port, as each hub of a Runtime would open:
/// let b = sylvan::net::ListenOptions::new().reuse_port(true).bind(("127.0.0.1", port)).unwrap();
/// assert_eq!(b.local_addr().unwrap().port(), port);
/// ```
#[derive(Debug, Clone)]
pub struct ListenOptions {
    backlog: i32,
    reuse_addr: bool,
    reuse_port: bool,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions::new()
    }
}

impl ListenOptions {
    /// Backlog 1024, `SO_REUSEADDR` on, `SO_REUSEPORT` off.
    pub fn new() -> ListenOptions {
        ListenOptions {
            backlog: 1024,
            reuse_addr: true,
            reuse_port: false,
        }
    }

    /// The accept backlog (default 1024; the kernel caps it at
    /// `net.core.somaxconn`).
    pub fn backlog(mut self, n: i32) -> ListenOptions {
        self.backlog = n;
        self
    }

    /// `SO_REUSEADDR` (default on): rebinding a port with connections in
    /// `TIME_WAIT` works.
    pub fn reuse_addr(mut self, on: bool) -> ListenOptions {
        self.reuse_addr = on;
        self
    }

    /// `SO_REUSEPORT` (default off): several sockets, one per hub, accept on
    /// the same port and the kernel spreads connections across them.
    pub fn reuse_port(mut self, on: bool) -> ListenOptions {
        self.reuse_port = on;
        self
    }

    /// Binds and listens on the first address of `addr` that works.
    ///
    /// # Errors
    ///
    /// The last address's error (e.g. `AddrInUse`).
    ///
    /// # Cancellation
    ///
    /// Blocks only to resolve a host name (on the thread pool); if the
    /// green thread is killed or its deadline passes then, returns that
    /// error and nothing is bound or connected.
    #[track_caller]
    pub fn bind(&self, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve_all(&addr)? {
            match self.bind_one(a) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to bind")))
    }

    fn bind_one(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let sock = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            None,
        )?;
        if self.reuse_addr {
            sock.set_reuse_address(true)?;
        }
        if self.reuse_port {
            sock.set_reuse_port(true)?;
        }
        sock.bind(&addr.into())
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
        sock.listen(self.backlog)?;
        Ok(TcpListener {
            io: GreenIo::new(mio::net::TcpListener::from_std(sock.into()))?,
        })
    }
}

impl TcpListener {
    /// Binds with std's defaults on Unix (`SO_REUSEADDR`, backlog 128).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// ```
    ///
    /// # Errors
    ///
    /// As `std::net::TcpListener::bind`, with the address in the message.
    ///
    /// # Cancellation
    ///
    /// Blocks only to resolve a host name (on the thread pool); if the
    /// green thread is killed or its deadline passes then, returns that
    /// error and nothing is bound or connected.
    #[track_caller]
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        ListenOptions::new().backlog(128).bind(addr)
    }

    /// Binds with `SO_REUSEPORT`, so every hub of a multi-threaded server
    /// can have its own listener on the same port.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = sylvan::net::TcpListener::bind_reuseport("127.0.0.1:0").unwrap();
    /// let b = sylvan::net::TcpListener::bind_reuseport(a.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    ///
    /// # Cancellation
    ///
    /// Blocks only to resolve a host name (on the thread pool); if the
    /// green thread is killed or its deadline passes then, returns that
    /// error and nothing is bound or connected.
    #[track_caller]
    pub fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        ListenOptions::new().reuse_port(true).bind(addr)
    }

    /// Wraps a std listener (it is made non-blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l = sylvan::net::TcpListener::from_std(std_l).unwrap();
    /// assert!(l.local_addr().is_ok());
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            io: GreenIo::new(mio::net::TcpListener::from_std(listener))?,
        })
    }

    /// Unregisters from the hub and returns a blocking std listener.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let std_l = l.into_std().unwrap();
    /// assert!(std_l.local_addr().is_ok());
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        let mio = self.io.into_inner();
        let std = std::net::TcpListener::from(std::os::fd::OwnedFd::from(mio));
        std.set_nonblocking(false)?;
        Ok(std)
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let _c = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// let (s, peer) = l.accept().unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), peer);
    /// ```
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline while waiting: returns that error; no
    /// connection was taken from the backlog.
    ///
    /// # Errors
    ///
    /// As `accept(2)`: e.g. `EMFILE` when the process is out of file
    /// descriptors (the connection stays in the backlog).
    #[track_caller]
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = self.io.read_with(|l| l.accept())?;
        Ok((TcpStream::from_mio(s)?, a))
    }

    /// An endless iterator over accepted connections.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let _c = sylvan::connect(l.local_addr().unwrap()).unwrap();
    /// let first = l.incoming().next().unwrap().unwrap();
    /// assert!(first.peer_addr().is_ok());
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// Sets the IP time-to-live of accepted connections.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get().set_ttl(ttl)
    }

    /// The pending socket error, clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get().as_fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get().as_raw_fd()
    }
}

/// Iterator over connections accepted by a [`TcpListener`]; see
/// [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    #[track_caller]
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
