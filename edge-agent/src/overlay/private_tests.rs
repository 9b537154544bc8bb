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
