use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use crate::cancel::Cancelled;
use crate::runtime::park::{self, Parked, WaitList, WakeToken};

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
        self.inner.getters.borrow_mut().wake_one();
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
    /// Only cancellation, as above.
    #[track_caller]
    pub fn put(&self, value: T) -> Result<(), PutError<T>> {
        let loc = Location::caller();
        if self.inner.cap == Some(0) {
            return self.put_rendezvous(value, loc);
        }
        loop {
            if self.has_room() {
                self.push(value, None);
                return Ok(());
            }
            if let Err(cause) = park::wait_on(&self.inner.putters, loc) {
                return Err(PutError { value, cause });
            }
        }
    }

    fn put_rendezvous(&self, value: T, loc: &'static Location<'static>) -> Result<(), PutError<T>> {
        if let Err(cause) = park::check_cancelled() {
            return Err(PutError { value, cause });
        }
        let ticket = self.push(value, None);
        loop {
            let r = park::park_at(loc, None, |t| {
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
                    park::retract(cause);
                    return Ok(());
                }
                (Ok(Parked::Woken | Parked::OwnDeadline), true) => continue,
                (Err(cause), true) => {
                    let item = items.remove(ticket).expect("the item is here");
                    return Err(PutError {
                        value: item.value,
                        cause,
                    });
                }
            }
        }
    }

    /// Adds an item if that needs no waiting.
    ///
    /// # Errors
    ///
    /// [`TryPutError`] holding the item when the queue is full (always, for
    /// a rendezvous queue with no getter waiting).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = sylvan::sync::Queue::bounded(1);
    /// assert!(q.try_put(1).is_ok());
    /// assert_eq!(q.try_put(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn try_put(&self, value: T) -> Result<(), TryPutError<T>> {
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
            return Ok(());
        }
        Err(TryPutError(value))
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
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`Cancelled`]; nothing was taken and the green thread is no
    /// longer a waiter, so no item is lost.
    #[track_caller]
    pub fn get(&self) -> Result<T, Cancelled> {
        let loc = Location::caller();
        loop {
            if let Some(v) = self.try_get() {
                return Ok(v);
            }
            park::wait_on(&self.inner.getters, loc)?;
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
        if let (Some(t), Some(hub)) = (item.putter, crate::runtime::hub::try_hub()) {
            hub.wake(t, crate::runtime::park::Wake::Notified);
        }
        if self.inner.cap.is_some_and(|n| n > 0) {
            self.inner.putters.borrow_mut().wake_one();
        }
        Some(item.value)
    }
}

/// A `put` that was cancelled; holds the item, which was not added.
///
/// # Examples
///
/// ```
/// let q = sylvan::sync::Queue::bounded(1);
/// q.put(1).unwrap();
/// let putter = {
///     let q = q.clone();
///     sylvan::spawn(move || q.put(2)) // waits: the queue is full
/// };
/// sylvan::yield_now();
/// putter.kill();
/// let err = putter.join().unwrap().unwrap_err();
/// assert!(err.cause().is_killed());
/// assert_eq!(err.into_inner(), 2); // handed back, not lost
/// assert_eq!(q.len(), 1);
/// ```
pub struct PutError<T> {
    value: T,
    cause: Cancelled,
}

impl<T> PutError<T> {
    /// The item that was not added.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// Why the put gave up.
    pub fn cause(&self) -> Cancelled {
        self.cause
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutError")
            .field("cause", &self.cause)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "put was cancelled: {}", self.cause)
    }
}

impl<T> Error for PutError<T> {}

impl<T> From<PutError<T>> for Cancelled {
    fn from(e: PutError<T>) -> Cancelled {
        e.cause
    }
}

/// A `try_put` on a full queue; holds the item.
///
/// # Examples
///
/// ```
/// let q = sylvan::sync::Queue::bounded(0);
/// let e = q.try_put("x").unwrap_err();
/// assert_eq!(e.0, "x");
/// ```
pub struct TryPutError<T>(pub T);

impl<T> TryPutError<T> {
    /// The item that was not added.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TryPutError(Full)")
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is full")
    }
}

impl<T> Error for TryPutError<T> {}
