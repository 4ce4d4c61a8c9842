//! Policies: named sets of limits and confinement settings a run executes under.
//!
//! A policy is a TOML file (format: `docs/policy.md`). Parsing goes file text → [`PolicyFile`]
//! (serde, unknown keys refused) → [`Policy`] (validated: every filesystem entry and every layer
//! has a reason, paths are absolute or start with a known placeholder, limits are positive).
//! The `default` and `site-packages` policies are embedded in the binary; `--policy-dir` adds
//! more. The sandbox turns a `Policy` into a [`crate::sandbox::SandboxPlan`] per run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::limits::Limits;

/// The built-in policies, embedded from `policies/`.
pub const BUILTIN_SOURCES: &[(&str, &str)] = &[
    ("default", include_str!("../../../policies/default.toml")),
    (
        "site-packages",
        include_str!("../../../policies/site-packages.toml"),
    ),
];

/// Placeholders a filesystem path may start with (or contain, for `{version}`).
pub const PLACEHOLDERS: &[&str] = &[
    "{python}",
    "{stdlib}",
    "{scratch}",
    "{version}",
    "{venv}",
    "{libpython}",
];

/// A validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub description: String,
    /// The limits a run may tighten (enforced by the run loop and by rlimits).
    pub limits: Limits,
    /// Further rlimits of the child.
    pub rlimits: ExtraLimits,
    /// `None`: Landlock off. `Some(abi)`: required, at least this ABI.
    pub landlock_min_abi: Option<u32>,
    pub seccomp: bool,
    /// `Some((first, last))`: as root, run each child as its own uid from this range.
    pub identity: Option<(u32, u32)>,
    pub network_namespace: bool,
    /// `Some(dir)`: a cgroup (v2) directory under which each uid slot gets a child cgroup.
    pub cgroup: Option<CgroupPolicy>,
    /// Run the `site` module (site-packages on `sys.path`).
    pub python_site: bool,
    pub filesystem: Vec<FsEntry>,
}

/// Limits beyond [`Limits`], applied as rlimits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtraLimits {
    pub file_size_mb: u64,
    pub open_files: u64,
    pub threads: u64,
    /// Size of the scratch dir: its tmpfs size (the kernel answers ENOSPC beyond it), or, when
    /// the daemon may not mount, what the daemon lets it use while the run goes on.
    pub scratch_mb: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPolicy {
    /// A cgroup v2 directory ptcd may create children in.
    pub parent: String,
    /// `memory.max` of each run's cgroup, MiB (defaults to the memory limit).
    pub memory_mb: Option<u64>,
    /// `pids.max` (defaults to the thread limit).
    pub pids: Option<u64>,
}

/// One filesystem allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsEntry {
    /// Absolute, possibly with placeholders.
    pub path: String,
    pub access: FsAccess,
    /// A missing optional path is skipped; a missing required one stops the run (fail closed).
    pub optional: bool,
    pub reason: String,
}

/// What an allowlisted path may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FsAccess {
    /// Read files, list directories.
    Read,
    /// Read and execute (the interpreter and its loader only).
    Execute,
    /// Read, create, write, truncate, rename, remove; never execute.
    ReadWrite,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PolicyError {
    #[error("unknown policy {name:?}; known policies: {known}")]
    Unknown { name: String, known: String },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: policy {name:?} is already defined ({other})")]
    Duplicate {
        file: String,
        name: String,
        other: String,
    },
    #[error("{dir}: {message}")]
    Dir { dir: String, message: String },
}

// ---- the file format ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    name: String,
    description: String,
    limits: LimitsFile,
    landlock: LandlockFile,
    seccomp: Layer,
    identity: IdentityFile,
    network_namespace: Layer,
    cgroup: CgroupFile,
    #[serde(default)]
    python: Option<PythonFile>,
    #[serde(default)]
    filesystem: Vec<FsEntryFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    timeout_ms: u64,
    cpu_ms: u64,
    memory_mb: u64,
    max_output_bytes: u64,
    max_tool_calls: u64,
    max_concurrent_tool_calls: u64,
    file_size_mb: u64,
    open_files: u64,
    threads: u64,
    #[serde(default = "default_scratch_mb")]
    scratch_mb: u64,
}

/// `limits.scratch_mb` when a policy does not set it.
pub const DEFAULT_SCRATCH_MB: u64 = 256;

fn default_scratch_mb() -> u64 {
    DEFAULT_SCRATCH_MB
}

/// A layer without settings: on or off, with a reason either way.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    enabled: bool,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LandlockFile {
    enabled: bool,
    reason: String,
    #[serde(default)]
    min_abi: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    enabled: bool,
    reason: String,
    #[serde(default)]
    uid_range: Option<[u32; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CgroupFile {
    enabled: bool,
    reason: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    memory_mb: Option<u64>,
    #[serde(default)]
    pids: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PythonFile {
    site: bool,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FsEntryFile {
    path: String,
    access: FsAccess,
    #[serde(default)]
    optional: bool,
    reason: String,
}

/// The Landlock ABI this daemon knows how to use fully (newer kernels are used at this level).
pub const LANDLOCK_MAX_ABI: u32 = 7;
/// The default uid range for per-run identities.
pub const DEFAULT_UID_RANGE: (u32, u32) = (64000, 64999);

impl Policy {
    /// Parses and validates a policy file's text. `file` names it in messages.
    pub fn parse(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid {
            file: file.to_string(),
            message,
        };
        let raw: PolicyFile = match extended(text).map_err(invalid)? {
            None => toml::from_str(text).map_err(|e| invalid(toml_message(&e)))?,
            Some(merged) => PolicyFile::deserialize(merged)
                .map_err(|e| invalid(format!("after extending: {}", toml_message(&e))))?,
        };
        let mut problems = Vec::new();
        if !valid_name(&raw.name) {
            problems.push(format!(
                "name {:?}: use 1-64 characters from a-z, 0-9, '-', '_'",
                raw.name
            ));
        }
        if raw.description.trim().is_empty() {
            problems.push("description: must not be empty".into());
        }
        let l = &raw.limits;
        for (field, value) in [
            ("timeout_ms", l.timeout_ms),
            ("cpu_ms", l.cpu_ms),
            ("memory_mb", l.memory_mb),
            ("max_output_bytes", l.max_output_bytes),
            ("max_tool_calls", l.max_tool_calls),
            ("max_concurrent_tool_calls", l.max_concurrent_tool_calls),
            ("file_size_mb", l.file_size_mb),
            ("open_files", l.open_files),
            ("threads", l.threads),
            ("scratch_mb", l.scratch_mb),
        ] {
            if value == 0 {
                problems.push(format!("limits.{field}: must be at least 1"));
            }
        }
        if l.memory_mb < 128 {
            problems.push(format!(
                "limits.memory_mb = {}: CPython with asyncio needs at least 128",
                l.memory_mb
            ));
        }
        if l.open_files < 16 {
            problems.push(format!(
                "limits.open_files = {}: the interpreter needs at least 16",
                l.open_files
            ));
        }
        if l.threads < 2 {
            problems.push(format!(
                "limits.threads = {}: at least 2 (the interpreter counts as one)",
                l.threads
            ));
        }
        for (layer, reason) in [
            ("landlock", &raw.landlock.reason),
            ("seccomp", &raw.seccomp.reason),
            ("identity", &raw.identity.reason),
            ("network_namespace", &raw.network_namespace.reason),
            ("cgroup", &raw.cgroup.reason),
        ] {
            if reason.trim().is_empty() {
                problems.push(format!(
                    "{layer}.reason: every layer says why it is on or off"
                ));
            }
        }
        let landlock_min_abi = if raw.landlock.enabled {
            let abi = raw.landlock.min_abi.unwrap_or(1);
            if abi == 0 {
                problems.push("landlock.min_abi: must be at least 1".into());
            }
            Some(abi)
        } else {
            None
        };
        let identity = if raw.identity.enabled {
            let [first, last] = raw
                .identity
                .uid_range
                .unwrap_or([DEFAULT_UID_RANGE.0, DEFAULT_UID_RANGE.1]);
            if first < 1000 || first > last || last >= u32::MAX - 1 {
                problems.push(format!(
                    "identity.uid_range = [{first}, {last}]: need 1000 <= first <= last < 4294967294"
                ));
            }
            Some((first, last))
        } else {
            None
        };
        let cgroup = if raw.cgroup.enabled {
            match &raw.cgroup.parent {
                Some(p) if p.starts_with('/') => Some(CgroupPolicy {
                    parent: p.clone(),
                    memory_mb: raw.cgroup.memory_mb,
                    pids: raw.cgroup.pids,
                }),
                _ => {
                    problems.push(
                        "cgroup.parent: an absolute path to a cgroup v2 directory is required when cgroup.enabled"
                            .into(),
                    );
                    None
                }
            }
        } else {
            None
        };
        let python_site = match &raw.python {
            Some(p) => {
                if p.reason.trim().is_empty() {
                    problems.push("python.reason: must not be empty".into());
                }
                p.site
            }
            None => false,
        };
        let mut filesystem = Vec::new();
        for (i, e) in raw.filesystem.iter().enumerate() {
            let at = format!("filesystem[{i}] ({})", e.path);
            if e.reason.trim().is_empty() {
                problems.push(format!("{at}: reason must not be empty"));
            }
            if let Err(m) = check_path(&e.path) {
                problems.push(format!("{at}: {m}"));
            }
            filesystem.push(FsEntry {
                path: e.path.clone(),
                access: e.access,
                optional: e.optional,
                reason: e.reason.clone(),
            });
        }
        if landlock_min_abi.is_some() && !filesystem.iter().any(|e| e.access == FsAccess::Execute) {
            problems.push(
                "filesystem: with Landlock on, at least the interpreter (\"{python}\") needs access = \"execute\""
                    .into(),
            );
        }
        if !problems.is_empty() {
            return Err(invalid(problems.join("\n  ")));
        }
        Ok(Policy {
            name: raw.name,
            description: raw.description,
            limits: Limits {
                timeout_ms: l.timeout_ms,
                cpu_ms: l.cpu_ms,
                memory_mb: l.memory_mb,
                max_output_bytes: l.max_output_bytes,
                max_tool_calls: l.max_tool_calls,
                max_concurrent_tool_calls: l.max_concurrent_tool_calls,
            },
            rlimits: ExtraLimits {
                file_size_mb: l.file_size_mb,
                open_files: l.open_files,
                threads: l.threads,
                scratch_mb: l.scratch_mb,
            },
            landlock_min_abi,
            seccomp: raw.seccomp.enabled,
            identity,
            network_namespace: raw.network_namespace.enabled,
            cgroup,
            python_site,
            filesystem,
        })
    }

    /// Reads and validates one policy file (`ptcd policy check FILE`).
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Invalid {
            file: file.clone(),
            message: format!("cannot read: {e}"),
        })?;
        Policy::parse(&file, &text)
    }

    /// The layers this policy turns on, for humans (`policy check`, `doctor`).
    pub fn layers(&self) -> Vec<String> {
        let mut layers = Vec::new();
        if let Some(abi) = self.landlock_min_abi {
            layers.push(format!("landlock (ABI >= {abi})"));
        }
        if self.seccomp {
            layers.push("seccomp".into());
        }
        if let Some((a, b)) = self.identity {
            layers.push(format!("identity (uids {a}-{b} when root)"));
        }
        layers.push("rlimits".into());
        if self.network_namespace {
            layers.push("network namespace".into());
        }
        if let Some(c) = &self.cgroup {
            layers.push(format!("cgroup ({})", c.parent));
        }
        layers
    }
}

/// `ptcd policy check FILE`: validates one file; prints what it enforces or every problem.
/// Returns the process exit status (0 valid, 1 invalid).
pub fn check_main(path: &Path) -> i32 {
    match Policy::load(path) {
        Ok(policy) => {
            println!(
                "{}: policy {:?} is valid: {}",
                path.display(),
                policy.name,
                policy.description
            );
            println!("  layers: {}", policy.layers().join(", "));
            let l = &policy.limits;
            println!(
                "  limits: timeout {} ms, cpu {} ms, memory {} MiB, output {} B, {} tool calls",
                l.timeout_ms, l.cpu_ms, l.memory_mb, l.max_output_bytes, l.max_tool_calls
            );
            for e in &policy.filesystem {
                println!(
                    "  {:<10} {}{}  ({})",
                    format!("{:?}", e.access).to_lowercase(),
                    e.path,
                    if e.optional { " [optional]" } else { "" },
                    e.reason
                );
            }
            for problem in crate::sandbox::host::policy_problems(&policy) {
                println!("  warning: cannot be enforced on this host: {problem}");
            }
            0
        }
        Err(e) => {
            eprintln!("invalid policy: {e}");
            1
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn check_path(path: &str) -> Result<(), String> {
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err("unclosed '{' in path".into());
        };
        let placeholder = &rest[open..open + close + 1];
        if !PLACEHOLDERS.contains(&placeholder) {
            return Err(format!(
                "unknown placeholder {placeholder}; known: {}",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &rest[open + close + 1..];
    }
    let starts_ok = path.starts_with('/')
        || ["{python}", "{stdlib}", "{scratch}", "{venv}", "{libpython}"]
            .iter()
            .any(|p| path.starts_with(p));
    if !starts_ok {
        return Err(
            "path must be absolute or start with {python}, {stdlib}, {scratch}, {venv} or {libpython}"
                .into(),
        );
    }
    if path.split('/').any(|c| c == "..") {
        return Err("'..' is not allowed in paths".into());
    }
    Ok(())
}

/// `extends = "NAME"`: the built-in policy NAME with this file's keys laid over it. `None`
/// when the file does not extend anything.
///
/// Tables merge key by key (so `[limits] memory_mb = 512` changes one limit); any other value
/// replaces the base's; `[[filesystem]]` entries are added after the base's. `name` and
/// `description` must be given again: a derived policy is a new policy.
fn extended(text: &str) -> Result<Option<toml::Value>, String> {
    let mut overlay: toml::Table = toml::from_str(text).map_err(|e| toml_message(&e))?;
    let Some(base_name) = overlay.remove("extends") else {
        return Ok(None);
    };
    let builtin: Vec<&str> = BUILTIN_SOURCES.iter().map(|(n, _)| *n).collect();
    let base_text = match base_name.as_str() {
        Some(n) => BUILTIN_SOURCES
            .iter()
            .find(|(b, _)| *b == n)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                format!(
                    "extends = {n:?}: not a built-in policy; known: {}",
                    builtin.join(", ")
                )
            })?,
        None => return Err("extends: must be the name of a built-in policy (a string)".into()),
    };
    for key in ["name", "description"] {
        if !overlay.contains_key(key) {
            return Err(format!(
                "{key}: a policy that extends {} must set its own {key}",
                base_name.as_str().unwrap_or_default()
            ));
        }
    }
    let mut base: toml::Table = toml::from_str(base_text).map_err(|e| toml_message(&e))?;
    merge(&mut base, overlay, "");
    Ok(Some(toml::Value::Table(base)))
}

/// Lays `overlay` over `base` (see [`extended`]).
fn merge(base: &mut toml::Table, overlay: toml::Table, at: &str) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
                merge(b, o, &format!("{at}{key}."))
            }
            (Some(toml::Value::Array(b)), toml::Value::Array(o))
                if at.is_empty() && key == "filesystem" =>
            {
                b.extend(o)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn toml_message(e: &toml::de::Error) -> String {
    // toml's Display already shows the line, a caret and the key path.
    e.to_string().trim_end().replace('\n', "\n  ")
}

/// The policies the daemon knows, by name.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: BTreeMap<String, (Arc<Policy>, String)>,
    default: String,
}

impl PolicySet {
    /// The built-in policies (`default`, `site-packages`).
    pub fn builtin() -> PolicySet {
        let mut policies = BTreeMap::new();
        for (name, text) in BUILTIN_SOURCES {
            let policy = Policy::parse(&format!("<builtin {name}>"), text)
                .unwrap_or_else(|e| panic!("built-in policy {name} is invalid: {e}"));
            policies.insert(
                policy.name.clone(),
                (Arc::new(policy), format!("built-in {name}.toml")),
            );
        }
        PolicySet {
            policies,
            default: "default".into(),
        }
    }

    /// The built-in policies plus every `*.toml` in `dir` (a name may not be defined twice).
    pub fn with_dir(dir: &Path) -> Result<PolicySet, Vec<PolicyError>> {
        let mut set = PolicySet::builtin();
        let dir_err = |message: String| {
            vec![PolicyError::Dir {
                dir: dir.display().to_string(),
                message,
            }]
        };
        let entries = std::fs::read_dir(dir).map_err(|e| dir_err(format!("cannot read: {e}")))?;
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut errors = Vec::new();
        for file in files {
            match Policy::load(&file) {
                Ok(policy) => {
                    if let Some((_, other)) = set.policies.get(&policy.name) {
                        errors.push(PolicyError::Duplicate {
                            file: file.display().to_string(),
                            name: policy.name.clone(),
                            other: other.clone(),
                        });
                        continue;
                    }
                    set.policies.insert(
                        policy.name.clone(),
                        (Arc::new(policy), file.display().to_string()),
                    );
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// The named policy, or the default one for `None`.
    pub fn get(&self, name: Option<&str>) -> Result<Arc<Policy>, PolicyError> {
        let name = name.unwrap_or(&self.default);
        self.policies
            .get(name)
            .map(|(p, _)| p.clone())
            .ok_or_else(|| PolicyError::Unknown {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    pub fn names(&self) -> Vec<String> {
        self.policies.keys().cloned().collect()
    }

    pub fn default_name(&self) -> &str {
        &self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_text() -> &'static str {
        BUILTIN_SOURCES[0].1
    }

    #[test]
    fn builtin_policies_parse_with_every_layer_on() {
        let set = PolicySet::builtin();
        assert_eq!(set.names(), vec!["default", "site-packages"]);
        let d = set.get(None).unwrap();
        assert_eq!(d.name, "default");
        assert_eq!(d.landlock_min_abi, Some(1));
        assert!(d.seccomp);
        assert_eq!(d.identity, Some(DEFAULT_UID_RANGE));
        assert!(!d.python_site);
        assert!(d
            .filesystem
            .iter()
            .any(|e| e.path == "{scratch}" && e.access == FsAccess::ReadWrite));
        let s = set.get(Some("site-packages")).unwrap();
        assert!(s.python_site);
        assert!(s
            .filesystem
            .iter()
            .any(|e| e.path == "/usr/lib/python3/dist-packages"));
        assert!(matches!(
            set.get(Some("nope")),
            Err(PolicyError::Unknown { .. })
        ));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let text = default_text().replace("[limits]\n", "[limits]\nmemroy_mb = 5\n");
        let err = Policy::parse("x.toml", &text).unwrap_err().to_string();
        assert!(err.contains("memroy_mb"), "{err}");
    }

    #[test]
    fn every_entry_needs_a_reason() {
        let text = default_text().replace(
            "reason = \"the interpreter binary itself\"",
            "reason = \"  \"",
        );
        let err = Policy::parse("x.toml", &text).unwrap_err().to_string();
        assert!(err.contains("filesystem[0] ({python}): reason"), "{err}");
        let text = default_text().replacen("reason = \"deny sockets", "reason = \"\" #", 1);
        let err = Policy::parse("x.toml", &text).unwrap_err().to_string();
        assert!(err.contains("seccomp.reason"), "{err}");
    }

    #[test]
    fn bad_paths_and_limits_are_named() {
        let text = default_text()
            .replace("path = \"/etc/ld.so.cache\"", "path = \"etc/ld.so.cache\"")
            .replace("path = \"/usr/lib/locale\"", "path = \"{home}/x\"")
            .replace("threads = 64", "threads = 0");
        let err = Policy::parse("x.toml", &text).unwrap_err().to_string();
        assert!(err.contains("must be absolute"), "{err}");
        assert!(err.contains("unknown placeholder {home}"), "{err}");
        assert!(err.contains("limits.threads"), "{err}");
    }

    #[test]
    fn missing_layer_is_an_error() {
        let start = default_text().find("[cgroup]").unwrap();
        let end = default_text()[start..].find("\n\n").unwrap() + start;
        let text = format!("{}{}", &default_text()[..start], &default_text()[end..]);
        let err = Policy::parse("x.toml", &text).unwrap_err().to_string();
        assert!(err.contains("cgroup"), "{err}");
    }

    #[test]
    fn policy_dir_adds_and_refuses_duplicates() {
        let dir = std::env::temp_dir().join(format!("ptcd-policy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("tight.toml"),
            default_text().replace("name = \"default\"", "name = \"tight\""),
        )
        .unwrap();
        let set = PolicySet::with_dir(&dir).unwrap();
        assert!(set.names().contains(&"tight".to_string()));
        std::fs::write(dir.join("again.toml"), default_text()).unwrap();
        let errs = PolicySet::with_dir(&dir).unwrap_err();
        assert!(matches!(errs[0], PolicyError::Duplicate { .. }));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn extending(body: &str) -> Result<Policy, String> {
        Policy::parse("small.toml", body).map_err(|e| e.to_string())
    }

    #[test]
    fn extends_default_overrides_a_few_keys_and_adds_read_paths() {
        let p = extending(
            r#"
extends = "default"
name = "small"
description = "default with less memory and one more read path"
[limits]
memory_mb = 256
[[filesystem]]
path = "/opt/data"
access = "read"
reason = "the team's data set"
"#,
        )
        .unwrap();
        let d = PolicySet::builtin().get(None).unwrap();
        assert_eq!(p.name, "small");
        assert_eq!(p.limits.memory_mb, 256);
        // Everything else is the default's.
        assert_eq!(p.limits.timeout_ms, d.limits.timeout_ms);
        assert_eq!(p.rlimits, d.rlimits);
        assert_eq!(p.landlock_min_abi, d.landlock_min_abi);
        assert_eq!(p.identity, d.identity);
        assert_eq!(p.filesystem.len(), d.filesystem.len() + 1);
        assert_eq!(&p.filesystem[..d.filesystem.len()], &d.filesystem[..]);
        assert_eq!(
            p.filesystem.last().map(|e| e.path.as_str()),
            Some("/opt/data")
        );
    }

    #[test]
    fn extends_site_packages_keeps_its_site_setting() {
        let p = extending(
            "extends = \"site-packages\"\nname = \"sp2\"\ndescription = \"x\"\n[seccomp]\nreason = \"still on\"\n",
        )
        .unwrap();
        assert!(p.python_site && p.seccomp);
    }

    #[test]
    fn extends_errors_name_the_key() {
        let err = extending("extends = \"nope\"\nname = \"a\"\ndescription = \"b\"\n").unwrap_err();
        assert!(
            err.contains(
                "extends = \"nope\": not a built-in policy; known: default, site-packages"
            ),
            "{err}"
        );
        let err = extending("extends = 3\nname = \"a\"\ndescription = \"b\"\n").unwrap_err();
        assert!(err.contains("extends: must be the name"), "{err}");
        let err = extending("extends = \"default\"\ndescription = \"b\"\n").unwrap_err();
        assert!(
            err.contains("name: a policy that extends default must set its own name"),
            "{err}"
        );
        let err = extending(
            "extends = \"default\"\nname = \"a\"\ndescription = \"b\"\n[limits]\nmemroy_mb = 5\n",
        )
        .unwrap_err();
        assert!(err.contains("memroy_mb"), "{err}");
        let err = extending(
            "extends = \"default\"\nname = \"a\"\ndescription = \"b\"\n[limits]\nthreads = 0\n",
        )
        .unwrap_err();
        assert!(err.contains("limits.threads"), "{err}");
        let err = extending("extends = \"default\"\nname = \"a\"\ndescription = \"b\"\n[limits]\nthreads = \"many\"\n").unwrap_err();
        assert!(err.contains("threads"), "{err}");
        let err = extending("extends = \"default\"\nname = \"a\"\ndescription = \"b\"\n[[filesystem]]\npath = \"rel\"\naccess = \"read\"\nreason = \"r\"\n").unwrap_err();
        assert!(err.contains("(rel): path must be absolute"), "{err}");
    }
}
