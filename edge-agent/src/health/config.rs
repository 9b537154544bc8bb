//! The timing of one service's health checks ([`HealthConfig`]): how often
//! it is probed, how long a probe may take, what counts as slow, how many
//! rounds decide a change, and how much the waits are spread out; and the
//! checks that reject a configuration that cannot work ([`ConfigError`]).

use std::time::Duration;

use super::{outcome::human, rise_fall::Measured};

/// The largest jitter accepted, in percent of a wait.
pub const MAX_JITTER_PERCENT: u8 = 50;

/// The longest interval, timeout or threshold accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// How one service is probed and judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthConfig {
    /// The wait between rounds while nothing is suspected (default 2 s).
    /// A round starts only after the previous one finished.
    pub interval: Duration,
    /// The wait between rounds while a change is suspected (default
    /// 500 ms); at most `interval`.
    pub fast_interval: Duration,
    /// How long one probe may take before it counts as failed (default
    /// 1 s); at least `slow_threshold`.
    pub timeout: Duration,
    /// A probe that succeeds but takes longer than this counts as failed
    /// (default 1 s).
    pub slow_threshold: Duration,
    /// Consecutive successful rounds that bring a down service up
    /// (default 2, at least 1).
    pub rise: u32,
    /// Consecutive failed rounds that take an up service down (default 3,
    /// at least 1).
    pub fall: u32,
    /// Each wait is spread randomly by up to this many percent either way
    /// (default 10, at most [`MAX_JITTER_PERCENT`]).
    pub jitter_percent: u8,
    /// Whether the first round waits a random fraction of `interval`, so
    /// that services do not probe in lockstep (default yes).
    pub stagger: bool,
    /// The measured state before the first round (default down: nothing
    /// is advertised before it has been seen healthy `rise` times).
    pub initial: Measured,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: Duration::from_secs(2),
            fast_interval: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
            slow_threshold: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            jitter_percent: 10,
            stagger: true,
            initial: Measured::Down,
        }
    }
}

/// Why a [`HealthConfig`] cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A zero interval would probe in a busy loop.
    #[error("the probe interval must be longer than zero")]
    ZeroInterval,
    /// A zero fast interval would probe in a busy loop.
    #[error("the fast probe interval must be longer than zero")]
    ZeroFastInterval,
    /// The fast interval is the longer one.
    #[error(
        "the fast probe interval ({}) is longer than the interval ({}): it is used while a change is suspected, so it must be at most the interval",
        human(*fast), human(*interval)
    )]
    FastIntervalTooLong {
        /// The fast interval given.
        fast: Duration,
        /// The interval given.
        interval: Duration,
    },
    /// A zero timeout fails every probe.
    #[error("the probe timeout must be longer than zero")]
    ZeroTimeout,
    /// A zero slow threshold fails every probe.
    #[error("the slow-response threshold must be longer than zero")]
    ZeroSlowThreshold,
    /// The timeout cuts probes off before they could be judged slow.
    #[error(
        "the probe timeout ({}) is shorter than the slow-response threshold ({}): make the timeout at least the threshold, or a slow answer would be cut off as a timeout before it could be judged",
        human(*timeout), human(*slow)
    )]
    TimeoutBelowSlowThreshold {
        /// The timeout given.
        timeout: Duration,
        /// The slow threshold given.
        slow: Duration,
    },
    /// `rise` is 0.
    #[error("rise must be at least 1 (the number of successful rounds that bring a service up)")]
    ZeroRise,
    /// `fall` is 0.
    #[error("fall must be at least 1 (the number of failed rounds that take a service down)")]
    ZeroFall,
    /// A duration is absurdly long.
    #[error("the {what} ({}) is longer than the {} allowed", human(*value), human(MAX_DURATION))]
    TooLong {
        /// Which setting.
        what: &'static str,
        /// Its value.
        value: Duration,
    },
    /// The jitter could make waits vanish or double.
    #[error("the jitter is {0}%, more than the {MAX_JITTER_PERCENT}% allowed")]
    JitterTooLarge(u8),
}

impl HealthConfig {
    /// Checks that this configuration can work; the first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (what, value) in [
            ("probe interval", self.interval),
            ("fast probe interval", self.fast_interval),
            ("probe timeout", self.timeout),
            ("slow-response threshold", self.slow_threshold),
        ] {
            if value > MAX_DURATION {
                return Err(ConfigError::TooLong { what, value });
            }
        }
        if self.interval.is_zero() {
            return Err(ConfigError::ZeroInterval);
        }
        if self.fast_interval.is_zero() {
            return Err(ConfigError::ZeroFastInterval);
        }
        if self.fast_interval > self.interval {
            return Err(ConfigError::FastIntervalTooLong {
                fast: self.fast_interval,
                interval: self.interval,
            });
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        if self.slow_threshold.is_zero() {
            return Err(ConfigError::ZeroSlowThreshold);
        }
        if self.timeout < self.slow_threshold {
            return Err(ConfigError::TimeoutBelowSlowThreshold {
                timeout: self.timeout,
                slow: self.slow_threshold,
            });
        }
        if self.rise == 0 {
            return Err(ConfigError::ZeroRise);
        }
        if self.fall == 0 {
            return Err(ConfigError::ZeroFall);
        }
        if self.jitter_percent > MAX_JITTER_PERCENT {
            return Err(ConfigError::JitterTooLarge(self.jitter_percent));
        }
        Ok(())
    }

    /// `wait` spread by the jitter: `unit` (in `[0, 1)`) picks the point
    /// in `wait ± jitter_percent`.
    pub fn jittered(&self, wait: Duration, unit: f64) -> Duration {
        let spread = f64::from(self.jitter_percent.min(MAX_JITTER_PERCENT)) / 100.0;
        let factor = 1.0 + spread * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::try_from_secs_f64(wait.as_secs_f64() * factor).unwrap_or(wait)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
