//! Supervision: `GreenThread::link`/`unlink`, `join_all`, `kill_all` and
//! `GreenPool::kill_all`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use sylvan::{Cancelled, GreenPool, JoinError, Outcome};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

#[test]
fn link_sees_the_value_once_and_join_still_takes_it() {
    let calls = log();
    let g = sylvan::spawn(|| String::from("v"));
    for i in 0..2 {
        let c = calls.clone();
        g.link(move |o: Outcome<'_, String>| {
            c.borrow_mut().push(format!("{i}:{}", o.value().unwrap()));
        });
    }
    assert_eq!(g.join().unwrap(), "v");
    assert_eq!(
        *calls.borrow(),
        vec!["0:v", "1:v"],
        "each link once, in order"
    );
}

#[test]
fn link_runs_on_the_finishing_green_thread_and_may_block() {
    sylvan::time::pause();
    let seen = Rc::new(Cell::new(None));
    let g = sylvan::spawn(|| 1);
    let (s, id) = (seen.clone(), g.id());
    g.link(move |_| {
        // On the green thread's own stack, not the scheduler's: blocking
        // works, and the green thread is not finished until it returns.
        sylvan::sleep(Duration::from_secs(5)).unwrap();
        s.set(Some(sylvan::current().id() == id));
    });
    let t0 = sylvan::time::now();
    assert_eq!(g.join().unwrap(), 1);
    assert_eq!(seen.get(), Some(true));
    assert!(
        sylvan::time::now() - t0 >= Duration::from_secs(5),
        "join waited for the link"
    );
}

#[test]
fn link_after_the_end_is_called_at_once_by_the_caller() {
    let g = sylvan::spawn(|| 7);
    g.wait().unwrap();
    let called = Rc::new(Cell::new(false));
    let c = called.clone();
    g.link(move |o| {
        assert!(matches!(o, Outcome::Returned(&7)));
        assert!(sylvan::current().is_root());
        c.set(true);
    });
    assert!(called.get());
    assert_eq!(g.join().unwrap(), 7);
}

#[test]
fn link_sees_panics_and_kills_before_start() {
    let calls = log();
    let p = sylvan::spawn(|| -> u8 { panic!("boom") });
    let c = calls.clone();
    p.link(move |o| c.borrow_mut().push(format!("{:?}", o)));
    assert!(matches!(p.join(), Err(JoinError::Panicked(_))));

    let k = sylvan::spawn(|| 1u8);
    let c = calls.clone();
    k.link(move |o| c.borrow_mut().push(format!("{:?}", o)));
    k.kill();
    assert!(matches!(k.join(), Err(JoinError::Killed)));

    let after = sylvan::spawn_after(Duration::from_secs(60), || 1u8);
    let c = calls.clone();
    after.link(move |o| c.borrow_mut().push(format!("{:?}", o)));
    sylvan::yield_now();
    after.kill();
    assert!(matches!(after.join(), Err(JoinError::Killed)));

    // Killed while running: it returns what its code returned.
    let running = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(60)));
    let c = calls.clone();
    running.link(move |o| c.borrow_mut().push(format!("{:?}", o)));
    sylvan::yield_now();
    running.kill();
    assert_eq!(running.join().unwrap(), Err(Cancelled::Killed));

    assert_eq!(
        *calls.borrow(),
        vec![
            r#"Panicked("boom")"#,
            "Killed",
            "Killed",
            "Returned(Err(Killed))"
        ]
    );
}

#[test]
fn a_panicking_link_goes_no_further() {
    let calls = log();
    let g = sylvan::spawn(|| 3);
    g.link(|_| panic!("bad link"));
    let c = calls.clone();
    g.link(move |o| c.borrow_mut().push(format!("{:?}", o)));
    assert_eq!(g.join().unwrap(), 3);
    assert_eq!(*calls.borrow(), vec!["Returned(3)"]);
}

#[test]
fn detached_green_threads_still_call_their_links() {
    let calls = log();
    let g = sylvan::spawn(|| 9);
    let c = calls.clone();
    g.link(move |o| c.borrow_mut().push(format!("{:?}", o)));
    drop(g);
    sylvan::yield_now();
    assert_eq!(*calls.borrow(), vec!["Returned(9)"]);
}

#[test]
fn links_of_green_threads_unwound_at_shutdown_see_killed() {
    std::thread::spawn(|| {
        let calls = log();
        let g = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
        let c = calls.clone();
        g.link(move |o| {
            // Unwinding: blocking calls fail at once.
            let blocked = sylvan::sleep(Duration::from_secs(1));
            c.borrow_mut().push(format!("{:?} {:?}", o, blocked));
        });
        sylvan::yield_now();
        sylvan::shutdown();
        assert_eq!(*calls.borrow(), vec!["Killed Err(Killed)"]);
    })
    .join()
    .unwrap();
}

#[test]
fn join_all_counts_what_finished_by_the_deadline() {
    sylvan::time::pause();
    let gs: Vec<_> = [1u64, 2, 10, 20]
        .into_iter()
        .map(|s| sylvan::spawn(move || sylvan::sleep(Duration::from_secs(s))))
        .collect();
    let by = sylvan::time::now() + Duration::from_secs(5);
    assert_eq!(sylvan::join_all(&gs, Some(by)), 2);
    assert!(sylvan::time::now() >= by, "it waited up to the deadline");
    assert_eq!(sylvan::join_all(&gs, None), 4);
    for g in gs {
        assert_eq!(g.join().unwrap(), Ok(()));
    }
}

#[test]
fn join_all_returns_early_when_the_caller_is_cancelled() {
    sylvan::time::pause();
    let g = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(60)));
    let waiter = {
        let gs = [g];
        sylvan::spawn(move || {
            let n = sylvan::join_all(&gs, None);
            (
                n,
                sylvan::yield_now(),
                sylvan::sleep(Duration::from_secs(1)),
            )
        })
    };
    sylvan::yield_now();
    waiter.kill();
    let (n, (), next) = waiter.join().unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        next,
        Err(Cancelled::Killed),
        "the kill shows at the next call"
    );

    let slow = [sylvan::spawn(|| sylvan::sleep(Duration::from_secs(60)))];
    let r = sylvan::timeout(Duration::from_secs(1), || sylvan::join_all(&slow, None));
    assert!(
        r.is_err(),
        "an enclosing timeout cancels the wait and says so"
    );
}

#[test]
fn kill_all_kills_the_unfinished_and_can_wait() {
    let finished = sylvan::spawn(|| Ok(()));
    sylvan::yield_now();
    let started: Vec<_> = (0..3)
        .map(|_| sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600))))
        .collect();
    sylvan::yield_now();
    let unstarted = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
    let all: Vec<_> = started.iter().chain([&finished, &unstarted]).collect();
    assert_eq!(sylvan::kill_all(all.iter().copied(), true), 4);
    assert!(all.iter().all(|g| g.is_finished()));
    assert_eq!(sylvan::kill_all(all, false), 0, "nothing left to kill");
    for g in started {
        assert_eq!(g.join().unwrap(), Err(Cancelled::Killed));
    }
    assert!(matches!(unstarted.join(), Err(JoinError::Killed)));
}

#[test]
fn kill_all_without_wait_returns_at_once() {
    let g = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
    sylvan::yield_now();
    assert_eq!(sylvan::kill_all([&g], false), 1);
    assert!(!g.is_finished(), "not waited for");
    assert_eq!(g.join().unwrap(), Err(Cancelled::Killed));
}

struct Drops(Rc<Cell<u32>>);
impl Drop for Drops {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn pool_kill_all_kills_spawn_n_jobs_started_or_not() {
    let pool = GreenPool::new(10);
    let (ran, dropped) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    for _ in 0..3 {
        let (ran, d) = (ran.clone(), Drops(dropped.clone()));
        pool.spawn_n(move || {
            let _d = d;
            ran.set(ran.get() + 1);
            let _ = sylvan::sleep(Duration::from_secs(3600));
        })
        .unwrap();
    }
    sylvan::yield_now(); // three start and sleep
    for _ in 0..2 {
        let (ran, d) = (ran.clone(), Drops(dropped.clone()));
        pool.spawn_n(move || {
            let _d = d;
            ran.set(ran.get() + 1);
        })
        .unwrap();
    }
    assert_eq!(pool.running(), 5);
    assert_eq!(pool.kill_all(), 5);
    pool.wait_all().unwrap();
    assert_eq!(pool.running(), 0);
    assert_eq!(ran.get(), 3, "the two not started never ran");
    assert_eq!(dropped.get(), 5, "every job's closure was dropped");
    assert_eq!(pool.kill_all(), 0, "no member left");
    // The pool stays usable.
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
}

/// Members come and go through reused slots of the pool: `kill_all`
/// counts exactly those alive, and a member's full-pool spawn still runs
/// inline after its slot was used by others before it.
#[test]
fn pool_membership_follows_jobs_through_reused_slots() {
    let pool = GreenPool::new(2);
    for round in 0..5u32 {
        let a = pool.spawn(move || round).unwrap();
        let b = pool.spawn(move || round + 1).unwrap();
        assert_eq!(a.join().unwrap() + b.join().unwrap(), 2 * round + 1);
    }
    assert_eq!(pool.kill_all(), 0, "every job of the rounds finished");
    // Waits on an event nobody sends (no timer: were the member below
    // not seen as one, its wait for a slot would be reported as a
    // deadlock instead of hanging).
    let never = sylvan::sync::Event::<()>::new();
    let waiter = pool.spawn(move || never.wait()).unwrap();
    let p = pool.clone();
    // Fills the pool, then spawns into it: as a member it runs inline.
    let member = pool
        .spawn(move || p.spawn(|| 7).unwrap().join().unwrap())
        .unwrap();
    assert_eq!(member.join().unwrap(), 7);
    assert_eq!(pool.kill_all(), 1, "only the waiter is left");
    assert_eq!(waiter.join().unwrap(), Err(sylvan::Cancelled::Killed));
    assert_eq!(pool.running(), 0);
}

#[test]
fn an_unlinked_callback_is_dropped_at_once_and_never_called() {
    let calls = log();
    let g = sylvan::spawn(|| 4);
    let c = calls.clone();
    let first = g.link(move |o| c.borrow_mut().push(format!("first {o:?}")));
    let c = calls.clone();
    g.link(move |o| c.borrow_mut().push(format!("second {o:?}")));
    // What the callback captured goes when it is unlinked, not at the end.
    let captured = Rc::new(());
    let held = captured.clone();
    let third = g.link(move |_| drop(held));
    assert_eq!(Rc::strong_count(&captured), 2);
    assert!(g.unlink(third));
    assert_eq!(Rc::strong_count(&captured), 1);
    assert!(g.unlink(first));
    assert!(!g.unlink(first), "a second unlink finds nothing");
    assert_eq!(g.join().unwrap(), 4);
    assert_eq!(*calls.borrow(), vec!["second Returned(4)"]);
}

#[test]
fn unlink_after_the_links_ran_or_on_another_thread_finds_nothing() {
    let a = sylvan::spawn(|| ());
    let b = sylvan::spawn(|| ());
    let on_a = a.link(|_| ());
    assert!(!b.unlink(on_a), "an id of another green thread's link");
    a.wait().unwrap();
    assert!(!a.unlink(on_a), "the link already ran");
    let late = a.link(|_| ()); // called at once: a has finished
    assert!(!a.unlink(late));
    a.join().unwrap();
    b.join().unwrap();
}

#[test]
fn a_link_may_unlink_the_links_after_it() {
    let calls = log();
    let g = Rc::new(sylvan::spawn(|| 1));
    let later: Rc<Cell<Option<sylvan::LinkId>>> = Rc::new(Cell::new(None));
    let (handle, which, c) = (g.clone(), later.clone(), calls.clone());
    g.link(move |_| {
        c.borrow_mut().push("first".to_string());
        assert!(handle.unlink(which.get().unwrap()));
    });
    let c = calls.clone();
    later.set(Some(
        g.link(move |_| c.borrow_mut().push("later".to_string())),
    ));
    let c = calls.clone();
    g.link(move |_| c.borrow_mut().push("last".to_string()));
    g.wait().unwrap();
    assert_eq!(*calls.borrow(), vec!["first", "last"]);
    let Ok(g) = Rc::try_unwrap(g) else {
        panic!("the first link's handle was not dropped");
    };
    assert_eq!(g.join().unwrap(), 1);
}
