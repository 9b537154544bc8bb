//! Node identities: what a certificate proves and what the allow-list
//! names. An identity is a URI subject alternative name of the form
//! `edge://<name>`, where the name is a DNS-style label sequence (lower
//! case letters, digits, `-` and `.`), for example `edge://pop-fra1`.

use std::{fmt, str::FromStr};

/// The URI scheme of node identities.
pub const SCHEME: &str = "edge://";

/// The longest identity name accepted (a DNS name's limit).
pub const MAX_NAME: usize = 253;

/// A node identity, `edge://<name>`, always in canonical (lower case) form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity(String);

/// Why a string is not a node identity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// It does not start with `edge://`.
    #[error("`{0}` is not a node identity: it must look like `edge://pop-fra1`")]
    Scheme(String),
    /// The name part is empty, too long or has characters other than
    /// letters, digits, `-` and `.`.
    #[error(
        "`{0}` is not a node identity: the name after `edge://` must be 1 to 253 letters, digits, `-` or `.`"
    )]
    Name(String),
}

impl Identity {
    /// The name after `edge://` (`pop-fra1`).
    pub fn name(&self) -> &str {
        &self.0[SCHEME.len()..]
    }

    /// The whole URI (`edge://pop-fra1`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identity of a node name (`pop-fra1` → `edge://pop-fra1`).
    pub fn from_name(name: &str) -> Result<Self, IdentityError> {
        format!("{SCHEME}{name}").parse()
    }
}

impl FromStr for Identity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let Some(name) = lower.strip_prefix(SCHEME) else {
            return Err(IdentityError::Scheme(s.to_string()));
        };
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && !name.starts_with(['.', '-'])
            && !name.ends_with('.')
            && !name.contains("..")
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(IdentityError::Name(s.to_string()));
        }
        Ok(Identity(lower))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_and_mixed_case() {
        let id: Identity = "edge://POP-fra1".parse().unwrap();
        assert_eq!(id.as_str(), "edge://pop-fra1");
        assert_eq!(id.name(), "pop-fra1");
        assert_eq!(
            Identity::from_name("pop-ams2.eu").unwrap().name(),
            "pop-ams2.eu"
        );
    }

    #[test]
    fn rejects_what_is_not_an_identity() {
        for bad in [
            "pop-fra1",
            "https://pop-fra1",
            "edge://",
            "edge://pop fra1",
            "edge://pop/fra1",
            "edge://.pop",
            "edge://pop.",
            "edge://a..b",
            "edge://-pop",
            "edge://pöp",
        ] {
            assert!(bad.parse::<Identity>().is_err(), "{bad}");
        }
        assert!(Identity::from_name(&"a".repeat(254)).is_err());
    }
}
