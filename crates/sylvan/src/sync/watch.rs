//! [`Watch`]: the latest value of something, and a way to wait for it to
//! change; tokio's `sync::watch` for the green threads of one hub.
//!
//! The one subscription primitive of sylvan: every "tell me when the state
//! changes" API hands out a [`WatchReceiver`]. A receiver is a pointer to
//! the shared cell plus the version it has seen, so a receiver that is
//! dropped — or never read — costs the sender nothing: there is no queue
//! per subscriber to fill up, and nothing to clean up later.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::ops::Deref;
use std::panic::Location;
use std::rc::Rc;

use crate::cancel::Cancelled;
use crate::runtime::{self, WaitList};

struct Shared<T> {
    /// The latest value. Readers get a clone of the `Rc`, so a
    /// [`WatchRef`] held across a blocking call never blocks a `send`.
    value: RefCell<Rc<T>>,
    /// Bumped by every send; a receiver compares it with the one it saw.
    version: Cell<u64>,
    senders: Cell<usize>,
    receivers: Cell<usize>,
    /// Receivers parked in [`WatchReceiver::changed`].
    waiters: RefCell<WaitList>,
}

impl<T> Shared<T> {
    fn closed(&self) -> bool {
        self.senders.get() == 0
    }
}

/// The sending half of a watch: holds the latest value and wakes every
/// receiver waiting for a change.
///
/// Unlike a [`Queue`](super::Queue), a watch keeps only the newest value:
/// a receiver that falls behind skips straight to it, and a sender never
/// waits or grows a backlog. Receivers are made with
/// [`subscribe`](Self::subscribe); dropping one frees everything it used.
///
/// Hub-local: `Watch` and [`WatchReceiver`] are handles (`Clone`, not
/// `Send`) for green threads of one OS thread. For a state that other
/// threads must follow, send it over a [`channel`](super::channel).
///
/// `send` never fails, also when there is no receiver: the value is kept
/// for receivers subscribed later (tokio's `send_replace`, not its
/// `send`, which refuses a value nobody receives).
///
/// # Examples
///
/// ```
/// use sylvan::sync::Watch;
///
/// let state = Watch::new("starting");
/// let mut rx = state.subscribe();
/// let follower = sylvan::spawn(move || {
///     rx.changed().unwrap();
///     *rx.borrow_and_update()
/// });
/// state.send("ready");
/// assert_eq!(follower.join().unwrap(), "ready");
/// ```
pub struct Watch<T> {
    shared: Rc<Shared<T>>,
}

/// A receiver of a [`Watch`]: reads the latest value and waits for the
/// next one.
///
/// It remembers the version it has seen: [`changed`](Self::changed)
/// returns as soon as a newer one exists, however many sends happened
/// meanwhile (intermediate values are skipped, never queued). A clone
/// starts with the same seen version.
///
/// # Examples
///
/// ```
/// use sylvan::sync::Watch;
///
/// let w = Watch::new(0);
/// let mut rx = w.subscribe();
/// w.send(1);
/// w.send(2);
/// rx.changed().unwrap(); // once, for both sends
/// assert_eq!(*rx.borrow_and_update(), 2);
/// assert!(!rx.has_changed());
/// ```
pub struct WatchReceiver<T> {
    shared: Rc<Shared<T>>,
    seen: u64,
}

/// A snapshot of a [`Watch`]'s value, from `borrow`; derefs to `T`.
///
/// It holds the value it was taken from, not a lock: sends made while it
/// is alive go ahead and are seen by the next `borrow`.
///
/// # Examples
///
/// ```
/// let w = sylvan::sync::Watch::new(String::from("a"));
/// let r = w.borrow();
/// w.send(String::from("b")); // not blocked by `r`
/// assert_eq!(*r, "a");
/// assert_eq!(*w.borrow(), "b");
/// ```
pub struct WatchRef<T> {
    value: Rc<T>,
    has_changed: bool,
}

/// Why [`WatchReceiver::changed`] returned without a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchError {
    /// Every [`Watch`] (sender) was dropped and the receiver has seen the
    /// last value: no change can come any more.
    Closed,
    /// The green thread was killed or its deadline passed while waiting.
    Cancelled(Cancelled),
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::Closed => f.write_str("the watched value's sender is gone"),
            WatchError::Cancelled(c) => write!(f, "waiting for a change was cancelled: {c}"),
        }
    }
}

impl Error for WatchError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            WatchError::Cancelled(c) => Some(c),
            WatchError::Closed => None,
        }
    }
}

impl From<Cancelled> for WatchError {
    fn from(c: Cancelled) -> WatchError {
        WatchError::Cancelled(c)
    }
}

impl<T> Watch<T> {
    /// A watch holding `init`, with no receivers yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(5);
    /// assert_eq!(*w.borrow(), 5);
    /// assert_eq!(w.receiver_count(), 0);
    /// ```
    pub fn new(init: T) -> Watch<T> {
        Watch {
            shared: Rc::new(Shared {
                value: RefCell::new(Rc::new(init)),
                version: Cell::new(0),
                senders: Cell::new(1),
                receivers: Cell::new(0),
                waiters: RefCell::new(WaitList::default()),
            }),
        }
    }

    /// Makes `value` the latest and wakes every receiver waiting in
    /// [`changed`](WatchReceiver::changed). Never blocks, never fails.
    ///
    /// Every send is a change, even of an equal value; compare first to
    /// send only real changes.
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(1);
    /// let rx = w.subscribe();
    /// w.send(2);
    /// assert!(rx.has_changed());
    /// assert_eq!(*rx.borrow(), 2);
    /// ```
    pub fn send(&self, value: T) {
        drop(self.replace(value));
    }

    fn replace(&self, value: T) -> Rc<T> {
        let old = self.shared.value.replace(Rc::new(value));
        self.shared.version.set(self.shared.version.get() + 1);
        self.shared.waiters.borrow_mut().wake_all();
        old
    }

    /// The latest value; never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(vec![1]);
    /// assert_eq!(w.borrow().len(), 1);
    /// ```
    pub fn borrow(&self) -> WatchRef<T> {
        WatchRef {
            value: self.shared.value.borrow().clone(),
            has_changed: false,
        }
    }

    /// A new receiver that has seen the current value: its
    /// [`changed`](WatchReceiver::changed) waits for the next send.
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(0);
    /// let rx = w.subscribe();
    /// assert!(!rx.has_changed());
    /// assert_eq!(w.receiver_count(), 1);
    /// drop(rx);
    /// assert_eq!(w.receiver_count(), 0);
    /// ```
    pub fn subscribe(&self) -> WatchReceiver<T> {
        self.shared.receivers.set(self.shared.receivers.get() + 1);
        WatchReceiver {
            shared: self.shared.clone(),
            seen: self.shared.version.get(),
        }
    }

    /// How many receivers exist now. A dropped receiver is no longer
    /// counted, and leaves nothing behind.
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(());
    /// for _ in 0..1000 {
    ///     drop(w.subscribe());
    /// }
    /// assert_eq!(w.receiver_count(), 0);
    /// ```
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.get()
    }
}

impl<T: Clone> Watch<T> {
    /// Makes `value` the latest, as [`send`](Self::send), and returns the
    /// value it replaced (a clone of it if a [`WatchRef`] still holds it).
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(1);
    /// assert_eq!(w.send_replace(2), 1);
    /// assert_eq!(*w.borrow(), 2);
    /// ```
    pub fn send_replace(&self, value: T) -> T {
        let old = self.replace(value);
        Rc::try_unwrap(old).unwrap_or_else(|shared| (*shared).clone())
    }
}

impl<T> Clone for Watch<T> {
    fn clone(&self) -> Self {
        self.shared.senders.set(self.shared.senders.get() + 1);
        Watch {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Watch<T> {
    fn drop(&mut self) {
        let left = self.shared.senders.get() - 1;
        self.shared.senders.set(left);
        // Waiting receivers learn that nothing more will come. (Without a
        // hub nobody can be parked.)
        if left == 0 {
            self.shared.waiters.borrow_mut().wake_all();
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Watch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("value", &*self.shared.value.borrow())
            .field("version", &self.shared.version.get())
            .field("receivers", &self.shared.receivers.get())
            .finish()
    }
}

impl<T> WatchReceiver<T> {
    /// The latest value, without marking it seen; never blocks.
    /// [`WatchRef::has_changed`] tells whether it is newer than the last
    /// seen one.
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(1);
    /// let rx = w.subscribe();
    /// w.send(2);
    /// let r = rx.borrow();
    /// assert_eq!(*r, 2);
    /// assert!(r.has_changed());
    /// assert!(rx.has_changed(), "borrow does not mark it seen");
    /// ```
    pub fn borrow(&self) -> WatchRef<T> {
        WatchRef {
            value: self.shared.value.borrow().clone(),
            has_changed: self.has_changed(),
        }
    }

    /// The latest value, marking it seen; never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(1);
    /// let mut rx = w.subscribe();
    /// w.send(2);
    /// assert_eq!(*rx.borrow_and_update(), 2);
    /// assert!(!rx.has_changed());
    /// ```
    pub fn borrow_and_update(&mut self) -> WatchRef<T> {
        let r = self.borrow();
        self.seen = self.shared.version.get();
        r
    }

    /// Whether a value newer than the last seen one was sent; never
    /// blocks. (tokio's returns an error once the sender is gone; here
    /// that is [`is_closed`](Self::is_closed).)
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(1);
    /// let rx = w.subscribe();
    /// assert!(!rx.has_changed());
    /// w.send(1);
    /// assert!(rx.has_changed(), "every send is a change");
    /// ```
    pub fn has_changed(&self) -> bool {
        self.shared.version.get() != self.seen
    }

    /// Whether every [`Watch`] (sender) was dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(1);
    /// let rx = w.subscribe();
    /// drop(w);
    /// assert!(rx.is_closed());
    /// assert_eq!(*rx.borrow(), 1, "the last value stays readable");
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.closed()
    }

    /// Waits until a value newer than the last seen one is sent, and marks
    /// it seen (read it with [`borrow`](Self::borrow)). Returns at once if
    /// one was sent already.
    ///
    /// Sends are not queued: several sends before the receiver runs wake
    /// it once, and it sees only the latest value.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::sync::Watch;
    ///
    /// let w = Watch::new(0);
    /// let mut rx = w.subscribe();
    /// let counter = sylvan::spawn(move || {
    ///     for i in 1..=3 {
    ///         w.send(i);
    ///         sylvan::yield_now();
    ///     }
    /// });
    /// let mut seen = Vec::new();
    /// while rx.changed().is_ok() {
    ///     seen.push(*rx.borrow());
    /// }
    /// counter.join().unwrap();
    /// assert_eq!(seen.last(), Some(&3));
    /// ```
    ///
    /// # Errors
    ///
    /// [`WatchError::Closed`] when every sender is gone and the last value
    /// was seen already; [`WatchError::Cancelled`] as below.
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`WatchError::Cancelled`]; the receiver is no longer a
    /// waiter, and its seen version is unchanged, so a change sent
    /// meanwhile is reported by the next call.
    #[track_caller]
    pub fn changed(&mut self) -> Result<(), WatchError> {
        let loc = Location::caller();
        loop {
            let version = self.shared.version.get();
            if version != self.seen {
                self.seen = version;
                return Ok(());
            }
            if self.shared.closed() {
                return Err(WatchError::Closed);
            }
            runtime::wait_on(&self.shared.waiters, loc)?;
        }
    }

    /// How many receivers of this watch exist now, this one included.
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(0);
    /// let rx = w.subscribe();
    /// let rx2 = rx.clone();
    /// assert_eq!(rx.receiver_count(), 2);
    /// drop(rx2);
    /// assert_eq!(rx.receiver_count(), 1);
    /// ```
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.get()
    }
}

impl<T> Clone for WatchReceiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.set(self.shared.receivers.get() + 1);
        WatchReceiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for WatchReceiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.set(self.shared.receivers.get() - 1);
    }
}

impl<T: fmt::Debug> fmt::Debug for WatchReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchReceiver")
            .field("value", &*self.shared.value.borrow())
            .field("has_changed", &self.has_changed())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> WatchRef<T> {
    /// Whether this value was newer than the receiver's last seen one when
    /// it was borrowed (always `false` from [`Watch::borrow`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let w = sylvan::sync::Watch::new(1);
    /// let mut rx = w.subscribe();
    /// w.send(2);
    /// assert!(rx.borrow_and_update().has_changed());
    /// assert!(!rx.borrow().has_changed());
    /// ```
    pub fn has_changed(&self) -> bool {
        self.has_changed
    }
}

impl<T> Deref for WatchRef<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for WatchRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}
