//! `GreenPile`: results in spawn order; a timeout while iterating loses no
//! result (Eventlet issue #91); sticky cancellation ends loops; panics come
//! out in place.

use std::time::Duration;

use proptest::prelude::*;
use sylvan::{Cancelled, GreenPile, GreenPool, JoinError};

#[test]
fn results_come_in_spawn_order() {
    sylvan::time::pause();
    let mut pile = GreenPile::new(3);
    for d in [5u64, 1, 4, 2, 3] {
        pile.spawn(move || {
            sylvan::sleep(Duration::from_secs(d)).unwrap();
            d
        })
        .unwrap();
    }
    assert_eq!(pile.len(), 5);
    let got: Vec<u64> = pile.by_ref().map(Result::unwrap).collect();
    assert_eq!(got, vec![5, 1, 4, 2, 3]);
    assert!(pile.is_empty());
    assert!(pile.next().is_none());
}

/// Eventlet issue #91: `next()` under a timeout popped the green thread
/// first, so a timeout lost its result.
#[test]
fn a_timeout_while_iterating_loses_no_result() {
    sylvan::time::pause();
    let mut pile = GreenPile::new(10);
    for i in 0..4u64 {
        pile.spawn(move || {
            sylvan::sleep(Duration::from_secs(10 * (i + 1))).unwrap();
            i
        })
        .unwrap();
    }
    let r = sylvan::timeout(Duration::from_secs(5), || pile.next());
    assert!(r.is_err(), "timed out before the first result");
    assert_eq!(pile.len(), 4, "nothing was taken");
    let mut got = Vec::new();
    while !pile.is_empty() {
        if let Ok(Some(r)) = sylvan::timeout(Duration::from_secs(3), || pile.next()) {
            got.push(r.unwrap());
        }
    }
    assert_eq!(got, vec![0, 1, 2, 3]);
}

#[test]
fn a_killed_iterator_yields_the_error_then_ends() {
    sylvan::time::pause();
    let g = sylvan::spawn(|| {
        let mut pile = GreenPile::new(2);
        pile.spawn(|| sylvan::sleep(Duration::from_secs(60)).map(|()| 1))
            .unwrap();
        let mut seen = Vec::new();
        // A `for` loop over a pile in a killed green thread ends.
        for r in &mut pile {
            seen.push(r.map_err(|e| matches!(e, JoinError::Cancelled(Cancelled::Killed))));
        }
        (seen, pile)
    });
    sylvan::yield_now();
    g.kill();
    let (seen, mut pile) = g.join().unwrap();
    assert_eq!(seen, vec![Err(true)]);
    // The result is still there for a live caller.
    assert_eq!(pile.next().unwrap().unwrap(), Ok(1));
}

#[test]
fn panics_come_out_in_place() {
    let mut pile = GreenPile::new(4);
    pile.spawn(|| 1).unwrap();
    pile.spawn(|| panic!("second")).unwrap();
    pile.spawn(|| 3).unwrap();
    let got: Vec<_> = pile
        .map(|r| r.map_err(|e| e.panic_message().map(str::to_owned)))
        .collect();
    assert_eq!(got, vec![Ok(1), Err(Some("second".into())), Ok(3)]);
}

#[test]
fn a_pile_shares_its_pool_and_waits_for_room() {
    let pool = GreenPool::new(1);
    let mut pile = GreenPile::with_pool(&pool);
    pile.spawn(|| "a").unwrap();
    assert_eq!(pool.free(), 0);
    // The second spawn waits until "a" finishes.
    pile.spawn(|| "b").unwrap();
    assert_eq!(pile.map(Result::unwrap).collect::<Vec<_>>(), vec!["a", "b"]);
    assert_eq!(pool.running(), 0);
}

#[test]
fn a_member_of_a_full_pool_fills_a_pile_inline() {
    let pool = GreenPool::new(1);
    let p = pool.clone();
    let g = pool
        .spawn(move || {
            let mut pile = GreenPile::with_pool(&p);
            for i in 0..3 {
                pile.spawn(move || i * 2).unwrap();
            }
            pile.map(Result::unwrap).collect::<Vec<_>>()
        })
        .unwrap();
    assert_eq!(g.join().unwrap(), vec![0, 2, 4]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Jobs of random (virtual) durations, iterated under random
    /// deadlines: every result arrives exactly once, in spawn order.
    #[test]
    fn pile_under_random_timeouts(
        size in 1usize..4,
        durations in proptest::collection::vec(0u64..5, 1..12),
        timeouts in proptest::collection::vec(1u64..4, 1..8),
    ) {
        sylvan::time::pause();
        let mut pile = GreenPile::new(size);
        for (i, d) in durations.iter().enumerate() {
            let d = *d;
            pile.spawn(move || {
                sylvan::sleep(Duration::from_secs(d)).unwrap();
                i
            })
            .unwrap();
        }
        let mut got = Vec::new();
        let mut k = 0;
        while !pile.is_empty() {
            let t = Duration::from_secs(timeouts[k % timeouts.len()]);
            k += 1;
            match sylvan::timeout(t, || pile.next()) {
                Ok(Some(r)) => got.push(r.unwrap()),
                Ok(None) => prop_assert!(false, "ended with results pending"),
                Err(_) => {}
            }
        }
        prop_assert_eq!(got, (0..durations.len()).collect::<Vec<_>>());
    }
}
