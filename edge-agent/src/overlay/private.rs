//! Private transport toward a peer: whether the path to its private
//! underlay address works. The runtime probes it (a TCP connection to the
//! peer's private liveness listener on the control port) and feeds the
//! results to a [`PathMonitor`]: `rise` successes in a row make the path
//! usable, `fall` failures in a row make traffic fall back to the
//! Internet underlay. The monitor is pure; probing is in the runtime.

/// Rise/fall over probe results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathMonitor {
    rise: u32,
    fall: u32,
    up: bool,
    streak: u32,
}

impl PathMonitor {
    /// A monitor that starts down (the private path is never used before it
    /// has been seen to work).
    pub fn new(rise: u32, fall: u32) -> Self {
        PathMonitor {
            rise: rise.max(1),
            fall: fall.max(1),
            up: false,
            streak: 0,
        }
    }

    /// Whether the path is usable.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// One probe result; returns the new state when it changed.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        if success == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if success { self.rise } else { self.fall };
        if self.streak < needed {
            return None;
        }
        self.streak = 0;
        self.up = success;
        Some(success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rises_and_falls_after_streaks_only() {
        let mut m = PathMonitor::new(2, 3);
        assert!(!m.is_up());
        assert_eq!(m.record(true), None);
        assert_eq!(m.record(false), None);
        assert_eq!(m.record(true), None);
        assert_eq!(m.record(true), Some(true));
        assert_eq!(m.record(false), None);
        assert_eq!(m.record(false), None);
        assert_eq!(m.record(true), None);
        assert_eq!(m.record(false), None);
        assert_eq!(m.record(false), None);
        assert_eq!(m.record(false), Some(false));
        assert!(!m.is_up());
    }
}
