//! Bounds-checked access to packet bytes.
//!
//! Every read and write goes through [`ptr_at`] or [`ptr_at_mut`], which
//! compare the end of the object with `data_end` immediately before handing
//! out a pointer, in the form the verifier can follow. There is no one-byte
//! read: LLVM turns `p + 1 > end` into `p >= end`, from which the verifier
//! learns no range; single fields are read as part of their header. Offsets computed from
//! packet contents are capped at [`MAX_OFFSET`] first, so the verifier knows
//! their range.

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};

/// Largest header offset the program follows (VLAN tags, IP options, IPv6
/// extension headers, an outer tunnel header and the inner headers).
pub(crate) const MAX_OFFSET: usize = 1024;

/// A pointer to a `T` at byte `offset`, or `None` if the packet ends first.
#[inline(always)]
pub(crate) fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*const T> {
    ptr_at_mut::<T>(ctx, offset).map(|p| p.cast_const())
}

/// A writable pointer to a `T` at byte `offset`, or `None` past the end.
#[inline(always)]
pub(crate) fn ptr_at_mut<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if offset > MAX_OFFSET || start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

/// Reads the `N` bytes at `offset`.
#[inline(always)]
pub(crate) fn bytes_at<const N: usize>(ctx: &XdpContext, offset: usize) -> Option<[u8; N]> {
    let p = ptr_at::<[u8; N]>(ctx, offset)?;
    // SAFETY: `ptr_at` checked the N bytes are inside the packet; alignment 1.
    Some(unsafe { *p })
}

/// Writes `bytes` at `offset`; `None` (and nothing written) past the end.
#[inline(always)]
pub(crate) fn write_at<const N: usize>(
    ctx: &XdpContext,
    offset: usize,
    bytes: [u8; N],
) -> Option<()> {
    let p = ptr_at_mut::<[u8; N]>(ctx, offset)?;
    // SAFETY: `ptr_at_mut` checked the N bytes are inside the packet; alignment 1.
    unsafe { *p = bytes };
    Some(())
}

/// Reads the big-endian `u16` at `offset`.
#[inline(always)]
pub(crate) fn be16_at(ctx: &XdpContext, offset: usize) -> Option<u16> {
    bytes_at::<2>(ctx, offset).map(u16::from_be_bytes)
}

/// Packet bytes from `offset` to `data_end` (0 if past the end).
#[inline(always)]
pub(crate) fn len_from(ctx: &XdpContext, offset: usize) -> usize {
    frame_len(ctx).saturating_sub(offset)
}

/// Length of the whole frame, as a number only.
///
/// The value goes through `black_box`: otherwise LLVM uses a length check
/// (say, an IP length field against the frame length) to prove a later
/// pointer bounds check redundant and deletes it, and the verifier, which
/// learns packet ranges only from pointer comparisons, rejects the access.
#[inline(always)]
pub(crate) fn frame_len(ctx: &XdpContext) -> usize {
    core::hint::black_box(ctx.data_end() - ctx.data())
}

/// Moves the start of the packet by `delta` bytes (negative: prepend room).
/// Every pointer into the packet is invalid afterwards.
#[inline(always)]
pub(crate) fn adjust_head(ctx: &XdpContext, delta: i32) -> bool {
    // SAFETY: `ctx.ctx` is the program's own context; the kernel checks `delta`.
    unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) == 0 }
}
