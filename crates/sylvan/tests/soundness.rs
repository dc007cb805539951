//! Soundness at the edges: thread exit, shutdown, panics, destructors that
//! block or yield, re-entry into the hub, closures of any size. Each test
//! is a program that misbehaved (use-after-free, SIGSEGV, a panic inside
//! corosensei, a spurious wake-up) before the fix it guards.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sylvan::sync::{Event, Queue, Semaphore};
use sylvan::{Cancelled, GreenPile, GreenPool, JoinError};

const HOUR: Duration = Duration::from_secs(3600);

/// What a destructor's blocking calls returned.
type Log = Rc<RefCell<Vec<Result<(), Cancelled>>>>;

// ---------------------------------------------------------------------------
// 1. Thread-locals are never used after they are destroyed.

static DESTROYED: AtomicBool = AtomicBool::new(false);
static SAW_DESTROYED: AtomicBool = AtomicBool::new(false);
static USES_DROPPED: AtomicUsize = AtomicUsize::new(0);

struct Canary(#[allow(dead_code)] Vec<u8>);
impl Drop for Canary {
    fn drop(&mut self) {
        DESTROYED.store(true, SeqCst);
    }
}
thread_local! { static CANARY: Canary = Canary(vec![1; 64]); }

struct Uses<'a>(&'a Canary);
impl Drop for Uses<'_> {
    fn drop(&mut self) {
        if DESTROYED.load(SeqCst) {
            SAW_DESTROYED.store(true, SeqCst);
        }
        assert_eq!(self.0.0.len(), 64);
        USES_DROPPED.fetch_add(1, SeqCst);
    }
}

/// Both halves share the statics above, so they run in one test, in order.
#[test]
fn green_frames_never_outlive_the_thread_locals_they_borrow() {
    // At thread exit without shutdown: the green thread is leaked, never
    // unwound after CANARY was destroyed (the program).
    thread::spawn(|| {
        drop(sylvan::spawn(|| {
            CANARY.with(|c| {
                let _u = Uses(c);
                let _ = sylvan::sleep(HOUR);
            })
        }));
        sylvan::yield_now();
    })
    .join()
    .unwrap();
    assert!(DESTROYED.load(SeqCst), "the thread-local was destroyed");
    assert!(
        !SAW_DESTROYED.load(SeqCst),
        "a green frame ran after the thread-local it borrows was destroyed"
    );
    assert_eq!(USES_DROPPED.load(SeqCst), 0, "leaked, never unwound");

    // With an explicit shutdown: unwound while the thread-local is alive.
    DESTROYED.store(false, SeqCst);
    thread::spawn(|| {
        drop(sylvan::spawn(|| {
            CANARY.with(|c| {
                let _u = Uses(c);
                let _ = sylvan::sleep(HOUR);
            })
        }));
        sylvan::yield_now();
        sylvan::shutdown();
        assert_eq!(USES_DROPPED.load(SeqCst), 1, "unwound by shutdown");
    })
    .join()
    .unwrap();
    assert!(!SAW_DESTROYED.load(SeqCst));
    assert_eq!(USES_DROPPED.load(SeqCst), 1);
}

#[test]
fn thread_exit_with_live_green_threads_says_so() {
    if !util::is_child() {
        let out = util::run_child("thread_exit_with_live_green_threads_says_so", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        let text = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
        assert!(out.status.success(), "{text}");
        assert!(text.contains("2 green thread(s) still alive"), "{text}");
        assert!(text.contains("sleeper"), "{text}");
        assert!(text.contains("soundness.rs"), "{text}");
        return;
    }
    let logs = util::LogCapture::default();
    tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .init();
    thread::spawn(|| {
        let a = sylvan::Builder::new()
            .name("sleeper")
            .spawn(|| sylvan::sleep(HOUR))
            .unwrap();
        let b = sylvan::spawn(|| Queue::<u8>::unbounded().get());
        sylvan::yield_now();
        // The subscriber's own thread-locals are first used after the hub
        // was made, so they are destroyed before it: the warning must not
        // be logged from the hub's destructor (it would abort).
        tracing::info!("this thread logs too");
        drop((a, b));
    })
    .join()
    .unwrap();
    // The watchdog thread logs it; wait for it (bounded: a hang, not a
    // speed check).
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while !logs.text().contains("still alive") && std::time::Instant::now() < give_up {
        thread::yield_now();
    }
    eprintln!("{}", logs.text());
}

#[test]
fn run_and_runtime_threads_unwind_what_is_left_before_their_thread_ends() {
    let drops = util::SyncDropCounter::default();
    let d = drops.clone();
    thread::spawn(move || {
        sylvan::run(move || {
            let t = d.track();
            drop(sylvan::spawn(move || {
                let _t = t;
                sylvan::sleep(HOUR)
            }));
            sylvan::yield_now();
        });
        assert_eq!(sylvan::debug::stats().green_threads, 0);
    })
    .join()
    .unwrap();
    assert_eq!(drops.dropped(), 1);

    let d = drops.clone();
    let rt = sylvan::Runtime::builder().threads(2).build().unwrap();
    rt.run(move || {
        let t = d.track();
        drop(sylvan::spawn(move || {
            let _t = t;
            sylvan::sleep(HOUR)
        }));
        sylvan::yield_now();
    });
    assert_eq!(drops.dropped(), 3);
}

#[test]
fn the_hub_is_usable_after_shutdown() {
    thread::spawn(|| {
        let g = sylvan::spawn(|| sylvan::sleep(HOUR));
        sylvan::yield_now();
        sylvan::shutdown();
        assert!(g.is_finished());
        let g = sylvan::spawn(|| {
            sylvan::sleep(Duration::from_millis(1))?;
            Ok::<_, Cancelled>(5)
        });
        assert_eq!(g.join().unwrap(), Ok(5));
        sylvan::shutdown();
    })
    .join()
    .unwrap();
}

#[test]
fn shutdown_from_a_green_thread_is_refused_clearly() {
    let g = sylvan::spawn(sylvan::shutdown);
    let msg = match g.join() {
        Err(e) => e.panic_message().unwrap_or_default().to_owned(),
        Ok(()) => String::new(),
    };
    assert!(msg.contains("root context"), "{msg}");
}

// ---------------------------------------------------------------------------
// 2. and 4. Nothing suspends while unwinding or before it started.

struct YieldOnDrop(Rc<Cell<u32>>);
impl Drop for YieldOnDrop {
    fn drop(&mut self) {
        sylvan::yield_now();
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn yield_in_the_drop_of_a_never_started_green_threads_closure() {
    // At thread exit (leaked, never dropped) and at shutdown (dropped on
    // the green thread's own stack): no null yielder, no SIGSEGV.
    thread::spawn(|| {
        let n = Rc::new(Cell::new(0));
        let y = YieldOnDrop(n.clone());
        drop(sylvan::spawn(move || drop(y)));
    })
    .join()
    .unwrap();
    thread::spawn(|| {
        let n = Rc::new(Cell::new(0));
        let y = YieldOnDrop(n.clone());
        let g = sylvan::spawn(move || drop(y));
        sylvan::shutdown();
        assert_eq!(n.get(), 1, "the closure was dropped");
        assert!(matches!(g.join(), Err(JoinError::Killed)));
    })
    .join()
    .unwrap();
}

#[test]
fn killed_before_start_closure_drop_can_yield_advance_and_sleep() {
    let n = Rc::new(Cell::new(0));
    struct Busy(Rc<Cell<u32>>, Log);
    impl Drop for Busy {
        fn drop(&mut self) {
            sylvan::yield_now();
            self.1
                .borrow_mut()
                .push(sylvan::sleep(Duration::from_millis(1)));
            self.0.set(self.0.get() + 1);
        }
    }
    let results = Rc::new(RefCell::new(Vec::new()));
    let b = Busy(n.clone(), results.clone());
    let g = sylvan::spawn(move || drop(b));
    g.kill();
    assert!(matches!(g.join(), Err(JoinError::Killed)));
    assert_eq!(n.get(), 1);
    assert_eq!(*results.borrow(), vec![Err(Cancelled::Killed)]);
}

#[test]
fn yield_in_a_drop_while_panicking_does_not_suspend() {
    struct Y;
    impl Drop for Y {
        fn drop(&mut self) {
            sylvan::yield_now();
        }
    }
    let p = sylvan::spawn(|| {
        let _y = Y;
        panic!("boom")
    });
    let other = sylvan::spawn(|| sylvan::sleep(Duration::from_millis(1)));
    assert!(p.join().is_err());
    assert!(matches!(other.join(), Ok(Ok(()))));
}

#[test]
fn yield_in_a_drop_during_the_forced_unwind_does_not_abort() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    thread::spawn(move || {
        struct Y(Arc<AtomicUsize>);
        impl Drop for Y {
            fn drop(&mut self) {
                sylvan::yield_now();
                let slept = sylvan::sleep(Duration::from_millis(1));
                assert_eq!(slept, Err(Cancelled::Killed));
                self.0.fetch_add(1, SeqCst);
            }
        }
        for _ in 0..3 {
            let y = Y(r.clone());
            drop(sylvan::spawn(move || {
                let _y = y;
                sylvan::sleep(HOUR)
            }));
        }
        sylvan::yield_now();
        sylvan::shutdown();
    })
    .join()
    .unwrap();
    assert_eq!(ran.load(SeqCst), 3);
}

// ---------------------------------------------------------------------------
// 3. Closures of any size.

#[test]
fn closures_of_any_size_spawn_on_every_path() {
    let buf = [7u8; 4096];
    assert_eq!(sylvan::spawn(move || buf.len()).join().unwrap(), 4096);
    let big = [1u64; 8192];
    let g = sylvan::Builder::new()
        .name("big")
        .spawn(move || big.iter().sum::<u64>())
        .unwrap();
    assert_eq!(g.join().unwrap(), 8192);
    let g = sylvan::spawn_after(Duration::from_millis(1), move || buf[4095]);
    assert_eq!(g.join().unwrap(), 7);
    let killed = sylvan::spawn_after(HOUR, move || buf[0]);
    killed.kill();
    assert!(matches!(killed.join(), Err(JoinError::Killed)));

    let pool = GreenPool::new(2);
    let g = pool.spawn(move || buf.len()).unwrap();
    let sum = Rc::new(Cell::new(0));
    let s = sum.clone();
    pool.spawn_n(move || s.set(big.len())).unwrap();
    assert_eq!(g.join().unwrap(), 4096);
    pool.wait_all().unwrap();
    assert_eq!(sum.get(), 8192);

    let mut pile = GreenPile::new(2);
    for i in 0..3usize {
        pile.spawn(move || usize::from(buf[buf.len() - 1 - i]) + i)
            .unwrap();
    }
    let got: Vec<usize> = pile.map(|r| r.unwrap()).collect();
    assert_eq!(got, vec![7, 8, 9]);

    // A big value made inside a green thread and returned.
    let g = sylvan::spawn(|| [3u8; 16_000]);
    assert_eq!(g.join().unwrap()[15_999], 3);
}

#[test]
fn serve_and_http_accept_big_handlers() {
    use std::io::{Read, Write};
    let table = [5u8; 8192];
    let listener = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = sylvan::serve(listener, move |mut conn, _| -> std::io::Result<()> {
        conn.write_all(&table[..3])
    });
    let mut c = sylvan::connect(addr).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, vec![5, 5, 5]);
    drop(server);

    let listener = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        sylvan::http::Server::from_listener(listener).serve(move |_req: sylvan::http::Request| {
            sylvan::http::Response::text(format!("{}", table.len()))
        });
    let mut c = sylvan::connect(addr).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.ends_with("8192"), "{got}");
    drop(server);
}

// ---------------------------------------------------------------------------
// 5. No user destructor runs on the scheduler's path.

struct SleepsOnDrop(Log);
impl Drop for SleepsOnDrop {
    fn drop(&mut self) {
        let r = sylvan::sleep(Duration::from_millis(5));
        self.0.borrow_mut().push(r);
    }
}

fn assert_semaphore_still_times_out() {
    let sem = Semaphore::new(0);
    let r = sylvan::timeout(Duration::from_millis(200), || sem.acquire().map(drop));
    assert!(r.is_err(), "a permit was minted: {r:?}");
    assert_eq!(sem.available_permits(), 0);
}

#[test]
fn detached_results_whose_drop_blocks_do_not_reenter_the_hub() {
    sylvan::time::pause();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    drop(sylvan::spawn(move || SleepsOnDrop(l)));
    assert_semaphore_still_times_out();
    // It ran on the green thread's own stack, where sleeping works.
    assert_eq!(*log.borrow(), vec![Ok(())]);
}

#[test]
fn panic_payloads_whose_drop_blocks_do_not_reenter_the_hub() {
    sylvan::time::pause();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    // A payload must be Send: carry the log out through a thread-local.
    thread_local! { static LOG: RefCell<Option<Log>> = const { RefCell::new(None) }; }
    struct SendPayload;
    impl Drop for SendPayload {
        fn drop(&mut self) {
            let r = sylvan::sleep(Duration::from_millis(5));
            LOG.with(|l| l.borrow().as_ref().unwrap().borrow_mut().push(r));
        }
    }
    LOG.with(|x| *x.borrow_mut() = Some(l));
    drop(sylvan::spawn(|| std::panic::panic_any(SendPayload)));
    assert_semaphore_still_times_out();
    assert_eq!(*log.borrow(), vec![Ok(())]);
}

#[test]
fn killed_before_start_closures_whose_drop_blocks_do_not_reenter_the_hub() {
    sylvan::time::pause();
    let log = Rc::new(RefCell::new(Vec::new()));
    let s = SleepsOnDrop(log.clone());
    let g = sylvan::spawn(move || drop(s));
    g.kill();
    drop(g);
    assert_semaphore_still_times_out();
    assert_eq!(*log.borrow(), vec![Err(Cancelled::Killed)]);
}

#[test]
fn pool_and_queue_counts_survive_blocking_drops() {
    sylvan::time::pause();
    let log = Rc::new(RefCell::new(Vec::new()));
    let pool = GreenPool::new(2);
    for _ in 0..4 {
        let l = log.clone();
        drop(pool.spawn(move || SleepsOnDrop(l)).unwrap());
    }
    pool.wait_all().unwrap();
    assert_eq!(pool.running(), 0);
    assert_eq!(pool.free(), 2);
    let q = Queue::<u8>::unbounded();
    let r = sylvan::timeout(Duration::from_millis(50), || q.get());
    assert!(r.is_err());
    assert_eq!(log.borrow().len(), 4);
}

// ---------------------------------------------------------------------------
// 6. Absurd stack sizes are errors, not arithmetic faults.

#[test]
fn absurd_stack_sizes_are_allocation_errors() {
    for size in [usize::MAX, usize::MAX - 1, isize::MAX as usize + 1, 1 << 62] {
        let err = sylvan::Builder::new()
            .stack_size(size)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory, "{size}: {err}");
        assert!(err.to_string().contains("address space"), "{err}");
    }
    assert_eq!(sylvan::spawn(|| 1).join().unwrap(), 1);
}

// ---------------------------------------------------------------------------
// 7. Wake paths and blocking calls from thread-local destructors that run
// after the hub's.

#[derive(Default)]
struct Late {
    event: Option<Event<u8>>,
    queue: Option<Queue<u8>>,
    full: Option<Queue<u8>>,
    sem: Option<Semaphore>,
    permit: Option<sylvan::sync::SemaphorePermit>,
    green: Option<sylvan::GreenThread<Result<(), Cancelled>>>,
    report: Option<Arc<Mutex<Vec<String>>>>,
}

impl Drop for Late {
    fn drop(&mut self) {
        let mut out = Vec::new();
        if let Some(e) = &self.event {
            out.push(format!("send {:?}", e.send(1)));
        }
        if let Some(q) = &self.queue {
            out.push(format!("put {:?}", q.put(2)));
        }
        if let Some(q) = &self.full {
            out.push(format!("try_get {:?}", q.try_get()));
        }
        drop(self.permit.take());
        if let Some(s) = &self.sem {
            out.push(format!("available {}", s.available_permits()));
        }
        if let Some(g) = &self.green {
            g.kill();
            out.push(format!("finished {}", g.is_finished()));
        }
        out.push(format!(
            "sleep {:?}",
            sylvan::sleep(Duration::from_millis(1))
        ));
        sylvan::yield_now();
        out.push(format!(
            "spawn {}",
            sylvan::Builder::new()
                .spawn(|| ())
                .err()
                .map_or("ok".into(), |e| e.to_string())
        ));
        if let Some(r) = &self.report {
            *r.lock().unwrap() = out;
        }
    }
}

thread_local! { static LATE: RefCell<Late> = RefCell::new(Late::default()); }

#[test]
fn thread_local_destructors_after_the_hubs_neither_abort_nor_block() {
    let report = Arc::new(Mutex::new(Vec::new()));
    let r = report.clone();
    thread::spawn(move || {
        // First touched before the hub exists, so destroyed after it.
        LATE.with(|l| l.borrow_mut().report = Some(r));
        let event = Event::<u8>::new();
        let queue = Queue::<u8>::unbounded();
        let full = Queue::<u8>::bounded(1);
        full.put(0).unwrap();
        let sem = Semaphore::new(1);
        let permit = sem.acquire().unwrap();
        let waits: Vec<_> = (0..3)
            .map(|i| {
                let (e, q, f, s) = (event.clone(), queue.clone(), full.clone(), sem.clone());
                sylvan::spawn(move || match i {
                    0 => e.wait().map(drop),
                    1 => q.get().map(drop).map_err(|_| Cancelled::Killed),
                    _ => {
                        f.put(9).map_err(|_| Cancelled::Killed)?;
                        s.acquire().map(drop)
                    }
                })
            })
            .collect();
        sylvan::yield_now();
        let green = sylvan::spawn(|| sylvan::sleep(HOUR));
        sylvan::yield_now();
        LATE.with(|l| {
            let mut l = l.borrow_mut();
            l.event = Some(event);
            l.queue = Some(queue);
            l.full = Some(full);
            l.sem = Some(sem);
            l.permit = Some(permit);
            l.green = Some(green);
        });
        drop(waits);
    })
    .join()
    .unwrap();
    let out = report.lock().unwrap().clone();
    assert_eq!(
        out,
        vec![
            "send Ok(())".to_string(),
            "put Ok(())".into(),
            "try_get Some(0)".into(),
            "available 1".into(),
            "finished false".into(),
            "sleep Err(Killed)".into(),
            "spawn cannot spawn a green thread: this thread is exiting and its hub was already destroyed"
                .into(),
        ]
    );
}

// ---------------------------------------------------------------------------
// 16. A panic escaping park leaves nothing behind that swallows a wake-up.

#[test]
fn a_deadlock_panic_in_the_root_park_does_not_swallow_a_later_wake_up() {
    let q = Queue::<u8>::unbounded();
    // Nothing can wake the root: the hub reports a deadlock by panicking
    // out of the root's park, whose token stays in the queue's list.
    let q2 = q.clone();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q2.get()));
    let msg = match r {
        Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
        Ok(v) => panic!("got {v:?}"),
    };
    assert!(msg.contains("deadlock"), "{msg}");
    // A green thread now waits; the put must wake it, not the stale token.
    let q3 = q.clone();
    let g = sylvan::spawn(move || q3.get());
    sylvan::yield_now();
    q.put(4).unwrap();
    let got = sylvan::timeout(Duration::from_secs(60), || g.join());
    assert_eq!(got.expect("the green thread was woken").unwrap(), Ok(4));
}

// ---------------------------------------------------------------------------
// 17. Catching panics in green code never stops the forced unwind.

#[test]
fn pool_inline_runs_stop_at_shutdown() {
    let continued = Arc::new(AtomicUsize::new(0));
    let c = continued.clone();
    thread::spawn(move || {
        let pool = GreenPool::new(1);
        let p = pool.clone();
        let c2 = c.clone();
        // The pool's one slot runs a green thread that spawns into the full
        // pool: that runs inline, and parks there.
        drop(
            pool.spawn(move || {
                let inner = p.spawn(|| sylvan::sleep(HOUR));
                // Only reached if the forced unwind was swallowed.
                c2.fetch_add(1, SeqCst);
                drop(inner);
            })
            .unwrap(),
        );
        let p2 = pool.clone();
        let c3 = c.clone();
        drop(sylvan::spawn(move || {
            // Waits for the slot; never gets it before shutdown.
            let r = p2.spawn_n(|| {
                let _ = sylvan::sleep(HOUR);
            });
            c3.fetch_add(10 * usize::from(r.is_ok()), SeqCst);
        }));
        sylvan::yield_now();
        sylvan::yield_now();
        let mut pile = GreenPile::new(1);
        pile.spawn(|| sylvan::sleep(HOUR)).unwrap();
        sylvan::shutdown();
        drop(pile);
    })
    .join()
    .unwrap();
    assert_eq!(continued.load(SeqCst), 0, "user code ran during teardown");
}

// ---------------------------------------------------------------------------
// Loops that wait by yielding end where yielding does nothing.

#[test]
fn stopping_a_server_from_a_destructor_during_a_panic_returns() {
    use std::io::Read;
    let listener = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = sylvan::serve(listener, |mut conn, _| -> std::io::Result<()> {
        conn.read(&mut [0; 1]).map(drop)
    });
    let client = sylvan::connect(addr).unwrap();
    while server.active() == 0 {
        sylvan::yield_now();
    }
    struct StopOnDrop(Option<sylvan::net::ServerHandle>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            if let Some(s) = self.0.take() {
                s.stop(Duration::from_secs(1));
            }
        }
    }
    let g = sylvan::spawn(move || {
        let _s = StopOnDrop(Some(server));
        panic!("unwinding through a server stop")
    });
    assert!(g.join().is_err());
    // The killed handler ends once the hub runs it: the client sees EOF.
    let mut buf = [0; 1];
    assert_eq!((&client).read(&mut buf).unwrap(), 0);
}
