//! Channels between OS threads and hubs: [`channel`], [`bounded`],
//! [`Sender`], [`Receiver`].

use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::remote::RemoteWaiters;
use crate::cancel::Cancelled;
use crate::runtime::{self, Unparker, WakeToken};

mod error;

pub use error::{RecvError, SendError, TryRecvError, TrySendError};

/// Creates an unbounded channel: `send` never waits.
///
/// The two halves are `Send` (when `T` is) and may live on any OS threads;
/// a blocked `recv` parks only its green thread and is woken through its
/// hub's `mio::Waker`. Both halves are `Clone`: the channel is
/// multi-producer, multi-consumer, and each value is received once.
///
/// Code that blocks on a channel can run in a green thread or on a plain
/// OS thread: a plain thread becomes the root context of its own hub the
/// first time it blocks, exactly as any sylvan call does.
///
/// # Examples
///
/// ```
/// let (tx, rx) = sylvan::sync::channel();
/// let worker = std::thread::spawn(move || {
///     for i in 0..3 {
///         tx.send(i * 10).unwrap();
///     }
///     // `tx` is dropped here, which disconnects the channel.
/// });
/// let got: Vec<u32> = std::iter::from_fn(|| rx.recv().ok()).collect();
/// assert_eq!(got, vec![0, 10, 20]);
/// worker.join().unwrap();
/// ```
///
/// # Closing
///
/// Either side may [`close`](Sender::close) the channel explicitly, without
/// waiting for every handle to be dropped. A closed channel is
/// disconnected on purpose, for both sides at once (tokio's
/// `Receiver::close` convention, extended to the sending side): `send`
/// fails at once with [`SendError::Disconnected`], handing the value back;
/// receivers take what is still buffered, then get
/// [`RecvError::Disconnected`], and their iterators end. Blocked senders
/// and receivers are woken to see it. There is no separate `Closed`
/// error: code that ends on disconnection ends on close too.
///
/// # Virtual time
///
/// A `recv` waiting for another OS thread does not hold back a paused clock
/// (see [`time::pause`](crate::time::pause)): nothing tells the hub when, or
/// whether, the other thread will send, so if the hub has nothing else to do
/// the clock jumps to its next timer as usual. (A
/// [`tpool::execute`](crate::tpool::execute) job, which is sure to finish,
/// does hold it back.)
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    Chan::create(None)
}

/// Creates a channel that holds at most `cap` values: `send` waits while it
/// is full.
///
/// `bounded(0)` is a rendezvous channel: `send` waits until a receiver has
/// taken its value (as [`Queue::bounded(0)`](super::Queue::bounded) does).
/// See [`channel`] for the rest.
///
/// # Examples
///
/// ```
/// let (tx, rx) = sylvan::sync::bounded(1);
/// tx.send('a').unwrap();
/// assert!(tx.try_send('b').is_err()); // full
/// let t = std::thread::spawn(move || tx.send('b').unwrap()); // waits for room
/// assert_eq!(rx.recv(), Ok('a'));
/// assert_eq!(rx.recv(), Ok('b'));
/// t.join().unwrap();
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    Chan::create(Some(cap))
}

/// The sending half of a channel; see [`channel`]. `Clone` to get more
/// senders; when the last one is dropped, receivers see the channel
/// disconnected once it is drained.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving half of a channel; see [`channel`]. `Clone` to get more
/// receivers (each value goes to one of them). When the last one is
/// dropped, values still buffered are dropped and senders get their values
/// back in [`SendError::Disconnected`].
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

/// A value a sender is waiting to hand over on a rendezvous channel (or
/// that `try_send` handed to a waiting receiver).
struct Offer<T> {
    value: T,
    ticket: u64,
    /// Whether a sender blocked in `send` owns it (and will take it back
    /// if nobody receives it); `false` for a `try_send` hand-over.
    owned: bool,
    /// The parked sender to wake once the value is taken.
    sender: Option<Unparker>,
}

struct State<T> {
    items: VecDeque<T>,
    /// Rendezvous channels only; sorted by ticket.
    offers: VecDeque<Offer<T>>,
    next_ticket: u64,
    senders: usize,
    receivers: usize,
    /// `close` was called.
    closed: bool,
    /// Receivers waiting for a value.
    recv_waiters: RemoteWaiters,
    /// Senders waiting for room (bounded channels with a capacity).
    send_waiters: RemoteWaiters,
}

struct Chan<T> {
    state: Mutex<State<T>>,
    cap: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Recv,
    Send,
}

impl<T> State<T> {
    fn list(&mut self, side: Side) -> &mut RemoteWaiters {
        match side {
            Side::Recv => &mut self.recv_waiters,
            Side::Send => &mut self.send_waiters,
        }
    }

    fn len(&self) -> usize {
        self.items.len() + self.offers.len()
    }

    /// Whether receivers must stop waiting: every sender is gone, or the
    /// channel was closed.
    fn no_senders(&self) -> bool {
        self.senders == 0 || self.closed
    }

    /// Whether senders must give up: every receiver is gone, or the
    /// channel was closed.
    fn no_receivers(&self) -> bool {
        self.receivers == 0 || self.closed
    }
}

impl<T> Chan<T> {
    fn create(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
        let chan = Arc::new(Chan {
            state: Mutex::new(State {
                items: VecDeque::new(),
                offers: VecDeque::new(),
                next_ticket: 0,
                senders: 1,
                receivers: 1,
                closed: false,
                recv_waiters: RemoteWaiters::default(),
                send_waiters: RemoteWaiters::default(),
            }),
            cap,
        });
        (Sender { chan: chan.clone() }, Receiver { chan })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock (no user code runs under
        // it), but never let a poisoned lock wedge the other threads.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn has_room(&self, st: &State<T>) -> bool {
        match self.cap {
            None => true,
            Some(n) => st.items.len() < n,
        }
    }

    /// Whether a waiter on `side` that was woken could make progress now,
    /// so a wake-up that reached a cancelled waiter must be passed on; or
    /// whether park `me`, registering, finds `side` ready (its own entries
    /// on the other side do not count: it cannot meet itself).
    fn ready_for(&self, st: &State<T>, side: Side, me: Option<WakeToken>) -> bool {
        match side {
            Side::Recv => st.len() > 0 || st.no_senders(),
            // On a rendezvous channel only a `select` waits here, for a
            // receiver to hand its value to.
            Side::Send if self.cap == Some(0) => {
                me.map_or_else(
                    || st.recv_waiters.any(),
                    |me| st.recv_waiters.any_except(me),
                ) || st.no_receivers()
            }
            Side::Send => self.has_room(st) || st.no_receivers(),
        }
    }

    /// Registers the current context in `side`'s waiter list (under the lock
    /// the caller checked its condition with), parks, and returns the lock
    /// again once woken.
    ///
    /// # Cancellation
    ///
    /// On `Err` the waiter has left the list; if a wake-up had already been
    /// spent on it, it is passed to the next waiter, so none is lost. The
    /// same happens if the green thread is force-unwound while parked here.
    fn wait<'a>(
        &'a self,
        st: MutexGuard<'a, State<T>>,
        side: Side,
        loc: &'static Location<'static>,
    ) -> Result<MutexGuard<'a, State<T>>, Cancelled> {
        /// Leaves the list on drop unless disarmed; see `wait`.
        struct Waiting<'a, T> {
            chan: &'a Chan<T>,
            side: Side,
            id: Option<u64>,
        }
        impl<T> Drop for Waiting<'_, T> {
            fn drop(&mut self) {
                if let Some(id) = self.id.take() {
                    self.chan.leave(self.side, id);
                }
            }
        }
        let mut waiting = Waiting {
            chan: self,
            side,
            id: None,
        };
        let mut st = st;
        let r = runtime::park_at(loc, None, |token| {
            waiting.id = Some(st.list(side).push(Unparker::new(token)));
            let sender = self.receiver_arrives(&mut st, side, token);
            drop(st);
            if let Some(u) = sender {
                u.unpark();
            }
        });
        match r {
            Ok(_) => {
                // Whoever woke us took our entry (only they held our
                // token), so there is nothing to leave or pass on.
                waiting.id = None;
                Ok(self.lock())
            }
            Err(c) => {
                drop(waiting);
                Err(c)
            }
        }
    }

    /// Waiter `id` of `side` stops waiting. If a wake-up was already spent
    /// on it (a waker took its entry), that wake-up passes to the next
    /// waiter when there is something for it to do, so none is lost.
    fn leave(&self, side: Side, id: u64) {
        let mut st = self.lock();
        let forward = if st.list(side).remove(id) {
            None
        } else if self.ready_for(&st, side, None) {
            st.list(side).pop()
        } else {
            None
        };
        drop(st);
        if let Some(u) = forward {
            u.unpark();
        }
    }

    /// A receiver is about to wait: on a rendezvous channel that makes a
    /// `try_send` possible, so a `select` waiting to send (the only
    /// waiters in a rendezvous channel's `send_waiters`) is told: never
    /// the receiver's own park `me` (a select with both arms on this
    /// channel cannot meet itself). Returns whom to unpark once the lock
    /// is released.
    fn receiver_arrives(&self, st: &mut State<T>, side: Side, me: WakeToken) -> Option<Unparker> {
        if side == Side::Recv && self.cap == Some(0) {
            st.send_waiters.pop_except(me)
        } else {
            None
        }
    }

    /// Registers a multi-way park (`select`, `iwait`) on `side`; returns
    /// the id to [`leave`](Self::leave) with. `takes`: it will take a
    /// value if it can (a `select`; not an `iwait`, which only watches),
    /// so a `select` waiting to send on a rendezvous channel is told.
    fn register(&self, side: Side, token: WakeToken, takes: bool) -> u64 {
        let mut st = self.lock();
        let id = st.list(side).push(Unparker::new(token));
        let sender = if takes {
            self.receiver_arrives(&mut st, side, token)
        } else {
            None
        };
        // The caller's last attempt ran before it took the lock again: a
        // peer on another thread may have made the channel ready since,
        // finding nobody to wake. Checked under the lock it registered
        // with, so no wake-up falls between; if ready, it wakes itself
        // (its entry stays, to be removed when it leaves).
        let ready = self.ready_for(&st, side, Some(token));
        drop(st);
        if let Some(u) = sender {
            u.unpark();
        }
        if ready {
            Unparker::new(token).unpark();
        }
        id
    }

    fn send(&self, value: T, loc: &'static Location<'static>) -> Result<(), SendError<T>> {
        let mut st = self.lock();
        if self.cap == Some(0) {
            return self.send_rendezvous(st, value, loc);
        }
        loop {
            if st.no_receivers() {
                return Err(SendError::Disconnected(value));
            }
            if self.has_room(&st) {
                st.items.push_back(value);
                let waiter = st.recv_waiters.pop();
                drop(st);
                if let Some(u) = waiter {
                    u.unpark();
                }
                return Ok(());
            }
            st = match self.wait(st, Side::Send, loc) {
                Ok(st) => st,
                Err(c) => return Err(SendError::Cancelled(value, c)),
            };
        }
    }

    fn send_rendezvous<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<T>>,
        value: T,
        loc: &'static Location<'static>,
    ) -> Result<(), SendError<T>> {
        if st.no_receivers() {
            return Err(SendError::Disconnected(value));
        }
        if let Err(c) = runtime::check_cancelled() {
            return Err(SendError::Cancelled(value, c));
        }
        st.next_ticket += 1;
        let ticket = st.next_ticket;
        st.offers.push_back(Offer {
            value,
            ticket,
            owned: true,
            sender: None,
        });
        if let Some(u) = st.recv_waiters.pop() {
            u.unpark();
        }
        loop {
            let r = runtime::park_at(loc, None, |token| {
                if let Ok(i) = st.offers.binary_search_by_key(&ticket, |o| o.ticket) {
                    st.offers[i].sender = Some(Unparker::new(token));
                }
                drop(st);
            });
            st = self.lock();
            let pos = st.offers.binary_search_by_key(&ticket, |o| o.ticket).ok();
            match (r, pos) {
                (Ok(_), None) => return Ok(()),
                // Taken at the same moment we were cancelled: the send
                // succeeded, so the cancellation is not reported here.
                (Err(c), None) => {
                    runtime::retract(c);
                    return Ok(());
                }
                (r, Some(i)) => {
                    let cause = match r {
                        Err(c) => Some(c),
                        Ok(_) if st.no_receivers() => None,
                        Ok(_) => continue,
                    };
                    let offer = st.offers.remove(i).expect("index is in range");
                    drop(st);
                    return Err(match cause {
                        Some(c) => SendError::Cancelled(offer.value, c),
                        None => SendError::Disconnected(offer.value),
                    });
                }
            }
        }
    }

    fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut st = self.lock();
        if st.no_receivers() {
            return Err(TrySendError::Disconnected(value));
        }
        if self.cap == Some(0) {
            // Hand over directly if a receiver is waiting.
            let Some(u) = st.recv_waiters.pop() else {
                return Err(TrySendError::Full(value));
            };
            st.next_ticket += 1;
            let ticket = st.next_ticket;
            st.offers.push_back(Offer {
                value,
                ticket,
                owned: false,
                sender: None,
            });
            drop(st);
            u.unpark();
            return Ok(());
        }
        if !self.has_room(&st) {
            return Err(TrySendError::Full(value));
        }
        st.items.push_back(value);
        let waiter = st.recv_waiters.pop();
        drop(st);
        if let Some(u) = waiter {
            u.unpark();
        }
        Ok(())
    }

    /// Takes a value if there is one, waking whoever that makes room for.
    fn take<'a>(&'a self, mut st: MutexGuard<'a, State<T>>) -> Result<T, MutexGuard<'a, State<T>>> {
        if let Some(v) = st.items.pop_front() {
            let waiter = if self.cap.is_some() {
                st.send_waiters.pop()
            } else {
                None
            };
            drop(st);
            if let Some(u) = waiter {
                u.unpark();
            }
            return Ok(v);
        }
        if let Some(o) = st.offers.pop_front() {
            drop(st);
            if let Some(u) = o.sender {
                u.unpark();
            }
            return Ok(o.value);
        }
        Err(st)
    }

    fn recv(&self, loc: &'static Location<'static>) -> Result<T, RecvError> {
        let mut st = self.lock();
        loop {
            st = match self.take(st) {
                Ok(v) => return Ok(v),
                Err(st) => st,
            };
            if st.no_senders() {
                return Err(RecvError::Disconnected);
            }
            st = self.wait(st, Side::Recv, loc)?;
        }
    }

    /// Closes the channel for both sides; see `# Closing` on [`channel`].
    fn close(&self) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        let mut wake: Vec<Unparker> = st.recv_waiters.take_all().collect();
        wake.extend(st.send_waiters.take_all());
        // Senders parked on a rendezvous offer take it back when they wake
        // (unless a receiver takes it first); `try_send` hand-overs stay
        // for receivers to drain.
        for o in st.offers.iter_mut() {
            wake.extend(o.sender.take());
        }
        drop(st);
        for u in wake {
            u.unpark();
        }
    }

    fn try_recv(&self) -> Result<T, TryRecvError> {
        match self.take(self.lock()) {
            Ok(v) => Ok(v),
            Err(st) if st.no_senders() => Err(TryRecvError::Disconnected),
            Err(_) => Err(TryRecvError::Empty),
        }
    }
}

impl<T> Sender<T> {
    /// Sends a value, waiting while a bounded channel is full (for a
    /// rendezvous channel: until a receiver has taken it). An unbounded
    /// channel never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel();
    /// tx.send("hi").unwrap();
    /// assert_eq!(rx.recv(), Ok("hi"));
    /// drop(rx);
    /// let err = tx.send("anyone?").unwrap_err();
    /// assert!(err.is_disconnected());
    /// assert_eq!(err.into_inner(), "anyone?");
    /// ```
    ///
    /// # Errors
    ///
    /// [`SendError`], holding the value, which was not sent:
    /// [`Disconnected`](SendError::Disconnected) if every receiver is gone,
    /// [`Cancelled`](SendError::Cancelled) as below.
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`SendError::Cancelled`] holding the value, which was not
    /// added (for a rendezvous channel: was withdrawn, not taken); the
    /// green thread is no longer a waiter, and a wake-up meant for it passes
    /// to the next waiting sender. If a receiver took the value at the same
    /// moment, the send succeeded and returns `Ok`. Either way the value is
    /// delivered exactly once or handed back.
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.send(value, Location::caller())
    }

    /// Sends a value if that needs no waiting.
    ///
    /// On a rendezvous channel this succeeds only when a receiver is
    /// waiting; the value is then handed to it (should that receiver give
    /// up at the same moment, the value stays for the next `recv`).
    ///
    /// # Errors
    ///
    /// [`TrySendError`] holding the value: `Full`, or `Disconnected` if
    /// every receiver is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::sync::TrySendError;
    ///
    /// let (tx, rx) = sylvan::sync::bounded(1);
    /// assert!(tx.try_send(1).is_ok());
    /// assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
    /// drop(rx);
    /// assert!(matches!(tx.try_send(3), Err(TrySendError::Disconnected(3))));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// Whether every receiver is gone (sends can never succeed again).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel::<u8>();
    /// assert!(!tx.is_disconnected());
    /// drop(rx);
    /// assert!(tx.is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.chan.lock().no_receivers()
    }

    /// Closes the channel for both sides, without waiting for every
    /// handle to be dropped: later sends fail with
    /// [`SendError::Disconnected`] (handing the value back), receivers
    /// drain what is buffered and then see the channel disconnected.
    /// Blocked senders and receivers are woken. Never blocks; closing
    /// again does nothing. See `# Closing` on [`channel`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::sync::RecvError;
    ///
    /// let (tx, rx) = sylvan::sync::channel();
    /// let tx2 = tx.clone();
    /// tx.send(1).unwrap();
    /// tx.close();
    /// assert!(tx2.send(2).unwrap_err().is_disconnected()); // every sender refused
    /// assert_eq!(rx.recv(), Ok(1)); // what was sent before is still there
    /// assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    /// ```
    pub fn close(&self) {
        self.chan.close();
    }

    /// Values waiting to be received (for a rendezvous channel: senders
    /// waiting to hand one over).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = sylvan::sync::channel();
    /// tx.send(()).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.lock().len()
    }

    /// Whether no value is waiting to be received.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = sylvan::sync::channel::<()>();
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity (`None` when unbounded).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = sylvan::sync::bounded::<()>(8);
    /// assert_eq!(tx.capacity(), Some(8));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.cap
    }
}

impl<T> Receiver<T> {
    /// Takes the oldest value, waiting until there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel();
    /// let g = sylvan::spawn(move || rx.recv());
    /// tx.send(5).unwrap();
    /// assert_eq!(g.join().unwrap(), Ok(5));
    /// ```
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] once the channel is empty and every
    /// sender is gone (values sent before that are still received first);
    /// [`RecvError::Cancelled`] as below.
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`RecvError::Cancelled`]; nothing was taken, and the green
    /// thread is no longer a waiter. If a sender had already woken it for a
    /// value, that wake-up passes to the next waiting receiver, so the value
    /// is not stranded.
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(Location::caller())
    }

    /// Takes the oldest value if there is one; never waits.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] if it is
    /// empty and every sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::sync::TryRecvError;
    ///
    /// let (tx, rx) = sylvan::sync::channel();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Whether every sender is gone (the channel may still hold values).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel::<u8>();
    /// drop(tx);
    /// assert!(rx.is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        self.chan.lock().no_senders()
    }

    /// Closes the channel for both sides; the same as
    /// [`Sender::close`], from the receiving end (tokio's
    /// `Receiver::close`): stops the senders while this receiver drains
    /// what was already sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::bounded(4);
    /// tx.send("queued").unwrap();
    /// rx.close();
    /// assert_eq!(tx.send("late").unwrap_err().into_inner(), "late");
    /// let rest: Vec<_> = rx.iter().collect();
    /// assert_eq!(rest, vec!["queued"]);
    /// ```
    pub fn close(&self) {
        self.chan.close();
    }

    /// A blocking iterator over received values, which ends once the
    /// channel is empty and disconnected (every sender dropped, or
    /// [closed](Self::close)). `for v in &rx` does the same, and
    /// `for v in rx` consumes the receiver.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::bounded(1);
    /// let producer = std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         tx.send(i).unwrap();
    ///     }
    /// });
    /// let got: Vec<u32> = rx.iter().collect();
    /// assert_eq!(got, vec![0, 1, 2]);
    /// producer.join().unwrap();
    /// ```
    ///
    /// # Cancellation
    ///
    /// Each `next` is a [`recv`](Self::recv). If the iterating green
    /// thread is killed or its deadline passes while it waits, the
    /// iteration ends (`None`) as it does at disconnection; nothing is
    /// taken or lost. The cancellation is not swallowed: a kill is sticky
    /// and a passed deadline fails every later blocking call, so the next
    /// one reports it (and [`timeout`](crate::timeout) returns
    /// `Err(Elapsed)`). Use `recv` in a loop to tell the endings apart.
    pub fn iter(&self) -> RecvIter<'_, T> {
        RecvIter { rx: self }
    }

    /// Values waiting to be received; see [`Sender::len`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.lock().len()
    }

    /// Whether no value is waiting to be received.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = sylvan::sync::channel::<()>();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity (`None` when unbounded).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = sylvan::sync::channel::<()>();
    /// assert_eq!(rx.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.cap
    }
}

impl<T> Sender<T> {
    /// Registers a multi-way park (`select`) as a sender waiting for room
    /// (on a rendezvous channel: for a receiver); returns its id.
    pub(crate) fn register(&self, token: WakeToken) -> u64 {
        self.chan.register(Side::Send, token, true)
    }

    /// The multi-way park registered as `id` stops waiting.
    pub(crate) fn unregister(&self, id: u64) {
        self.chan.leave(Side::Send, id);
    }
}

impl<T> Receiver<T> {
    /// Registers a multi-way park as a receiver: a `select` that will
    /// take a value (`takes`), or an `iwait` that only watches; returns
    /// its id.
    pub(crate) fn register(&self, token: WakeToken, takes: bool) -> u64 {
        self.chan.register(Side::Recv, token, takes)
    }

    /// The multi-way park registered as `id` stops waiting.
    pub(crate) fn unregister(&self, id: u64) {
        self.chan.leave(Side::Recv, id);
    }

    /// Whether a `recv` would return at once (a value, or disconnection).
    pub(crate) fn is_ready(&self) -> bool {
        let st = self.chan.lock();
        st.len() > 0 || st.no_senders()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.lock().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.lock().receivers += 1;
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut st = self.chan.lock();
        st.senders -= 1;
        if st.senders > 0 {
            return;
        }
        let waiters = st.recv_waiters.take_all();
        drop(st);
        for u in waiters {
            u.unpark();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = self.chan.lock();
        st.receivers -= 1;
        if st.receivers > 0 {
            return;
        }
        // Nobody can receive any more: drop what is buffered (outside the
        // lock), wake blocked senders so they take their values back.
        let items = std::mem::take(&mut st.items);
        let mut wake: Vec<Unparker> = st.send_waiters.take_all().collect();
        let mut orphans = Vec::new();
        for mut o in std::mem::take(&mut st.offers) {
            if o.owned {
                // Its sender takes it back when it wakes.
                wake.extend(o.sender.take());
                st.offers.push_back(o);
            } else {
                orphans.push(o);
            }
        }
        drop(st);
        for u in wake {
            u.unpark();
        }
        drop(items);
        drop(orphans);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.chan.lock();
        f.debug_struct("Sender")
            .field("len", &st.len())
            .field("capacity", &self.chan.cap)
            .field("disconnected", &st.no_receivers())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.chan.lock();
        f.debug_struct("Receiver")
            .field("len", &st.len())
            .field("capacity", &self.chan.cap)
            .field("disconnected", &st.no_senders())
            .finish()
    }
}

/// The blocking iterator of [`Receiver::iter`] (and of `&Receiver`):
/// yields values until the channel is empty and disconnected, or a wait
/// is cancelled (see `iter`).
///
/// # Examples
///
/// ```
/// let (tx, rx) = sylvan::sync::channel();
/// tx.send(1).unwrap();
/// drop(tx);
/// let mut it = rx.iter();
/// assert_eq!(it.next(), Some(1));
/// assert_eq!(it.next(), None);
/// ```
pub struct RecvIter<'a, T> {
    rx: &'a Receiver<T>,
}

/// The blocking iterator of `Receiver` by value (`for v in rx`); see
/// [`Receiver::iter`].
///
/// # Examples
///
/// ```
/// let (tx, rx) = sylvan::sync::channel();
/// tx.send('x').unwrap();
/// tx.close();
/// assert_eq!(rx.into_iter().collect::<String>(), "x");
/// ```
pub struct RecvIntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for RecvIter<'_, T> {
    type Item = T;

    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.chan.recv(Location::caller()).ok()
    }
}

impl<T> Iterator for RecvIntoIter<T> {
    type Item = T;

    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.chan.recv(Location::caller()).ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = RecvIter<'a, T>;

    fn into_iter(self) -> RecvIter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = RecvIntoIter<T>;

    fn into_iter(self) -> RecvIntoIter<T> {
        RecvIntoIter { rx: self }
    }
}

impl<T> fmt::Debug for RecvIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RecvIter").field(self.rx).finish()
    }
}

impl<T> fmt::Debug for RecvIntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RecvIntoIter").field(&self.rx).finish()
    }
}
