//! The arms of a [`Select`](super::Select): one operation each, with a
//! non-blocking attempt, a waiter registration and its undoing.

use std::cell::{Cell, RefCell};

use crate::JoinError;
use crate::green::GreenThread;
use crate::runtime::WakeToken;
use crate::sync::{
    Event, GetError, PutError, Queue, Receiver, RecvError, Semaphore, SemaphorePermit, SendError,
    Sender, TryPutError, TryRecvError, TrySendError,
};

/// One operation of a select.
pub(super) trait Arm<R> {
    /// Performs the operation if it can complete now, without waiting,
    /// and returns its closure's value. Called at most once successfully.
    fn try_complete(&self) -> Option<R>;

    /// Registers the parking select as a waiter; `arm` (1-based) tags the
    /// registration so the wake-up says which arm it came from.
    fn register(&self, token: WakeToken, arm: u32);

    /// Stops waiting without completing. `notified`: this arm's
    /// registration woke the select (so whatever that wake-up carried is
    /// passed on or given back).
    fn unregister(&self, notified: bool);

    /// Completes after this arm's registration woke the select, if it
    /// still can (the arm stays registered until then).
    fn complete_notified(&self) -> Option<R> {
        self.try_complete()
    }

    /// The arm's own deadline (hub clock nanoseconds), for deadline arms.
    fn deadline(&self) -> Option<u64> {
        None
    }
}

/// The arm's closure, taken when the arm fires.
struct Then<F>(Cell<Option<F>>);

impl<F> Then<F> {
    fn new(f: F) -> Then<F> {
        Then(Cell::new(Some(f)))
    }

    fn take(&self) -> F {
        self.0.take().expect("a select arm fires at most once")
    }
}

pub(super) struct GetArm<'a, T, F> {
    queue: &'a Queue<T>,
    f: Then<F>,
}

impl<'a, T, F> GetArm<'a, T, F> {
    pub(super) fn new(queue: &'a Queue<T>, f: F) -> Self {
        GetArm {
            queue,
            f: Then::new(f),
        }
    }
}

impl<T, R, F: FnOnce(Result<T, GetError>) -> R> Arm<R> for GetArm<'_, T, F> {
    fn try_complete(&self) -> Option<R> {
        let r = match self.queue.try_get() {
            Some(v) => Ok(v),
            None if self.queue.is_closed() => Err(GetError::Closed),
            None => return None,
        };
        Some(self.f.take()(r))
    }

    fn register(&self, token: WakeToken, arm: u32) {
        self.queue.register_getter(token, arm);
    }

    fn unregister(&self, notified: bool) {
        self.queue.unregister_getter(notified);
    }
}

pub(super) struct PutArm<'a, T, F> {
    queue: &'a Queue<T>,
    slot: RefCell<&'a mut Option<T>>,
    f: Then<F>,
}

impl<'a, T, F> PutArm<'a, T, F> {
    pub(super) fn new(queue: &'a Queue<T>, slot: &'a mut Option<T>, f: F) -> Self {
        PutArm {
            queue,
            slot: RefCell::new(slot),
            f: Then::new(f),
        }
    }
}

impl<T, R, F: FnOnce(Result<(), PutError<T>>) -> R> Arm<R> for PutArm<'_, T, F> {
    fn try_complete(&self) -> Option<R> {
        let mut slot = self.slot.borrow_mut();
        let v = slot.take()?;
        let r = match self.queue.try_put(v) {
            Ok(()) => Ok(()),
            Err(TryPutError::Closed(v)) => Err(PutError::Closed(v)),
            Err(e) => {
                **slot = Some(e.into_inner());
                return None;
            }
        };
        drop(slot);
        Some(self.f.take()(r))
    }

    fn register(&self, token: WakeToken, arm: u32) {
        if self.slot.borrow().is_some() {
            self.queue.register_putter(token, arm);
        }
    }

    fn unregister(&self, notified: bool) {
        if self.slot.borrow().is_some() {
            self.queue.unregister_putter(notified);
        }
    }
}

pub(super) struct RecvArm<'a, T, F> {
    rx: &'a Receiver<T>,
    id: Cell<u64>,
    f: Then<F>,
}

impl<'a, T, F> RecvArm<'a, T, F> {
    pub(super) fn new(rx: &'a Receiver<T>, f: F) -> Self {
        RecvArm {
            rx,
            id: Cell::new(0),
            f: Then::new(f),
        }
    }
}

impl<T, R, F: FnOnce(Result<T, RecvError>) -> R> Arm<R> for RecvArm<'_, T, F> {
    fn try_complete(&self) -> Option<R> {
        let r = match self.rx.try_recv() {
            Ok(v) => Ok(v),
            Err(TryRecvError::Disconnected) => Err(RecvError::Disconnected),
            Err(_) => return None,
        };
        Some(self.f.take()(r))
    }

    fn register(&self, token: WakeToken, _arm: u32) {
        self.id.set(self.rx.register(token, true));
    }

    fn unregister(&self, _notified: bool) {
        self.rx.unregister(self.id.get());
    }
}

pub(super) struct SendArm<'a, T, F> {
    tx: &'a Sender<T>,
    slot: RefCell<&'a mut Option<T>>,
    id: Cell<u64>,
    f: Then<F>,
}

impl<'a, T, F> SendArm<'a, T, F> {
    pub(super) fn new(tx: &'a Sender<T>, slot: &'a mut Option<T>, f: F) -> Self {
        SendArm {
            tx,
            slot: RefCell::new(slot),
            id: Cell::new(0),
            f: Then::new(f),
        }
    }
}

impl<T, R, F: FnOnce(Result<(), SendError<T>>) -> R> Arm<R> for SendArm<'_, T, F> {
    fn try_complete(&self) -> Option<R> {
        let mut slot = self.slot.borrow_mut();
        let v = slot.take()?;
        let r = match self.tx.try_send(v) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(v)) => Err(SendError::Disconnected(v)),
            Err(e) => {
                **slot = Some(e.into_inner());
                return None;
            }
        };
        drop(slot);
        Some(self.f.take()(r))
    }

    fn register(&self, token: WakeToken, _arm: u32) {
        if self.slot.borrow().is_some() {
            self.id.set(self.tx.register(token));
        }
    }

    fn unregister(&self, _notified: bool) {
        if self.slot.borrow().is_some() {
            self.tx.unregister(self.id.get());
        }
    }
}

pub(super) struct WaitArm<'a, T, F> {
    event: &'a Event<T>,
    /// The event's send count when the select began.
    start: u64,
    f: Then<F>,
}

impl<'a, T, F> WaitArm<'a, T, F> {
    pub(super) fn new(event: &'a Event<T>, f: F) -> Self {
        WaitArm {
            event,
            start: event.sends(),
            f: Then::new(f),
        }
    }
}

impl<T: Clone, R, F: FnOnce(T) -> R> Arm<R> for WaitArm<'_, T, F> {
    fn try_complete(&self) -> Option<R> {
        let v = self.event.poll_since(self.start)?;
        Some(self.f.take()(v))
    }

    fn register(&self, token: WakeToken, arm: u32) {
        self.event.register(token, arm);
    }

    fn unregister(&self, notified: bool) {
        self.event.unregister(notified);
    }
}

pub(super) struct JoinArm<'a, T, F> {
    slot: RefCell<&'a mut Option<GreenThread<T>>>,
    f: Then<F>,
}

impl<'a, T, F> JoinArm<'a, T, F> {
    pub(super) fn new(slot: &'a mut Option<GreenThread<T>>, f: F) -> Self {
        JoinArm {
            slot: RefCell::new(slot),
            f: Then::new(f),
        }
    }
}

impl<T, R, F: FnOnce(Result<T, JoinError>) -> R> Arm<R> for JoinArm<'_, T, F> {
    fn try_complete(&self) -> Option<R> {
        let mut slot = self.slot.borrow_mut();
        if !slot.as_ref()?.is_finished() {
            return None;
        }
        let g = slot.take()?;
        drop(slot);
        // Finished, so `join` does not wait.
        Some(self.f.take()(g.join()))
    }

    fn register(&self, token: WakeToken, arm: u32) {
        if let Some(g) = &**self.slot.borrow() {
            g.register_joiner(token, arm);
        }
    }

    fn unregister(&self, notified: bool) {
        if let Some(g) = &**self.slot.borrow() {
            g.unregister_joiner(notified);
        }
    }
}

pub(super) struct AcquireArm<'a, F> {
    sem: &'a Semaphore,
    f: Then<F>,
}

impl<'a, F> AcquireArm<'a, F> {
    pub(super) fn new(sem: &'a Semaphore, f: F) -> Self {
        AcquireArm {
            sem,
            f: Then::new(f),
        }
    }
}

impl<R, F: FnOnce(SemaphorePermit) -> R> Arm<R> for AcquireArm<'_, F> {
    fn try_complete(&self) -> Option<R> {
        let p = self.sem.try_acquire()?;
        Some(self.f.take()(p))
    }

    fn register(&self, token: WakeToken, arm: u32) {
        self.sem.register(token, arm);
    }

    fn unregister(&self, notified: bool) {
        self.sem.unregister(notified);
    }

    fn complete_notified(&self) -> Option<R> {
        // The release that woke us handed us its permit.
        Some(self.f.take()(self.sem.handed_permit()))
    }
}

pub(super) struct DeadlineArm<F> {
    at: u64,
    f: Then<F>,
}

impl<F> DeadlineArm<F> {
    pub(super) fn new(at: u64, f: F) -> Self {
        DeadlineArm {
            at,
            f: Then::new(f),
        }
    }
}

impl<R, F: FnOnce() -> R> Arm<R> for DeadlineArm<F> {
    fn try_complete(&self) -> Option<R> {
        if crate::runtime::now() < self.at {
            return None;
        }
        Some(self.f.take()())
    }

    fn register(&self, _token: WakeToken, _arm: u32) {}

    fn unregister(&self, _notified: bool) {}

    fn deadline(&self) -> Option<u64> {
        Some(self.at)
    }
}
