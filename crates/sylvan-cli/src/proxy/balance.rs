//! Load-balancing policies: which upstream a new connection goes to.
//!
//! A [`Balancer`] is hub-local (it holds a round-robin cursor and a random
//! generator, no lock); the loads it compares are the upstreams' active
//! connection counts, which every hub shares through atomics, so
//! `least-conn` and `p2c` see the whole process's load, not one hub's.

use std::fmt;

/// The balancing policy (`--balance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Balance {
    /// Each upstream in turn, skipping those that are down or ejected.
    RoundRobin,
    /// The upstream with the fewest active connections; ties go round
    /// robin.
    LeastConn,
    /// Power of two choices: the less loaded of two random upstreams.
    ///
    /// Mitzenmacher's result: nearly least-conn's balance, without
    /// herding every new connection onto the same upstream when several
    /// proxies (or hubs) act on the same, slightly stale, counts.
    P2c,
}

impl Balance {
    /// The flag's spelling: `round-robin`, `least-conn`, `p2c`.
    pub fn name(self) -> &'static str {
        match self {
            Balance::RoundRobin => "round-robin",
            Balance::LeastConn => "least-conn",
            Balance::P2c => "p2c",
        }
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One hub's balancer: a policy plus its cursor and random generator.
#[derive(Debug)]
pub struct Balancer {
    policy: Balance,
    next: usize,
    rng: fastrand::Rng,
}

impl Balancer {
    /// A balancer for `policy`, seeded from the OS.
    pub fn new(policy: Balance) -> Balancer {
        Balancer::with_rng(policy, fastrand::Rng::new())
    }

    /// A balancer with a given random generator (seeded in tests).
    pub fn with_rng(policy: Balance, rng: fastrand::Rng) -> Balancer {
        Balancer {
            policy,
            next: 0,
            rng,
        }
    }

    /// Picks one of the upstreams `0..n` for which `eligible` holds, using
    /// `load` (active connections) where the policy looks at load; `None`
    /// when none is eligible.
    pub fn pick(
        &mut self,
        n: usize,
        eligible: impl Fn(usize) -> bool,
        load: impl Fn(usize) -> usize,
    ) -> Option<usize> {
        if n == 0 {
            return None;
        }
        match self.policy {
            Balance::RoundRobin => {
                let start = self.next % n;
                let i = (0..n).map(|k| (start + k) % n).find(|&i| eligible(i))?;
                self.next = i + 1;
                Some(i)
            }
            Balance::LeastConn => {
                // Scan from a rotating start so ties spread round robin.
                let start = self.next % n;
                self.next = self.next.wrapping_add(1);
                (0..n)
                    .map(|k| (start + k) % n)
                    .filter(|&i| eligible(i))
                    .min_by_key(|&i| load(i))
            }
            Balance::P2c => {
                let m = (0..n).filter(|&i| eligible(i)).count();
                let nth = |k: usize| (0..n).filter(|&i| eligible(i)).nth(k);
                match m {
                    0 => None,
                    1 => nth(0),
                    _ => {
                        let a = self.rng.usize(..m);
                        let mut b = self.rng.usize(..m - 1);
                        if b >= a {
                            b += 1;
                        }
                        let (a, b) = (nth(a)?, nth(b)?);
                        Some(if load(b) < load(a) { b } else { a })
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Balance, Balancer};

    fn balancer(p: Balance) -> Balancer {
        Balancer::with_rng(p, fastrand::Rng::with_seed(7))
    }

    #[test]
    fn round_robin_cycles_and_skips_ineligible() {
        let mut b = balancer(Balance::RoundRobin);
        let picks: Vec<_> = (0..6)
            .map(|_| b.pick(3, |_| true, |_| 0).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        let picks: Vec<_> = (0..4)
            .map(|_| b.pick(3, |i| i != 1, |_| 0).unwrap())
            .collect();
        assert_eq!(picks, [0, 2, 0, 2]);
        assert_eq!(b.pick(3, |_| false, |_| 0), None);
    }

    #[test]
    fn least_conn_picks_the_least_loaded() {
        let mut b = balancer(Balance::LeastConn);
        let loads = [5, 1, 3];
        for _ in 0..10 {
            assert_eq!(b.pick(3, |_| true, |i| loads[i]), Some(1));
        }
        // The least loaded is ineligible: the next least loaded.
        assert_eq!(b.pick(3, |i| i != 1, |i| loads[i]), Some(2));
    }

    #[test]
    fn least_conn_spreads_ties() {
        let mut b = balancer(Balance::LeastConn);
        let mut hits = [0; 3];
        for _ in 0..30 {
            hits[b.pick(3, |_| true, |_| 0).unwrap()] += 1;
        }
        assert_eq!(hits, [10, 10, 10]);
    }

    #[test]
    fn least_conn_evens_out_a_growing_load() {
        // Each pick adds a connection to the chosen upstream, which starts
        // with a head start of 6: the others catch up first.
        let mut b = balancer(Balance::LeastConn);
        let mut loads = [6, 0, 0];
        for _ in 0..12 {
            let i = b.pick(3, |_| true, |i| loads[i]).unwrap();
            loads[i] += 1;
        }
        assert_eq!(loads, [6, 6, 6]);
    }

    #[test]
    fn p2c_never_picks_the_single_most_loaded() {
        let mut b = balancer(Balance::P2c);
        let loads = [100, 0, 3];
        let mut hits = [0; 3];
        for _ in 0..1000 {
            hits[b.pick(3, |_| true, |i| loads[i]).unwrap()] += 1;
        }
        assert_eq!(hits[0], 0, "{hits:?}");
        // 1 wins every pair it is in (2 of 3 pairs), 2 wins the rest.
        assert!(hits[1] > 600 && hits[2] > 250, "{hits:?}");
    }

    #[test]
    fn p2c_with_two_always_picks_the_less_loaded() {
        let mut b = balancer(Balance::P2c);
        let loads = [4, 9];
        for _ in 0..100 {
            assert_eq!(b.pick(2, |_| true, |i| loads[i]), Some(0));
        }
        assert_eq!(b.pick(2, |i| i == 1, |i| loads[i]), Some(1));
        assert_eq!(b.pick(2, |_| false, |i| loads[i]), None);
    }
}
