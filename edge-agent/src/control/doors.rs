//! The log of the data plane's doors (the XDP program's policy for the
//! agent's own ports): which source prefixes it dropped packets from,
//! each named at most once a minute, a bounded number of lines per look
//! (pure, time passed in).

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use crate::dataplane::DoorOffender;

/// How often one source prefix is named in the log.
pub const LOG_EVERY: Duration = Duration::from_secs(60);
/// Most prefixes named per look; the rest are summed in one line.
pub const LINES: usize = 8;

#[derive(Debug, Default)]
struct Seen {
    /// The drop counter at the last look (the data plane's, cumulative).
    dropped: u64,
    /// Drops not named in the log yet.
    pending: u64,
    logged: Option<Instant>,
}

/// What was seen and named of each offending prefix. Holds only the
/// prefixes of the last look, which the data plane's bucket table bounds.
#[derive(Debug, Default)]
pub struct DoorLog {
    seen: HashMap<(IpAddr, u8), Seen>,
}

impl DoorLog {
    /// The lines due at `now`, given the data plane's offenders (their
    /// cumulative counters).
    pub fn report(&mut self, offenders: &[DoorOffender], now: Instant) -> Vec<String> {
        let mut seen = HashMap::with_capacity(offenders.len());
        for o in offenders {
            let key = (o.prefix, o.len);
            let mut entry = self.seen.remove(&key).unwrap_or_default();
            // A counter that went back is a bucket the table forgot and
            // made again: all of it is new.
            let new = o.dropped.checked_sub(entry.dropped).unwrap_or(o.dropped);
            entry.pending += new;
            entry.dropped = o.dropped;
            seen.insert(key, entry);
        }
        self.seen = seen;
        let mut due: Vec<((IpAddr, u8), u64)> = self
            .seen
            .iter()
            .filter(|(_, s)| {
                s.pending > 0
                    && s.logged
                        .is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY)
            })
            .map(|(k, s)| (*k, s.pending))
            .collect();
        due.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let (mut lines, mut more, mut more_prefixes) = (Vec::new(), 0u64, 0usize);
        for (i, (key, pending)) in due.into_iter().enumerate() {
            if let Some(s) = self.seen.get_mut(&key) {
                s.pending = 0;
                s.logged = Some(now);
            }
            if i < LINES {
                lines.push(format!(
                    "data plane: dropped {pending} packet(s) to the agent's ports from {}/{} (not a listed source, or over its SYN rate; [doors])",
                    key.0, key.1
                ));
            } else {
                more += pending;
                more_prefixes += 1;
            }
        }
        if more > 0 {
            lines.push(format!(
                "data plane: dropped {more} more packet(s) to the agent's ports from {more_prefixes} more source prefix(es)"
            ));
        }
        lines
    }
}

#[cfg(test)]
#[path = "doors_tests.rs"]
mod tests;
