//! Node fitness for the Internet announcement, as a pure state machine
//! with time passed in. Announce while fit; when not (or when the operator
//! drains the node), drain first (GRACEFUL_SHUTDOWN and AS-path prepend,
//! so that upstreams move traffic away gently), then withdraw after the
//! drain period; announce again only after a hold-down that doubles with
//! every flap, up to a bound, and resets once the node has stayed
//! announced for a while. So health noise never becomes Internet churn.

use std::time::{Duration, Instant};

/// What the upstream sessions announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Announce {
    /// Announce the anycast prefixes normally.
    Announce,
    /// Announce them with GRACEFUL_SHUTDOWN and a prepended AS path.
    Drain,
    /// Withdraw them.
    Withdraw,
}

/// The fitness policy's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FitnessPolicy {
    /// How long to drain before withdrawing (default 30 s).
    pub drain_period: Duration,
    /// The hold-down after the first flap (default 10 s); it doubles with
    /// each further flap.
    pub hold_down_base: Duration,
    /// The longest hold-down (default 10 min).
    pub hold_down_max: Duration,
    /// After this long announced without a flap, flaps are forgotten
    /// (default 10 min).
    pub stable_after: Duration,
    /// AS-path prepends while draining (default 3).
    pub drain_prepend: u8,
}

impl Default for FitnessPolicy {
    fn default() -> Self {
        FitnessPolicy {
            drain_period: Duration::from_secs(30),
            hold_down_base: Duration::from_secs(10),
            hold_down_max: Duration::from_secs(600),
            stable_after: Duration::from_secs(600),
            drain_prepend: 3,
        }
    }
}

/// The fitness state of the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fitness {
    state: Announce,
    /// When a drain turns into a withdrawal.
    drain_until: Option<Instant>,
    /// Not announced again before this.
    hold_until: Option<Instant>,
    /// Flaps not yet forgotten.
    flaps: u32,
    /// Since when the node is announced.
    announced_since: Option<Instant>,
    /// Whether the current drain is the operator's.
    operator: bool,
}

impl Default for Fitness {
    fn default() -> Self {
        Self::new()
    }
}

impl Fitness {
    /// A node that has not announced anything yet: it announces as soon as
    /// it is fit (no hold-down before the first announcement).
    pub fn new() -> Self {
        Fitness {
            state: Announce::Withdraw,
            drain_until: None,
            hold_until: None,
            flaps: 0,
            announced_since: None,
            operator: false,
        }
    }

    /// The current state.
    pub fn state(&self) -> Announce {
        self.state
    }

    /// Flaps counted toward the hold-down.
    pub fn flaps(&self) -> u32 {
        self.flaps
    }

    /// Until when a re-announcement is held down, if it is.
    pub fn hold_until(&self) -> Option<Instant> {
        self.hold_until
    }

    /// When [`Fitness::update`] must run again even if nothing else
    /// changes (a drain ending, a hold-down expiring, flaps to forget).
    pub fn next_deadline(&self, policy: &FitnessPolicy) -> Option<Instant> {
        match self.state {
            Announce::Drain => self.drain_until.into_iter().chain(self.hold_until).min(),
            Announce::Withdraw => self.hold_until,
            Announce::Announce => {
                (self.flaps > 0).then(|| self.announced_since.map(|t| t + policy.stable_after))?
            }
        }
    }

    /// One step: `fit` is whether the node can serve (see the control
    /// function), `operator_drain` whether the operator drained it.
    pub fn update(
        &mut self,
        policy: &FitnessPolicy,
        fit: bool,
        operator_drain: bool,
        now: Instant,
    ) -> Announce {
        match self.state {
            Announce::Announce => {
                if operator_drain {
                    self.start_drain(policy, now, true);
                } else if !fit {
                    self.flap(policy, now);
                    self.start_drain(policy, now, false);
                } else if self.flaps > 0
                    && self
                        .announced_since
                        .is_some_and(|t| now.duration_since(t) >= policy.stable_after)
                {
                    self.flaps = 0;
                }
            }
            Announce::Drain | Announce::Withdraw => {
                if self.state == Announce::Drain && self.drain_until.is_some_and(|t| now >= t) {
                    self.state = Announce::Withdraw;
                    self.drain_until = None;
                }
                let held = self.hold_until.is_some_and(|t| now < t);
                if fit && !operator_drain {
                    // The operator's undrain is not a flap: no hold-down.
                    if self.operator || !held {
                        self.state = Announce::Announce;
                        self.announced_since = Some(now);
                        self.drain_until = None;
                        self.operator = false;
                    }
                } else if operator_drain && !self.operator && self.state == Announce::Drain {
                    // Already draining for health: now the operator's too.
                    self.operator = true;
                }
            }
        }
        self.state
    }

    fn start_drain(&mut self, policy: &FitnessPolicy, now: Instant, operator: bool) {
        self.state = Announce::Drain;
        self.drain_until = Some(now + policy.drain_period);
        self.announced_since = None;
        self.operator = operator;
    }

    fn flap(&mut self, policy: &FitnessPolicy, now: Instant) {
        self.flaps = self.flaps.saturating_add(1);
        let doublings = self.flaps.saturating_sub(1).min(30);
        let hold = policy
            .hold_down_base
            .saturating_mul(1 << doublings)
            .min(policy.hold_down_max);
        self.hold_until = Some(now + hold);
    }
}

#[cfg(test)]
#[path = "fitness_tests.rs"]
mod tests;
