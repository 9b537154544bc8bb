//! Waiting for a protocol core's next deadline in a `select!`.

use std::time::Instant;

/// Sleeps until `deadline`; never returns when there is none (the
/// `select!` arm that awaits it simply never fires).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
