use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::io;
use std::panic::Location;
use std::rc::Rc;

use crate::cancel::Cancelled;
use crate::runtime::{self, Parked, WaitList, WakeToken};

use super::order::{Item, QueueOrder, Store};

/// A queue between green threads of one hub; Eventlet's `Queue`,
/// `LifoQueue` and `PriorityQueue`.
///
/// `bounded(n)` holds at most `n` items and `put` waits while it is full;
/// `bounded(0)` is a rendezvous: `put` waits until a getter has taken its
/// item (Eventlet's `Queue(0)`); `unbounded()` never makes `put` wait.
/// Those hand items out first in, first out; [`lifo`](Self::lifo) and
/// [`priority`](Self::priority) queues hand them out newest first and
/// smallest first (see [`QueueOrder`]), with the same capacities and
/// blocking. Getters, and putters waiting for room, are served in the order
/// they started waiting.
///
/// # Lifecycle
///
/// - [`close`](Self::close) ends the queue for putters: every later `put`
///   (and every `put` waiting for room) fails at once with
///   [`PutError::Closed`], handing its item back. Getters still take what
///   is left, then get [`GetError::Closed`]; [`iter`](Self::iter) ends
///   there. Python 3.13's `Queue.shutdown()`, without `immediate`.
/// - [`task_done`](Self::task_done) and [`join`](Self::join) are Python's
///   and Eventlet's work-tracking protocol: `join` waits until every item
///   ever put has been marked done by a consumer.
///
/// # Examples
///
/// ```
/// use sylvan::sync::Queue;
///
/// let q = Queue::bounded(2);
/// let producer = {
///     let q = q.clone();
///     sylvan::spawn(move || {
///         for i in 0..5 {
///             q.put(i).unwrap(); // waits while 2 items are queued
///         }
///     })
/// };
/// let got: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
/// assert_eq!(got, vec![0, 1, 2, 3, 4]);
/// producer.join().unwrap();
/// ```
pub struct Queue<T> {
    inner: Rc<Inner<T>>,
}

struct Inner<T> {
    items: RefCell<Store<T>>,
    cap: Option<usize>,
    getters: RefCell<WaitList>,
    putters: RefCell<WaitList>,
    next_ticket: Cell<u64>,
    closed: Cell<bool>,
    /// Items put and not yet marked done (`task_done`).
    unfinished: Cell<usize>,
    /// Green threads in `join`.
    joiners: RefCell<WaitList>,
    /// `iwait`/`wait` callers watching for an item (or the close); woken
    /// all at once, and never mistaken for getters.
    watchers: RefCell<WaitList>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &self.inner.cap)
            .field("order", &self.order())
            .field("closed", &self.is_closed())
            .field("unfinished", &self.unfinished())
            .finish()
    }
}

impl<T> Queue<T> {
    fn with(cap: Option<usize>, items: Store<T>) -> Queue<T> {
        Queue {
            inner: Rc::new(Inner {
                items: RefCell::new(items),
                cap,
                getters: RefCell::new(WaitList::default()),
                putters: RefCell::new(WaitList::default()),
                next_ticket: Cell::new(0),
                closed: Cell::new(false),
                unfinished: Cell::new(0),
                joiners: RefCell::new(WaitList::default()),
                watchers: RefCell::new(WaitList::default()),
            }),
        }
    }

    /// A queue holding at most `n` items; `n == 0` makes a rendezvous queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::bounded(1);
    /// q.put('a').unwrap();
    /// assert!(q.try_put('b').is_err());
    /// ```
    pub fn bounded(n: usize) -> Queue<T> {
        Queue::with(Some(n), Store::fifo())
    }

    /// A queue without a size limit.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::unbounded();
    /// for i in 0..1000 {
    ///     q.put(i).unwrap();
    /// }
    /// assert_eq!(q.len(), 1000);
    /// ```
    pub fn unbounded() -> Queue<T> {
        Queue::with(None, Store::fifo())
    }

    /// A LIFO queue holding at most `n` items (`n == 0`: a rendezvous that
    /// serves the newest waiting putter first); Eventlet's `LifoQueue`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::lifo(3);
    /// for i in 1..=3 {
    ///     q.put(i).unwrap();
    /// }
    /// assert_eq!(q.get(), Ok(3));
    /// assert_eq!(q.get(), Ok(2));
    /// ```
    pub fn lifo(n: usize) -> Queue<T> {
        Queue::with(Some(n), Store::lifo())
    }

    /// A LIFO queue without a size limit.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::lifo_unbounded();
    /// q.put('a').unwrap();
    /// q.put('b').unwrap();
    /// assert_eq!(q.try_get(), Some('b'));
    /// ```
    pub fn lifo_unbounded() -> Queue<T> {
        Queue::with(None, Store::lifo())
    }

    /// A priority queue holding at most `n` items; Eventlet's
    /// `PriorityQueue`. `get` takes the **smallest** item by `Ord` (as
    /// Python's `heapq` does; wrap items in [`std::cmp::Reverse`] for
    /// largest first); equal items come out in the order they were put.
    /// Items are typically `(priority, data)` tuples.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::priority(10);
    /// q.put((2, "later")).unwrap();
    /// q.put((1, "first")).unwrap();
    /// q.put((3, "last")).unwrap();
    /// assert_eq!(q.get(), Ok((1, "first")));
    /// assert_eq!(q.get(), Ok((2, "later")));
    /// assert_eq!(q.get(), Ok((3, "last")));
    /// ```
    pub fn priority(n: usize) -> Queue<T>
    where
        T: Ord,
    {
        Queue::with(Some(n), Store::priority())
    }

    /// A priority queue without a size limit; see [`priority`](Self::priority).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cmp::Reverse;
    ///
    /// let q = sylvan::sync::Queue::priority_unbounded();
    /// for n in [3, 9, 1] {
    ///     q.put(Reverse(n)).unwrap();
    /// }
    /// assert_eq!(q.try_get(), Some(Reverse(9))); // largest first
    /// ```
    pub fn priority_unbounded() -> Queue<T>
    where
        T: Ord,
    {
        Queue::with(None, Store::priority())
    }

    /// The order in which items are handed out.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::sync::{Queue, QueueOrder};
    ///
    /// assert_eq!(Queue::<u8>::lifo(1).order(), QueueOrder::Lifo);
    /// ```
    pub fn order(&self) -> QueueOrder {
        self.inner.items.borrow().order()
    }

    /// The capacity (`None` when unbounded).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::sync::Queue::<()>::bounded(3).capacity(), Some(3));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.inner.cap
    }

    /// Items a `get` would take without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::unbounded();
    /// q.put(1).unwrap();
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.items.borrow().len()
    }

    /// Whether a `get` would have to wait.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sylvan::sync::Queue::<u8>::unbounded().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn has_room(&self) -> bool {
        match self.inner.cap {
            None => true,
            Some(0) => false,
            Some(n) => self.len() < n,
        }
    }

    fn push(&self, value: T, putter: Option<WakeToken>) -> u64 {
        let ticket = self.inner.next_ticket.get() + 1;
        self.inner.next_ticket.set(ticket);
        self.inner.items.borrow_mut().push(Item {
            value,
            ticket,
            putter,
        });
        self.inner.unfinished.set(self.inner.unfinished.get() + 1);
        self.inner.getters.borrow_mut().wake_one();
        self.inner.watchers.borrow_mut().wake_all();
        ticket
    }

    /// Adds an item, waiting while the queue is full (for a rendezvous
    /// queue: until a getter has taken it).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::bounded(0);
    /// let getter = {
    ///     let q = q.clone();
    ///     sylvan::spawn(move || q.get())
    /// };
    /// q.put("hand-off").unwrap(); // returns once the getter has it
    /// assert_eq!(getter.join().unwrap(), Ok("hand-off"));
    /// ```
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`PutError`] holding the item, which was not added (for a
    /// rendezvous queue: was withdrawn, not taken). If a getter took it at
    /// the same moment, the put succeeded and returns `Ok`; the cancellation
    /// then shows at the next blocking call. Either way the item is
    /// delivered exactly once or handed back.
    ///
    /// # Errors
    ///
    /// [`PutError`] holding the item, which was not added:
    /// [`Closed`](PutError::Closed) if the queue is [closed](Self::close)
    /// (or gets closed while this put waits for room),
    /// [`Cancelled`](PutError::Cancelled) as above.
    #[track_caller]
    pub fn put(&self, value: T) -> Result<(), PutError<T>> {
        let loc = Location::caller();
        if self.inner.cap == Some(0) {
            return self.put_rendezvous(value, loc);
        }
        loop {
            if self.is_closed() {
                return Err(PutError::Closed(value));
            }
            if self.has_room() {
                self.push(value, None);
                return Ok(());
            }
            if let Err(cause) = runtime::wait_on(&self.inner.putters, loc) {
                return Err(PutError::Cancelled(value, cause));
            }
        }
    }

    fn put_rendezvous(&self, value: T, loc: &'static Location<'static>) -> Result<(), PutError<T>> {
        if self.is_closed() {
            return Err(PutError::Closed(value));
        }
        if let Err(cause) = runtime::check_cancelled() {
            return Err(PutError::Cancelled(value, cause));
        }
        let ticket = self.push(value, None);
        loop {
            let r = runtime::park_at(loc, None, |t| {
                if let Some(item) = self.inner.items.borrow_mut().find_mut(ticket) {
                    item.putter = Some(t);
                }
            });
            let mut items = self.inner.items.borrow_mut();
            let here = items.contains(ticket);
            match (r, here) {
                (Ok(_), false) => return Ok(()),
                // Taken at the same moment we were cancelled: the put
                // succeeded, so the cancellation is not reported.
                (Err(cause), false) => {
                    runtime::retract(cause);
                    return Ok(());
                }
                (Ok(Parked::Woken | Parked::OwnDeadline), true) if !self.is_closed() => continue,
                (r, true) => {
                    let item = items.remove(ticket).expect("the item is here");
                    drop(items);
                    self.withdrawn();
                    return Err(match r {
                        Err(cause) => PutError::Cancelled(item.value, cause),
                        Ok(_) => PutError::Closed(item.value),
                    });
                }
            }
        }
    }

    /// Adds an item if that needs no waiting.
    ///
    /// # Errors
    ///
    /// [`TryPutError`] holding the item: [`Full`](TryPutError::Full) when
    /// the queue is full (always, for a rendezvous queue with no getter
    /// waiting), [`Closed`](TryPutError::Closed) when it is
    /// [closed](Self::close).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::bounded(1);
    /// assert!(q.try_put(1).is_ok());
    /// assert_eq!(q.try_put(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn try_put(&self, value: T) -> Result<(), TryPutError<T>> {
        if self.is_closed() {
            return Err(TryPutError::Closed(value));
        }
        if self.has_room() {
            self.push(value, None);
            return Ok(());
        }
        if self.inner.cap == Some(0) && self.inner.getters.borrow_mut().wake_one() {
            // A getter is waiting: hand the item over as a direct transfer.
            let ticket = self.inner.next_ticket.get() + 1;
            self.inner.next_ticket.set(ticket);
            self.inner.items.borrow_mut().push(Item {
                value,
                ticket,
                putter: None,
            });
            self.inner.unfinished.set(self.inner.unfinished.get() + 1);
            self.inner.watchers.borrow_mut().wake_all();
            return Ok(());
        }
        Err(TryPutError::Full(value))
    }

    /// Takes the next item (the oldest, newest or smallest, by the queue's
    /// [`order`](Self::order)), waiting until there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::unbounded();
    /// q.put(3).unwrap();
    /// assert_eq!(q.get(), Ok(3));
    /// ```
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] once the queue is [closed](Self::close) and
    /// empty (items put before `close` are still taken first);
    /// [`GetError::Cancelled`] as below.
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`GetError::Cancelled`]; nothing was taken and the green
    /// thread is no longer a waiter, so no item is lost.
    #[track_caller]
    pub fn get(&self) -> Result<T, GetError> {
        let loc = Location::caller();
        loop {
            if let Some(v) = self.try_get() {
                return Ok(v);
            }
            if self.is_closed() {
                return Err(GetError::Closed);
            }
            self.getter_arrives(None);
            runtime::wait_on(&self.inner.getters, loc)?;
        }
    }

    /// Takes the next item if there is one; never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::<u8>::unbounded();
    /// assert_eq!(q.try_get(), None);
    /// ```
    pub fn try_get(&self) -> Option<T> {
        let item = self.inner.items.borrow_mut().pop()?;
        // With no hub (a thread-local destructor after the hub's) there is
        // nobody to wake.
        if let Some(t) = item.putter {
            t.wake();
        }
        if self.inner.cap.is_some_and(|n| n > 0) {
            self.inner.putters.borrow_mut().wake_one();
        }
        Some(item.value)
    }

    /// A getter is about to wait: on a rendezvous queue that makes a
    /// [`try_put`](Self::try_put) possible, so a `select` waiting to put
    /// (the only waiters on a rendezvous queue's `putters`) is told: never
    /// the getter's own park `me`, a select registering (one with both a
    /// put and a get arm here cannot meet itself).
    fn getter_arrives(&self, me: Option<WakeToken>) {
        if self.inner.cap == Some(0) {
            let mut putters = self.inner.putters.borrow_mut();
            match me {
                Some(me) => putters.wake_one_except(me),
                None => putters.wake_one(),
            };
        }
    }

    /// Registers a `select` as a getter (`iwait` registers watchers).
    pub(crate) fn register_getter(&self, token: WakeToken, arm: u32) {
        self.getter_arrives(Some(token));
        self.inner.getters.borrow_mut().push_arm(token, arm);
    }

    /// Registers a multi-way park as a putter waiting for room (or, on a
    /// rendezvous queue, for a getter).
    pub(crate) fn register_putter(&self, token: WakeToken, arm: u32) {
        self.inner.putters.borrow_mut().push_arm(token, arm);
    }

    /// A multi-way park registered with [`register_getter`](Self::register_getter)
    /// stops waiting. `notified`: this queue woke it, and it did not take
    /// an item, so the wake-up passes to the next getter.
    pub(crate) fn unregister_getter(&self, notified: bool) {
        Self::leave(&self.inner.getters, notified);
    }

    /// As [`unregister_getter`](Self::unregister_getter), for a putter.
    pub(crate) fn unregister_putter(&self, notified: bool) {
        Self::leave(&self.inner.putters, notified);
    }

    /// Registers a readiness watcher (`iwait`, `wait`): woken when an item
    /// arrives or the queue closes, without ever counting as a getter.
    pub(crate) fn register_watcher(&self, token: WakeToken, arm: u32) {
        self.inner.watchers.borrow_mut().push_arm(token, arm);
    }

    /// A watcher stops waiting (`notified`: this queue woke it; every
    /// watcher was woken then, so nothing passes on).
    pub(crate) fn unregister_watcher(&self, notified: bool) {
        if !notified {
            self.inner.watchers.borrow_mut().cancelled();
        }
    }

    fn leave(list: &RefCell<WaitList>, notified: bool) {
        let mut list = list.borrow_mut();
        if notified {
            list.wake_one();
        } else {
            list.cancelled();
        }
    }

    /// An item offered by a rendezvous put was withdrawn: it no longer
    /// counts as unfinished.
    fn withdrawn(&self) {
        let n = self.inner.unfinished.get() - 1;
        self.inner.unfinished.set(n);
        if n == 0 {
            self.inner.joiners.borrow_mut().wake_all();
        }
    }

    /// Closes the queue to putters. Never blocks; closing twice does
    /// nothing more.
    ///
    /// From now on `put` and `try_put` fail at once, handing their item
    /// back ([`PutError::Closed`], [`TryPutError::Closed`]); putters
    /// waiting for room are woken and fail the same way (a rendezvous
    /// putter whose item no getter has taken yet withdraws it). Items
    /// already in the queue stay: getters take them, then get
    /// [`GetError::Closed`] instead of waiting, and getters waiting on an
    /// empty queue are woken with it. [`join`](Self::join) is unaffected:
    /// items still count until marked done.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::sync::{GetError, Queue};
    ///
    /// let q = Queue::unbounded();
    /// q.put(1).unwrap();
    /// q.close();
    /// assert_eq!(q.put(2).unwrap_err().into_inner(), 2); // refused, handed back
    /// assert_eq!(q.get(), Ok(1)); // what was left is still there
    /// assert_eq!(q.get(), Err(GetError::Closed));
    /// ```
    pub fn close(&self) {
        if self.inner.closed.replace(true) {
            return;
        }
        self.inner.getters.borrow_mut().wake_all();
        self.inner.putters.borrow_mut().wake_all();
        self.inner.watchers.borrow_mut().wake_all();
        if runtime::has_hub() {
            self.inner.items.borrow().for_each_putter(|t| {
                t.wake();
            });
        }
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::<u8>::unbounded();
    /// assert!(!q.is_closed());
    /// q.close();
    /// assert!(q.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Marks one item taken from the queue as processed; Python's
    /// `Queue.task_done`. When every item put so far is marked, green
    /// threads in [`join`](Self::join) wake up. Never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::unbounded();
    /// q.put("job").unwrap();
    /// let _job = q.get().unwrap();
    /// assert_eq!(q.unfinished(), 1); // taken, not yet done
    /// q.task_done();
    /// assert_eq!(q.unfinished(), 0);
    /// ```
    ///
    /// # Panics
    ///
    /// If called more times than items were put (Python raises
    /// `ValueError`): that is a bug in the caller's bookkeeping, and
    /// letting it pass would release `join` early.
    #[track_caller]
    pub fn task_done(&self) {
        let n = self.inner.unfinished.get();
        assert!(
            n > 0,
            "Queue::task_done called more times than items were put"
        );
        self.inner.unfinished.set(n - 1);
        if n == 1 {
            self.inner.joiners.borrow_mut().wake_all();
        }
    }

    /// Items put and not yet marked done with [`task_done`](Self::task_done)
    /// (those still queued included).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::unbounded();
    /// q.put(()).unwrap();
    /// assert_eq!(q.unfinished(), 1);
    /// ```
    pub fn unfinished(&self) -> usize {
        self.inner.unfinished.get()
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](Self::task_done); Python's and Eventlet's
    /// `Queue.join`. Returns at once if none is pending.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::sync::Queue;
    ///
    /// let q = Queue::unbounded();
    /// let worker = {
    ///     let q = q.clone();
    ///     sylvan::spawn(move || {
    ///         while let Ok(job) = q.get() {
    ///             let _ = job * 2; // process it
    ///             q.task_done();
    ///         }
    ///     })
    /// };
    /// for job in 0..10 {
    ///     q.put(job).unwrap();
    /// }
    /// q.join().unwrap(); // all ten processed
    /// assert_eq!(q.unfinished(), 0);
    /// q.close(); // the worker's `get` now ends its loop
    /// worker.join().unwrap();
    /// ```
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`Cancelled`]; the queue and its count are unchanged, and
    /// other joiners keep waiting.
    #[track_caller]
    pub fn join(&self) -> Result<(), Cancelled> {
        let loc = Location::caller();
        while self.inner.unfinished.get() > 0 {
            runtime::wait_on(&self.inner.joiners, loc)?;
        }
        Ok(())
    }

    /// A blocking iterator over the items, which ends once the queue is
    /// [closed](Self::close) and empty. `for item in &queue` does the same.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::bounded(1);
    /// let producer = {
    ///     let q = q.clone();
    ///     sylvan::spawn(move || {
    ///         for i in 0..3 {
    ///             q.put(i).unwrap();
    ///         }
    ///         q.close();
    ///     })
    /// };
    /// let got: Vec<i32> = q.iter().collect();
    /// assert_eq!(got, vec![0, 1, 2]);
    /// producer.join().unwrap();
    /// ```
    ///
    /// # Cancellation
    ///
    /// Each `next` is a [`get`](Self::get). If the iterating green thread
    /// is killed or its deadline passes while it waits, the iteration
    /// ends (`None`) as it does at close; no item is taken or lost. The
    /// cancellation is not swallowed: a kill is sticky and a passed
    /// deadline fails every later blocking call, so the next one reports
    /// it (and [`timeout`](crate::timeout) returns `Err(Elapsed)`). Use
    /// `get` in a loop to tell the two endings apart at once.
    pub fn iter(&self) -> QueueIter<'_, T> {
        QueueIter { queue: self }
    }
}

/// The blocking iterator of [`Queue::iter`]: yields items until the queue
/// is closed and empty (or the wait is cancelled; see `iter`).
///
/// # Examples
///
/// ```
/// let q = sylvan::sync::Queue::unbounded();
/// q.put('a').unwrap();
/// q.close();
/// let mut it = q.iter();
/// assert_eq!(it.next(), Some('a'));
/// assert_eq!(it.next(), None);
/// ```
pub struct QueueIter<'a, T> {
    queue: &'a Queue<T>,
}

impl<T> fmt::Debug for QueueIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("QueueIter").field(self.queue).finish()
    }
}

impl<T> Iterator for QueueIter<'_, T> {
    type Item = T;

    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.queue.get().ok()
    }
}

impl<'a, T> IntoIterator for &'a Queue<T> {
    type Item = T;
    type IntoIter = QueueIter<'a, T>;

    fn into_iter(self) -> QueueIter<'a, T> {
        self.iter()
    }
}

/// Why [`Queue::put`] gave up; holds the item, which was not added.
///
/// # Examples
///
/// ```
/// use sylvan::sync::PutError;
///
/// let q = sylvan::sync::Queue::bounded(1);
/// q.put(1).unwrap();
/// let putter = {
///     let q = q.clone();
///     sylvan::spawn(move || q.put(2)) // waits: the queue is full
/// };
/// sylvan::yield_now();
/// putter.kill();
/// let err = putter.join().unwrap().unwrap_err();
/// assert_eq!(err.cancelled(), Some(sylvan::Cancelled::Killed));
/// assert_eq!(err.into_inner(), 2); // handed back, not lost
/// assert_eq!(q.len(), 1);
///
/// q.close();
/// assert!(matches!(q.put(3), Err(PutError::Closed(3))));
/// ```
#[non_exhaustive]
pub enum PutError<T> {
    /// The putting green thread was killed or its deadline passed while
    /// it waited.
    Cancelled(T, Cancelled),
    /// The queue is [closed](Queue::close).
    Closed(T),
}

impl<T> PutError<T> {
    /// The item that was not added.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Cancelled(v, _) | PutError::Closed(v) => v,
        }
    }

    /// The cancellation, if that is why the put gave up.
    pub fn cancelled(&self) -> Option<Cancelled> {
        match self {
            PutError::Cancelled(_, c) => Some(*c),
            PutError::Closed(_) => None,
        }
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PutError::Closed(_))
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Cancelled(_, c) => write!(f, "Cancelled(.., {c:?})"),
            PutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Cancelled(_, c) => write!(f, "put was cancelled: {c}"),
            PutError::Closed(_) => f.write_str("putting on a closed queue"),
        }
    }
}

impl<T> Error for PutError<T> {}

impl<T> From<PutError<T>> for io::Error {
    /// A cancellation converts as [`Cancelled`] does; a closed queue
    /// becomes `ErrorKind::BrokenPipe`.
    fn from(e: PutError<T>) -> io::Error {
        match e {
            PutError::Cancelled(_, c) => c.into(),
            PutError::Closed(_) => {
                io::Error::new(io::ErrorKind::BrokenPipe, "putting on a closed queue")
            }
        }
    }
}

/// Why [`Queue::get`] returned no item.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::sync::{GetError, Queue};
///
/// sylvan::time::pause();
/// let q = Queue::<u8>::unbounded();
/// let r = sylvan::timeout(Duration::from_secs(1), || q.get());
/// assert!(r.is_err()); // the scope's deadline cancelled the get
/// q.close();
/// assert_eq!(q.get(), Err(GetError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GetError {
    /// The queue is closed and empty.
    Closed,
    /// The getting green thread was killed or its deadline passed while it
    /// waited.
    Cancelled(Cancelled),
}

impl GetError {
    /// The cancellation, if that is why the get gave up.
    pub fn cancelled(&self) -> Option<Cancelled> {
        match self {
            GetError::Cancelled(c) => Some(*c),
            GetError::Closed => None,
        }
    }

    /// Whether the queue was closed and empty.
    pub fn is_closed(&self) -> bool {
        matches!(self, GetError::Closed)
    }
}

impl From<Cancelled> for GetError {
    fn from(c: Cancelled) -> GetError {
        GetError::Cancelled(c)
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Closed => f.write_str("getting from a closed, empty queue"),
            GetError::Cancelled(c) => write!(f, "get was cancelled: {c}"),
        }
    }
}

impl Error for GetError {}

impl From<GetError> for io::Error {
    /// A cancellation converts as [`Cancelled`] does; a closed queue
    /// becomes `ErrorKind::UnexpectedEof`.
    fn from(e: GetError) -> io::Error {
        match e {
            GetError::Cancelled(c) => c.into(),
            GetError::Closed => io::Error::new(io::ErrorKind::UnexpectedEof, e),
        }
    }
}

/// Why [`Queue::try_put`] did not add the item; holds it.
///
/// # Examples
///
/// ```
/// let q = sylvan::sync::Queue::bounded(0);
/// let e = q.try_put("x").unwrap_err(); // no getter is waiting
/// assert!(e.is_full());
/// assert_eq!(e.into_inner(), "x");
/// ```
#[non_exhaustive]
pub enum TryPutError<T> {
    /// The queue is full (a rendezvous queue: no getter is waiting).
    Full(T),
    /// The queue is [closed](Queue::close).
    Closed(T),
}

impl<T> TryPutError<T> {
    /// The item that was not added.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(v) | TryPutError::Closed(v) => v,
        }
    }

    /// Whether it failed because the queue is full.
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }

    /// Whether it failed because the queue is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, TryPutError::Closed(_))
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("Full(..)"),
            TryPutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("queue is full"),
            TryPutError::Closed(_) => f.write_str("putting on a closed queue"),
        }
    }
}

impl<T> Error for TryPutError<T> {}
