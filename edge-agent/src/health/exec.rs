//! The command probe: a program run with its arguments (no shell), healthy
//! iff it exits with status 0 within the service's timeout.
//!
//! The command runs in a process group of its own. When it ends, whatever
//! it left running in that group is killed; when it overruns the timeout,
//! or the probe is abandoned (the monitor stops), the whole group is killed
//! with SIGKILL. The command itself is always reaped, and a probe returns
//! only once no process of its group is alive any more (for at most
//! [`GROUP_GRACE`]), so nothing of one round outlives it: no orphan keeps
//! running, and no zombie of ours stays. (Killed grandchildren are
//! reparented to init, which reaps them; a process that leaves the group
//! with `setsid` or `setpgid` escapes all this, and health commands should
//! not do that.) The exit is awaited through a pidfd, without blocking a
//! runtime thread; latency is the command's run time, without the
//! clean-up.

use std::{
    io,
    os::{
        fd::{FromRawFd, OwnedFd},
        unix::process::{CommandExt, ExitStatusExt},
    },
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use tokio::io::{Interest, unix::AsyncFd};

use super::outcome::{Outcome, ProbeError, timed_out};

/// How long to wait for a killed command to exit before reaping it on a
/// thread of its own.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// How long a probe waits for the rest of a killed process group to die.
pub const GROUP_GRACE: Duration = Duration::from_secs(1);

/// How often to look whether a killed process group is gone.
const GROUP_POLL: Duration = Duration::from_millis(2);

/// Run `argv[0]` with the arguments `argv[1..]`; healthy iff it exits 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecProbe {
    /// The program (looked up in `PATH` unless it has a `/`) and its
    /// arguments. Its standard input, output and error are `/dev/null`.
    pub argv: Vec<String>,
}

impl ExecProbe {
    /// A probe running `argv`.
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> ExecProbe {
        ExecProbe {
            argv: argv.into_iter().map(Into::into).collect(),
        }
    }

    /// Checks that there is a program to run.
    pub(crate) fn validate(&self) -> Result<(), ProbeError> {
        let Some(program) = self.argv.first() else {
            return Err(ProbeError::EmptyCommand);
        };
        if program.is_empty() || self.argv.iter().any(|a| a.contains('\0')) {
            return Err(ProbeError::BadProgram(program.clone()));
        }
        Ok(())
    }

    /// Runs the command once, killing its process group after `timeout`;
    /// what it said, and how long it ran (until it exited or was killed;
    /// cleaning up after it is not counted).
    pub(crate) async fn run(&self, timeout: Duration) -> (Outcome, Duration) {
        let start = Instant::now();
        let Some((program, args)) = self.argv.split_first() else {
            return (Err("no command to run".into()), start.elapsed());
        };
        let spawned = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => return (Err(format!("cannot run `{program}`: {e}")), start.elapsed()),
        };
        let pgid = libc::pid_t::try_from(child.id()).unwrap_or(0);
        let mut group = Group {
            child: Some(child),
            pgid,
        };
        let exited = match group.pidfd() {
            Ok(fd) => fd,
            Err(e) => {
                return (
                    Err(format!("cannot watch `{program}`: {e}")),
                    start.elapsed(),
                );
            }
        };
        let waited = tokio::time::timeout(timeout, exited.readable()).await;
        let ran = start.elapsed();
        let outcome = match waited {
            Ok(Ok(_)) => {
                // The command is a zombie now, so its group ID is still
                // ours: kill what it left behind, then reap it.
                group.kill();
                match group.reap() {
                    Ok(status) => describe(status),
                    Err(e) => Err(format!("cannot reap `{program}`: {e}")),
                }
            }
            Ok(Err(e)) => Err(format!("cannot watch `{program}`: {e}")),
            Err(_) => {
                group.kill();
                // SIGKILL cannot be caught: the exit follows promptly (a
                // process stuck in the kernel is reaped by `Group`'s drop).
                if let Ok(Ok(_)) = tokio::time::timeout(KILL_GRACE, exited.readable()).await {
                    let _ = group.reap();
                }
                Err(format!("{} (killed its process group)", timed_out(timeout)))
            }
        };
        group.gone().await;
        (outcome, ran)
    }
}

/// Whether a process of group `pgid` is alive (not a zombie), by
/// `/proc/<pid>/stat`; `false` when /proc cannot be read.
fn live_member(pgid: libc::pid_t) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold anything, so
        // split after its last `)`.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|f| f.parse::<libc::pid_t>().ok());
        pgrp == Some(pgid) && state != Some("Z") && state != Some("X")
    })
}

/// `exit status 2`, `killed by signal 9`; `Ok` for status 0.
fn describe(status: ExitStatus) -> Outcome {
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok("exit status 0".into()),
        (Some(code), _) => Err(format!("exit status {code}")),
        (None, Some(signal)) => Err(format!("killed by signal {signal}")),
        (None, None) => Err(format!("ended with {status}")),
    }
}

/// A running command, leader of its own process group, killed and reaped
/// when dropped if that has not happened yet.
struct Group {
    child: Option<Child>,
    pgid: libc::pid_t,
}

impl Group {
    /// Waits (up to [`GROUP_GRACE`]) until no process of the killed group
    /// is alive: SIGKILL is sent at once but takes effect when each process
    /// next runs. Killed orphans are zombies until init reaps them, which
    /// is init's business, so zombies do not count. Past the grace the
    /// probe goes on; the processes have been killed all the same.
    async fn gone(&self) {
        if self.pgid <= 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + GROUP_GRACE;
        loop {
            // SAFETY: kill(2) with signal 0 only checks whether the process
            // group exists (zombies included); it sends nothing.
            let exists = unsafe { libc::kill(-self.pgid, 0) } == 0;
            if !exists || !live_member(self.pgid) || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(GROUP_POLL).await;
        }
    }

    /// The process ID (= process group ID), if not reaped yet.
    fn pid(&self) -> Option<libc::pid_t> {
        let child = self.child.as_ref()?;
        libc::pid_t::try_from(child.id()).ok()
    }

    /// A pidfd for the command, readable once it has exited.
    fn pidfd(&self) -> io::Result<AsyncFd<OwnedFd>> {
        let pid = self
            .pid()
            .ok_or_else(|| io::Error::other("the command is gone"))?;
        // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd
        // or -1; the pid is our unreaped child, so it cannot be reused.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
        // SAFETY: `fd` was just returned by pidfd_open and is owned by no
        // one else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the `AsyncFd` owns `owned`, so the descriptor stays open
        // and the same until it is dropped.
        unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    }

    /// SIGKILL to the whole process group (quiet if it is empty).
    fn kill(&self) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) with a negative pid signals the process
            // group `pid`, which exists while our child is unreaped.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }

    /// Reaps the command, which has exited.
    fn reap(&mut self) -> io::Result<ExitStatus> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| io::Error::other("already reaped"))?;
        match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => {
                // Not quite gone yet: keep it for the drop to deal with.
                self.child = Some(child);
                Err(io::Error::other("it has not exited"))
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // Killed but not exited yet: wait on a thread of its own rather
        // than block the runtime; if no thread can be made, wait here.
        let pid = child.id();
        let waiter = std::thread::Builder::new()
            .name("health-reap".into())
            .spawn(move || {
                let _ = child.wait();
            });
        if let Err(e) = waiter {
            tracing::warn!("cannot start a thread to reap a health command, waiting: {e}");
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: waitpid(2) on our own killed, unreaped child
                // (the failed thread dropped its `Child` without waiting).
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            }
        }
    }
}
