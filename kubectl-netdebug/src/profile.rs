//! Security profiles of the probe container, Pod Security aware.
//!
//! | profile      | securityContext | admitted by PSS level |
//! |--------------|-----------------|-----------------------|
//! | `restricted` | runAsNonRoot (uid 65534), drop ALL, no privilege escalation, seccomp RuntimeDefault, read-only root | restricted, baseline, privileged |
//! | `baseline`   | uid 0, runtime defaults minus all but NET_RAW, nothing added, read-only root | baseline, privileged |
//! | `netadmin`   | uid 0, drop ALL, add NET_RAW and NET_ADMIN, read-only root | privileged |

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Capabilities, SeccompProfile, SecurityContext};
use verdict::kube::ProfileInfo;

use crate::cli::ProfileChoice;

/// The label Pod Security admission enforces.
pub const PSS_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// The runtime-default capabilities (containerd, CRI-O, Docker) other than NET_RAW: the
/// probe needs none of them.
const RUNTIME_DEFAULTS_NOT_NEEDED: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// uid of `nobody`: an unprivileged user the restricted level admits.
pub const NOBODY_UID: i64 = 65534;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Restricted,
    Baseline,
    NetAdmin,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Restricted => "restricted",
            Profile::Baseline => "baseline",
            Profile::NetAdmin => "netadmin",
        }
    }

    pub fn security_context(self) -> SecurityContext {
        match self {
            Profile::Restricted => SecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(NOBODY_UID),
                run_as_group: Some(NOBODY_UID),
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: None,
                }),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..Default::default()
            },
            // Capabilities only take effect for uid 0 (Kubernetes has no ambient capabilities)
            // and the image's USER is 65534, so the privileged profiles run as root. Baseline
            // forbids *adding* NET_RAW, but runtimes grant it by default: drop every other
            // default capability and keep what the runtime gives for raw sockets.
            Profile::Baseline => SecurityContext {
                run_as_non_root: Some(false),
                run_as_user: Some(0),
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(
                        RUNTIME_DEFAULTS_NOT_NEEDED
                            .iter()
                            .map(|c| c.to_string())
                            .collect(),
                    ),
                    add: None,
                }),
                ..Default::default()
            },
            Profile::NetAdmin => SecurityContext {
                run_as_non_root: Some(false),
                run_as_user: Some(0),
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    add: Some(vec!["NET_RAW".into(), "NET_ADMIN".into()]),
                    drop: Some(vec!["ALL".into()]),
                }),
                ..Default::default()
            },
        }
    }
}

/// Pick the profile: an explicit `--profile` wins; `auto` follows the namespace's enforced
/// Pod Security level. `labels` is `None` when the namespace could not be read.
pub fn choose(
    choice: ProfileChoice,
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> (Profile, ProfileInfo) {
    let explicit = |p: Profile| {
        (
            p,
            ProfileInfo {
                name: p.name().into(),
                reason: format!("--profile {}", p.name()),
            },
        )
    };
    match choice {
        ProfileChoice::Restricted => return explicit(Profile::Restricted),
        ProfileChoice::Baseline => return explicit(Profile::Baseline),
        ProfileChoice::Netadmin => return explicit(Profile::NetAdmin),
        ProfileChoice::Auto => {}
    }
    let Some(labels) = labels else {
        return (
            Profile::Restricted,
            ProfileInfo {
                name: "restricted".into(),
                reason: format!(
                    "namespace {namespace} could not be read, so its Pod Security level is \
                     unknown; restricted is admitted at every level"
                ),
            },
        );
    };
    let (profile, reason) = match labels.get(PSS_ENFORCE_LABEL).map(String::as_str) {
        Some("restricted") => (
            Profile::Restricted,
            format!("namespace {namespace} enforces Pod Security level restricted"),
        ),
        Some("baseline") => (
            Profile::Baseline,
            format!(
                "namespace {namespace} enforces Pod Security level baseline (NET_RAW cannot be added)"
            ),
        ),
        Some("privileged") => (
            Profile::NetAdmin,
            format!("namespace {namespace} enforces Pod Security level privileged"),
        ),
        Some(other) => (
            // An unknown level value: Pod Security admission treats it as invalid; be safe.
            Profile::Restricted,
            format!(
                "namespace {namespace} has an unrecognised Pod Security level `{other}`; \
                 restricted is admitted at every level"
            ),
        ),
        None => (
            Profile::NetAdmin,
            format!("namespace {namespace} enforces no Pod Security level"),
        ),
    };
    (
        profile,
        ProfileInfo {
            name: profile.name().into(),
            reason,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(level: Option<&str>) -> BTreeMap<String, String> {
        level
            .map(|l| BTreeMap::from([(PSS_ENFORCE_LABEL.to_string(), l.to_string())]))
            .unwrap_or_default()
    }

    #[test]
    fn auto_follows_the_namespace_level() {
        let cases = [
            (Some("restricted"), Profile::Restricted),
            (Some("baseline"), Profile::Baseline),
            (Some("privileged"), Profile::NetAdmin),
            (None, Profile::NetAdmin),
            (Some("bogus"), Profile::Restricted),
        ];
        for (level, want) in cases {
            let (p, info) = choose(ProfileChoice::Auto, "shop", Some(&labels(level)));
            assert_eq!(p, want, "{level:?}");
            assert_eq!(info.name, want.name());
            assert!(info.reason.contains("shop"), "{}", info.reason);
        }
        let (p, info) = choose(ProfileChoice::Auto, "shop", None);
        assert_eq!(p, Profile::Restricted);
        assert!(info.reason.contains("could not be read"));
    }

    #[test]
    fn explicit_choice_wins() {
        let (p, info) = choose(
            ProfileChoice::Netadmin,
            "shop",
            Some(&labels(Some("restricted"))),
        );
        assert_eq!(p, Profile::NetAdmin);
        assert_eq!(info.reason, "--profile netadmin");
    }

    #[test]
    fn security_contexts() {
        let r = serde_json::to_value(Profile::Restricted.security_context()).unwrap();
        assert_eq!(
            r,
            serde_json::json!({
                "runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534,
                "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}
            })
        );
        let n = serde_json::to_value(Profile::NetAdmin.security_context()).unwrap();
        assert_eq!(
            n,
            serde_json::json!({
                "runAsNonRoot": false, "runAsUser": 0,
                "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "capabilities": {"add": ["NET_RAW", "NET_ADMIN"], "drop": ["ALL"]}
            })
        );
        let b = serde_json::to_value(Profile::Baseline.security_context()).unwrap();
        assert_eq!(b["runAsUser"], 0);
        assert!(
            b["capabilities"].get("add").is_none(),
            "baseline forbids adding"
        );
        let dropped = b["capabilities"]["drop"].as_array().unwrap();
        assert!(dropped.iter().all(|c| c != "NET_RAW"), "{dropped:?}");
        assert!(dropped.iter().any(|c| c == "SETUID"), "{dropped:?}");
    }
}
