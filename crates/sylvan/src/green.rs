//! Green threads: [`spawn`], [`Builder`], [`GreenThread`], [`current`].

use std::any::Any;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cancel::Cancelled;
use crate::runtime;
use crate::runtime::{DEFAULT_STACK_SIZE, Task, TaskCell, log_panic, panic_message};

/// A green thread's id, unique in the process. The root context's is 0.
///
/// # Examples
///
/// ```
/// let g = sylvan::spawn(|| sylvan::current().id());
/// let id = g.id();
/// assert_eq!(g.join().unwrap(), id);
/// assert!(sylvan::current().is_root());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GreenId(u64);

impl GreenId {
    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GreenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Closures larger than this are boxed before they go onto a new stack.
const MAX_INLINE_CLOSURE: usize = 512;

/// Spawns a green thread on this OS thread's hub and returns its handle.
///
/// The new green thread is queued to run; the caller keeps running until it
/// makes a blocking call (or [`yield_now`](crate::yield_now)). No `Send`
/// bound: green threads never leave their OS thread, so `Rc` and `RefCell`
/// may be captured. Dropping the handle detaches the green thread; it keeps
/// running, and if it then panics the panic is logged with `tracing`.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
///
/// let shared = Rc::new(21);
/// let s = shared.clone();
/// let g = sylvan::spawn(move || *s * 2);
/// assert_eq!(g.join().unwrap(), 42);
/// ```
///
/// # Panics
///
/// If no stack can be allocated for it; the message says why (address
/// space, memory, or `vm.max_map_count` on kernels before 6.13).
/// [`Builder::spawn`] returns that as an error instead.
#[track_caller]
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> GreenThread<T> {
    match Builder::new().spawn(f) {
        Ok(g) => g,
        Err(e) => panic!("sylvan::spawn: {e}"),
    }
}

/// Spawns a green thread that starts running `f` after `delay`.
///
/// Eventlet's `spawn_after`. If the handle is killed before the delay is
/// over, `f` never runs and `join` returns [`JoinError::Killed`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let g = sylvan::spawn_after(Duration::from_millis(5), || "later");
/// assert_eq!(g.join().unwrap(), "later");
///
/// let g = sylvan::spawn_after(Duration::from_secs(60), || "never");
/// g.kill();
/// assert!(matches!(g.join(), Err(sylvan::JoinError::Killed)));
/// ```
///
/// # Panics
///
/// As [`spawn`].
#[track_caller]
pub fn spawn_after<T: 'static>(delay: Duration, f: impl FnOnce() -> T + 'static) -> GreenThread<T> {
    match Builder::new().spawn_inner(move || crate::time::sleep(delay).ok().map(|()| f())) {
        Ok(g) => g,
        Err(e) => panic!("sylvan::spawn_after: {e}"),
    }
}

/// Runs `f` as a green thread and drives the hub until it returns.
///
/// From `main` this is the usual entry point, though not a required one:
/// any blocking sylvan call made by the root context drives the hub too.
/// Green threads that `f` spawned and left running are not waited for.
///
/// Called from the root context, `run` then [shuts the hub down](shutdown):
/// every green thread still alive on this OS thread (whoever spawned it) is
/// killed and unwound before `run` returns, so their destructors run while
/// the thread's thread-locals are still alive, as `asyncio.run` cancels
/// what is left. Called from a green thread, it only waits for `f`.
///
/// # Examples
///
/// ```
/// let n = sylvan::run(|| {
///     let a = sylvan::spawn(|| 1);
///     let b = sylvan::spawn(|| 2);
///     a.join().unwrap() + b.join().unwrap()
/// });
/// assert_eq!(n, 3);
/// ```
///
/// # Panics
///
/// If `f` panics, the panic is resumed in the caller (as
/// `std::thread::scope` does). Also as [`spawn`].
///
/// # Cancellation
///
/// If the caller is killed or its deadline passes while waiting, the green
/// thread running `f` is killed in turn and `run` waits for it to finish,
/// returning what `f` returned (typically the `Cancelled` error it
/// propagated). `f` is never abandoned halfway.
///
/// Where the caller may not suspend at all — a destructor running while
/// its thread unwinds from a panic, or while the hub unwinds its green
/// threads — `run` calls `f` directly instead; every blocking call in `f`
/// then fails at once with [`Cancelled::Killed`].
#[track_caller]
pub fn run<T: 'static>(f: impl FnOnce() -> T + 'static) -> T {
    let from_root = runtime::current_is_root();
    if !runtime::may_suspend() {
        return f();
    }
    let g = spawn(f);
    if g.wait().is_err() {
        while !g.is_finished() && crate::runtime::may_suspend() {
            if g.cell.core.has_started() {
                g.kill();
            }
            crate::time::yield_now();
        }
    }
    let r = g.join();
    if from_root {
        runtime::shutdown_hub();
    }
    match r {
        Ok(v) => v,
        Err(JoinError::Panicked(p)) => panic::resume_unwind(p),
        Err(e) => unreachable!("sylvan::run: the green thread started and finished, yet {e}"),
    }
}

/// Shuts down this OS thread's hub: kills every green thread on it and
/// force-unwinds them, so their destructors run (sockets close, guards
/// release) now, while the thread's thread-locals are still alive.
///
/// Call it at the end of `main` (or of any OS thread that used sylvan
/// without [`run`] or a [`Runtime`](crate::Runtime), which do it for you).
/// A green thread still alive when its thread ends without this is
/// *leaked*: never resumed and never unwound, its destructors never run,
/// since the thread-locals its frames borrow may be destroyed by then;
/// sylvan logs a `tracing` warning saying how many and where they were
/// parked.
///
/// Green threads spawned while shutting down (by a destructor) are unwound
/// too. The hub stays usable: later calls spawn on it as before. Does
/// nothing on a thread that never used sylvan.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// struct Closes(std::rc::Rc<std::cell::Cell<bool>>);
/// impl Drop for Closes {
///     fn drop(&mut self) { self.0.set(true) }
/// }
///
/// let closed = std::rc::Rc::new(std::cell::Cell::new(false));
/// let c = Closes(closed.clone());
/// let g = sylvan::spawn(move || {
///     let _c = c;
///     sylvan::sleep(Duration::from_secs(3600))
/// });
/// sylvan::yield_now(); // it starts and parks
/// sylvan::shutdown();
/// assert!(closed.get(), "its destructors ran");
/// assert!(g.is_finished());
/// ```
///
/// # Panics
///
/// If called from a green thread (only the root context may shut its hub
/// down): the message says so.
#[track_caller]
pub fn shutdown() {
    if !runtime::has_hub() {
        return;
    }
    assert!(
        runtime::current_is_root(),
        "sylvan::shutdown must be called from the root context (the OS thread's own stack), not from a green thread"
    );
    if !runtime::may_suspend() {
        // A destructor on the scheduler's own path: unwinding green
        // threads from here would run user code inside the scheduler.
        tracing::error!(
            "sylvan::shutdown called from a destructor the hub runs; ignored (at {})",
            Location::caller()
        );
        return;
    }
    runtime::shutdown_hub();
}

/// Configures a green thread before spawning it.
///
/// # Examples
///
/// ```
/// let g = sylvan::Builder::new()
///     .name("worker-1")
///     .stack_size(64 * 1024)
///     .spawn(|| sylvan::current().name().map(str::to_owned))
///     .unwrap();
/// assert_eq!(g.join().unwrap().as_deref(), Some("worker-1"));
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    name: Option<Arc<str>>,
    stack_size: usize,
    span: Option<tracing::Span>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with no name and the default stack size.
    pub fn new() -> Builder {
        Builder {
            name: None,
            stack_size: DEFAULT_STACK_SIZE,
            span: None,
        }
    }

    /// Names the green thread (default: none). The name appears in
    /// stack-overflow reports, watchdog warnings and panic logs.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// Sets the `tracing` span the green thread runs in (default: the
    /// spawner's current span, [`tracing::Span::current`]).
    ///
    /// The runtime enters it every time the green thread is switched in and
    /// exits it when it is switched out, so events logged by interleaved
    /// green threads each carry their own span: what tokio's `Instrument`
    /// does per future, done once for every green thread. `Span::none()`
    /// runs it in no span.
    ///
    /// A span entered by the green thread's own code with
    /// [`Span::enter`](tracing::Span::enter) and held across a blocking call
    /// stays entered on the OS thread while other green threads run; use
    /// this setting (or [`Span::in_scope`](tracing::Span::in_scope) around
    /// code that does not block) instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = tracing::info_span!("request", id = 7);
    /// let g = sylvan::Builder::new()
    ///     .span(span.clone())
    ///     .spawn(|| tracing::Span::current())
    ///     .unwrap();
    /// // (With a subscriber installed, the green thread's current span is
    /// // `span`; without one every span is disabled.)
    /// let _ = g.join().unwrap();
    /// ```
    pub fn span(mut self, span: tracing::Span) -> Builder {
        self.span = Some(span);
        self
    }

    /// Sets the stack size in bytes, guard page included (default 256 KiB;
    /// rounded up to whole pages, at least 16 KiB). This is address space:
    /// only the pages the green thread touches use memory.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Spawns the green thread; see [`spawn`].
    ///
    /// # Errors
    ///
    /// When no stack can be allocated, with a message that says why: the
    /// address space is exhausted (`ErrorKind::OutOfMemory`), or on kernels
    /// without `MADV_GUARD_INSTALL` the process reached `vm.max_map_count`
    /// (the message names the sysctl and how to raise it).
    ///
    /// # Examples
    ///
    /// ```
    /// let too_big = sylvan::Builder::new().stack_size(1 << 50).spawn(|| ());
    /// let err = too_big.unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
    /// ```
    #[track_caller]
    pub fn spawn<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> io::Result<GreenThread<T>> {
        self.spawn_inner(move || Some(f()))
    }

    /// Spawns `f`, whose `None` means "did not run" (killed before start).
    ///
    /// Closures of any size are accepted: corosensei copies the entry
    /// closure onto the new stack and refuses more than 1 KiB, so a large
    /// one is boxed first (small ones, the common case, are not).
    #[track_caller]
    fn spawn_inner<T: 'static, F: FnOnce() -> Option<T> + 'static>(
        self,
        f: F,
    ) -> io::Result<GreenThread<T>> {
        if std::mem::size_of::<F>() > MAX_INLINE_CLOSURE {
            let boxed = Box::new(f);
            self.spawn_small(boxed)
        } else {
            self.spawn_small(f)
        }
    }

    /// [`spawn_inner`](Self::spawn_inner) for a closure small enough to
    /// copy onto the new stack.
    #[track_caller]
    #[inline]
    fn spawn_small<T: 'static, F: FnOnce() -> Option<T> + 'static>(
        self,
        f: F,
    ) -> io::Result<GreenThread<T>> {
        let cell = runtime::spawn_cell(self.name, self.stack_size, self.span, f)?;
        Ok(GreenThread { cell })
    }
}

/// Names one link made by [`GreenThread::link`], to remove it with
/// [`GreenThread::unlink`]. Unique in the process.
///
/// # Examples
///
/// ```
/// let g = sylvan::spawn(|| ());
/// let a = g.link(|_| ());
/// let b = g.link(|_| ());
/// assert_ne!(a, b);
/// # g.join().unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkId(u64);

impl LinkId {
    fn next() -> LinkId {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        LinkId(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// How a green thread ended, as its [links](GreenThread::link) see it: a
/// borrowed view, so [`join`](GreenThread::join) still takes the value.
///
/// # Examples
///
/// ```
/// use sylvan::Outcome;
///
/// let g = sylvan::spawn(|| 5);
/// g.link(|o: Outcome<'_, i32>| assert!(matches!(o, Outcome::Returned(&5))));
/// assert_eq!(g.join().unwrap(), 5);
/// ```
#[non_exhaustive]
pub enum Outcome<'a, T> {
    /// It returned this value (a green thread killed while running returns
    /// whatever its code returned, typically a `Cancelled` error).
    Returned(&'a T),
    /// It panicked with this payload.
    Panicked(&'a (dyn Any + Send)),
    /// It never produced an outcome: killed before it ran, or unwound at
    /// hub [`shutdown`].
    Killed,
}

impl<T> Outcome<'_, T> {
    /// The value, if it returned one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Outcome::Returned(v) => Some(v),
            _ => None,
        }
    }

    /// The panic message, if it panicked with a string.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Outcome::Panicked(p) => Some(panic_message(*p)),
            _ => None,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Outcome<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Returned(v) => f.debug_tuple("Returned").field(v).finish(),
            Outcome::Panicked(p) => f.debug_tuple("Panicked").field(&panic_message(*p)).finish(),
            Outcome::Killed => f.write_str("Killed"),
        }
    }
}

/// The handle of a green thread: join it, kill it, ask whether it finished.
///
/// Not `Send`: a green thread belongs to the hub of the OS thread that
/// spawned it. Dropping the handle detaches the green thread.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let g = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(60)));
/// sylvan::yield_now(); // let it start and block
/// g.kill();
/// assert_eq!(g.join().unwrap(), Err(sylvan::Cancelled::Killed));
/// ```
pub struct GreenThread<T> {
    cell: Rc<TaskCell<T>>,
}

impl<T> fmt::Debug for GreenThread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenThread")
            .field("id", &self.cell.core.id())
            .field("name", &self.cell.core.name())
            .field("finished", &self.cell.core.is_finished())
            .finish()
    }
}

impl<T> GreenThread<T> {
    /// Waits for the green thread to finish and returns its value.
    ///
    /// # Errors
    ///
    /// - [`JoinError::Panicked`] with the payload if it panicked;
    /// - [`JoinError::Killed`] if it was killed before it ever ran (a green
    ///   thread killed while running returns whatever its code returned,
    ///   typically the `Cancelled` error it propagated);
    /// - [`JoinError::Cancelled`] if the *caller's* wait was cancelled.
    ///
    /// # Cancellation
    ///
    /// If the caller is killed or its deadline passes while waiting, returns
    /// `JoinError::Cancelled` and the handle is dropped, so the green thread
    /// goes on detached. Use [`wait`](Self::wait) first to keep the handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let g = sylvan::spawn(|| panic!("boom"));
    /// match g.join() {
    ///     Err(sylvan::JoinError::Panicked(p)) => assert_eq!(*p.downcast::<&str>().unwrap(), "boom"),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    #[track_caller]
    #[inline]
    pub fn join(self) -> Result<T, JoinError> {
        let loc = Location::caller();
        let core = &self.cell.core;
        if !core.is_finished() {
            // Its hub need not keep it listed once it finishes: this
            // handle takes the result at once.
            core.set_joining();
            self.wait_at(loc).map_err(JoinError::Cancelled)?;
        }
        match self.cell.result.borrow_mut().take() {
            Some(Ok(v)) => Ok(v),
            Some(Err(p)) => Err(JoinError::Panicked(p)),
            None => Err(JoinError::Killed),
        }
    }

    /// Waits for the green thread to finish, keeping the handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let g = sylvan::spawn(|| 7);
    /// g.wait().unwrap();
    /// assert!(g.is_finished());
    /// assert_eq!(g.join().unwrap(), 7);
    /// ```
    ///
    /// # Cancellation
    ///
    /// If the caller is killed or its deadline passes, returns
    /// [`Cancelled`]; the green thread is unaffected and the handle still
    /// joins it later.
    #[track_caller]
    pub fn wait(&self) -> Result<(), Cancelled> {
        self.wait_at(Location::caller())
    }

    fn wait_at(&self, loc: &'static Location<'static>) -> Result<(), Cancelled> {
        let core = &self.cell.core;
        while !core.is_finished() {
            runtime::wait_on(core.joiners(), loc)?;
        }
        Ok(())
    }

    /// Kills the green thread, Eventlet-style but by error: the blocking
    /// call it is parked in (or its next one) returns
    /// [`Cancelled::Killed`], and so does every later one (kill is sticky).
    /// A green thread that has not started yet never runs. No effect on a
    /// finished one. Returns at once; [`join`](Self::join) to wait for it.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = sylvan::sync::Event::<u32>::new();
    /// let ev2 = ev.clone();
    /// let g = sylvan::spawn(move || ev2.wait());
    /// sylvan::yield_now();
    /// g.kill();
    /// assert_eq!(g.join().unwrap(), Err(sylvan::Cancelled::Killed));
    /// ```
    pub fn kill(&self) {
        // (With no hub — a thread-local destructor after the hub's — the
        // green thread was leaked and never runs again: nobody to wake.)
        self.cell.core.kill();
    }

    /// Whether the green thread has finished (returned, panicked, or was
    /// killed before it ran).
    ///
    /// # Examples
    ///
    /// ```
    /// let g = sylvan::spawn(|| ());
    /// assert!(!g.is_finished());
    /// sylvan::yield_now();
    /// assert!(g.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.cell.core.is_finished()
    }

    /// The green thread's id.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = sylvan::spawn(|| ());
    /// let b = sylvan::spawn(|| ());
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> GreenId {
        GreenId(self.cell.core.id())
    }

    /// Calls `f` once with the green thread's [`Outcome`] when it ends;
    /// Eventlet's `GreenThread.link`. If it has ended already, `f` is
    /// called now, by the caller.
    ///
    /// Otherwise `f` runs **on the finishing green thread's own stack**,
    /// right after its closure returned or panicked, before the thread
    /// counts as finished, never from the hub's scheduler loop: `f` may
    /// block (a `join` returns only after the links ran), and a panic in
    /// `f` is logged and goes no further. Links run in the order given.
    /// `f` sees the outcome by reference, so [`join`](Self::join) still
    /// takes the value afterwards. A green thread killed before it ran,
    /// or unwound at hub [`shutdown`], calls its links with
    /// [`Outcome::Killed`] (there, like any code run while unwinding, `f`
    /// cannot block: its blocking calls fail at once). A green thread
    /// leaked at thread exit never calls them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use sylvan::Outcome;
    ///
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// let worker = sylvan::spawn(|| -> u32 { panic!("disk on fire") });
    /// let l = log.clone();
    /// worker.link(move |o: Outcome<'_, u32>| {
    ///     l.borrow_mut().push(format!("{:?}", o.panic_message()));
    /// });
    /// assert!(worker.join().is_err());
    /// assert_eq!(*log.borrow(), vec![r#"Some("disk on fire")"#]);
    ///
    /// // Linking to a finished green thread calls back at once.
    /// let done = sylvan::spawn(|| 1);
    /// done.wait().unwrap();
    /// let l = log.clone();
    /// done.link(move |o| l.borrow_mut().push(format!("{:?}", o.value())));
    /// assert_eq!(log.borrow().last().unwrap(), "Some(1)");
    /// ```
    pub fn link(&self, f: impl FnOnce(Outcome<'_, T>) + 'static) -> LinkId {
        let id = LinkId::next();
        if !self.cell.core.is_finished() {
            self.cell.links.borrow_mut().push_back((id, Box::new(f)));
            return id;
        }
        let result = self.cell.result.borrow();
        let outcome = match &*result {
            Some(Ok(v)) => Outcome::Returned(v),
            Some(Err(p)) => Outcome::Panicked(p.as_ref()),
            None => Outcome::Killed,
        };
        f(outcome);
        id
    }

    /// Removes a link that has not been called yet; Eventlet's
    /// `GreenThread.unlink`. Returns whether it was pending: `true` means
    /// its callback is dropped (by the caller) and will never be called;
    /// `false` means it was already called (or is being called now), was
    /// removed before, or belongs to another green thread. Never blocks.
    ///
    /// A link may unlink the ones after it: the finishing green thread
    /// takes its links one at a time, so a link removed before its turn
    /// does not run.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let calls = Rc::new(Cell::new(0));
    /// let g = sylvan::spawn(|| ());
    /// let c = calls.clone();
    /// let id = g.link(move |_| c.set(c.get() + 1));
    /// assert!(g.unlink(id));
    /// assert!(!g.unlink(id)); // already removed
    /// g.join().unwrap();
    /// assert_eq!(calls.get(), 0);
    /// ```
    pub fn unlink(&self, id: LinkId) -> bool {
        let removed = {
            let mut links = self.cell.links.borrow_mut();
            let at = links.iter().position(|(l, _)| *l == id);
            at.and_then(|i| links.remove(i))
        };
        // The callback (and what it captured) is dropped here, outside the
        // borrow: its destructor may link or unlink.
        removed.is_some()
    }

    /// Registers a multi-way park (`select`, `iwait`) as a joiner.
    pub(crate) fn register_joiner(&self, token: runtime::WakeToken, arm: u32) {
        self.cell.core.joiners().borrow_mut().push_arm(token, arm);
    }

    /// A multi-way park stops waiting (`notified`: this green thread's end
    /// woke it; every joiner was woken then, so nothing passes on).
    pub(crate) fn unregister_joiner(&self, notified: bool) {
        if !notified {
            self.cell.core.joiners().borrow_mut().cancelled();
        }
    }

    /// A type-erased handle that can kill this green thread.
    pub(crate) fn killer(&self) -> Killer
    where
        T: 'static,
    {
        Killer(self.cell.clone())
    }

    /// The green thread's name, if it was given one.
    ///
    /// # Examples
    ///
    /// ```
    /// let g = sylvan::Builder::new().name("n").spawn(|| ()).unwrap();
    /// assert_eq!(g.name(), Some("n"));
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.cell.core.name().map(|n| &**n)
    }
}

impl<T> Drop for GreenThread<T> {
    #[inline]
    fn drop(&mut self) {
        if !self.cell.core.is_finished() {
            self.cell.core.detach();
            return;
        }
        if let Some(Err(p)) = &*self.cell.result.borrow() {
            log_panic(&self.cell.core, p.as_ref());
        }
        // Unless it finished while `join` waited, its hub kept it listed
        // (finished, not joined) for this handle.
        if !self.cell.core.is_joining() {
            self.cell.core.release();
        }
    }
}

/// Why [`GreenThread::join`] returned no value.
#[non_exhaustive]
pub enum JoinError {
    /// The green thread panicked; the payload is what it panicked with.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The green thread was killed before it ever ran.
    Killed,
    /// The caller's own wait was cancelled (killed, or deadline passed).
    Cancelled(Cancelled),
}

impl JoinError {
    /// The panic message, if the green thread panicked with a string.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(p) => Some(panic_message(p.as_ref())),
            _ => None,
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => f
                .debug_tuple("Panicked")
                .field(&panic_message(p.as_ref()))
                .finish(),
            JoinError::Killed => f.write_str("Killed"),
            JoinError::Cancelled(c) => f.debug_tuple("Cancelled").field(c).finish(),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => {
                write!(f, "green thread panicked: {}", panic_message(p.as_ref()))
            }
            JoinError::Killed => f.write_str("green thread was killed before it ran"),
            JoinError::Cancelled(c) => write!(f, "join was cancelled: {c}"),
        }
    }
}

impl std::error::Error for JoinError {}

/// Runs `f`, catching a panic as [`panic::catch_unwind`] does, except the
/// forced unwind with which the hub tears a green thread down at shutdown:
/// that one always goes on, so no user code keeps running during teardown.
///
/// Every place in sylvan that catches panics of green code uses this.
pub(crate) fn catch_panic<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Err(p) if is_force_unwinding() => panic::resume_unwind(p),
        r => r,
    }
}

/// Whether the running green thread is being force-unwound by its hub.
pub(crate) fn is_force_unwinding() -> bool {
    runtime::is_force_unwinding()
}

/// The context running now; see [`current`].
#[derive(Debug, Clone)]
pub struct Current {
    id: GreenId,
    name: Option<Arc<str>>,
}

impl Current {
    /// The green thread's id (0 for the root context).
    pub fn id(&self) -> GreenId {
        self.id
    }

    /// The green thread's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether this is the root context (the OS thread's own stack).
    pub fn is_root(&self) -> bool {
        self.id.0 == 0
    }
}

/// The green thread running now (or the root context).
///
/// # Examples
///
/// ```
/// let g = sylvan::Builder::new().name("me").spawn(|| sylvan::current()).unwrap();
/// let who = g.join().unwrap();
/// assert_eq!(who.name(), Some("me"));
/// assert!(!who.is_root());
/// ```
pub fn current() -> Current {
    Current {
        id: GreenId(runtime::current_id()),
        name: runtime::current_name(),
    }
}

/// Kills one green thread, whatever its result type; see
/// [`GreenThread::kill`].
#[derive(Clone)]
pub(crate) struct Killer(Rc<dyn Task>);

impl Killer {
    pub(crate) fn kill(&self) {
        self.0.core().kill();
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.0.core().is_finished()
    }

    /// Waits until the green thread has finished; as [`GreenThread::wait`].
    pub(crate) fn wait_at(&self, loc: &'static Location<'static>) -> Result<(), Cancelled> {
        let core = self.0.core();
        while !core.is_finished() {
            runtime::wait_on(core.joiners(), loc)?;
        }
        Ok(())
    }

    /// Ends the green thread now, on the current stack: a suspended one is
    /// force-unwound (its destructors run), one that never ran has its
    /// closure dropped. For `scope`, while the hub force-unwinds the
    /// scope's owner at shutdown: the owner's frames, which the green
    /// thread may borrow, are about to go, and nothing can wait any more.
    ///
    /// The hub finishes the bookkeeping (marks it finished, wakes joiners)
    /// when its shutdown reaches this green thread, whose coroutine is
    /// then gone. Only call it while [`is_force_unwinding`].
    pub(crate) fn unwind_now(&self) {
        debug_assert!(is_force_unwinding());
        self.0.core().unwind_now();
    }
}

/// Waits until every green thread in `handles` has finished, or until
/// `deadline` (if any) passes; returns how many have finished. gevent's
/// `joinall`. The handles are kept: [`join`](GreenThread::join) them for
/// their values.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// sylvan::time::pause();
/// let quick: Vec<_> = (0..3).map(|i| sylvan::spawn(move || i)).collect();
/// assert_eq!(sylvan::join_all(&quick, None), 3);
///
/// let some = [
///     sylvan::spawn(|| sylvan::sleep(Duration::from_millis(1))),
///     sylvan::spawn(|| sylvan::sleep(Duration::from_secs(60))),
/// ];
/// let by = sylvan::time::now() + Duration::from_secs(1);
/// assert_eq!(sylvan::join_all(&some, Some(by)), 1, "the long sleeper still runs");
/// ```
///
/// # Cancellation
///
/// The deadline passing is not an error: `join_all` returns the count so
/// far. If the caller is killed or an enclosing deadline passes while it
/// waits, it also returns the count so far; the cancellation then shows
/// at the caller's next blocking call (a kill is sticky, a passed
/// deadline fails every later call). The green threads are unaffected.
#[track_caller]
pub fn join_all<'a, T: 'a>(
    handles: impl IntoIterator<Item = &'a GreenThread<T>>,
    deadline: Option<Instant>,
) -> usize {
    let loc = Location::caller();
    let handles: Vec<&GreenThread<T>> = handles.into_iter().collect();
    let wait = || {
        for h in &handles {
            if h.wait_at(loc).is_err() {
                return;
            }
        }
    };
    match deadline {
        Some(d) => {
            let _ = crate::time::deadline(d, wait);
        }
        None => wait(),
    }
    handles.iter().filter(|h| h.is_finished()).count()
}

/// Kills every green thread in `handles` that has not finished yet and,
/// if `wait`, waits until they all have; returns how many it killed.
/// gevent's `killall`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let done = sylvan::spawn(|| Ok(()));
/// sylvan::yield_now();
/// let sleepers: Vec<_> = (0..2)
///     .map(|_| sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600))))
///     .collect();
/// let all: Vec<_> = sleepers.iter().chain([&done]).collect();
/// assert_eq!(sylvan::kill_all(all, true), 2);
/// assert!(sleepers.iter().all(|g| g.is_finished()));
/// ```
///
/// # Cancellation
///
/// The kills happen at once. If the caller is killed or its deadline
/// passes while it waits (`wait == true`), `kill_all` stops waiting and
/// returns; the cancellation shows at the caller's next blocking call.
#[track_caller]
pub fn kill_all<'a, T: 'a>(
    handles: impl IntoIterator<Item = &'a GreenThread<T>>,
    wait: bool,
) -> usize {
    let loc = Location::caller();
    let handles: Vec<&GreenThread<T>> = handles.into_iter().filter(|h| !h.is_finished()).collect();
    for h in &handles {
        h.kill();
    }
    if wait {
        for h in &handles {
            if h.wait_at(loc).is_err() {
                break;
            }
        }
    }
    handles.len()
}
