//! A bounded pool of OS threads for blocking work; Eventlet's `tpool`.
//!
//! Code that would block the hub — `getaddrinfo`, file I/O, a CPU-heavy
//! computation, a C library without a non-blocking mode — runs on one of
//! these threads through [`execute`], while the calling green thread parks
//! and the rest of its hub keeps running.
//!
//! The pool starts threads on demand up to its size (default 16, or
//! `SYLVAN_TPOOL_SIZE`; change it at any time with [`set_size`]); a thread
//! idle for 10 seconds exits. Jobs wait in a FIFO queue when every thread is
//! busy; a job whose caller gave up while it waited is skipped, never
//! started.
//!
//! A pool thread survives anything its jobs do: a panic that escapes a job
//! (such as a panicking `Drop` of a result nobody waits for any more) is
//! caught and logged with `tracing`, and the thread goes on with the next
//! job.

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use crate::cancel::Cancelled;
use crate::runtime::panic_message;
use crate::runtime::{self, Unparker};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Where a job leaves its result and finds whom to wake.
struct Handoff<T> {
    result: Option<thread::Result<T>>,
    waiter: Option<Unparker>,
    /// Set by the caller when it stops waiting (killed, deadline passed).
    /// A job that has not started by then never starts.
    abandoned: bool,
}

thread_local! {
    /// Whether this thread is one of the pool's.
    static ON_POOL_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn on_pool_thread() -> bool {
    ON_POOL_THREAD.with(Cell::get)
}

const IDLE_EXIT: Duration = Duration::from_secs(10);

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    size: usize,
}

struct Pool {
    state: Mutex<State>,
    cv: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let size = std::env::var("SYLVAN_TPOOL_SIZE")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(16);
        Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                size,
            }),
            cv: Condvar::new(),
        }
    })
}

/// Sets the most threads the pool runs at once (at least 1). Takes effect
/// at once: more threads start if jobs are waiting; surplus threads exit
/// after their current job.
///
/// # Examples
///
/// ```
/// sylvan::tpool::set_size(4);
/// assert_eq!(sylvan::tpool::size(), 4);
/// # sylvan::tpool::set_size(16);
/// ```
pub fn set_size(n: usize) {
    let p = pool();
    let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
    st.size = n.max(1);
    while needs_thread(&st) {
        if !start_thread(&mut st) {
            break;
        }
    }
    p.cv.notify_all();
}

/// The most threads the pool runs at once.
///
/// # Examples
///
/// ```
/// assert!(sylvan::tpool::size() >= 1);
/// ```
pub fn size() -> usize {
    pool().state.lock().unwrap_or_else(|e| e.into_inner()).size
}

/// The pool now: threads, busy threads, queued jobs, size (for
/// `debug::snapshot`).
pub(crate) fn stats() -> (usize, usize, usize, usize) {
    let st = pool().state.lock().unwrap_or_else(|e| e.into_inner());
    (
        st.threads,
        st.threads.saturating_sub(st.idle),
        st.queue.len(),
        st.size,
    )
}

/// Whether queued jobs outnumber the idle threads that will take them and
/// the pool may grow.
///
/// An idle thread that was notified stays counted in `idle` until it wakes
/// and takes the lock, and it then takes one job: so the test is the queue
/// against `idle`, not `idle == 0` (with which two jobs submitted while one
/// thread idled started no second thread, and the second job waited for
/// the first to finish).
fn needs_thread(st: &State) -> bool {
    st.threads < st.size && st.queue.len() > st.idle
}

fn start_thread(st: &mut State) -> bool {
    match thread::Builder::new()
        .name("sylvan-tpool".into())
        .spawn(worker)
    {
        Ok(_) => {
            st.threads += 1;
            true
        }
        Err(e) => {
            tracing::warn!("sylvan tpool: cannot start a thread: {e}");
            false
        }
    }
}

fn submit(job: Job) {
    let p = pool();
    let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
    st.queue.push_back(job);
    if needs_thread(&st) {
        start_thread(&mut st);
    }
    p.cv.notify_one();
}

/// Counts a pool thread in `State::threads` until dropped, however the
/// thread ends.
struct Enrolled;

impl Drop for Enrolled {
    fn drop(&mut self) {
        let mut st = pool().state.lock().unwrap_or_else(|e| e.into_inner());
        st.threads -= 1;
        // A thread that ended early (it should not) leaves no job stranded.
        if needs_thread(&st) {
            start_thread(&mut st);
        }
    }
}

fn worker() {
    ON_POOL_THREAD.with(|f| f.set(true));
    // Declared before the lock guard `st`, so dropped after it: `Enrolled`
    // takes the lock itself.
    let _enrolled = Enrolled;
    let p = pool();
    let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if st.threads > st.size {
            break;
        }
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            run(job);
            st = p.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        st.idle += 1;
        let (s, timeout) =
            p.cv.wait_timeout(st, IDLE_EXIT)
                .unwrap_or_else(|e| e.into_inner());
        st = s;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            break;
        }
    }
}

/// Runs one job; a panic that escapes it is logged, never lets the thread
/// die.
///
/// A job catches its closure's own panic and hands it to the caller, so
/// what arrives here comes after: typically the `Drop` of a result (or of a
/// panic payload) whose caller had gone, which runs on this thread.
fn run(job: Job) {
    let Err(payload) = panic::catch_unwind(AssertUnwindSafe(job)) else {
        return;
    };
    tracing::error!(
        "sylvan tpool: a job panicked after its caller had gone \
         (dropping its result?): {}; the pool thread carries on",
        panic_message(&*payload)
    );
    // The payload's own `Drop` may panic as well: then leak it.
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Runs `f` on the thread pool and parks the calling green thread until it
/// returns; the hub keeps running other green threads meanwhile.
///
/// `f` starts only if the caller is not already cancelled, and only if it
/// is still waiting when a pool thread takes `f` up (see `# Cancellation`).
///
/// # Called from a pool thread
///
/// Called from inside a job (directly, or through
/// [`net::lookup_host`](crate::net::lookup_host) or anything else that uses
/// the pool), `execute` runs `f` inline on the calling pool thread and
/// returns its value, as Eventlet's `tpool.execute` does. Waiting there for
/// another pool thread would deadlock as soon as every pool thread did so.
/// The call is then an ordinary blocking call: it fails at once if that
/// thread has a hub whose current context is already cancelled, but nothing
/// interrupts `f` once it runs — a `timeout` around it (such as
/// `lookup_host`'s own) is not enforced — and a panic in `f` unwinds
/// straight through `execute`.
///
/// # Examples
///
/// ```
/// let n = sylvan::tpool::execute(|| std::fs::read_dir(".").map(|d| d.count())).unwrap();
/// assert!(n.is_ok());
/// ```
///
/// # Panics
///
/// If `f` panics, the panic is resumed in the caller.
///
/// # Cancellation
///
/// If the green thread is killed or its deadline passes (or it is unwound
/// at shutdown) while `f` waits in the queue, returns [`Cancelled`] at once
/// and `f` never starts: a pool thread that reaches it skips it. So a burst
/// of abandoned calls — look-ups of a name whose DNS server is down, say —
/// does not keep the pool busy for the calls after it.
///
/// If that happens while `f` runs, returns [`Cancelled`] at once as well.
/// `f` itself can't be interrupted: it runs to completion on its pool
/// thread, and its result is dropped there. A panic while dropping it (or
/// while dropping the payload of a panic in `f`) is caught and logged; the
/// pool thread carries on.
///
/// # Errors
///
/// Only [`Cancelled`].
#[track_caller]
pub fn execute<T, F>(f: F) -> Result<T, Cancelled>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let loc = Location::caller();
    if on_pool_thread() {
        if runtime::has_hub() {
            runtime::check_cancelled()?;
        }
        return Ok(f());
    }
    runtime::check_cancelled()?;
    let shared: Arc<Mutex<Handoff<T>>> = Arc::new(Mutex::new(Handoff {
        result: None,
        waiter: None,
        abandoned: false,
    }));
    {
        let shared = shared.clone();
        submit(Box::new(move || {
            {
                let h = shared.lock().unwrap_or_else(|e| e.into_inner());
                // The caller gave up, was unwound without saying so (its
                // handle is gone), or was leaked with its hub at thread
                // exit (parked for ever): the job never starts.
                let leaked = h.waiter.as_ref().is_some_and(|w| !w.hub_alive());
                if h.abandoned || leaked || Arc::strong_count(&shared) == 1 {
                    return;
                }
            }
            let r = panic::catch_unwind(AssertUnwindSafe(f));
            let waiter = {
                let mut h = shared.lock().unwrap_or_else(|e| e.into_inner());
                h.result = Some(r);
                h.waiter.take()
            };
            if let Some(w) = waiter {
                w.unpark();
            }
        }));
    }
    // Counted while the job is out, however this call ends (a forced
    // unwind at shutdown included).
    let in_flight = runtime::RemoteOp::begin();
    let r = loop {
        if let Some(r) = shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .result
            .take()
        {
            break Ok(r);
        }
        let res = runtime::park_at(loc, None, |token| {
            let mut h = shared.lock().unwrap_or_else(|e| e.into_inner());
            if h.result.is_some() {
                // Finished between our check and now: wake ourselves.
                Unparker::new(token).unpark();
            } else {
                h.waiter = Some(Unparker::new(token));
            }
        });
        if let Err(e) = res {
            let mut h = shared.lock().unwrap_or_else(|e| e.into_inner());
            h.waiter = None;
            h.abandoned = true;
            break Err(e);
        }
    };
    drop(in_flight);
    match r? {
        Ok(v) => Ok(v),
        Err(p) => panic::resume_unwind(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(queued: usize, threads: usize, idle: usize, size: usize) -> State {
        State {
            queue: (0..queued).map(|_| Box::new(|| ()) as Job).collect(),
            threads,
            idle,
            size,
        }
    }

    #[test]
    fn a_second_job_while_one_thread_idles_starts_a_thread() {
        // One idle thread, notified for the first job but not awake yet.
        assert!(!needs_thread(&state(1, 1, 1, 2)));
        assert!(needs_thread(&state(2, 1, 1, 2)));
    }

    #[test]
    fn no_thread_beyond_the_size_or_without_work() {
        assert!(!needs_thread(&state(5, 2, 0, 2)));
        assert!(!needs_thread(&state(0, 0, 0, 2)));
        assert!(needs_thread(&state(1, 0, 0, 2)));
    }
}
