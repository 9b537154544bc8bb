//! A second, deliberately simple reader of BGP UPDATEs: only what must
//! survive any decoding (the prefixes a peer withdraws and announces),
//! written from RFC 4271 section 4.3 and RFC 4760 without the codec's
//! error handling, so the two can be compared.

use std::net::{Ipv4Addr, Ipv6Addr};

use edge_agent::bgp::message::Prefix;

/// The unicast prefixes an UPDATE (a whole message, header included)
/// withdraws and announces, as far as its framing can be read: body
/// withdrawn routes and MP_UNREACH_NLRI of AFI 1/2 SAFI 1 for the first;
/// body NLRI and MP_REACH_NLRI of AFI 1/2 SAFI 1 for the second. `None`
/// when the framing itself is broken (the codec resets the session then).
pub fn unicast_prefixes(message: &[u8]) -> Option<(Vec<Prefix>, Vec<Prefix>)> {
    let body = message.get(19..)?;
    let wlen = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let withdrawn_field = body.get(2..2 + wlen)?;
    let rest = body.get(2 + wlen..)?;
    let alen = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let attrs = rest.get(2..2 + alen)?;
    let nlri_field = rest.get(2 + alen..)?;
    let mut withdrawn = prefixes(withdrawn_field, false)?;
    let mut announced = prefixes(nlri_field, false)?;
    let mut at = 0;
    while at < attrs.len() {
        // An attribute header cut short, or an attribute overrunning the
        // list: the codec treats the UPDATE as withdrawn; what was read so
        // far still counts.
        let header = |i: usize| attrs.get(at + i).copied();
        let (Some(flags), Some(kind)) = (header(0), header(1)) else {
            break;
        };
        let (len, head) = if flags & 0x10 != 0 {
            let (Some(hi), Some(lo)) = (header(2), header(3)) else {
                break;
            };
            (usize::from(u16::from_be_bytes([hi, lo])), 4)
        } else {
            let Some(len) = header(2) else {
                break;
            };
            (usize::from(len), 3)
        };
        let Some(value) = attrs.get(at + head..at + head + len) else {
            break;
        };
        at += head + len;
        match kind {
            14 => {
                let (afi, safi, hop_len) = (
                    u16::from_be_bytes([*value.first()?, *value.get(1)?]),
                    *value.get(2)?,
                    usize::from(*value.get(3)?),
                );
                if safi == 1
                    && (afi == 1 || afi == 2)
                    && let Some(field) = value.get(4 + hop_len + 1..)
                {
                    announced.extend(prefixes(field, afi == 2)?);
                }
            }
            15 => {
                let (afi, safi) = (
                    u16::from_be_bytes([*value.first()?, *value.get(1)?]),
                    *value.get(2)?,
                );
                if safi == 1 && (afi == 1 || afi == 2) {
                    withdrawn.extend(prefixes(value.get(3..)?, afi == 2)?);
                }
            }
            _ => {}
        }
    }
    Some((withdrawn, announced))
}

/// Prefixes of an NLRI field; `None` if one is longer than its family's
/// addresses or cut short.
fn prefixes(mut field: &[u8], v6: bool) -> Option<Vec<Prefix>> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = field.split_first() {
        let bytes = usize::from(len).div_ceil(8);
        if len > if v6 { 128 } else { 32 } || rest.len() < bytes {
            return None;
        }
        let mut addr = [0u8; 16];
        addr[..bytes].copy_from_slice(&rest[..bytes]);
        field = &rest[bytes..];
        out.push(if v6 {
            let a = u128::from_be_bytes(addr)
                & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            Prefix::V6 {
                addr: Ipv6Addr::from(a),
                len,
            }
        } else {
            let a = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]])
                & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            Prefix::V4 {
                addr: Ipv4Addr::from(a),
                len,
            }
        });
    }
    Some(out)
}
