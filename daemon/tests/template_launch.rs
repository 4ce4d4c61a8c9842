//! The fork server template's confinement on the real kernel: the launcher started through
//! `sandbox::spawn` with a plan from `sandbox::template::build_template` (the default policy,
//! real uid leases from the host's lease directory), exec'ing a small Python program instead of
//! the shim. It reports what T holds and may do, forks a child that takes a run's uid the way
//! the fork server's children do, installs T's late filter and tries to exec.
//!
//! Needs root (the per-run uid switch); as another user it says so and passes. `harness = false`
//! and the `main` below, because `sandbox::spawn` re-executes this binary as the launcher.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::Value;

use ptcd::policy::PolicySet;
use ptcd::python::Interpreter;
use ptcd::sandbox::identity::{self, Leased};
use ptcd::sandbox::plan::{Host, SetidRange};
use ptcd::sandbox::{host, seccomp, spawn, template};

/// The longest the template program may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// What T runs instead of the shim: `sys.argv[1:]` = run uid, T's uid, first, last, late
/// filter, scratch root, a world-readable file outside the policy's allowlist.
const PROGRAM: &str = r#"
import ctypes, errno, json, os, socket, sys
run_uid, t_uid, first, last = map(int, sys.argv[1:5])
late = bytes.fromhex(sys.argv[5])
scratch_root, outside = sys.argv[6:8]
libc = ctypes.CDLL(None, use_errno=True)
ul = ctypes.c_ulong

class Hdr(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

class Data(ctypes.Structure):
    _fields_ = [("e", ctypes.c_uint32), ("p", ctypes.c_uint32), ("i", ctypes.c_uint32)]

def capget():
    h, d = Hdr(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(h), d) != 0:
        return None
    return [d[0].e | d[1].e << 32, d[0].p | d[1].p << 32, d[0].i | d[1].i << 32]

def capset_zero():
    return libc.capset(ctypes.byref(Hdr(0x20080522, 0)), (Data * 2)())

def ambient(cap):
    return libc.prctl(ul(47), ul(1), ul(cap), ul(0), ul(0))  # PR_CAP_AMBIENT_IS_SET

def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

out = {"uid": os.getresuid(), "gid": os.getresgid(), "groups": os.getgroups(), "caps": capget(),
       "ambient": [ambient(5), ambient(6), ambient(7)], "cwd": os.getcwd(), "home": os.environ.get("HOME"),
       "bounding": [c for c in range(64) if libc.prctl(ul(23), ul(c), ul(0), ul(0), ul(0)) == 1], "cpu_limit": __import__("resource").getrlimit(0)}
# Landlock: the scratch root is in T's layer, a world-readable file elsewhere is not.
out["list_scratch_root"] = attempt(lambda: os.listdir(scratch_root))
out["read_outside"] = attempt(lambda: open(outside, "rb").close())
out["setuid_root"] = attempt(lambda: os.setuid(0))
out["setresuid_root_saved"] = attempt(lambda: os.setresuid(-1, -1, 0))
out["setresuid_beyond_range"] = attempt(lambda: os.setresuid(last + 1, last + 1, last + 1))
out["setgroups"] = attempt(lambda: os.setgroups([first]))
out["socket_inet"] = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
out["socket_unix"] = attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))

# A child takes a run's uid the way a forked run child does.
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    res = {}
    try:
        os.setgroups([])
        os.setresgid(run_uid, run_uid, run_uid)
        os.setresuid(run_uid, run_uid, run_uid)
        res["caps_after_switch"] = capget()
        libc.prctl(ul(47), ul(4), ul(0), ul(0), ul(0))  # PR_CAP_AMBIENT_CLEAR_ALL
        res["capset_zero"] = capset_zero()
        res["caps"] = capget()
        res["uid"] = os.getresuid()
        res["setuid_root"] = attempt(lambda: os.setuid(0))
        res["setuid_template"] = attempt(lambda: os.setuid(t_uid))
    except BaseException as e:
        res["error"] = repr(e)
    os.write(w, json.dumps(res).encode())
    os._exit(0)
os.close(w)
pidfd = os.pidfd_open(pid)
_, status = os.waitpid(pid, 0)
chunks = []
while True:
    chunk = os.read(r, 65536)
    if not chunk:
        break
    chunks.append(chunk)
out["child"] = json.loads(b"".join(chunks))
out["child_status"] = status
out["pidfd"] = pidfd >= 0

# T's late filter, as the shim installs it in template mode: exec is gone.
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
buf = ctypes.create_string_buffer(late, len(late))
prog = Fprog(len(late) // 8, ctypes.cast(buf, ctypes.c_void_p))
out["late_installed"] = libc.prctl(ul(22), ul(2), ctypes.byref(prog), ul(0), ul(0)) == 0
out["execve"] = attempt(lambda: os.execv(sys.executable, [sys.executable, "-c", "pass"]))
print(json.dumps(out), flush=True)
"#;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(spawn::LAUNCH_ARG) {
        ptcd::sandbox::launcher::main();
    }
    if !identity::daemon_is_root() {
        println!(
            "test template_runs_as_its_leased_uid_with_only_kill_setuid_setgid ... ignored (needs root)"
        );
        return std::process::ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(template_runs_as_its_leased_uid_with_only_kill_setuid_setgid())
    }));
    match outcome {
        Ok(()) => {
            println!("test template_runs_as_its_leased_uid_with_only_kill_setuid_setgid ... ok");
            println!("\ntest result: ok. 1 passed; 0 failed");
            std::process::ExitCode::SUCCESS
        }
        Err(_) => {
            println!(
                "test template_runs_as_its_leased_uid_with_only_kill_setuid_setgid ... FAILED"
            );
            println!("\ntest result: FAILED. 0 passed; 1 failed");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn template_runs_as_its_leased_uid_with_only_kill_setuid_setgid() {
    let python = Interpreter::resolve(None).expect("a CPython");
    let policy = PolicySet::builtin().get(None).expect("default policy");
    let (first, last) = policy.identity.expect("the default policy has a uid range");
    // Two real host-wide leases: T's and the run uid its child switches to.
    let t_leased = identity::for_policy(&policy);
    let run_leased = identity::for_policy(&policy);
    let (Leased::Uid(t_lease), Leased::Uid(run_lease)) = (&t_leased, &run_leased) else {
        panic!("no uid lease: {t_leased:?} {run_leased:?}");
    };
    let (t_uid, run_uid) = (t_lease.uid, run_lease.uid);
    let root = std::env::temp_dir().join(format!("ptcd-template-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("scratch root");
    let host = Host {
        python: &python,
        parent_pid: std::process::id() as i32,
        landlock_abi: host::landlock_level(),
        missing_identity_caps: &[],
    };
    let mut plan = template::build_template(host, &policy, &root, &t_leased);
    assert!(plan.refuse.is_none(), "{:?}", plan.refuse);
    assert_eq!(plan.retain_setid, Some(SetidRange { first, last }));
    // The template's own command line, with this program in place of the shim.
    let mode = plan
        .argv
        .pop()
        .expect("argv ends with the template argument");
    assert_eq!(mode, template::TEMPLATE_ARG);
    let shim = plan.argv.pop().expect("the shim comes before it");
    assert_eq!(shim, ptcd::shim::BOOTSTRAP);
    plan.argv.push(PROGRAM.to_string());
    for arg in [run_uid, t_uid, first, last] {
        plan.argv.push(arg.to_string());
    }
    plan.argv.push(seccomp::template_late_filter().to_string());
    let outside = std::env::temp_dir().join(format!("ptcd-template-{}.probe", std::process::id()));
    std::fs::write(&outside, b"not for templates").expect("probe file");
    plan.argv.push(root.display().to_string());
    plan.argv.push(outside.display().to_string());

    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let mut child = spawn::spawn(&plan, theirs.into()).expect("launcher");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let (out, err, status) = tokio::time::timeout(DEADLINE, async {
        use tokio::io::AsyncReadExt;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        a.expect("stdout");
        b.expect("stderr");
        (out, err, child.wait().await.expect("wait"))
    })
    .await
    .expect("the template program finished in time");
    let mut control = String::new();
    ours.set_nonblocking(true).expect("nonblocking");
    let _ = (&ours).read_to_string(&mut control);
    let _ = std::fs::remove_dir(&root);
    let _ = std::fs::remove_file(&outside);
    let err = String::from_utf8_lossy(&err);
    assert!(
        status.success(),
        "{status}: control {control:?} stderr {err}"
    );
    let report: Value = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {:?} stderr {err}", String::from_utf8_lossy(&out)));
    println!("template report: {report}");

    let setid_bits = Value::from((1u64 << 5) | (1u64 << 6) | (1u64 << 7));
    let ids = |v: u32| Value::from(vec![v, v, v]);
    // T: its own leased uid, no groups, exactly CAP_KILL/CAP_SETUID/CAP_SETGID (ambient too).
    assert_eq!(report["uid"], ids(t_uid));
    assert_eq!(report["gid"], ids(t_uid));
    assert_eq!(report["groups"], Value::from(Vec::<u32>::new()));
    assert_eq!(report["caps"], Value::from(vec![setid_bits.clone(); 3]));
    assert_eq!(report["ambient"], Value::from(vec![1, 1, 1]));
    // The bounding set lost every other capability when the launcher held CAP_SETPCAP.
    let launcher_caps = ptcd::sandbox::caps::get().expect("capget");
    if launcher_caps.effective & ptcd::sandbox::caps::bit(ptcd::sandbox::caps::CAP_SETPCAP) != 0 {
        assert_eq!(report["bounding"], Value::from(vec![5, 6, 7]));
    }
    assert_eq!(report["cwd"], "/");
    assert_eq!(report["home"], "/nonexistent");
    assert_eq!(report["list_scratch_root"], "ok");
    assert_eq!(report["read_outside"], "EACCES");
    // No RLIMIT_CPU of its own: T inherits the daemon's (a run's would be seconds).
    let mut cpu = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `cpu` is a valid rlimit for the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CPU, &mut cpu) }, 0);
    // Python says -1 for RLIM_INFINITY.
    let py = |v: u64| match v {
        libc::RLIM_INFINITY => Value::from(-1),
        v => Value::from(v),
    };
    assert_eq!(
        report["cpu_limit"],
        Value::from(vec![py(cpu.rlim_cur), py(cpu.rlim_max)])
    );
    // Seccomp keeps it inside the range (with CAP_SETUID the kernel alone would let it become
    // root), away from sockets; the late filter from exec.
    assert_eq!(report["setuid_root"], "EPERM");
    assert_eq!(report["setresuid_root_saved"], "EPERM");
    assert_eq!(report["setresuid_beyond_range"], "EPERM");
    assert_eq!(report["setgroups"], "EPERM");
    assert_eq!(report["socket_inet"], "EPERM");
    assert_eq!(report["socket_unix"], "EPERM");
    assert_eq!(report["pidfd"], true);
    assert_eq!(report["late_installed"], true);
    assert_eq!(report["execve"], "EPERM");
    // Its child took the run's uid; the switch between two non-root uids keeps capabilities
    // (so a forked child must drop them itself), and once dropped neither root nor T's uid
    // can be regained.
    let child = &report["child"];
    assert_eq!(report["child_status"], 0, "{child}");
    assert_eq!(child["uid"], ids(run_uid), "{child}");
    assert_eq!(child["caps_after_switch"], Value::from(vec![setid_bits; 3]));
    assert_eq!(child["capset_zero"], 0);
    assert_eq!(child["caps"], Value::from(vec![0, 0, 0]));
    assert_eq!(child["setuid_root"], "EPERM");
    assert_eq!(child["setuid_template"], "EPERM");
}
