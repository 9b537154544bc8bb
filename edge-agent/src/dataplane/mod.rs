//! The data plane: the embedded XDP object and everything the agent does
//! with it through bpf(2): load, attach to an interface (native, or generic
//! when the driver cannot), pin program, link and maps under a bpffs
//! directory so that the data plane outlives the agent, and read counters.

mod bpffs;
mod error;
mod loader;
mod mode;
mod object;
mod pins;

pub use error::DataplaneError;
pub use loader::{Attachment, Dataplane, ifindex};
pub use mode::AttachMode;
pub use object::EBPF_OBJECT;
pub use pins::{detach_pinned, link_pin_path, read_pinned_stats};
