//! Facts about the running process.

/// Resident set size of this process in bytes, from `/proc/self/statm`.
pub(crate) fn rss_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident: usize = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident * super::mem::page_size())
}

/// One open descriptor of this process, from `/proc/self/fd`.
#[derive(Debug, Clone)]
pub(crate) struct OpenFd {
    pub(crate) fd: i32,
    /// What `/proc/self/fd/N` links to (`socket:[123]`, a path, …).
    pub(crate) target: String,
    /// For sockets: `getsockname` and `getpeername`, as text.
    pub(crate) local: Option<String>,
    pub(crate) peer: Option<String>,
}

/// This process's open descriptors. Racy by nature (descriptors come and
/// go meanwhile): a descriptor closed or reused while it is looked at
/// gives stale or missing facts, never an error.
pub(crate) fn open_fds() -> Vec<OpenFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut fds: Vec<OpenFd> = dir
        .filter_map(|e| {
            let e = e.ok()?;
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path())
                .ok()?
                .to_string_lossy()
                .into_owned();
            let (local, peer) = if target.starts_with("socket:") {
                (sock_addr(fd, false), sock_addr(fd, true))
            } else {
                (None, None)
            };
            Some(OpenFd {
                fd,
                target,
                local,
                peer,
            })
        })
        .collect();
    fds.sort_by_key(|f| f.fd);
    fds
}

/// `getsockname`/`getpeername` of a raw descriptor, as text.
fn sock_addr(fd: i32, peer: bool) -> Option<String> {
    // SAFETY: `try_init` hands a zeroed, writable storage and its length;
    // the calls write at most that many bytes, and only fail (EBADF,
    // ENOTSOCK, ENOTCONN) on a descriptor that is not, or no longer, a
    // connected socket: no memory is at stake either way.
    let r = unsafe {
        socket2::SockAddr::try_init(|p, len| {
            let r = if peer {
                libc::getpeername(fd, p.cast(), len)
            } else {
                libc::getsockname(fd, p.cast(), len)
            };
            if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
    };
    let addr = r.ok()?.1;
    if let Some(a) = addr.as_socket() {
        Some(a.to_string())
    } else if let Some(p) = addr.as_pathname() {
        Some(format!("unix:{}", p.display()))
    } else if addr.is_unnamed() {
        Some("unix:(unnamed)".to_string())
    } else {
        addr.as_abstract_namespace()
            .map(|n| format!("unix:@{}", String::from_utf8_lossy(n)))
    }
}
