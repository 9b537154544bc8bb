//! Rise/fall counting with simulated time, and the effective state.

use std::time::{Duration, Instant};

use super::*;

/// One step: the round's result, then what must hold after it.
struct Step {
    ok: bool,
    state: Measured,
    streak: u32,
    changed: bool,
}

const fn step(ok: bool, state: Measured, streak: u32, changed: bool) -> Step {
    Step {
        ok,
        state,
        streak,
        changed,
    }
}

use Measured::{Down, Up};

/// Runs `steps` one second apart from `initial`, checking each.
fn run(name: &str, rise: u32, fall: u32, initial: Measured, steps: &[Step]) {
    let start = Instant::now();
    let mut rf = RiseFall::new(rise, fall, initial);
    let mut state = initial;
    for (n, s) in steps.iter().enumerate() {
        let now = start + Duration::from_secs(n as u64 + 1);
        let transition = rf.record(s.ok, now);
        let what = format!("{name}: step {n} ({})", if s.ok { "ok" } else { "fail" });
        assert_eq!(rf.state(), s.state, "{what}: state");
        assert_eq!(rf.streak(), s.streak, "{what}: streak");
        assert_eq!(rf.suspected(), s.streak > 0, "{what}: suspicion");
        assert_eq!(transition.is_some(), s.changed, "{what}: transition");
        if let Some(t) = transition {
            assert_eq!((t.from, t.to, t.at), (state, s.state, now), "{what}");
            assert_eq!(rf.last_change(), Some(now), "{what}: last change");
        }
        state = s.state;
    }
}

#[test]
fn starts_down_and_rises_after_exactly_rise_successes() {
    run(
        "rise 2",
        2,
        3,
        Down,
        &[step(true, Down, 1, false), step(true, Up, 0, true)],
    );
    run(
        "rise 1",
        1,
        3,
        Down,
        &[step(false, Down, 0, false), step(true, Up, 0, true)],
    );
    run(
        "rise 4",
        4,
        1,
        Down,
        &[
            step(true, Down, 1, false),
            step(true, Down, 2, false),
            step(true, Down, 3, false),
            step(true, Up, 0, true),
            step(true, Up, 0, false),
        ],
    );
}

#[test]
fn falls_after_exactly_fall_failures() {
    run(
        "fall 3",
        2,
        3,
        Up,
        &[
            step(true, Up, 0, false),
            step(false, Up, 1, false),
            step(false, Up, 2, false),
            step(false, Down, 0, true),
            step(false, Down, 0, false),
        ],
    );
    run("fall 1", 2, 1, Up, &[step(false, Down, 0, true)]);
}

#[test]
fn a_disagreeing_round_resets_the_streak() {
    run(
        "failures interrupted by a success",
        2,
        3,
        Up,
        &[
            step(false, Up, 1, false),
            step(false, Up, 2, false),
            step(true, Up, 0, false),
            step(false, Up, 1, false),
            step(false, Up, 2, false),
            step(false, Down, 0, true),
        ],
    );
    run(
        "successes interrupted by a failure",
        3,
        2,
        Down,
        &[
            step(true, Down, 1, false),
            step(true, Down, 2, false),
            step(false, Down, 0, false),
            step(true, Down, 1, false),
            step(true, Down, 2, false),
            step(true, Up, 0, true),
        ],
    );
}

#[test]
fn flapping_never_changes_state_with_counts_above_one() {
    let steps: Vec<Step> = (0..10)
        .map(|n| {
            let ok = n % 2 == 0;
            step(ok, Down, u32::from(ok), false)
        })
        .collect();
    run("flapping", 2, 2, Down, &steps);
}

#[test]
fn full_cycle_up_down_up() {
    run(
        "cycle",
        2,
        3,
        Down,
        &[
            step(true, Down, 1, false),
            step(true, Up, 0, true),
            step(false, Up, 1, false),
            step(false, Up, 2, false),
            step(false, Down, 0, true),
            step(true, Down, 1, false),
            step(true, Up, 0, true),
        ],
    );
}

#[test]
fn remaining_counts_down_to_the_change() {
    let now = Instant::now();
    let mut rf = RiseFall::new(2, 3, Up);
    assert_eq!(rf.remaining(), 3);
    rf.record(false, now);
    assert_eq!(rf.remaining(), 2);
    rf.record(false, now);
    assert_eq!(rf.remaining(), 1);
    rf.record(false, now);
    assert_eq!((rf.state(), rf.remaining()), (Down, 2));
}

#[test]
fn zero_counts_behave_as_one() {
    let mut rf = RiseFall::new(0, 0, Down);
    let now = Instant::now();
    assert!(rf.record(true, now).is_some());
    assert!(rf.record(false, now).is_some());
}

#[test]
fn no_change_before_the_first_transition() {
    let rf = RiseFall::new(2, 3, Down);
    assert_eq!(rf.last_change(), None);
    assert!(!rf.suspected());
}

#[test]
fn effective_state_of_every_combination() {
    let table = [
        (Up, AdminState::Auto, Effective::Up),
        (Down, AdminState::Auto, Effective::Down),
        (Up, AdminState::Drain, Effective::Draining),
        (Down, AdminState::Drain, Effective::Down),
        (Up, AdminState::Down, Effective::Down),
        (Down, AdminState::Down, Effective::Down),
    ];
    for (measured, admin, want) in table {
        assert_eq!(
            effective(measured, admin),
            want,
            "{measured} + admin {admin}"
        );
    }
}

#[test]
fn states_print_in_lower_case() {
    assert_eq!(Effective::Draining.to_string(), "draining");
    assert_eq!(AdminState::Drain.to_string(), "drain");
    assert_eq!(Measured::Up.to_string(), "up");
}
