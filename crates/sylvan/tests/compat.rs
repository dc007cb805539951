//! `sylvan::block_on` and `compat::HubHandle`: futures on green threads,
//! green closures from async code.

mod util;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use sylvan::Cancelled;
use sylvan::compat::{HubHandle, RemoteJoinError, RemoteJoinHandle};

/// Bounds a test body: a blocking call still waiting after this fails, so a
/// bug shows as a failure, not a hang.
const LIMIT: Duration = Duration::from_secs(30);

fn bounded<R>(f: impl FnOnce() -> R) -> R {
    sylvan::timeout(LIMIT, f).expect("the test took too long")
}

/// Counts the polls of the future it wraps.
struct Counted<F> {
    inner: F,
    polls: Rc<Cell<usize>>,
}

impl<F: Future + Unpin> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// Pending until `target` wake-ups have been counted; every `bump` wakes
/// the stored waker.
#[derive(Default)]
struct Countdown {
    count: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl Countdown {
    fn bump(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().as_ref() {
            w.wake_by_ref();
        }
    }

    fn reach(self: Arc<Self>, target: usize) -> impl Future<Output = usize> {
        std::future::poll_fn(move |cx| {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            let n = self.count.load(Ordering::SeqCst);
            if n >= target {
                Poll::Ready(n)
            } else {
                Poll::Pending
            }
        })
    }
}

/// Never ready; keeps its waker (so a wake could come) and a guard.
struct PendingWith<G> {
    _guard: G,
    waker: Option<Waker>,
}

impl<G: Unpin> Future for PendingWith<G> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

fn pending_with<G: Unpin>(guard: G) -> PendingWith<G> {
    PendingWith {
        _guard: guard,
        waker: None,
    }
}

#[test]
fn ready_futures_complete_on_the_root_and_in_green_threads() {
    assert_eq!(sylvan::block_on(async { 40 + 2 }), Ok(42));
    assert_eq!(sylvan::block_on(std::future::ready("r")), Ok("r"));
    let g = sylvan::spawn(|| sylvan::block_on(async { "green" }));
    assert_eq!(g.join().unwrap(), Ok("green"));
}

#[test]
fn futures_woken_from_other_os_threads() {
    bounded(|| {
        // In green threads, several at once, each completed by its own thread.
        let waiters: Vec<_> = (0..8u32)
            .map(|i| {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let t = std::thread::spawn(move || tx.send(i * 10).unwrap());
                (sylvan::spawn(move || sylvan::block_on(rx)), t)
            })
            .collect();
        for (i, (g, t)) in waiters.into_iter().enumerate() {
            assert_eq!(g.join().unwrap(), Ok(Ok(i as u32 * 10)));
            t.join().unwrap();
        }
        // On the root, through a multi-message async channel.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let t = std::thread::spawn(move || {
            for i in 0..1000u32 {
                tx.send(i).unwrap();
            }
        });
        let sum = sylvan::block_on(async move {
            let mut sum = 0u64;
            while let Some(i) = rx.recv().await {
                sum += u64::from(i);
            }
            sum
        });
        assert_eq!(sum, Ok(999 * 1000 / 2));
        t.join().unwrap();
    });
}

#[test]
fn no_wake_up_is_lost_when_many_threads_wake_one_future() {
    bounded(|| {
        let c = Arc::new(Countdown::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        c.bump();
                    }
                })
            })
            .collect();
        let g = sylvan::spawn({
            let c = c.clone();
            move || sylvan::block_on(c.reach(8_000))
        });
        assert_eq!(g.join().unwrap(), Ok(8_000));
        for t in threads {
            t.join().unwrap();
        }
    });
}

#[test]
fn a_waker_woken_and_dropped_by_another_thread_is_never_lost() {
    bounded(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        let t = std::thread::spawn(move || {
            for w in rx {
                w.wake();
            }
        });
        // Each round: the only other clone of the waker goes to the thread,
        // which wakes and drops it, racing with the park.
        for _ in 0..2_000 {
            let mut sent = false;
            let r = sylvan::block_on(std::future::poll_fn(|cx| {
                if sent {
                    return Poll::Ready(());
                }
                sent = true;
                tx.send(cx.waker().clone()).unwrap();
                Poll::Pending
            }));
            assert_eq!(r, Ok(()));
        }
        drop(tx);
        t.join().unwrap();
    });
}

#[test]
fn a_future_woken_from_the_same_hub_runs_on_the_root() {
    bounded(|| {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let g = sylvan::spawn(move || {
            sylvan::sleep(Duration::from_millis(2)).unwrap();
            tx.send("from a green thread").unwrap();
        });
        assert_eq!(sylvan::block_on(rx).unwrap(), Ok("from a green thread"));
        g.join().unwrap();
    });
}

#[test]
fn thousands_of_concurrent_block_on_calls_on_one_hub() {
    const N: usize = 5_000;
    bounded(|| {
        let polls = Rc::new(Cell::new(0));
        let parked = Rc::new(Cell::new(0));
        let mut senders = Vec::with_capacity(N);
        let mut greens = Vec::with_capacity(N);
        for i in 0..N {
            let (tx, rx) = tokio::sync::oneshot::channel::<usize>();
            senders.push(tx);
            let (polls, parked) = (polls.clone(), parked.clone());
            greens.push(
                sylvan::Builder::new()
                    .stack_size(32 * 1024)
                    .spawn(move || {
                        parked.set(parked.get() + 1);
                        let v = sylvan::block_on(Counted { inner: rx, polls })?;
                        Ok::<_, Cancelled>(v.unwrap() == i)
                    })
                    .unwrap(),
            );
        }
        // Let every green thread start and park in block_on.
        while parked.get() < N {
            sylvan::yield_now();
        }
        sylvan::yield_now();
        assert_eq!(polls.get(), N, "one poll each, then parked");
        // One other OS thread completes them all.
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            go_rx.recv().unwrap();
            for (i, tx) in senders.into_iter().enumerate() {
                tx.send(i).unwrap();
            }
        });
        go_tx.send(()).unwrap();
        for g in greens {
            assert_eq!(g.join().unwrap(), Ok(true));
        }
        t.join().unwrap();
        // No busy polling: each future was polled once more, when woken.
        assert_eq!(polls.get(), 2 * N);
    });
}

#[test]
fn a_self_waking_future_lets_the_other_green_threads_run() {
    bounded(|| {
        let ticks = Rc::new(Cell::new(0u32));
        let t = ticks.clone();
        let ticker = sylvan::spawn(move || {
            for _ in 0..10 {
                t.set(t.get() + 1);
                sylvan::yield_now();
            }
        });
        // Yields 10 times (wakes itself while polled), recording the ticks
        // seen at each poll.
        let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
        let (s, t) = (seen.clone(), ticks.clone());
        let mut left = 10;
        let r = sylvan::block_on(std::future::poll_fn(move |cx| {
            s.borrow_mut().push(t.get());
            if left == 0 {
                return Poll::Ready(());
            }
            left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }));
        assert_eq!(r, Ok(()));
        ticker.join().unwrap();
        let seen = seen.borrow();
        assert!(
            seen.windows(2).filter(|w| w[1] > w[0]).count() >= 5,
            "the ticker ran between polls: {seen:?}"
        );
    });
}

#[test]
fn kill_while_pending_drops_the_future() {
    let drops = util::DropCounter::default();
    let guard = drops.track();
    let g = sylvan::spawn(move || sylvan::block_on(pending_with(guard)));
    sylvan::yield_now(); // it starts and parks
    assert_eq!(drops.dropped(), 0);
    g.kill();
    assert_eq!(g.join().unwrap(), Err(Cancelled::Killed));
    assert_eq!(drops.dropped(), 1, "the future was dropped by block_on");
}

#[test]
fn timeout_while_pending_drops_the_future() {
    let drops = util::DropCounter::default();
    let guard = drops.track();
    let start = std::time::Instant::now();
    let r = sylvan::timeout(Duration::from_millis(20), || {
        sylvan::block_on(pending_with(guard))
    });
    assert!(r.is_err(), "the scope's own deadline fired: {r:?}");
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(drops.dropped(), 1);

    // An outer scope's expiry passes through as the inner call's error.
    let r = sylvan::timeout(Duration::from_millis(5), || {
        sylvan::timeout(Duration::from_secs(60), || {
            sylvan::block_on(pending_with(()))
        })
    });
    assert!(r.is_err());
}

#[test]
fn timeouts_run_on_virtual_time() {
    sylvan::time::pause();
    let t0 = sylvan::time::now();
    let (_keep_tx, rx) = tokio::sync::oneshot::channel::<()>();
    let r = sylvan::timeout(Duration::from_secs(3600), || sylvan::block_on(rx));
    assert!(r.is_err());
    assert_eq!(sylvan::time::now() - t0, Duration::from_secs(3600));
    sylvan::time::resume();
}

#[test]
fn a_cancelled_caller_fails_at_once_without_polling() {
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    let g = sylvan::spawn(move || {
        sylvan::yield_now();
        sylvan::block_on(Counted {
            inner: std::future::ready(1),
            polls: p,
        })
    });
    sylvan::yield_now(); // g runs up to its yield
    g.kill();
    assert_eq!(g.join().unwrap(), Err(Cancelled::Killed));
    assert_eq!(polls.get(), 0);

    let p = polls.clone();
    let r = sylvan::timeout(Duration::ZERO, || {
        sylvan::block_on(Counted {
            inner: std::future::ready(1),
            polls: p,
        })
    });
    assert!(r.is_err());
    assert_eq!(polls.get(), 0);
}

#[test]
fn a_panicking_future_panics_the_caller() {
    let g = sylvan::spawn(|| sylvan::block_on(async { panic!("in the future") }));
    assert_eq!(g.join().unwrap_err().panic_message(), Some("in the future"));
}

#[test]
fn a_future_that_keeps_no_waker_is_reported_as_a_deadlock_on_the_root() {
    // A fresh thread, so a fresh hub with nothing else to run.
    let r = std::thread::spawn(|| sylvan::block_on(std::future::pending::<()>())).join();
    let payload = r.unwrap_err();
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(msg.contains("deadlock"), "{msg}");
}

// ---- HubHandle: the other direction ----

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
fn assert_send<T: Send>() {}

#[test]
fn handles_are_send_sync_and_clone() {
    assert_send_sync_clone::<HubHandle>();
    assert_send::<RemoteJoinHandle<String>>();
    assert_send::<RemoteJoinError>();
}

#[test]
fn a_tokio_runtime_on_another_thread_runs_closures_on_this_hub() {
    bounded(|| {
        let hub = HubHandle::current();
        let on_hub = std::thread::current().id();
        let (done_tx, done_rx) = sylvan::sync::channel();
        let t = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let results = rt.block_on(async {
                let handles: Vec<_> = (0..100u64)
                    .map(|i| {
                        hub.spawn(move || {
                            // Plain blocking code, green.
                            sylvan::sleep(Duration::from_millis(i % 5)).unwrap();
                            (i, std::thread::current().id())
                        })
                    })
                    .collect();
                let mut out = Vec::new();
                for h in handles {
                    out.push(h.await.unwrap());
                }
                out
            });
            done_tx.send(results).unwrap();
        });
        // The root blocks here, so the hub runs the closures meanwhile.
        let results = done_rx.recv().unwrap();
        assert_eq!(results.len(), 100);
        for (i, (v, tid)) in results.into_iter().enumerate() {
            assert_eq!(v, i as u64);
            assert_eq!(tid, on_hub);
        }
        t.join().unwrap();
    });
}

#[test]
fn start_hubs_serves_tokio_tasks_on_every_hub() {
    let rt = sylvan::Runtime::builder()
        .threads(2)
        .thread_name("hubs")
        .build()
        .unwrap();
    let hubs = sylvan::compat::start_hubs(&rt).unwrap();
    assert_eq!(hubs.len(), 2);
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let names = tokio_rt.block_on(async { tokio::time::timeout(LIMIT, all_tasks(&hubs)).await });
    let names = names.expect("the test took too long");
    for (i, n) in names.iter().enumerate() {
        assert_eq!(n, &format!("hubs-{}", i % 2));
    }
}

async fn all_tasks(hubs: &[HubHandle]) -> Vec<String> {
    {
        let mut tasks = Vec::new();
        for i in 0..200usize {
            let hub = hubs[i % 2].clone();
            tasks.push(tokio::spawn(async move {
                hub.spawn(move || {
                    sylvan::sleep(Duration::from_millis(1)).unwrap();
                    std::thread::current().name().unwrap().to_owned()
                })
                .await
                .unwrap()
            }));
        }
        let mut names = Vec::new();
        for t in tasks {
            names.push(t.await.unwrap());
        }
        names
    }
}

#[test]
fn closure_panics_come_back_as_errors() {
    bounded(|| {
        let hub = HubHandle::current();
        let err = sylvan::block_on(hub.spawn(|| -> u8 { panic!("green boom") }))
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, RemoteJoinError::Panicked(_)));
        assert_eq!(err.panic_message(), Some("green boom"));
        assert_eq!(err.to_string(), "green closure panicked: green boom");
        // The hub and the dispatcher are fine.
        assert_eq!(sylvan::block_on(hub.spawn(|| 1)).unwrap().unwrap(), 1);
    });
}

#[test]
fn abort_kills_a_running_closure_and_skips_a_queued_one() {
    bounded(|| {
        let hub = HubHandle::current();
        let (started_tx, started_rx) = sylvan::sync::channel();
        let running = hub.spawn(move || {
            started_tx.send(()).unwrap();
            sylvan::sleep(Duration::from_secs(3600))
        });
        started_rx.recv().unwrap();
        // Abort from another OS thread.
        let t = std::thread::spawn(move || {
            running.abort();
            running
        });
        let running = t.join().unwrap();
        assert_eq!(
            sylvan::block_on(running).unwrap().unwrap(),
            Err(Cancelled::Killed)
        );

        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let queued = hub.spawn(move || r.fetch_add(1, Ordering::SeqCst));
        queued.abort();
        assert!(matches!(
            sylvan::block_on(queued).unwrap(),
            Err(RemoteJoinError::Aborted)
        ));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn closures_are_unwound_and_fail_with_hub_gone_at_shutdown() {
    bounded(|| {
        let drops = util::SyncDropCounter::default();
        let guard = drops.track();
        let (h_tx, h_rx) = sylvan::sync::channel();
        let (started_tx, started_rx) = sylvan::sync::channel();
        let (exit_tx, exit_rx) = sylvan::sync::channel::<()>();
        let t = std::thread::spawn(move || {
            h_tx.send(HubHandle::current()).unwrap();
            let _ = exit_rx.recv();
            sylvan::shutdown();
        });
        let hub = h_rx.recv().unwrap();
        let in_flight = hub.spawn(move || {
            let _guard = guard;
            started_tx.send(()).unwrap();
            sylvan::sleep(Duration::from_secs(3600))
        });
        started_rx.recv().unwrap();
        exit_tx.send(()).unwrap();
        t.join().unwrap();
        assert_eq!(drops.dropped(), 1, "unwound by shutdown");
        assert!(matches!(
            sylvan::block_on(in_flight).unwrap(),
            Err(RemoteJoinError::HubGone)
        ));
        assert!(matches!(
            sylvan::block_on(hub.spawn(|| ())).unwrap(),
            Err(RemoteJoinError::HubGone)
        ));
    });
}

#[test]
fn closures_fail_with_hub_gone_when_the_hub_thread_exits() {
    bounded(|| {
        let drops = util::SyncDropCounter::default();
        let guard = drops.track();
        let (h_tx, h_rx) = sylvan::sync::channel();
        let (started_tx, started_rx) = sylvan::sync::channel();
        let (exit_tx, exit_rx) = sylvan::sync::channel::<()>();
        let t = std::thread::spawn(move || {
            h_tx.send(HubHandle::current()).unwrap();
            // Run the hub until told to exit.
            let _ = exit_rx.recv();
        });
        let hub = h_rx.recv().unwrap();
        let in_flight = hub.spawn(move || {
            let _guard = guard;
            started_tx.send(()).unwrap();
            sylvan::sleep(Duration::from_secs(3600))
        });
        started_rx.recv().unwrap();
        exit_tx.send(()).unwrap();
        t.join().unwrap();
        // The thread exited without `sylvan::shutdown`: its green thread
        // was leaked (its destructors never run), and the job reports it.
        assert_eq!(drops.dropped(), 0);
        assert!(matches!(
            sylvan::block_on(in_flight).unwrap(),
            Err(RemoteJoinError::HubGone)
        ));
        // Later closures can't run either.
        assert!(matches!(
            sylvan::block_on(hub.spawn(|| ())).unwrap(),
            Err(RemoteJoinError::HubGone)
        ));
    });
}

#[test]
fn start_hubs_threads_exit_once_every_handle_is_dropped() {
    bounded(|| {
        let rt = sylvan::Runtime::builder().threads(1).build().unwrap();
        let hub = sylvan::compat::start_hubs(&rt).unwrap().remove(0);
        let (gone_tx, gone_rx) = sylvan::sync::channel();
        struct Tell(sylvan::sync::Sender<()>);
        impl Drop for Tell {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        // A green thread left running on that hub; it is unwound when the
        // hub's thread shuts its hub down before it exits.
        let h = hub.spawn(move || {
            let tell = Tell(gone_tx);
            sylvan::spawn(move || {
                let _tell = tell;
                sylvan::sleep(Duration::from_secs(3600))
            });
        });
        sylvan::block_on(h).unwrap().unwrap();
        drop(hub);
        assert_eq!(gone_rx.recv(), Ok(()));
    });
}

#[test]
fn current_returns_the_same_dispatcher_while_a_handle_lives() {
    bounded(|| {
        let a = HubHandle::current();
        let b = HubHandle::current();
        let inner = sylvan::block_on(a.spawn(|| {
            // From a closure on the hub: the same handle again.
            drop(HubHandle::current());
            7
        }));
        assert_eq!(inner.unwrap().unwrap(), 7);
        assert_eq!(sylvan::block_on(b.spawn(|| 8)).unwrap().unwrap(), 8);
        assert!(format!("{a:?}").starts_with("HubHandle"));
    });
}
