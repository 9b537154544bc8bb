use super::*;

/// A zone with every kind of record the service serves.
pub(crate) const ZONE: &str = "\
@        3600 SOA ns1 hostmaster 2026112201 7200 3600 1209600 300
@             NS  ns1
@             NS  ns2.cdn.test.
ns1           A   203.0.113.53
ns1           AAAA 2001:db8:ac::53
ns2           A   203.0.113.54
www           A   203.0.113.10
www           AAAA 2001:db8:ac::10
alias         CNAME www
chain         CNAME alias
away          CNAME www.example.
txt           TXT \"v=edge1\" \"second string\"
mail          MX  10 mx.cdn.test.
mx            A   203.0.113.25
_sip._udp     SRV 10 5 5060 www
@             CAA 0 issue \"ca.example\"
a.b.c         A   203.0.113.99
";

fn zone(text: &str) -> Result<Zone, ZoneError> {
    Zone::parse("cdn.test", text, 300, None)
}

fn lower(name: &str) -> LowerName {
    LowerName::new(&Name::from_ascii(name).unwrap())
}

#[test]
fn a_good_zone_is_indexed() {
    let z = zone(ZONE).unwrap();
    assert_eq!(z.origin().to_string(), "cdn.test.");
    assert_eq!(z.serial(), 2026112201);
    // min(SOA TTL 3600, MINIMUM 300).
    assert_eq!(z.negative_ttl(), 300);
    assert_eq!(z.len(), 17);
    match z.lookup(&lower("WWW.CDN.TEST.")) {
        Lookup::Node(sets) => {
            let types: Vec<_> = sets.iter().map(|s| s.record_type).collect();
            assert_eq!(types, [RecordType::A, RecordType::AAAA]);
            // Records without a TTL get the default.
            assert_eq!(sets[0].records[0].ttl(), 300);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        z.lookup(&lower("b.c.cdn.test.")),
        Lookup::EmptyNonTerminal
    ));
    assert!(matches!(
        z.lookup(&lower("c.cdn.test.")),
        Lookup::EmptyNonTerminal
    ));
    assert!(matches!(
        z.lookup(&lower("nope.cdn.test.")),
        Lookup::NxDomain
    ));
    assert!(
        z.to_string()
            .starts_with("cdn.test. serial 2026112201, 17 records, digest ")
    );
}

#[test]
fn the_digest_depends_on_content_only() {
    let a = zone(ZONE).unwrap();
    let reordered: String = ZONE.lines().rev().map(|l| format!("{l}\n")).collect();
    let b = Zone::parse("CDN.TEST.", &reordered.to_uppercase(), 300, None).unwrap();
    assert_eq!(a.digest(), b.digest());
    let changed = zone(&ZONE.replace("203.0.113.10", "203.0.113.11")).unwrap();
    assert_ne!(a.digest(), changed.digest());
    let ttl = Zone::parse("cdn.test", ZONE, 301, None).unwrap();
    assert_ne!(a.digest(), ttl.digest());
}

#[test]
fn broken_zones_are_rejected_with_the_record_and_the_rule() {
    let soa = "@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 203.0.113.53\n";
    let cases: &[(&str, String, &str)] = &[
        ("no SOA", "@ NS ns1\n".into(), "no SOA record"),
        (
            "no NS",
            "@ SOA ns1 hostmaster 1 2 3 4 5\n".into(),
            "no NS record",
        ),
        (
            "SOA below the apex",
            format!("{soa}www SOA ns1 hostmaster 1 2 3 4 5\n"),
            "at the apex only",
        ),
        (
            "delegation",
            format!("{soa}sub NS ns.elsewhere.example.\n"),
            "delegations are not served",
        ),
        (
            "CNAME at the apex",
            format!("{soa}@ CNAME www\n"),
            "cannot be at the apex",
        ),
        (
            "CNAME and other data",
            format!("{soa}www CNAME ns1\nwww TXT \"x\"\n"),
            "cannot share its name",
        ),
        ("wildcard", format!("{soa}* A 203.0.113.1\n"), "wildcards"),
        (
            "outside",
            format!("{soa}www.example. A 203.0.113.1\n"),
            "outside the zone",
        ),
        (
            "unsupported type",
            format!("{soa}www PTR ns1\n"),
            "type PTR is not served",
        ),
        (
            "syntax",
            format!("{soa}www A not-an-address\n"),
            "line 4: A record",
        ),
        (
            "class",
            format!("{soa}www CH A 203.0.113.1\n"),
            "only class IN",
        ),
    ];
    for (what, text, expect) in cases {
        match zone(text) {
            Ok(z) => panic!("{what}: accepted: {z}"),
            Err(e) => {
                assert!(e.to_string().starts_with("zone cdn.test: "), "{what}: {e}");
                assert!(e.message.contains(expect), "{what}: {e}");
            }
        }
    }
    assert!(Zone::parse(".", soa, 300, None).is_err());
    assert!(Zone::parse("bad..name", soa, 300, None).is_err());
}

#[test]
fn zone_sets_refuse_duplicates_and_nesting() {
    let soa = "@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n";
    let a = Zone::parse("cdn.test", soa, 300, None).unwrap();
    let b = Zone::parse("other.test", soa, 300, None).unwrap();
    let sub = Zone::parse("sub.cdn.test", soa, 300, None).unwrap();
    let set = ZoneSet::new(vec![a.clone(), b.clone()]).unwrap();
    assert_eq!(
        set.find(&lower("x.OTHER.test."))
            .map(|z| z.origin().to_string()),
        Some("other.test.".into())
    );
    assert!(set.find(&lower("test.")).is_none());
    assert!(set.find(&lower("xcdn.test.")).is_none());
    let dup = ZoneSet::new(vec![a.clone(), a.clone()]).unwrap_err();
    assert!(dup.message.contains("twice"), "{dup}");
    let nested = ZoneSet::new(vec![a, b, sub]).unwrap_err();
    assert!(nested.message.contains("nested"), "{nested}");
}
