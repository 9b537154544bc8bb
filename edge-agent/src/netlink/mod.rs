//! Keeping the kernel in step with the agent, through rtnetlink, touching
//! only what the agent owns: addresses on its own interface, routes in its
//! own table with its own protocol number, neighbour entries it created.
//! The desired and actual states and the changes between them are plain
//! values ([`state`]); the planner is pure ([`plan`]); the kernel access
//! ([`kernel`]) and the reconcile loop ([`reconciler`]) are thin layers.

pub mod desired;
pub mod kernel;
pub mod plan;
pub mod reconciler;
pub mod state;
pub mod sysctl;
