//! `tpool::execute`: results, panics, cancellation, concurrency.

mod util;

use std::time::Duration;

use sylvan::Cancelled;

#[test]
fn runs_on_another_thread_and_returns_the_value() {
    let me = std::thread::current().id();
    let (v, other) = sylvan::tpool::execute(move || (21 * 2, std::thread::current().id())).unwrap();
    assert_eq!(v, 42);
    assert_ne!(other, me);
}

#[test]
fn the_hub_keeps_running_while_a_job_blocks() {
    let (tx, rx) = std::sync::mpsc::channel::<u32>();
    let job = sylvan::spawn(move || sylvan::tpool::execute(move || rx.recv().unwrap()));
    let ticker = sylvan::spawn(move || {
        for _ in 0..3 {
            sylvan::sleep(Duration::from_millis(1)).unwrap();
        }
        tx.send(7).unwrap();
    });
    ticker.join().unwrap();
    assert_eq!(job.join().unwrap(), Ok(7));
}

#[test]
fn panics_resume_in_the_caller() {
    let g = sylvan::spawn(|| sylvan::tpool::execute(|| -> u8 { panic!("in the pool") }));
    let err = g.join().unwrap_err();
    assert_eq!(err.panic_message(), Some("in the pool"));
}

#[test]
fn timeout_while_in_the_pool_drops_the_late_result_safely() {
    let drops = util::SyncDropCounter::default();
    let d = drops.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let r = sylvan::timeout(Duration::from_millis(10), move || {
        sylvan::tpool::execute(move || {
            rx.recv().unwrap();
            let t = d.track();
            // The caller is gone; dropping the result happens on this thread.
            struct Notify(std::sync::mpsc::Sender<()>);
            impl Drop for Notify {
                fn drop(&mut self) {
                    let _ = self.0.send(());
                }
            }
            (t, Notify(done_tx))
        })
    });
    assert!(r.is_err());
    tx.send(()).unwrap();
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the late result is dropped");
    assert_eq!(drops.dropped(), 1);
}

#[test]
fn already_cancelled_caller_never_starts_the_job() {
    let g = sylvan::spawn(|| {
        sylvan::sleep(Duration::from_secs(3600)).ok();
        sylvan::tpool::execute(|| unreachable!("must not run"))
    });
    sylvan::yield_now();
    g.kill();
    assert_eq!(g.join().unwrap(), Err::<(), _>(Cancelled::Killed));
}

#[test]
fn many_concurrent_jobs_from_one_hub() {
    let gs: Vec<_> = (0..200u64)
        .map(|i| sylvan::spawn(move || sylvan::tpool::execute(move || i * i)))
        .collect();
    let sum: u64 = gs.into_iter().map(|g| g.join().unwrap().unwrap()).sum();
    assert_eq!(sum, (0..200u64).map(|i| i * i).sum::<u64>());
}

#[test]
fn virtual_time_waits_for_jobs_in_flight() {
    sylvan::time::pause();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let job = sylvan::spawn(move || {
        sylvan::timeout(Duration::from_secs(1), || {
            sylvan::tpool::execute(move || rx.recv())
        })
    });
    let releaser = std::thread::spawn(move || tx.send(()).unwrap());
    // Paused time would jump past the 1 s deadline at once if the in-flight
    // job did not hold it back.
    let r = job.join().unwrap();
    releaser.join().unwrap();
    assert!(matches!(r, Ok(Ok(Ok(())))), "{r:?}");
}
