//! [`Pool`]: a connection pool for green threads.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use crate::cancel::Cancelled;
use crate::green::GreenThread;
use crate::runtime::{self, Parked, WakeToken};
use crate::settings::invalid;

type Create<C> = Box<dyn Fn() -> io::Result<C>>;
type Check<C> = Box<dyn Fn(&mut C) -> bool>;

/// Why [`Pool::get`] returned no connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum PoolError {
    /// No connection became available within the checkout timeout.
    Timeout(Duration),
    /// Creating a connection failed (its slot was freed again).
    Create(io::Error),
    /// The caller was killed or its scoped deadline passed while waiting.
    Cancelled(Cancelled),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Timeout(d) => {
                write!(f, "no pooled connection became available within {d:?}")
            }
            PoolError::Create(e) => write!(f, "cannot create a pooled connection: {e}"),
            PoolError::Cancelled(c) => {
                write!(f, "waiting for a pooled connection was cancelled: {c}")
            }
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Create(e) => Some(e),
            PoolError::Cancelled(c) => Some(c),
            PoolError::Timeout(_) => None,
        }
    }
}

impl From<PoolError> for io::Error {
    fn from(e: PoolError) -> io::Error {
        match e {
            PoolError::Timeout(_) => io::Error::new(io::ErrorKind::TimedOut, e),
            PoolError::Create(inner) => inner,
            PoolError::Cancelled(c) => c.into(),
        }
    }
}

/// A connection with its pool bookkeeping.
struct Entry<C> {
    conn: C,
    created: Instant,
    idle_since: Instant,
}

/// What a waiter is handed when it is woken.
enum Gift<C> {
    Conn(Entry<C>),
    /// A slot freed up: the waiter may create a connection.
    Room,
}

struct Waiter<C> {
    token: WakeToken,
    gift: Rc<RefCell<Option<Gift<C>>>>,
}

struct Inner<C> {
    create: Create<C>,
    health_check: Option<Check<C>>,
    is_broken: Option<Check<C>>,
    max_size: usize,
    min_idle: usize,
    checkout_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    idle: RefCell<Vec<Entry<C>>>,
    /// Connections that exist or are being created (idle + in use + creating).
    size: Cell<usize>,
    waiters: RefCell<VecDeque<Waiter<C>>>,
    maintenance: RefCell<Option<GreenThread<()>>>,
    created_total: Cell<u64>,
    create_failures: Cell<u64>,
}

/// A pool of connections shared by the green threads of one hub.
///
/// - At most `max_size` connections exist; [`get`](Self::get) waits (up to
///   the checkout timeout) when all are in use, and waiters are served in
///   arrival order: a returned connection is handed straight to the oldest
///   waiter.
/// - A failed `create` frees its slot at once and wakes a waiter to try in
///   its place — it never leaks capacity (Eventlet's `db_pool` did, PR #527).
///   The same holds when `create`, the health check or `is_broken` panics,
///   or the checkout is cancelled mid-`create`: a drop guard owns the slot
///   until a connection leaves in a [`Pooled`].
/// - On checkout, idle connections past their idle timeout or lifetime are
///   dropped, and the optional health check runs; failures are replaced.
/// - On return, connections marked broken ([`Pooled::mark_broken`]), past
///   their lifetime, or failing the optional `is_broken` check are dropped.
/// - A maintenance green thread keeps `min_idle` connections ready and
///   evicts expired idle ones.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use sylvan::resilience::Pool;
///
/// let l = sylvan::listen("127.0.0.1:0").unwrap();
/// let addr = l.local_addr().unwrap();
/// let _server = sylvan::serve(l, |mut c, _| -> std::io::Result<()> {
///     let mut b = [0; 4];
///     loop {
///         c.read_exact(&mut b)?;
///         c.write_all(&b)?;
///     }
/// });
///
/// let pool = Pool::builder(move || sylvan::connect(addr))
///     .max_size(4)
///     .checkout_timeout(Duration::from_secs(5))
///     .build().unwrap();
/// let mut conn = pool.get().unwrap();
/// conn.write_all(b"ping").unwrap();
/// let mut b = [0; 4];
/// conn.read_exact(&mut b).unwrap();
/// drop(conn); // back to the pool
/// assert_eq!(pool.state().idle, 1);
/// ```
pub struct Pool<C> {
    inner: Rc<Inner<C>>,
}

impl<C> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

impl<C: 'static> fmt::Debug for Pool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("state", &self.state())
            .finish()
    }
}

/// Counts describing a [`Pool`] right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolState {
    /// Connections that exist or are being created.
    pub size: usize,
    /// Connections waiting in the pool.
    pub idle: usize,
    /// Green threads waiting for a connection.
    pub waiters: usize,
    /// Connections created since the pool started.
    pub created: u64,
    /// `create` calls that failed.
    pub create_failures: u64,
}

/// Configures a [`Pool`]; see [`Pool::builder`].
pub struct PoolBuilder<C> {
    create: Create<C>,
    health_check: Option<Check<C>>,
    is_broken: Option<Check<C>>,
    max_size: usize,
    min_idle: usize,
    checkout_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
}

impl<C> fmt::Debug for PoolBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("max_size", &self.max_size)
            .field("min_idle", &self.min_idle)
            .field("checkout_timeout", &self.checkout_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

impl<C: 'static> PoolBuilder<C> {
    /// At most this many connections (default 10; at least 1, else
    /// [`build`](Self::build) fails).
    pub fn max_size(mut self, n: usize) -> Self {
        self.max_size = n;
        self
    }

    /// Keep at least this many idle connections ready (default 0; at most
    /// [`max_size`](Self::max_size), else [`build`](Self::build) fails).
    pub fn min_idle(mut self, n: usize) -> Self {
        self.min_idle = n;
        self
    }

    /// How long `get` may wait for a connection (default 30 s).
    pub fn checkout_timeout(mut self, d: Duration) -> Self {
        self.checkout_timeout = d;
        self
    }

    /// Drop connections idle longer than this (default 10 min; `None`: never).
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Drop connections older than this (default 30 min; `None`: never).
    pub fn max_lifetime(mut self, d: Option<Duration>) -> Self {
        self.max_lifetime = d;
        self
    }

    /// Check a connection before handing it out; `false` drops it and
    /// another is tried (default: none).
    pub fn health_check(mut self, f: impl Fn(&mut C) -> bool + 'static) -> Self {
        self.health_check = Some(Box::new(f));
        self
    }

    /// A cheap check run when a connection comes back; `true` drops it
    /// (default: none; [`Pooled::mark_broken`] always works).
    pub fn is_broken(mut self, f: impl Fn(&mut C) -> bool + 'static) -> Self {
        self.is_broken = Some(Box::new(f));
        self
    }

    /// Builds the pool (and its maintenance green thread).
    ///
    /// # Errors
    ///
    /// `ErrorKind::InvalidInput`, naming the setting and its value, for a
    /// `max_size` of 0 or a `min_idle` above `max_size` (see the crate
    /// docs' [`# Invalid settings`](crate#invalid-settings)); the error of
    /// spawning the maintenance green thread if that fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::Pool;
    ///
    /// let pool = Pool::builder(|| Ok(0u32)).max_size(2).build()?;
    /// assert_eq!(*pool.get().unwrap(), 0);
    /// let e = Pool::builder(|| Ok(0u32)).max_size(2).min_idle(3).build().unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// assert!(e.to_string().contains("min_idle(3)"), "{e}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> io::Result<Pool<C>> {
        if self.max_size == 0 {
            return Err(invalid(
                "Pool max_size",
                0,
                "a pool needs room for at least 1 connection",
            ));
        }
        if self.min_idle > self.max_size {
            return Err(invalid(
                "Pool min_idle",
                self.min_idle,
                &format!("more than max_size ({})", self.max_size),
            ));
        }
        let inner = Rc::new(Inner {
            create: self.create,
            health_check: self.health_check,
            is_broken: self.is_broken,
            max_size: self.max_size,
            min_idle: self.min_idle,
            checkout_timeout: self.checkout_timeout,
            idle_timeout: self.idle_timeout,
            max_lifetime: self.max_lifetime,
            idle: RefCell::new(Vec::new()),
            size: Cell::new(0),
            waiters: RefCell::new(VecDeque::new()),
            maintenance: RefCell::new(None),
            created_total: Cell::new(0),
            create_failures: Cell::new(0),
        });
        let weak = Rc::downgrade(&inner);
        let period = maintenance_period(&inner);
        let m = crate::Builder::new()
            .name("sylvan-pool-maintenance")
            .stack_size(64 * 1024)
            .spawn(move || maintain(weak, period))?;
        *inner.maintenance.borrow_mut() = Some(m);
        Ok(Pool { inner })
    }
}

fn maintenance_period<C>(inner: &Inner<C>) -> Duration {
    let base = [inner.idle_timeout, inner.max_lifetime]
        .into_iter()
        .flatten()
        .min()
        .map_or(Duration::from_secs(30), |d| d / 2);
    base.clamp(Duration::from_millis(100), Duration::from_secs(30))
}

fn maintain<C: 'static>(pool: Weak<Inner<C>>, period: Duration) {
    loop {
        {
            let Some(inner) = pool.upgrade() else { return };
            let p = Pool { inner };
            p.evict_expired();
            while p.inner.idle.borrow().len() < p.inner.min_idle
                && p.inner.size.get() < p.inner.max_size
            {
                p.inner.size.set(p.inner.size.get() + 1);
                let slot = Slot::new(&p);
                match p.create_one() {
                    Ok(e) => {
                        slot.keep();
                        p.put_back(e);
                    }
                    Err(_) => break,
                }
            }
        }
        if crate::sleep(period).is_err() {
            return;
        }
    }
}

impl<C: 'static> Pool<C> {
    /// Starts configuring a pool whose connections `create` makes (it may
    /// block: connect, handshake, authenticate).
    pub fn builder(create: impl Fn() -> io::Result<C> + 'static) -> PoolBuilder<C> {
        PoolBuilder {
            create: Box::new(create),
            health_check: None,
            is_broken: None,
            max_size: 10,
            min_idle: 0,
            checkout_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
        }
    }

    /// Counts right now.
    pub fn state(&self) -> PoolState {
        PoolState {
            size: self.inner.size.get(),
            idle: self.inner.idle.borrow().len(),
            waiters: self.inner.waiters.borrow().len(),
            created: self.inner.created_total.get(),
            create_failures: self.inner.create_failures.get(),
        }
    }

    /// Checks a connection out: an idle one that passes the checks, a new
    /// one if there is room, or the next one returned, waiting at most the
    /// checkout timeout.
    ///
    /// # Errors
    ///
    /// [`PoolError::Timeout`], [`PoolError::Create`] (the slot was freed),
    /// [`PoolError::Cancelled`].
    ///
    /// # Panics
    ///
    /// A panic in `create` or in the health check propagates to the caller;
    /// the slot it held is given back first (to the oldest waiter, or
    /// freed), and a connection that was being checked is dropped.
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline while waiting: returns
    /// `PoolError::Cancelled`; the green thread stops waiting, and a
    /// connection handed to it at that moment goes to the next waiter or
    /// back to the pool — none is lost.
    #[track_caller]
    pub fn get(&self) -> Result<Pooled<C>, PoolError> {
        let loc = Location::caller();
        let deadline = runtime::after(self.inner.checkout_timeout);
        let popped = self.inner.idle.borrow_mut().pop();
        let candidate = match popped {
            Some(e) => Some(e),
            None if self.inner.size.get() < self.inner.max_size => {
                self.inner.size.set(self.inner.size.get() + 1);
                None
            }
            None => match self.wait_for_gift(deadline, loc)? {
                Gift::Conn(e) => Some(e),
                // A freed slot was handed to us: it is already counted.
                Gift::Room => None,
            },
        };
        // From here on we own one slot: use the candidate if it passes the
        // checks, or replace it with a new connection in the same slot.
        // Until a connection leaves in a `Pooled`, the guard gives the slot
        // back on every other way out: a failed `create`, a panic in
        // `create` or in the health check, a cancelled `create`.
        let slot = Slot::new(self);
        if let Some(mut e) = candidate {
            if self.usable(&mut e) {
                return Ok(slot.fill(e));
            }
        }
        let e = self.create_one()?;
        Ok(slot.fill(e))
    }

    fn wrap(&self, e: Entry<C>) -> Pooled<C> {
        Pooled {
            entry: Some(e),
            pool: self.clone(),
            broken: false,
        }
    }

    fn wait_for_gift(
        &self,
        deadline: u64,
        loc: &'static Location<'static>,
    ) -> Result<Gift<C>, PoolError> {
        let gift = Rc::new(RefCell::new(None));
        let r = runtime::park_at(loc, Some(deadline), |token| {
            self.inner.waiters.borrow_mut().push_back(Waiter {
                token,
                gift: gift.clone(),
            });
        });
        // A gift is only deposited after a successful wake, so if we hold
        // one, the park returned Woken.
        if let Some(g) = gift.borrow_mut().take() {
            return Ok(g);
        }
        self.inner
            .waiters
            .borrow_mut()
            .retain(|w| w.token.is_waiting() && !Rc::ptr_eq(&w.gift, &gift));
        match r {
            Ok(Parked::OwnDeadline) => Err(PoolError::Timeout(self.inner.checkout_timeout)),
            Ok(Parked::Woken) => Ok(Gift::Room),
            Err(c) => Err(PoolError::Cancelled(c)),
        }
    }

    fn expired(&self, e: &Entry<C>, now: Instant) -> bool {
        self.inner
            .max_lifetime
            .is_some_and(|l| now.duration_since(e.created) >= l)
            || self
                .inner
                .idle_timeout
                .is_some_and(|t| now.duration_since(e.idle_since) >= t)
    }

    /// Not expired, and healthy if a health check is set.
    fn usable(&self, e: &mut Entry<C>) -> bool {
        !self.expired(e, crate::time::now())
            && self
                .inner
                .health_check
                .as_ref()
                .is_none_or(|h| h(&mut e.conn))
    }

    /// Runs `create` for a slot already counted in `size` and held by a
    /// [`Slot`] guard (which frees it if this fails or panics).
    fn create_one(&self) -> Result<Entry<C>, PoolError> {
        match (self.inner.create)() {
            Ok(conn) => {
                self.inner
                    .created_total
                    .set(self.inner.created_total.get() + 1);
                let now = crate::time::now();
                Ok(Entry {
                    conn,
                    created: now,
                    idle_since: now,
                })
            }
            Err(e) => {
                self.inner
                    .create_failures
                    .set(self.inner.create_failures.get() + 1);
                Err(PoolError::Create(e))
            }
        }
    }

    /// A connection stopped existing: hand its slot to the oldest waiter,
    /// or free it.
    fn release_slot(&self) {
        if !self.give(|| Gift::Room) {
            self.inner.size.set(self.inner.size.get() - 1);
        }
    }

    /// Hands a gift to the oldest waiter that is still waiting; returns
    /// whether one took it.
    fn give(&self, gift: impl FnOnce() -> Gift<C>) -> bool {
        loop {
            let Some(w) = self.inner.waiters.borrow_mut().pop_front() else {
                return false;
            };
            if w.token.wake() {
                *w.gift.borrow_mut() = Some(gift());
                return true;
            }
        }
    }

    /// Returns a healthy connection: to the oldest waiter, or to the idle set.
    fn put_back(&self, mut e: Entry<C>) {
        e.idle_since = crate::time::now();
        let mut slot = Some(e);
        if !self.give(|| Gift::Conn(slot.take().expect("given once"))) {
            if let Some(e) = slot {
                self.inner.idle.borrow_mut().push(e);
            }
        }
    }

    fn evict_expired(&self) {
        let idle: Vec<Entry<C>> = std::mem::take(&mut *self.inner.idle.borrow_mut());
        let now = crate::time::now();
        for e in idle {
            if self.expired(&e, now) {
                drop(e);
                self.release_slot();
            } else {
                self.inner.idle.borrow_mut().push(e);
            }
        }
    }

    fn check_in(&self, mut e: Entry<C>, broken: bool) {
        // A panicking `is_broken` drops the connection: free its slot.
        let slot = Slot::new(self);
        let now = crate::time::now();
        let too_old = self
            .inner
            .max_lifetime
            .is_some_and(|l| now.duration_since(e.created) >= l);
        let broken = broken
            || too_old
            || self
                .inner
                .is_broken
                .as_ref()
                .is_some_and(|f| f(&mut e.conn));
        if broken {
            drop(e);
            drop(slot);
        } else {
            slot.keep();
            self.put_back(e);
        }
    }
}

/// One slot counted in the pool's `size` that has no connection in the
/// pool or in a [`Pooled`] yet: a checkout's between winning a slot and
/// handing out a connection, or a connection being judged on return.
///
/// Dropped without [`fill`](Self::fill) or [`keep`](Self::keep) — an
/// error, a panic in `create` or a check, a cancellation — it gives the
/// slot back (to the oldest waiter, or frees it), so no path leaks one:
/// the bug of Eventlet's `db_pool` (PR #527).
struct Slot<'a, C: 'static> {
    pool: &'a Pool<C>,
    kept: bool,
}

impl<'a, C: 'static> Slot<'a, C> {
    fn new(pool: &'a Pool<C>) -> Self {
        Slot { pool, kept: false }
    }

    /// The slot now belongs to a connection that lives on elsewhere.
    fn keep(mut self) {
        self.kept = true;
    }

    /// Hands `e` out in this slot.
    fn fill(self, e: Entry<C>) -> Pooled<C> {
        let pool = self.pool;
        self.keep();
        pool.wrap(e)
    }
}

impl<C: 'static> Drop for Slot<'_, C> {
    fn drop(&mut self) {
        if !self.kept {
            self.pool.release_slot();
        }
    }
}

impl<C> Drop for Inner<C> {
    fn drop(&mut self) {
        if let Some(m) = self.maintenance.get_mut().take() {
            m.kill();
        }
    }
}

/// A checked-out connection; derefs to `C` and goes back to the pool when
/// dropped (or is discarded, if marked broken).
pub struct Pooled<C: 'static> {
    entry: Option<Entry<C>>,
    pool: Pool<C>,
    broken: bool,
}

impl<C: 'static> fmt::Debug for Pooled<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<C: 'static> Pooled<C> {
    /// Marks the connection broken: it is closed instead of returned (call
    /// this after an I/O error on it).
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Takes the connection out of the pool for good (its slot is freed).
    pub fn detach(mut self) -> C {
        let e = self.entry.take().expect("present until dropped");
        self.pool.release_slot();
        e.conn
    }
}

impl<C: 'static> Deref for Pooled<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.entry.as_ref().expect("present until dropped").conn
    }
}

impl<C: 'static> DerefMut for Pooled<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.entry.as_mut().expect("present until dropped").conn
    }
}

impl<C: 'static> Drop for Pooled<C> {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            self.pool.check_in(e, self.broken);
        }
    }
}
