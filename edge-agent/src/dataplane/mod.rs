//! The data plane: the embedded XDP object and everything the agent does
//! with it through bpf(2): load, attach to an interface (native, or generic
//! when the driver cannot), pin program, link and maps under a bpffs
//! directory per interface so that the data plane outlives the agent, write
//! the tables (config, services and their Maglev tables, peers, trusted
//! sources, egress interfaces) and read the counters.

mod bpffs;
mod doors;
mod error;
mod loader;
mod mode;
mod object;
mod pins;
mod spec;
mod tables;

pub use doors::{DoorOffender, DoorPolicy, DoorSpec, DoorsSpec, MAX_DOORS};
pub use error::DataplaneError;
pub use loader::{Attachment, Dataplane, LoadOptions, ProgramFacts, ifindex};
pub use mode::AttachMode;
pub use object::EBPF_OBJECT;
pub use pins::{detach_pinned, interface_pin_dir, link_pin_path, read_pinned_stats};
pub use spec::{Encap, NodeConfig, PeerSpec, Protocol, ServiceBackend, ServiceMatch, ServiceSpec};
