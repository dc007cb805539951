//! [`Runtime`]: the same entry closure on N OS threads, one hub each.

use std::any::Any;
use std::cell::Cell;
use std::io;
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::thread;

thread_local! {
    static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Runs one entry closure on N OS threads, each with its own hub:
/// thread-per-core and shared-nothing.
///
/// Green threads never move between OS threads, so each thread's closure
/// spawns, blocks and serves on its own hub, and the threads share only what
/// the closure shares on purpose: `Arc`s, atomics, and
/// [`sync::channel`](crate::sync::channel)s, which wake the receiving hub
/// from any thread.
///
/// # Examples
///
/// ```
/// use sylvan::Runtime;
///
/// let rt = Runtime::builder().threads(3).build()?;
/// let out = rt.run(|| {
///     let i = Runtime::current_index().unwrap();
///     let name = std::thread::current().name().unwrap().to_owned();
///     // Each thread has its own hub: green threads spawned here stay here.
///     let g = sylvan::spawn(move || i * 10);
///     (name, g.join().unwrap())
/// });
/// assert_eq!(
///     out,
///     vec![("sylvan-0".into(), 0), ("sylvan-1".into(), 10), ("sylvan-2".into(), 20)]
/// );
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Servers
///
/// A server gives each hub its own listening socket bound with
/// `SO_REUSEPORT` to the same address
/// ([`TcpListener::bind_reuseport`](crate::net::TcpListener::bind_reuseport)),
/// so the kernel spreads incoming connections over the hubs and no hub
/// touches another's sockets. The closure is the place to do it: bind in
/// the closure, then serve. Use [`Runtime::current_index`] to tell the hubs
/// apart (for logs, or to share out work).
///
/// ```no_run
/// use std::io::{Read, Write};
/// use sylvan::net::TcpListener;
///
/// let rt = sylvan::Runtime::builder().build()?;
/// rt.run(|| -> std::io::Result<()> {
///     // One listener per hub, all on port 7000.
///     let listener = TcpListener::bind_reuseport("0.0.0.0:7000")?;
///     loop {
///         let (mut conn, _) = listener.accept()?;
///         sylvan::spawn(move || {
///             let mut buf = [0; 4096];
///             while let Ok(n @ 1..) = conn.read(&mut buf) {
///                 if conn.write_all(&buf[..n]).is_err() {
///                     break;
///                 }
///             }
///         });
///     }
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Runtime {
    threads: usize,
    name: String,
    stack_size: Option<usize>,
}

/// Configures a [`Runtime`]; from [`Runtime::builder`].
///
/// # Examples
///
/// ```
/// let rt = sylvan::Runtime::builder()
///     .threads(2)
///     .thread_name("worker")
///     .build()?;
/// assert_eq!(rt.threads(), 2);
/// let names = rt.run(|| std::thread::current().name().map(str::to_owned));
/// assert_eq!(names, vec![Some("worker-0".into()), Some("worker-1".into())]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RuntimeBuilder {
    threads: Option<usize>,
    name: Option<String>,
    stack_size: Option<usize>,
}

impl RuntimeBuilder {
    /// Sets the number of OS threads, hence hubs (default: the number of
    /// CPUs available to the process, from
    /// [`std::thread::available_parallelism`]).
    pub fn threads(mut self, n: usize) -> RuntimeBuilder {
        self.threads = Some(n);
        self
    }

    /// Sets the prefix of the threads' names (default `"sylvan"`): they are
    /// named `<prefix>-0`, `<prefix>-1`, …, which shows in debuggers, `top
    /// -H`, panic messages and watchdog warnings.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> RuntimeBuilder {
        self.name = Some(prefix.into());
        self
    }

    /// Sets the stack size of each OS thread, in bytes (default: std's, 2
    /// MiB). That is the stack of the hub's root context, which runs the
    /// entry closure; green threads have their own stacks
    /// ([`Builder::stack_size`](crate::Builder::stack_size)).
    pub fn thread_stack_size(mut self, bytes: usize) -> RuntimeBuilder {
        self.stack_size = Some(bytes);
        self
    }

    /// Checks the settings and makes the runtime. No thread starts yet:
    /// each [`Runtime::run`] starts its own.
    ///
    /// # Errors
    ///
    /// `ErrorKind::InvalidInput` if the thread count is 0, with a message
    /// saying so.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = sylvan::Runtime::builder().threads(0).build().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn build(self) -> io::Result<Runtime> {
        let threads = match self.threads {
            Some(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "sylvan::Runtime needs at least one thread, got threads(0)",
                ));
            }
            Some(n) => n,
            None => thread::available_parallelism().map_or(1, NonZeroUsize::get),
        };
        Ok(Runtime {
            threads,
            name: self.name.unwrap_or_else(|| "sylvan".to_owned()),
            stack_size: self.stack_size,
        })
    }
}

impl Runtime {
    /// A builder with the defaults: one thread per available CPU, named
    /// `sylvan-<index>`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = sylvan::Runtime::builder().build()?;
    /// assert!(rt.threads() >= 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The number of OS threads (hubs) [`run`](Self::run) starts.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on each of the runtime's OS threads, from the thread's root
    /// context, and returns what each returned, in thread-index order.
    ///
    /// The threads start together and `run` returns once every `f` has
    /// returned. `f` may borrow from the caller (the threads are scoped), so
    /// it needs to be `Sync`, not `'static`. Green threads an `f` spawned
    /// and left running when it returns are not waited for: the thread
    /// [shuts its hub down](crate::shutdown), killing and unwinding them
    /// (their destructors run), then exits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let hits = AtomicUsize::new(0);
    /// let rt = sylvan::Runtime::builder().threads(4).build()?;
    /// rt.run(|| {
    ///     let pile: Vec<_> = (0..10).map(|_| sylvan::spawn(|| 1)).collect();
    ///     let n: usize = pile.into_iter().map(|g| g.join().unwrap()).sum();
    ///     hits.fetch_add(n, Ordering::Relaxed);
    /// });
    /// assert_eq!(hits.into_inner(), 40);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If an `f` panics, the other threads are not interrupted (there is no
    /// way to stop a thread's root context from outside; share a flag or a
    /// channel if they should stop); once they have all returned, the first
    /// panic (in time) is resumed in the caller. Also if an OS thread
    /// cannot be started, with a message naming it and the OS error.
    pub fn run<T, F>(&self, f: F) -> Vec<T>
    where
        F: Fn() -> T + Sync,
        T: Send,
    {
        let first_panic: Mutex<Option<Box<dyn Any + Send>>> = Mutex::new(None);
        let results: Vec<Option<T>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..self.threads)
                .map(|i| {
                    let name = format!("{}-{i}", self.name);
                    let mut b = thread::Builder::new().name(name.clone());
                    if let Some(s) = self.stack_size {
                        b = b.stack_size(s);
                    }
                    let (f, first_panic) = (&f, &first_panic);
                    let spawned = b.spawn_scoped(scope, move || {
                        INDEX.with(|c| c.set(Some(i)));
                        let r = panic::catch_unwind(AssertUnwindSafe(f));
                        // Unwind what `f` left running while this thread's
                        // thread-locals are still alive.
                        crate::green::shutdown();
                        match r {
                            Ok(v) => Some(v),
                            Err(p) => {
                                let mut slot =
                                    first_panic.lock().unwrap_or_else(|e| e.into_inner());
                                slot.get_or_insert(p);
                                None
                            }
                        }
                    });
                    match spawned {
                        Ok(h) => h,
                        Err(e) => panic!("sylvan::Runtime: cannot start OS thread {name}: {e}"),
                    }
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(None))
                .collect()
        });
        if let Some(p) = first_panic.into_inner().unwrap_or_else(|e| e.into_inner()) {
            panic::resume_unwind(p);
        }
        results
            .into_iter()
            .map(|r| r.expect("every thread returned a value when none panicked"))
            .collect()
    }

    /// The index (`0..threads`) of the runtime thread calling this, or
    /// `None` outside a [`Runtime::run`] thread.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::Runtime::current_index(), None);
    /// let rt = sylvan::Runtime::builder().threads(2).build()?;
    /// let mut idx = rt.run(|| sylvan::Runtime::current_index().unwrap());
    /// idx.sort();
    /// assert_eq!(idx, vec![0, 1]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn current_index() -> Option<usize> {
        INDEX.with(Cell::get)
    }
}
