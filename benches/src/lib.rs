//! Helpers shared by the benchmarks in `benches/`.

use std::{
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Instant,
};

/// A packet socket on `dev` of the calling thread's namespace.
pub fn capture(dev: &str) -> OwnedFd {
    // SAFETY: plain socket(2); ETH_P_ALL in network order.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            (libc::ETH_P_ALL as u16).to_be() as i32,
        )
    };
    assert!(
        fd >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` is a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = std::ffi::CString::new(dev).unwrap();
    // SAFETY: NUL-terminated name; an all-zero sockaddr_ll completed below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: NUL-terminated name, resolved in this thread's namespace.
    addr.sll_ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
    // SAFETY: valid sockaddr_ll for the call.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
    fd
}

/// Waits for an outgoing BGP UPDATE in an IPv4/TCP frame on `fd`.
pub fn next_update(fd: &OwnedFd) -> Instant {
    let mut buf = [0u8; 2048];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let now = Instant::now();
        let Ok(n) = usize::try_from(n) else { continue };
        let frame = &buf[..n];
        if n < 14 + 20 + 20 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 6 {
            continue;
        }
        let ip = usize::from(frame[14] & 0x0f) * 4;
        let tcp = 14 + ip;
        let payload = tcp + usize::from(frame[tcp + 12] >> 4) * 4;
        if frame.len() > payload + 19
            && frame[payload..payload + 16].iter().all(|b| *b == 0xff)
            && frame[payload + 18] == 2
        {
            return now;
        }
    }
}
