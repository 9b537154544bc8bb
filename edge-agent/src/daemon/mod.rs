//! The daemon around one node: the admin API on a local Unix socket
//! ([`api`]), the status document it serves ([`status`]), the Prometheus
//! endpoint ([`metrics`]), and the process's life: config, logs, signals,
//! a safe shutdown and restarts without loss ([`run`]).

pub mod api;
pub mod metrics;
pub mod run;
pub mod status;
