//! Spawning, joining, panics, names, `spawn_after`, `run`.

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use sylvan::sync::Queue;
use sylvan::{Builder, JoinError};

#[test]
fn green_threads_run_in_spawn_order() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..10)
        .map(|i| {
            let log = log.clone();
            sylvan::spawn(move || log.borrow_mut().push(i))
        })
        .collect();
    assert!(
        log.borrow().is_empty(),
        "spawn does not switch to the new green thread"
    );
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(*log.borrow(), (0..10).collect::<Vec<_>>());
}

#[test]
fn yield_interleaves_round_robin() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let log = log.clone();
            sylvan::spawn(move || {
                for i in 0..3 {
                    log.borrow_mut().push(format!("{name}{i}"));
                    sylvan::yield_now();
                }
            })
        })
        .collect();
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(*log.borrow(), ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

#[test]
fn join_returns_value_and_panics_come_back_as_errors() {
    let ok = sylvan::spawn(|| String::from("value"));
    let bad = sylvan::spawn(|| -> u32 { panic!("deliberate {}", 42) });
    assert_eq!(ok.join().unwrap(), "value");
    let err = bad.join().unwrap_err();
    assert!(matches!(err, JoinError::Panicked(_)));
    assert_eq!(err.panic_message(), Some("deliberate 42"));
    assert!(err.to_string().contains("deliberate 42"));
}

#[test]
fn a_panic_ends_only_its_green_thread() {
    let q = Queue::unbounded();
    let survivor = {
        let q = q.clone();
        sylvan::spawn(move || q.get())
    };
    let crasher = sylvan::spawn(|| panic!("crash"));
    sylvan::yield_now();
    assert!(crasher.is_finished());
    q.put(7).unwrap();
    assert_eq!(survivor.join().unwrap(), Ok(7));
    assert!(crasher.join().is_err());
}

#[test]
fn names_ids_and_current() {
    let g = Builder::new()
        .name("named")
        .stack_size(32 * 1024)
        .spawn(|| {
            let me = sylvan::current();
            (me.id(), me.name().map(str::to_owned), me.is_root())
        })
        .unwrap();
    let id = g.id();
    assert_eq!(g.name(), Some("named"));
    let (seen_id, name, root) = g.join().unwrap();
    assert_eq!(seen_id, id);
    assert_eq!(name.as_deref(), Some("named"));
    assert!(!root);
    assert!(sylvan::current().is_root());
    assert_eq!(sylvan::current().id().as_u64(), 0);
}

#[test]
fn killed_before_start_never_runs() {
    let ran = Rc::new(RefCell::new(false));
    let r = ran.clone();
    let g = sylvan::spawn(move || *r.borrow_mut() = true);
    g.kill();
    assert!(matches!(g.join(), Err(JoinError::Killed)));
    assert!(!*ran.borrow());
}

#[test]
fn spawn_after_waits_then_runs_and_kill_cancels_it() {
    sylvan::time::pause();
    let t0 = sylvan::time::now();
    let g = sylvan::spawn_after(Duration::from_secs(5), sylvan::time::now);
    let ran_at = g.join().unwrap();
    assert!(ran_at - t0 >= Duration::from_secs(5));

    let g = sylvan::spawn_after(Duration::from_secs(5), || {
        unreachable!("killed before its delay")
    });
    sylvan::time::advance(Duration::from_secs(1));
    g.kill();
    assert!(matches!(g.join(), Err(JoinError::Killed)));
}

#[test]
fn detached_green_threads_keep_running() {
    let q = Queue::unbounded();
    {
        let q = q.clone();
        drop(sylvan::spawn(move || {
            sylvan::sleep(Duration::from_millis(1)).unwrap();
            q.put("done").unwrap();
        }));
    }
    assert_eq!(q.get(), Ok("done"));
}

#[test]
fn run_returns_the_value_and_resumes_panics() {
    assert_eq!(sylvan::run(|| sylvan::spawn(|| 5).join().unwrap() * 2), 10);
    let r = std::panic::catch_unwind(|| sylvan::run(|| panic!("inside run")));
    let p = r.unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"inside run"));
}

#[test]
fn run_inside_a_timeout_kills_and_waits_for_its_green_thread() {
    sylvan::time::pause();
    let finished = Rc::new(RefCell::new(false));
    let f = finished.clone();
    let r = sylvan::timeout(Duration::from_secs(1), move || {
        sylvan::run(move || {
            let r = sylvan::sleep(Duration::from_secs(60));
            *f.borrow_mut() = true;
            r
        })
    });
    // The scope's deadline made the caller's wait fail, so the scope reports
    // Elapsed; but first run killed the inner green thread and waited for it.
    assert!(*finished.borrow());
    assert!(r.is_err());
}

#[test]
fn spawn_with_impossible_stack_is_a_clear_error() {
    let err = Builder::new().stack_size(1 << 50).spawn(|| ()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
    let msg = err.to_string();
    assert!(msg.contains("address space"), "{msg}");
}

#[test]
fn detached_panic_is_logged_not_lost() {
    // Runs in a child so the global subscriber does not affect other tests.
    if util::is_child() {
        let logs = util::capture_logs();
        let g = Builder::new()
            .name("lonely")
            .spawn(|| panic!("nobody listens"))
            .unwrap();
        drop(g);
        sylvan::yield_now();
        let text = logs.text();
        assert!(
            text.contains("nobody listens") && text.contains("lonely"),
            "{text}"
        );
        println!("CHILD-OK");
        return;
    }
    let out = util::run_child("detached_panic_is_logged_not_lost", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every green thread waiting for one to finish wakes when it does, not
/// only the first to wait (the others would wait out the time limit).
#[test]
fn every_green_thread_waiting_on_one_wakes_when_it_finishes() {
    let gate = Queue::<()>::unbounded();
    let target = Rc::new({
        let gate = gate.clone();
        sylvan::spawn(move || gate.get().map(|()| 7))
    });
    let started = Rc::new(std::cell::Cell::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (target, started) = (target.clone(), started.clone());
            sylvan::spawn(move || {
                started.set(started.get() + 1);
                sylvan::timeout(Duration::from_secs(30), || target.wait())
            })
        })
        .collect();
    // A waiter runs until it parks, so once all three have started, all
    // three are parked on the target.
    while started.get() < 3 {
        sylvan::yield_now();
    }
    gate.put(()).unwrap();
    for w in waiters {
        assert!(matches!(w.join(), Ok(Ok(Ok(())))), "every waiter wakes");
    }
    let target = Rc::into_inner(target).unwrap();
    assert_eq!(target.join().unwrap().unwrap(), 7);
}
