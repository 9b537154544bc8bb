//! The thin rtnetlink layer: dumps what the agent owns from the kernel
//! (its interface, the addresses on it, the routes in its table with its
//! protocol number, the neighbour entries with its protocol number),
//! carries out one [`Change`] at a time, answers a few questions
//! (`route_to`, `link`, `neighbour_state`), and turns link and address
//! notifications into [`KernelEvent`]s.
//!
//! Requests go over a `NETLINK_ROUTE` socket of its own (the socket type of
//! `rtnetlink::sys`, the messages of `netlink-packet-route`), one request at
//! a time, each answered by an acknowledgement or a dump: so every reply is
//! matched to its request and every kernel error becomes a typed
//! [`NetlinkError`] that names the operation. The socket is opened with
//! strict checking, so dumps are filtered in the kernel (by table and
//! protocol, by interface) instead of copying a full routing table out,
//! and with extended acknowledgements, so errors carry the kernel's own
//! explanation.
//!
//! Ownership is never assumed: routes are deleted with the agent's table
//! and protocol as keys (the kernel leaves others' routes alone), and a
//! neighbour entry is only replaced or deleted after reading it back and
//! finding it is the agent's (or one the kernel learnt by itself).

use std::{
    fmt, io,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
};

use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope},
    link::{InfoKind, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage},
    neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourExtFlags, NeighbourFlags, NeighbourMessage,
        NeighbourState,
    },
    route::{
        RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol,
        RouteScope, RouteType, RouteVia,
    },
};
use rtnetlink::{
    packet_core::{
        NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR,
        NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    },
    sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket, protocols::NETLINK_ROUTE},
};
use tokio::sync::{Mutex, mpsc};

use super::state::{Actual, Address, Change, LinkState, Neighbour, Ownership, Route};
use crate::bgp::message::Prefix;

/// A kernel operation that failed, naming the operation (`what`, e.g.
/// "adding route 192.0.2.2/32 via 198.51.100.2 dev #3 in table 4179
/// (protocol 242)") so that the error reads well in a log.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused for lack of privilege (EPERM, EACCES).
    #[error(
        "{what} failed: permission denied; the agent needs CAP_NET_ADMIN in this network namespace (run it as root or grant it the capability)"
    )]
    PermissionDenied {
        /// The operation.
        what: String,
    },
    /// An interface the operation names does not exist (ENODEV).
    #[error(
        "{what} failed: no such network interface; check `ip link` (the agent tries again once the interface is there)"
    )]
    NoSuchDevice {
        /// The operation.
        what: String,
    },
    /// A kernel table is full or the kernel is out of memory (ENOBUFS,
    /// ENOSPC, ENOMEM).
    #[error(
        "{what} failed: the kernel table is full or out of memory; free entries or raise the limit (for neighbours: sysctl net.ipv4.neigh.default.gc_thresh3 / net.ipv6.neigh.default.gc_thresh3)"
    )]
    TableFull {
        /// The operation.
        what: String,
    },
    /// Something not the agent's is in the way (EEXIST, or an entry the
    /// agent does not own where it wanted to write its own).
    #[error(
        "{what} failed: an entry that is not the agent's is already there; the agent leaves it alone, remove it by hand if it is stale"
    )]
    Exists {
        /// The operation.
        what: String,
    },
    /// Any other kernel error.
    #[error(
        "{what} failed: the kernel answered \"{message}\" (errno {errno}); compare with `ip route` / `ip neigh` / `ip addr` and the kernel log"
    )]
    Kernel {
        /// The operation.
        what: String,
        /// The errno (positive).
        errno: i32,
        /// The kernel's explanation (its extended acknowledgement), or the
        /// errno's description.
        message: String,
    },
    /// The netlink socket itself failed (the error text names the
    /// operation).
    #[error("netlink socket failed: {0}; the agent retries, restart it if this persists")]
    Socket(#[source] io::Error),
    /// A kernel reply could not be decoded.
    #[error(
        "{what}: the kernel's reply could not be decoded; this is a bug in the agent or an unsupported kernel, please report it with `uname -r`"
    )]
    Malformed {
        /// The operation.
        what: String,
    },
}

impl NetlinkError {
    /// Whether the same change may succeed later as it is: everything but
    /// a reply the agent cannot decode and a lack of privilege (neither
    /// goes away by itself).
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            NetlinkError::Malformed { .. } | NetlinkError::PermissionDenied { .. }
        )
    }
}

/// The kind of interface [`Change::CreateLink`] made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// A `dummy` interface (the preferred kind).
    Dummy,
    /// An `ifb` interface, made where the kernel has no dummy driver.
    Ifb,
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkKind::Dummy => "dummy",
            LinkKind::Ifb => "ifb",
        })
    }
}

/// What [`Kernel::apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The change is in place (or, for a removal, the thing was already
    /// gone).
    Done,
    /// The agent's interface was created, of this kind.
    LinkCreated(LinkKind),
}

/// A link or address notification from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelEvent {
    /// An interface appeared, changed or went away.
    Link {
        /// Its index.
        index: u32,
        /// Its name (empty if the kernel did not say).
        name: String,
        /// Operationally up (`IFF_UP` and `IFF_RUNNING`).
        up: bool,
        /// It was deleted.
        removed: bool,
    },
    /// An address was added to or removed from an interface.
    Address {
        /// The interface index.
        index: u32,
        /// The address.
        addr: IpAddr,
        /// It was removed.
        removed: bool,
    },
    /// Anything else, including notifications lost because the socket's
    /// buffer overflowed: whoever listens should dump again.
    Other,
}

/// Access to the kernel's routing state through one `NETLINK_ROUTE`
/// socket, in the network namespace of the thread that opened it. Cheap
/// to clone (clones share the socket; their requests take turns).
#[derive(Clone)]
pub struct Kernel {
    inner: Arc<Inner>,
}

struct Inner {
    socket: Mutex<TokioSocket>,
    seq: AtomicU32,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel").finish_non_exhaustive()
    }
}

/// A kernel error answer to a request: positive errno and explanation.
#[derive(Debug)]
struct Nack {
    errno: i32,
    message: String,
}

impl Nack {
    fn into_error(self, what: String) -> NetlinkError {
        match self.errno {
            libc::EPERM | libc::EACCES => NetlinkError::PermissionDenied { what },
            libc::ENODEV => NetlinkError::NoSuchDevice { what },
            libc::ENOBUFS | libc::ENOSPC | libc::ENOMEM => NetlinkError::TableFull { what },
            libc::EEXIST => NetlinkError::Exists { what },
            errno => NetlinkError::Kernel {
                what,
                errno,
                message: self.message,
            },
        }
    }
}

/// What one request brought back (the kernel did not refuse it).
struct Replies {
    messages: Vec<RouteNetlinkMessage>,
    /// A dump changed under the kernel's feet (`NLM_F_DUMP_INTR`).
    interrupted: bool,
    /// Messages that could not be decoded (and were left out).
    undecodable: usize,
}

/// How many times a dump interrupted by concurrent changes is retried.
const DUMP_ATTEMPTS: usize = 3;
/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`).
const RECEIVE_BUFFER: usize = 1 << 20;
/// Netlink multicast groups (`RTNLGRP_*`) [`events`] listens to.
const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_IPV4_IFADDR: u32 = 5;
const RTNLGRP_IPV6_IFADDR: u32 = 9;
/// `NLMSGERR_ATTR_MSG`: the extended acknowledgement's text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Netlink header length.
const NLMSG_HDRLEN: usize = 16;

fn runtime_check(what: &str) -> Result<(), NetlinkError> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|_| {
            NetlinkError::Socket(io::Error::other(format!(
                "{what}: no tokio runtime; call it from within one"
            )))
        })
}

fn socket_error(what: &str, error: io::Error) -> NetlinkError {
    NetlinkError::Socket(io::Error::new(error.kind(), format!("{what}: {error}")))
}

impl Kernel {
    /// Opens a `NETLINK_ROUTE` socket in the calling thread's network
    /// namespace. Must be called from within a tokio runtime (the socket
    /// is registered with its reactor); no task is spawned: each request
    /// does its own I/O.
    pub fn open() -> Result<Kernel, NetlinkError> {
        const WHAT: &str = "opening the rtnetlink socket";
        runtime_check(WHAT)?;
        let mut socket = TokioSocket::new(NETLINK_ROUTE).map_err(|e| socket_error(WHAT, e))?;
        let raw = socket.socket_mut();
        raw.bind_auto().map_err(|e| socket_error(WHAT, e))?;
        raw.set_netlink_get_strict_chk(true)
            .map_err(|e| socket_error(WHAT, e))?;
        raw.set_ext_ack(true).map_err(|e| socket_error(WHAT, e))?;
        raw.set_cap_ack(true).map_err(|e| socket_error(WHAT, e))?;
        // Best effort: a small buffer only makes long dumps take more reads.
        let _ = raw.set_rx_buf_sz(RECEIVE_BUFFER);
        Ok(Kernel {
            inner: Arc::new(Inner {
                socket: Mutex::new(socket),
                seq: AtomicU32::new(1),
            }),
        })
    }

    /// Dumps what `own` marks as the agent's: the interface named
    /// `own.link` (index, administratively up), the universe-scope
    /// addresses on it (not the link-local ones the kernel makes), the
    /// IPv4 and IPv6 routes in table `own.table` with protocol
    /// `own.protocol`, and the IPv4 and IPv6 neighbour entries (on any
    /// interface) whose protocol is `own.protocol`.
    pub async fn dump(&self, own: &Ownership) -> Result<Actual, NetlinkError> {
        let mut actual = Actual::default();
        if let Some(link) = self.get_link(&own.link).await? {
            let index = link.header.index;
            actual.link = Some(LinkState {
                index,
                up: link.header.flags.contains(LinkFlags::Up),
            });
            actual.addresses = self.dump_addresses(&own.link, index).await?;
        }
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            for route in self.dump_routes(own, family).await? {
                actual.routes.insert(route.dst, route);
            }
        }
        actual.neighbours = self.dump_neighbours(own).await?;
        Ok(actual)
    }

    /// Carries out one change on what `own` marks as the agent's; see
    /// [`Change`]. Removing something already gone is `Ok(Applied::Done)`.
    ///
    /// - `CreateLink` makes a `dummy` interface, or an `ifb` one where the
    ///   kernel has no dummy driver, and says which.
    /// - Addresses get universe scope (usable as sources), IPv6 ones
    ///   without duplicate address detection (usable at once).
    /// - `AddRoute` adds a route to a destination the agent has none to,
    ///   exclusively: if the table holds someone else's route to it (same
    ///   destination and metric), that is [`NetlinkError::Exists`] and the
    ///   route is left alone. `ReplaceRoute` replaces the agent's own (the
    ///   kernel keys a replacement on destination and metric, so the
    ///   planner only uses it where the dump showed the agent's route).
    ///   `DelRoute` matches the table and protocol, so it never removes
    ///   another's route.
    /// - `AddNeighbour` makes a managed entry (the kernel resolves it and
    ///   keeps it resolved, kernel ≥ 5.16) marked with `own.protocol`. It
    ///   takes over an entry the kernel learnt by itself, but not a
    ///   permanent one or one with another protocol ([`NetlinkError::Exists`]).
    ///   `DelNeighbour` removes the entry only if it is the agent's.
    pub async fn apply(&self, own: &Ownership, change: &Change) -> Result<Applied, NetlinkError> {
        match change {
            Change::CreateLink => self.create_link(&own.link).await,
            Change::LinkUp => self.link_up(&own.link).await.map(|()| Applied::Done),
            Change::AddAddress(address) => self.add_address(&own.link, address).await,
            Change::DelAddress(address) => self.del_address(&own.link, address).await,
            Change::AddRoute(route) => self.new_route(own, route, true).await,
            Change::ReplaceRoute(route) => self.new_route(own, route, false).await,
            Change::DelRoute(route) => self.del_route(own, route).await,
            Change::AddNeighbour(neighbour) => self.add_neighbour(own, neighbour).await,
            Change::DelNeighbour(neighbour) => self.del_neighbour(own, neighbour).await,
        }
    }

    /// The kernel's route to `dst` (a lookup like `ip route get`, so
    /// policy rules apply): the gateway if any and the output interface
    /// index. `None` if the destination is unreachable (no route, or an
    /// unreachable, prohibit or blackhole one).
    pub async fn route_to(
        &self,
        dst: IpAddr,
    ) -> Result<Option<(Option<IpAddr>, u32)>, NetlinkError> {
        let what = format!("looking up the route to {dst}");
        let mut message = RouteMessage::default();
        message.header.address_family = family_of(dst);
        message.header.destination_prefix_length = full_length(dst);
        message
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        let replies = match self
            .exchange(RouteNetlinkMessage::GetRoute(message), 0, &what)
            .await?
        {
            Ok(replies) => replies,
            // ENETUNREACH: no route; EHOSTUNREACH / EACCES: unreachable or
            // prohibit routes; EINVAL: a blackhole route (IPv4).
            Err(nack)
                if matches!(
                    nack.errno,
                    libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EACCES | libc::EINVAL
                ) =>
            {
                return Ok(None);
            }
            Err(nack) => return Err(nack.into_error(what)),
        };
        let Some(route) = replies.messages.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewRoute(route) => Some(route),
            _ => None,
        }) else {
            return Err(NetlinkError::Malformed { what });
        };
        if !matches!(route.header.kind, RouteType::Unicast | RouteType::Local) {
            return Ok(None);
        }
        let (gateway, oif) = next_hop(&route);
        match oif {
            Some(oif) => Ok(Some((gateway, oif))),
            None => Err(NetlinkError::Malformed { what }),
        }
    }

    /// The index of interface `name` and whether it is operationally up
    /// (`IFF_UP` and `IFF_RUNNING`); `None` if there is no such interface.
    pub async fn link(&self, name: &str) -> Result<Option<(u32, bool)>, NetlinkError> {
        Ok(self.get_link(name).await?.map(|link| {
            let flags = link.header.flags;
            (
                link.header.index,
                flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running),
            )
        }))
    }

    /// The state bits (`NUD_*`, e.g. [`libc::NUD_REACHABLE`]) of the
    /// neighbour entry for `addr` on interface `ifindex`; `None` if there
    /// is none.
    pub async fn neighbour_state(
        &self,
        addr: IpAddr,
        ifindex: u32,
    ) -> Result<Option<u16>, NetlinkError> {
        Ok(self
            .get_neighbour(addr, ifindex)
            .await?
            .map(|n| u16::from(n.header.state)))
    }
}

// Reading.
impl Kernel {
    async fn get_link(&self, name: &str) -> Result<Option<LinkMessage>, NetlinkError> {
        let what = format!("looking up interface {name}");
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        message
            .attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        match self
            .exchange(RouteNetlinkMessage::GetLink(message), 0, &what)
            .await?
        {
            Ok(replies) => replies
                .messages
                .into_iter()
                .find_map(|m| match m {
                    RouteNetlinkMessage::NewLink(link) => Some(Some(link)),
                    _ => None,
                })
                .ok_or(NetlinkError::Malformed { what }),
            Err(nack) if nack.errno == libc::ENODEV => Ok(None),
            Err(nack) => Err(nack.into_error(what)),
        }
    }

    async fn dump_addresses(
        &self,
        link: &str,
        index: u32,
    ) -> Result<std::collections::BTreeSet<Address>, NetlinkError> {
        let what = format!("listing the addresses of {link} (#{index})");
        let mut message = AddressMessage::default();
        message.header.index = index;
        let messages = match self
            .dump_request(RouteNetlinkMessage::GetAddress(message), &what)
            .await?
        {
            Ok(messages) => messages,
            // The interface went away in between: it has no addresses.
            Err(nack) if nack.errno == libc::ENODEV => Vec::new(),
            Err(nack) => return Err(nack.into_error(what)),
        };
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a)
                    if a.header.index == index && a.header.scope == AddressScope::Universe =>
                {
                    address_of(&a).map(|addr| Address {
                        addr,
                        prefix_len: a.header.prefix_len,
                    })
                }
                _ => None,
            })
            .collect())
    }

    async fn dump_routes(
        &self,
        own: &Ownership,
        family: AddressFamily,
    ) -> Result<Vec<Route>, NetlinkError> {
        let what = format!(
            "listing the {} routes in table {} (protocol {})",
            if family == AddressFamily::Inet {
                "IPv4"
            } else {
                "IPv6"
            },
            own.table,
            own.protocol
        );
        let mut message = RouteMessage::default();
        message.header.address_family = family;
        message.header.table = header_table(own.table);
        message.header.protocol = RouteProtocol::from(own.protocol);
        message.attributes.push(RouteAttribute::Table(own.table));
        let messages = match self
            .dump_request(RouteNetlinkMessage::GetRoute(message), &what)
            .await?
        {
            Ok(messages) => messages,
            // The table does not exist (yet): nothing in it.
            Err(nack) if nack.errno == libc::ENOENT => Vec::new(),
            Err(nack) => return Err(nack.into_error(what)),
        };
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(route) => route_of(&route, own),
                _ => None,
            })
            .collect())
    }

    async fn dump_neighbours(
        &self,
        own: &Ownership,
    ) -> Result<std::collections::BTreeSet<Neighbour>, NetlinkError> {
        let what = format!("listing the neighbour entries (protocol {})", own.protocol);
        let message = NeighbourMessage::default();
        let messages = self
            .dump_request(RouteNetlinkMessage::GetNeighbour(message), &what)
            .await?
            .map_err(|nack| nack.into_error(what))?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) if neighbour_protocol(&n) == own.protocol => {
                    neighbour_addr(&n).map(|addr| Neighbour {
                        addr,
                        ifindex: n.header.ifindex,
                    })
                }
                _ => None,
            })
            .collect())
    }

    async fn get_neighbour(
        &self,
        addr: IpAddr,
        ifindex: u32,
    ) -> Result<Option<NeighbourMessage>, NetlinkError> {
        let what = format!("looking up neighbour {addr} on interface #{ifindex}");
        let mut message = NeighbourMessage::default();
        message.header.family = family_of(addr);
        message.header.ifindex = ifindex;
        message
            .attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::from(
                addr,
            )));
        match self
            .exchange(RouteNetlinkMessage::GetNeighbour(message), 0, &what)
            .await?
        {
            Ok(replies) => replies
                .messages
                .into_iter()
                .find_map(|m| match m {
                    RouteNetlinkMessage::NewNeighbour(n) => Some(Some(n)),
                    _ => None,
                })
                .ok_or(NetlinkError::Malformed { what }),
            Err(nack) if matches!(nack.errno, libc::ENOENT | libc::ENODEV) => Ok(None),
            Err(nack) => Err(nack.into_error(what)),
        }
    }

    async fn link_index(&self, name: &str) -> Result<Option<u32>, NetlinkError> {
        Ok(self.get_link(name).await?.map(|link| link.header.index))
    }
}

// Changing.
impl Kernel {
    async fn create_link(&self, name: &str) -> Result<Applied, NetlinkError> {
        let what = format!("creating interface {name} (kind dummy)");
        match self.new_link(name, InfoKind::Dummy, &what).await? {
            Ok(()) => return Ok(Applied::LinkCreated(LinkKind::Dummy)),
            Err(nack)
                if nack.errno == libc::EOPNOTSUPP
                    || nack.message.contains("Unknown device type") =>
            {
                tracing::debug!(
                    name,
                    "no dummy driver in this kernel; making an ifb interface"
                );
            }
            Err(nack) => return Err(nack.into_error(what)),
        }
        let what = format!("creating interface {name} (kind ifb: the kernel has no dummy driver)");
        match self.new_link(name, InfoKind::Ifb, &what).await? {
            Ok(()) => Ok(Applied::LinkCreated(LinkKind::Ifb)),
            Err(nack) => Err(nack.into_error(what)),
        }
    }

    async fn new_link(
        &self,
        name: &str,
        kind: InfoKind,
        what: &str,
    ) -> Result<Result<(), Nack>, NetlinkError> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        message
            .attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(kind)]));
        Ok(self
            .exchange(
                RouteNetlinkMessage::NewLink(message),
                NLM_F_CREATE | NLM_F_EXCL,
                what,
            )
            .await?
            .map(drop))
    }

    async fn link_up(&self, name: &str) -> Result<(), NetlinkError> {
        let what = format!("setting interface {name} up");
        let mut message = LinkMessage::default();
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        self.exchange(RouteNetlinkMessage::SetLink(message), 0, &what)
            .await?
            .map(drop)
            .map_err(|nack| nack.into_error(what))
    }

    async fn add_address(&self, link: &str, address: &Address) -> Result<Applied, NetlinkError> {
        let what = format!(
            "adding address {}/{} to {link}",
            address.addr, address.prefix_len
        );
        let Some(index) = self.link_index(link).await? else {
            return Err(NetlinkError::NoSuchDevice { what });
        };
        let mut message = address_message(index, address);
        if address.addr.is_ipv6() {
            message.header.flags = AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        self.exchange(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_CREATE | NLM_F_REPLACE,
            &what,
        )
        .await?
        .map(|_| Applied::Done)
        .map_err(|nack| nack.into_error(what))
    }

    async fn del_address(&self, link: &str, address: &Address) -> Result<Applied, NetlinkError> {
        let what = format!(
            "removing address {}/{} from {link}",
            address.addr, address.prefix_len
        );
        let Some(index) = self.link_index(link).await? else {
            tracing::debug!("{what}: the interface is gone, so is the address");
            return Ok(Applied::Done);
        };
        let message = address_message(index, address);
        let gone = [libc::EADDRNOTAVAIL, libc::ENODEV, libc::ENOENT];
        self.remove(RouteNetlinkMessage::DelAddress(message), what, &gone)
            .await
    }

    /// Adds a route (`exclusive`: failing if the table has a route to the
    /// same destination and metric, which can only be someone else's since
    /// the agent's own are known), or replaces the agent's own.
    async fn new_route(
        &self,
        own: &Ownership,
        route: &Route,
        exclusive: bool,
    ) -> Result<Applied, NetlinkError> {
        let what = describe_route(
            if exclusive {
                "adding route"
            } else {
                "replacing route"
            },
            own,
            route,
        );
        let mut message = route_key(own, route.dst);
        message.header.kind = RouteType::Unicast;
        message.header.scope = if route.gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        if let Some(gateway) = route.gateway {
            if gateway.is_ipv4() == route.dst.addr().is_ipv4() {
                message
                    .attributes
                    .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
            } else {
                message.attributes.push(RouteAttribute::Via(match gateway {
                    IpAddr::V4(v4) => RouteVia::Inet(v4),
                    IpAddr::V6(v6) => RouteVia::Inet6(v6),
                }));
            }
        }
        message.attributes.push(RouteAttribute::Oif(route.oif));
        if let Some(src) = route.src {
            message
                .attributes
                .push(RouteAttribute::PrefSource(RouteAddress::from(src)));
        }
        let flags = if exclusive {
            NLM_F_CREATE | NLM_F_EXCL
        } else {
            NLM_F_CREATE | NLM_F_REPLACE
        };
        match self
            .exchange(RouteNetlinkMessage::NewRoute(message), flags, &what)
            .await?
        {
            Ok(_) => Ok(Applied::Done),
            Err(nack) if exclusive && nack.errno == libc::EEXIST => Err(NetlinkError::Exists {
                what: format!(
                    "{what}: the table already has a route to {} that is not the agent's (another protocol); it is left alone: remove it, or give the agent a table of its own",
                    route.dst
                ),
            }),
            Err(nack) => Err(nack.into_error(what)),
        }
    }

    /// Deletes the agent's interface (with its addresses); gone already is
    /// fine.
    pub async fn delete_link(&self, name: &str) -> Result<(), NetlinkError> {
        let what = format!("deleting interface {name}");
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        self.remove(RouteNetlinkMessage::DelLink(message), what, &[libc::ENODEV])
            .await
            .map(drop)
    }

    async fn del_route(&self, own: &Ownership, route: &Route) -> Result<Applied, NetlinkError> {
        let what = describe_route("removing route", own, route);
        let mut message = route_key(own, route.dst);
        // Any scope; the protocol and table set by `route_key` make the
        // kernel skip routes that are not the agent's.
        message.header.scope = RouteScope::NoWhere;
        // ESRCH: no such route, or no such table; ENODEV: its interface
        // is gone, and the route with it.
        let gone = [libc::ESRCH, libc::ENOENT, libc::ENODEV];
        self.remove(RouteNetlinkMessage::DelRoute(message), what, &gone)
            .await
    }

    async fn add_neighbour(
        &self,
        own: &Ownership,
        neighbour: &Neighbour,
    ) -> Result<Applied, NetlinkError> {
        let what = format!(
            "adding managed neighbour {} on interface #{} (protocol {})",
            neighbour.addr, neighbour.ifindex, own.protocol
        );
        if let Some(existing) = self
            .get_neighbour(neighbour.addr, neighbour.ifindex)
            .await?
        {
            let protocol = neighbour_protocol(&existing);
            let state = u16::from(existing.header.state);
            let learnt = protocol == 0
                && state & (libc::NUD_PERMANENT | libc::NUD_NOARP) == 0
                && !existing.header.flags.contains(NeighbourFlags::ExtLearned);
            if protocol != own.protocol && !learnt {
                return Err(NetlinkError::Exists {
                    what: format!(
                        "{what} (there is an entry with protocol {protocol}, state {state:#x})"
                    ),
                });
            }
        }
        let mut message = NeighbourMessage::default();
        message.header.family = family_of(neighbour.addr);
        message.header.ifindex = neighbour.ifindex;
        message.header.state = NeighbourState::None;
        message
            .attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::from(
                neighbour.addr,
            )));
        message
            .attributes
            .push(NeighbourAttribute::Protocol(RouteProtocol::from(
                own.protocol,
            )));
        message
            .attributes
            .push(NeighbourAttribute::ExtFlags(NeighbourExtFlags::Managed));
        self.exchange(
            RouteNetlinkMessage::NewNeighbour(message),
            NLM_F_CREATE | NLM_F_REPLACE,
            &what,
        )
        .await?
        .map(|_| Applied::Done)
        .map_err(|nack| nack.into_error(what))
    }

    async fn del_neighbour(
        &self,
        own: &Ownership,
        neighbour: &Neighbour,
    ) -> Result<Applied, NetlinkError> {
        let what = format!(
            "removing neighbour {} on interface #{} (protocol {})",
            neighbour.addr, neighbour.ifindex, own.protocol
        );
        match self
            .get_neighbour(neighbour.addr, neighbour.ifindex)
            .await?
        {
            None => {
                tracing::debug!("{what}: already gone");
                return Ok(Applied::Done);
            }
            Some(existing) if neighbour_protocol(&existing) != own.protocol => {
                tracing::debug!("{what}: the entry there is not the agent's; left alone");
                return Ok(Applied::Done);
            }
            Some(_) => {}
        }
        let mut message = NeighbourMessage::default();
        message.header.family = family_of(neighbour.addr);
        message.header.ifindex = neighbour.ifindex;
        message
            .attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::from(
                neighbour.addr,
            )));
        let gone = [libc::ENOENT, libc::ENODEV];
        self.remove(RouteNetlinkMessage::DelNeighbour(message), what, &gone)
            .await
    }

    /// Sends a removal; the errnos in `gone` mean it was gone already,
    /// which is what was wanted.
    async fn remove(
        &self,
        message: RouteNetlinkMessage,
        what: String,
        gone: &[i32],
    ) -> Result<Applied, NetlinkError> {
        match self.exchange(message, 0, &what).await? {
            Ok(_) => Ok(Applied::Done),
            Err(nack) if gone.contains(&nack.errno) => {
                tracing::debug!("{what}: already gone");
                Ok(Applied::Done)
            }
            Err(nack) => Err(nack.into_error(what)),
        }
    }
}

// The request/reply exchange.
impl Kernel {
    /// A dump, retried while the kernel says it was interrupted by
    /// concurrent changes (after the last attempt, the possibly
    /// inconsistent result is returned: the next dump catches up).
    async fn dump_request(
        &self,
        message: RouteNetlinkMessage,
        what: &str,
    ) -> Result<Result<Vec<RouteNetlinkMessage>, Nack>, NetlinkError> {
        let mut attempt = 1;
        loop {
            let replies = match self.exchange(message.clone(), NLM_F_DUMP, what).await? {
                Ok(replies) => replies,
                Err(nack) => return Ok(Err(nack)),
            };
            if replies.undecodable > 0 {
                tracing::warn!(
                    "{what}: {} kernel messages could not be decoded and were left out",
                    replies.undecodable
                );
            }
            if !replies.interrupted || attempt >= DUMP_ATTEMPTS {
                return Ok(Ok(replies.messages));
            }
            attempt += 1;
            tracing::debug!("{what}: dump interrupted by concurrent changes, again");
        }
    }

    /// Sends one request (with `NLM_F_REQUEST | NLM_F_ACK | flags`) and
    /// collects its replies up to the acknowledgement, the end of the dump,
    /// or the kernel's error answer (the inner `Err`). Replies to earlier
    /// requests that were abandoned are skipped by sequence number.
    async fn exchange(
        &self,
        message: RouteNetlinkMessage,
        flags: u16,
        what: &str,
    ) -> Result<Result<Replies, Nack>, NetlinkError> {
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);

        let socket = self.inner.socket.lock().await;
        socket
            .send(&bytes)
            .await
            .map_err(|e| socket_error(what, e))?;
        let mut replies = Replies {
            messages: Vec::new(),
            interrupted: false,
            undecodable: 0,
        };
        loop {
            let (datagram, from) = socket
                .recv_from_full()
                .await
                .map_err(|e| socket_error(what, e))?;
            if from.port_number() != 0 {
                continue; // not from the kernel
            }
            for raw in split_datagram(&datagram).map_err(|()| NetlinkError::Malformed {
                what: what.to_owned(),
            })? {
                if raw.seq != seq {
                    continue;
                }
                if raw.flags & NLM_F_DUMP_INTR != 0 {
                    replies.interrupted = true;
                }
                let decoded = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw.bytes);
                let packet = match decoded {
                    Ok(packet) => packet,
                    Err(error) if raw.kind > libc::NLMSG_MIN_TYPE as u16 => {
                        tracing::debug!("{what}: undecodable kernel message: {error}");
                        replies.undecodable += 1;
                        continue;
                    }
                    Err(_) => {
                        return Err(NetlinkError::Malformed {
                            what: what.to_owned(),
                        });
                    }
                };
                match packet.payload {
                    NetlinkPayload::InnerMessage(inner) => replies.messages.push(inner),
                    NetlinkPayload::Noop => {}
                    NetlinkPayload::Done(done) => {
                        return Ok(if done.code == 0 {
                            Ok(replies)
                        } else {
                            Err(nack(done.code, ext_ack_message(&done.extended_ack)))
                        });
                    }
                    NetlinkPayload::Error(error) => {
                        return Ok(match error.code {
                            None => Ok(replies),
                            Some(code) => Err(nack(
                                code.get(),
                                ext_ack_message(error_tlvs(raw.flags, &error.header)),
                            )),
                        });
                    }
                    NetlinkPayload::Overrun(_) => {
                        return Err(socket_error(
                            what,
                            io::Error::other("the kernel reported a receive overrun"),
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A netlink message inside a datagram, with the header fields needed
/// before decoding it.
struct RawMessage<'a> {
    kind: u16,
    flags: u16,
    seq: u32,
    bytes: &'a [u8],
}

/// Splits a datagram into its netlink messages; `Err` if a length is
/// inconsistent.
fn split_datagram(datagram: &[u8]) -> Result<Vec<RawMessage<'_>>, ()> {
    let mut messages = Vec::new();
    let mut rest = datagram;
    while rest.len() >= NLMSG_HDRLEN {
        let u16_at = |at: usize| u16::from_ne_bytes([rest[at], rest[at + 1]]);
        let u32_at =
            |at: usize| u32::from_ne_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
        let len = u32_at(0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(());
        }
        messages.push(RawMessage {
            kind: u16_at(4),
            flags: u16_at(6),
            seq: u32_at(8),
            bytes: &rest[..len],
        });
        rest = &rest[align(len).min(rest.len())..];
    }
    Ok(messages)
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn nack(code: i32, message: Option<String>) -> Nack {
    let errno = code.saturating_abs();
    Nack {
        errno,
        message: message.unwrap_or_else(|| errno_text(errno)),
    }
}

/// The errno's description, without the "(os error N)" suffix.
fn errno_text(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

/// The extended acknowledgement attributes of an `NLMSG_ERROR` payload
/// (after the error code): they follow the echoed request, which is only
/// its header when the kernel capped it.
fn error_tlvs(flags: u16, payload: &[u8]) -> &[u8] {
    if flags & NLM_F_ACK_TLVS == 0 {
        return &[];
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else if payload.len() >= 4 {
        align(u32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize)
    } else {
        payload.len()
    };
    payload.get(echoed..).unwrap_or(&[])
}

/// The text (`NLMSGERR_ATTR_MSG`) among extended acknowledgement
/// attributes, if any.
fn ext_ack_message(mut tlvs: &[u8]) -> Option<String> {
    while tlvs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([tlvs[0], tlvs[1]]));
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let value = &tlvs[4..len];
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            let text = String::from_utf8_lossy(&value[..end]).trim().to_owned();
            return (!text.is_empty()).then_some(text);
        }
        tlvs = &tlvs[align(len).min(tlvs.len())..];
    }
    None
}

// Message building and reading.

fn family_of(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn full_length(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The table number for the route header: tables above 255 only fit in
/// `RTA_TABLE`, which every request here carries too.
fn header_table(table: u32) -> u8 {
    u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC)
}

fn address_message(index: u32, address: &Address) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = family_of(address.addr);
    message.header.prefix_len = address.prefix_len;
    message.header.scope = AddressScope::Universe;
    message.header.index = index;
    if address.addr.is_ipv4() {
        message
            .attributes
            .push(AddressAttribute::Local(address.addr));
    }
    message
        .attributes
        .push(AddressAttribute::Address(address.addr));
    message
}

/// The local address of an address message (`IFA_LOCAL`, else
/// `IFA_ADDRESS`).
fn address_of(message: &AddressMessage) -> Option<IpAddr> {
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(local) => return Some(*local),
            AddressAttribute::Address(addr) => address = Some(*addr),
            _ => {}
        }
    }
    address
}

/// A route message with the keys of the agent's route to `dst`:
/// destination, table, protocol.
fn route_key(own: &Ownership, dst: Prefix) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = family_of(dst.addr());
    message.header.destination_prefix_length = dst.length();
    message.header.table = header_table(own.table);
    message.header.protocol = RouteProtocol::from(own.protocol);
    message
        .attributes
        .push(RouteAttribute::Destination(RouteAddress::from(dst.addr())));
    message.attributes.push(RouteAttribute::Table(own.table));
    message
}

fn describe_route(action: &str, own: &Ownership, route: &Route) -> String {
    let mut text = format!("{action} {}", route.dst);
    if let Some(gateway) = route.gateway {
        text.push_str(&format!(" via {gateway}"));
    }
    text.push_str(&format!(" dev #{}", route.oif));
    if let Some(src) = route.src {
        text.push_str(&format!(" src {src}"));
    }
    text.push_str(&format!(
        " in table {} (protocol {})",
        own.table, own.protocol
    ));
    text
}

fn ip_of_route_address(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn ip_of_via(via: &RouteVia) -> Option<IpAddr> {
    match via {
        RouteVia::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteVia::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Gateway and output interface of a route (the first next hop of a
/// multipath one).
fn next_hop(route: &RouteMessage) -> (Option<IpAddr>, Option<u32>) {
    let mut gateway = None;
    let mut oif = None;
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Gateway(address) => gateway = ip_of_route_address(address),
            RouteAttribute::Via(via) => gateway = ip_of_via(via),
            RouteAttribute::Oif(index) => oif = Some(*index),
            RouteAttribute::MultiPath(hops) if oif.is_none() => {
                if let Some(hop) = hops.first() {
                    oif = Some(hop.interface_index);
                    for attribute in &hop.attributes {
                        match attribute {
                            RouteAttribute::Gateway(address) => {
                                gateway = ip_of_route_address(address);
                            }
                            RouteAttribute::Via(via) => gateway = ip_of_via(via),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (gateway, oif)
}

/// The agent's [`Route`] in a dumped route message, if it is one (table
/// and protocol checked again here, not only by the kernel's filter).
fn route_of(message: &RouteMessage, own: &Ownership) -> Option<Route> {
    let header = &message.header;
    if u8::from(header.protocol) != own.protocol || header.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let mut table = u32::from(header.table);
    let mut destination = None;
    let mut src = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(address) => destination = ip_of_route_address(address),
            RouteAttribute::PrefSource(address) => src = ip_of_route_address(address),
            _ => {}
        }
    }
    if table != own.table {
        return None;
    }
    let len = header.destination_prefix_length;
    let dst = match (header.address_family, destination) {
        (AddressFamily::Inet, Some(IpAddr::V4(addr))) if len <= 32 => Prefix::V4 { addr, len },
        (AddressFamily::Inet, None) if len == 0 => Prefix::V4 {
            addr: std::net::Ipv4Addr::UNSPECIFIED,
            len,
        },
        (AddressFamily::Inet6, Some(IpAddr::V6(addr))) if len <= 128 => Prefix::V6 { addr, len },
        (AddressFamily::Inet6, None) if len == 0 => Prefix::V6 {
            addr: std::net::Ipv6Addr::UNSPECIFIED,
            len,
        },
        _ => return None,
    };
    let (gateway, oif) = next_hop(message);
    Some(Route {
        dst,
        gateway,
        oif: oif.unwrap_or(0),
        src,
    })
}

/// `NDA_PROTOCOL` of a neighbour entry, 0 when it has none.
fn neighbour_protocol(message: &NeighbourMessage) -> u8 {
    message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            NeighbourAttribute::Protocol(protocol) => Some(u8::from(*protocol)),
            _ => None,
        })
        .unwrap_or(0)
}

fn neighbour_addr(message: &NeighbourMessage) -> Option<IpAddr> {
    message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
            _ => None,
        })
}

// Notifications.

/// Listens for link and address changes (`RTNLGRP_LINK`,
/// `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV6_IFADDR`) on a socket of its own in
/// the calling thread's network namespace, and sends each notification as
/// a [`KernelEvent`]. Must be called from within a tokio runtime: the
/// listening task is spawned on it, and ends when the receiver is dropped
/// or the socket fails (the channel then closes). Route and neighbour
/// groups are left out on purpose: on a router with a full table they
/// would be a flood; the reconcile loop's periodic dump covers them.
///
/// At most [`EVENT_QUEUE`] events wait for the receiver; while they do,
/// the socket is not read, so a burst backs up into the kernel, which
/// drops notifications and says so (`ENOBUFS`); that is reported as
/// [`KernelEvent::Other`], a full resync.
pub fn events() -> Result<mpsc::Receiver<KernelEvent>, NetlinkError> {
    const WHAT: &str = "opening the rtnetlink notification socket";
    runtime_check(WHAT)?;
    let mut socket = TokioSocket::new(NETLINK_ROUTE).map_err(|e| socket_error(WHAT, e))?;
    let groups = [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR]
        .iter()
        .fold(0u32, |mask, group| mask | 1 << (group - 1));
    socket
        .socket_mut()
        .bind(&SocketAddr::new(0, groups))
        .map_err(|e| socket_error(WHAT, e))?;
    let _ = socket.socket_mut().set_rx_buf_sz(RECEIVE_BUFFER);
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(listen(socket, tx));
    Ok(rx)
}

/// Most kernel notifications waiting for [`events`]' receiver.
pub const EVENT_QUEUE: usize = 256;

async fn listen(socket: TokioSocket, tx: mpsc::Sender<KernelEvent>) {
    loop {
        let datagram = tokio::select! {
            () = tx.closed() => return,
            received = socket.recv_from_full() => received,
        };
        let events = match datagram {
            Ok((datagram, from)) if from.port_number() == 0 => events_in(&datagram),
            Ok(_) => continue,
            Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => {
                tracing::warn!("rtnetlink notifications were lost (socket buffer full)");
                vec![KernelEvent::Other]
            }
            Err(error) => {
                tracing::warn!("rtnetlink notification socket failed, no more events: {error}");
                return;
            }
        };
        for event in events {
            if tx.send(event).await.is_err() {
                return;
            }
        }
    }
}

/// The events in one notification datagram.
fn events_in(datagram: &[u8]) -> Vec<KernelEvent> {
    let Ok(raws) = split_datagram(datagram) else {
        return vec![KernelEvent::Other];
    };
    raws.into_iter()
        .map(
            |raw| match NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw.bytes) {
                Ok(packet) => match packet.payload {
                    NetlinkPayload::InnerMessage(message) => event_of(message),
                    _ => KernelEvent::Other,
                },
                Err(_) => KernelEvent::Other,
            },
        )
        .collect()
}

fn event_of(message: RouteNetlinkMessage) -> KernelEvent {
    match message {
        RouteNetlinkMessage::NewLink(link) => link_event(&link, false),
        RouteNetlinkMessage::DelLink(link) => link_event(&link, true),
        RouteNetlinkMessage::NewAddress(address) => address_event(&address, false),
        RouteNetlinkMessage::DelAddress(address) => address_event(&address, true),
        _ => KernelEvent::Other,
    }
}

fn link_event(link: &LinkMessage, removed: bool) -> KernelEvent {
    let name = link
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let flags = link.header.flags;
    KernelEvent::Link {
        index: link.header.index,
        name,
        up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running),
        removed,
    }
}

fn address_event(address: &AddressMessage, removed: bool) -> KernelEvent {
    match address_of(address) {
        Some(addr) => KernelEvent::Address {
            index: address.header.index,
            addr,
            removed,
        },
        None => KernelEvent::Other,
    }
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;
