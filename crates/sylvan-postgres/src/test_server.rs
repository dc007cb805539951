//! [`TempServer`]: a throwaway PostgreSQL server for tests and benchmarks.

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::Config;

/// A private PostgreSQL server: a fresh cluster (`initdb`, `trust`
/// authentication) in a temporary directory, listening on a free loopback
/// port, stopped and deleted when dropped (also when a test fails).
///
/// The binaries are found in `$SYLVAN_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql` package),
/// else `PATH`. Run as root, the server runs as the `postgres` user (it
/// refuses root). Durability settings: `fsync=off`, which survives the
/// server process being killed (the kernel keeps what was written), not a
/// machine crash.
///
/// # Examples
///
/// ```no_run
/// use sylvan_postgres::test_server::TempServer;
///
/// let mut pg = TempServer::start()?;
/// let mut c = pg.config().connect()?;
/// c.batch_execute("CREATE TABLE t (x int)")?;
/// pg.kill(); // SIGKILL, as a crash
/// pg.restart()?;
/// let mut c = pg.config().connect()?;
/// c.batch_execute("INSERT INTO t VALUES (1)")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TempServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
    child: Option<Child>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl TempServer {
    /// Where the PostgreSQL binaries are (see the type), if anywhere.
    ///
    /// # Examples
    ///
    /// ```
    /// let found = sylvan_postgres::test_server::TempServer::bin_dir();
    /// # let _ = found;
    /// ```
    pub fn bin_dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("SYLVAN_PG_BIN") {
            return Some(PathBuf::from(d));
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((v, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Some(bin);
        }
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .find(|d| d.join("initdb").exists() && d.join("postgres").exists())
        })
    }

    /// Creates a cluster and starts the server, waiting (at most 30 s)
    /// until it accepts a session.
    ///
    /// # Examples
    ///
    /// See [`TempServer`].
    ///
    /// # Errors
    ///
    /// `NotFound` naming the package when the binaries are missing;
    /// `initdb`'s output when it fails; `TimedOut` when the server does not
    /// come up (its log is in the message).
    ///
    /// # Cancellation
    ///
    /// Blocks its OS thread while `initdb` runs (a few seconds); then
    /// waits for readiness with green sleeps, which a kill or deadline
    /// ends with that error.
    pub fn start() -> io::Result<TempServer> {
        let bin = TempServer::bin_dir().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "PostgreSQL's initdb and postgres are not installed \
                 (install them with `apt-get install -y postgresql`)",
            )
        })?;
        let dir = std::env::temp_dir().join(format!(
            "sylvan-pg-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        // /proc/self belongs to this process's effective user.
        let root =
            fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m))? == 0;
        let owner = if root {
            let ids = postgres_ids()?;
            std::os::unix::fs::chown(&dir, Some(ids.0), Some(ids.1))?;
            Some(ids)
        } else {
            None
        };
        let mut s = TempServer {
            dir,
            bin,
            port: free_port()?,
            owner,
            child: None,
        };
        let out = s
            .command("initdb")
            .arg("-D")
            .arg(s.data())
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        s.restart()?;
        Ok(s)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid);
        }
        c.stdin(Stdio::null());
        c
    }

    /// The loopback port it listens on.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let pg = sylvan_postgres::test_server::TempServer::start()?;
    /// assert_ne!(pg.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id, while it runs.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let pg = sylvan_postgres::test_server::TempServer::start()?;
    /// assert!(pg.pid().is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A [`Config`] for it: `127.0.0.1`, its port, user `postgres`, a 2 s
    /// connect timeout.
    ///
    /// # Examples
    ///
    /// See [`TempServer`].
    pub fn config(&self) -> Config {
        Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(2))
    }

    /// Kills the postmaster with SIGKILL, as a crash, and reaps it. Its
    /// sessions' backends notice their parent is gone and exit on their own.
    ///
    /// # Examples
    ///
    /// See [`TempServer`].
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server (again, after [`kill`](Self::kill)) and waits at
    /// most 30 s until it accepts a session, polling a connect every 20 ms.
    /// A start refused because the killed server's backends still hold its
    /// shared memory is tried again.
    ///
    /// # Examples
    ///
    /// See [`TempServer`].
    ///
    /// # Errors
    ///
    /// `TimedOut`, with the end of the server's log.
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline: returns that error; the
    /// server may be left starting (dropping the `TempServer` stops it).
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        let log = self.dir.join("server.log");
        let cfg = self.config().connect_timeout(Duration::from_millis(500));
        let up = sylvan::timeout(Duration::from_secs(30), || -> io::Result<()> {
            loop {
                if self
                    .child
                    .as_mut()
                    .is_none_or(|c| !matches!(c.try_wait(), Ok(None)))
                {
                    let logf = fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)?;
                    if let Some((uid, gid)) = self.owner {
                        std::os::unix::fs::chown(&log, Some(uid), Some(gid))?;
                    }
                    let child = self
                        .command("postgres")
                        .arg("-D")
                        .arg(self.data())
                        .args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k"])
                        .arg(&self.dir)
                        .args(["-c", "fsync=off", "-c", "max_connections=200"])
                        .args([
                            "-c",
                            "shared_buffers=16MB",
                            "-c",
                            "log_min_messages=warning",
                        ])
                        .stdout(logf.try_clone()?)
                        .stderr(logf)
                        .spawn()?;
                    self.child = Some(child);
                }
                if let Ok(mut c) = cfg.connect()
                    && c.ping().is_ok()
                {
                    return Ok(());
                }
                sylvan::sleep(Duration::from_millis(20))?;
            }
        });
        match up {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "postgres did not start on port {} within 30 s; log:\n{}",
                    self.port,
                    tail(&log)
                ),
            )),
        }
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGQUIT: immediate shutdown; the postmaster ends its backends.
            // (Through kill(1), so this crate needs no `unsafe`; the pid is
            // our own unreaped child, so not reused.) Failing that, SIGKILL.
            let quit = std::process::Command::new("kill")
                .args(["-QUIT", &c.id().to_string()])
                .status();
            if !quit.is_ok_and(|s| s.success()) {
                let _ = c.kill();
            }
            for _ in 0..500 {
                if !matches!(c.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn tail(path: &Path) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The `postgres` user's uid and gid, from `/etc/passwd`.
fn postgres_ids() -> io::Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres") && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "running as root, but there is no `postgres` user to run the server as \
                 (install it with `apt-get install -y postgresql`)",
            )
        })
}
