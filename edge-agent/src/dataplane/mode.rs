//! How the XDP program is attached to an interface.

use std::{fmt, str::FromStr};

/// XDP attachment mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic when the driver cannot.
    #[default]
    Auto,
    /// Native (driver) mode only: fail if the driver has no XDP support.
    Native,
    /// Generic (skb) mode: works on any interface, after the skb is built.
    Generic,
}

impl AttachMode {
    /// The aya mode for a single attach attempt (never called on `Auto`).
    pub(crate) fn xdp_mode(self) -> aya::programs::XdpMode {
        match self {
            AttachMode::Native | AttachMode::Auto => aya::programs::XdpMode::Driver,
            AttachMode::Generic => aya::programs::XdpMode::Skb,
        }
    }
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachMode::Auto => "auto",
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        })
    }
}

impl FromStr for AttachMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(AttachMode::Auto),
            "native" | "driver" => Ok(AttachMode::Native),
            "generic" | "skb" => Ok(AttachMode::Generic),
            other => Err(format!(
                "unknown XDP mode `{other}`: expected auto, native or generic"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_mode() {
        for mode in [AttachMode::Auto, AttachMode::Native, AttachMode::Generic] {
            assert_eq!(mode.to_string().parse::<AttachMode>(), Ok(mode));
        }
        assert_eq!("skb".parse::<AttachMode>(), Ok(AttachMode::Generic));
        let err = "offload".parse::<AttachMode>().unwrap_err();
        assert!(err.contains("auto, native or generic"), "{err}");
    }
}
