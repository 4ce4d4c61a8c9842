//! Finding the real CPython binary, once, at start-up: system, pyenv, uv-managed or venv.
//!
//! A `python3` on `PATH` is often a shell shim (pyenv costs ~170 ms per start and needs `/bin/sh`),
//! so the default is the system interpreter and a shim is refused. What is checked here, without
//! running anything (`ptcd doctor` then proves the result with a real confined run):
//! - the path is an ELF binary of CPython (it has `Py_BytesMain`, or links a `libpython3.X`),
//!   3.10 or newer, with its standard library at `<prefix>/lib/python3.X`;
//! - a venv (`pyvenv.cfg` next to its `bin/`) is remembered ([`Interpreter::venv`]): the
//!   site-packages policy runs the interpreter under the venv's name so the venv's
//!   site-packages are used; the binary itself is the one the venv points to;
//! - a shared `libpython3.X.so` next to the stdlib (pyenv and `--enable-shared` builds) is
//!   remembered ([`Interpreter::libpython`]) for the `{libpython}` policy placeholder;
//! - as root, runs execute as an unprivileged uid with no groups: every directory above the
//!   binary, the stdlib and libpython must be searchable by others (a pyenv under `/root` is not).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The interpreter every run uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpreter {
    /// Canonical path of the ELF binary (symlinks resolved).
    pub executable: PathBuf,
    /// `major.minor`, read from the binary's name or its `lib/pythonX.Y` directory.
    pub version: String,
    /// The standard library directory (`…/lib/pythonX.Y`).
    pub stdlib: PathBuf,
    /// The venv root when the configured path is a venv's interpreter.
    pub venv: Option<PathBuf>,
    /// The shared `libpython3.X.so.1.0` the binary loads, when it is a shared build.
    pub libpython: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum InterpreterError {
    #[error("no Python interpreter found (tried {tried}); install python3 or pass --python PATH")]
    NotFound { tried: String },
    #[error("{path}: {reason}")]
    Unusable { path: PathBuf, reason: String },
}

/// The places tried when no interpreter is configured, in order.
pub const DEFAULT_CANDIDATES: &[&str] = &["/usr/bin/python3", "/usr/local/bin/python3"];

/// The oldest CPython minor version supported (3.10).
pub const MIN_MINOR: u32 = 10;

/// Largest binary read to recognise CPython.
const MAX_BINARY_BYTES: u64 = 256 << 20;

impl Interpreter {
    /// Resolves `explicit` if given, else the first usable default candidate. As root, also
    /// checks that the unprivileged run uid can reach every file it needs.
    pub fn resolve(explicit: Option<&Path>) -> Result<Interpreter, InterpreterError> {
        let py = Self::resolve_unchecked(explicit)?;
        if crate::sandbox::identity::daemon_is_root() {
            py.reachable_by_others()
                .map_err(|reason| InterpreterError::Unusable {
                    path: py.executable.clone(),
                    reason,
                })?;
        }
        Ok(py)
    }

    /// [`Interpreter::resolve`] without the reachability check.
    pub fn resolve_unchecked(explicit: Option<&Path>) -> Result<Interpreter, InterpreterError> {
        if let Some(path) = explicit {
            return Self::inspect(path);
        }
        for candidate in DEFAULT_CANDIDATES {
            if Path::new(candidate).exists() {
                return Self::inspect(Path::new(candidate));
            }
        }
        Err(InterpreterError::NotFound {
            tried: DEFAULT_CANDIDATES.join(", "),
        })
    }

    fn inspect(path: &Path) -> Result<Interpreter, InterpreterError> {
        let unusable = |reason: String| InterpreterError::Unusable {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_absolute() {
            return Err(unusable("give the interpreter as an absolute path".into()));
        }
        let venv = venv_root(path);
        let executable = path
            .canonicalize()
            .map_err(|e| unusable(format!("cannot resolve: {e}")))?;
        check_cpython_binary(&executable).map_err(unusable)?;
        let (version, stdlib) = find_stdlib(&executable)
            .or_else(|| {
                // A venv made with --copies: the stdlib is beside the `home` it names.
                let home = venv_home(venv.as_deref()?)?;
                let name = executable.file_name()?;
                find_stdlib(&home.join(name)).or_else(|| find_stdlib(&home.join("python3")))
            })
            .ok_or_else(|| unusable("no lib/python3.X standard library next to it".into()))?;
        let minor = version
            .strip_prefix("3.")
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(0);
        if minor < MIN_MINOR {
            return Err(unusable(format!(
                "CPython {version} is too old: ptcd needs CPython 3.{MIN_MINOR} or newer"
            )));
        }
        let libpython = stdlib
            .parent()
            .map(|lib| lib.join(format!("libpython{version}.so.1.0")))
            .filter(|p| p.is_file())
            .and_then(|p| p.canonicalize().ok());
        Ok(Interpreter {
            executable,
            version,
            stdlib,
            venv,
            libpython,
        })
    }

    /// The path the interpreter is started under (`argv[0]`): the venv's for a policy that
    /// runs `site` (so the venv's site-packages are on `sys.path`), else the binary itself.
    pub fn argv0(&self, site: bool) -> PathBuf {
        match (&self.venv, site) {
            (Some(venv), true) => venv.join("bin").join(
                self.executable
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("python3")),
            ),
            _ => self.executable.clone(),
        }
    }

    /// Checks that a uid with no groups (a run's) can execute the binary and read the stdlib
    /// and libpython: "others" permission bits on each file and every directory above it.
    pub fn reachable_by_others(&self) -> Result<(), String> {
        let os_py = self.stdlib.join("os.py");
        let mut needs = vec![
            (self.executable.as_path(), 0o5, "execute"),
            (self.stdlib.as_path(), 0o5, "list"),
            (os_py.as_path(), 0o4, "read"),
        ];
        if let Some(lib) = &self.libpython {
            needs.push((lib.as_path(), 0o4, "read"));
        }
        for (file, bits, what) in needs {
            for dir in file.ancestors().skip(1) {
                let mode = std::fs::metadata(dir)
                    .map_err(|e| format!("{}: {e}", dir.display()))?
                    .permissions()
                    .mode();
                if mode & 0o1 == 0 {
                    return Err(unreachable(file, what, dir, mode));
                }
            }
            let mode = std::fs::metadata(file)
                .map_err(|e| format!("{}: {e}", file.display()))?
                .permissions()
                .mode();
            if mode & bits != bits {
                return Err(format!(
                    "the runs' unprivileged uid cannot {what} {} (mode {:o}); make it readable by others or install the interpreter elsewhere",
                    file.display(),
                    mode & 0o7777
                ));
            }
        }
        Ok(())
    }
}

fn unreachable(file: &Path, what: &str, dir: &Path, mode: u32) -> String {
    format!(
        "the runs' unprivileged uid cannot {what} {}: {} is mode {:o} (not searchable by others). \
         Runs execute as a per-run uid with no groups: install the interpreter where others can \
         reach it (e.g. /usr/local or /opt; for pyenv set PYENV_ROOT=/opt/pyenv) or chmod o+x the directories",
        file.display(),
        dir.display(),
        mode & 0o7777
    )
}

/// Refuses anything but a CPython ELF binary (a shell shim, perl, ...). Reads the file once, in
/// chunks: a binary of any size costs one chunk of memory.
fn check_cpython_binary(executable: &Path) -> Result<(), String> {
    const CHUNK: usize = 64 << 10;
    const NEEDLES: [&[u8]; 2] = [b"Py_BytesMain", b"libpython3."];
    // A name may straddle two chunks: each search also covers the end of the previous one.
    const OVERLAP: usize = 11;
    let mut file = std::fs::File::open(executable)
        .map_err(|e| format!("cannot read: {e}"))?
        .take(MAX_BINARY_BYTES);
    let mut window = vec![0u8; OVERLAP + CHUNK];
    let mut carried = 0;
    loop {
        let n = read_full(&mut file, &mut window[carried..])
            .map_err(|e| format!("cannot read: {e}"))?;
        let data = &window[..carried + n];
        if carried == 0 && !data.starts_with(b"\x7fELF") {
            return Err(
                "not an ELF binary (a shell shim such as pyenv's?); pass the real interpreter"
                    .into(),
            );
        }
        if NEEDLES
            .iter()
            .any(|needle| memchr::memmem::find(data, needle).is_some())
        {
            return Ok(());
        }
        if data.len() < window.len() {
            return Err(
                "not a CPython interpreter (no Py_BytesMain and no libpython3 in the binary); pass a CPython 3.10+ binary"
                    .into(),
            );
        }
        window.copy_within(CHUNK.., 0);
        carried = OVERLAP;
    }
}

/// Fills `buf` unless the end of `reader` comes first; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The venv root when `path` is `<venv>/bin/<python>` and `<venv>/pyvenv.cfg` exists.
fn venv_root(path: &Path) -> Option<PathBuf> {
    let root = path.parent()?.parent()?;
    root.join("pyvenv.cfg")
        .is_file()
        .then(|| root.to_path_buf())
}

/// The `home = DIR` of a venv's `pyvenv.cfg` (the directory of the base interpreter).
fn venv_home(venv: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "home").then(|| PathBuf::from(v.trim()))
    })
}

/// Finds `<prefix>/lib/python3.X` for an interpreter at `<prefix>/bin/python…`.
fn find_stdlib(executable: &Path) -> Option<(String, PathBuf)> {
    let prefix = executable.parent()?.parent()?;
    let name = executable.file_name()?.to_str()?;
    let from_name = name.strip_prefix("python").filter(|v| v.contains('.'));
    let lib = prefix.join("lib");
    let mut versions: Vec<String> = match from_name {
        Some(v) => vec![v.to_string()],
        None => std::fs::read_dir(&lib)
            .ok()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_prefix("python3.").map(|m| format!("3.{m}")))
            .collect(),
    };
    // Numeric order: 3.9 < 3.10.
    versions.sort_by_key(|v| {
        v.strip_prefix("3.")
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.into_iter().rev().find_map(|v| {
        let dir = lib.join(format!("python{v}"));
        dir.join("os.py").exists().then_some((v, dir))
    })
}

/// Environment variables that take effect when the interpreter starts (the C library's locale,
/// time zone and allocator, CPython's own settings, the dynamic loader) or that the plan itself
/// sets. Setting them later, in `os.environ`, would not have the same effect, so a run whose
/// `env` names one starts cold.
pub fn startup_sensitive(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "LANG",
        "LANGUAGE",
        "LOCPATH",
        "TZ",
        "TZDIR",
        "HOME",
        "TMPDIR",
        "GCONV_PATH",
        "NLSPATH",
    ];
    const PREFIXES: &[&str] = &["LC_", "PYTHON", "MALLOC_", "GLIBC_", "LD_"];
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ptcd-py-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn system_interpreter_resolves_to_a_versioned_binary() {
        let Ok(py) = Interpreter::resolve(None) else {
            return; // no system python3 on this host: nothing to check
        };
        assert!(py.executable.is_absolute());
        assert!(py.version.starts_with("3."));
        assert!(py.stdlib.join("os.py").exists());
        assert_eq!(py.venv, None);
    }

    #[test]
    fn shell_script_is_refused() {
        let dir = temp("shim");
        let shim = dir.join("python3");
        std::fs::write(&shim, "#!/bin/sh\nexec python3 \"$@\"\n").expect("write shim");
        let err = Interpreter::resolve(Some(&shim)).unwrap_err();
        assert!(err.to_string().contains("not an ELF"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn perl_is_refused_as_not_cpython() {
        let perl = Path::new("/usr/bin/perl");
        if !perl.exists() {
            return;
        }
        let err = Interpreter::resolve(Some(perl)).unwrap_err().to_string();
        assert!(err.contains("not a CPython interpreter"), "{err}");
    }

    /// The binary is searched in chunks: a name that straddles two chunks, or that sits only
    /// far into the file, is still found; an ELF file without either name is refused.
    #[test]
    fn cpython_names_are_found_across_chunk_boundaries() {
        let dir = temp("chunks");
        let file = dir.join("python3");
        for (at, name) in [
            // Across the end of the first read (64 KiB + 11 bytes) and of the second.
            (65_542, &b"Py_BytesMain"[..]),
            (131_080, &b"libpython3."[..]),
            (3 << 20, &b"Py_BytesMain"[..]),
        ] {
            let mut data = b"\x7fELF".to_vec();
            data.resize(at, 0);
            data.extend_from_slice(name);
            data.resize(at + 70_000, 0);
            std::fs::write(&file, &data).expect("write");
            assert_eq!(check_cpython_binary(&file), Ok(()), "name at {at}");
            // One byte of the name changed: not CPython.
            data[at + 3] ^= 0x20;
            std::fs::write(&file, &data).expect("write");
            let err = check_cpython_binary(&file).unwrap_err();
            assert!(err.contains("not a CPython interpreter"), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn relative_paths_are_refused() {
        let err = Interpreter::resolve(Some(Path::new("python3")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("absolute path"), "{err}");
    }

    #[test]
    fn a_venv_is_found_and_keeps_the_base_binary() {
        let Ok(base) = Interpreter::resolve(None) else {
            return;
        };
        let venv = temp("venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        let link = venv.join("bin/python3");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&base.executable, &link).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!("home = {}\n", base.executable.parent().unwrap().display()),
        )
        .unwrap();
        let py = Interpreter::resolve(Some(&link)).unwrap();
        assert_eq!(py.venv.as_deref(), Some(venv.as_path()));
        assert_eq!(py.executable, base.executable);
        assert_eq!(py.stdlib, base.stdlib);
        assert_eq!(
            py.argv0(true),
            venv.join("bin").join(base.executable.file_name().unwrap())
        );
        assert_eq!(py.argv0(false), base.executable);
        let _ = std::fs::remove_dir_all(&venv);
    }

    #[test]
    fn an_interpreter_under_a_private_directory_is_unreachable_for_runs() {
        let py = Interpreter {
            executable: "/root/.pyenv/versions/3.12.1/bin/python3.12".into(),
            version: "3.12".into(),
            stdlib: "/root/.pyenv/versions/3.12.1/lib/python3.12".into(),
            venv: None,
            libpython: None,
        };
        let root_mode = std::fs::metadata("/root").map(|m| m.permissions().mode());
        if !matches!(root_mode, Ok(m) if m & 1 == 0) || !py.executable.exists() {
            return; // needs a pyenv under a 0700 /root, as on the test VM
        }
        let err = py.reachable_by_others().unwrap_err();
        assert!(err.contains("/root is mode 700"), "{err}");
        assert!(err.contains("PYENV_ROOT"), "{err}");
    }
}
