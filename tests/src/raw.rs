//! Sending hand-made frames out of an interface with a packet socket, for
//! frames the kernel would not build (VLAN tags without 802.1Q support,
//! truncated headers).

use std::io;

/// Sends each of `frames` out of interface `ifindex` of the calling
/// thread's network namespace.
pub fn send_frames(ifindex: u32, frames: &[Vec<u8>]) -> io::Result<()> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an all-zero sockaddr_ll is valid; the fields below complete it.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex as i32;
    let mut result = Ok(());
    for frame in frames {
        // SAFETY: `frame` and `addr` are valid for the lengths given during the call.
        let sent = unsafe {
            libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if sent < 0 {
            result = Err(io::Error::last_os_error());
            break;
        }
    }
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    result
}
