use super::*;

fn policy() -> FitnessPolicy {
    FitnessPolicy {
        drain_period: Duration::from_secs(30),
        hold_down_base: Duration::from_secs(10),
        hold_down_max: Duration::from_secs(80),
        stable_after: Duration::from_secs(600),
        drain_prepend: 3,
    }
}

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Steps (seconds since start, fit, operator drain) → expected state.
fn run(steps: &[(u64, bool, bool, Announce)]) -> Fitness {
    let t0 = Instant::now();
    let mut f = Fitness::new();
    for (i, (at, fit, drain, want)) in steps.iter().enumerate() {
        let got = f.update(&policy(), *fit, *drain, t0 + s(*at));
        assert_eq!(got, *want, "step {i} at {at}s: {f:?}");
    }
    f
}

use Announce::{Announce as A, Drain as D, Withdraw as W};

#[test]
fn announces_at_once_when_fit_and_not_before() {
    run(&[
        (0, false, false, W),
        (1, false, false, W),
        (2, true, false, A),
    ]);
}

#[test]
fn unfit_drains_then_withdraws_after_the_drain_period() {
    run(&[
        (0, true, false, A),
        (100, false, false, D),
        (129, false, false, D),
        (130, false, false, W),
    ]);
}

#[test]
fn recovery_waits_out_the_hold_down() {
    // First flap: 10 s hold-down from the moment it left Announce.
    run(&[
        (0, true, false, A),
        (100, false, false, D),
        (105, true, false, D),
        (110, true, false, A),
    ]);
}

#[test]
fn the_hold_down_doubles_with_each_flap_up_to_the_bound_and_resets_when_stable() {
    let t0 = Instant::now();
    let p = policy();
    let mut f = Fitness::new();
    let mut now = t0;
    f.update(&p, true, false, now);
    let mut holds = Vec::new();
    for _ in 0..6 {
        now += s(1);
        assert_eq!(f.update(&p, false, false, now), D);
        let hold = f.hold_until().unwrap() - now;
        holds.push(hold.as_secs());
        // Fit again: still held (draining, or withdrawn once the drain
        // period is over), and announced exactly when the hold-down ends.
        let held = f.update(&p, true, false, now + hold - s(1));
        assert_eq!(held, if hold > p.drain_period { W } else { D });
        now += hold;
        assert_eq!(f.update(&p, true, false, now), A);
    }
    assert_eq!(holds, [10, 20, 40, 80, 80, 80]);
    assert_eq!(f.flaps(), 6);
    // Stable for `stable_after`: flaps forgotten, the next hold-down is the base.
    assert_eq!(f.next_deadline(&p), Some(now + p.stable_after));
    now += p.stable_after;
    f.update(&p, true, false, now);
    assert_eq!(f.flaps(), 0);
    now += s(1);
    f.update(&p, false, false, now);
    assert_eq!(f.hold_until(), Some(now + s(10)));
}

#[test]
fn operator_drain_and_undrain_are_not_flaps() {
    let f = run(&[
        (0, true, false, A),
        (10, true, true, D),
        (39, true, true, D),
        (40, true, true, W),
        (41, true, false, A),
    ]);
    assert_eq!(f.flaps(), 0);
    // Undrain during the drain: back at once.
    run(&[
        (0, true, false, A),
        (10, true, true, D),
        (12, true, false, A),
    ]);
}

#[test]
fn an_unfit_node_stays_down_when_the_operator_undrains_it() {
    run(&[
        (0, true, false, A),
        (10, true, true, D),
        (40, false, true, W),
        (50, false, false, W),
        (51, true, false, A),
    ]);
}

#[test]
fn deadlines_are_the_drain_end_and_the_hold_down() {
    let t0 = Instant::now();
    let p = policy();
    let mut f = Fitness::new();
    f.update(&p, true, false, t0);
    assert_eq!(f.next_deadline(&p), None);
    f.update(&p, false, false, t0 + s(5));
    assert_eq!(f.next_deadline(&p), Some(t0 + s(15)));
    f.update(&p, false, false, t0 + s(35));
    assert_eq!(f.state(), W);
    assert_eq!(f.next_deadline(&p), Some(t0 + s(15)));
}
