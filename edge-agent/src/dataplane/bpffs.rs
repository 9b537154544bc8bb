//! The bpf filesystem that pins live on.

use std::{ffi::CString, io, os::unix::ffi::OsStrExt, path::Path};

use super::DataplaneError;

/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// Where systemd (and iproute2) mount bpffs.
const BPFFS_MOUNT: &str = "/sys/fs/bpf";

/// Makes sure `dir` exists on a bpf filesystem. If it lies under
/// `/sys/fs/bpf` and nothing is mounted there yet, mounts bpffs there first,
/// as systemd does at boot and iproute2 does on demand.
pub(crate) fn ensure_pin_dir(dir: &Path) -> Result<(), DataplaneError> {
    let pin_dir_error = |reason: String| DataplaneError::PinDir {
        path: dir.to_owned(),
        reason,
    };
    if dir.starts_with(BPFFS_MOUNT) && !is_bpffs(Path::new(BPFFS_MOUNT)) {
        mount_bpffs(Path::new(BPFFS_MOUNT)).map_err(|e| {
            pin_dir_error(format!(
                "{BPFFS_MOUNT} is not a bpf filesystem and mounting one failed ({e}); \
                 run `mount -t bpf bpf {BPFFS_MOUNT}` as root"
            ))
        })?;
        tracing::info!(path = BPFFS_MOUNT, "mounted bpffs");
    }
    std::fs::create_dir_all(dir).map_err(|e| pin_dir_error(format!("cannot create it: {e}")))?;
    if !is_bpffs(dir) {
        return Err(pin_dir_error(
            "not on a bpf filesystem: choose a directory under a bpffs mount such as /sys/fs/bpf"
                .into(),
        ));
    }
    Ok(())
}

/// Whether `path` is on a bpf filesystem.
pub(crate) fn is_bpffs(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statfs is a valid value for the kernel to fill in.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `stat` is a valid out-pointer.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    rc == 0 && stat.f_type == BPF_FS_MAGIC
}

fn mount_bpffs(target: &Path) -> io::Result<()> {
    let target = CString::new(target.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let fstype = c"bpf";
    // SAFETY: all pointers are NUL-terminated strings that outlive the call;
    // bpffs takes no mount data.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
