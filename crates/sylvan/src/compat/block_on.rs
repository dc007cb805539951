//! [`block_on`]: drive a future to completion from a green thread.
//!
//! The future is polled on the caller's stack. Between polls the caller
//! parks through the hub's one parking primitive, so kill and scoped
//! deadlines end the wait exactly as they end any other blocking call.
//!
//! The `Waker` handed to the future is an `Arc<Signal>`: a `notified` flag
//! and the slot of the current park, under one small lock. A wake sets the
//! flag and, if the caller is parked and registered, takes the park's
//! [`Unparker`] out of the slot and uses it. The caller clears the flag
//! just before each poll and registers its park only if the flag is still
//! clear (under the same lock), so a wake-up that arrives at any moment —
//! during the poll, between the poll and the park, during the park — is
//! never lost, and a waker may be cloned, stored and woken any number of
//! times, from any thread, before or after `block_on` returns.

use std::cell::Cell;
use std::future::{Future, IntoFuture};
use std::panic::Location;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::cancel::Cancelled;
use crate::runtime::{self, Unparker};

/// What a `block_on` call shares with every clone of its waker.
#[derive(Debug, Default)]
struct Signal {
    state: Mutex<SignalState>,
}

#[derive(Debug, Default)]
struct SignalState {
    /// A wake came since `block_on` last cleared this (just before a poll).
    notified: bool,
    /// How to end the caller's park, while it is parked and registered.
    waiter: Option<Unparker>,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, SignalState> {
        // No user code runs under the lock; never let poison wedge a waker.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waiter = {
            let mut st = self.lock();
            st.notified = true;
            st.waiter.take()
        };
        if let Some(w) = waiter {
            w.unpark();
        }
    }
}

thread_local! {
    /// A signal that no waker refers to any more, kept for this thread's
    /// next `block_on` (saves an allocation per call).
    static SPARE: Cell<Option<Arc<Signal>>> = const { Cell::new(None) };
}

/// Runs a future to completion on the current green thread (or the root
/// context), parking it between polls; returns the future's output.
///
/// The future is polled right away on the caller's stack. Whenever it
/// returns `Pending`, the green thread parks and the hub runs the others,
/// until the future's `Waker` is woken — from this hub or from any other OS
/// thread (a cross-thread wake goes through the hub's `mio::Waker`). No
/// polling happens without a wake-up, and no thread is spent on the wait.
///
/// That is all a runtime-agnostic future needs: channels and oneshots
/// (`futures-channel`, `tokio::sync`, `async-channel`, `flume`), futures
/// completed by other threads, timers that run a thread of their own. A
/// future that needs a particular runtime to make progress — tokio's
/// sockets and timers, say — must run on that runtime: see
/// `compat::tokio::run` (feature `tokio`).
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::sync::{Arc, Mutex};
/// use std::task::{Context, Poll, Waker};
///
/// /// A one-shot slot another OS thread fills, as any async channel would be.
/// #[derive(Default)]
/// struct Slot(Mutex<(Option<u32>, Option<Waker>)>);
/// struct Recv(Arc<Slot>);
///
/// impl Future for Recv {
///     type Output = u32;
///     fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
///         let mut s = self.0 .0.lock().unwrap();
///         match s.0.take() {
///             Some(v) => Poll::Ready(v),
///             None => {
///                 s.1 = Some(cx.waker().clone());
///                 Poll::Pending
///             }
///         }
///     }
/// }
///
/// let slot = Arc::new(Slot::default());
/// let tx = slot.clone();
/// let t = std::thread::spawn(move || {
///     let waker = {
///         let mut s = tx.0.lock().unwrap();
///         s.0 = Some(42);
///         s.1.take()
///     };
///     if let Some(w) = waker {
///         w.wake();
///     }
/// });
/// // Parks this context (here the root) until the other thread delivers.
/// assert_eq!(sylvan::block_on(Recv(slot)), Ok(42));
/// t.join().unwrap();
///
/// // Ready futures cost one poll.
/// assert_eq!(sylvan::block_on(async { 1 + 1 }), Ok(2));
/// ```
///
/// # Cancellation
///
/// If the green thread was already killed (or its scoped deadline had
/// passed), returns [`Cancelled`] at once without polling. If it is killed,
/// or the deadline of an enclosing [`timeout`](crate::timeout) /
/// [`deadline`](crate::deadline) scope passes, while the future is pending,
/// returns [`Cancelled`] at once and **drops the future**: whatever the
/// future does on drop — its own cancellation — runs then, on this green
/// thread, before `block_on` returns. A wake that comes later finds nobody
/// waiting and does nothing.
///
/// # Fairness
///
/// A future that wakes itself while being polled (a cooperative yield) is
/// polled again only after every other ready green thread of the hub has
/// run once: such a future can't starve the hub.
///
/// # Virtual time
///
/// A future waiting for another OS thread does not hold back a paused clock
/// (see [`time::pause`](crate::time::pause)), as a cross-thread
/// [`channel`](crate::sync::channel) receive doesn't: nothing tells the hub
/// when, or whether, the future will be woken.
///
/// # Deadlock
///
/// A future that returns `Pending` without keeping a clone of its waker can
/// never be woken; `block_on` then parks without registering anywhere, so
/// if the root context waits for it with nothing else left to run, the
/// hub's deadlock check reports it instead of hanging.
///
/// # Panics
///
/// If the future panics, the panic propagates to the caller (the future is
/// dropped while unwinding).
///
/// # Errors
///
/// Only [`Cancelled`].
#[track_caller]
pub fn block_on<F: IntoFuture>(future: F) -> Result<F::Output, Cancelled> {
    block_on_at(Location::caller(), future.into_future())
}

/// [`block_on`] with an explicit blocking location (for wrappers that are
/// themselves `#[track_caller]`).
pub(crate) fn block_on_at<F: Future>(
    loc: &'static Location<'static>,
    future: F,
) -> Result<F::Output, Cancelled> {
    runtime::check_cancelled()?;
    let mut signal = SPARE
        .try_with(Cell::take)
        .ok()
        .flatten()
        .unwrap_or_default();
    let r = drive(loc, future, &signal);
    // The future and our waker are gone; if nobody else kept a clone, no
    // late wake can reach this signal and it is as good as new.
    if let Some(s) = Arc::get_mut(&mut signal) {
        let st = s.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        st.notified = false;
        st.waiter = None;
        let _ = SPARE.try_with(|s| s.set(Some(signal)));
    }
    r
}

/// Polls `future` until it is ready or the caller is cancelled; the future
/// is dropped before this returns.
fn drive<F: Future>(
    loc: &'static Location<'static>,
    future: F,
    signal: &Arc<Signal>,
) -> Result<F::Output, Cancelled> {
    let mut future = pin!(future);
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        wait(loc, signal)?;
    }
}

/// Waits for a wake-up after a `Pending` poll; clears `notified` for the
/// next poll.
fn wait(loc: &'static Location<'static>, signal: &Arc<Signal>) -> Result<(), Cancelled> {
    {
        let mut st = signal.lock();
        if st.notified {
            // Woken during the poll: poll again, after letting the rest of
            // the hub run once.
            st.notified = false;
            drop(st);
            runtime::check_cancelled()?;
            runtime::yield_now();
            return Ok(());
        }
    }
    let r = runtime::park_at(loc, None, |token| {
        let mut st = signal.lock();
        if st.notified {
            // Woken between our check and now: end this park at once.
            drop(st);
            Unparker::new(token).unpark();
        } else if Arc::strong_count(signal) > 2 {
            st.waiter = Some(Unparker::new(token));
        }
        // Otherwise our `signal` and our waker are the only references:
        // the future kept no waker, so only a kill or a deadline can end
        // this park, and registering nothing lets the hub's deadlock check
        // see that. (Read under the lock, after `notified`: a waker
        // dropped since was woken first, or we would see it still held.)
    });
    {
        let mut st = signal.lock();
        st.waiter = None;
        st.notified = false;
    }
    r.map(drop)
}
