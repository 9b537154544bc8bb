//! Configuration validation and jitter.

use std::time::Duration;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn the_defaults_are_valid_and_as_documented() {
    let c = HealthConfig::default();
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(
        (c.interval, c.fast_interval, c.timeout, c.slow_threshold),
        (ms(2000), ms(500), ms(1000), ms(1000))
    );
    assert_eq!((c.rise, c.fall, c.jitter_percent), (2, 3, 10));
    assert_eq!(c.initial, Measured::Down);
    assert!(c.stagger);
}

#[test]
fn bad_configurations_are_rejected_with_a_reason() {
    let base = HealthConfig::default;
    let table: Vec<(HealthConfig, ConfigError, &str)> = vec![
        (
            HealthConfig {
                timeout: ms(500),
                ..base()
            },
            ConfigError::TimeoutBelowSlowThreshold {
                timeout: ms(500),
                slow: ms(1000),
            },
            "the probe timeout (500 ms) is shorter than the slow-response threshold (1 s)",
        ),
        (
            HealthConfig { rise: 0, ..base() },
            ConfigError::ZeroRise,
            "rise must be at least 1",
        ),
        (
            HealthConfig { fall: 0, ..base() },
            ConfigError::ZeroFall,
            "fall must be at least 1",
        ),
        (
            HealthConfig {
                interval: Duration::ZERO,
                ..base()
            },
            ConfigError::ZeroInterval,
            "interval must be longer than zero",
        ),
        (
            HealthConfig {
                fast_interval: Duration::ZERO,
                ..base()
            },
            ConfigError::ZeroFastInterval,
            "fast probe interval must be longer than zero",
        ),
        (
            HealthConfig {
                fast_interval: ms(3000),
                ..base()
            },
            ConfigError::FastIntervalTooLong {
                fast: ms(3000),
                interval: ms(2000),
            },
            "the fast probe interval (3 s) is longer than the interval (2 s)",
        ),
        (
            HealthConfig {
                timeout: Duration::ZERO,
                ..base()
            },
            ConfigError::ZeroTimeout,
            "timeout must be longer than zero",
        ),
        (
            HealthConfig {
                slow_threshold: Duration::ZERO,
                ..base()
            },
            ConfigError::ZeroSlowThreshold,
            "threshold must be longer than zero",
        ),
        (
            HealthConfig {
                interval: Duration::from_secs(7200),
                ..base()
            },
            ConfigError::TooLong {
                what: "probe interval",
                value: Duration::from_secs(7200),
            },
            "the probe interval (7200 s) is longer than the 3600 s allowed",
        ),
        (
            HealthConfig {
                timeout: Duration::MAX,
                ..base()
            },
            ConfigError::TooLong {
                what: "probe timeout",
                value: Duration::MAX,
            },
            "the probe timeout",
        ),
        (
            HealthConfig {
                jitter_percent: 51,
                ..base()
            },
            ConfigError::JitterTooLarge(51),
            "the jitter is 51%, more than the 50% allowed",
        ),
    ];
    for (config, want, message) in table {
        let got = config.validate().unwrap_err();
        assert_eq!(got, want);
        assert!(
            got.to_string().contains(message),
            "`{got}` should say `{message}`"
        );
    }
}

#[test]
fn edge_values_are_accepted() {
    let c = HealthConfig {
        interval: ms(100),
        fast_interval: ms(100),
        timeout: ms(50),
        slow_threshold: ms(50),
        rise: 1,
        fall: 1,
        jitter_percent: 50,
        stagger: false,
        initial: Measured::Up,
    };
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn jitter_spreads_waits_within_the_percentage() {
    let c = HealthConfig::default();
    assert_eq!(c.jittered(ms(1000), 0.0), ms(900));
    assert_eq!(c.jittered(ms(1000), 0.5), ms(1000));
    let high = c.jittered(ms(1000), 0.999_999);
    assert!(high > ms(1099) && high <= ms(1100), "{high:?}");
    let none = HealthConfig {
        jitter_percent: 0,
        ..c
    };
    assert_eq!(none.jittered(ms(1000), 0.9), ms(1000));
    // Out-of-range units are clamped, never negative; huge waits do not
    // overflow.
    assert_eq!(HealthConfig::default().jittered(ms(1000), -3.0), ms(900));
    assert_eq!(
        HealthConfig::default().jittered(Duration::MAX, 0.99),
        Duration::MAX
    );
}
