//! `green_local!`: one value per green thread, created on first use,
//! dropped when its green thread ends; and each green thread's `tracing`
//! span, entered whenever it runs.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sylvan::Cancelled;

sylvan::green_local! {
    static COUNT: Cell<u32> = Cell::new(0);
    static INITS: Cell<u32> = {
        INIT_CALLS.with(|c| c.set(c.get() + 1));
        Cell::new(0)
    };
}

thread_local! {
    static INIT_CALLS: Cell<u32> = const { Cell::new(0) };
}

#[test]
fn each_green_thread_has_its_own_value() {
    let worker = |n: u32| {
        move || {
            for _ in 0..n {
                COUNT.with(|c| c.set(c.get() + 1));
                sylvan::yield_now();
            }
            COUNT.with(Cell::get)
        }
    };
    let gs: Vec<_> = (1..=5).map(|n| sylvan::spawn(worker(n))).collect();
    let got: Vec<u32> = gs.into_iter().map(|g| g.join().unwrap()).collect();
    assert_eq!(got, vec![1, 2, 3, 4, 5]);
    assert_eq!(COUNT.with(Cell::get), 0, "the root's value is its own");
    COUNT.with(|c| c.set(9));
    assert_eq!(sylvan::spawn(|| COUNT.with(Cell::get)).join().unwrap(), 0);
    assert_eq!(COUNT.with(Cell::get), 9);
}

#[test]
fn values_are_created_lazily_once_per_green_thread() {
    let before = INIT_CALLS.with(Cell::get);
    sylvan::spawn(|| ()).join().unwrap();
    assert_eq!(
        INIT_CALLS.with(Cell::get),
        before,
        "never touched, never made"
    );
    sylvan::spawn(|| {
        for _ in 0..3 {
            INITS.with(|c| c.set(c.get() + 1));
        }
    })
    .join()
    .unwrap();
    assert_eq!(INIT_CALLS.with(Cell::get), before + 1);
}

struct Tracked(Rc<RefCell<Vec<&'static str>>>, &'static str);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.borrow_mut().push(self.1);
    }
}

sylvan::green_local! {
    static SLOT: RefCell<Option<Tracked>> = const { RefCell::new(None) };
}

fn keep(log: &Rc<RefCell<Vec<&'static str>>>, what: &'static str) {
    let t = Tracked(log.clone(), what);
    SLOT.with(|s| *s.borrow_mut() = Some(t));
}

#[test]
fn values_are_dropped_when_their_green_thread_ends_however_it_ends() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    sylvan::spawn(move || keep(&l, "returned")).join().unwrap();
    assert_eq!(*log.borrow(), vec!["returned"]);

    let l = log.clone();
    let g = sylvan::spawn(move || {
        keep(&l, "panicked");
        panic!("boom")
    });
    assert!(g.join().is_err());
    assert_eq!(log.borrow().last(), Some(&"panicked"));

    let l = log.clone();
    let g = sylvan::spawn(move || {
        keep(&l, "killed");
        sylvan::sleep(Duration::from_secs(3600))
    });
    sylvan::yield_now();
    g.kill();
    assert_eq!(g.join().unwrap(), Err(Cancelled::Killed));
    assert_eq!(log.borrow().last(), Some(&"killed"));
    assert_eq!(log.borrow().len(), 3);
}

#[test]
fn shutdown_unwinds_values_and_thread_exit_leaks_them() {
    let drops = util::SyncDropCounter::default();
    sylvan::green_local! {
        static HELD: RefCell<Option<util::SyncTracked>> = const { RefCell::new(None) };
    }
    let d = drops.clone();
    std::thread::spawn(move || {
        let t = d.track();
        drop(sylvan::spawn(move || {
            HELD.with(|h| *h.borrow_mut() = Some(t));
            sylvan::sleep(Duration::from_secs(3600))
        }));
        sylvan::yield_now();
        sylvan::shutdown();
    })
    .join()
    .unwrap();
    assert_eq!(drops.dropped(), 1, "unwound by shutdown");

    let d = drops.clone();
    std::thread::spawn(move || {
        let t = d.track();
        drop(sylvan::spawn(move || {
            HELD.with(|h| *h.borrow_mut() = Some(t));
            sylvan::sleep(Duration::from_secs(3600))
        }));
        sylvan::yield_now();
    })
    .join()
    .unwrap();
    assert_eq!(drops.dropped(), 1, "leaked at thread exit, never dropped");
}

#[test]
fn a_destructor_may_block_and_use_other_green_locals() {
    sylvan::time::pause();
    let out = Rc::new(RefCell::new(Vec::new()));
    struct Flush(Rc<RefCell<Vec<String>>>);
    impl Drop for Flush {
        fn drop(&mut self) {
            // Blocking is fine: this runs on the green thread's own stack.
            let slept = sylvan::sleep(Duration::from_millis(5));
            // Another green-local: made again if already dropped.
            let n = COUNT.with(Cell::get);
            self.0.borrow_mut().push(format!("{slept:?} {n}"));
        }
    }
    sylvan::green_local! {
        static FLUSH: RefCell<Option<Flush>> = const { RefCell::new(None) };
    }
    let o = out.clone();
    sylvan::spawn(move || {
        COUNT.with(|c| c.set(4));
        FLUSH.with(|f| *f.borrow_mut() = Some(Flush(o)));
    })
    .join()
    .unwrap();
    let got = out.borrow().clone();
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("Ok(())"), "{got:?}");
}

#[test]
fn a_green_local_initializer_that_uses_itself_panics_clearly() {
    sylvan::green_local! {
        static SELFISH: u32 = SELFISH.with(|v| *v + 1);
        static OTHER: u32 = COUNT.with(Cell::get) + 1;
    }
    let g = sylvan::spawn(|| SELFISH.with(|v| *v));
    let msg = g
        .join()
        .unwrap_err()
        .panic_message()
        .unwrap_or_default()
        .to_owned();
    assert!(msg.contains("accessed the same green-local"), "{msg}");
    // Using another one is fine.
    assert_eq!(sylvan::spawn(|| OTHER.with(|v| *v)).join().unwrap(), 1);
}

// ---------------------------------------------------------------------------
// tracing spans

#[test]
fn interleaved_green_threads_log_in_their_own_spans() {
    let logs = util::LogCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mk = |name: &'static str| {
            let span = tracing::info_span!("green", who = name);
            sylvan::Builder::new()
                .span(span)
                .spawn(move || {
                    for i in 0..3 {
                        tracing::info!("{name} step {i}");
                        sylvan::yield_now();
                    }
                    // A child inherits its spawner's span.
                    sylvan::spawn(move || tracing::info!("{name} child"))
                        .join()
                        .unwrap();
                })
                .unwrap()
        };
        let a = mk("a");
        let b = mk("b");
        a.join().unwrap();
        b.join().unwrap();
        tracing::info!("root after");
    });
    let text = logs.text();
    let mut seen = 0;
    for line in text.lines() {
        for who in ["a", "b"] {
            if line.contains(&format!(" {who} step")) || line.contains(&format!(" {who} child")) {
                assert!(line.contains(&format!("who=\"{who}\"")), "{line}");
                seen += 1;
            }
        }
        if line.contains("root after") {
            assert!(
                !line.contains("green"),
                "the root left no span entered: {line}"
            );
        }
    }
    assert_eq!(seen, 8, "{text}");
}

#[test]
fn spans_are_shared_by_value_not_leaked_across_threads() {
    // A span given to a green thread is dropped with it.
    let closed = Arc::new(Mutex::new(false));
    let _ = closed;
    let g = sylvan::Builder::new()
        .span(tracing::Span::none())
        .spawn(|| tracing::Span::current().is_none())
        .unwrap();
    assert!(g.join().unwrap());
}
