//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::cell::Cell;
use std::process::{Command, Output};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// Set in the environment of a test re-run as a child process.
pub const CHILD_ENV: &str = "SYLVAN_TEST_CHILD";

/// Whether this process is the child half of a child-process test.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Re-runs the test `name` of this test binary in a child process with
/// `CHILD_ENV` and `envs` set, and returns its output.
pub fn run_child(name: &str, envs: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run child test process")
}

/// Counts drops of the values it hands out.
#[derive(Clone, Default)]
pub struct DropCounter(Rc<Cell<usize>>);

/// A value that bumps its counter when dropped.
pub struct Tracked(Rc<Cell<usize>>);

impl DropCounter {
    pub fn track(&self) -> Tracked {
        Tracked(self.0.clone())
    }
    pub fn dropped(&self) -> usize {
        self.0.get()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Like [`DropCounter`], but usable across OS threads.
#[derive(Clone, Default)]
pub struct SyncDropCounter(Arc<Mutex<usize>>);

/// A `Send` value that bumps its counter when dropped.
pub struct SyncTracked(Arc<Mutex<usize>>);

impl SyncDropCounter {
    pub fn track(&self) -> SyncTracked {
        SyncTracked(self.0.clone())
    }
    pub fn dropped(&self) -> usize {
        *self.0.lock().unwrap()
    }
}

impl Drop for SyncTracked {
    fn drop(&mut self) {
        *self.0.lock().unwrap() += 1;
    }
}

/// A `tracing` writer that keeps everything written, for asserting on logs.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs a global subscriber writing into the returned capture.
pub fn capture_logs() -> LogCapture {
    let cap = LogCapture::default();
    tracing_subscriber::fmt()
        .with_writer(cap.clone())
        .with_ansi(false)
        .init();
    cap
}

/// A listener whose accept queue is full, so new SYNs are dropped and a
/// connect to it hangs (until the queue drains). Returns the listener (keep
/// it alive, never accept) and the connections that filled the queue.
pub fn blackhole_listener(ip: &str) -> (std::net::TcpListener, Vec<std::net::TcpStream>) {
    use std::time::Duration;
    let addr: std::net::SocketAddr = format!("{ip}:0").parse().unwrap();
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    sock.bind(&addr.into()).unwrap();
    sock.listen(0).unwrap();
    let listener: std::net::TcpListener = sock.into();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => return (listener, fillers),
        }
    }
    panic!("could not fill the accept queue of {addr}");
}

/// A global allocator that counts the bytes live on each thread, for tests
/// that show something does not grow. Install it in a test file with
/// `#[global_allocator] static ALLOC: util::Counting = util::Counting;`.
pub struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to `System`; the counter is a
// const-initialised thread-local without a destructor, so touching it
// never allocates (and `try_with` skips it during thread teardown).
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| l.set(l.get() + layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get() - layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        let _ = LIVE.try_with(|l| l.set(l.get() + new as isize - layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

/// Bytes allocated and not freed by this thread so far (with [`Counting`]
/// installed; 0 otherwise).
pub fn live_bytes() -> isize {
    LIVE.with(Cell::get)
}

/// How many bytes `f` leaves allocated on this thread when run `n` times
/// (after a few warm-up runs, so lazily made state does not count).
pub fn growth_over(n: usize, mut f: impl FnMut()) -> isize {
    for _ in 0..16 {
        f();
    }
    let before = live_bytes();
    for _ in 0..n {
        f();
    }
    live_bytes() - before
}

/// Whether `program` is on the `PATH`.
pub fn have_program(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether `python3` can import `module`.
pub fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Fails the test, in one line naming what is missing and the command that
/// installs it, unless `present`. Every test that drives a real program
/// nobody here wrote checks it first, the same way on every machine (no
/// silent skips): `scripts/test.sh` installs them all.
#[track_caller]
pub fn require(present: bool, what: &str, install: &str) {
    assert!(
        present,
        "this test needs {what}, which is missing: install it with `{install}` \
         (scripts/test.sh installs everything the tests need)"
    );
}
