//! The CSPRNG's draws and the seeded generator's replay.

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
