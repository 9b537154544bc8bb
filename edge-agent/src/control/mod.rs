//! The control logic: the one place that turns every input (config, local
//! service health, admin state, the overlay RIB, the Internet interface)
//! into desired state ([`decide`], pure, with node fitness in
//! [`fitness`]), and the runtime loop that applies the difference between
//! consecutive desired states to the data plane, the overlay, the netlink
//! reconciler and the upstream BGP sessions in an order that never
//! blackholes traffic ([`runtime`]).

pub mod decide;
pub mod doors;
pub mod fitness;
pub mod runtime;
