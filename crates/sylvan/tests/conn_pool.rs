//! `resilience::Pool`: bounded size, fair waiters, failed creates never leak
//! slots, checks on checkout and return, idle timeout and lifetime.

mod util;

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use sylvan::resilience::{Pool, PoolError};

#[derive(Debug)]
struct Conn {
    id: u32,
    healthy: Rc<Cell<bool>>,
}

#[allow(clippy::type_complexity)] // a test helper returning its probes
fn counting_create(
    fail_first: u32,
) -> (
    impl Fn() -> io::Result<Conn> + 'static,
    Rc<Cell<u32>>,
    Rc<Cell<bool>>,
) {
    let made = Rc::new(Cell::new(0));
    let healthy = Rc::new(Cell::new(true));
    let (m, h) = (made.clone(), healthy.clone());
    let calls = Cell::new(0);
    let f = move || {
        calls.set(calls.get() + 1);
        if calls.get() <= fail_first {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "down"));
        }
        m.set(m.get() + 1);
        Ok(Conn {
            id: m.get(),
            healthy: h.clone(),
        })
    };
    (f, made, healthy)
}

#[test]
fn reuses_connections_and_never_exceeds_max_size() {
    let (create, made, _) = counting_create(0);
    let pool = Pool::builder(create).max_size(3).build().unwrap();
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    let c = pool.get().unwrap();
    assert_eq!(pool.state().size, 3);
    let waiter = {
        let pool = pool.clone();
        sylvan::spawn(move || pool.get().map(|c| c.id))
    };
    sylvan::yield_now();
    assert_eq!(pool.state().waiters, 1);
    let a_id = a.id;
    drop(a);
    assert_eq!(
        waiter.join().unwrap().unwrap(),
        a_id,
        "handed straight to the waiter"
    );
    drop((b, c));
    assert_eq!(made.get(), 3);
    assert_eq!(pool.state().idle, 3);
}

#[test]
fn a_failed_create_never_leaks_its_slot() {
    let (create, made, _) = counting_create(5);
    let pool = Pool::builder(create).max_size(2).build().unwrap();
    for _ in 0..5 {
        assert!(matches!(pool.get(), Err(PoolError::Create(_))));
        assert_eq!(pool.state().size, 0, "the slot was freed");
    }
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    assert_eq!((a.id, b.id, made.get()), (1, 2, 2));
    assert_eq!(pool.state().create_failures, 5);
}

#[test]
fn a_failed_create_hands_its_slot_to_a_waiter() {
    sylvan::time::pause();
    let fail = Rc::new(Cell::new(false));
    let f2 = fail.clone();
    let n = Cell::new(0);
    let pool = Pool::builder(move || {
        if f2.get() {
            return Err(io::Error::other("refused"));
        }
        n.set(n.get() + 1);
        Ok(n.get())
    })
    .max_size(1)
    .build()
    .unwrap();
    let held = pool.get().unwrap();
    let waiter = {
        let pool = pool.clone();
        sylvan::spawn(move || pool.get().map(|c| *c))
    };
    sylvan::yield_now();
    // The held connection turns out broken; the waiter gets its slot.
    let mut held = held;
    held.mark_broken();
    drop(held);
    assert_eq!(waiter.join().unwrap().unwrap(), 2);
    fail.set(true);
    let _ = fail;
}

#[test]
fn waiters_are_served_in_order() {
    let (create, _, _) = counting_create(0);
    let pool = Pool::builder(create).max_size(1).build().unwrap();
    let held = pool.get().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let waiters: Vec<_> = (0..5)
        .map(|i| {
            let (pool, order) = (pool.clone(), order.clone());
            sylvan::spawn(move || {
                let c = pool.get().unwrap();
                order.borrow_mut().push(i);
                sylvan::yield_now();
                drop(c);
            })
        })
        .collect();
    sylvan::yield_now();
    drop(held);
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn checkout_times_out() {
    sylvan::time::pause();
    let (create, _, _) = counting_create(0);
    let pool = Pool::builder(create)
        .max_size(1)
        .checkout_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let _held = pool.get().unwrap();
    let t0 = sylvan::time::now();
    assert!(matches!(pool.get(), Err(PoolError::Timeout(_))));
    assert_eq!(sylvan::time::now() - t0, Duration::from_secs(2));
    assert_eq!(pool.state().waiters, 0);
}

#[test]
fn a_cancelled_waiter_loses_nothing() {
    let (create, made, _) = counting_create(0);
    let pool = Pool::builder(create).max_size(1).build().unwrap();
    let held = pool.get().unwrap();
    let w = {
        let pool = pool.clone();
        sylvan::spawn(move || pool.get().map(|_| ()))
    };
    sylvan::yield_now();
    w.kill();
    assert!(matches!(w.join().unwrap(), Err(PoolError::Cancelled(_))));
    drop(held);
    assert_eq!(
        pool.state().idle,
        1,
        "the returned connection went back to the pool"
    );
    assert!(pool.get().is_ok());
    assert_eq!(made.get(), 1);
}

#[test]
fn health_check_on_checkout_replaces_dead_connections() {
    let (create, made, healthy) = counting_create(0);
    let pool = Pool::builder(create)
        .max_size(2)
        .health_check(|c: &mut Conn| c.healthy.get())
        .build()
        .unwrap();
    drop(pool.get().unwrap());
    healthy.set(false);
    let h2 = healthy.clone();
    h2.set(false);
    // The idle one fails its check; a new one is made (which also reads the
    // shared flag, so flip it back first).
    healthy.set(true);
    let c = pool.get().unwrap();
    assert_eq!(c.id, 1, "healthy idle connection reused");
    drop(c);
    let bad_flag = Rc::new(Cell::new(false));
    let pool2 = Pool::builder({
        let n = Cell::new(0);
        let f = bad_flag.clone();
        move || {
            n.set(n.get() + 1);
            Ok((n.get(), f.clone()))
        }
    })
    .health_check(|c: &mut (u32, Rc<Cell<bool>>)| !c.1.get())
    .build()
    .unwrap();
    let first = pool2.get().unwrap().0;
    bad_flag.set(true);
    // Every connection now fails the check... until a fresh one is made:
    // the check runs only on idle connections being reused.
    let second = pool2.get().unwrap().0;
    assert_ne!(first, second);
    assert_eq!(made.get(), 1);
}

#[test]
fn broken_connections_are_discarded_on_return() {
    let (create, made, _) = counting_create(0);
    let pool = Pool::builder(create).max_size(2).build().unwrap();
    let mut c = pool.get().unwrap();
    c.mark_broken();
    drop(c);
    assert_eq!(pool.state().size, 0);
    assert_eq!(pool.get().unwrap().id, 2);
    assert_eq!(made.get(), 2);

    let (create, _, healthy) = counting_create(0);
    let pool = Pool::builder(create)
        .is_broken(|c: &mut Conn| !c.healthy.get())
        .build()
        .unwrap();
    let c = pool.get().unwrap();
    healthy.set(false);
    drop(c);
    assert_eq!(pool.state().size, 0, "is_broken dropped it on return");
}

#[test]
fn idle_timeout_and_max_lifetime() {
    sylvan::time::pause();
    let (create, made, _) = counting_create(0);
    let pool = Pool::builder(create)
        .idle_timeout(Some(Duration::from_secs(60)))
        .max_lifetime(Some(Duration::from_secs(300)))
        .build()
        .unwrap();
    drop(pool.get().unwrap());
    sylvan::time::advance(Duration::from_secs(61));
    assert_eq!(
        pool.state().idle,
        0,
        "evicted by the maintenance green thread"
    );
    let c = pool.get().unwrap();
    assert_eq!(c.id, 2);
    drop(c);
    // Kept busy, but too old: dropped on return after its lifetime.
    for _ in 0..6 {
        let c = pool.get().unwrap();
        sylvan::time::advance(Duration::from_secs(59));
        drop(c);
    }
    let c = pool.get().unwrap();
    assert_eq!(
        c.id, 3,
        "the old one was dropped on return after its lifetime and replaced"
    );
    assert_eq!(made.get(), 3);
}

#[test]
fn min_idle_is_kept_ready() {
    sylvan::time::pause();
    let (create, made, _) = counting_create(0);
    let pool = Pool::builder(create)
        .min_idle(2)
        .max_size(4)
        .build()
        .unwrap();
    sylvan::time::advance(Duration::from_secs(1));
    assert_eq!(pool.state().idle, 2);
    assert_eq!(made.get(), 2);
}

/// Runs `f` in a green thread and returns its panic message.
fn panics_with<T: 'static>(f: impl FnOnce() -> T + 'static) -> String {
    let e = match sylvan::spawn(f).join() {
        Err(e) => e,
        Ok(_) => panic!("expected a panic"),
    };
    e.panic_message().unwrap_or_default().to_string()
}

/// Eventlet's db_pool bug (PR #527), panicking form: a `create` that
/// panics must give its slot back, or the pool shrinks for good.
#[test]
fn a_panicking_create_never_leaks_its_slot() {
    sylvan::time::pause();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let pool = Pool::builder(move || {
        c.set(c.get() + 1);
        if c.get() == 1 {
            panic!("create blew up");
        }
        Ok(c.get())
    })
    .max_size(1)
    .checkout_timeout(Duration::from_secs(1))
    .build()
    .unwrap();
    let p = pool.clone();
    assert_eq!(panics_with(move || p.get().map(|_| ())), "create blew up");
    assert_eq!(pool.state().size, 0, "the slot was given back");
    assert_eq!(*pool.get().expect("the only slot is free again"), 2);
}

/// The same for a panicking health check on checkout: the idle connection
/// it was checking is gone, and so is its slot.
#[test]
fn a_panicking_health_check_never_leaks_its_slot() {
    sylvan::time::pause();
    let check_panics = Rc::new(Cell::new(false));
    let cp = check_panics.clone();
    let (create, made, _) = counting_create(0);
    let pool = Pool::builder(create)
        .max_size(1)
        .checkout_timeout(Duration::from_secs(1))
        .health_check(move |_: &mut Conn| {
            if cp.get() {
                panic!("check blew up");
            }
            true
        })
        .build()
        .unwrap();
    drop(pool.get().unwrap()); // one idle connection
    check_panics.set(true);
    let p = pool.clone();
    assert_eq!(panics_with(move || p.get().map(|_| ())), "check blew up");
    assert_eq!(pool.state().size, 0, "the slot was given back");
    check_panics.set(false);
    let c = pool.get().expect("the only slot is free again");
    assert_eq!(c.id, 2, "a new connection replaced the one being checked");
    assert_eq!(made.get(), 2);
}

/// A panicking `is_broken` check on return frees the slot too.
#[test]
fn a_panicking_return_check_never_leaks_its_slot() {
    sylvan::time::pause();
    let (create, _, _) = counting_create(0);
    let check_panics = Rc::new(Cell::new(true));
    let cp = check_panics.clone();
    let pool = Pool::builder(create)
        .max_size(1)
        .checkout_timeout(Duration::from_secs(1))
        .is_broken(move |_: &mut Conn| {
            if cp.get() {
                panic!("return check blew up");
            }
            false
        })
        .build()
        .unwrap();
    let p = pool.clone();
    assert_eq!(
        panics_with(move || drop(p.get().unwrap())),
        "return check blew up"
    );
    assert_eq!(pool.state().size, 0, "the slot was given back");
    check_panics.set(false);
    assert!(pool.get().is_ok(), "the only slot is free again");
}

/// A waiter for the only slot gets it when the creator panics.
#[test]
fn a_panicking_create_hands_its_slot_to_a_waiter() {
    sylvan::time::pause();
    let gate = sylvan::sync::Event::new();
    let g = gate.clone();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let pool = Pool::builder(move || {
        c.set(c.get() + 1);
        if c.get() == 1 {
            g.wait().map_err(io::Error::from)?;
            panic!("create blew up");
        }
        Ok(c.get())
    })
    .max_size(1)
    .checkout_timeout(Duration::from_secs(3600))
    .build()
    .unwrap();
    let p = pool.clone();
    let creator = sylvan::spawn(move || p.get().map(|_| ()));
    sylvan::yield_now(); // creating, holding the only slot
    let p = pool.clone();
    let waiter = sylvan::spawn(move || p.get().map(|c| *c));
    sylvan::yield_now();
    assert_eq!(pool.state().waiters, 1);
    gate.send(()).unwrap();
    assert!(creator.join().is_err());
    assert_eq!(waiter.join().unwrap().unwrap(), 2);
}

/// A checkout killed in the middle of `create` gives its slot back too.
#[test]
fn a_checkout_killed_during_create_never_leaks_its_slot() {
    sylvan::time::pause();
    let gate = sylvan::sync::Event::<()>::new();
    let g = gate.clone();
    let pool = Pool::builder(move || {
        g.wait().map_err(io::Error::from)?;
        Ok(1)
    })
    .max_size(1)
    .build()
    .unwrap();
    let p = pool.clone();
    let creator = sylvan::spawn(move || p.get().map(|_| ()));
    sylvan::yield_now(); // creating, holding the only slot
    assert_eq!(pool.state().size, 1);
    creator.kill();
    assert!(creator.join().unwrap().is_err());
    assert_eq!(pool.state().size, 0, "the slot was given back");
    gate.send(()).unwrap();
    assert!(pool.get().is_ok());
}
