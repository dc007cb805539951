//! Waiting for the first of several things: [`Select`] (Go's `select`,
//! crossbeam's `Select`) and gevent's [`wait`]/[`iwait`].
//!
//! A [`Select`] lists operations — a queue get or put, a channel receive
//! or send, an event wait, a green thread's end, a semaphore acquire, a
//! deadline — and [`select`](Select::select) performs **exactly one** of
//! them: the first that can complete. The green thread parks once, on all
//! of them; the operations that did not fire are left untouched (no item
//! taken, no permit held, a value that was not put is still in its slot).
//!
//! [`wait`] and [`iwait`] wait for [`Waitable`]s (green threads, events,
//! queues, receivers) to become ready without consuming anything:
//! gevent's `gevent.wait(objects, count=...)` and `gevent.iwait(objects)`.
//!
//! # How it works
//!
//! Every operation has a non-blocking attempt (`try_get`, `try_put`,
//! `try_recv`, ...). `select` tries them in a random order; if none
//! completes it registers one waiter on every operation (each registration
//! tagged with its arm), parks once, and when woken tries the arm whose
//! registration woke it first, then all of them again. Before it tries
//! again it leaves every waiter list, passing on any wake-up it received
//! and did not use, so another waiter never misses one. A semaphore hands
//! its permit to the waiter it wakes: a select woken by a semaphore takes
//! that arm.
//!
//! Within one hub all of this is single-threaded, so "the first to
//! complete" is simply the first attempt that succeeds. A channel's other
//! end may be on another OS thread; channels never hand anything to a
//! waiter directly (a waiter is woken, then takes), so a select takes a
//! value from a channel only in its own attempt, never behind its back:
//! the cross-thread race is the one every `recv` already has, and a
//! wake-up a select did not use is passed to the next waiter.

mod arms;
mod wait;

use std::fmt;
use std::panic::Location;
use std::time::{Duration, Instant};

use crate::cancel::Cancelled;
use crate::green::GreenThread;
use crate::runtime;
use crate::sync::{
    Event, GetError, PutError, Queue, Receiver, RecvError, SemaphorePermit, SendError, Sender,
};
use crate::{JoinError, sync::Semaphore};

pub use wait::{Iwait, Waitable, iwait, wait};

use arms::{AcquireArm, Arm, DeadlineArm, GetArm, JoinArm, PutArm, RecvArm, SendArm, WaitArm};

/// Performs the first of several blocking operations that can complete;
/// Go's `select`, crossbeam's `Select`.
///
/// Each arm names an operation and a closure that turns its outcome into
/// the select's result `R` (typically an enum saying which arm fired).
/// [`select`](Self::select) performs exactly one operation and returns
/// its closure's value; the other operations do not happen. Values to put
/// or send live in `&mut Option<T>` slots owned by the caller: the winning
/// arm takes its value, a losing one leaves it where it was. An empty slot
/// disables its arm (as a `nil` channel does in Go), and so does an empty
/// [`join`](Self::join) slot.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::select::Select;
/// use sylvan::sync::{Event, Queue};
///
/// enum Got {
///     Job(u32),
///     Stop,
///     Idle,
/// }
///
/// let jobs = Queue::unbounded();
/// let stop = Event::new();
/// jobs.put(7).unwrap();
/// let mut done = Vec::new();
/// loop {
///     let got = Select::new()
///         .get(&jobs, |r| Got::Job(r.unwrap()))
///         .wait(&stop, |()| Got::Stop)
///         .timeout(Duration::from_millis(10), || Got::Idle)
///         .select()
///         .unwrap();
///     match got {
///         Got::Job(j) => done.push(j),
///         Got::Idle => stop.send(()).unwrap(), // nothing more to do
///         Got::Stop => break,
///     }
/// }
/// assert_eq!(done, [7]);
/// ```
///
/// A put that loses keeps its value:
///
/// ```
/// use sylvan::select::Select;
/// use sylvan::sync::Queue;
///
/// let full = Queue::bounded(1);
/// full.put(0).unwrap();
/// let ready = Queue::unbounded();
/// ready.put("news").unwrap();
///
/// let mut item = Some(1);
/// let which = Select::new()
///     .put(&full, &mut item, |_| "put")
///     .get(&ready, |_| "got")
///     .select()
///     .unwrap();
/// assert_eq!(which, "got");
/// assert_eq!(item, Some(1)); // not put, still ours
/// assert_eq!(full.len(), 1);
/// ```
///
/// # Fairness
///
/// When several arms can complete at once, one is chosen **uniformly at
/// random** (as Go does), so an arm that is always ready cannot starve
/// another. When the select was parked and one operation woke it, that
/// operation is tried first.
///
/// # What can be selected
///
/// Everything here is hub-local ([`Queue`], [`Event`], [`Semaphore`],
/// [`GreenThread`]) except channels ([`Sender`], [`Receiver`]), whose
/// other ends may be on any thread. Rendezvous queues and channels
/// (capacity 0) work too: a put or send arm completes when a getter or
/// receiver is waiting for it. The cross-thread locks of
/// [`sync::shared`](crate::sync::shared) and the hub-local locks are not
/// selectable (wait for them in a green thread of their own, and select
/// on its [`join`](Self::join) or on a queue it fills).
///
/// # Cancellation
///
/// See [`select`](Self::select).
pub struct Select<'a, R> {
    arms: Vec<Box<dyn Arm<R> + 'a>>,
}

impl<R> fmt::Debug for Select<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("arms", &self.arms.len())
            .finish()
    }
}

impl<R> Default for Select<'_, R> {
    fn default() -> Self {
        Select::new()
    }
}

impl<'a, R> Select<'a, R> {
    /// A select with no arms yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let sel = sylvan::select::Select::<()>::new();
    /// assert_eq!(sel.len(), 0);
    /// ```
    pub fn new() -> Select<'a, R> {
        Select { arms: Vec::new() }
    }

    /// How many arms there are.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::<u8>::unbounded();
    /// let sel = sylvan::select::Select::new().get(&q, |_| ());
    /// assert_eq!(sel.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.arms.len()
    }

    /// Whether there are no arms.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sylvan::select::Select::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.arms.is_empty()
    }

    fn arm(mut self, arm: impl Arm<R> + 'a) -> Self {
        self.arms.push(Box::new(arm));
        self
    }

    /// An arm that takes an item from `queue` ([`Queue::get`]). It fires
    /// with `Ok(item)`, or with `Err(GetError::Closed)` once the queue is
    /// closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::unbounded();
    /// q.put(5).unwrap();
    /// let got = sylvan::select::Select::new().get(&q, |r| r.unwrap()).select();
    /// assert_eq!(got, Ok(5));
    /// ```
    pub fn get<T: 'a>(
        self,
        queue: &'a Queue<T>,
        f: impl FnOnce(Result<T, GetError>) -> R + 'a,
    ) -> Self {
        self.arm(GetArm::new(queue, f))
    }

    /// An arm that puts the item in `slot` on `queue` ([`Queue::put`]).
    /// It fires with `Ok(())` once the item is in the queue (on a
    /// rendezvous queue: handed to a waiting getter), leaving `slot`
    /// empty, or with `Err(PutError::Closed(item))` if the queue is
    /// closed. If another arm fires, the item stays in `slot`. An empty
    /// `slot` disables the arm.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::bounded(1);
    /// let mut item = Some('x');
    /// let r = sylvan::select::Select::new().put(&q, &mut item, |r| r.is_ok()).select();
    /// assert_eq!(r, Ok(true));
    /// assert_eq!(item, None);
    /// assert_eq!(q.try_get(), Some('x'));
    /// ```
    pub fn put<T: 'a>(
        self,
        queue: &'a Queue<T>,
        slot: &'a mut Option<T>,
        f: impl FnOnce(Result<(), PutError<T>>) -> R + 'a,
    ) -> Self {
        self.arm(PutArm::new(queue, slot, f))
    }

    /// An arm that receives from a channel ([`Receiver::recv`]). It fires
    /// with `Ok(value)`, or with `Err(RecvError::Disconnected)` once the
    /// channel is empty and disconnected.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel();
    /// std::thread::spawn(move || tx.send("from afar").unwrap());
    /// let got = sylvan::select::Select::new().recv(&rx, |r| r.unwrap()).select();
    /// assert_eq!(got, Ok("from afar"));
    /// ```
    pub fn recv<T: 'a>(
        self,
        rx: &'a Receiver<T>,
        f: impl FnOnce(Result<T, RecvError>) -> R + 'a,
    ) -> Self {
        self.arm(RecvArm::new(rx, f))
    }

    /// An arm that sends the value in `slot` on a channel
    /// ([`Sender::send`]). It fires with `Ok(())` once the value is sent
    /// (on a rendezvous channel: handed to a waiting receiver), leaving
    /// `slot` empty, or with `Err(SendError::Disconnected(value))` once
    /// every receiver is gone. If another arm fires, the value stays in
    /// `slot`. An empty `slot` disables the arm.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::bounded(1);
    /// let mut v = Some(1);
    /// sylvan::select::Select::new().send(&tx, &mut v, |r| r.unwrap()).select().unwrap();
    /// assert_eq!(v, None);
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
    pub fn send<T: 'a>(
        self,
        tx: &'a Sender<T>,
        slot: &'a mut Option<T>,
        f: impl FnOnce(Result<(), SendError<T>>) -> R + 'a,
    ) -> Self {
        self.arm(SendArm::new(tx, slot, f))
    }

    /// An arm that waits for `event` ([`Event::wait`]) and fires with a
    /// clone of its value.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = sylvan::sync::Event::new();
    /// ev.send(3).unwrap();
    /// let got = sylvan::select::Select::new().wait(&ev, |v| v * 2).select();
    /// assert_eq!(got, Ok(6));
    /// ```
    pub fn wait<T: Clone + 'a>(self, event: &'a Event<T>, f: impl FnOnce(T) -> R + 'a) -> Self {
        self.arm(WaitArm::new(event, f))
    }

    /// An arm that fires when the green thread in `slot` has finished:
    /// it takes the handle out of `slot`, joins it (which no longer
    /// waits) and passes on what [`GreenThread::join`] returned (never
    /// `JoinError::Cancelled`). If another arm fires, the handle stays in
    /// `slot`. An empty `slot` disables the arm.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut worker = Some(sylvan::spawn(|| 40 + 2));
    /// let got = sylvan::select::Select::new().join(&mut worker, |r| r.unwrap()).select();
    /// assert_eq!(got, Ok(42));
    /// assert!(worker.is_none());
    /// ```
    pub fn join<T: 'a>(
        self,
        slot: &'a mut Option<GreenThread<T>>,
        f: impl FnOnce(Result<T, JoinError>) -> R + 'a,
    ) -> Self {
        self.arm(JoinArm::new(slot, f))
    }

    /// An arm that takes a permit from `sem` ([`Semaphore::acquire`]),
    /// first come first served with the semaphore's other waiters, and
    /// fires with it.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(1);
    /// let permit = sylvan::select::Select::new().acquire(&sem, |p| p).select().unwrap();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire(self, sem: &'a Semaphore, f: impl FnOnce(SemaphorePermit) -> R + 'a) -> Self {
        self.arm(AcquireArm::new(sem, f))
    }

    /// An arm that fires when `instant` has passed (on the hub's clock,
    /// so virtual time applies). Unlike a [`deadline`](crate::deadline)
    /// scope, it is an outcome, not an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// sylvan::time::pause();
    /// let q = sylvan::sync::Queue::<u8>::unbounded();
    /// let at = sylvan::time::now() + Duration::from_secs(5);
    /// let r = sylvan::select::Select::new()
    ///     .get(&q, |_| "item")
    ///     .deadline(at, || "deadline")
    ///     .select();
    /// assert_eq!(r, Ok("deadline"));
    /// assert!(sylvan::time::now() >= at);
    /// ```
    pub fn deadline(self, instant: Instant, f: impl FnOnce() -> R + 'a) -> Self {
        let at = runtime::nanos_at(instant);
        self.arm(DeadlineArm::new(at, f))
    }

    /// An arm that fires once `dur` has passed from now; see
    /// [`deadline`](Self::deadline).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (_tx, rx) = sylvan::sync::channel::<u8>();
    /// let r = sylvan::select::Select::new()
    ///     .recv(&rx, |_| false)
    ///     .timeout(Duration::from_millis(1), || true)
    ///     .select();
    /// assert_eq!(r, Ok(true));
    /// ```
    pub fn timeout(self, dur: Duration, f: impl FnOnce() -> R + 'a) -> Self {
        let at = runtime::after(dur);
        self.arm(DeadlineArm::new(at, f))
    }

    /// Performs one arm's operation if one can complete without waiting
    /// (Go's `select` with a `default` case); `None` if none can, and then
    /// nothing happened.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::<u8>::unbounded();
    /// assert_eq!(sylvan::select::Select::new().get(&q, |_| ()).try_select(), None);
    /// ```
    pub fn try_select(self) -> Option<R> {
        self.attempt()
    }

    /// Tries every arm once, in a random order.
    fn attempt(&self) -> Option<R> {
        let n = self.arms.len();
        if n == 0 {
            return None;
        }
        let start = random_below(n);
        (0..n).find_map(|i| self.arms[(start + i) % n].try_complete())
    }

    /// Waits until one arm's operation can complete, performs it, and
    /// returns what that arm's closure made of it.
    ///
    /// A select with no arms waits until it is cancelled (Go's empty
    /// `select {}`).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::select::Select;
    /// use sylvan::sync::Queue;
    ///
    /// let (a, b) = (Queue::unbounded(), Queue::unbounded());
    /// let feeder = {
    ///     let b = b.clone();
    ///     sylvan::spawn(move || b.put("on b").unwrap())
    /// };
    /// let got = Select::new()
    ///     .get(&a, |r| ("a", r.unwrap()))
    ///     .get(&b, |r| ("b", r.unwrap()))
    ///     .select()
    ///     .unwrap();
    /// assert_eq!(got, ("b", "on b"));
    /// feeder.join().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// Only cancellation, as below. (An arm whose queue is closed or whose
    /// channel is disconnected *fires*, with that error for its closure.)
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its scoped deadline passes while
    /// it waits, returns [`Cancelled`] and no arm fired: the select has
    /// left every waiter list (a wake-up it had received but not used is
    /// passed to the next waiter), no item was taken, no permit is held,
    /// every put/send value and join handle is still in its slot. If an
    /// operation completed at the same moment, it wins: `select` returns
    /// its result, and the cancellation shows at the next blocking call.
    /// The same holds when the green thread is force-unwound at hub
    /// shutdown: a permit a semaphore had handed over is given back.
    #[track_caller]
    pub fn select(self) -> Result<R, Cancelled> {
        let loc = Location::caller();
        loop {
            if let Some(r) = self.attempt() {
                return Ok(r);
            }
            if let Some(r) = self.park_once(loc)? {
                return Ok(r);
            }
        }
    }

    /// Registers on every arm, parks once, and completes the arm whose
    /// registration woke it, if it can; leaves every other arm's list.
    fn park_once(&self, loc: &'static Location<'static>) -> Result<Option<R>, Cancelled> {
        let own = self.arms.iter().filter_map(|a| a.deadline()).min();
        let mut guard = Registered {
            arms: &self.arms,
            armed: false,
        };
        let (r, woke) = runtime::park_at_arm(loc, own, |token| {
            guard.armed = true;
            for (i, a) in self.arms.iter().enumerate() {
                a.register(token, arm_number(i));
            }
        });
        if !std::mem::replace(&mut guard.armed, false) {
            return r.map(|_| None);
        }
        let woke = woke.map(|n| n as usize - 1);
        // The waker's arm first: it woke us for this.
        let won = woke.and_then(|k| self.arms[k].complete_notified().map(|r| (k, r)));
        for (i, a) in self.arms.iter().enumerate() {
            if won.as_ref().is_none_or(|(k, _)| *k != i) {
                a.unregister(woke == Some(i));
            }
        }
        r?;
        Ok(won.map(|(_, r)| r))
    }
}

/// The 1-based arm number a registration carries.
fn arm_number(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

/// Leaves every arm's waiter list if the select is unwound while parked
/// (the hub's forced unwind at shutdown).
struct Registered<'s, 'a, R> {
    arms: &'s [Box<dyn Arm<R> + 'a>],
    armed: bool,
}

impl<R> Drop for Registered<'_, '_, R> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let woke = runtime::woken_arm_before_unwind().map(|n| n as usize - 1);
        for (i, a) in self.arms.iter().enumerate() {
            a.unregister(woke == Some(i));
        }
    }
}

/// A number in `0..n` from a per-thread xorshift generator, seeded from
/// std's random hasher keys.
fn random_below(n: usize) -> usize {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(0);
            h.finish() | 1
        });
    }
    if n <= 1 {
        return 0;
    }
    let x = STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    });
    // Multiply-shift: unbiased enough for n far below 2^32.
    ((u128::from(x) * n as u128) >> 64) as usize
}
