//! The reconcile loop: desired state (from the agent's inputs and the
//! kernel's own paths) against actual state (dumped, filtered to what the
//! agent owns) → the changes of [`plan`](super::plan), applied. It runs
//! when the inputs change, when the kernel reports a change to the
//! agent's interface or the Internet interface, and every `period`; a
//! failed pass is retried with exponential backoff. Errors are reported
//! (status and log) and never end the loop. On stop it removes what it
//! owns, unless told to keep it for a restart.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use tokio::sync::{oneshot, watch};

use super::{
    desired::{Inputs, Path, desired},
    kernel::{Kernel, KernelEvent, NetlinkError},
    plan::{plan, teardown},
    state::{Change, Ownership},
    sysctl,
};

/// The agent's own interface by default.
pub const DEFAULT_LINK: &str = "edge0";
/// The agent's routing table by default.
pub const DEFAULT_TABLE: u32 = 4179;
/// The agent's route and neighbour protocol number by default (unassigned
/// in `/etc/iproute2/rt_protos`; name it there as `242 edge`).
pub const DEFAULT_PROTOCOL: u8 = 242;

/// The first retry after a failed pass; doubles up to the period, and at
/// most [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait between retries of a failing pass.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Kernel events are gathered this long before a pass.
const SETTLE: Duration = Duration::from_millis(20);

/// The reconciler's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetlinkConfig {
    /// What is the agent's.
    pub ownership: Ownership,
    /// The Internet-facing interface.
    pub internet: String,
    /// Reconcile at least this often.
    pub period: Duration,
    /// On stop, leave everything in place (for a restart).
    pub keep_state: bool,
}

/// What the reconciler shows of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileStatus {
    /// Passes so far.
    pub passes: u64,
    /// Passes that found the kernel as desired (no change).
    pub clean_passes: u64,
    /// Changes applied so far.
    pub changes: u64,
    /// Changes applied by the last pass.
    pub last_changes: Vec<Change>,
    /// The last pass's error, if it failed.
    pub last_error: Option<String>,
    /// Failed passes so far.
    pub errors: u64,
    /// Times the agent's interface had to be created.
    pub links_created: u64,
    /// Whether the Internet interface is up (operationally); `None` if it
    /// does not exist. An input to node fitness.
    pub internet_up: Option<bool>,
    /// When the last pass ended.
    pub last_pass: Option<Instant>,
}

/// One failed pass: what was applied, and what failed.
#[derive(Debug, thiserror::Error)]
#[error("{}", errors.iter().map(|(what, e)| format!("{what}: {e}")).collect::<Vec<_>>().join("; "))]
pub struct PassError {
    /// Changes that were applied before and despite the failures.
    pub applied: Vec<Change>,
    /// What failed (the change, or the step), and why.
    pub errors: Vec<(String, NetlinkError)>,
}

/// One reconcile pass: look up the paths the inputs need, build the desired
/// state, dump the actual one, apply the difference. Returns the changes
/// applied (none: the kernel already was as desired).
pub async fn reconcile_once(
    kernel: &Kernel,
    own: &Ownership,
    inputs: &Inputs,
) -> Result<Vec<Change>, PassError> {
    reconcile(kernel, own, inputs, true).await
}

/// A pass; without `removals`, only what is missing is added (nothing the
/// agent owns is taken away: the inputs may not be complete yet).
async fn reconcile(
    kernel: &Kernel,
    own: &Ownership,
    inputs: &Inputs,
    removals: bool,
) -> Result<Vec<Change>, PassError> {
    let fail = |what: &str, e: NetlinkError| PassError {
        applied: Vec::new(),
        errors: vec![(what.to_string(), e)],
    };
    let mut paths = BTreeMap::new();
    for dst in inputs.destinations() {
        match kernel.route_to(dst).await {
            Ok(Some((gateway, oif))) => {
                paths.insert(dst, Path { gateway, oif });
            }
            // Unreachable now: nothing is installed toward it.
            Ok(None) => {}
            Err(e) => return Err(fail(&format!("looking up the route to {dst}"), e)),
        }
    }
    let desired = desired(inputs, &paths);
    let actual = kernel
        .dump(own)
        .await
        .map_err(|e| fail("reading the kernel's state", e))?;
    let mut changes = plan(&desired, &actual);
    if !removals {
        changes.retain(|c| {
            !matches!(
                c,
                Change::DelAddress(_) | Change::DelRoute(_) | Change::DelNeighbour(_)
            )
        });
    }
    apply_all(kernel, own, changes).await
}

/// Applies `changes` in order; one failing does not stop the others.
async fn apply_all(
    kernel: &Kernel,
    own: &Ownership,
    changes: Vec<Change>,
) -> Result<Vec<Change>, PassError> {
    let mut applied = Vec::new();
    let mut errors = Vec::new();
    for change in changes {
        match kernel.apply(own, &change).await {
            Ok(_) => applied.push(change),
            Err(e) => {
                // Without the interface nothing else on it can work.
                let fatal = matches!(change, Change::CreateLink);
                errors.push((format!("{change:?}"), e));
                if fatal {
                    break;
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(applied)
    } else {
        Err(PassError { applied, errors })
    }
}

/// Removes everything `own` marks as the agent's: routes, neighbour
/// entries, addresses, and the interface.
pub async fn remove_owned(kernel: &Kernel, own: &Ownership) -> Result<Vec<Change>, PassError> {
    let actual = kernel.dump(own).await.map_err(|e| PassError {
        applied: Vec::new(),
        errors: vec![("reading the kernel's state".into(), e)],
    })?;
    let mut result = apply_all(kernel, own, teardown(&actual)).await;
    if actual.link.is_some() {
        if let Err(e) = kernel.delete_link(&own.link).await {
            let error = (format!("deleting {}", own.link), e);
            match &mut result {
                Ok(applied) => {
                    result = Err(PassError {
                        applied: std::mem::take(applied),
                        errors: vec![error],
                    })
                }
                Err(pass) => pass.errors.push(error),
            }
        }
    }
    result
}

/// A running reconciler.
pub struct Reconciler {
    inputs: watch::Sender<Inputs>,
    status: watch::Receiver<ReconcileStatus>,
    stop: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

impl Reconciler {
    /// Opens the kernel sockets in the current network namespace and starts
    /// the loop on the current runtime with `inputs`.
    pub fn spawn(config: NetlinkConfig, inputs: Inputs) -> Result<Reconciler, NetlinkError> {
        Self::start(config, inputs, true)
    }

    /// Like [`Reconciler::spawn`], but with inputs that are not complete
    /// yet (a node starting, or restarting over kept state): only what is
    /// missing is added, and nothing is removed before the first
    /// [`Reconciler::set_inputs`].
    pub fn spawn_partial(
        config: NetlinkConfig,
        inputs: Inputs,
    ) -> Result<Reconciler, NetlinkError> {
        Self::start(config, inputs, false)
    }

    fn start(
        config: NetlinkConfig,
        inputs: Inputs,
        complete: bool,
    ) -> Result<Reconciler, NetlinkError> {
        let kernel = Kernel::open()?;
        let events = super::kernel::events()?;
        let (inputs_tx, inputs_rx) = watch::channel(inputs);
        let (status_tx, status) = watch::channel(ReconcileStatus::default());
        let (stop, stop_rx) = oneshot::channel();
        tokio::spawn(run(
            config, kernel, events, inputs_rx, status_tx, stop_rx, complete,
        ));
        Ok(Reconciler {
            inputs: inputs_tx,
            status,
            stop: Some(stop),
        })
    }

    /// New inputs: reconciled at once.
    pub fn set_inputs(&self, inputs: Inputs) {
        self.inputs.send_replace(inputs);
    }

    /// The latest status.
    pub fn status(&self) -> watch::Receiver<ReconcileStatus> {
        self.status.clone()
    }

    /// Stops the loop; removes what the agent owns unless `keep_state`.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let (done, wait) = oneshot::channel();
            if stop.send(done).is_ok() {
                let _ = wait.await;
            }
        }
    }
}

async fn run(
    config: NetlinkConfig,
    kernel: Kernel,
    mut events: tokio::sync::mpsc::Receiver<KernelEvent>,
    mut inputs: watch::Receiver<Inputs>,
    status: watch::Sender<ReconcileStatus>,
    mut stop: oneshot::Receiver<oneshot::Sender<()>>,
    mut complete: bool,
) {
    let own = &config.ownership;
    let mut backoff = BACKOFF_MIN;
    let mut next = tokio::time::Instant::now();
    let mut events_open = true;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            changed = inputs.changed() => {
                if changed.is_err() {
                    // The handle is gone without a stop: keep the state.
                    return;
                }
            }
            event = events.recv(), if events_open => match event {
                Some(event) => {
                    if !concerns(&event, &config) {
                        continue;
                    }
                    // Let a burst of events settle into one pass.
                    tokio::time::sleep(SETTLE).await;
                    while events.try_recv().is_ok() {}
                }
                None => events_open = false,
            },
            done = &mut stop => {
                if !config.keep_state {
                    match remove_owned(&kernel, own).await {
                        Ok(changes) => tracing::info!(changes = changes.len(), "netlink: removed what the agent owned"),
                        Err(e) => tracing::warn!("netlink: could not remove all the agent owned: {e}"),
                    }
                }
                if let Ok(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        }
        // Inputs set through the handle are complete.
        complete |= inputs.has_changed().is_ok_and(|c| c);
        let snapshot = inputs.borrow_and_update().clone();
        let internet = kernel.link(&config.internet).await.ok().flatten();
        let sysctl_error = match internet {
            Some(_) => match sysctl::ensure(&sysctl::required(&config.internet)) {
                Ok(changed) => {
                    for (path, old) in changed {
                        tracing::info!("netlink: set {} (was {old})", path.display());
                    }
                    None
                }
                Err(e) => Some(e.to_string()),
            },
            None => None,
        };
        let result = reconcile(&kernel, own, &snapshot, complete).await;
        status.send_modify(|s| {
            s.passes += 1;
            s.last_pass = Some(Instant::now());
            s.internet_up = internet.map(|(_, up)| up);
            let (applied, error) = match &result {
                Ok(applied) => (applied.clone(), sysctl_error.clone()),
                Err(pass) => (pass.applied.clone(), Some(pass.to_string())),
            };
            s.changes += applied.len() as u64;
            s.links_created += applied.iter().filter(|c| **c == Change::CreateLink).count() as u64;
            if applied.is_empty() && error.is_none() {
                s.clean_passes += 1;
            }
            s.last_changes = applied;
            if error.is_some() {
                s.errors += 1;
            }
            s.last_error = error;
        });
        match (&result, &sysctl_error) {
            (Ok(applied), None) => {
                if !applied.is_empty() {
                    tracing::info!(changes = applied.len(), "netlink: reconciled");
                }
                backoff = BACKOFF_MIN;
                next = tokio::time::Instant::now() + config.period;
            }
            _ => {
                let error = match &result {
                    Err(pass) => pass.to_string(),
                    Ok(_) => sysctl_error.clone().unwrap_or_default(),
                };
                tracing::warn!(retry_in = ?backoff, "netlink: reconcile failed: {error}");
                next = tokio::time::Instant::now() + backoff;
                backoff = (backoff * 2).min(config.period.clamp(BACKOFF_MIN, BACKOFF_MAX));
            }
        }
    }
}

/// Whether a kernel event may have changed something the agent cares
/// about: its interface, the Internet interface, or addresses (which move
/// paths).
fn concerns(event: &KernelEvent, config: &NetlinkConfig) -> bool {
    match event {
        KernelEvent::Link { name, .. } => {
            *name == config.ownership.link || *name == config.internet
        }
        KernelEvent::Address { .. } => true,
        KernelEvent::Other => false,
    }
}
