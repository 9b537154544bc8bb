use super::*;

fn spec() -> DoorsSpec {
    DoorsSpec {
        doors: vec![
            DoorSpec {
                protocol: Protocol::Tcp,
                port: 4179,
                policy: DoorPolicy::RateLimited,
            },
            DoorSpec {
                protocol: Protocol::Udp,
                port: 3784,
                policy: DoorPolicy::ListedOnly,
            },
        ],
        syn_rate: 20,
        syn_burst: 40,
        v4_prefix: 32,
        v6_prefix: 64,
    }
}

#[test]
fn the_map_value_holds_the_doors_and_the_bucket_in_nanoseconds() {
    let m = spec().to_map().unwrap();
    assert_eq!(m.count, 2);
    assert_eq!(
        (m.doors[0].port, m.doors[0].proto, m.doors[0].policy),
        (4179, 6, DOOR_RATE_LIMITED)
    );
    assert_eq!(
        (m.doors[1].port, m.doors[1].proto, m.doors[1].policy),
        (3784, 17, DOOR_LISTED_ONLY)
    );
    assert_eq!(m.doors[2], Door::default());
    assert_eq!(m.token_ns, 50_000_000);
    assert_eq!(m.burst_ns, 40 * 50_000_000);
    assert_eq!((m.v4_prefix, m.v6_prefix), (32, 64));
}

#[test]
fn bad_doors_are_refused_before_the_map() {
    let too_many = DoorsSpec {
        doors: vec![spec().doors[0]; MAX_DOORS + 1],
        ..spec()
    };
    assert!(too_many.to_map().unwrap_err().contains("holds 8"));
    for bad in [
        DoorsSpec {
            syn_rate: 0,
            ..spec()
        },
        DoorsSpec {
            syn_burst: 0,
            ..spec()
        },
        DoorsSpec {
            v4_prefix: 33,
            ..spec()
        },
        DoorsSpec {
            v6_prefix: 8,
            ..spec()
        },
    ] {
        assert!(bad.to_map().is_err(), "{bad:?}");
    }
}
