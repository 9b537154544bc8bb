//! The agent's one random source.
//!
//! Everything an attacker could gain from guessing (DNS query IDs, the
//! seeds of timer jitter an off-path attacker could use to predict retries)
//! comes from the kernel's CSPRNG (`getrandom(2)`). Pure protocol cores
//! never call it themselves: they take a seed and draw from a [`Seeded`]
//! generator, so that tests replay them exactly; their executors seed
//! them from here.

/// Fills `bytes` from the kernel's CSPRNG.
pub fn fill(bytes: &mut [u8]) {
    // getrandom(2) blocks only until the pool is initialised at boot and
    // fails only on kernels older than 3.17, which cannot run the agent.
    getrandom::fill(bytes).expect("getrandom(2) failed: the kernel's random source is unavailable");
}

/// Eight bytes from the kernel's CSPRNG.
pub fn u64() -> u64 {
    let mut bytes = [0u8; 8];
    fill(&mut bytes);
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
#[path = "random_tests.rs"]
mod tests;
