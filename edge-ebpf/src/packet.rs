//! Bounds-checked access to packet bytes.
//!
//! Every read goes through [`ptr_at`], which compares the end of the object
//! with `data_end` immediately before handing out a pointer, in the form the
//! verifier can follow.

use aya_ebpf::programs::XdpContext;

/// A pointer to a `T` at byte `offset` in the packet, or `None` if the packet
/// ends before the whole `T`.
#[inline(always)]
pub(crate) fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *const T)
}

/// Reads the big-endian `u16` at byte `offset`, or `None` past the end.
#[inline(always)]
pub(crate) fn be16_at(ctx: &XdpContext, offset: usize) -> Option<u16> {
    let p = ptr_at::<[u8; 2]>(ctx, offset)?;
    // SAFETY: `ptr_at` checked that two bytes at `p` are inside the packet;
    // `[u8; 2]` has alignment 1.
    Some(u16::from_be_bytes(unsafe { *p }))
}

/// Number of packet bytes from `offset` to `data_end` (0 if past the end).
#[inline(always)]
pub(crate) fn len_from(ctx: &XdpContext, offset: usize) -> usize {
    let len = ctx.data_end() - ctx.data();
    len.saturating_sub(offset)
}
