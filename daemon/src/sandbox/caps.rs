//! The calling thread's capability sets, read and written with raw `capget`/`capset`
//! (`_LINUX_CAPABILITY_VERSION_3`, two 32-bit words per set; the `libc` crate has neither the
//! structs nor the constants).
//!
//! Used by the launcher when it starts a fork server template (see [`super::template`]): the
//! template keeps exactly `CAP_KILL`, `CAP_SETUID` and `CAP_SETGID`, and the launcher verifies
//! that it holds those and nothing else before it execs the interpreter.

use std::io;

/// `CAP_KILL`: signal processes of other uids. A template needs it for one thing only: the
/// kernel checks the dying parent's right to signal when it delivers a child's parent-death
/// signal, and a forked child runs as another uid. Landlock's signal scope confines it to the
/// template's own children.
pub const CAP_KILL: u32 = 5;
/// `CAP_SETGID`: set any gid (here: bounded to the policy's range by seccomp).
pub const CAP_SETGID: u32 = 6;
/// `CAP_SETUID`: set any uid (bounded likewise).
pub const CAP_SETUID: u32 = 7;
/// `CAP_SETPCAP`: needed to drop capabilities from the bounding set.
pub const CAP_SETPCAP: u32 = 8;

/// The highest capability number the kernel may know (`CAP_LAST_CAP` is 40 in Linux 6.x; two
/// 32-bit words hold 64).
const MAX_CAP: u32 = 63;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The three capability sets of a thread, one bit per capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

impl Caps {
    /// The same set of capabilities in all three sets.
    pub fn only(caps: &[u32]) -> Caps {
        let bits = caps.iter().fold(0u64, |acc, &c| acc | bit(c));
        Caps {
            effective: bits,
            permitted: bits,
            inheritable: bits,
        }
    }
}

/// The bit of capability `cap`.
pub fn bit(cap: u32) -> u64 {
    1u64 << cap
}

/// The calling thread's capabilities.
pub fn get() -> io::Result<Caps> {
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: `header` and the two-element `data` array are what capget writes for version 3.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |low: u32, high: u32| u64::from(low) | (u64::from(high) << 32);
    Ok(Caps {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// Sets the calling thread's capabilities (the kernel only lets them shrink, or the inheritable
/// set grow within the permitted one).
pub fn set(caps: Caps) -> io::Result<()> {
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(caps.effective);
    let (p0, p1) = split(caps.permitted);
    let (i0, i1) = split(caps.inheritable);
    let data = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: `header` and `data` are valid version-3 structures for the duration of the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Drops every capability but `keep` from the bounding set (needs `CAP_SETPCAP` in the
/// effective set). Stops at the first number the kernel does not know.
pub fn drop_bounding_except(keep: &[u32]) -> io::Result<()> {
    for cap in (0..=MAX_CAP).filter(|c| !keep.contains(c)) {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) {
                return Ok(()); // past CAP_LAST_CAP
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Raises `cap` in the ambient set (it must be permitted and inheritable): ambient capabilities
/// survive an `execve` of a file without capabilities, even under `no_new_privs`.
pub fn raise_ambient(cap: u32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `cap` is in the ambient set.
pub fn ambient_is_set(cap: u32) -> bool {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_IS_SET as libc::c_ulong,
            cap as libc::c_ulong,
            0,
            0,
        ) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capget_reads_this_threads_sets_and_capset_keeps_them() {
        let caps = get().expect("capget");
        // Permitted ⊇ effective always; writing back what we read is always allowed.
        assert_eq!(caps.effective & !caps.permitted, 0);
        set(caps).expect("capset of the current sets");
        assert_eq!(get().expect("capget"), caps);
    }

    #[test]
    fn only_puts_the_same_bits_in_every_set() {
        let c = Caps::only(&[CAP_SETUID, CAP_SETGID]);
        assert_eq!(c.effective, 0b1100_0000);
        assert_eq!(c.permitted, c.effective);
        assert_eq!(c.inheritable, c.effective);
    }
}
