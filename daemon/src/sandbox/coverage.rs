//! What the Landlock ABI in use leaves uncovered, and the layer that compensates for each gap.
//!
//! Landlock grew one feature at a time: 1 (Linux 5.13) the filesystem allowlist, 2 (5.19)
//! cross-directory rename/link ("refer"), 3 (6.2) truncate, 4 (6.7) TCP bind/connect, 5 (6.10)
//! device ioctls, 6 (6.12) abstract-Unix-socket and signal scopes. A policy asks for all of them;
//! on an older kernel (or with `landlock_max_abi` set lower) the daemon closes each gap with a
//! layer of its own, chosen once at start-up and reported by `initialize` and `ptcd doctor`:
//!
//! | missing (ABI) | compensating layer                                                        |
//! |---------------|----------------------------------------------------------------------------|
//! | refer (2)     | none needed: ABI 1 denies every cross-directory rename/link (stricter)      |
//! | truncate (3)  | seccomp: `truncate(2)` and `open(O_RDONLY\|O_TRUNC)` answer EPERM            |
//! | TCP (4)       | seccomp: `socket(2)`, `bind(2)`, `connect(2)` always answer EPERM            |
//! | ioctls (5)    | seccomp: only the `ALLOWED_IOCTLS` requests pass                             |
//! | abstract (6)  | seccomp: no socket can be created, bound or connected (socketpair only)     |
//! | signals (6)   | a per-run uid (daemon root), else seccomp: signals only to the run itself   |
//!
//! Where nothing compensates (the filesystem allowlist itself, or a gap whose layer the policy
//! turned off), the run is refused with a message naming the missing piece and the kernel that
//! has it. [`assess`] is pure: the host facts come in as arguments.

use serde::Serialize;

/// One Landlock feature the default policy relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    Filesystem,
    Refer,
    Truncate,
    Tcp,
    DeviceIoctl,
    AbstractUnixScope,
    SignalScope,
}

impl Feature {
    pub const ALL: [Feature; 7] = [
        Feature::Filesystem,
        Feature::Refer,
        Feature::Truncate,
        Feature::Tcp,
        Feature::DeviceIoctl,
        Feature::AbstractUnixScope,
        Feature::SignalScope,
    ];

    /// The first Landlock ABI with this feature.
    pub fn abi(self) -> u32 {
        match self {
            Feature::Filesystem => 1,
            Feature::Refer => 2,
            Feature::Truncate => 3,
            Feature::Tcp => 4,
            Feature::DeviceIoctl => 5,
            Feature::AbstractUnixScope | Feature::SignalScope => 6,
        }
    }

    /// The first mainline kernel with that ABI.
    pub fn kernel(self) -> &'static str {
        match self.abi() {
            1 => "5.13",
            2 => "5.19",
            3 => "6.2",
            4 => "6.7",
            5 => "6.10",
            _ => "6.12",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Feature::Filesystem => "filesystem allowlist",
            Feature::Refer => "cross-directory rename/link (refer)",
            Feature::Truncate => "truncate",
            Feature::Tcp => "TCP bind/connect",
            Feature::DeviceIoctl => "device ioctls",
            Feature::AbstractUnixScope => "abstract Unix socket scope",
            Feature::SignalScope => "signal scope",
        }
    }
}

/// What enforces one feature at the ABI in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "how")]
pub enum Cover {
    /// Landlock itself.
    Landlock,
    /// The older ABI is stricter than the feature (refer at ABI 1).
    Stricter(&'static str),
    /// A seccomp rule of the daemon's.
    Seccomp(&'static str),
    /// The run's own uid (the daemon is root).
    Identity(&'static str),
    /// Nothing: the policy cannot be enforced.
    Missing(String),
}

/// The host and policy facts [`assess`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The Landlock ABI in use (the kernel's, capped); 0 when Landlock is unavailable.
    pub abi: u32,
    /// The policy's seccomp layer is on.
    pub seccomp: bool,
    /// Each run gets its own uid (policy identity on and the daemon is root).
    pub per_run_uid: bool,
}

/// The extra seccomp rules the launcher installs for the gaps (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Compensation {
    /// Deny `truncate(2)` and read-only opens with `O_TRUNC`.
    pub truncate: bool,
    /// Signals only to the child's own process.
    pub signals: bool,
}

impl Compensation {
    pub fn any(self) -> bool {
        self.truncate || self.signals
    }
}

/// How each feature is enforced with `facts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub abi: u32,
    pub features: Vec<(Feature, Cover)>,
    #[serde(skip)]
    pub compensation: Compensation,
}

impl Assessment {
    /// One line per feature nothing enforces (empty: the policy can be enforced).
    pub fn missing(&self) -> Vec<String> {
        self.features
            .iter()
            .filter_map(|(_, c)| match c {
                Cover::Missing(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// For `initialize`: the features not enforced by Landlock and what does it instead.
    pub fn compensations_json(&self) -> serde_json::Value {
        let list: Vec<_> = self
            .features
            .iter()
            .filter(|(_, c)| *c != Cover::Landlock)
            .map(|(f, c)| {
                let (by, how) = match c {
                    Cover::Landlock => ("landlock", String::new()),
                    Cover::Stricter(h) => ("landlock", (*h).to_string()),
                    Cover::Seccomp(h) => ("seccomp", (*h).to_string()),
                    Cover::Identity(h) => ("identity", (*h).to_string()),
                    Cover::Missing(m) => ("nothing", m.clone()),
                };
                serde_json::json!({
                    "feature": f,
                    "landlock_abi": f.abi(),
                    "kernel": f.kernel(),
                    "by": by,
                    "how": how,
                })
            })
            .collect();
        serde_json::Value::Array(list)
    }

    /// For humans (`doctor`): one line per feature not enforced by Landlock.
    pub fn lines(&self) -> Vec<String> {
        self.features
            .iter()
            .filter(|(_, c)| *c != Cover::Landlock)
            .map(|(f, c)| {
                let how = match c {
                    Cover::Landlock => String::new(),
                    Cover::Stricter(h) => format!("landlock ABI {} is stricter: {h}", self.abi),
                    Cover::Seccomp(h) => format!("seccomp: {h}"),
                    Cover::Identity(h) => format!("per-run uid: {h}"),
                    Cover::Missing(m) => format!("NOTHING: {m}"),
                };
                format!(
                    "{} (ABI {}, Linux {}): {how}",
                    f.name(),
                    f.abi(),
                    f.kernel()
                )
            })
            .collect()
    }
}

fn missing(f: Feature, why: &str) -> Cover {
    Cover::Missing(format!(
        "landlock: {} needs Landlock ABI {} (Linux {}); {why}",
        f.name(),
        f.abi(),
        f.kernel()
    ))
}

/// How a policy with Landlock on is enforced with `facts` (see the module docs).
pub fn assess(facts: Facts) -> Assessment {
    let mut compensation = Compensation::default();
    let no_seccomp = "nothing compensates with the policy's seccomp layer off";
    let features = Feature::ALL
        .iter()
        .map(|&f| {
            let cover = if facts.abi >= f.abi() {
                Cover::Landlock
            } else {
                match f {
                    Feature::Filesystem => missing(
                        f,
                        if facts.abi == 0 {
                            "Landlock is not available here (not built in, or not in the lsm= boot list) and nothing compensates"
                        } else {
                            "nothing compensates"
                        },
                    ),
                    Feature::Refer => Cover::Stricter(
                        "every cross-directory rename or link answers EXDEV, even inside the scratch dir",
                    ),
                    Feature::Truncate if facts.seccomp => {
                        compensation.truncate = true;
                        Cover::Seccomp("truncate(2) and read-only opens with O_TRUNC answer EPERM")
                    }
                    Feature::Tcp if facts.seccomp => {
                        Cover::Seccomp("socket(2), bind(2) and connect(2) answer EPERM")
                    }
                    Feature::DeviceIoctl if facts.seccomp => {
                        Cover::Seccomp("only the allowlisted ioctl requests pass (ALLOWED_IOCTLS)")
                    }
                    Feature::AbstractUnixScope if facts.seccomp => Cover::Seccomp(
                        "no socket can be created, bound or connected (AF_UNIX socketpair only)",
                    ),
                    Feature::SignalScope if facts.per_run_uid => Cover::Identity(
                        "the run's own uid may signal only its own processes",
                    ),
                    Feature::SignalScope if facts.seccomp => {
                        compensation.signals = true;
                        Cover::Seccomp("kill/tgkill/rt_(tg)sigqueueinfo only to the run's own pid; tkill denied")
                    }
                    _ => missing(f, no_seccomp),
                }
            };
            (f, cover)
        })
        .collect();
    Assessment {
        abi: facts.abi,
        features,
        compensation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(abi: u32, seccomp: bool, per_run_uid: bool) -> Assessment {
        assess(Facts {
            abi,
            seccomp,
            per_run_uid,
        })
    }

    #[test]
    fn abi_6_needs_no_compensation() {
        let a = at(6, true, false);
        assert!(a.features.iter().all(|(_, c)| *c == Cover::Landlock));
        assert!(!a.compensation.any());
        assert!(a.missing().is_empty());
    }

    #[test]
    fn ubuntu_22_04_abi_1_is_fully_compensated_as_root() {
        let a = at(1, true, true);
        assert!(a.missing().is_empty(), "{:?}", a.missing());
        assert!(a.compensation.truncate);
        // The per-run uid covers signals; no seccomp rule needed.
        assert!(!a.compensation.signals);
        let refer = &a.features[1];
        assert!(matches!(refer, (Feature::Refer, Cover::Stricter(_))));
    }

    #[test]
    fn unprivileged_below_abi_6_scopes_signals_with_seccomp() {
        let a = at(4, true, false);
        assert!(a.missing().is_empty());
        assert!(a.compensation.signals);
        assert!(!a.compensation.truncate);
    }

    #[test]
    fn without_seccomp_the_gaps_are_refused_naming_feature_and_kernel() {
        let a = at(3, false, true);
        let missing = a.missing().join("\n");
        assert!(
            missing.contains("TCP bind/connect needs Landlock ABI 4 (Linux 6.7)"),
            "{missing}"
        );
        assert!(missing.contains("device ioctls needs Landlock ABI 5 (Linux 6.10)"));
        assert!(missing.contains("abstract Unix socket scope needs Landlock ABI 6 (Linux 6.12)"));
        // The per-run uid still covers signals.
        assert!(!missing.contains("signal scope"));
    }

    #[test]
    fn no_landlock_at_all_is_refused() {
        let a = at(0, true, true);
        let missing = a.missing().join("\n");
        assert!(missing.contains("filesystem allowlist needs Landlock ABI 1 (Linux 5.13)"));
    }
}
