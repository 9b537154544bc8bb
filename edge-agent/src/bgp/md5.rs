//! TCP MD5 signatures (RFC 2385) for BGP sessions, per neighbour address:
//! many upstream providers require them. The kernel signs and checks every
//! segment; a segment with a wrong or missing signature is dropped silently
//! (so a wrong key shows as a connection that never comes up).
//!
//! Set the key on a listening socket for each neighbour allowed to connect,
//! and on an outgoing socket before `connect`.

use std::{io, net::IpAddr, os::fd::AsRawFd};

/// `TCP_MD5SIG` (linux/tcp.h).
const TCP_MD5SIG: libc::c_int = 14;
/// Longest key the kernel accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const MAX_KEY_LEN: usize = 80;

/// `struct tcp_md5sig`: the neighbour's address as a sockaddr_storage, then
/// flags, prefix length, key length, ifindex and the key.
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: libc::c_int,
    key: [u8; MAX_KEY_LEN],
}

/// Errors setting a TCP MD5 key.
#[derive(Debug, thiserror::Error)]
pub enum Md5Error {
    /// The key is longer than the kernel allows.
    #[error("TCP MD5 key is {0} bytes; the kernel accepts at most {MAX_KEY_LEN}")]
    KeyTooLong(usize),
    /// The kernel refused the option.
    #[error("setting the TCP MD5 key for {peer}: {source} (kernel without CONFIG_TCP_MD5SIG?)")]
    Setsockopt {
        /// The neighbour.
        peer: IpAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Signs traffic with `peer` on `socket` with `key`; an empty key removes
/// the signature requirement. The socket's family must be `peer`'s.
pub fn set_key(socket: &impl AsRawFd, peer: IpAddr, key: &[u8]) -> Result<(), Md5Error> {
    if key.len() > MAX_KEY_LEN {
        return Err(Md5Error::KeyTooLong(key.len()));
    }
    // SAFETY: all-zero bytes are a valid tcp_md5sig (and sockaddr_storage).
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    match peer {
        IpAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&raw mut sig.addr).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.octets()),
            };
        }
        IpAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut sig.addr).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.octets(),
            };
        }
    }
    sig.key_len = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: `sig` is a valid tcp_md5sig of the size given, alive during the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            TCP_MD5SIG,
            (&raw const sig).cast(),
            size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Md5Error::Setsockopt {
            peer,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_longer_than_the_kernel_takes_are_refused() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let err = set_key(&socket, "127.0.0.1".parse().unwrap(), &[0; 81]).unwrap_err();
        assert!(err.to_string().contains("at most 80"), "{err}");
    }

    #[test]
    fn the_struct_has_the_kernel_layout() {
        assert_eq!(size_of::<TcpMd5Sig>(), 216);
    }
}
