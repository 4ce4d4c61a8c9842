//! The seccomp filters of a child, built as BPF in the daemon (pure, unit-tested) and applied by
//! the launcher (early filters) and by the shim (late filter).
//!
//! - [`early_filters`]: allow by default, an explicit deny list answered with `EPERM` (the script
//!   sees a readable `PermissionError`), `clone3` answered with `ENOSYS` (glibc falls back to
//!   `clone`, whose flags are checked), and in front of it all a guard that kills the process on
//!   an x32 syscall number (seccompiler's own arch check kills i386 / `int 0x80`).
//! - [`late_filter`]: installed by the shim once the interpreter has started; denies `execve`,
//!   `execveat` and `prctl` changes of the parent-death signal and of dumpability.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};

/// Bit that marks an x32 syscall number on x86_64.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// BPF opcodes (linux/filter.h).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;

/// Syscalls denied outright with EPERM.
fn denied_always() -> Vec<(i64, &'static str)> {
    use libc::*;
    let mut list = vec![
        // Network: no socket may be created; the control fd is inherited.
        (SYS_socket, "socket"),
        (SYS_connect, "connect"),
        (SYS_bind, "bind"),
        (SYS_listen, "listen"),
        (SYS_accept, "accept"),
        (SYS_accept4, "accept4"),
        // io_uring can do all of the above without the syscalls.
        (SYS_io_uring_setup, "io_uring_setup"),
        (SYS_io_uring_enter, "io_uring_enter"),
        (SYS_io_uring_register, "io_uring_register"),
        // Process creation and other processes.
        (SYS_execveat, "execveat"),
        (SYS_unshare, "unshare"),
        (SYS_setns, "setns"),
        (SYS_ptrace, "ptrace"),
        (SYS_process_vm_readv, "process_vm_readv"),
        (SYS_process_vm_writev, "process_vm_writev"),
        (SYS_pidfd_open, "pidfd_open"),
        (SYS_pidfd_getfd, "pidfd_getfd"),
        (SYS_kcmp, "kcmp"),
        (SYS_process_madvise, "process_madvise"),
        (SYS_move_pages, "move_pages"),
        (SYS_migrate_pages, "migrate_pages"),
        (SYS_memfd_create, "memfd_create"),
        (SYS_memfd_secret, "memfd_secret"),
        // Mounts and file handles.
        (SYS_mount, "mount"),
        (SYS_umount2, "umount2"),
        (SYS_pivot_root, "pivot_root"),
        (SYS_chroot, "chroot"),
        (SYS_open_tree, "open_tree"),
        (SYS_move_mount, "move_mount"),
        (SYS_fsopen, "fsopen"),
        (SYS_fsconfig, "fsconfig"),
        (SYS_fsmount, "fsmount"),
        (SYS_fspick, "fspick"),
        (SYS_mount_setattr, "mount_setattr"),
        (SYS_name_to_handle_at, "name_to_handle_at"),
        (SYS_open_by_handle_at, "open_by_handle_at"),
        (SYS_mknod, "mknod"),
        (SYS_mknodat, "mknodat"),
        // Kernel attack surface.
        (SYS_bpf, "bpf"),
        (SYS_perf_event_open, "perf_event_open"),
        (SYS_userfaultfd, "userfaultfd"),
        (SYS_add_key, "add_key"),
        (SYS_request_key, "request_key"),
        (SYS_keyctl, "keyctl"),
        (SYS_fanotify_init, "fanotify_init"),
        (SYS_lookup_dcookie, "lookup_dcookie"),
        (SYS_init_module, "init_module"),
        (SYS_finit_module, "finit_module"),
        (SYS_delete_module, "delete_module"),
        (SYS_kexec_load, "kexec_load"),
        (SYS_kexec_file_load, "kexec_file_load"),
        (SYS_reboot, "reboot"),
        (SYS_swapon, "swapon"),
        (SYS_swapoff, "swapoff"),
        (SYS_acct, "acct"),
        (SYS_quotactl, "quotactl"),
        (SYS_syslog, "syslog"),
        (SYS_vhangup, "vhangup"),
        (SYS_settimeofday, "settimeofday"),
        (SYS_clock_settime, "clock_settime"),
        (SYS_clock_adjtime, "clock_adjtime"),
        (SYS_adjtimex, "adjtimex"),
        (SYS_sethostname, "sethostname"),
        (SYS_setdomainname, "setdomainname"),
        // SysV and POSIX IPC would outlive the run under a reused uid.
        (SYS_shmget, "shmget"),
        (SYS_shmat, "shmat"),
        (SYS_shmctl, "shmctl"),
        (SYS_msgget, "msgget"),
        (SYS_msgsnd, "msgsnd"),
        (SYS_msgrcv, "msgrcv"),
        (SYS_msgctl, "msgctl"),
        (SYS_semget, "semget"),
        (SYS_semop, "semop"),
        (SYS_semctl, "semctl"),
        (SYS_semtimedop, "semtimedop"),
        (SYS_mq_open, "mq_open"),
        (SYS_mq_unlink, "mq_unlink"),
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([
        (SYS_fork, "fork"),
        (SYS_vfork, "vfork"),
        (SYS_iopl, "iopl"),
        (SYS_ioperm, "ioperm"),
        (SYS_modify_ldt, "modify_ldt"),
        (SYS_uselib, "uselib"),
        (SYS_ustat, "ustat"),
        (SYS_sysfs, "sysfs"),
        (SYS__sysctl, "_sysctl"),
    ]);
    list
}

fn cond(arg: u8, len: Len, op: Op, value: u64) -> Cond {
    Cond::new(arg, len, op, value).expect("static seccomp condition")
}

fn rule(conds: Vec<Cond>) -> SeccompRule {
    SeccompRule::new(conds).expect("static seccomp rule")
}

/// Syscalls denied (EPERM) only when their arguments match one of the rules.
fn denied_when() -> Vec<(i64, Vec<SeccompRule>)> {
    use libc::*;
    let mut list = Vec::new();
    // clone: only threads (CLONE_THREAD set) and no new namespaces.
    let mut clone_rules = vec![rule(vec![cond(
        0,
        Len::Qword,
        Op::MaskedEq(CLONE_THREAD as u64),
        0,
    )])];
    for flag in [
        CLONE_NEWNS,
        CLONE_NEWCGROUP,
        CLONE_NEWUTS,
        CLONE_NEWIPC,
        CLONE_NEWUSER,
        CLONE_NEWPID,
        CLONE_NEWNET,
    ] {
        let flag = flag as u32 as u64;
        clone_rules.push(rule(vec![cond(0, Len::Qword, Op::MaskedEq(flag), flag)]));
    }
    list.push((SYS_clone, clone_rules));
    // socketpair: only AF_UNIX + SOCK_STREAM (asyncio's self-pipe); the type is masked with 0xf
    // because SOCK_NONBLOCK/SOCK_CLOEXEC are or-ed in.
    let mut pair_rules = vec![rule(vec![cond(0, Len::Dword, Op::Ne, AF_UNIX as u64)])];
    for ty in (0u64..16).filter(|t| *t != SOCK_STREAM as u64) {
        pair_rules.push(rule(vec![cond(1, Len::Dword, Op::MaskedEq(0xf), ty)]));
    }
    list.push((SYS_socketpair, pair_rules));
    // personality: queries only.
    list.push((
        SYS_personality,
        vec![rule(vec![cond(0, Len::Dword, Op::Ne, 0xffff_ffff)])],
    ));
    // ioctl: no faking terminal input, no console tricks (compared as 32-bit values).
    list.push((
        SYS_ioctl,
        vec![
            rule(vec![cond(1, Len::Dword, Op::Eq, TIOCSTI_NR)]),
            rule(vec![cond(1, Len::Dword, Op::Eq, TIOCLINUX_NR)]),
        ],
    ));
    // chmod family: never set the setuid/setgid bits.
    let suid = |arg: u8| {
        vec![
            rule(vec![cond(
                arg,
                Len::Dword,
                Op::MaskedEq(S_ISUID as u64),
                S_ISUID as u64,
            )]),
            rule(vec![cond(
                arg,
                Len::Dword,
                Op::MaskedEq(S_ISGID as u64),
                S_ISGID as u64,
            )]),
        ]
    };
    #[cfg(target_arch = "x86_64")]
    list.push((SYS_chmod, suid(1)));
    list.push((SYS_fchmod, suid(1)));
    list.push((SYS_fchmodat, suid(2)));
    list.push((SYS_FCHMODAT2, suid(2)));
    list
}

/// `fchmodat2` (Linux 6.6, the same number on every architecture); not in every libc version.
const SYS_FCHMODAT2: i64 = 452;

/// `ioctl` requests compared as 32-bit values (asm-generic/ioctls.h).
const TIOCSTI_NR: u64 = 0x5412;
const TIOCLINUX_NR: u64 = 0x541c;

fn arch() -> TargetArch {
    std::env::consts::ARCH
        .try_into()
        .expect("seccompiler supports this architecture")
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, action: SeccompAction) -> BpfProgram {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, action, arch())
        .expect("static seccomp filter");
    filter.try_into().expect("seccomp filter compiles")
}

/// Kills the process on an x32 syscall number; placed in front of a seccompiler program (whose
/// own first instructions reload what they need, and whose jumps are relative).
fn x32_guard() -> Vec<sock_filter> {
    vec![
        sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0, // seccomp_data.nr
        },
        sock_filter {
            code: BPF_JMP_JSET_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_KILL_PROCESS,
        },
    ]
}

/// The filters the launcher installs, in order (hex-encoded BPF programs).
pub fn early_filters() -> &'static [String] {
    static FILTERS: OnceLock<Vec<String>> = OnceLock::new();
    FILTERS.get_or_init(|| {
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = denied_always()
            .into_iter()
            .map(|(nr, _)| (nr, Vec::new()))
            .collect();
        for (nr, r) in denied_when() {
            rules.insert(nr, r);
        }
        let mut main = x32_guard();
        main.extend(compile(rules, SeccompAction::Errno(libc::EPERM as u32)));
        let clone3 = compile(
            BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
            SeccompAction::Errno(libc::ENOSYS as u32),
        );
        vec![to_hex(&main), to_hex(&clone3)]
    })
}

/// The filter the shim installs before user code (hex-encoded BPF program).
pub fn late_filter() -> &'static str {
    static FILTER: OnceLock<String> = OnceLock::new();
    FILTER.get_or_init(|| {
        let prctl_rules = vec![
            rule(vec![cond(
                0,
                Len::Dword,
                Op::Eq,
                libc::PR_SET_PDEATHSIG as u64,
            )]),
            rule(vec![cond(
                0,
                Len::Dword,
                Op::Eq,
                libc::PR_SET_DUMPABLE as u64,
            )]),
        ];
        let rules = BTreeMap::from([
            (libc::SYS_execve, Vec::new()),
            (libc::SYS_execveat, Vec::new()),
            (libc::SYS_prctl, prctl_rules),
        ]);
        let mut prog = x32_guard();
        prog.extend(compile(rules, SeccompAction::Errno(libc::EPERM as u32)));
        to_hex(&prog)
    })
}

/// Names of the syscalls denied without conditions (for `doctor` and the docs).
pub fn denied_names() -> Vec<&'static str> {
    denied_always().into_iter().map(|(_, n)| n).collect()
}

/// Encodes a program as the shim and launcher expect: 8-byte native-endian `sock_filter`s.
pub fn to_hex(prog: &[sock_filter]) -> String {
    let mut out = String::with_capacity(prog.len() * 16);
    for ins in prog {
        let mut bytes = Vec::with_capacity(8);
        bytes.extend_from_slice(&ins.code.to_ne_bytes());
        bytes.push(ins.jt);
        bytes.push(ins.jf);
        bytes.extend_from_slice(&ins.k.to_ne_bytes());
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
    }
    out
}

/// Decodes [`to_hex`]'s output into raw bytes (8 per instruction).
pub fn from_hex(hex: &str) -> Result<Vec<u8>, String> {
    if !hex.len().is_multiple_of(16) || hex.is_empty() {
        return Err(format!("bad BPF program length {}", hex.len()));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| format!("bad BPF hex: {e}")))
        .collect()
}

/// Installs one hex-encoded filter on the calling thread (the launcher is single-threaded).
/// `no_new_privs` must already be set.
pub fn install(hex: &str) -> Result<(), String> {
    let bytes = from_hex(hex)?;
    let len = bytes.len() / 8;
    if len > seccompiler_max_len() {
        return Err(format!("BPF program too long ({len} instructions)"));
    }
    let prog = libc::sock_fprog {
        len: len as u16,
        filter: bytes.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points into `bytes`, alive for the call; the kernel copies the program.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog as libc::c_ulong,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(format!(
            "PR_SET_SECCOMP: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn seccompiler_max_len() -> usize {
    4096
}

/// Whether this kernel supports seccomp filters (for `doctor` and `initialize`).
pub fn available() -> bool {
    // SAFETY: PR_GET_SECCOMP only reads the calling thread's mode.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    mode >= 0
        && std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
            .map(|a| a.contains("errno") && a.contains("kill_process"))
            .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_build_and_round_trip_through_hex() {
        let early = early_filters();
        assert_eq!(early.len(), 2);
        for hex in early.iter().map(String::as_str).chain([late_filter()]) {
            let bytes = from_hex(hex).unwrap();
            assert!(bytes.len() / 8 < 4096);
            assert_eq!(to_hex_bytes(&bytes), hex);
        }
    }

    fn to_hex_bytes(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_main_filter_starts_with_the_x32_guard() {
        let bytes = from_hex(&early_filters()[0]).unwrap();
        // second instruction: JSET 0x40000000
        assert_eq!(u16::from_ne_bytes([bytes[8], bytes[9]]), BPF_JMP_JSET_K);
        assert_eq!(
            u32::from_ne_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
            X32_SYSCALL_BIT
        );
        // third: kill the process
        assert_eq!(
            u32::from_ne_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
    }

    #[test]
    fn deny_list_covers_the_attack_surface() {
        let names = denied_names();
        for must in [
            "socket",
            "io_uring_setup",
            "ptrace",
            "bpf",
            "unshare",
            "mount",
            "keyctl",
            "userfaultfd",
            "perf_event_open",
            "process_vm_readv",
            "pidfd_getfd",
            "execveat",
            "memfd_create",
        ] {
            assert!(names.contains(&must), "{must} is not denied");
        }
        assert!(
            !names.contains(&"execve"),
            "the launcher still needs execve"
        );
        assert!(
            !names.contains(&"clone3"),
            "clone3 must answer ENOSYS, not EPERM"
        );
    }
}
