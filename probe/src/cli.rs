//! Command line of the probe. Hand-parsed on purpose: a few flags do not justify clap's size in
//! a binary that is injected into every pod we debug.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

use protocol::Plan;

use crate::netns::NetnsTarget;

pub const USAGE: &str = "\
netdebug-probe: network evidence from inside a network namespace, as JSON lines on stdout

usage: netdebug-probe [--netns PATH|NAME | --pid PID | --pod-uid UID --pod-ip IP]
                      [--node-conntrack] (PLAN_JSON | --plan-file FILE)
       netdebug-probe --version

  PLAN_JSON          the plan as one JSON argument (see the netdebug-protocol crate)
  --plan-file FILE   read the plan from FILE ('-' for stdin)
  --netns PATH|NAME  enter this network namespace first (a path, or a name under /run/netns)
  --pid PID          enter the network namespace of process PID first
  --node-conntrack   look up each connect to a ClusterIP in the conntrack table of the
                     namespace the probe starts in (the node's), before entering another
  --pod-uid UID      with --pod-ip: enter the network namespace of the pod with this UID,
  --pod-ip IP        found among this node's processes by cgroup and checked to hold IP
                     (run in a hostPID + hostNetwork pod on the pod's node)
exit: 0 the probe ran (the evidence may show failures), 2 the probe itself failed
";

#[derive(Debug)]
pub enum Command {
    Run(Box<RunArgs>),
    Help,
    Version,
}

#[derive(Debug)]
pub struct RunArgs {
    pub plan: Plan,
    pub netns: Option<NetnsTarget>,
    /// Look up each connect to a ClusterIP in the conntrack table of the namespace the probe
    /// starts in (the node's, in a node view).
    pub node_conntrack: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CliError {
    #[error("{0} (see --help)")]
    Usage(String),
    #[error("cannot read plan file {path}: {message}")]
    PlanFile { path: String, message: String },
    #[error(transparent)]
    Plan(#[from] protocol::PlanError),
}

pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, CliError> {
    let mut plan_json: Option<String> = None;
    let mut plan_file: Option<PathBuf> = None;
    let mut netns: Option<NetnsTarget> = None;
    let mut node_conntrack = false;
    let mut pod_uid: Option<String> = None;
    let mut pod_ip: Option<IpAddr> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let arg = arg
            .into_string()
            .map_err(|a| CliError::Usage(format!("argument {a:?} is not valid UTF-8")))?;
        let mut value = |flag: &str| -> Result<String, CliError> {
            it.next()
                .ok_or_else(|| CliError::Usage(format!("{flag} needs a value")))?
                .into_string()
                .map_err(|a| CliError::Usage(format!("{flag} value {a:?} is not valid UTF-8")))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--netns" => {
                let v = value("--netns")?;
                set_once(&mut netns, NetnsTarget::from_arg(&v), "--netns/--pid")?;
            }
            "--pid" => {
                let v = value("--pid")?;
                let pid: u32 =
                    v.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                        CliError::Usage(format!("--pid `{v}` is not a process id"))
                    })?;
                set_once(&mut netns, NetnsTarget::Pid(pid), "--netns/--pid")?;
            }
            "--node-conntrack" => node_conntrack = true,
            "--pod-uid" => {
                let v = value("--pod-uid")?;
                set_once(&mut pod_uid, parse_pod_uid(&v)?, "--pod-uid")?;
            }
            "--pod-ip" => {
                let v = value("--pod-ip")?;
                let ip = v.parse().map_err(|_| {
                    CliError::Usage(format!("--pod-ip `{v}` is not an IPv4 or IPv6 address"))
                })?;
                set_once(&mut pod_ip, ip, "--pod-ip")?;
            }
            "--plan-file" => {
                let v = value("--plan-file")?;
                set_once(&mut plan_file, PathBuf::from(v), "--plan-file")?;
            }
            s if s.starts_with('-') && s != "-" => {
                return Err(CliError::Usage(format!("unknown flag `{s}`")))
            }
            _ => set_once(&mut plan_json, arg, "the plan argument")?,
        }
    }
    match (pod_uid, pod_ip) {
        (Some(uid), Some(ip)) => {
            if netns.is_some() {
                return Err(CliError::Usage(
                    "--pod-uid/--pod-ip name the namespace to enter: give them or --netns/--pid, \
                     not both"
                        .into(),
                ));
            }
            netns = Some(NetnsTarget::Pod { uid, ip });
        }
        (Some(_), None) => {
            return Err(CliError::Usage(
                "--pod-uid needs --pod-ip (the pod IP tells the pod's namespace)".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(CliError::Usage(
                "--pod-ip needs --pod-uid (the pod UID finds the pod's processes)".into(),
            ))
        }
        (None, None) => {}
    }
    let plan_from_stdin = plan_file.as_ref().is_some_and(|p| p.as_os_str() == "-");
    let json = match (plan_json, plan_file) {
        (Some(_), Some(_)) => {
            return Err(CliError::Usage(
                "give the plan either as an argument or with --plan-file, not both".into(),
            ))
        }
        (Some(j), None) => j,
        (None, Some(path)) => read_plan_file(&path)?,
        (None, None) => return Err(CliError::Usage("no plan given".into())),
    };
    let plan = Plan::from_json(&json)?;
    let stdin_control = plan
        .control
        .as_ref()
        .is_some_and(|c| c.via.known() == Some(protocol::ControlVia::Stdin));
    if stdin_control && plan_from_stdin {
        return Err(CliError::Usage(
            "the plan's control words come on stdin, so the plan cannot (--plan-file -)".into(),
        ));
    }
    Ok(Command::Run(Box::new(RunArgs {
        plan,
        netns,
        node_conntrack,
    })))
}

fn set_once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), CliError> {
    if slot.is_some() {
        return Err(CliError::Usage(format!("{what} given more than once")));
    }
    *slot = Some(value);
    Ok(())
}

/// A pod UID as Kubernetes writes it: a UUID, 36 characters of hex digits and dashes
/// (8-4-4-4-12). Lowercased, as the kubelet names cgroups.
fn parse_pod_uid(v: &str) -> Result<String, CliError> {
    let groups: Vec<&str> = v.split('-').collect();
    let shape_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !shape_ok {
        return Err(CliError::Usage(format!(
            "--pod-uid `{v}` is not a pod UID (a UUID like 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0, \
             as in `kubectl get pod NAME -o jsonpath={{.metadata.uid}}`)"
        )));
    }
    Ok(v.to_ascii_lowercase())
}

fn read_plan_file(path: &PathBuf) -> Result<String, CliError> {
    let result = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    result.map_err(|e| CliError::PlanFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn plan_argument_parses() {
        let cmd = parse(args(&[
            r#"{"v":1,"targets":[{"label":"a","host":"127.0.0.1","port":80}]}"#,
        ]))
        .unwrap();
        let Command::Run(run) = cmd else {
            panic!("expected run")
        };
        assert_eq!(run.plan.targets[0].port, Some(80));
        assert!(run.netns.is_none());
    }

    #[test]
    fn malformed_plan_is_a_plan_error() {
        let err = parse(args(&["{not json"])).unwrap_err();
        assert!(
            matches!(err, CliError::Plan(protocol::PlanError::Parse(_))),
            "{err}"
        );
    }

    #[test]
    fn target_that_is_not_an_address_is_refused() {
        let err = parse(args(&[
            r#"{"v":1,"targets":[{"label":"a","host":"not an address!","port":80}]}"#,
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("not an IP address or a DNS name"),
            "{err}"
        );
    }

    #[test]
    fn control_via_stdin_takes_the_plan_from_a_file() {
        let dir = std::env::temp_dir().join(format!("probe-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("plan.json");
        std::fs::write(&file, r#"{"v":1,"control":{"via":"stdin"}}"#).unwrap();
        // From a file it is fine.
        assert!(parse(args(&["--plan-file", file.to_str().unwrap()])).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn netns_and_pid_are_exclusive() {
        let err = parse(args(&["--netns", "a", "--pid", "1", "{}"])).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
    }

    #[test]
    fn bad_pid_and_unknown_flags_are_refused() {
        assert!(parse(args(&["--pid", "x", "{}"]))
            .unwrap_err()
            .to_string()
            .contains("not a process id"));
        assert!(parse(args(&["--bogus"]))
            .unwrap_err()
            .to_string()
            .contains("unknown flag `--bogus`"));
        assert!(parse(args(&[]))
            .unwrap_err()
            .to_string()
            .contains("no plan given"));
        assert!(parse(args(&["--plan-file", "/nonexistent/plan.json"]))
            .unwrap_err()
            .to_string()
            .contains("cannot read plan file /nonexistent/plan.json"));
    }

    const UID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    const PLAN: &str = r#"{"v":1}"#;

    fn netns_of(a: &[&str]) -> Result<Option<NetnsTarget>, CliError> {
        parse(args(a)).map(|cmd| match cmd {
            Command::Run(run) => run.netns,
            other => panic!("expected run, got {other:?}"),
        })
    }

    #[test]
    fn pod_uid_and_ip_make_a_pod_target() {
        assert_eq!(
            netns_of(&["--pod-uid", UID, "--pod-ip", "10.244.0.7", PLAN]).unwrap(),
            Some(NetnsTarget::Pod {
                uid: UID.into(),
                ip: "10.244.0.7".parse().unwrap()
            })
        );
        // Either order, IPv6, upper-case UID (lowercased as the kubelet writes cgroups).
        assert_eq!(
            netns_of(&[
                "--pod-ip",
                "fd00:10:244::7",
                "--pod-uid",
                &UID.to_uppercase(),
                PLAN
            ])
            .unwrap(),
            Some(NetnsTarget::Pod {
                uid: UID.into(),
                ip: "fd00:10:244::7".parse().unwrap()
            })
        );
    }

    #[test]
    fn pod_uid_and_ip_go_together() {
        assert_eq!(
            netns_of(&["--pod-uid", UID, PLAN]).unwrap_err().to_string(),
            "--pod-uid needs --pod-ip (the pod IP tells the pod's namespace) (see --help)"
        );
        assert_eq!(
            netns_of(&["--pod-ip", "10.244.0.7", PLAN])
                .unwrap_err()
                .to_string(),
            "--pod-ip needs --pod-uid (the pod UID finds the pod's processes) (see --help)"
        );
    }

    #[test]
    fn pod_target_excludes_netns_and_pid() {
        for other in [["--netns", "blue"], ["--pid", "1"]] {
            let mut a = vec!["--pod-uid", UID, "--pod-ip", "10.244.0.7"];
            a.extend(other);
            a.push(PLAN);
            let err = netns_of(&a).unwrap_err().to_string();
            assert!(err.contains("or --netns/--pid, not both"), "{err}");
        }
        let err = netns_of(&["--pod-uid", UID, "--pod-uid", UID, PLAN])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--pod-uid given more than once"), "{err}");
    }

    #[test]
    fn bad_pod_uid_and_ip_are_refused() {
        for bad in [
            "x",
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fz",
            "0f1e2d3c-4b5a-6978-8796a-5b4c3d2e1f0",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0-",
            "../../etc/passwd-xxxxxxxxxxxxxxxxxxxx",
        ] {
            let err = netns_of(&["--pod-uid", bad, "--pod-ip", "10.0.0.1", PLAN])
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("--pod-uid `{bad}` is not a pod UID")),
                "{err}"
            );
        }
        let err = netns_of(&["--pod-uid", UID, "--pod-ip", "10.0.0.300", PLAN])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--pod-ip `10.0.0.300` is not an IPv4 or IPv6 address"),
            "{err}"
        );
    }
}
