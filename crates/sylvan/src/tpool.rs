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
//! busy.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use crate::cancel::Cancelled;
use crate::runtime::hub::hub;
use crate::runtime::park::{self, Unparker};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Where a job leaves its result and finds whom to wake.
struct Handoff<T> {
    result: Option<thread::Result<T>>,
    waiter: Option<Unparker>,
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
    while st.threads < st.size && st.queue.len() > st.idle {
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
    if st.idle == 0 && st.threads < st.size {
        start_thread(&mut st);
    }
    p.cv.notify_one();
}

fn worker() {
    let p = pool();
    let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if st.threads > st.size {
            break;
        }
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            job();
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
    st.threads -= 1;
}

/// Runs `f` on the thread pool and parks the calling green thread until it
/// returns; the hub keeps running other green threads meanwhile.
///
/// `f` starts only if the caller is not already cancelled.
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
/// If the green thread is killed or its deadline passes while `f` runs,
/// returns [`Cancelled`] at once. `f` itself can't be interrupted: it runs
/// to completion on its pool thread, and its result is dropped there.
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
    park::check_cancelled()?;
    let hub = hub();
    let shared: Arc<Mutex<Handoff<T>>> = Arc::new(Mutex::new(Handoff {
        result: None,
        waiter: None,
    }));
    {
        let shared = shared.clone();
        submit(Box::new(move || {
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
    hub.remote_inflight.set(hub.remote_inflight.get() + 1);
    let r = loop {
        if let Some(r) = shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .result
            .take()
        {
            break Ok(r);
        }
        let res = park::park_at(loc, None, |token| {
            let mut h = shared.lock().unwrap_or_else(|e| e.into_inner());
            if h.result.is_some() {
                // Finished between our check and now: wake ourselves.
                Unparker::new(hub, token).unpark();
            } else {
                h.waiter = Some(Unparker::new(hub, token));
            }
        });
        if let Err(e) = res {
            shared.lock().unwrap_or_else(|e| e.into_inner()).waiter = None;
            break Err(e);
        }
    };
    hub.remote_inflight.set(hub.remote_inflight.get() - 1);
    match r? {
        Ok(v) => Ok(v),
        Err(p) => panic::resume_unwind(p),
    }
}
