//! Green-local storage: [`green_local!`](crate::green_local) and
//! [`GreenLocal`], one value per green thread.
//!
//! A `thread_local!` is shared by every green thread of its OS thread (they
//! all run on it). A green-local gives each green thread its own value,
//! created on the green thread's first access and dropped when the green
//! thread ends — returns, panics, or is killed and unwound — on its own
//! stack, so the destructor may block. The root context (the OS thread's own
//! stack) has one value too, dropped when the thread exits, as a
//! `thread_local!`'s would be.

use std::fmt;

use crate::runtime::local;

/// A key for green-local values, declared with
/// [`green_local!`](crate::green_local); `std::thread::LocalKey`'s green
/// twin.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
///
/// sylvan::green_local! {
///     static REQUESTS: Cell<u32> = Cell::new(0);
/// }
///
/// let worker = || {
///     for _ in 0..3 {
///         REQUESTS.with(|n| n.set(n.get() + 1));
///         sylvan::yield_now(); // another green thread runs meanwhile
///     }
///     REQUESTS.with(Cell::get)
/// };
/// let a = sylvan::spawn(worker);
/// let b = sylvan::spawn(worker);
/// assert_eq!((a.join().unwrap(), b.join().unwrap()), (3, 3));
/// assert_eq!(REQUESTS.with(Cell::get), 0, "the root context has its own");
/// ```
pub struct GreenLocal<T: 'static> {
    init: fn() -> T,
}

impl<T: 'static> fmt::Debug for GreenLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenLocal").finish_non_exhaustive()
    }
}

/// The error of [`GreenLocal::try_with`]: the OS thread is exiting and its
/// hub (which holds the values) was already destroyed.
///
/// # Examples
///
/// ```
/// sylvan::green_local! { static X: u8 = 1; }
/// assert_eq!(X.try_with(|x| *x), Ok(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessError;

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot access a green-local value after the thread's hub was destroyed")
    }
}

impl std::error::Error for AccessError {}

impl<T: 'static> GreenLocal<T> {
    /// Used by [`green_local!`](crate::green_local); declare keys with the
    /// macro, as a `static` (a key's identity is its address).
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> GreenLocal<T> {
        GreenLocal { init }
    }

    /// Runs `f` with the running green thread's value (the root context's,
    /// from the root), creating it on first use.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    ///
    /// sylvan::green_local! {
    ///     static LOG: RefCell<Vec<&'static str>> = RefCell::new(Vec::new());
    /// }
    ///
    /// let g = sylvan::spawn(|| {
    ///     LOG.with(|l| l.borrow_mut().push("started"));
    ///     LOG.with(|l| l.borrow().len())
    /// });
    /// assert_eq!(g.join().unwrap(), 1);
    /// assert!(LOG.with(|l| l.borrow().is_empty()));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from a thread-local destructor that runs after the
    /// thread's hub was destroyed (as `LocalKey::with` panics after its own
    /// destruction); [`try_with`](Self::try_with) returns an error instead.
    #[track_caller]
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        match self.try_with(f) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// As [`with`](Self::with), or [`AccessError`] when the thread's hub is
    /// gone.
    ///
    /// # Errors
    ///
    /// [`AccessError`] from a thread-local destructor that runs after the
    /// thread's hub was destroyed.
    ///
    /// # Examples
    ///
    /// ```
    /// sylvan::green_local! { static ID: u64 = 42; }
    /// assert_eq!(ID.try_with(|id| *id), Ok(42));
    /// ```
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Result<R, AccessError> {
        let key = self as *const GreenLocal<T> as usize;
        local::with(key, self.init, f).map_err(|local::Gone| AccessError)
    }
}

/// Declares green-local values: `thread_local!`'s syntax, one value per
/// green thread (see [`GreenLocal`]).
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
///
/// sylvan::green_local! {
///     /// How deep the current green thread is in nested calls.
///     pub static DEPTH: Cell<u32> = Cell::new(0);
///     static NAME: String = String::from("unset");
/// }
///
/// let g = sylvan::spawn(|| {
///     DEPTH.with(|d| d.set(5));
///     sylvan::yield_now();
///     DEPTH.with(Cell::get)
/// });
/// DEPTH.with(|d| d.set(1));
/// assert_eq!(g.join().unwrap(), 5);
/// assert_eq!(DEPTH.with(Cell::get), 1);
/// assert_eq!(NAME.with(|n| n.clone()), "unset");
/// ```
#[macro_export]
macro_rules! green_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])*
        $vis static $name: $crate::GreenLocal<$t> = $crate::GreenLocal::new({
            fn __sylvan_green_local_init() -> $t {
                $init
            }
            __sylvan_green_local_init
        });
        $crate::green_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $crate::green_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
