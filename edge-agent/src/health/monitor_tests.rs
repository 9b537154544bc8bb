//! The runtime with command probes that test for a file, so a test turns a
//! service healthy or sick by creating or removing the file.

use std::{path::Path, time::Duration};

use tokio::sync::mpsc::Receiver;

use super::*;
use crate::health::probe::ExecProbe;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn fast() -> HealthConfig {
    HealthConfig {
        interval: ms(100),
        fast_interval: ms(50),
        timeout: ms(1000),
        slow_threshold: ms(1000),
        rise: 2,
        fall: 2,
        jitter_percent: 0,
        stagger: false,
        initial: Measured::Down,
    }
}

fn file_probe(path: &Path) -> ProbeSpec {
    ProbeSpec::Exec(ExecProbe::new(["test", "-e", path.to_str().unwrap()]))
}

fn check(name: &str, probes: Vec<ProbeSpec>, config: HealthConfig) -> ServiceCheck {
    ServiceCheck {
        name: name.into(),
        probes,
        config,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn next(events: &mut Receiver<HealthEvent>) -> HealthEvent {
    tokio::time::timeout(ms(5000), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("the event stream open")
}

#[test]
fn spawning_outside_a_runtime_is_an_error() {
    let e = HealthMonitor::spawn(Vec::new()).unwrap_err();
    assert!(matches!(e, HealthError::NoRuntime), "{e}");
}

#[test]
fn bad_service_lists_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let probe = || vec![file_probe(&dir.path().join("up"))];
    let table: Vec<(Vec<ServiceCheck>, &str)> = vec![
        (
            vec![check("web", probe(), fast()), check("web", probe(), fast())],
            "service `web` is listed twice",
        ),
        (
            vec![check("web", Vec::new(), fast())],
            "service `web` has no probe",
        ),
        (
            vec![check(" ", probe(), fast())],
            "is not a usable service name",
        ),
        (
            vec![check(
                "web",
                probe(),
                HealthConfig {
                    timeout: ms(10),
                    slow_threshold: ms(20),
                    ..fast()
                },
            )],
            "service `web`: the probe timeout (10 ms) is shorter than the slow-response threshold (20 ms)",
        ),
        (
            vec![check(
                "web",
                vec![ProbeSpec::Exec(ExecProbe::new(Vec::<String>::new()))],
                fast(),
            )],
            "service `web`, probe exec ``: the command to run is empty",
        ),
    ];
    let rt = runtime();
    let _entered = rt.enter();
    for (services, message) in table {
        let e = HealthMonitor::spawn(services).unwrap_err();
        assert!(
            e.to_string().contains(message),
            "`{e}` should say `{message}`"
        );
    }
}

#[test]
fn rises_and_falls_after_exact_counts_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up");
    std::fs::write(&up, "").unwrap();
    runtime().block_on(async {
        let mut monitor =
            HealthMonitor::spawn(vec![check("web", vec![file_probe(&up)], fast())]).unwrap();
        let mut events = monitor.events().unwrap();
        assert!(monitor.events().is_none(), "one consumer");
        let initial = monitor.snapshot()["web"].clone();
        assert_eq!(
            (initial.measured, initial.effective, initial.admin),
            (Measured::Down, Effective::Down, AdminState::Auto)
        );
        assert_eq!(
            initial.probes,
            vec![format!("exec `test -e {}`", up.display())]
        );

        let e = next(&mut events).await;
        assert_eq!(
            (e.from, e.to, e.measured, e.cause),
            (Effective::Down, Effective::Up, Measured::Up, Cause::Probes)
        );
        assert!(
            e.detail.starts_with("down -> up: exec `test -e"),
            "{}",
            e.detail
        );
        let health = monitor.snapshot()["web"].clone();
        assert_eq!(health.counters.rounds, 2, "exactly rise rounds");
        assert_eq!(health.last_transition, Some(e.at));
        assert_eq!(health.last_round, Some(e.at));
        assert_eq!(health.last_results.len(), 1);
        assert!(health.last_results[0].ok);

        std::fs::remove_file(&up).unwrap();
        let e = next(&mut events).await;
        assert_eq!((e.from, e.to), (Effective::Up, Effective::Down));
        assert!(e.detail.ends_with("exit status 1"), "{}", e.detail);
        let health = monitor.snapshot()["web"].clone();
        assert_eq!(health.counters.failed_rounds, 2, "exactly fall rounds");
        assert_eq!(health.counters.transitions, 2);
        monitor.stop().await;
    });
}

#[test]
fn every_probe_must_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&a, "").unwrap();
    runtime().block_on(async {
        let monitor = HealthMonitor::spawn(vec![check(
            "web",
            vec![file_probe(&a), file_probe(&b)],
            fast(),
        )])
        .unwrap();
        let mut status = monitor.status();
        status
            .wait_for(|m| m["web"].counters.rounds >= 3)
            .await
            .unwrap();
        let health = monitor.snapshot()["web"].clone();
        assert_eq!(health.measured, Measured::Down);
        assert_eq!(health.counters.failed_rounds, health.counters.rounds);
        assert_eq!(health.counters.failed_probes, health.counters.rounds);
        assert_eq!(health.counters.probes, 2 * health.counters.rounds);
        assert!(health.last_results[0].ok && !health.last_results[1].ok);
        monitor.stop().await;
    });
}

#[test]
fn admin_states_override_and_probes_keep_running() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up");
    std::fs::write(&up, "").unwrap();
    runtime().block_on(async {
        let config = HealthConfig {
            initial: Measured::Up,
            ..fast()
        };
        let mut monitor =
            HealthMonitor::spawn(vec![check("web", vec![file_probe(&up)], config)]).unwrap();
        let mut events = monitor.events().unwrap();
        assert_eq!(monitor.snapshot()["web"].effective, Effective::Up);

        monitor.set_admin("web", AdminState::Drain).unwrap();
        let e = next(&mut events).await;
        assert_eq!(
            (e.from, e.to, e.admin, e.cause),
            (
                Effective::Up,
                Effective::Draining,
                AdminState::Drain,
                Cause::Admin
            )
        );
        assert_eq!(e.detail, "admin auto -> drain");
        assert_eq!(monitor.snapshot()["web"].effective, Effective::Draining);

        monitor.set_admin("web", AdminState::Down).unwrap();
        let e = next(&mut events).await;
        assert_eq!((e.from, e.to), (Effective::Draining, Effective::Down));

        // Measured down while admin down: an event, effective unchanged.
        std::fs::remove_file(&up).unwrap();
        let e = next(&mut events).await;
        assert_eq!(
            (e.from, e.to, e.measured, e.cause),
            (
                Effective::Down,
                Effective::Down,
                Measured::Down,
                Cause::Probes
            )
        );

        // Back to auto while measured down: nothing changes, no event.
        monitor.set_admin("web", AdminState::Auto).unwrap();
        std::fs::write(&up, "").unwrap();
        let e = next(&mut events).await;
        assert_eq!(
            (e.from, e.to, e.cause),
            (Effective::Down, Effective::Up, Cause::Probes)
        );

        // Setting the same state again changes nothing.
        monitor.set_admin("web", AdminState::Auto).unwrap();
        assert!(events.try_recv().is_err());

        let e = monitor.set_admin("api", AdminState::Down).unwrap_err();
        assert_eq!(e.to_string(), "no service is called `api`");
        monitor.stop().await;
    });
}

#[test]
fn the_fast_interval_is_used_while_a_change_is_suspected() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up");
    runtime().block_on(async {
        let config = HealthConfig {
            interval: ms(400),
            fast_interval: ms(20),
            rise: 3,
            ..fast()
        };
        let monitor =
            HealthMonitor::spawn(vec![check("web", vec![file_probe(&up)], config)]).unwrap();
        let mut status = monitor.status();
        status
            .wait_for(|m| m["web"].counters.rounds == 1)
            .await
            .unwrap();
        std::fs::write(&up, "").unwrap();
        // The next round comes after the interval; from then on rounds
        // follow at the fast interval until the service is up.
        let suspected = std::time::Instant::now();
        status.wait_for(|m| m["web"].suspected).await.unwrap();
        status
            .wait_for(|m| m["web"].measured == Measured::Up)
            .await
            .unwrap();
        let took = suspected.elapsed();
        // At the plain interval it would take 3 × 400 ms.
        assert!(
            took < ms(1000),
            "{took:?}: fast rounds after the first success"
        );
        let health = monitor.snapshot()["web"].clone();
        assert!(!health.suspected);
        assert_eq!(health.streak, 0);
        monitor.stop().await;
    });
}

#[test]
fn stopping_ends_the_rounds() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let monitor = HealthMonitor::spawn(vec![check(
            "web",
            vec![file_probe(&dir.path().join("up"))],
            fast(),
        )])
        .unwrap();
        let status = monitor.status();
        tokio::time::sleep(ms(250)).await;
        monitor.stop().await;
        let rounds = status.borrow().get("web").unwrap().counters.rounds;
        assert!(rounds >= 2, "{rounds}");
        tokio::time::sleep(ms(250)).await;
        assert_eq!(status.borrow()["web"].counters.rounds, rounds);
    });
}

#[test]
fn a_full_event_queue_is_counted_only_when_someone_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up");
    std::fs::write(&up, "").unwrap();
    // Up: every drain and every auto changes the effective state.
    let config = HealthConfig {
        initial: Measured::Up,
        ..fast()
    };
    let flip = |monitor: &HealthMonitor, times: usize| {
        for i in 0..times {
            let admin = if i % 2 == 0 {
                AdminState::Drain
            } else {
                AdminState::Auto
            };
            monitor.set_admin("web", admin).unwrap();
        }
    };
    let dropped = |monitor: &HealthMonitor| monitor.snapshot()["web"].counters.events_dropped;
    runtime().block_on(async {
        // Nobody took the events (the daemon): no warnings, no count.
        let unread =
            HealthMonitor::spawn(vec![check("web", vec![file_probe(&up)], config.clone())])
                .unwrap();
        flip(&unread, EVENT_QUEUE + 10);
        assert_eq!(dropped(&unread), 0);
        // A consumer that falls behind: counted.
        let mut behind =
            HealthMonitor::spawn(vec![check("web", vec![file_probe(&up)], config.clone())])
                .unwrap();
        let _events = behind.events().unwrap();
        flip(&behind, EVENT_QUEUE + 10);
        assert_eq!(dropped(&behind), 10);
        unread.stop().await;
        behind.stop().await;
    });
}
