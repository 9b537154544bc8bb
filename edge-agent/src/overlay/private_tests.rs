//! The private path's rise/fall.

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

#[test]
fn bfd_takes_it_down_at_once_and_only_probes_bring_it_back() {
    let mut m = PathMonitor::new(2, 3);
    assert_eq!(m.lost(), None, "already down");
    m.record(true);
    m.record(true);
    assert!(m.is_up());
    // Half a fall streak already counted changes nothing.
    m.record(false);
    assert_eq!(m.lost(), Some(false));
    assert!(!m.is_up());
    assert_eq!(m.lost(), None);
    assert_eq!(m.record(true), None);
    assert_eq!(m.record(true), Some(true));
}
