//! NOTIFICATION error codes and subcodes with the RFCs' names (RFC 4271
//! section 4.5, RFC 4486 and RFC 8203 for Cease, RFC 6608 for the FSM,
//! RFC 7313, RFC 9687), how a [`Notification`] is built from them, and
//! how one reads in a log line.

use std::fmt;

use super::message::Notification;

/// A NOTIFICATION error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorCode {
    /// Message Header Error.
    MessageHeader = 1,
    /// OPEN Message Error.
    OpenMessage = 2,
    /// UPDATE Message Error.
    UpdateMessage = 3,
    /// Hold Timer Expired.
    HoldTimerExpired = 4,
    /// Finite State Machine Error.
    Fsm = 5,
    /// Cease.
    Cease = 6,
    /// ROUTE-REFRESH Message Error (RFC 7313).
    RouteRefresh = 7,
    /// Send Hold Timer Expired (RFC 9687).
    SendHoldTimerExpired = 8,
}

impl ErrorCode {
    /// The code a wire value stands for, if it is one we know.
    pub fn from_u8(code: u8) -> Option<ErrorCode> {
        Some(match code {
            1 => ErrorCode::MessageHeader,
            2 => ErrorCode::OpenMessage,
            3 => ErrorCode::UpdateMessage,
            4 => ErrorCode::HoldTimerExpired,
            5 => ErrorCode::Fsm,
            6 => ErrorCode::Cease,
            7 => ErrorCode::RouteRefresh,
            8 => ErrorCode::SendHoldTimerExpired,
            _ => return None,
        })
    }

    /// The RFC's name.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::MessageHeader => "Message Header Error",
            ErrorCode::OpenMessage => "OPEN Message Error",
            ErrorCode::UpdateMessage => "UPDATE Message Error",
            ErrorCode::HoldTimerExpired => "Hold Timer Expired",
            ErrorCode::Fsm => "Finite State Machine Error",
            ErrorCode::Cease => "Cease",
            ErrorCode::RouteRefresh => "ROUTE-REFRESH Message Error",
            ErrorCode::SendHoldTimerExpired => "Send Hold Timer Expired",
        }
    }

    /// The name of `subcode` under this code, if it has one.
    fn subcode_name(self, subcode: u8) -> Option<&'static str> {
        match self {
            ErrorCode::MessageHeader => MessageHeaderError::from_u8(subcode).map(|s| s.name()),
            ErrorCode::OpenMessage => OpenMessageError::from_u8(subcode).map(|s| s.name()),
            ErrorCode::UpdateMessage => UpdateMessageError::from_u8(subcode).map(|s| s.name()),
            ErrorCode::Fsm => FsmError::from_u8(subcode).map(|s| s.name()),
            ErrorCode::Cease => CeaseSubcode::from_u8(subcode).map(|s| s.name()),
            ErrorCode::RouteRefresh => (subcode == 1).then_some("Invalid Message Length"),
            ErrorCode::HoldTimerExpired | ErrorCode::SendHoldTimerExpired => None,
        }
    }
}

/// A subcode: knows its error code and its wire value.
pub trait Subcode: Copy {
    /// The error code it belongs to.
    const CODE: ErrorCode;
    /// Its wire value.
    fn value(self) -> u8;
}

macro_rules! subcodes {
    ($(#[$meta:meta])* $name:ident: $code:expr, { $($(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value,)*
        }

        impl $name {
            /// The subcode a wire value stands for, if it is one we know.
            pub fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $($value => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The RFC's name.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl Subcode for $name {
            const CODE: ErrorCode = $code;
            fn value(self) -> u8 {
                self as u8
            }
        }
    };
}

subcodes!(
    /// Message Header Error subcodes (RFC 4271 section 6.1).
    MessageHeaderError: ErrorCode::MessageHeader, {
        /// The marker is not all ones.
        ConnectionNotSynchronized = 1 => "Connection Not Synchronized",
        /// The length field is out of range for the type.
        BadMessageLength = 2 => "Bad Message Length",
        /// An unknown message type.
        BadMessageType = 3 => "Bad Message Type",
    }
);

subcodes!(
    /// OPEN Message Error subcodes (RFC 4271 section 6.2, RFC 5492).
    OpenMessageError: ErrorCode::OpenMessage, {
        /// No more specific subcode applies.
        Unspecific = 0 => "Unspecific",
        /// Not version 4.
        UnsupportedVersionNumber = 1 => "Unsupported Version Number",
        /// The neighbour's ASN is not the configured one.
        BadPeerAs = 2 => "Bad Peer AS",
        /// The BGP identifier is invalid or ours.
        BadBgpIdentifier = 3 => "Bad BGP Identifier",
        /// An optional parameter we do not know.
        UnsupportedOptionalParameter = 4 => "Unsupported Optional Parameter",
        /// Hold time 1 or 2.
        UnacceptableHoldTime = 6 => "Unacceptable Hold Time",
        /// A capability we require is missing (RFC 5492).
        UnsupportedCapability = 7 => "Unsupported Capability",
    }
);

subcodes!(
    /// UPDATE Message Error subcodes (RFC 4271 section 6.3).
    UpdateMessageError: ErrorCode::UpdateMessage, {
        /// The attribute list cannot be parsed.
        MalformedAttributeList = 1 => "Malformed Attribute List",
        /// A well-known attribute we do not know.
        UnrecognizedWellKnownAttribute = 2 => "Unrecognized Well-known Attribute",
        /// A mandatory well-known attribute is missing.
        MissingWellKnownAttribute = 3 => "Missing Well-known Attribute",
        /// Flags that contradict the attribute type.
        AttributeFlagsError = 4 => "Attribute Flags Error",
        /// A length wrong for the attribute type.
        AttributeLengthError = 5 => "Attribute Length Error",
        /// ORIGIN out of range.
        InvalidOriginAttribute = 6 => "Invalid ORIGIN Attribute",
        /// NEXT_HOP unusable.
        InvalidNextHopAttribute = 8 => "Invalid NEXT_HOP Attribute",
        /// An optional attribute that does not parse.
        OptionalAttributeError = 9 => "Optional Attribute Error",
        /// NLRI that do not parse.
        InvalidNetworkField = 10 => "Invalid Network Field",
        /// AS_PATH that does not parse.
        MalformedAsPath = 11 => "Malformed AS_PATH",
    }
);

subcodes!(
    /// Finite State Machine Error subcodes (RFC 6608).
    FsmError: ErrorCode::Fsm, {
        /// No more specific subcode applies.
        Unspecified = 0 => "Unspecified Error",
        /// Anything but OPEN or NOTIFICATION in OpenSent.
        UnexpectedMessageInOpenSent = 1 => "Receive Unexpected Message in OpenSent State",
        /// Anything but KEEPALIVE or NOTIFICATION in OpenConfirm.
        UnexpectedMessageInOpenConfirm = 2 => "Receive Unexpected Message in OpenConfirm State",
        /// An OPEN in Established.
        UnexpectedMessageInEstablished = 3 => "Receive Unexpected Message in Established State",
    }
);

subcodes!(
    /// Cease subcodes (RFC 4486, RFC 8203, RFC 8538, RFC 9384).
    CeaseSubcode: ErrorCode::Cease, {
        /// The neighbour sent more prefixes than allowed.
        MaximumNumberOfPrefixesReached = 1 => "Maximum Number of Prefixes Reached",
        /// The session is shut down by the operator (with a message, RFC 8203).
        AdministrativeShutdown = 2 => "Administrative Shutdown",
        /// The neighbour was removed from the configuration.
        PeerDeconfigured = 3 => "Peer De-configured",
        /// The session is reset by the operator.
        AdministrativeReset = 4 => "Administrative Reset",
        /// The connection was not accepted.
        ConnectionRejected = 5 => "Connection Rejected",
        /// A configuration change requires a reset.
        OtherConfigurationChange = 6 => "Other Configuration Change",
        /// This connection lost a collision (RFC 4271 section 6.8).
        ConnectionCollisionResolution = 7 => "Connection Collision Resolution",
        /// Out of resources.
        OutOfResources = 8 => "Out of Resources",
        /// Hard reset (RFC 8538).
        HardReset = 9 => "Hard Reset",
        /// BFD declared the neighbour down (RFC 9384).
        BfdDown = 10 => "BFD Down",
    }
);

impl Notification {
    /// A NOTIFICATION with `subcode` and no data.
    pub fn new<S: Subcode>(subcode: S) -> Notification {
        Notification::with_data(subcode, Vec::new())
    }

    /// A NOTIFICATION with `subcode` and `data`.
    pub fn with_data<S: Subcode>(subcode: S, data: Vec<u8>) -> Notification {
        Notification {
            code: S::CODE as u8,
            subcode: subcode.value(),
            data,
        }
    }

    /// A NOTIFICATION of a code without subcodes (Hold Timer Expired, Send
    /// Hold Timer Expired): subcode 0.
    pub fn code_only(code: ErrorCode) -> Notification {
        Notification {
            code: code as u8,
            subcode: 0,
            data: Vec::new(),
        }
    }

    /// Whether this is `subcode` (of its code).
    pub fn is<S: Subcode>(&self, subcode: S) -> bool {
        self.code == S::CODE as u8 && self.subcode == subcode.value()
    }

    /// The RFC 8203 shutdown communication of a Cease/Administrative
    /// Shutdown or Reset, if it carries a valid one.
    pub fn shutdown_message(&self) -> Option<&str> {
        let shutdown = self.is(CeaseSubcode::AdministrativeShutdown)
            || self.is(CeaseSubcode::AdministrativeReset);
        let (len, text) = self.data.split_first()?;
        if !shutdown || text.len() < usize::from(*len) {
            return None;
        }
        std::str::from_utf8(&text[..usize::from(*len)]).ok()
    }
}

/// `Cease/Administrative Shutdown (6/2): "maintenance"`: names where they
/// are known, numbers always.
impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ErrorCode::from_u8(self.code) {
            Some(code) => {
                f.write_str(code.name())?;
                match code.subcode_name(self.subcode) {
                    Some(sub) => write!(f, "/{sub}")?,
                    None if self.subcode != 0 => write!(f, "/subcode {}", self.subcode)?,
                    None => {}
                }
            }
            None => write!(f, "unknown error code")?,
        }
        write!(f, " ({}/{})", self.code, self.subcode)?;
        if let Some(message) = self.shutdown_message().filter(|m| !m.is_empty()) {
            write!(f, ": {message:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcodes_carry_their_codes_and_wire_values() {
        let n = Notification::new(FsmError::UnexpectedMessageInOpenConfirm);
        assert_eq!((n.code, n.subcode), (5, 2));
        assert!(n.is(FsmError::UnexpectedMessageInOpenConfirm));
        assert!(!n.is(CeaseSubcode::AdministrativeShutdown));
        let n = Notification::with_data(OpenMessageError::UnsupportedCapability, vec![65, 4]);
        assert_eq!((n.code, n.subcode, n.data.as_slice()), (2, 7, &[65, 4][..]));
        assert_eq!(
            Notification::code_only(ErrorCode::HoldTimerExpired),
            Notification {
                code: 4,
                subcode: 0,
                data: vec![]
            }
        );
        for value in 0..=255u8 {
            if let Some(s) = CeaseSubcode::from_u8(value) {
                assert_eq!(s.value(), value);
            }
            if let Some(c) = ErrorCode::from_u8(value) {
                assert_eq!(c as u8, value);
            }
        }
    }

    #[test]
    fn notifications_read_well_in_logs_whatever_they_hold() {
        let mut shutdown = Notification::with_data(CeaseSubcode::AdministrativeShutdown, vec![5]);
        shutdown.data.extend_from_slice(b"maint");
        assert_eq!(
            shutdown.to_string(),
            "Cease/Administrative Shutdown (6/2): \"maint\""
        );
        assert_eq!(
            Notification::code_only(ErrorCode::HoldTimerExpired).to_string(),
            "Hold Timer Expired (4/0)"
        );
        let odd = Notification {
            code: 3,
            subcode: 200,
            data: vec![],
        };
        assert_eq!(odd.to_string(), "UPDATE Message Error/subcode 200 (3/200)");
        let unknown = Notification {
            code: 99,
            subcode: 1,
            data: vec![1, 2],
        };
        assert_eq!(unknown.to_string(), "unknown error code (99/1)");
        // A length beyond the data, or invalid UTF-8, is not a message.
        let cut = Notification::with_data(CeaseSubcode::AdministrativeShutdown, vec![9, b'a']);
        assert_eq!(cut.shutdown_message(), None);
        let bad = Notification::with_data(CeaseSubcode::AdministrativeShutdown, vec![1, 0xff]);
        assert_eq!(bad.shutdown_message(), None);
        assert_eq!(
            Notification::with_data(CeaseSubcode::AdministrativeShutdown, vec![])
                .shutdown_message(),
            None
        );
    }
}
