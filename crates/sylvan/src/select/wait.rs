//! gevent's `wait` and `iwait`: waiting for readiness, consuming nothing.

use std::fmt;
use std::panic::Location;
use std::time::Instant;

use crate::cancel::Cancelled;
use crate::green::GreenThread;
use crate::runtime::{self, WakeToken};
use crate::sync::{Event, Queue, Receiver};

mod sealed {
    /// What a registration needs; opaque outside the crate.
    #[derive(Debug, Clone, Copy)]
    pub struct Reg {
        pub(crate) token: crate::runtime::WakeToken,
        pub(crate) arm: u32,
    }

    /// Keeps [`Waitable`](super::Waitable) implemented only here.
    pub trait Sealed {
        /// Registers a waiter; returns an id for `unregister`.
        fn register(&self, reg: Reg) -> u64;
        /// Stops waiting (`notified`: this registration woke the waiter).
        fn unregister(&self, id: u64, notified: bool);
    }
}

use sealed::{Reg, Sealed};

/// Something [`wait`] and [`iwait`] can wait for: it becomes *ready*, and
/// waiting for that takes nothing from it.
///
/// - a [`GreenThread`] is ready once it has finished (join it for its
///   value);
/// - an [`Event`] once it is sent (and until it is reset);
/// - a [`Queue`] while it holds an item or is closed (a `get` would not
///   wait);
/// - a [`Receiver`] while a value is buffered or the channel is
///   disconnected (a `recv` would not wait).
///
/// Readiness is a snapshot: another green thread may take the queue's
/// item before this one gets to it. (A receiver of a rendezvous channel
/// being watched counts as a waiting receiver for a `try_send`, which may
/// then leave its value in the channel for the next `recv`, as
/// [`Sender::try_send`](crate::sync::Sender::try_send) does when its
/// receiver gives up.) To *take* the first of several things
/// atomically, use [`Select`](super::Select).
///
/// # Examples
///
/// ```
/// use sylvan::select::Waitable;
///
/// let ev = sylvan::sync::Event::new();
/// assert!(!ev.is_ready());
/// ev.send(()).unwrap();
/// assert!(ev.is_ready());
/// ```
pub trait Waitable: Sealed {
    /// Whether it is ready now (see the trait's docs).
    fn is_ready(&self) -> bool;
}

impl<T> Sealed for GreenThread<T> {
    fn register(&self, reg: Reg) -> u64 {
        self.register_joiner(reg.token, reg.arm);
        0
    }

    fn unregister(&self, _id: u64, notified: bool) {
        self.unregister_joiner(notified);
    }
}

impl<T> Waitable for GreenThread<T> {
    fn is_ready(&self) -> bool {
        self.is_finished()
    }
}

impl<T> Sealed for Event<T> {
    fn register(&self, reg: Reg) -> u64 {
        Event::register(self, reg.token, reg.arm);
        0
    }

    fn unregister(&self, _id: u64, notified: bool) {
        Event::unregister(self, notified);
    }
}

impl<T> Waitable for Event<T> {
    fn is_ready(&self) -> bool {
        self.ready()
    }
}

impl<T> Sealed for Queue<T> {
    fn register(&self, reg: Reg) -> u64 {
        self.register_watcher(reg.token, reg.arm);
        0
    }

    fn unregister(&self, _id: u64, notified: bool) {
        self.unregister_watcher(notified);
    }
}

impl<T> Waitable for Queue<T> {
    fn is_ready(&self) -> bool {
        !self.is_empty() || self.is_closed()
    }
}

impl<T> Sealed for Receiver<T> {
    fn register(&self, reg: Reg) -> u64 {
        Receiver::register(self, reg.token, false)
    }

    fn unregister(&self, id: u64, _notified: bool) {
        Receiver::unregister(self, id);
    }
}

impl<T> Waitable for Receiver<T> {
    fn is_ready(&self) -> bool {
        Receiver::is_ready(self)
    }
}

/// Waits until `count` of `objects` are ready (all of them if `count` is
/// `None`), or until `deadline` passes; returns the indices of those that
/// are ready then, in increasing order. gevent's `gevent.wait(objects,
/// timeout, count)`.
///
/// Nothing is consumed: a ready queue keeps its item, a finished green
/// thread still joins. With `count` larger than `objects.len()`, waits
/// for all of them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::select::{Waitable, wait};
/// use sylvan::sync::{Event, Queue};
///
/// sylvan::time::pause();
/// let slow = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(60)));
/// let quick = sylvan::spawn(|| sylvan::sleep(Duration::from_millis(1)));
/// let ev = Event::<()>::new();
/// let q = Queue::unbounded();
/// q.put("job").unwrap();
///
/// let objects: [&dyn Waitable; 4] = [&slow, &quick, &ev, &q];
/// // Any two: the queue is ready at once, `quick` after 1 ms.
/// assert_eq!(wait(&objects, Some(2), None), Ok(vec![1, 3]));
/// // All, but give up after a second: what is ready by then.
/// let by = sylvan::time::now() + Duration::from_secs(1);
/// assert_eq!(wait(&objects, None, Some(by)), Ok(vec![1, 3]));
/// assert_eq!(q.len(), 1, "waiting took nothing");
/// ```
///
/// # Errors
///
/// Only cancellation, as below. (The `deadline` passing is not an error.)
///
/// # Cancellation
///
/// If the green thread is killed or an enclosing scope's deadline passes
/// while it waits, returns [`Cancelled`]; it is no longer a waiter on any
/// of `objects` (a wake-up it had received but not used is passed to the
/// next waiter) and nothing was taken from them.
#[track_caller]
pub fn wait(
    objects: &[&dyn Waitable],
    count: Option<usize>,
    deadline: Option<Instant>,
) -> Result<Vec<usize>, Cancelled> {
    let want = count.unwrap_or(objects.len()).min(objects.len());
    let mut it = iwait(objects);
    if let Some(d) = deadline {
        it = it.deadline(d);
    }
    let mut ready = Vec::new();
    while ready.len() < want {
        match it.next() {
            Some(Ok(i)) => ready.push(i),
            Some(Err(c)) => return Err(c),
            None => break,
        }
    }
    ready.sort_unstable();
    Ok(ready)
}

/// Iterates over the indices of `objects` as they become ready, in the
/// order that happens; gevent's `gevent.iwait(objects)`. Each index comes
/// once; objects that are ready together come in index order. The
/// iteration ends when every object has come (or at its
/// [`deadline`](Iwait::deadline)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::select::{Waitable, iwait};
///
/// let workers: Vec<_> = [30u64, 10, 20]
///     .into_iter()
///     .map(|ms| sylvan::spawn(move || sylvan::sleep(Duration::from_millis(ms))))
///     .collect();
/// let objects: Vec<&dyn Waitable> = workers.iter().map(|g| g as &dyn Waitable).collect();
/// let order: Vec<usize> = iwait(&objects).map(Result::unwrap).collect();
/// assert_eq!(order, [1, 2, 0]);
/// ```
///
/// # Cancellation
///
/// Each `next` that has to wait parks. If the green thread is killed or
/// its scoped deadline passes meanwhile, `next` returns `Some(Err(..))`
/// and the iteration ends; the iterator was no longer a waiter on any
/// object, and nothing was taken from them.
#[track_caller]
pub fn iwait<'a>(objects: &'a [&'a dyn Waitable]) -> Iwait<'a> {
    Iwait {
        objects,
        done: vec![false; objects.len()],
        left: objects.len(),
        deadline: None,
        ended: false,
        loc: Location::caller(),
    }
}

/// The iterator of [`iwait`]: indices of objects as they become ready.
pub struct Iwait<'a> {
    objects: &'a [&'a dyn Waitable],
    done: Vec<bool>,
    left: usize,
    deadline: Option<u64>,
    ended: bool,
    loc: &'static Location<'static>,
}

impl fmt::Debug for Iwait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iwait")
            .field("objects", &self.objects.len())
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl Iwait<'_> {
    /// Ends the iteration (`None`) once `instant` has passed, whatever is
    /// still not ready; gevent's `iwait(objects, timeout)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::select::{Waitable, iwait};
    ///
    /// sylvan::time::pause();
    /// let never = sylvan::sync::Event::<()>::new();
    /// let objects: [&dyn Waitable; 1] = [&never];
    /// let by = sylvan::time::now() + Duration::from_secs(1);
    /// assert_eq!(iwait(&objects).deadline(by).next(), None);
    /// ```
    pub fn deadline(mut self, instant: Instant) -> Self {
        self.deadline = Some(runtime::nanos_at(instant));
        self
    }

    fn take_ready(&mut self) -> Option<usize> {
        let i = (0..self.objects.len()).find(|&i| !self.done[i] && self.objects[i].is_ready())?;
        Some(self.mark(i))
    }

    fn mark(&mut self, i: usize) -> usize {
        self.done[i] = true;
        self.left -= 1;
        i
    }

    /// Parks once on every object not yet reported; returns the one whose
    /// registration woke it, if that one is ready.
    fn park_once(&mut self) -> Result<Option<usize>, Cancelled> {
        let mut guard = Registered {
            objects: self.objects,
            done: &self.done,
            ids: vec![0; self.objects.len()],
            armed: false,
        };
        let (r, woke) = runtime::park_at_arm(self.loc, self.deadline, |token: WakeToken| {
            guard.armed = true;
            for (i, o) in guard.objects.iter().enumerate() {
                if !guard.done[i] {
                    let arm = u32::try_from(i + 1).unwrap_or(u32::MAX);
                    guard.ids[i] = o.register(Reg { token, arm });
                }
            }
        });
        let woke = woke.map(|n| n as usize - 1);
        guard.leave(woke);
        drop(guard);
        let parked = r?;
        if parked == runtime::Parked::OwnDeadline {
            self.ended = true;
            return Ok(None);
        }
        Ok(woke
            .filter(|&k| self.objects[k].is_ready())
            .map(|k| self.mark(k)))
    }
}

/// The registrations of one park of an [`Iwait`]; left on drop too (the
/// hub's forced unwind at shutdown).
struct Registered<'s, 'a> {
    objects: &'a [&'a dyn Waitable],
    done: &'s [bool],
    ids: Vec<u64>,
    armed: bool,
}

impl Registered<'_, '_> {
    fn leave(&mut self, woke: Option<usize>) {
        if !std::mem::replace(&mut self.armed, false) {
            return;
        }
        for (i, o) in self.objects.iter().enumerate() {
            if !self.done[i] {
                o.unregister(self.ids[i], woke == Some(i));
            }
        }
    }
}

impl Drop for Registered<'_, '_> {
    fn drop(&mut self) {
        let woke = runtime::woken_arm_before_unwind().map(|n| n as usize - 1);
        self.leave(woke);
    }
}

impl Iterator for Iwait<'_> {
    type Item = Result<usize, Cancelled>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.ended || self.left == 0 {
                return None;
            }
            if let Some(i) = self.take_ready() {
                return Some(Ok(i));
            }
            match self.park_once() {
                Ok(Some(i)) => return Some(Ok(i)),
                Ok(None) => {}
                Err(c) => {
                    self.ended = true;
                    return Some(Err(c));
                }
            }
        }
    }
}
