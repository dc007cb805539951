use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use crate::cancel::Cancelled;
use crate::runtime::park::{self, WaitList};

/// A value sent once and awaited by any number of green threads; Eventlet's
/// `Event`.
///
/// # Examples
///
/// ```
/// use sylvan::sync::Event;
///
/// let ev = Event::new();
/// let waiter = {
///     let ev = ev.clone();
///     sylvan::spawn(move || ev.wait())
/// };
/// ev.send("ready").unwrap();
/// assert_eq!(waiter.join().unwrap(), Ok("ready"));
/// assert!(ev.ready());
/// ```
pub struct Event<T> {
    inner: Rc<Inner<T>>,
}

struct Inner<T> {
    value: RefCell<Option<T>>,
    waiters: RefCell<WaitList>,
}

impl<T> Clone for Event<T> {
    fn clone(&self) -> Self {
        Event {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for Event<T> {
    fn default() -> Self {
        Event::new()
    }
}

impl<T> fmt::Debug for Event<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("ready", &self.ready())
            .finish()
    }
}

impl<T> Event<T> {
    /// A new event with no value yet.
    pub fn new() -> Event<T> {
        Event {
            inner: Rc::new(Inner {
                value: RefCell::new(None),
                waiters: RefCell::new(WaitList::default()),
            }),
        }
    }

    /// Sets the value and wakes every waiter. Never blocks.
    ///
    /// # Errors
    ///
    /// If a value was sent already, hands `value` back.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = sylvan::sync::Event::new();
    /// assert_eq!(ev.send(1), Ok(()));
    /// assert_eq!(ev.send(2), Err(2));
    /// ```
    pub fn send(&self, value: T) -> Result<(), T> {
        let mut v = self.inner.value.borrow_mut();
        if v.is_some() {
            return Err(value);
        }
        *v = Some(value);
        drop(v);
        self.inner.waiters.borrow_mut().wake_all();
        Ok(())
    }

    /// Whether a value has been sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = sylvan::sync::Event::new();
    /// assert!(!ev.ready());
    /// ev.send(()).unwrap();
    /// assert!(ev.ready());
    /// ```
    pub fn ready(&self) -> bool {
        self.inner.value.borrow().is_some()
    }
}

impl<T: Clone> Event<T> {
    /// Waits until a value is sent and returns a clone of it.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = sylvan::sync::Event::new();
    /// ev.send(5).unwrap();
    /// assert_eq!(ev.wait(), Ok(5));
    /// ```
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`Cancelled`]; it is no longer a waiter and the event is
    /// unchanged.
    #[track_caller]
    pub fn wait(&self) -> Result<T, Cancelled> {
        let loc = Location::caller();
        loop {
            if let Some(v) = &*self.inner.value.borrow() {
                return Ok(v.clone());
            }
            park::wait_on(&self.inner.waiters, loc)?;
        }
    }

    /// The value, if one was sent; never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = sylvan::sync::Event::<u8>::new();
    /// assert_eq!(ev.try_get(), None);
    /// ```
    pub fn try_get(&self) -> Option<T> {
        self.inner.value.borrow().clone()
    }
}
