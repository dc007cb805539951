//! Remote jobs, the other direction: async code runs green closures on a
//! hub and awaits their results ([`HubHandle`], [`start_hubs`]).
//!
//! A handle is the sending side of an unbounded
//! [`sync::channel`](crate::sync::channel) of jobs. On the hub, a
//! dispatcher (a green thread, or the root context of a thread started by
//! [`start_hubs`]) receives them and spawns one green thread per job. Each
//! job's result travels back through a small oneshot (`Slot`) that wakes
//! the awaiting task's `Waker`. Nothing here touches the runtime: the
//! channel already wakes the hub from any thread.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::thread;

use crate::green::{Builder, GreenThread, catch_panic};
use crate::runtime::Runtime;
use crate::runtime::panic_message;
use crate::sync::{Receiver, Sender};

type Job = Box<dyn FnOnce() + Send + 'static>;

enum Msg {
    Run(u64, Job),
    Abort(u64),
}

struct Inner {
    tx: Sender<Msg>,
    next_id: AtomicU64,
    /// Jobs sent and not yet completed, and whether the hub's thread has
    /// exited. A thread that exits without `sylvan::shutdown` leaks its
    /// green threads (the dispatcher and the jobs with them), so nothing
    /// would ever complete these: the hub's exit hook fails them instead.
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    gone: bool,
    jobs: HashMap<u64, Weak<dyn HubGone>>,
}

/// A job's slot, seen without its result type.
trait HubGone: Send + Sync {
    /// Completes the job with `HubGone`, unless it completed already.
    fn hub_gone(&self);
}

impl Inner {
    fn lock_pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hub's thread exited: fail every job still pending, and every
    /// later one at once.
    fn hub_exited(&self) {
        let jobs = {
            let mut p = self.lock_pending();
            p.gone = true;
            std::mem::take(&mut p.jobs)
        };
        for slot in jobs.into_values().filter_map(|w| w.upgrade()) {
            slot.hub_gone();
        }
    }
}

thread_local! {
    /// The handle of this thread's hub, while one is alive.
    static CURRENT: RefCell<Weak<Inner>> = const { RefCell::new(Weak::new()) };
}

/// A handle to a sylvan hub that any thread — async code in particular —
/// uses to run green closures there and `.await` their results.
///
/// `Send + Sync + Clone`: hand it to tokio tasks, store it in shared
/// state. [`spawn`](Self::spawn) moves a closure to the hub's OS thread,
/// where it runs as a green thread — plain blocking code, with sylvan's
/// sockets, timeouts and cancellation — and returns a
/// [`RemoteJoinHandle`], a future of its result, awaitable from any
/// executor.
///
/// Get one with [`HubHandle::current`] on the hub's own thread, or start
/// hubs in the background with [`start_hubs`]. The closures run while the
/// hub runs: on a thread from [`start_hubs`] that is always; on a thread of
/// your own, whenever its root context is blocked in a sylvan call (as for
/// every green thread).
///
/// # Examples
///
/// A tokio program that hands a blocking-style protocol exchange to
/// sylvan:
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::time::Duration;
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // One sylvan hub on a background OS thread.
///     let rt = sylvan::Runtime::builder().threads(1).build()?;
///     let hub = sylvan::compat::start_hubs(&rt)?.remove(0);
///
///     // A small line-protocol server, green, on that hub (any server would do).
///     let addr = hub
///         .spawn(|| -> std::io::Result<_> {
///             let listener = sylvan::listen("127.0.0.1:0")?;
///             let addr = listener.local_addr()?;
///             sylvan::spawn(move || -> std::io::Result<()> {
///                 let (conn, _) = listener.accept()?;
///                 (&conn).write_all(b"220 ready\r\n")?;
///                 let mut lines = BufReader::new(&conn);
///                 let mut line = String::new();
///                 while lines.read_line(&mut line)? > 0 {
///                     (&conn).write_all(format!("250 {line}").as_bytes())?;
///                     line.clear();
///                 }
///                 Ok(())
///             });
///             Ok(addr)
///         })
///         .await??;
///
///     // The exchange: blocking style, one overall deadline, on the hub.
///     let reply = hub
///         .spawn(move || -> std::io::Result<String> {
///             sylvan::timeout(Duration::from_secs(5), || {
///                 let conn = sylvan::connect(addr)?;
///                 let mut lines = BufReader::new(&conn);
///                 let mut line = String::new();
///                 lines.read_line(&mut line)?; // the greeting
///                 (&conn).write_all(b"HELO example.org\r\n")?;
///                 line.clear();
///                 lines.read_line(&mut line)?;
///                 Ok(line)
///             })?
///         })
///         .await??;
///     assert_eq!(reply, "250 HELO example.org\r\n");
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct HubHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubHandle")
            .field("queued", &self.inner.tx.len())
            .finish()
    }
}

impl HubHandle {
    /// A handle to the current thread's hub (created on first use, as any
    /// sylvan call does).
    ///
    /// The first call starts a dispatcher green thread on the hub; later
    /// calls return clones of the same handle while one is alive. When
    /// every clone (and every [`RemoteJoinHandle`]) is dropped, the
    /// dispatcher waits for the closures still running and exits.
    ///
    /// Call it on the hub's own thread: from another thread it would give
    /// that thread a hub of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = sylvan::compat::HubHandle::current();
    /// let on_hub = std::thread::current().id();
    /// // Another OS thread asks this hub to run a closure...
    /// let t = std::thread::spawn(move || handle.spawn(move || std::thread::current().id()));
    /// let fut = t.join().unwrap();
    /// // ...which runs once this hub runs (here: while the root blocks).
    /// assert_eq!(sylvan::block_on(fut).unwrap().unwrap(), on_hub);
    /// ```
    ///
    /// # Panics
    ///
    /// If the dispatcher's stack can't be allocated (as [`spawn`](crate::spawn)).
    pub fn current() -> HubHandle {
        if let Some(inner) = CURRENT.with(|c| c.borrow().upgrade()) {
            return HubHandle { inner };
        }
        let (handle, rx) = HubHandle::pair();
        CURRENT.with(|c| *c.borrow_mut() = Arc::downgrade(&handle.inner));
        let spawned = Builder::new().name("sylvan-compat-dispatcher").spawn({
            let weak = Arc::downgrade(&handle.inner);
            move || dispatch(rx, weak)
        });
        if let Err(e) = spawned {
            panic!("sylvan::compat::HubHandle::current: cannot start the dispatcher: {e}");
        }
        handle
    }

    fn pair() -> (HubHandle, Receiver<Msg>) {
        let (tx, rx) = crate::sync::channel();
        let inner = Arc::new(Inner {
            tx,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(Pending::default()),
        });
        (HubHandle { inner }, rx)
    }

    /// Runs `f` in a new green thread on the hub and returns a future of
    /// its result. Returns at once: `f` is queued whether or not the
    /// future is ever awaited (as `tokio::spawn` does).
    ///
    /// `f` is moved to the hub's OS thread, hence `Send + 'static`; what it
    /// creates there (sockets, `Rc`s) stays there. It may block in any
    /// sylvan call, spawn green threads, and call `compat::tokio::run`
    /// (feature `tokio`) in turn.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = sylvan::Runtime::builder().threads(1).build()?;
    /// let hub = sylvan::compat::start_hubs(&rt)?.remove(0);
    /// let answer = tokio::runtime::Builder::new_current_thread()
    ///     .build()?
    ///     .block_on(hub.spawn(|| {
    ///         sylvan::sleep(Duration::from_millis(1)).unwrap(); // blocking, green
    ///         6 * 7
    ///     }));
    /// assert_eq!(answer.unwrap(), 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<T, F>(&self, f: F) -> RemoteJoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState {
                result: None,
                done: false,
                aborted: false,
                waker: None,
            }),
        });
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut p = self.inner.lock_pending();
            if p.gone {
                drop(p);
                finish(&slot, None);
                return RemoteJoinHandle {
                    slot,
                    id,
                    hub: self.inner.clone(),
                };
            }
            let weak: Weak<dyn HubGone> = Arc::downgrade(&slot) as Weak<dyn HubGone>;
            p.jobs.insert(id, weak);
        }
        let completer = Completer {
            slot: Some(slot.clone()),
            id,
            hub: Arc::downgrade(&self.inner),
        };
        let job: Job = Box::new(move || run_job(f, completer));
        // An unbounded send never waits. If the hub is gone, the job comes
        // back in the error and dropping it reports `HubGone`.
        drop(self.inner.tx.send(Msg::Run(id, job)));
        RemoteJoinHandle {
            slot,
            id,
            hub: self.inner.clone(),
        }
    }
}

/// Starts `rt`'s threads in the background, each serving closures sent
/// through its [`HubHandle`]; returns the handles, in thread-index order.
///
/// This is how an async program gets sylvan hubs of its own: each thread
/// of the [`Runtime`] has its own hub, whose root context waits for
/// closures and runs each in a green thread. Returns at once (the threads
/// start meanwhile; closures sent before a thread runs wait for it). A
/// thread exits once every clone of its handle (and every
/// [`RemoteJoinHandle`] it issued) is dropped and its closures have
/// finished; green threads they left running are then unwound.
///
/// # Examples
///
/// ```
/// let rt = sylvan::Runtime::builder().threads(2).thread_name("green").build()?;
/// let hubs = sylvan::compat::start_hubs(&rt)?;
/// let tokio_rt = tokio::runtime::Builder::new_current_thread().build()?;
/// let names = tokio_rt.block_on(async {
///     let mut names = Vec::new();
///     for h in &hubs {
///         let name = h.spawn(|| std::thread::current().name().map(str::to_owned));
///         names.push(name.await.unwrap());
///     }
///     names
/// });
/// assert_eq!(names, vec![Some("green-0".into()), Some("green-1".into())]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// If the thread that drives the runtime can't be started. Should one of
/// the runtime's own threads fail to start, that is reported as
/// [`Runtime::run`] reports it (a panic on the driving thread, on standard
/// error), and closures sent to its handle fail with
/// [`RemoteJoinError::HubGone`] once the other threads have stopped.
pub fn start_hubs(rt: &Runtime) -> io::Result<Vec<HubHandle>> {
    let mut handles = Vec::with_capacity(rt.threads());
    let mut ends = Vec::with_capacity(rt.threads());
    for _ in 0..rt.threads() {
        let (h, rx) = HubHandle::pair();
        ends.push(Some((rx, Arc::downgrade(&h.inner))));
        handles.push(h);
    }
    let ends = Mutex::new(ends);
    let rt = rt.clone();
    thread::Builder::new()
        .name("sylvan-compat-hubs".into())
        .spawn(move || {
            rt.run(|| {
                let i = Runtime::current_index().unwrap_or(0);
                let end = ends.lock().unwrap_or_else(PoisonError::into_inner)[i].take();
                if let Some((rx, weak)) = end {
                    CURRENT.with(|c| *c.borrow_mut() = weak.clone());
                    dispatch(rx, weak);
                }
            });
        })?;
    Ok(handles)
}

/// The dispatcher: one green thread per job, until every handle is gone;
/// then waits for the jobs still running.
fn dispatch(rx: Receiver<Msg>, inner: Weak<Inner>) {
    crate::runtime::on_hub_exit(Box::new(move || {
        if let Some(inner) = inner.upgrade() {
            inner.hub_exited();
        }
    }));
    let running: Rc<RefCell<HashMap<u64, GreenThread<()>>>> = Rc::default();
    // Ends when every sender is gone, or when this context is cancelled
    // (killed or unwound as its hub shuts down).
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Run(id, job) => {
                let r = running.clone();
                let spawned = Builder::new().spawn(move || {
                    job();
                    r.borrow_mut().remove(&id);
                });
                match spawned {
                    Ok(g) => {
                        running.borrow_mut().insert(id, g);
                    }
                    // The job was dropped with the closure: its handle
                    // reports `HubGone`.
                    Err(e) => tracing::error!("sylvan::compat: cannot spawn a green thread: {e}"),
                }
            }
            Msg::Abort(id) => {
                let g = running.borrow_mut().remove(&id);
                if let Some(g) = g {
                    g.kill();
                }
            }
        }
    }
    drop(rx);
    let left: Vec<GreenThread<()>> = running.borrow_mut().drain().map(|(_, g)| g).collect();
    for g in left {
        if g.wait().is_err() {
            break;
        }
    }
}

/// Runs one job on its green thread and reports how it ended.
fn run_job<T, F: FnOnce() -> T>(f: F, completer: Completer<T>) {
    // A forced unwind at hub shutdown goes on through `catch_panic`;
    // `completer` is dropped on the way and reports `HubGone`.
    match catch_panic(f) {
        Ok(v) => completer.complete(Ok(v)),
        Err(p) => completer.complete(Err(RemoteJoinError::Panicked(p))),
    }
}

/// The result of one job, shared by the job and its [`RemoteJoinHandle`].
struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

struct SlotState<T> {
    result: Option<Result<T, RemoteJoinError>>,
    /// The job is over (the result may have been taken since).
    done: bool,
    /// `abort` was called.
    aborted: bool,
    waker: Option<Waker>,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The job's side of a [`Slot`]: completes it once; if dropped without
/// completing (the closure never ran, or was unwound), reports why.
struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
    id: u64,
    /// Weak: a job must not keep the channel's sender (in `Inner`) alive.
    hub: Weak<Inner>,
}

impl<T> Completer<T> {
    fn complete(mut self, r: Result<T, RemoteJoinError>) {
        if let Some(slot) = self.slot.take() {
            self.unregister();
            finish(&slot, Some(r));
        }
    }

    fn unregister(&self) {
        if let Some(inner) = self.hub.upgrade() {
            inner.lock_pending().jobs.remove(&self.id);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.unregister();
            finish(&slot, None);
        }
    }
}

impl<T: Send> HubGone for Slot<T> {
    fn hub_gone(&self) {
        finish(self, None);
    }
}

/// Completes `slot` with `r` (`None`: aborted or hub gone), once: a later
/// completion is ignored.
fn finish<T>(slot: &Slot<T>, r: Option<Result<T, RemoteJoinError>>) {
    let waker = {
        let mut st = slot.lock();
        if st.done {
            return;
        }
        let r = r.unwrap_or(Err(if st.aborted {
            RemoteJoinError::Aborted
        } else {
            RemoteJoinError::HubGone
        }));
        st.result = Some(r);
        st.done = true;
        st.waker.take()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// A future of the result of a closure sent to a hub with
/// [`HubHandle::spawn`]; awaitable from any executor (it is `Send`).
///
/// Dropping it detaches the closure, which runs on (as with
/// `tokio::spawn`); [`abort`](Self::abort) kills it. Like most futures,
/// it panics if polled again after it returned `Ready`.
///
/// # Examples
///
/// ```
/// let hub = sylvan::compat::HubHandle::current();
/// let handle = hub.spawn(|| "done");
/// assert!(!handle.is_finished());
/// assert_eq!(sylvan::block_on(handle).unwrap().unwrap(), "done");
/// ```
pub struct RemoteJoinHandle<T> {
    slot: Arc<Slot<T>>,
    id: u64,
    hub: Arc<Inner>,
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> RemoteJoinHandle<T> {
    /// Kills the closure's green thread, from any thread: the blocking call
    /// it is parked in, or its next one, fails with
    /// [`Cancelled::Killed`](crate::Cancelled::Killed) (kill is sticky), and
    /// the handle resolves to whatever the closure then returns. A closure
    /// that has not started yet never runs, and the handle resolves to
    /// [`RemoteJoinError::Aborted`]. No effect once it has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let hub = sylvan::compat::HubHandle::current();
    /// let (tx, rx) = sylvan::sync::channel();
    /// let started = hub.spawn(move || {
    ///     tx.send(()).unwrap();
    ///     sylvan::sleep(Duration::from_secs(3600))
    /// });
    /// rx.recv().unwrap(); // it runs, parked in `sleep`
    /// started.abort();
    /// assert_eq!(sylvan::block_on(started).unwrap().unwrap(), Err(sylvan::Cancelled::Killed));
    ///
    /// let queued = hub.spawn(|| "never runs");
    /// queued.abort();
    /// assert!(matches!(
    ///     sylvan::block_on(queued).unwrap(),
    ///     Err(sylvan::compat::RemoteJoinError::Aborted)
    /// ));
    /// ```
    pub fn abort(&self) {
        {
            let mut st = self.slot.lock();
            if st.done {
                return;
            }
            st.aborted = true;
        }
        drop(self.hub.tx.send(Msg::Abort(self.id)));
    }

    /// Whether the closure has finished (or will never run).
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = sylvan::compat::HubHandle::current();
    /// let h = hub.spawn(|| ());
    /// while !h.is_finished() {
    ///     sylvan::yield_now();
    /// }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.slot.lock().done
    }
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, RemoteJoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.slot.lock();
        if let Some(r) = st.result.take() {
            return Poll::Ready(r);
        }
        assert!(!st.done, "RemoteJoinHandle polled after it completed");
        match &mut st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Why a [`RemoteJoinHandle`] resolved without the closure's value.
#[non_exhaustive]
pub enum RemoteJoinError {
    /// The closure panicked; the payload is what it panicked with.
    Panicked(Box<dyn Any + Send + 'static>),
    /// [`RemoteJoinHandle::abort`] was called before the closure started,
    /// so it never ran.
    Aborted,
    /// The hub's thread exited (or its hub shut down) before the closure
    /// could finish: it never ran, or was unwound.
    HubGone,
}

impl RemoteJoinError {
    /// The panic message, if the closure panicked with a string.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = sylvan::compat::HubHandle::current();
    /// let err = sylvan::block_on(hub.spawn(|| panic!("boom"))).unwrap().unwrap_err();
    /// assert_eq!(err.panic_message(), Some("boom"));
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            RemoteJoinError::Panicked(p) => Some(panic_message(p.as_ref())),
            _ => None,
        }
    }
}

impl fmt::Debug for RemoteJoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteJoinError::Panicked(p) => f
                .debug_tuple("Panicked")
                .field(&panic_message(p.as_ref()))
                .finish(),
            RemoteJoinError::Aborted => f.write_str("Aborted"),
            RemoteJoinError::HubGone => f.write_str("HubGone"),
        }
    }
}

impl fmt::Display for RemoteJoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteJoinError::Panicked(p) => {
                write!(f, "green closure panicked: {}", panic_message(p.as_ref()))
            }
            RemoteJoinError::Aborted => f.write_str("green closure was aborted before it ran"),
            RemoteJoinError::HubGone => {
                f.write_str("the hub's thread exited before the green closure finished")
            }
        }
    }
}

impl std::error::Error for RemoteJoinError {}

impl From<RemoteJoinError> for io::Error {
    fn from(e: RemoteJoinError) -> io::Error {
        io::Error::other(e.to_string())
    }
}
