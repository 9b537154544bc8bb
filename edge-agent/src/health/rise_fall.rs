//! The pure part of health checking: rise/fall counting over rounds of
//! probe results, the administrative state, and the effective health that
//! follows from both. No clocks, no I/O: the caller passes the time of each
//! result in, so tests drive it with simulated time.
//!
//! A service is [`Measured::Down`] until it has been seen healthy `rise`
//! rounds in a row (or starts in the state its configuration names).
//! Exactly `fall` consecutive failed rounds move it from up to down, and
//! exactly `rise` consecutive successful rounds move it back. While a streak
//! toward a change is running, a change is *suspected*, and the runtime
//! probes at its fast interval.

use std::{fmt, time::Instant};

/// What the probes say about a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measured {
    /// Its last `rise` rounds (at least) succeeded, and fewer than `fall`
    /// have failed since.
    Up,
    /// Not seen healthy yet, or its last `fall` rounds failed.
    Down,
}

impl fmt::Display for Measured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Measured::Up => "up",
            Measured::Down => "down",
        })
    }
}

/// What an operator decided about a service, independently of the probes
/// (which keep running in every state, so the measured state stays known).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdminState {
    /// Follow the probes.
    #[default]
    Auto,
    /// Out of service whatever the probes say.
    Down,
    /// Keep serving existing flows while healthy, attract no new traffic.
    Drain,
}

impl fmt::Display for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdminState::Auto => "auto",
            AdminState::Down => "down",
            AdminState::Drain => "drain",
        })
    }
}

/// The health the rest of the node acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Effective {
    /// Healthy: serve it and attract new traffic to it.
    Up,
    /// Healthy, but being drained: existing flows may stay, new ones
    /// should go elsewhere. The control logic decides what that means for
    /// the data plane and the overlay.
    Draining,
    /// Not to be used: measured down, or administratively down.
    Down,
}

impl fmt::Display for Effective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effective::Up => "up",
            Effective::Draining => "draining",
            Effective::Down => "down",
        })
    }
}

/// The effective health of a service measured `measured` and put in
/// `admin` by an operator. Draining needs a healthy service: a drained
/// service that fails its probes is down.
pub fn effective(measured: Measured, admin: AdminState) -> Effective {
    match (admin, measured) {
        (AdminState::Down, _) | (_, Measured::Down) => Effective::Down,
        (AdminState::Drain, Measured::Up) => Effective::Draining,
        (AdminState::Auto, Measured::Up) => Effective::Up,
    }
}

/// A change of the measured state, decided by the result recorded at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: Measured,
    /// The state after.
    pub to: Measured,
    /// When the deciding result came in.
    pub at: Instant,
}

/// Rise/fall counting for one service (and for the overlay's private
/// paths, through [`count`](RiseFall::count)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    state: Measured,
    streak: u32,
    last_change: Option<Instant>,
}

impl RiseFall {
    /// Starts in `initial` with no streak. `rise` and `fall` below 1 count
    /// as 1 (configurations are validated before they get here).
    pub fn new(rise: u32, fall: u32, initial: Measured) -> RiseFall {
        RiseFall {
            rise: rise.max(1),
            fall: fall.max(1),
            state: initial,
            streak: 0,
            last_change: None,
        }
    }

    /// Records the result of one round at `now`; returns the transition it
    /// decides, if any. A result that agrees with the current state resets
    /// the streak toward a change.
    pub fn record(&mut self, ok: bool, now: Instant) -> Option<Transition> {
        let from = self.state;
        let to = self.count(ok)?;
        self.last_change = Some(now);
        Some(Transition { from, to, at: now })
    }

    /// Counts the result of one round without a clock; returns the new
    /// state when it changed. [`record`](Self::record) is this and the time
    /// of the change; a caller that keeps no history (the overlay's
    /// private-path monitor) uses it alone.
    pub fn count(&mut self, ok: bool) -> Option<Measured> {
        let (toward, needed) = match (self.state, ok) {
            (Measured::Up, true) | (Measured::Down, false) => {
                self.streak = 0;
                return None;
            }
            (Measured::Up, false) => (Measured::Down, self.fall),
            (Measured::Down, true) => (Measured::Up, self.rise),
        };
        self.streak = self.streak.saturating_add(1);
        if self.streak < needed {
            return None;
        }
        self.state = toward;
        self.streak = 0;
        Some(toward)
    }

    /// The measured state.
    pub fn state(&self) -> Measured {
        self.state
    }

    /// How many rounds in a row disagreed with the current state (0 after
    /// a change, and after a round that agreed).
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// How many more disagreeing rounds would change the state.
    pub fn remaining(&self) -> u32 {
        let needed = match self.state {
            Measured::Up => self.fall,
            Measured::Down => self.rise,
        };
        needed - self.streak
    }

    /// Whether a change is suspected: a streak toward one is running.
    pub fn suspected(&self) -> bool {
        self.streak > 0
    }

    /// When the state last changed (`None`: never).
    pub fn last_change(&self) -> Option<Instant> {
        self.last_change
    }
}

#[cfg(test)]
#[path = "rise_fall_tests.rs"]
mod tests;
