//! `BPF_PROG_TEST_RUN` on an XDP program: run it on a crafted frame and get
//! the action and the output bytes; time it against the empty program.
//!
//! The kernel refuses test frames shorter than an Ethernet header (14
//! bytes), even behind XDP metadata; [`run`] says so instead of passing on a
//! bare `EINVAL`. Such runts never reach XDP from a NIC or a veth either (the
//! driver or `eth_type_trans` drops them first); the program's bounds checks
//! for them are proven by the verifier, not by a test run.

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

/// `bpf(2)` command number of `BPF_PROG_TEST_RUN`.
const BPF_PROG_TEST_RUN: libc::c_long = 10;
/// Smallest test frame the kernel accepts (ETH_HLEN).
pub const MIN_FRAME: usize = 14;
/// Room for the program to grow the frame (encapsulation).
const OUTPUT_HEADROOM: usize = 256;

/// XDP verdicts, as the program returns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum XdpAction {
    /// `XDP_ABORTED`: program error.
    Aborted = 0,
    /// `XDP_DROP`.
    Drop = 1,
    /// `XDP_PASS`: to the kernel stack.
    Pass = 2,
    /// `XDP_TX`: back out of the same interface.
    Tx = 3,
    /// `XDP_REDIRECT`.
    Redirect = 4,
}

impl XdpAction {
    fn from_raw(raw: u32) -> io::Result<Self> {
        Ok(match raw {
            0 => Self::Aborted,
            1 => Self::Drop,
            2 => Self::Pass,
            3 => Self::Tx,
            4 => Self::Redirect,
            other => {
                return Err(io::Error::other(format!(
                    "program returned unknown XDP action {other}"
                )));
            }
        })
    }
}

/// The result of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// What the program returned.
    pub action: XdpAction,
    /// The frame as the program left it.
    pub data: Vec<u8>,
    /// Kernel-measured duration of the run, in nanoseconds.
    pub duration_ns: u32,
}

/// `struct xdp_md`: the test-run context (which interface the frame came in on).
#[repr(C)]
#[derive(Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

/// The `test` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct TestAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// Runs `program` once on `frame` (at least [`MIN_FRAME`] bytes), as if it
/// arrived on the loopback interface of the calling thread's namespace.
pub fn run(program: BorrowedFd<'_>, frame: &[u8]) -> io::Result<RunResult> {
    run_on(program, frame, None)
}

/// Runs `program` once on `frame` as if it arrived on interface
/// `ingress_ifindex` (of the calling thread's network namespace), so that
/// `bpf_fib_lookup` and `XDP_TX` see that interface.
pub fn run_on(
    program: BorrowedFd<'_>,
    frame: &[u8],
    ingress_ifindex: Option<u32>,
) -> io::Result<RunResult> {
    if frame.len() < MIN_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the kernel refuses test-run frames shorter than {MIN_FRAME} bytes (got {})",
                frame.len()
            ),
        ));
    }
    let mut output = vec![0u8; frame.len() + OUTPUT_HEADROOM];
    let mut attr = TestAttr {
        prog_fd: program.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_size_out: output.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: output.as_mut_ptr() as u64,
        repeat: 1,
        ..TestAttr::default()
    };
    let ctx = XdpMd {
        data_end: frame.len() as u32,
        ingress_ifindex: ingress_ifindex.unwrap_or(0),
        ..XdpMd::default()
    };
    if ingress_ifindex.is_some() {
        attr.ctx_size_in = size_of::<XdpMd>() as u32;
        attr.ctx_in = (&raw const ctx) as u64;
    }
    // SAFETY: every pointer in `attr` refers to a live buffer of the size
    // given next to it, and `attr` itself outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &raw mut attr,
            size_of::<TestAttr>(),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("BPF_PROG_TEST_RUN failed: {e}"),
        ));
    }
    output.truncate(attr.data_size_out as usize);
    Ok(RunResult {
        action: XdpAction::from_raw(attr.retval)?,
        data: output,
        duration_ns: attr.duration,
    })
}

/// Per-run durations of a program and of the empty program on the same
/// frame, measured interleaved in one loop so that both see the same
/// machine.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Runs of each program.
    pub runs: usize,
    /// Median kernel-measured ns per run of the program under test.
    pub program_ns: u32,
    /// Median ns per run of the empty program.
    pub baseline_ns: u32,
}

impl Timing {
    /// What the program costs above the empty one, in ns per packet.
    pub fn cost_ns(&self) -> i64 {
        i64::from(self.program_ns) - i64::from(self.baseline_ns)
    }
}

/// Times `program` against `baseline` (the empty program) with `runs`
/// single-repeat calls each, cycling through `frames` (one frame: the same
/// flow every time; many: a new flow per call), as if arriving on
/// `ingress_ifindex`. Calls use `repeat = 1` because with more the kernel
/// does not reset the frame between runs, which matters for a program that
/// rewrites it.
pub fn time_against_baseline(
    program: BorrowedFd<'_>,
    baseline: BorrowedFd<'_>,
    frames: &[Vec<u8>],
    ingress_ifindex: Option<u32>,
    runs: usize,
) -> io::Result<Timing> {
    let mut program_ns = Vec::with_capacity(runs);
    let mut baseline_ns = Vec::with_capacity(runs);
    for frame in frames.iter().cycle().take(runs) {
        program_ns.push(run_on(program, frame, ingress_ifindex)?.duration_ns);
        baseline_ns.push(run_on(baseline, frame, ingress_ifindex)?.duration_ns);
    }
    Ok(Timing {
        runs,
        program_ns: median(&mut program_ns),
        baseline_ns: median(&mut baseline_ns),
    })
}

fn median(values: &mut [u32]) -> u32 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}
