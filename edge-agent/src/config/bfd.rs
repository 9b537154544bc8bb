//! BFD (RFC 5880) settings: `[bfd]`, the defaults of upstream sessions;
//! `bfd` under each `[[upstream]]` (`true`, `false` or a table of
//! overrides), into the neighbour's [`SessionConfig`]; and `bfd` under
//! `[overlay]`, into the adjacencies' [`Timers`] (without a key: the
//! overlay derives it from each adjacency's TLS session). This module
//! owns the checks of BFD intervals, detect multipliers and keys, and the
//! reading of `secret_file` (only with the files check, like
//! `md5_key_file`).

use std::{path::Path, time::Duration};

use super::{
    Checks, Report, raw,
    raw::BfdSetting,
    upstream::trim_newline,
    values::{self, choices, show_duration},
};
use crate::bfd::{
    SessionConfig, Timers,
    auth::{AuthKey, MAX_KEY_LEN},
};

/// The timers of an upstream session unless `[bfd]` or the neighbour's
/// own `bfd` table says otherwise.
pub(super) const UPSTREAM_DEFAULT: Timers = Timers {
    min_tx: Duration::from_millis(100),
    min_rx: Duration::from_millis(100),
    multiplier: 3,
};

/// The timers of every overlay adjacency unless `[overlay] bfd` says
/// otherwise (multihop paths are slower and less even than one link).
pub(super) const OVERLAY_DEFAULT: Timers = Timers {
    min_tx: Duration::from_millis(300),
    min_rx: Duration::from_millis(300),
    multiplier: 3,
};

/// The shortest interval accepted.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest interval accepted.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// The authentication types `auth.type` takes.
const TYPES: [&str; 2] = ["keyed-sha1", "meticulous-keyed-sha1"];

/// `[bfd]`, parsed: what an upstream session takes unless its own `bfd`
/// table says otherwise. Each part is `None` after a problem (already
/// reported).
#[derive(Debug)]
pub(super) struct Defaults {
    min_tx: Option<Duration>,
    min_rx: Option<Duration>,
    multiplier: Option<u8>,
    /// `Some(None)`: no key (or a key file not read without the files
    /// check).
    auth: Option<Option<AuthKey>>,
}

/// Parses `[bfd]`. It only gives defaults: no session is made unless a
/// neighbour asks for one.
pub(super) fn defaults(raw: &raw::Bfd, checks: Checks, report: &mut Report) -> Defaults {
    let d = UPSTREAM_DEFAULT;
    Defaults {
        min_tx: interval_or(raw.min_tx.as_deref(), "bfd.min_tx", Some(d.min_tx), report),
        min_rx: interval_or(raw.min_rx.as_deref(), "bfd.min_rx", Some(d.min_rx), report),
        multiplier: multiplier_or(raw.multiplier, "bfd.multiplier", Some(d.multiplier), report),
        auth: match &raw.auth {
            None => Some(None),
            Some(auth) => self::auth(auth, "bfd.auth", checks, report),
        },
    }
}

/// `bfd` of the neighbour at `key` (`upstream[0]`): `Some(None)` for no
/// session, `None` after a problem (here or in `[bfd]`).
pub(super) fn upstream(
    raw: Option<&BfdSetting>,
    key: &str,
    defaults: &Defaults,
    checks: Checks,
    report: &mut Report,
) -> Option<Option<SessionConfig>> {
    let (min_tx, min_rx, multiplier, auth) = match raw {
        None | Some(BfdSetting::On(false)) => return Some(None),
        Some(BfdSetting::On(true)) => (
            defaults.min_tx,
            defaults.min_rx,
            defaults.multiplier,
            defaults.auth.clone(),
        ),
        Some(BfdSetting::Table(table)) => {
            let key = format!("{key}.bfd");
            (
                interval_or(
                    table.min_tx.as_deref(),
                    &format!("{key}.min_tx"),
                    defaults.min_tx,
                    report,
                ),
                interval_or(
                    table.min_rx.as_deref(),
                    &format!("{key}.min_rx"),
                    defaults.min_rx,
                    report,
                ),
                multiplier_or(
                    table.multiplier,
                    &format!("{key}.multiplier"),
                    defaults.multiplier,
                    report,
                ),
                // A key given here replaces the default one entirely.
                match &table.auth {
                    None => defaults.auth.clone(),
                    Some(auth) => self::auth(auth, &format!("{key}.auth"), checks, report),
                },
            )
        }
    };
    Some(Some(SessionConfig {
        timers: Timers {
            min_tx: min_tx?,
            min_rx: min_rx?,
            multiplier: multiplier?,
        },
        auth: auth?,
    }))
}

/// `bfd` under `[overlay]`: on with [`OVERLAY_DEFAULT`] unless turned off
/// or given other timers; `None` after a problem.
pub(super) fn overlay(raw: Option<&BfdSetting>, report: &mut Report) -> Option<Option<Timers>> {
    let d = OVERLAY_DEFAULT;
    let table = match raw {
        None | Some(BfdSetting::On(true)) => return Some(Some(d)),
        Some(BfdSetting::On(false)) => return Some(None),
        Some(BfdSetting::Table(table)) => table,
    };
    let refused = table.auth.is_some();
    if refused {
        report.add(
            "overlay.bfd.auth",
            "the overlay's BFD key is derived from each adjacency's TLS session, so there is nothing to configure",
            "remove auth from overlay.bfd: every adjacency's BFD packets are authenticated already",
        );
    }
    let min_tx = interval_or(
        table.min_tx.as_deref(),
        "overlay.bfd.min_tx",
        Some(d.min_tx),
        report,
    );
    let min_rx = interval_or(
        table.min_rx.as_deref(),
        "overlay.bfd.min_rx",
        Some(d.min_rx),
        report,
    );
    let multiplier = multiplier_or(
        table.multiplier,
        "overlay.bfd.multiplier",
        Some(d.multiplier),
        report,
    );
    if refused {
        return None;
    }
    Some(Some(Timers {
        min_tx: min_tx?,
        min_rx: min_rx?,
        multiplier: multiplier?,
    }))
}

/// The interval at `key` if given, else `default`; `None` after a
/// problem.
fn interval_or(
    raw: Option<&str>,
    key: &str,
    default: Option<Duration>,
    report: &mut Report,
) -> Option<Duration> {
    match raw {
        None => default,
        Some(text) => report.check(key, interval(text)),
    }
}

/// A BFD interval: 10ms to 60s, in whole microseconds (what the packet
/// carries).
fn interval(text: &str) -> Result<Duration, values::Bad> {
    let d = values::duration(text)?;
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&d) {
        return Err(values::bad(
            format!("`{text}` is out of range for a BFD interval"),
            format!(
                "give {} to {}, e.g. \"{}\"",
                show_duration(MIN_INTERVAL),
                show_duration(MAX_INTERVAL),
                show_duration(UPSTREAM_DEFAULT.min_tx)
            ),
        ));
    }
    if d.subsec_nanos() % 1000 != 0 {
        return Err(values::bad(
            format!("`{text}` is not a whole number of microseconds"),
            "BFD packets carry intervals in microseconds: round it, e.g. \"100ms\" or \"12.5ms\"",
        ));
    }
    Ok(d)
}

/// The detect multiplier at `key` if given, else `default`; `None` after
/// a problem.
fn multiplier_or(
    raw: Option<i64>,
    key: &str,
    default: Option<u8>,
    report: &mut Report,
) -> Option<u8> {
    match raw {
        None => default,
        Some(0) => {
            report.add(
                key,
                "a detect multiplier of 0 would never detect anything",
                "give 1 to 255 missed intervals before the path is declared down; 3 is usual",
            );
            None
        }
        Some(n) => report.check(
            key,
            values::int::<u8>(n, 1, 255, "a detect multiplier (one byte)"),
        ),
    }
}

/// `auth` at `key` (`bfd.auth`, `upstream[0].bfd.auth`): `Some(None)`
/// when the secret is in a file that is not read (without the files
/// check), `None` after a problem.
fn auth(
    raw: &raw::BfdAuth,
    key: &str,
    checks: Checks,
    report: &mut Report,
) -> Option<Option<AuthKey>> {
    let meticulous = match raw.kind.as_deref() {
        None => {
            report.missing(
                format!("{key}.type"),
                format!(
                    "give the authentication type agreed with the neighbour: {}",
                    choices(&TYPES)
                ),
            );
            None
        }
        Some("keyed-sha1") => Some(false),
        Some("meticulous-keyed-sha1") => Some(true),
        Some(other) => {
            report.add(
                format!("{key}.type"),
                format!("unknown authentication type `{other}`"),
                format!("give {}", choices(&TYPES)),
            );
            None
        }
    };
    let key_id = match raw.key_id {
        None => {
            report.missing(
                format!("{key}.key_id"),
                "give the key ID agreed with the neighbour (0 to 255), e.g. key_id = 1",
            );
            None
        }
        Some(n) => report.check(
            format!("{key}.key_id"),
            values::int::<u8>(n, 0, 255, "a BFD key ID"),
        ),
    };
    let secret = secret(raw, key, checks, report);
    let (meticulous, key_id, secret) = (meticulous?, key_id?, secret?);
    Some(secret.map(|secret| AuthKey {
        meticulous,
        key_id,
        secret,
    }))
}

/// `secret` or `secret_file`: `Some(None)` for a file not read (without
/// the files check), `None` after a problem.
fn secret(
    raw: &raw::BfdAuth,
    key: &str,
    checks: Checks,
    report: &mut Report,
) -> Option<Option<Vec<u8>>> {
    let (bytes, field) = match (&raw.secret, &raw.secret_file) {
        (None, None) => {
            report.add(
                format!("{key}.secret"),
                "missing: auth needs a secret",
                "give secret = \"...\", or secret_file = \"/etc/edge/bfd.key\" to keep it out of the config file",
            );
            return None;
        }
        (Some(_), Some(_)) => {
            report.add(
                format!("{key}.secret"),
                "both secret and secret_file are given",
                "give the secret in one place: secret_file keeps it out of the config file",
            );
            return None;
        }
        (Some(text), None) => (text.as_bytes().to_vec(), "secret"),
        (None, Some(path)) => {
            let path = report.check(format!("{key}.secret_file"), values::abs_path(path))?;
            if !checks.files {
                // Not read: validating a config for another host.
                return Some(None);
            }
            match std::fs::read(&path) {
                Ok(bytes) => (trim_newline(bytes), "secret_file"),
                Err(e) => {
                    report.add(
                        format!("{key}.secret_file"),
                        format!("cannot read {}: {e}", Path::new(&path).display()),
                        "give a file the daemon can read, holding the secret (a trailing newline is ignored)",
                    );
                    return None;
                }
            }
        }
    };
    if bytes.is_empty() {
        report.add(
            format!("{key}.{field}"),
            "the BFD secret is empty",
            "give the secret agreed with the neighbour, or leave auth out for no authentication",
        );
        return None;
    }
    if bytes.len() > MAX_KEY_LEN {
        report.add(
            format!("{key}.{field}"),
            format!(
                "the BFD secret is {} bytes long; Keyed SHA1 carries at most {MAX_KEY_LEN}",
                bytes.len()
            ),
            format!("agree on a secret of 1 to {MAX_KEY_LEN} bytes with the neighbour"),
        );
        return None;
    }
    Some(Some(bytes))
}

#[cfg(test)]
#[path = "bfd_tests.rs"]
mod tests;
