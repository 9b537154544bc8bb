//! The BGP finite state machine of one connection (RFC 4271 section 8),
//! sans I/O: inputs are events and decoded messages with the current time,
//! outputs are actions (connect, send, close, tell the speaker) and the
//! next deadline. The tokio layer around it owns sockets and clocks.
//!
//! Timers are deadlines (`Instant`s) the caller reports back with
//! [`Session::handle_timeout`]: ConnectRetry, Hold (negotiated: the smaller
//! of both proposals, 0 meaning none), Keepalive (a third of Hold), the
//! send hold timer (RFC 9687: writes stalled for that long end the session),
//! and the idle hold before an automatic restart.

use std::{
    collections::{HashSet, VecDeque},
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use super::{
    message::{AS_TRANS, Capability, Family, Message, Notification, Open, Prefix, Update},
    notification::{CeaseSubcode, ErrorCode, FsmError, OpenMessageError},
};

/// Settings of one BGP neighbour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our ASN.
    pub local_as: u32,
    /// The neighbour's ASN (checked against its OPEN).
    pub peer_as: u32,
    /// Our BGP identifier.
    pub bgp_id: Ipv4Addr,
    /// Hold time we propose (0, or at least 3 seconds).
    pub hold_time: u16,
    /// Time between connection attempts, and before an automatic restart.
    pub connect_retry: Duration,
    /// Wait for the neighbour to connect instead of connecting.
    pub passive: bool,
    /// Families we announce and accept (IPv4 and/or IPv6 unicast).
    pub families: Vec<Family>,
    /// Graceful restart (RFC 4724) as the restarting speaker: the restart
    /// time we ask helpers to keep our routes for, and whether this session
    /// follows a restart of ours (R bit, forwarding state preserved).
    pub graceful_restart: Option<GracefulRestart>,
    /// Most prefixes accepted from the neighbour before Cease.
    pub max_prefixes: Option<u32>,
}

/// Our graceful-restart settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GracefulRestart {
    /// Seconds the neighbour should keep our routes while we restart.
    pub restart_time: u16,
    /// This session follows our own restart: the data plane kept forwarding.
    pub restarted: bool,
}

/// RFC 4271 states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not trying.
    Idle,
    /// Connecting.
    Connect,
    /// Waiting for the neighbour to connect (or for ConnectRetry).
    Active,
    /// OPEN sent, waiting for the neighbour's.
    OpenSent,
    /// OPENs exchanged, waiting for KEEPALIVE.
    OpenConfirm,
    /// Up: routes are exchanged.
    Established,
}

/// What both OPENs agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Hold time in seconds (0: no keepalives, no hold timer).
    pub hold_time: u16,
    /// Both sides speak four-octet ASNs.
    pub four_octet_as: bool,
    /// Families both sides announced.
    pub families: Vec<Family>,
    /// The neighbour accepts ROUTE-REFRESH.
    pub route_refresh: bool,
    /// The neighbour's graceful-restart capability, if any.
    pub peer_graceful_restart: Option<Capability>,
    /// The neighbour's BGP identifier.
    pub peer_bgp_id: Ipv4Addr,
}

/// Why a session went down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// We were told to stop.
    Stopped,
    /// The neighbour sent a NOTIFICATION.
    NotificationReceived(Notification),
    /// We sent a NOTIFICATION.
    NotificationSent(Notification),
    /// The transport failed or closed.
    TransportClosed,
    /// BFD found the path to the neighbour down.
    PathDown,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::Stopped => f.write_str("stopped by the agent"),
            DownReason::NotificationReceived(n) => write!(f, "the neighbour sent {n}"),
            DownReason::NotificationSent(n) => write!(f, "we sent {n}"),
            DownReason::TransportClosed => f.write_str("the connection failed or was closed"),
            DownReason::PathDown => f.write_str("BFD found the path to the neighbour down"),
        }
    }
}

/// An input to the state machine.
#[allow(
    clippy::large_enum_variant,
    reason = "carries a Message, which is not boxed either"
)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Start (ManualStart, or AutomaticStart after an idle hold).
    Start,
    /// Stop: Cease with an Administrative Shutdown message (RFC 8203).
    Stop {
        /// The shutdown communication, at most 255 bytes of UTF-8.
        reason: String,
    },
    /// The transport connection is up (ours or the neighbour's).
    TransportConnected,
    /// The transport connection failed or was closed.
    TransportClosed,
    /// BFD found the path to the neighbour down (RFC 5882 §4.3): the
    /// session goes down at once, without a NOTIFICATION, which could not
    /// reach the neighbour anyway.
    PathDown,
    /// A decoded message arrived.
    Message(Message),
    /// The codec could not decode the input: send this and close.
    DecodeError(Notification),
    /// Writes to the transport are stalled (`true`) or move again (`false`).
    WriteBlocked(bool),
}

/// An output of the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a transport connection to the neighbour.
    Connect,
    /// Send this message.
    Send(Message),
    /// Close the transport (after sending what was queued).
    Close,
    /// The session changed state.
    StateChanged {
        /// From.
        from: State,
        /// To.
        to: State,
    },
    /// The session is Established with these parameters: (re)send every
    /// announcement, then End-of-RIB per family if graceful restart is on.
    Established(Negotiated),
    /// The neighbour asked for our routes again (ROUTE-REFRESH).
    ResendRoutes(Family),
    /// The session went down.
    Down(DownReason),
    /// How many prefixes the neighbour has announced to us now.
    ReceivedPrefixes(usize),
    /// An UPDATE from the neighbour, for whoever imports routes (the
    /// overlay does, through its import filter; upstream sessions do not).
    Received(Box<Update>),
}

/// The state machine of one connection to one neighbour.
pub struct Session {
    config: SessionConfig,
    state: State,
    negotiated: Option<Negotiated>,
    actions: VecDeque<Action>,
    connect_retry_at: Option<Instant>,
    hold_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    send_hold_at: Option<Instant>,
    idle_restart_at: Option<Instant>,
    stopped: bool,
    received: HashSet<Prefix>,
}

/// Hold timer while waiting for the neighbour's OPEN (RFC 4271: "a large value", 4 minutes).
const OPEN_HOLD: Duration = Duration::from_secs(240);
/// The send hold timer's floor (RFC 9687 recommends 8 minutes or more).
const SEND_HOLD_MIN: Duration = Duration::from_secs(480);

impl Session {
    /// A session in Idle; nothing happens before [`Input::Start`].
    pub fn new(config: SessionConfig) -> Self {
        Session {
            config,
            state: State::Idle,
            negotiated: None,
            actions: VecDeque::new(),
            connect_retry_at: None,
            hold_at: None,
            keepalive_at: None,
            send_hold_at: None,
            idle_restart_at: None,
            stopped: true,
            received: HashSet::new(),
        }
    }

    /// Our BGP identifier.
    pub fn local_bgp_id(&self) -> Ipv4Addr {
        self.config.bgp_id
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// What the OPENs agreed on, once past OpenSent.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The next action to carry out, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest deadline at which [`Session::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.connect_retry_at,
            self.hold_at,
            self.keepalive_at,
            self.send_hold_at,
            self.idle_restart_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Feeds one input at time `now`.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Start => self.start(now),
            Input::Stop { reason } => self.stop(&reason),
            Input::TransportConnected => self.connected(now),
            Input::TransportClosed => self.transport_closed(now),
            Input::PathDown => match self.state {
                State::Idle | State::Connect | State::Active => {}
                _ => self.go_idle(DownReason::PathDown, Some(now)),
            },
            Input::Message(message) => self.message(message, now),
            Input::DecodeError(notification) => self.fail(notification, now),
            Input::WriteBlocked(blocked) => {
                self.send_hold_at =
                    (blocked && self.state != State::Idle).then(|| now + self.send_hold_time());
            }
        }
    }

    /// Processes every deadline that has passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.send_hold_at.is_some_and(|t| t <= now) {
            // RFC 9687: the neighbour has not read from us for too long. The
            // NOTIFICATION may not get through; send it anyway, then close.
            self.fail(
                Notification::code_only(ErrorCode::SendHoldTimerExpired),
                now,
            );
            return;
        }
        if self.hold_at.is_some_and(|t| t <= now) {
            self.fail(Notification::code_only(ErrorCode::HoldTimerExpired), now);
            return;
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.actions.push_back(Action::Send(Message::Keepalive));
            self.keepalive_at = self.keepalive_interval().map(|k| now + k);
        }
        if self.connect_retry_at.is_some_and(|t| t <= now) {
            self.connect_retry_at = Some(now + self.config.connect_retry);
            match self.state {
                State::Connect | State::Active if !self.config.passive => {
                    self.actions.push_back(Action::Close);
                    self.actions.push_back(Action::Connect);
                    self.set_state(State::Connect);
                }
                _ => {}
            }
        }
        if self.idle_restart_at.is_some_and(|t| t <= now) {
            self.idle_restart_at = None;
            self.start(now);
        }
    }

    fn start(&mut self, now: Instant) {
        if self.state != State::Idle {
            return;
        }
        self.stopped = false;
        self.idle_restart_at = None;
        self.connect_retry_at = Some(now + self.config.connect_retry);
        if self.config.passive {
            self.set_state(State::Active);
        } else {
            self.actions.push_back(Action::Connect);
            self.set_state(State::Connect);
        }
    }

    fn stop(&mut self, reason: &str) {
        self.stopped = true;
        if matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            let n = shutdown_notification(reason);
            self.actions
                .push_back(Action::Send(Message::Notification(n)));
        }
        self.go_idle(DownReason::Stopped, None);
    }

    fn connected(&mut self, now: Instant) {
        match self.state {
            State::Connect | State::Active => {
                self.connect_retry_at = None;
                self.actions
                    .push_back(Action::Send(Message::Open(self.open())));
                self.hold_at = Some(now + OPEN_HOLD);
                self.set_state(State::OpenSent);
            }
            // A second connection is the collision logic's business, not ours.
            _ => {}
        }
    }

    fn transport_closed(&mut self, now: Instant) {
        match self.state {
            State::Idle => {}
            State::Connect | State::Active => {
                self.connect_retry_at = Some(now + self.config.connect_retry);
                self.set_state(State::Active);
            }
            _ => self.go_idle(DownReason::TransportClosed, Some(now)),
        }
    }

    fn message(&mut self, message: Message, now: Instant) {
        match (self.state, message) {
            (_, Message::Notification(n)) => {
                self.go_idle(DownReason::NotificationReceived(n), Some(now))
            }
            (State::OpenSent, Message::Open(open)) => self.open_received(&open, now),
            (State::OpenConfirm, Message::Keepalive) => {
                self.restart_hold(now);
                self.set_state(State::Established);
                if let Some(n) = self.negotiated.clone() {
                    self.actions.push_back(Action::Established(n));
                }
            }
            (State::Established, Message::Keepalive) => self.restart_hold(now),
            (State::Established, Message::Update(update)) => {
                self.restart_hold(now);
                self.update_received(update, now);
            }
            (State::Established, Message::RouteRefresh(rr)) => {
                self.restart_hold(now);
                self.actions.push_back(Action::ResendRoutes(rr.family));
            }
            (State::OpenSent, _) => self.fail(
                Notification::new(FsmError::UnexpectedMessageInOpenSent),
                now,
            ),
            (State::OpenConfirm, _) => self.fail(
                Notification::new(FsmError::UnexpectedMessageInOpenConfirm),
                now,
            ),
            (State::Established, Message::Open(_)) => self.fail(
                Notification::new(FsmError::UnexpectedMessageInEstablished),
                now,
            ),
            // Idle/Connect/Active have no transport to read from: nothing to do.
            _ => {}
        }
    }

    fn open_received(&mut self, open: &Open, now: Instant) {
        let peer_as = open
            .capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(open.my_as));
        if peer_as != self.config.peer_as {
            return self.fail(Notification::new(OpenMessageError::BadPeerAs), now);
        }
        if open.bgp_id == self.config.bgp_id {
            return self.fail(Notification::new(OpenMessageError::BadBgpIdentifier), now);
        }
        if let Some(missing) = self.missing_required(open) {
            let n = Notification::with_data(OpenMessageError::UnsupportedCapability, missing);
            return self.fail(n, now);
        }
        let hold_time = match (self.config.hold_time, open.hold_time) {
            (0, _) | (_, 0) => 0,
            (ours, theirs) => ours.min(theirs),
        };
        let theirs = |f: &Family| open.capabilities.contains(&Capability::Multiprotocol(*f));
        let peer_mp = open
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol(_)));
        let families = self
            .config
            .families
            .iter()
            // Without any multiprotocol capability, IPv4 unicast is implied (RFC 4760).
            .filter(|f| theirs(f) || (!peer_mp && **f == Family::IPV4_UNICAST))
            .copied()
            .collect();
        self.negotiated = Some(Negotiated {
            hold_time,
            four_octet_as: open
                .capabilities
                .iter()
                .any(|c| matches!(c, Capability::FourOctetAs(_))),
            families,
            route_refresh: open.capabilities.contains(&Capability::RouteRefresh),
            peer_graceful_restart: open
                .capabilities
                .iter()
                .find(|c| matches!(c, Capability::GracefulRestart { .. }))
                .cloned(),
            peer_bgp_id: open.bgp_id,
        });
        self.actions.push_back(Action::Send(Message::Keepalive));
        self.restart_hold(now);
        self.keepalive_at = self.keepalive_interval().map(|k| now + k);
        self.set_state(State::OpenConfirm);
    }

    /// The capability we need but the neighbour's OPEN lacks, encoded as
    /// NOTIFICATION 2/7 data (code, length, value), if any: four-octet ASNs
    /// when ours does not fit in two octets, multiprotocol for IPv6.
    fn missing_required(&self, open: &Open) -> Option<Vec<u8>> {
        if self.config.local_as > 0xffff
            && !open
                .capabilities
                .iter()
                .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            let mut data = vec![65, 4];
            data.extend_from_slice(&self.config.local_as.to_be_bytes());
            return Some(data);
        }
        let v6 = Family::IPV6_UNICAST;
        if self.config.families.contains(&v6)
            && self.config.families.len() == 1
            && !open.capabilities.contains(&Capability::Multiprotocol(v6))
        {
            return Some(vec![1, 4, 0, 2, 0, 1]);
        }
        None
    }

    fn update_received(&mut self, update: Update, now: Instant) {
        for prefix in update.withdrawn_prefixes() {
            self.received.remove(prefix);
        }
        for prefix in update.announced_prefixes() {
            self.received.insert(*prefix);
        }
        self.actions
            .push_back(Action::ReceivedPrefixes(self.received.len()));
        let family = if update.nlri.is_empty() {
            Family::IPV6_UNICAST
        } else {
            Family::IPV4_UNICAST
        };
        self.actions.push_back(Action::Received(Box::new(update)));
        if let Some(max) = self.config.max_prefixes {
            if self.received.len() > max as usize {
                // RFC 4486: data are AFI, SAFI, the limit.
                let mut n = Notification::new(CeaseSubcode::MaximumNumberOfPrefixesReached);
                n.data.extend_from_slice(&family.afi.to_be_bytes());
                n.data.push(family.safi);
                n.data.extend_from_slice(&max.to_be_bytes());
                self.fail(n, now);
            }
        }
    }

    /// Sends `n`, closes, and goes Idle (restarting after the idle hold
    /// unless stopped).
    fn fail(&mut self, n: Notification, now: Instant) {
        if !matches!(self.state, State::Idle | State::Connect | State::Active) {
            self.actions
                .push_back(Action::Send(Message::Notification(n.clone())));
        }
        self.go_idle(DownReason::NotificationSent(n), Some(now));
    }

    fn go_idle(&mut self, reason: DownReason, restart_from: Option<Instant>) {
        let was = self.state;
        self.actions.push_back(Action::Close);
        self.connect_retry_at = None;
        self.hold_at = None;
        self.keepalive_at = None;
        self.send_hold_at = None;
        self.negotiated = None;
        self.received.clear();
        self.set_state(State::Idle);
        if was != State::Idle {
            self.actions.push_back(Action::Down(reason));
        }
        self.idle_restart_at = match (self.stopped, restart_from) {
            (false, Some(now)) => Some(now + self.config.connect_retry),
            _ => None,
        };
    }

    fn restart_hold(&mut self, now: Instant) {
        self.hold_at = self.negotiated.as_ref().and_then(|n| match n.hold_time {
            0 => None,
            h => Some(now + Duration::from_secs(u64::from(h))),
        });
    }

    fn keepalive_interval(&self) -> Option<Duration> {
        match self.negotiated.as_ref()?.hold_time {
            0 => None,
            h => Some(Duration::from_secs(u64::from(h / 3).max(1))),
        }
    }

    fn send_hold_time(&self) -> Duration {
        let hold = self
            .negotiated
            .as_ref()
            .map_or(0, |n| u64::from(n.hold_time));
        SEND_HOLD_MIN.max(Duration::from_secs(2 * hold))
    }

    fn set_state(&mut self, to: State) {
        if self.state != to {
            self.actions.push_back(Action::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    /// Our OPEN: four-octet AS, multiprotocol per family, route refresh,
    /// graceful restart when configured.
    fn open(&self) -> Open {
        let mut capabilities: Vec<Capability> = self
            .config
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        capabilities.push(Capability::RouteRefresh);
        if let Some(gr) = self.config.graceful_restart {
            capabilities.push(Capability::GracefulRestart {
                restarted: gr.restarted,
                restart_time: gr.restart_time.min(0x0fff),
                families: self
                    .config
                    .families
                    .iter()
                    .map(|f| (*f, gr.restarted))
                    .collect(),
            });
        }
        capabilities.push(Capability::FourOctetAs(self.config.local_as));
        Open {
            version: 4,
            my_as: u16::try_from(self.config.local_as).unwrap_or(AS_TRANS),
            hold_time: self.config.hold_time,
            bgp_id: self.config.bgp_id,
            capabilities,
        }
    }
}

/// Cease / Administrative Shutdown with an RFC 8203 message (UTF-8, at most
/// 255 bytes, cut at a character boundary).
pub fn shutdown_notification(reason: &str) -> Notification {
    let mut end = reason.len().min(255);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut data = vec![end as u8];
    data.extend_from_slice(&reason.as_bytes()[..end]);
    Notification::with_data(CeaseSubcode::AdministrativeShutdown, data)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
