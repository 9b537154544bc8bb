//! Network and runtime helpers every protocol's executor shares, so that
//! each exists once: the random source ([`random`]), waiting for an
//! optional deadline ([`time`]), TCP connect-with-timeout and the accept
//! loop ([`tcp`]), and the DNS stub client ([`dns`]) used by overlay
//! discovery and the DNS health probe.

pub mod dns;
pub mod random;
pub mod tcp;
pub mod time;
