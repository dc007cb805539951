//! A small seedable random number generator (SplitMix64) for toxicity
//! rolls, latency jitter and slice sizes. Not for cryptography.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator seeded from the process's hash randomness.
    pub(super) fn from_entropy() -> Rng {
        Rng(RandomState::new().hash_one(std::time::SystemTime::now()))
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub(super) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Whether an event of probability `p` happens: never for 0, always
    /// for 1.
    pub(super) fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    /// An independent generator derived from this one.
    pub(super) fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn chance_bounds_and_range() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            assert!(!r.chance(0.0));
            assert!(r.chance(1.0));
            assert!(r.below(7) < 7);
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn seeded_generators_repeat() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
    }
}
