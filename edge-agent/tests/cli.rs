//! The `edge-agent xdp` commands as an operator (and `cargo xtask
//! load/unload`) runs them: attach and pin inside a namespace, read the
//! counters, replace, detach; and the messages for bad input.

use std::{
    net::UdpSocket,
    process::{Command, Output},
};

use edge_tests::{netns::PopAndClient, pins::PinDir, plan::underlay_v4, privilege::require_root};

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(args)
        .output()
        .expect("run edge-agent")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "edge-agent failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of_failure(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "edge-agent should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn attach_stats_replace_detach() {
    if !require_root("attach_stats_replace_detach") {
        return;
    }
    let PopAndClient { pop, client } = PopAndClient::new();
    let pins = PinDir::new();
    let pin_dir = pins.path().to_str().expect("utf-8 path");
    let attach = [
        "--netns",
        pop.name(),
        "xdp",
        "attach",
        "--iface",
        "pop0",
        "--mode",
        "native",
        "--pin-root",
        pin_dir,
    ];

    let out = stdout(&agent(&attach));
    assert!(
        out.contains("attached edge_xdp to pop0") && out.contains("native mode"),
        "{out}"
    );
    assert!(pop.xdp_program("pop0").is_some_and(|p| p.native));

    client.run(|| {
        let socket = UdpSocket::bind((underlay_v4(2), 0)).expect("bind");
        for _ in 0..7 {
            socket.send_to(b"x", (underlay_v4(1), 9)).expect("send");
        }
    });
    let stats_args = ["xdp", "stats", "--iface", "pop0", "--pin-root", pin_dir];
    let stats = stdout(&agent(&stats_args));
    let ipv4: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("ipv4")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ipv4 line in:\n{stats}"));
    assert!(ipv4 >= 7, "{stats}");

    let out = stdout(&agent(&attach));
    assert!(out.contains("replaced the program"), "{out}");

    let detach = ["xdp", "detach", "--iface", "pop0", "--pin-root", pin_dir];
    let out = stdout(&agent(&detach));
    assert!(out.contains("detached edge from pop0"), "{out}");
    assert_eq!(pop.xdp_program("pop0"), None);
    let err = stderr_of_failure(&agent(&detach));
    assert!(
        err.contains("detaching from pop0") && err.contains("edge has no pinned XDP attachment"),
        "{err}"
    );
}

#[test]
fn bad_input_is_refused_with_a_hint() {
    if !require_root("bad_input_is_refused_with_a_hint") {
        return;
    }
    let PopAndClient { pop, .. } = PopAndClient::new();
    let pins = PinDir::new();
    let pin_dir = pins.path().to_str().expect("utf-8 path");

    let err = stderr_of_failure(&agent(&[
        "xdp", "attach", "--iface", "pop0", "--mode", "offload",
    ]));
    assert!(err.contains("expected auto, native or generic"), "{err}");

    let err = stderr_of_failure(&agent(&[
        "--netns",
        "edge-no-such-ns",
        "xdp",
        "stats",
        "--iface",
        "x",
    ]));
    assert!(
        err.contains("network namespace `edge-no-such-ns` not found")
            && err.contains("ip netns list"),
        "{err}"
    );

    let err = stderr_of_failure(&agent(&[
        "--netns",
        pop.name(),
        "xdp",
        "attach",
        "--iface",
        "nosuch0",
        "--pin-root",
        pin_dir,
    ]));
    assert!(
        err.contains("no network interface named `nosuch0`"),
        "{err}"
    );

    let stats_args = ["xdp", "stats", "--iface", "pop0", "--pin-root", pin_dir];
    let err = stderr_of_failure(&agent(&stats_args));
    assert!(err.contains("is edge attached to pop0?"), "{err}");
}

/// `edge-agent pki` makes a CA, node certificates and a CRL that the
/// overlay's trust loads (and refuses where it must); it never overwrites a
/// key unless told to.
#[test]
fn pki_makes_material_the_overlay_accepts() {
    use edge_agent::overlay::{
        identity::Identity,
        trust::{Trust, TrustConfig, TrustError},
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    stdout(&agent(&["pki", "ca", "--out", d]));
    for name in ["pop-a", "pop-b"] {
        stdout(&agent(&[
            "pki", "node", "--ca", d, "--name", name, "--out", d,
        ]));
    }
    let again = stderr_of_failure(&agent(&[
        "pki", "node", "--ca", d, "--name", "pop-a", "--out", d,
    ]));
    assert!(again.contains("--force"), "{again}");
    let mode = |f: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!((mode("ca.key"), mode("pop-a.key")), (0o600, 0o600));
    let config = |name: &str, crl: bool| TrustConfig {
        ca_bundle: dir.path().join("ca.pem"),
        cert: dir.path().join(format!("{name}.pem")),
        key: dir.path().join(format!("{name}.key")),
        crl: crl.then(|| dir.path().join("crl.pem")),
        allow: ["pop-a", "pop-b"]
            .iter()
            .map(|n| Identity::from_name(n).unwrap())
            .collect(),
        handshake_timeout: std::time::Duration::from_secs(2),
    };
    let trust = Trust::load(&config("pop-a", false)).unwrap();
    assert_eq!(trust.identity().as_str(), "edge://pop-a");
    let crl = dir.path().join("crl.pem");
    let cert = dir.path().join("pop-b.pem");
    stdout(&agent(&[
        "pki",
        "revoke",
        "--ca",
        d,
        "--cert",
        cert.to_str().unwrap(),
        "--crl",
        crl.to_str().unwrap(),
    ]));
    // pop-a still loads with the CRL; pop-b, revoked, does not.
    Trust::load(&config("pop-a", true)).unwrap();
    match Trust::load(&config("pop-b", true)) {
        Err(TrustError::OwnCertificate { .. }) => {}
        other => panic!("a revoked certificate must not load: {other:?}"),
    }
    let expired = stdout(&agent(&[
        "pki",
        "node",
        "--ca",
        d,
        "--name",
        "pop-c",
        "--out",
        d,
        "--expired",
    ]));
    assert!(!expired.is_empty());
    let error = Trust::load(&config("pop-c", false))
        .unwrap_err()
        .to_string();
    assert!(error.contains("expired"), "{error}");
}
