//! [`GreenPool`]: at most N green threads at a time; [`GreenPile`] and
//! [`Imap`] on top of it for results in order, [`ImapUnordered`] for
//! results as they complete.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::error::Error;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{self, Location};
use std::rc::Rc;

use crate::cancel::Cancelled;
use crate::green::{GreenThread, Killer, catch_panic, spawn};
use crate::runtime::panic_message;
use crate::runtime::{self, WaitList};

mod imap;
mod pile;
mod unordered;

pub use imap::Imap;
pub use pile::GreenPile;
pub use unordered::ImapUnordered;

/// Eventlet's default pool size.
const DEFAULT_SIZE: usize = 1000;

/// A pool that runs at most `size` green threads at a time; Eventlet's
/// `GreenPool`.
///
/// [`spawn`](Self::spawn) waits while the pool is full, so a loop that
/// spawns a green thread per request never has more than `size` of them
/// running. A green thread of the pool that spawns into its own full pool
/// does not wait (it would wait for itself): the new job runs inline, in
/// the calling green thread, as Eventlet does.
///
/// A handle (`Clone`, not `Send`): clones share one pool. Panics of pool
/// green threads are never lost: a [`GreenThread`] handle returns them from
/// `join`, and those nobody joins (including every [`spawn_n`](Self::spawn_n)
/// job) are logged with `tracing`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let pool = sylvan::GreenPool::new(2);
/// for i in 0..5 {
///     // The third spawn waits for one of the first two to finish.
///     pool.spawn_n(move || {
///         let _ = sylvan::sleep(Duration::from_millis(i));
///     })
///     .unwrap();
///     assert!(pool.running() <= 2);
/// }
/// pool.wait_all().unwrap();
/// assert_eq!(pool.running(), 0);
/// ```
pub struct GreenPool {
    inner: Rc<Inner>,
}

struct Inner {
    size: Cell<usize>,
    /// Slots in use, including ones handed to a woken spawner that has not
    /// run yet.
    running: Cell<usize>,
    /// Spawners waiting for a slot (not yet handed one, not cancelled).
    queued: Cell<usize>,
    spawners: RefCell<WaitList>,
    idle: RefCell<WaitList>,
    /// The green threads of the pool (started or not).
    members: RefCell<Members>,
}

/// The green threads of a pool: one entry per slot in use, at the index
/// its [`SlotGuard`] holds from admission (so nothing is allocated per
/// job once the vectors have grown), and their ids, for
/// [`Inner::current_is_member`].
#[derive(Default)]
struct Members {
    /// By slot index: the member's id and killer, once spawned.
    slots: Vec<Option<(u64, Killer)>>,
    /// Indexes of `slots` free for the next admission.
    free: Vec<usize>,
    ids: HashSet<u64, BuildHasherDefault<IdHasher>>,
}

impl Members {
    /// An index for a slot just taken.
    fn reserve(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        })
    }

    /// Frees index `at`; its member, if one was spawned, for the caller
    /// to drop outside the borrow (the killer holds the task).
    fn release(&mut self, at: usize) -> Option<Killer> {
        let member = self.slots[at].take();
        self.free.push(at);
        let (id, killer) = member?;
        self.ids.remove(&id);
        Some(killer)
    }
}

/// Hashes green thread ids, which are unique and handed out in sequence:
/// one multiplication (Fibonacci hashing) spreads them over the table, at
/// a fraction of the default hasher's cost.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// How a spawn gets to run: in a slot of its own, or inline in the caller.
enum Admission {
    Slot(SlotGuard),
    Inline,
}

/// A slot of the pool; freed when dropped (when the green thread holding
/// it finishes, panics, is unwound, or is killed before it ran).
struct SlotGuard {
    inner: Rc<Inner>,
    /// Its entry in `inner.members`.
    at: usize,
}

impl SlotGuard {
    /// The guard of a slot just counted in `inner.running`.
    fn new(inner: &Rc<Inner>) -> SlotGuard {
        let at = inner.members.borrow_mut().reserve();
        SlotGuard {
            inner: inner.clone(),
            at,
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let inner = &*self.inner;
        // Dropped outside the borrow: the killer holds the task.
        let killer = inner.members.borrow_mut().release(self.at);
        drop(killer);
        inner.running.set(inner.running.get() - 1);
        inner.fill();
        if inner.running.get() == 0 {
            inner.idle.borrow_mut().wake_all();
        }
    }
}

impl Inner {
    /// Hands free slots to waiting spawners, oldest first.
    fn fill(&self) {
        while self.queued.get() > 0 && self.running.get() < self.size.get() {
            if !self.spawners.borrow_mut().wake_one() {
                // Only cancelled spawners are left, some still counted in
                // `queued` until they run; each calls `fill` as it leaves.
                break;
            }
            self.queued.set(self.queued.get() - 1);
            self.running.set(self.running.get() + 1);
        }
    }

    fn current_is_member(&self) -> bool {
        let id = runtime::current_id();
        // (The root, id 0, never is.)
        id != 0 && self.members.borrow().ids.contains(&id)
    }
}

impl Default for GreenPool {
    /// A pool of 1000, Eventlet's default size.
    fn default() -> Self {
        GreenPool::new(DEFAULT_SIZE)
    }
}

impl Clone for GreenPool {
    fn clone(&self) -> Self {
        GreenPool {
            inner: self.inner.clone(),
        }
    }
}

impl fmt::Debug for GreenPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenPool")
            .field("size", &self.size())
            .field("running", &self.running())
            .field("waiting", &self.waiting())
            .finish()
    }
}

impl GreenPool {
    /// A pool that runs at most `size` green threads at a time
    /// ([`Default`] gives 1000, as Eventlet). A size of 0 makes every
    /// spawn wait until [`resize`](Self::resize) makes room.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = sylvan::GreenPool::new(10);
    /// assert_eq!(pool.free(), 10);
    /// assert_eq!(sylvan::GreenPool::default().size(), 1000);
    /// ```
    pub fn new(size: usize) -> GreenPool {
        GreenPool {
            inner: Rc::new(Inner {
                size: Cell::new(size),
                running: Cell::new(0),
                queued: Cell::new(0),
                spawners: RefCell::new(WaitList::default()),
                idle: RefCell::new(WaitList::default()),
                members: RefCell::new(Members::default()),
            }),
        }
    }

    /// Takes a slot, waiting for one if the pool is full; or says to run
    /// inline when a member of this full pool asks.
    fn admit(&self, loc: &'static Location<'static>) -> Result<Admission, Cancelled> {
        if let Some(a) = self.try_admit() {
            return Ok(a);
        }
        let inner = &*self.inner;
        let mut registered = false;
        let r = runtime::park_at(loc, None, |t| {
            registered = true;
            inner.spawners.borrow_mut().push(t);
            inner.queued.set(inner.queued.get() + 1);
        });
        match r {
            // Only `fill` wakes our token, and it handed us a slot.
            Ok(_) => Ok(Admission::Slot(SlotGuard::new(&self.inner))),
            Err(c) => {
                if registered {
                    inner.queued.set(inner.queued.get() - 1);
                    inner.spawners.borrow_mut().cancelled();
                    // While we were still counted as queued, a newcomer may
                    // have queued behind us although a slot was free.
                    inner.fill();
                }
                Err(c)
            }
        }
    }

    /// [`admit`](Self::admit) without waiting: `None` if that would wait.
    fn try_admit(&self) -> Option<Admission> {
        let inner = &*self.inner;
        if inner.queued.get() == 0 && inner.running.get() < inner.size.get() {
            inner.running.set(inner.running.get() + 1);
            return Some(Admission::Slot(SlotGuard::new(&self.inner)));
        }
        inner.current_is_member().then_some(Admission::Inline)
    }

    /// Spawns `f` as a member of the pool, in the slot `guard`.
    fn spawn_in<T: 'static>(guard: SlotGuard, f: impl FnOnce() -> T + 'static) -> GreenThread<T> {
        let (inner, at) = (guard.inner.clone(), guard.at);
        let g = spawn(move || {
            let guard = guard;
            let v = f();
            drop(guard);
            v
        });
        // It has not run yet: it is a member from now until its slot is
        // freed (it finishes, is unwound, or is dropped unrun).
        let id = g.id().as_u64();
        let mut members = inner.members.borrow_mut();
        members.slots[at] = Some((id, g.killer()));
        members.ids.insert(id);
        drop(members);
        g
    }

    /// Kills every green thread of the pool, [`spawn_n`](Self::spawn_n)
    /// jobs and those not started yet included, and returns how many.
    /// Returns at once; [`wait_all`](Self::wait_all) waits for them. A job
    /// run inline in a member (see [`spawn`](Self::spawn)) is part of that
    /// member and dies with it. Spawners still waiting for a slot are not
    /// jobs yet and are not affected: they get the slots freed.
    ///
    /// Killing is by error, as [`GreenThread::kill`]: a job's blocking
    /// calls fail with [`Cancelled::Killed`] from then on; one that has
    /// not started never runs. Called from a member, it kills the caller
    /// too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = sylvan::GreenPool::new(4);
    /// for _ in 0..3 {
    ///     pool.spawn_n(|| {
    ///         let _ = sylvan::sleep(Duration::from_secs(3600));
    ///     })
    ///     .unwrap();
    /// }
    /// sylvan::yield_now(); // they start and sleep
    /// assert_eq!(pool.kill_all(), 3);
    /// pool.wait_all().unwrap(); // returns at once: the sleeps failed
    /// assert_eq!(pool.running(), 0);
    /// ```
    pub fn kill_all(&self) -> usize {
        let members = self.inner.members.borrow();
        let mut n = 0;
        let killers = members.slots.iter().flatten().map(|(_, k)| k);
        for k in killers.filter(|k| !k.is_finished()) {
            k.kill();
            n += 1;
        }
        n
    }

    /// Spawns `f` as a green thread of the pool, waiting while the pool is
    /// full, and returns its handle.
    ///
    /// Called by a green thread of this pool while the pool is full, it
    /// runs `f` at once, inline, and returns a handle that joins its result
    /// (a panic of `f` is caught and comes out of that `join`): waiting
    /// would deadlock if every member did it.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = sylvan::GreenPool::new(4);
    /// let g = pool.spawn(|| 6 * 7).unwrap();
    /// assert_eq!(g.join().unwrap(), 42);
    /// ```
    ///
    /// # Cancellation
    ///
    /// If the caller is killed or its deadline passes while waiting for a
    /// slot, returns [`SpawnError`] holding `f`, which was not spawned; the
    /// caller is no longer waiting and took no slot. A slot is handed only
    /// to a spawner that is still waiting, so none is lost.
    ///
    /// # Errors
    ///
    /// Only cancellation, as above.
    ///
    /// # Panics
    ///
    /// If no stack can be allocated, as [`sylvan::spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<T, F>(&self, f: F) -> Result<GreenThread<T>, SpawnError<F>>
    where
        T: 'static,
        F: FnOnce() -> T + 'static,
    {
        match self.admit(Location::caller()) {
            Ok(Admission::Slot(guard)) => Ok(GreenPool::spawn_in(guard, f)),
            Ok(Admission::Inline) => Ok(match catch_panic(f) {
                // A green thread that just hands the result over.
                Ok(v) => spawn(move || v),
                Err(p) => spawn(move || -> T { panic::resume_unwind(p) }),
            }),
            Err(cause) => Err(SpawnError { f, cause }),
        }
    }

    /// Spawns `f` as a green thread of the pool without keeping a handle
    /// (Eventlet's `spawn_n`), waiting while the pool is full. A panic of
    /// `f` is logged with `tracing`.
    ///
    /// Called by a green thread of this pool while the pool is full, it
    /// runs `f` inline, as [`spawn`](Self::spawn) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let pool = sylvan::GreenPool::new(3);
    /// let sum = Rc::new(Cell::new(0));
    /// for i in 1..=10 {
    ///     let sum = sum.clone();
    ///     pool.spawn_n(move || sum.set(sum.get() + i)).unwrap();
    /// }
    /// pool.wait_all().unwrap();
    /// assert_eq!(sum.get(), 55);
    /// ```
    ///
    /// # Cancellation
    ///
    /// As [`spawn`](Self::spawn).
    ///
    /// # Errors
    ///
    /// Only cancellation.
    ///
    /// # Panics
    ///
    /// As [`spawn`](Self::spawn).
    #[track_caller]
    pub fn spawn_n<F>(&self, f: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce() + 'static,
    {
        match self.admit(Location::caller()) {
            // Dropping the handle detaches it: an unjoined panic is logged.
            Ok(Admission::Slot(guard)) => drop(GreenPool::spawn_in(guard, f)),
            Ok(Admission::Inline) => {
                if let Err(p) = catch_panic(f) {
                    log_lost_panic(p.as_ref());
                }
            }
            Err(cause) => return Err(SpawnError { f, cause }),
        }
        Ok(())
    }

    /// Waits until no green thread of the pool is running (and none is
    /// waiting to start); Eventlet's `waitall`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = sylvan::GreenPool::new(2);
    /// for _ in 0..4 {
    ///     pool.spawn_n(|| sylvan::yield_now()).unwrap();
    /// }
    /// pool.wait_all().unwrap();
    /// assert_eq!(pool.running(), 0);
    /// ```
    ///
    /// # Cancellation
    ///
    /// If the caller is killed or its deadline passes while waiting,
    /// returns [`Cancelled`]; the pool is unaffected.
    ///
    /// # Errors
    ///
    /// Only cancellation.
    ///
    /// # Panics
    ///
    /// If called from a green thread of this pool: it would wait for
    /// itself forever.
    #[track_caller]
    pub fn wait_all(&self) -> Result<(), Cancelled> {
        let loc = Location::caller();
        assert!(
            !self.inner.current_is_member(),
            "GreenPool::wait_all called from one of the pool's own green threads: it would wait for itself forever"
        );
        while self.inner.running.get() > 0 {
            runtime::wait_on(&self.inner.idle, loc)?;
        }
        Ok(())
    }

    /// Runs `f` on every item of `iter` in green threads of the pool and
    /// returns an iterator over the results **in input order**; Eventlet's
    /// `imap`.
    ///
    /// Memory stays bounded by the pool's size: at most `size` jobs are
    /// started and not yet consumed (running or finished), and the next
    /// input item is taken only when a result has been consumed. Items are
    /// `Result<T, JoinError>`: `Err(JoinError::Panicked(..))` if `f`
    /// panicked on that item. Input is consumed lazily, when the iterator
    /// is advanced.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = sylvan::GreenPool::new(4);
    /// let out: Vec<u64> = pool
    ///     .imap(
    ///         |n: u64| {
    ///             // Later items finish first; results still come in order.
    ///             sylvan::sleep(Duration::from_millis(10 - n)).unwrap();
    ///             n * n
    ///         },
    ///         0..10,
    ///     )
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(out, vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    /// ```
    ///
    /// # Cancellation
    ///
    /// See [`Imap`]: a cancelled wait yields `Err(JoinError::Cancelled)`
    /// and then `None` once; no input item or result is lost, and advancing
    /// the iterator again resumes.
    pub fn imap<I, F, T>(&self, f: F, iter: I) -> Imap<I::IntoIter, T>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> T + 'static,
        T: 'static,
    {
        Imap::new(self.clone(), Rc::new(f), iter.into_iter())
    }

    /// Runs `f` on every item of `iter` in green threads of the pool and
    /// returns an iterator over the results **as they complete**; gevent's
    /// `imap_unordered`.
    ///
    /// Bounded as [`imap`](Self::imap) is: at most `size` jobs started and
    /// not yet consumed, input taken lazily. Items are
    /// `Result<T, JoinError>`: `Err(JoinError::Panicked(..))` if `f`
    /// panicked on that item.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// sylvan::time::pause();
    /// let pool = sylvan::GreenPool::new(4);
    /// let got: Vec<u64> = pool
    ///     .imap_unordered(
    ///         |n: u64| {
    ///             sylvan::sleep(Duration::from_secs(10 - n)).unwrap();
    ///             n
    ///         },
    ///         0..4,
    ///     )
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(got, vec![3, 2, 1, 0]); // fastest first
    /// ```
    ///
    /// # Cancellation
    ///
    /// See [`ImapUnordered`]: a cancelled wait yields
    /// `Err(JoinError::Cancelled)` and then `None` once; no input item or
    /// result is lost, and advancing the iterator again resumes.
    pub fn imap_unordered<I, F, T>(&self, f: F, iter: I) -> ImapUnordered<I::IntoIter, T>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> T + 'static,
        T: 'static,
    {
        ImapUnordered::new(self.clone(), Rc::new(f), iter.into_iter())
    }

    /// Green threads of the pool running now (and slots just handed to a
    /// waiting spawner).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = sylvan::GreenPool::new(5);
    /// let g = pool.spawn(|| ()).unwrap();
    /// assert_eq!(pool.running(), 1);
    /// g.join().unwrap();
    /// assert_eq!(pool.running(), 0);
    /// ```
    pub fn running(&self) -> usize {
        self.inner.running.get()
    }

    /// How many more green threads could start without waiting (0 when
    /// full, and while a [`resize`](Self::resize) down is still draining).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = sylvan::GreenPool::new(2);
    /// let _g = pool.spawn(|| ()).unwrap();
    /// assert_eq!(pool.free(), 1);
    /// ```
    pub fn free(&self) -> usize {
        self.size().saturating_sub(self.running())
    }

    /// Spawners waiting for a slot.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::GreenPool::new(1).waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        self.inner.queued.get()
    }

    /// The most green threads the pool runs at once.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::GreenPool::new(7).size(), 7);
    /// ```
    pub fn size(&self) -> usize {
        self.inner.size.get()
    }

    /// Changes the pool's size. Growing it starts waiting spawners at
    /// once. Shrinking it below [`running`](Self::running) stops nothing:
    /// running green threads finish, and new ones start only once fewer
    /// than `size` run.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = sylvan::GreenPool::new(1);
    /// pool.resize(3);
    /// assert_eq!(pool.free(), 3);
    /// ```
    pub fn resize(&self, size: usize) {
        self.inner.size.set(size);
        self.inner.fill();
    }
}

/// Logs a panic that nobody can join.
fn log_lost_panic(payload: &(dyn std::any::Any + Send)) {
    tracing::error!(
        "green pool job panicked and nobody joined it: {}",
        panic_message(payload)
    );
}

/// [`GreenPool::spawn`] (or [`GreenPile::spawn`]) was cancelled while
/// waiting for a slot; holds the closure, which was not spawned.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// sylvan::time::pause();
/// let pool = sylvan::GreenPool::new(1);
/// let busy = pool.spawn(|| sylvan::sleep(Duration::from_secs(60))).unwrap();
/// let mut back = None;
/// let _ = sylvan::timeout(Duration::from_secs(1), || {
///     back = pool.spawn(|| "job").err().map(|e| e.into_inner());
/// });
/// let job = back.expect("the spawn waited and timed out");
/// assert_eq!(job(), "job"); // handed back, not lost
/// busy.join().unwrap().unwrap();
/// ```
pub struct SpawnError<F> {
    f: F,
    cause: Cancelled,
}

impl<F> SpawnError<F> {
    /// The closure that was not spawned.
    pub fn into_inner(self) -> F {
        self.f
    }

    /// Why the spawn gave up.
    pub fn cause(&self) -> Cancelled {
        self.cause
    }
}

impl<F> fmt::Debug for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnError")
            .field("cause", &self.cause)
            .finish_non_exhaustive()
    }
}

impl<F> fmt::Display for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spawn into a green pool was cancelled: {}", self.cause)
    }
}

impl<F> Error for SpawnError<F> {}

impl<F> From<SpawnError<F>> for Cancelled {
    fn from(e: SpawnError<F>) -> Cancelled {
        e.cause
    }
}
