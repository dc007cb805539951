//! Scoped green threads: [`scope`], [`Scope`], [`ScopedGreenThread`].
//!
//! This lives under `runtime/` because it holds an `unsafe` lifetime
//! erasure ([`erase`]): a scoped green thread borrows from its caller's
//! stack, yet the hub stores every green thread's closure as `'static`.
//! The whole module is what makes that sound: `scope` does not return —
//! normally, by panic, when its caller is cancelled, or while its caller
//! is force-unwound at hub shutdown — until every green thread it spawned
//! has finished or been unwound, and a green thread leaked at thread exit
//! never runs again (see the hub's invariants).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::thread;

use super::hub::may_suspend;
use crate::cancel::Cancelled;
use crate::green::{
    Builder, GreenId, GreenThread, JoinError, Killer, catch_panic, is_force_unwinding,
};

/// Runs `f` with a [`Scope`] whose green threads may borrow from the
/// caller's stack, and returns only once every one of them has finished;
/// `std::thread::scope` for green threads.
///
/// After `f` returns, `scope` waits for the green threads `f` spawned
/// (and those they spawned in the scope). If `f` panics, or the caller is
/// killed or its deadline passes while `scope` waits, the green threads
/// still running are [killed](crate::GreenThread::kill) and then waited
/// for. In every case — a leaked (`mem::forget`) handle, a panic, a
/// cancelled caller, the caller force-unwound at hub
/// [`shutdown`](crate::shutdown) — `scope` does not return or unwind past
/// the caller's frame while a green thread of the scope can still run, so
/// the borrows are sound.
///
/// # Examples
///
/// ```
/// let words = vec!["green", "threads"];
/// let mut total = 0;
/// let lens: Vec<usize> = sylvan::scope(|s| {
///     let hs: Vec<_> = words.iter().map(|w| s.spawn(move || w.len())).collect();
///     s.spawn(|| total = words.len()); // a mutable borrow, too
///     hs.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// assert_eq!(lens, vec![5, 7]);
/// assert_eq!(total, 2);
/// ```
///
/// # Panics
///
/// If `f` panics, that panic is resumed once the green threads are done.
/// Otherwise, if a green thread of the scope panicked and its panic was
/// not taken by [`ScopedGreenThread::join`], `scope` panics after waiting
/// (as `std::thread::scope` does). Also as [`spawn`](crate::spawn), if a
/// stack cannot be allocated.
///
/// # Cancellation
///
/// If the caller is killed or its deadline passes while `scope` waits,
/// the remaining green threads are killed (their blocking calls fail
/// with [`Cancelled::Killed`]) and `scope` goes on waiting for them:
/// that last wait cannot be cancelled, since they hold borrows of the
/// caller's stack. It then returns `f`'s value; the cancellation shows
/// at the caller's next blocking call (a kill is sticky, a passed
/// deadline fails every later call, and [`timeout`](crate::timeout)
/// reports `Elapsed`).
///
/// Where the caller may not suspend at all — a destructor running while
/// its thread unwinds, or one the hub runs — `scope` cannot wait, so
/// [`Scope::spawn`] runs each closure at once, inline, to completion,
/// before returning its (finished) handle; every blocking call in it
/// fails at once with [`Cancelled::Killed`], as in [`run`](crate::run).
/// When the hub force-unwinds the caller at shutdown while green threads
/// of the scope are alive, `scope` unwinds them first, on the spot, so
/// their destructors run while what they borrow is still alive.
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        children: RefCell::new(Vec::new()),
        unjoined_panics: Rc::new(Cell::new(0)),
        inline: Cell::new(!caller_may_suspend()),
        loc: Location::caller(),
        scope: PhantomData,
        env: PhantomData,
    };
    // Unwinding past this frame (the hub's forced unwind) ends the green
    // threads first; on every other path it finds them finished.
    let guard = EndGuard(&scope);
    let body = catch_panic(|| f(&scope));
    if body.is_err() {
        scope.kill_all();
    }
    let waited = catch_panic(|| scope.wait_all());
    if !matches!(waited, Ok(Ok(()))) {
        // Cancelled, or a panic inside the wait (the root's deadlock
        // report): they must end anyway.
        scope.kill_all();
        scope.end_all();
    }
    drop(guard);
    match (body, waited) {
        (Err(p), _) | (_, Err(p)) => panic::resume_unwind(p),
        (Ok(v), _) => {
            if scope.unjoined_panics.get() > 0 {
                panic!("a scoped green thread panicked");
            }
            v
        }
    }
}

/// Whether the caller of `scope` may suspend (creating this thread's hub
/// if it has none yet: a first sylvan call may be a `scope`).
fn caller_may_suspend() -> bool {
    crate::runtime::hub::hub_unless_exiting()
        .is_some_and(|h| h.cannot_suspend(h.current_core()).is_none())
}

/// Ends the scope's green threads if `scope` is left by unwinding.
struct EndGuard<'a, 'scope, 'env>(&'a Scope<'scope, 'env>);

impl Drop for EndGuard<'_, '_, '_> {
    fn drop(&mut self) {
        self.0.end_all();
    }
}

/// The scope of [`scope`]: spawns green threads that may borrow anything
/// that outlives it.
///
/// # Examples
///
/// ```
/// let mut n = 0;
/// sylvan::scope(|s| {
///     s.spawn(|| n += 1);
/// });
/// assert_eq!(n, 1);
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    children: RefCell<Vec<Killer>>,
    /// Panics of green threads of the scope not taken by a `join`.
    unjoined_panics: Rc<Cell<usize>>,
    /// Whether the caller cannot wait: `spawn` runs closures at once.
    inline: Cell<bool>,
    loc: &'static Location<'static>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let children = self.children.borrow();
        f.debug_struct("Scope")
            .field("spawned", &children.len())
            .field(
                "running",
                &children.iter().filter(|k| !k.is_finished()).count(),
            )
            .field("at", &self.loc)
            .finish()
    }
}

type Slot<T> = Rc<RefCell<Option<thread::Result<T>>>>;

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns a green thread that may borrow anything living longer than
    /// the scope; [`scope`] waits for it.
    ///
    /// # Examples
    ///
    /// ```
    /// let data = [1, 2, 3];
    /// let sum = sylvan::scope(|s| {
    ///     let h = s.spawn(|| data.iter().sum::<i32>());
    ///     h.join().unwrap()
    /// });
    /// assert_eq!(sum, 6);
    /// ```
    ///
    /// # Panics
    ///
    /// If no stack can be allocated, as [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedGreenThread<'scope, T>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        let slot: Slot<T> = Rc::default();
        if self.inline.get() {
            // Nobody can wait: run it to the end now. Nothing here can
            // suspend, so no forced unwind can start inside `f`, and its
            // own panic is caught as it is.
            let r = panic::catch_unwind(AssertUnwindSafe(f));
            if r.is_err() {
                self.unjoined_panics.set(self.unjoined_panics.get() + 1);
            }
            *slot.borrow_mut() = Some(r);
            return ScopedGreenThread {
                thread: None,
                slot,
                unjoined_panics: self.unjoined_panics.clone(),
                scope: PhantomData,
            };
        }
        let (theirs, panics) = (slot.clone(), self.unjoined_panics.clone());
        let job: Box<dyn FnOnce() + 'scope> = Box::new(move || {
            let r = catch_panic(f);
            if r.is_err() {
                panics.set(panics.get() + 1);
            }
            // Dropped here, on this green thread's stack, if the handle
            // is gone.
            *theirs.borrow_mut() = Some(r);
        });
        // SAFETY: `scope` does not return, nor unwind past its caller's
        // frame, before this green thread has finished or been unwound
        // (it is in `children`, which `wait_all`/`end_all` go through);
        // a green thread leaked at thread exit never runs again. So the
        // closure is not run after `'scope` ends. (One gap, shared with
        // every green thread and documented in the crate docs: a
        // thread-local destructor that blocks while its thread exits,
        // before the hub's own destructor, runs the hub; see the hub's
        // module invariants.)
        let job = unsafe { erase(job) };
        let g = match Builder::new().spawn(job) {
            Ok(g) => g,
            Err(e) => panic!("sylvan::Scope::spawn: {e}"),
        };
        self.children.borrow_mut().push(g.killer());
        ScopedGreenThread {
            thread: Some(g),
            slot,
            unjoined_panics: self.unjoined_panics.clone(),
            scope: PhantomData,
        }
    }

    fn kill_all(&self) {
        let mut i = 0;
        while let Some(k) = self.child(i) {
            k.kill();
            i += 1;
        }
    }

    /// The `i`th green thread spawned, without holding the borrow (green
    /// threads may spawn more while we wait).
    fn child(&self, i: usize) -> Option<Killer> {
        self.children.borrow().get(i).cloned()
    }

    /// Waits for every green thread of the scope, cancellably.
    fn wait_all(&self) -> Result<(), Cancelled> {
        let mut i = 0;
        while let Some(k) = self.child(i) {
            k.wait_at(self.loc)?;
            i += 1;
        }
        Ok(())
    }

    /// Makes sure no green thread of the scope can run any more, without
    /// failing: waits for the killed green threads by yielding; where the
    /// caller cannot suspend, unwinds them on the spot (the hub's forced
    /// unwind) or, if even that is impossible, aborts.
    fn end_all(&self) {
        loop {
            let mut running = false;
            let mut i = 0;
            while let Some(k) = self.child(i) {
                if !k.is_finished() {
                    k.kill();
                    running = true;
                }
                i += 1;
            }
            if !running {
                return;
            }
            if may_suspend() {
                crate::time::yield_now();
                continue;
            }
            // From here on, green threads spawned in the scope run inline.
            self.inline.set(true);
            if !is_force_unwinding() {
                // Unreachable by design (the caller suspended when `scope`
                // started, and `scope` catches the panics of `f` and of its
                // own wait), but never let borrowed frames go while a green
                // thread that uses them may still run.
                eprintln!(
                    "sylvan::scope (at {}): green threads of the scope are still running and \
                     the caller can neither wait for them nor leave them (they borrow its \
                     stack); aborting",
                    self.loc
                );
                std::process::abort();
            }
            let mut i = 0;
            while let Some(k) = self.child(i) {
                k.unwind_now();
                i += 1;
            }
            return;
        }
    }
}

/// The handle of a green thread spawned by [`Scope::spawn`]: join it,
/// kill it, ask whether it finished. Dropping or leaking it does not
/// detach the green thread: [`scope`] waits for it anyway.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let r = sylvan::scope(|s| {
///     let h = s.spawn(|| sylvan::sleep(Duration::from_secs(60)));
///     sylvan::yield_now();
///     h.kill();
///     h.join().unwrap()
/// });
/// assert_eq!(r, Err(sylvan::Cancelled::Killed));
/// ```
pub struct ScopedGreenThread<'scope, T> {
    /// `None` when it ran inline (see [`scope`]'s `# Cancellation`).
    thread: Option<GreenThread<()>>,
    slot: Slot<T>,
    unjoined_panics: Rc<Cell<usize>>,
    scope: PhantomData<&'scope ()>,
}

impl<T> fmt::Debug for ScopedGreenThread<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedGreenThread")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> ScopedGreenThread<'_, T> {
    /// Waits for the green thread to finish and returns its value; as
    /// [`GreenThread::join`]. Taking a panic here keeps [`scope`] from
    /// panicking for it.
    ///
    /// # Examples
    ///
    /// ```
    /// sylvan::scope(|s| {
    ///     let h = s.spawn(|| panic!("taken"));
    ///     assert_eq!(h.join().unwrap_err().panic_message(), Some("taken"));
    /// }); // no panic here: it was joined
    /// ```
    ///
    /// # Errors
    ///
    /// As [`GreenThread::join`]: `Panicked`, `Killed` (before it ran), or
    /// `Cancelled` (the caller's wait).
    ///
    /// # Cancellation
    ///
    /// If the caller is killed or its deadline passes while waiting,
    /// returns [`JoinError::Cancelled`] and drops the handle; the green
    /// thread goes on, and `scope` still waits for it.
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        self.wait().map_err(JoinError::Cancelled)?;
        match self.slot.borrow_mut().take() {
            Some(Ok(v)) => Ok(v),
            Some(Err(p)) => {
                self.unjoined_panics.set(self.unjoined_panics.get() - 1);
                Err(JoinError::Panicked(p))
            }
            None => Err(JoinError::Killed),
        }
    }

    /// Waits for the green thread to finish, keeping the handle.
    ///
    /// # Examples
    ///
    /// ```
    /// sylvan::scope(|s| {
    ///     let h = s.spawn(|| 1);
    ///     h.wait().unwrap();
    ///     assert!(h.is_finished());
    /// });
    /// ```
    ///
    /// # Cancellation
    ///
    /// If the caller is killed or its deadline passes, returns
    /// [`Cancelled`]; the green thread is unaffected.
    #[track_caller]
    pub fn wait(&self) -> Result<(), Cancelled> {
        match &self.thread {
            Some(g) => g.wait(),
            None => Ok(()),
        }
    }

    /// Kills the green thread; as [`GreenThread::kill`].
    ///
    /// # Examples
    ///
    /// ```
    /// sylvan::scope(|s| {
    ///     let h = s.spawn(|| 1);
    ///     h.kill(); // before it ran
    ///     assert!(matches!(h.join(), Err(sylvan::JoinError::Killed)));
    /// });
    /// ```
    pub fn kill(&self) {
        if let Some(g) = &self.thread {
            g.kill();
        }
    }

    /// Whether the green thread has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// sylvan::scope(|s| {
    ///     let h = s.spawn(|| ());
    ///     assert!(!h.is_finished());
    ///     sylvan::yield_now();
    ///     assert!(h.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|g| g.is_finished())
    }

    /// The green thread's id; `None` if its closure ran inline because
    /// the caller could not suspend (see [`scope`]).
    ///
    /// # Examples
    ///
    /// ```
    /// sylvan::scope(|s| {
    ///     let h = s.spawn(|| sylvan::current().id());
    ///     let id = h.id().unwrap();
    ///     assert_eq!(h.join().unwrap(), id);
    /// });
    /// ```
    pub fn id(&self) -> Option<GreenId> {
        self.thread.as_ref().map(GreenThread::id)
    }
}

/// Erases the lifetime of a scoped green thread's closure.
///
/// # Safety
///
/// The caller must ensure the returned closure is called or dropped, and
/// is never run afterwards, before `'a` ends: nothing it borrows may be
/// used after the borrow's owner is gone. `scope` ensures it by waiting
/// for (or unwinding) every green thread it spawned before it returns or
/// unwinds past its caller's frame.
unsafe fn erase<'a>(f: Box<dyn FnOnce() + 'a>) -> Box<dyn FnOnce() + 'static> {
    // SAFETY: the two types differ only in the lifetime bound, so they
    // have the same layout (a fat pointer with the same vtable); the
    // caller guarantees the closure does not outlive `'a` (see `# Safety`).
    unsafe { std::mem::transmute::<Box<dyn FnOnce() + 'a>, Box<dyn FnOnce() + 'static>>(f) }
}
