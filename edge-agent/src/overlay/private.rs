//! Private transport toward a peer: whether the path to its private
//! underlay address works. The runtime probes it (a TCP connection to the
//! peer's private liveness listener on the control port) and feeds the
//! results to a [`PathMonitor`]: `rise` successes in a row make the path
//! usable, `fall` failures in a row make traffic fall back to the
//! Internet underlay. The monitor is pure (the health checks' rise/fall
//! counter, [`RiseFall`]); probing is in the runtime.

use crate::health::rise_fall::{Measured, RiseFall};

/// Rise/fall over probe results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathMonitor(RiseFall);

impl PathMonitor {
    /// A monitor that starts down (the private path is never used before it
    /// has been seen to work). `rise` and `fall` below 1 count as 1.
    pub fn new(rise: u32, fall: u32) -> Self {
        PathMonitor(RiseFall::new(rise, fall, Measured::Down))
    }

    /// Whether the path is usable.
    pub fn is_up(&self) -> bool {
        self.0.state() == Measured::Up
    }

    /// One probe result; returns the new state when it changed.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        self.0.count(success).map(|state| state == Measured::Up)
    }

    /// BFD found the path down: down at once, as if `fall` probes had
    /// failed in a row; back up only through `rise` probes. Returns the
    /// new state when it changed.
    pub fn lost(&mut self) -> Option<bool> {
        let mut changed = None;
        while self.is_up() {
            changed = self.record(false).or(changed);
        }
        changed
    }
}

#[cfg(test)]
#[path = "private_tests.rs"]
mod tests;
