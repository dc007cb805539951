//! Green Unix-domain sockets: [`UnixListener`] and [`UnixStream`].

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::runtime::{Dir, GreenIo};
use crate::sys::fd as sysfd;

/// A Unix-domain stream whose blocking calls park only the calling green
/// thread; `std::os::unix::net::UnixStream`'s API.
///
/// A write to a stream whose peer has closed fails with
/// `ErrorKind::BrokenPipe` and never raises `SIGPIPE`, gathered writes
/// included (std's `write_vectored` uses `writev(2)`, which can).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
///
/// let (mut a, mut b) = sylvan::net::UnixStream::pair().unwrap();
/// a.write_all(b"hi").unwrap();
/// let mut buf = [0; 2];
/// b.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// ```
///
/// # Cancellation
///
/// As [`TcpStream`](super::TcpStream): a parked call returns the
/// cancellation as an `io::Error`, having transferred nothing.
pub struct UnixStream {
    io: GreenIo<mio::net::UnixStream>,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("sylvan-doc-{}", std::process::id()));
    /// let _ = std::fs::create_dir(&dir);
    /// let path = dir.join("s.sock");
    /// let _ = std::fs::remove_file(&path);
    /// let l = sylvan::net::UnixListener::bind(&path).unwrap();
    /// let _c = sylvan::net::UnixStream::connect(&path).unwrap();
    /// let _s = l.accept().unwrap();
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline while connecting: returns that error.
    #[track_caller]
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let s = UnixStream {
            io: GreenIo::new(mio::net::UnixStream::connect(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot connect to {}: {e}", path.display()),
                )
            })?)?,
        };
        loop {
            if let Some(e) = s.io.get().take_error()? {
                return Err(e);
            }
            match s.io.get().peer_addr() {
                Ok(_) => return Ok(s),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => s.io.wait(Dir::Write, None)?,
                Err(e) => return Err(e),
            }
        }
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((
            UnixStream {
                io: GreenIo::new(a)?,
            },
            UnixStream {
                io: GreenIo::new(b)?,
            },
        ))
    }

    /// Wraps a std stream (it is made non-blocking).
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream {
            io: GreenIo::new(mio::net::UnixStream::from_std(stream))?,
        })
    }

    /// Unregisters from the hub and returns a blocking std stream.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        let s =
            std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(self.io.into_inner()));
        s.set_nonblocking(false)?;
        Ok(s)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().peer_addr()
    }

    /// Shuts down one or both halves; never blocks.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get().shutdown(how)
    }

    /// Sets the timeout of each read call (`None`: none).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.io.set_read_timeout(timeout)
    }

    /// Sets the timeout of each write call (`None`: none).
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

    /// The pending socket error, clearing it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// A second handle to the same stream, registered separately.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let fd = self.io.get().as_fd().try_clone_to_owned()?;
        UnixStream::from_std(std::os::unix::net::UnixStream::from(fd))
    }
}

impl Read for &UnixStream {
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

impl Write for &UnixStream {
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

impl Read for UnixStream {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for UnixStream {
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

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get().as_fd()
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get().as_raw_fd()
    }
}

/// A Unix-domain listening socket whose `accept` parks only the calling
/// green thread.
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("sylvan-doc-l-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let l = sylvan::net::UnixListener::bind(&path).unwrap();
/// let p = path.clone();
/// let c = sylvan::spawn(move || sylvan::net::UnixStream::connect(&p).map(|_| ()));
/// let (_s, _addr) = l.accept().unwrap();
/// c.join().unwrap().unwrap();
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    io: GreenIo<mio::net::UnixListener>,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UnixListener {
    /// Binds to `path` (which must not exist).
    ///
    /// # Errors
    ///
    /// As std, with the path in the message.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let l = mio::net::UnixListener::bind(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot bind {}: {e}", path.display()))
        })?;
        Ok(UnixListener {
            io: GreenIo::new(l)?,
        })
    }

    /// Wraps a std listener (it is made non-blocking).
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            io: GreenIo::new(mio::net::UnixListener::from_std(listener))?,
        })
    }

    /// Waits for a connection.
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline while waiting: returns that error; no
    /// connection was taken.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.io.read_with(|l| l.accept())?;
        Ok((
            UnixStream {
                io: GreenIo::new(s)?,
            },
            a,
        ))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get().as_fd()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get().as_raw_fd()
    }
}
