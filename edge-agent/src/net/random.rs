//! The agent's one random source.
//!
//! Everything an attacker could gain from guessing (DNS query IDs, the
//! seeds of timer jitter an off-path attacker could use to predict retries)
//! comes from the kernel's CSPRNG (`getrandom(2)`). Pure protocol cores
//! never call it themselves: they take a seed and draw from a [`Seeded`]
//! generator, so that tests replay them exactly; their executors seed
//! them from here.

/// Eight bytes from the kernel's CSPRNG.
pub fn u64() -> u64 {
    let mut bytes = [0u8; 8];
    // getrandom(2) blocks only until the pool is initialised at boot and
    // fails only on kernels older than 3.17, which cannot run the agent.
    getrandom::fill(&mut bytes)
        .expect("getrandom(2) failed: the kernel's random source is unavailable");
    u64::from_ne_bytes(bytes)
}

/// Two bytes from the kernel's CSPRNG (a DNS query ID).
pub fn u16() -> u16 {
    (u64() >> 48) as u16
}

/// A number in `[0, 1)` from the kernel's CSPRNG.
pub fn unit() -> f64 {
    to_unit(u64())
}

fn to_unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A small deterministic generator (SplitMix64) for the pure cores'
/// jitter: the same seed gives the same sequence. Not for anything secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seeded(u64);

impl Seeded {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Seeded(seed)
    }

    /// A generator seeded from the CSPRNG.
    pub fn from_entropy() -> Self {
        Seeded(u64())
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        to_unit(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csprng_gives_different_values_in_range() {
        let ids: std::collections::BTreeSet<u16> = (0..64).map(|_| u16()).collect();
        assert!(
            ids.len() > 56,
            "64 draws gave only {} distinct IDs",
            ids.len()
        );
        for _ in 0..1000 {
            let x = unit();
            assert!((0.0..1.0).contains(&x), "{x}");
        }
    }

    #[test]
    fn a_seeded_generator_replays_and_spreads() {
        let mut a = Seeded::new(7);
        let mut b = Seeded::new(7);
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Seeded::new(8).next_u64(), xs[0]);
        // Zero is a seed like any other.
        let mut zero = Seeded::new(0);
        assert_ne!(zero.next_u64(), zero.next_u64());
        let draws: Vec<f64> = (0..1000).map(|_| a.unit()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        let low = draws.iter().filter(|x| **x < 0.5).count();
        assert!((400..600).contains(&low), "{low} of 1000 below 0.5");
    }
}
