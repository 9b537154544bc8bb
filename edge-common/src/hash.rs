//! The flow hash: the same function in the XDP program (Maglev slot, GUE
//! source port, IPv6 flow label) and in userspace (tests, tools).

/// Hash of a flow's addresses (16 bytes each; IPv4 zero-padded), ports and
/// protocol. A word-wise multiply-rotate mix with a murmur3 finaliser: cheap
/// in BPF (no loops beyond a fixed unroll) and well spread over low bits,
/// which the Maglev modulo uses.
#[inline(always)]
pub fn flow_hash(src: &[u8; 16], dst: &[u8; 16], sport: u16, dport: u16, proto: u8) -> u32 {
    let mut h: u32 = 0x9e37_79b9 ^ u32::from(proto);
    let mut i = 0;
    while i < 16 {
        h = mix(
            h,
            u32::from_ne_bytes([src[i], src[i + 1], src[i + 2], src[i + 3]]),
        );
        h = mix(
            h,
            u32::from_ne_bytes([dst[i], dst[i + 1], dst[i + 2], dst[i + 3]]),
        );
        i += 4;
    }
    h = mix(h, (u32::from(sport) << 16) | u32::from(dport));
    fmix32(h)
}

#[inline(always)]
fn mix(h: u32, word: u32) -> u32 {
    let k = word
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// murmur3's 32-bit finaliser.
#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::flow_hash;

    #[test]
    fn every_field_changes_the_hash_and_low_bits_spread() {
        let (a, b) = ([1u8; 16], [2u8; 16]);
        let base = flow_hash(&a, &b, 1000, 80, 6);
        assert_ne!(base, flow_hash(&b, &a, 1000, 80, 6));
        assert_ne!(base, flow_hash(&a, &b, 1001, 80, 6));
        assert_ne!(base, flow_hash(&a, &b, 1000, 81, 6));
        assert_ne!(base, flow_hash(&a, &b, 1000, 80, 17));
        // Consecutive client ports must land evenly in 7 buckets (a prime modulus).
        let mut buckets = [0u32; 7];
        for port in 0..7000u16 {
            buckets[(flow_hash(&a, &b, port, 80, 6) % 7) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (900..1100).contains(&n)),
            "{buckets:?}"
        );
    }
}
