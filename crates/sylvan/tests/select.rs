//! `Select`, `wait` and `iwait`: each arm fires when its operation can
//! complete, the losers are untouched, the choice is fair, and
//! cancellation leaves nothing behind.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use sylvan::select::{Select, Waitable, iwait, wait};
use sylvan::sync::{Event, GetError, PutError, Queue, Semaphore};
use sylvan::{Cancelled, GreenThread};

/// Runs `f` on a fresh thread (its own hub) with the clock paused.
fn on_hub<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        sylvan::time::pause();
        let r = f();
        sylvan::shutdown();
        r
    })
    .join()
    .expect("the test's hub thread panicked")
}

#[derive(Debug, PartialEq, Eq)]
enum Fired {
    A(u32),
    B(u32),
    Permit,
    Event(u32),
    Joined(u32),
    Deadline,
}

#[test]
fn get_arm_fires_when_an_item_arrives_and_the_other_queue_keeps_its_items() {
    on_hub(|| {
        let (a, b) = (Queue::unbounded(), Queue::unbounded());
        let (a2, b2) = (a.clone(), b.clone());
        let s = sylvan::spawn(move || {
            Select::new()
                .get(&a2, |r| Fired::A(r.unwrap()))
                .get(&b2, |r| Fired::B(r.unwrap()))
                .select()
        });
        sylvan::yield_now(); // it parks on both
        b.put(2).unwrap();
        a.put(1).unwrap(); // after b: must stay in a
        assert_eq!(s.join().unwrap(), Ok(Fired::B(2)));
        assert_eq!(a.len(), 1, "the losing queue kept its item");
    });
}

#[test]
fn put_arm_waits_for_room_and_a_losing_put_keeps_its_value() {
    on_hub(|| {
        let full = Queue::bounded(1);
        full.put(0).unwrap();
        let other = Queue::bounded(1);
        other.put(0).unwrap();
        let (f2, o2) = (full.clone(), other.clone());
        let s = sylvan::spawn(move || {
            let (mut x, mut y) = (Some(10), Some(20));
            let r = Select::new()
                .put(&f2, &mut x, |r| r.map(|()| "full"))
                .put(&o2, &mut y, |r| r.map(|()| "other"))
                .select();
            (r.unwrap().ok(), x, y)
        });
        sylvan::yield_now();
        assert_eq!(other.try_get(), Some(0)); // room in `other` only
        let (which, x, y) = s.join().unwrap();
        assert_eq!(which, Some("other"));
        assert_eq!(
            (x, y),
            (Some(10), None),
            "the losing put still holds its value"
        );
        assert_eq!(full.len(), 1);
        assert_eq!(other.try_get(), Some(20));
    });
}

#[test]
fn put_arm_on_a_closed_queue_fires_with_the_value_handed_back() {
    on_hub(|| {
        let q = Queue::bounded(1);
        q.put(1).unwrap();
        let q2 = q.clone();
        let s = sylvan::spawn(move || {
            let mut v = Some(7);
            let r = Select::new().put(&q2, &mut v, |r| r).select().unwrap();
            (r, v)
        });
        sylvan::yield_now();
        q.close();
        let (r, v) = s.join().unwrap();
        assert!(matches!(r, Err(PutError::Closed(7))));
        assert_eq!(v, None, "the value went into the error");
    });
}

#[test]
fn rendezvous_put_arm_fires_when_a_getter_arrives() {
    on_hub(|| {
        let q = Queue::bounded(0);
        let q2 = q.clone();
        let s = sylvan::spawn(move || {
            let mut v = Some(5);
            Select::new().put(&q2, &mut v, |r| r.is_ok()).select()
        });
        sylvan::yield_now(); // parked: nobody to hand to
        assert!(!s.is_finished());
        assert_eq!(q.get(), Ok(5)); // a getter arrives
        assert_eq!(s.join().unwrap(), Ok(true));
    });
}

#[test]
fn rendezvous_get_arm_takes_a_plain_putters_item() {
    on_hub(|| {
        let q = Queue::bounded(0);
        let q2 = q.clone();
        let s = sylvan::spawn(move || Select::new().get(&q2, |r| r.unwrap()).select());
        sylvan::yield_now();
        q.put(9).unwrap(); // returns once the select took it
        assert_eq!(s.join().unwrap(), Ok(9));
    });
}

#[test]
fn get_arm_fires_with_closed_once_the_queue_is_closed_and_empty() {
    on_hub(|| {
        let q = Queue::<u8>::unbounded();
        let q2 = q.clone();
        let s = sylvan::spawn(move || Select::new().get(&q2, |r| r).select());
        sylvan::yield_now();
        q.close();
        assert_eq!(s.join().unwrap(), Ok(Err(GetError::Closed)));
    });
}

#[test]
fn event_join_and_deadline_arms() {
    on_hub(|| {
        let ev = Event::new();
        let e2 = ev.clone();
        let s = sylvan::spawn(move || {
            let mut never = Some(sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600))));
            Select::new()
                .wait(&e2, Fired::Event)
                .join(&mut never, |_| Fired::Joined(0))
                .timeout(Duration::from_secs(60), || Fired::Deadline)
                .select()
        });
        sylvan::yield_now();
        ev.send(4).unwrap();
        assert_eq!(s.join().unwrap(), Ok(Fired::Event(4)));

        let mut worker = Some(sylvan::spawn(|| {
            sylvan::sleep(Duration::from_secs(1)).unwrap();
            8
        }));
        let r = Select::new()
            .join(&mut worker, |r| Fired::Joined(r.unwrap()))
            .timeout(Duration::from_secs(60), || Fired::Deadline)
            .select();
        assert_eq!(r, Ok(Fired::Joined(8)));
        assert!(worker.is_none());

        let mut slow = Some(sylvan::spawn(|| {
            let _ = sylvan::sleep(Duration::from_secs(3600));
            0
        }));
        let t0 = sylvan::time::now();
        let r = Select::new()
            .join(&mut slow, |r| Fired::Joined(r.unwrap()))
            .timeout(Duration::from_secs(2), || Fired::Deadline)
            .select();
        assert_eq!(r, Ok(Fired::Deadline));
        assert_eq!(sylvan::time::now() - t0, Duration::from_secs(2));
        assert!(slow.is_some(), "the losing join keeps its handle");
        slow.unwrap().kill();
    });
}

#[test]
fn acquire_arm_gets_the_released_permit_and_a_losing_one_holds_none() {
    on_hub(|| {
        let sem = Semaphore::new(0);
        let q = Queue::unbounded();
        let (s2, q2) = (sem.clone(), q.clone());
        let s = sylvan::spawn(move || {
            let p = Select::new()
                .acquire(&s2, Some)
                .get(&q2, |_| None)
                .select()
                .unwrap();
            let got = p.is_some();
            drop(p);
            got
        });
        sylvan::yield_now();
        assert_eq!(sem.waiting(), 1);
        sem.add_permits(1).unwrap(); // handed to the select
        assert_eq!(sem.available_permits(), 0);
        assert!(s.join().unwrap());
        assert_eq!(sem.available_permits(), 1, "its permit came back on drop");

        // Now lose: the queue fires, the select leaves the semaphore's queue.
        let held = sem.try_acquire().unwrap();
        let (s2, q2) = (sem.clone(), q.clone());
        let s = sylvan::spawn(move || {
            Select::new()
                .acquire(&s2, |_| Fired::Permit)
                .get(&q2, |r| Fired::A(r.unwrap()))
                .select()
        });
        sylvan::yield_now();
        q.put(3).unwrap();
        assert_eq!(s.join().unwrap(), Ok(Fired::A(3)));
        assert_eq!(sem.waiting(), 0);
        drop(held);
        assert_eq!(sem.available_permits(), 1, "no permit held by the loser");
    });
}

#[test]
fn a_select_leaving_a_semaphore_queue_hands_the_free_permit_to_who_queued_behind_it() {
    on_hub(|| {
        let sem = Semaphore::new(1);
        let ev = Event::new();
        let held = sem.try_acquire().unwrap();
        let (s2, e2) = (sem.clone(), ev.clone());
        let s = sylvan::spawn(move || {
            Select::new()
                .acquire(&s2, |_| Fired::Permit)
                .wait(&e2, Fired::Event)
                .select()
        });
        sylvan::yield_now(); // the select queues on the semaphore
        let s3 = sem.clone();
        let late = sylvan::spawn(move || s3.acquire().map(drop)); // runs before the select
        ev.send(1).unwrap(); // the select is woken by the event...
        drop(held); // ...so this permit finds no live waiter and stays free
        // `late` queues behind the select although a permit is free; the
        // select, leaving, must hand it over.
        assert_eq!(s.join().unwrap(), Ok(Fired::Event(1)));
        assert_eq!(late.join().unwrap(), Ok(()));
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn fairness_two_always_ready_arms_both_fire() {
    on_hub(|| {
        let (a, b) = (Queue::unbounded(), Queue::unbounded());
        let (mut na, mut nb) = (0, 0);
        for _ in 0..2000 {
            a.try_put(()).unwrap();
            b.try_put(()).unwrap();
            match Select::new()
                .get(&a, |_| true)
                .get(&b, |_| false)
                .select()
                .unwrap()
            {
                true => na += 1,
                false => nb += 1,
            }
        }
        // Uniformly random: each side ~1000; below 800 has probability
        // far under 1e-15.
        assert!(na > 800 && nb > 800, "a fired {na} times, b {nb}");
    });
}

#[test]
fn killed_in_the_middle_leaves_every_list_and_keeps_every_value() {
    on_hub(|| {
        let q = Queue::<u32>::unbounded();
        let full = Queue::bounded(1);
        full.put(0).unwrap();
        let sem = Semaphore::new(0);
        let (q2, f2, s2) = (q.clone(), full.clone(), sem.clone());
        let s = sylvan::spawn(move || {
            let mut v = Some(1);
            let r = Select::new()
                .get(&q2, |_| ())
                .put(&f2, &mut v, |_| ())
                .acquire(&s2, |_| ())
                .select();
            (r, v)
        });
        // A plain getter queued behind the select on the same queue.
        let q3 = q.clone();
        let getter = sylvan::spawn(move || q3.get());
        sylvan::yield_now();
        assert_eq!(sem.waiting(), 1);
        s.kill();
        let (r, v) = s.join().unwrap();
        assert_eq!(r, Err(Cancelled::Killed));
        assert_eq!(v, Some(1), "the put value is still in its slot");
        assert_eq!(sem.waiting(), 0, "it left the semaphore's queue");
        assert_eq!(full.len(), 1);
        q.put(42).unwrap(); // must reach the getter, not the dead select
        assert_eq!(getter.join().unwrap(), Ok(42));
        sem.add_permits(1).unwrap();
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn a_scoped_deadline_cancels_a_select_and_an_arm_deadline_does_not() {
    on_hub(|| {
        let q = Queue::<u8>::unbounded();
        let r = sylvan::timeout(Duration::from_secs(1), || {
            Select::new().get(&q, |_| ()).select()
        });
        assert!(r.is_err(), "the scope's deadline fired: {r:?}");
        let r = sylvan::timeout(Duration::from_secs(5), || {
            Select::new()
                .get(&q, |_| false)
                .timeout(Duration::from_secs(1), || true)
                .select()
        });
        assert_eq!(r, Ok(Ok(true)));
    });
}

#[test]
fn an_empty_select_waits_until_cancelled() {
    on_hub(|| {
        let r = sylvan::timeout(Duration::from_secs(1), || Select::<()>::new().select());
        assert!(r.is_err());
        assert_eq!(Select::<()>::new().try_select(), None);
    });
}

#[test]
fn unwound_at_shutdown_a_select_leaves_the_semaphore_queue() {
    let sem_left = std::thread::spawn(|| {
        let sem = Semaphore::new(0);
        let q = Queue::<u8>::unbounded();
        let (s2, q2) = (sem.clone(), q.clone());
        let _g =
            sylvan::spawn(move || Select::new().acquire(&s2, |_| ()).get(&q2, |_| ()).select());
        sylvan::yield_now();
        assert_eq!(sem.waiting(), 1);
        sylvan::shutdown();
        sem.waiting()
    })
    .join()
    .unwrap();
    assert_eq!(sem_left, 0);
}

#[test]
fn channel_arms_across_threads() {
    on_hub(|| {
        let (tx, rx) = sylvan::sync::channel::<u32>();
        let q = Queue::<u32>::unbounded();
        let t = std::thread::spawn(move || tx.send(11).unwrap());
        let r = Select::new()
            .get(&q, |_| 0)
            .recv(&rx, |r| r.unwrap())
            .select();
        assert_eq!(r, Ok(11));
        t.join().unwrap();
        // Disconnected: the recv arm fires with the error.
        let r = Select::new().recv(&rx, |r| r.is_err()).select();
        assert_eq!(r, Ok(true));

        // A rendezvous send arm completes when a receiver on another
        // thread arrives.
        let (tx, rx) = sylvan::sync::bounded::<u32>(0);
        let t = std::thread::spawn(move || rx.recv());
        let mut v = Some(3);
        let r = Select::new().send(&tx, &mut v, |r| r.is_ok()).select();
        assert_eq!(r, Ok(true));
        assert_eq!(v, None);
        assert_eq!(t.join().unwrap(), Ok(3));
    });
}

#[test]
fn a_losing_send_keeps_its_value_and_the_channel_its_room() {
    on_hub(|| {
        let (tx, rx) = sylvan::sync::bounded::<u32>(1);
        tx.send(1).unwrap();
        let ev = Event::new();
        let (tx2, e2) = (tx.clone(), ev.clone());
        let s = sylvan::spawn(move || {
            let mut v = Some(2);
            let r = Select::new()
                .send(&tx2, &mut v, |_| "sent")
                .wait(&e2, |()| "event")
                .select();
            (r, v)
        });
        sylvan::yield_now();
        ev.send(()).unwrap();
        assert_eq!(s.join().unwrap(), (Ok("event"), Some(2)));
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(rx.try_recv().is_err(), "nothing else was sent");
    });
}

#[test]
fn iwait_reports_in_the_order_things_happen() {
    on_hub(|| {
        let ev = Event::<()>::new();
        let q = Queue::<u8>::unbounded();
        let g = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(2)));
        let (e2, q2) = (ev.clone(), q.clone());
        let _feeder = sylvan::spawn(move || {
            sylvan::sleep(Duration::from_secs(1))?;
            q2.put(1).unwrap();
            sylvan::sleep(Duration::from_secs(2))?;
            e2.send(()).unwrap();
            Ok::<_, Cancelled>(())
        });
        let objects: [&dyn Waitable; 3] = [&ev, &g, &q];
        let order: Vec<usize> = iwait(&objects).map(Result::unwrap).collect();
        assert_eq!(order, [2, 1, 0]);
        assert_eq!(q.len(), 1, "iwait took nothing");
    });
}

#[test]
fn iwait_does_not_swallow_a_getters_wake_up() {
    on_hub(|| {
        let q = Queue::<u8>::unbounded();
        let q2 = q.clone();
        let watcher = sylvan::spawn(move || {
            let objects: [&dyn Waitable; 1] = [&q2];
            iwait(&objects).next()
        });
        sylvan::yield_now(); // the watcher registers first
        let q3 = q.clone();
        let getter = sylvan::spawn(move || q3.get());
        sylvan::yield_now();
        q.put(7).unwrap(); // must reach the getter, not the watcher
        q.put(8).unwrap();
        assert_eq!(getter.join().unwrap(), Ok(7));
        assert_eq!(watcher.join().unwrap(), Some(Ok(0)));
        assert_eq!(q.try_get(), Some(8), "the watcher took nothing");
    });
}

#[test]
fn wait_counts_deadlines_and_cancellation() {
    on_hub(|| {
        let a: GreenThread<_> = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(1)));
        let b = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(10)));
        let objects: [&dyn Waitable; 2] = [&a, &b];
        assert_eq!(wait(&objects, Some(1), None), Ok(vec![0]));
        let by = sylvan::time::now() + Duration::from_secs(2);
        assert_eq!(wait(&objects, None, Some(by)), Ok(vec![0]));
        let r = sylvan::timeout(Duration::from_secs(1), || wait(&objects, None, None));
        assert!(r.is_err(), "an enclosing scope cancels wait");
        assert_eq!(wait(&objects, None, None), Ok(vec![0, 1]));
        let none: [&dyn Waitable; 0] = [];
        assert_eq!(wait(&none, None, None), Ok(vec![]));
    });
}

#[test]
fn a_select_arm_closure_runs_once_and_only_for_the_winner() {
    on_hub(|| {
        let (got, waited) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let q = Queue::unbounded();
        q.put(1).unwrap();
        let ev = Event::new();
        ev.send(()).unwrap();
        let (c1, c2) = (got.clone(), waited.clone());
        Select::new()
            .get(&q, move |_| c1.set(c1.get() + 1))
            .wait(&ev, move |()| c2.set(c2.get() + 1))
            .select()
            .unwrap();
        assert_eq!(got.get() + waited.get(), 1);
        assert_eq!(
            q.len(),
            1 - got.get(),
            "the item was taken only if get fired"
        );
    });
}

#[test]
fn selects_over_channels_with_peers_on_other_threads_lose_and_duplicate_nothing() {
    const N: u32 = 2000;
    // Receiving: two senders on other OS threads, one channel buffered,
    // one rendezvous; the hub selects over both until both disconnect.
    let (tx1, rx1) = sylvan::sync::bounded::<u32>(1);
    let (tx2, rx2) = sylvan::sync::bounded::<u32>(0);
    let s1 = std::thread::spawn(move || (0..N).for_each(|i| tx1.send(i).unwrap()));
    let s2 = std::thread::spawn(move || (N..2 * N).for_each(|i| tx2.send(i).unwrap()));
    let got = on_hub(move || {
        let mut got = Vec::new();
        let (mut open1, mut open2) = (true, true);
        while open1 || open2 {
            let mut sel = Select::new();
            if open1 {
                sel = sel.recv(&rx1, |r| (1, r.ok()));
            }
            if open2 {
                sel = sel.recv(&rx2, |r| (2, r.ok()));
            }
            match sel.select().unwrap() {
                (_, Some(v)) => got.push(v),
                (1, None) => open1 = false,
                (_, None) => open2 = false,
            }
        }
        got
    });
    s1.join().unwrap();
    s2.join().unwrap();
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..2 * N).collect::<Vec<_>>());

    // Sending: receivers on two OS threads, the hub selects a send over
    // both rendezvous channels; every value arrives exactly once and the
    // loser's slot keeps its value for the next round.
    let (tx1, rx1) = sylvan::sync::bounded::<u32>(0);
    let (tx2, rx2) = sylvan::sync::bounded::<u32>(0);
    let r1 = std::thread::spawn(move || rx1.iter().collect::<Vec<_>>());
    let r2 = std::thread::spawn(move || rx2.iter().collect::<Vec<_>>());
    on_hub(move || {
        let (mut a, mut b) = (None, None);
        let mut next = 0;
        while next < 2 * N || a.is_some() || b.is_some() {
            for slot in [&mut a, &mut b] {
                if slot.is_none() && next < 2 * N {
                    *slot = Some(next);
                    next += 1;
                }
            }
            Select::new()
                .send(&tx1, &mut a, |r| r.unwrap())
                .send(&tx2, &mut b, |r| r.unwrap())
                .select()
                .unwrap();
        }
    });
    let mut all = r1.join().unwrap();
    all.extend(r2.join().unwrap());
    all.sort_unstable();
    assert_eq!(all, (0..2 * N).collect::<Vec<_>>());
}

/// A select with both a put and a get arm on one rendezvous queue cannot
/// meet itself: registering its get arm must not wake its own put arm
/// (it then went round again without ever parking, and a putter arriving
/// later waited for it forever). Found by `select_model`'s property test.
#[test]
fn a_select_putting_and_getting_on_one_rendezvous_queue_meets_a_later_putter() {
    for round in 0..20 {
        // Several rounds: the select picks among ready arms at random.
        let (putter_done, select_got) = on_hub(move || {
            let q: Queue<u8> = Queue::bounded(0);
            let q2 = q.clone();
            let both = sylvan::spawn(move || {
                let mut mine = Some(1u8);
                Select::<Option<u8>>::new()
                    .put(&q2, &mut mine, |_| None)
                    .get(&q2, |r| r.ok())
                    .select()
            });
            sylvan::yield_now(); // it registers both arms and parks
            let q3 = q.clone();
            let putter = sylvan::spawn(move || {
                let mut v = Some(45u8);
                Select::<()>::new().put(&q3, &mut v, |_| ()).select()
            });
            for _ in 0..10 {
                sylvan::yield_now();
            }
            let got = both.is_finished().then(|| both.join().unwrap());
            (putter.is_finished(), got)
        });
        assert!(putter_done, "round {round}: the putter still waits");
        assert_eq!(select_got, Some(Ok(Some(45))), "round {round}");
    }
}

/// The same for a rendezvous channel: a select with both a send and a
/// receive arm on one `bounded(0)` channel does not wake itself, so with
/// no peer it parks and its timeout arm fires (under the paused clock,
/// which only moves while the hub is idle), and a later sender meets it.
/// Each round runs on a thread of its own with a time limit: the select
/// that woke itself never parked, and this hung.
#[test]
fn a_select_sending_and_receiving_on_one_rendezvous_channel_parks_and_meets_a_peer() {
    for round in 0..20 {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(on_hub(|| {
                let (tx, rx) = sylvan::sync::bounded::<u8>(0);
                let mut mine = Some(1u8);
                let alone = Select::<&str>::new()
                    .send(&tx, &mut mine, |_| "sent")
                    .recv(&rx, |_| "received")
                    .timeout(Duration::from_millis(10), || "timed out")
                    .select()
                    .unwrap();
                let (tx2, rx2) = (tx.clone(), rx.clone());
                let both = sylvan::spawn(move || {
                    let mut mine = Some(1u8);
                    Select::<Option<u8>>::new()
                        .send(&tx2, &mut mine, |_| None)
                        .recv(&rx2, |r| r.ok())
                        .select()
                });
                sylvan::yield_now(); // it registers both arms and parks
                let sender = sylvan::spawn(move || tx.send(45).is_ok());
                for _ in 0..10 {
                    sylvan::yield_now();
                }
                let got = both.is_finished().then(|| both.join().unwrap());
                let sent = sender.is_finished().then(|| sender.join().unwrap());
                (alone, sent, got)
            }));
        });
        let (alone, sent, got) = done_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("round {round}: hung (the select never parked)"));
        assert_eq!(alone, "timed out", "round {round}");
        assert_eq!(sent, Some(true), "round {round}: the sender still waits");
        assert_eq!(got, Some(Ok(Some(45))), "round {round}");
    }
}

/// Its own put arm stays registered through that: a plain getter arriving
/// later takes the select's item.
#[test]
fn a_select_putting_and_getting_on_one_rendezvous_queue_serves_a_later_getter() {
    let (taken, fired) = on_hub(|| {
        let q: Queue<u8> = Queue::bounded(0);
        let q2 = q.clone();
        let both = sylvan::spawn(move || {
            let mut mine = Some(1u8);
            Select::<&str>::new()
                .put(
                    &q2,
                    &mut mine,
                    |r| if r.is_ok() { "put" } else { "put failed" },
                )
                .get(&q2, |_| "got")
                .select()
        });
        sylvan::yield_now(); // it registers both arms and parks
        let getter = sylvan::spawn(move || q.get());
        for _ in 0..10 {
            sylvan::yield_now();
        }
        let taken = getter.is_finished().then(|| getter.join().unwrap());
        let fired = both.is_finished().then(|| both.join().unwrap());
        (taken, fired)
    });
    assert_eq!(taken, Some(Ok(1)), "the getter took the select's item");
    assert_eq!(fired, Some(Ok("put")));
}
