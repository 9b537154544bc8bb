//! Loading the embedded object, attaching it, pinning it, reading it.

use std::{
    ffi::CString,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapInfo, PerCpuArray},
    programs::{
        ProgramError, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::{XdpLink, XdpLinkId},
    },
};
use edge_common::{
    FLOWS_MAP, MAGLEV_MAP, PROGRAM_NAME, STATS_MAP,
    maps::{DEFAULT_FLOW_ENTRIES, DEFAULT_MAGLEV_SIZE, MAX_SERVICES},
    stats::Stats,
};

use super::{
    AttachMode, DataplaneError, EBPF_OBJECT,
    bpffs::ensure_pin_dir,
    pins::{is_attached, link_pin_path, sum_stats},
};

/// Maps kept out of the pin directory: per-run scratch memory.
const UNPINNED_MAPS: &[&str] = &["edge_scratch"];

/// How to load the data plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// bpffs directory (one per interface) to pin maps, program and link in;
    /// `None` for a private, unpinned data plane (tests).
    pub pin_dir: Option<PathBuf>,
    /// Entries of one Maglev table: a prime, at least 100 × the largest peer
    /// set (see `maglev::table_size_for`).
    pub maglev_size: u32,
    /// Flows the flow table remembers.
    pub flow_entries: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            pin_dir: None,
            maglev_size: DEFAULT_MAGLEV_SIZE,
            flow_entries: DEFAULT_FLOW_ENTRIES,
        }
    }
}

impl LoadOptions {
    /// Default sizes, pinned under `pin_dir`.
    pub fn pinned(pin_dir: impl Into<PathBuf>) -> Self {
        LoadOptions {
            pin_dir: Some(pin_dir.into()),
            ..LoadOptions::default()
        }
    }

    /// Map sizes that differ from the object's defaults.
    fn max_entries(&self) -> [(&'static str, u32); 2] {
        [
            (MAGLEV_MAP, MAX_SERVICES * 2 * self.maglev_size),
            (FLOWS_MAP, self.flow_entries),
        ]
    }
}

/// Facts about the loaded program, from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramFacts {
    /// Instructions the verifier processed (kernel ≥ 5.16).
    pub verified_instructions: Option<u32>,
    /// Size of the translated (post-verifier) program in bytes.
    pub translated_bytes: Option<u32>,
    /// Size of the JIT-compiled program in bytes.
    pub jited_bytes: u32,
}

/// Where a program got attached, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Interface name.
    pub ifname: String,
    /// Interface index (in the caller's network namespace).
    pub ifindex: u32,
    /// The mode in use, or `None` when the program was swapped into an
    /// existing pinned attachment, which keeps the mode it was made with.
    pub mode: Option<AttachMode>,
}

/// The loaded XDP object: programs, maps, and the attachments it owns.
///
/// Attachments made with [`Dataplane::attach`] last as long as this value;
/// those made with [`Dataplane::attach_pinned`] last until their pin is
/// removed ([`super::detach_pinned`]).
pub struct Dataplane {
    pub(super) ebpf: Ebpf,
    pub(super) maglev_size: u32,
    /// The config last written with `set_config`.
    pub(super) node: Option<super::NodeConfig>,
    pin_dir: Option<PathBuf>,
    /// Pins this load made (as opposed to reused): removed again if an
    /// attach fails and nothing else uses them.
    created_pins: Vec<PathBuf>,
}

impl Dataplane {
    /// Loads the embedded object and the main program into the kernel.
    ///
    /// With a pin directory, every map except scratch memory is pinned
    /// there, or, if an earlier run pinned it, reused after checking that
    /// its layout matches this build, so tables and counters survive a
    /// restart of the agent. A new data plane starts with an empty config:
    /// it passes everything until [`Dataplane::set_config`].
    pub fn load(options: &LoadOptions) -> Result<Self, DataplaneError> {
        if !crate::maglev::is_prime(options.maglev_size) {
            return Err(DataplaneError::InvalidSpec(format!(
                "Maglev table size {} is not a prime; use {}",
                options.maglev_size,
                crate::maglev::next_prime(options.maglev_size.max(2))
            )));
        }
        let mut loader = EbpfLoader::new();
        for (name, entries) in options.max_entries() {
            loader.map_max_entries(name, entries);
        }
        let mut created_pins = Vec::new();
        if let Some(dir) = &options.pin_dir {
            ensure_pin_dir(dir)?;
            for (name, layout) in object_layouts(options)? {
                let path = dir.join(&name);
                check_pinned_layout(&path, &layout)?;
                if !path.exists() {
                    created_pins.push(path.clone());
                }
                loader.map_pin_path(layout.name, path);
            }
        }
        let ebpf = match loader.load(EBPF_OBJECT) {
            Ok(ebpf) => ebpf,
            Err(e) => {
                if let Some(dir) = &options.pin_dir {
                    remove_unused_pins(dir, &mut created_pins);
                }
                return Err(DataplaneError::Load(Box::new(e)));
            }
        };
        let mut dataplane = Dataplane {
            ebpf,
            maglev_size: options.maglev_size,
            node: None,
            pin_dir: options.pin_dir.clone(),
            created_pins,
        };
        if let Err(e) = dataplane.program(PROGRAM_NAME) {
            dataplane.remove_unused_pins();
            return Err(e);
        }
        Ok(dataplane)
    }

    /// The named XDP program (`edge_xdp` or `edge_pass`), loaded into the
    /// kernel on first use.
    fn program(&mut self, name: &'static str) -> Result<&mut Xdp, DataplaneError> {
        let missing = DataplaneError::MissingInObject {
            kind: "XDP program",
            name,
        };
        let program: &mut Xdp = self
            .ebpf
            .program_mut(name)
            .ok_or(missing)?
            .try_into()
            .map_err(|_| DataplaneError::MissingInObject {
                kind: "XDP program",
                name,
            })?;
        if program.fd().is_err() {
            program.load().map_err(|source| DataplaneError::Verifier {
                name,
                source: Box::new(source),
            })?;
        }
        Ok(program)
    }

    /// A file descriptor of a loaded program, for `BPF_PROG_TEST_RUN`.
    /// `name` is [`PROGRAM_NAME`] or [`edge_common::PASS_PROGRAM_NAME`].
    pub fn program_fd(&mut self, name: &'static str) -> Result<OwnedFd, DataplaneError> {
        let program = self.program(name)?;
        let fd = program.fd().map_err(|source| DataplaneError::Verifier {
            name,
            source: Box::new(source),
        })?;
        fd.as_fd()
            .try_clone_to_owned()
            .map_err(|source| DataplaneError::Io {
                what: "cannot duplicate the fd of program",
                path: PathBuf::from(name),
                source,
            })
    }

    /// Attaches `edge_xdp` to `ifname` for as long as this value lives.
    pub fn attach(&mut self, ifname: &str, mode: AttachMode) -> Result<Attachment, DataplaneError> {
        self.attach_program(PROGRAM_NAME, ifname, mode)
    }

    /// Attaches the pass-through program to `ifname` for as long as this
    /// value lives. With native XDP on veth, frames another end sends with
    /// `XDP_TX` or a redirect arrive only if the receiving end runs an XDP
    /// program; this one does nothing else.
    pub fn attach_pass(
        &mut self,
        ifname: &str,
        mode: AttachMode,
    ) -> Result<Attachment, DataplaneError> {
        self.attach_program(edge_common::PASS_PROGRAM_NAME, ifname, mode)
    }

    fn attach_program(
        &mut self,
        name: &'static str,
        ifname: &str,
        mode: AttachMode,
    ) -> Result<Attachment, DataplaneError> {
        let ifindex = ifindex(ifname)?;
        let (_, used) = attach_with_fallback(self.program(name)?, ifname, ifindex, mode)?;
        Ok(Attachment {
            ifname: ifname.to_owned(),
            ifindex,
            mode: Some(used),
        })
    }

    /// Attaches `edge_xdp` to `ifname` and pins program and link in the pin
    /// directory, so the data plane keeps forwarding after this process
    /// exits. If edge is already attached there, the new program replaces the
    /// old one atomically inside the existing link: no packet sees no program.
    /// If it fails, pins this load created are removed again unless another
    /// attachment uses them: a failed attach leaves nothing behind.
    pub fn attach_pinned(
        &mut self,
        ifname: &str,
        mode: AttachMode,
    ) -> Result<Attachment, DataplaneError> {
        let result = self.try_attach_pinned(ifname, mode);
        if result.is_err() {
            self.remove_unused_pins();
        }
        result
    }

    /// Removes the pins this load created if no attachment is pinned.
    fn remove_unused_pins(&mut self) {
        if let Some(dir) = &self.pin_dir {
            remove_unused_pins(dir, &mut self.created_pins);
        }
    }

    fn try_attach_pinned(
        &mut self,
        ifname: &str,
        mode: AttachMode,
    ) -> Result<Attachment, DataplaneError> {
        let pin_dir = self.pin_dir.clone().ok_or(DataplaneError::NoPinDir)?;
        let ifindex = ifindex(ifname)?;
        let link_path = link_pin_path(&pin_dir);
        let program = self.program(PROGRAM_NAME)?;
        let pin_error = |path: &Path, reason: String| DataplaneError::Pin {
            path: path.to_owned(),
            reason,
        };

        let used = if link_path.exists() {
            // The pin keeps the link alive throughout, so if the swap fails
            // the old program simply stays attached.
            let existing: FdLink = PinnedLink::from_pin(&link_path)
                .map_err(|e| pin_error(&link_path, e.to_string()))?
                .into();
            let existing =
                XdpLink::try_from(existing).map_err(|e| pin_error(&link_path, e.to_string()))?;
            program
                .attach_to_link(existing)
                .map_err(|source| DataplaneError::Attach {
                    ifname: ifname.to_owned(),
                    how: "replacing the program in the pinned link".into(),
                    source: Box::new(source),
                    hint: "",
                })?;
            // Our handle to the link closes with `self`; the pin remains.
            None
        } else {
            let (link_id, used) = attach_with_fallback(program, ifname, ifindex, mode)?;
            let link = program
                .take_link(link_id)
                .map_err(|source| DataplaneError::Attach {
                    ifname: ifname.to_owned(),
                    how: "taking over the new link".into(),
                    source: Box::new(source),
                    hint: "",
                })?;
            let link =
                FdLink::try_from(link).map_err(|_| DataplaneError::NoBpfLink(ifname.to_owned()))?;
            link.pin(&link_path)
                .map_err(|e| pin_error(&link_path, e.to_string()))?;
            Some(used)
        };

        let program_path = pin_dir.join(PROGRAM_NAME);
        if program_path.exists() {
            std::fs::remove_file(&program_path)
                .map_err(|e| pin_error(&program_path, e.to_string()))?;
        }
        program
            .pin(&program_path)
            .map_err(|e| pin_error(&program_path, e.to_string()))?;
        Ok(Attachment {
            ifname: ifname.to_owned(),
            ifindex,
            mode: used,
        })
    }

    /// What the kernel says about the loaded `edge_xdp`: instructions the
    /// verifier processed, and the program's size translated and JIT-compiled.
    pub fn program_facts(&mut self) -> Result<ProgramFacts, DataplaneError> {
        let info =
            self.program(PROGRAM_NAME)?
                .info()
                .map_err(|source| DataplaneError::Verifier {
                    name: PROGRAM_NAME,
                    source: Box::new(source),
                })?;
        Ok(ProgramFacts {
            verified_instructions: info.verified_instruction_count(),
            translated_bytes: info.size_translated(),
            jited_bytes: info.size_jitted(),
        })
    }

    /// Memory the kernel charges for each map (`memlock` in its fdinfo), by name.
    pub fn map_memory(&self) -> Vec<(String, u64)> {
        let mut sizes: Vec<(String, u64)> = self
            .ebpf
            .maps()
            .filter_map(|(name, map)| {
                let fd = match map {
                    aya::maps::Map::Array(d)
                    | aya::maps::Map::HashMap(d)
                    | aya::maps::Map::LruHashMap(d)
                    | aya::maps::Map::PerCpuLruHashMap(d)
                    | aya::maps::Map::PerCpuArray(d)
                    | aya::maps::Map::DevMapHash(d) => d.fd().as_fd().as_raw_fd(),
                    _ => return None,
                };
                let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
                let memlock = fdinfo
                    .lines()
                    .find_map(|l| l.strip_prefix("memlock:"))?
                    .trim()
                    .parse()
                    .ok()?;
                Some((name.to_owned(), memlock))
            })
            .collect();
        sizes.sort();
        sizes
    }

    /// The Maglev table size this data plane was loaded with.
    pub fn maglev_size(&self) -> u32 {
        self.maglev_size
    }

    /// Current counters, summed over all CPUs.
    pub fn stats(&self) -> Result<Stats, DataplaneError> {
        let map = PerCpuArray::<_, Stats>::try_from(self.map_ref(STATS_MAP)?)
            .map_err(DataplaneError::map(STATS_MAP))?;
        sum_stats(&map)
    }
}

/// Removes `created` pins from `dir` unless an attachment is pinned there
/// (which would be using them), then `dir` itself if that leaves it empty.
fn remove_unused_pins(dir: &Path, created: &mut Vec<PathBuf>) {
    if is_attached(dir) {
        return;
    }
    for pin in created.drain(..) {
        let _ = std::fs::remove_file(pin);
    }
    let _ = std::fs::remove_dir(dir);
}

/// Attaches `program` in `mode`; `Auto` tries native first, then generic.
fn attach_with_fallback(
    program: &mut Xdp,
    ifname: &str,
    ifindex: u32,
    mode: AttachMode,
) -> Result<(XdpLinkId, AttachMode), DataplaneError> {
    let attach_error = |how: &str, source: ProgramError| DataplaneError::Attach {
        ifname: ifname.to_owned(),
        how: how.to_owned(),
        hint: attach_hint(&source),
        source: Box::new(source),
    };
    match mode {
        AttachMode::Auto => match program.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(id) => Ok((id, AttachMode::Native)),
            Err(native) => {
                tracing::warn!(ifname, error = %native, "native XDP refused, falling back to generic mode");
                program
                    .attach_to_if_index(ifindex, XdpMode::Skb)
                    .map(|id| (id, AttachMode::Generic))
                    .map_err(|e| attach_error("native mode, then generic mode", e))
            }
        },
        explicit => program
            .attach_to_if_index(ifindex, explicit.xdp_mode())
            .map(|id| (id, explicit))
            .map_err(|e| attach_error(&format!("{explicit} mode"), e)),
    }
}

/// What the operator can do about a failed attach, from its errno.
fn attach_hint(error: &ProgramError) -> &'static str {
    let errno = match error {
        ProgramError::SyscallError(e) => e.io_error.raw_os_error(),
        ProgramError::XdpError(aya::programs::xdp::XdpError::NetlinkError(e)) => e.raw_os_error(),
        _ => None,
    };
    match errno {
        Some(libc::EBUSY | libc::EEXIST) => {
            " (another XDP program is attached: if it is edge's run `edge-agent xdp detach`, \
             otherwise remove it with `ip link set dev IF xdp off`)"
        }
        Some(libc::EOPNOTSUPP) => " (the driver has no native XDP: use generic or auto mode)",
        Some(libc::EPERM) => " (attaching XDP needs root or CAP_NET_ADMIN + CAP_BPF)",
        _ => "",
    }
}

/// Index of interface `ifname` in this network namespace.
pub fn ifindex(ifname: &str) -> Result<u32, DataplaneError> {
    let no_such = || DataplaneError::NoSuchInterface(ifname.to_owned());
    let c_name = CString::new(ifname).map_err(|_| no_such())?;
    // SAFETY: `c_name` is a NUL-terminated string that outlives the call.
    match unsafe { libc::if_nametoindex(c_name.as_ptr()) } {
        0 => Err(no_such()),
        index => Ok(index),
    }
}

/// The layout of one map, as this build defines it.
struct MapLayout {
    name: &'static str,
    /// `bpf_map_type` number.
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
}

/// The layouts of the maps to pin, read from the embedded object's own
/// definitions (with the sizes `options` overrides), so the check below can
/// never drift from the program.
fn object_layouts(options: &LoadOptions) -> Result<Vec<(String, MapLayout)>, DataplaneError> {
    let object = aya_obj::Object::parse(EBPF_OBJECT).map_err(|e| {
        DataplaneError::InvalidSpec(format!("the embedded XDP object does not parse: {e}"))
    })?;
    let mut layouts = Vec::new();
    for (name, def) in &object.maps {
        if name.starts_with('.') || UNPINNED_MAPS.contains(&name.as_str()) {
            continue;
        }
        let Some(static_name) = edge_common::PINNED_MAPS
            .iter()
            .find(|n| **n == name.as_str())
        else {
            return Err(DataplaneError::InvalidSpec(format!(
                "the XDP object has a map `{name}` this agent does not know: rebuild with `cargo xtask build`"
            )));
        };
        let max_entries = options
            .max_entries()
            .iter()
            .find(|(n, _)| n == static_name)
            .map_or(def.max_entries(), |(_, entries)| *entries);
        layouts.push((
            name.clone(),
            MapLayout {
                name: static_name,
                map_type: def.map_type(),
                key_size: def.key_size(),
                value_size: def.value_size(),
                max_entries,
            },
        ));
    }
    Ok(layouts)
}

/// Refuses to reuse a pinned map whose layout differs from this build's.
fn check_pinned_layout(path: &Path, layout: &MapLayout) -> Result<(), DataplaneError> {
    if !path.exists() {
        return Ok(());
    }
    let info = MapInfo::from_pin(path).map_err(DataplaneError::map(layout.name))?;
    let found = (
        info.map_type().ok().map(|t| t as u32),
        info.key_size(),
        info.value_size(),
        info.max_entries(),
    );
    let expected = (
        Some(layout.map_type),
        layout.key_size,
        layout.value_size,
        layout.max_entries,
    );
    if found == expected {
        return Ok(());
    }
    let describe = |(t, k, v, n): (Option<u32>, u32, u32, u32)| {
        let t = t.map_or("unknown".to_owned(), |t| t.to_string());
        format!("map type {t}, key {k} B, value {v} B, {n} entries")
    };
    Err(DataplaneError::PinnedMapIncompatible {
        path: path.to_owned(),
        found: describe(found),
        expected: describe(expected),
    })
}
