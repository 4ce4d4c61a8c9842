//! Finding the real CPython binary, once, at start-up.
//!
//! A `python3` on `PATH` is often a shell shim (pyenv costs ~170 ms per start and needs `/bin/sh`),
//! and the sandboxed child must be able to read the interpreter as an unprivileged user, so the
//! default is the system interpreter. The path is canonicalized and must be an ELF executable.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The interpreter every run uses.
#[derive(Debug, Clone)]
pub struct Interpreter {
    /// Canonical path of the ELF binary (symlinks resolved).
    pub executable: PathBuf,
    /// `major.minor`, read from the binary's name or its `lib/pythonX.Y` directory.
    pub version: String,
    /// The standard library directory (`…/lib/pythonX.Y`).
    pub stdlib: PathBuf,
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

impl Interpreter {
    /// Resolves `explicit` if given, else the first usable default candidate.
    pub fn resolve(explicit: Option<&Path>) -> Result<Interpreter, InterpreterError> {
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
        let executable = path
            .canonicalize()
            .map_err(|e| unusable(format!("cannot resolve: {e}")))?;
        let mut magic = [0u8; 4];
        std::fs::File::open(&executable)
            .and_then(|mut f| f.read_exact(&mut magic))
            .map_err(|e| unusable(format!("cannot read: {e}")))?;
        if &magic != b"\x7fELF" {
            return Err(unusable(
                "not an ELF binary (a shell shim such as pyenv's?); pass the real interpreter"
                    .into(),
            ));
        }
        let (version, stdlib) = find_stdlib(&executable)
            .ok_or_else(|| unusable("no lib/python3.X standard library next to it".into()))?;
        Ok(Interpreter {
            executable,
            version,
            stdlib,
        })
    }
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
    versions.sort();
    versions.into_iter().rev().find_map(|v| {
        let dir = lib.join(format!("python{v}"));
        dir.join("os.py").exists().then_some((v, dir))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_interpreter_resolves_to_a_versioned_binary() {
        let Ok(py) = Interpreter::resolve(None) else {
            return; // no system python3 on this host: nothing to check
        };
        assert!(py.executable.is_absolute());
        assert!(py.version.starts_with("3."));
        assert!(py.stdlib.join("os.py").exists());
    }

    #[test]
    fn shell_script_is_refused() {
        let dir = std::env::temp_dir().join(format!("ptcd-py-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let shim = dir.join("python3");
        std::fs::write(&shim, "#!/bin/sh\nexec python3 \"$@\"\n").expect("write shim");
        let err = Interpreter::resolve(Some(&shim)).unwrap_err();
        assert!(err.to_string().contains("not an ELF"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
