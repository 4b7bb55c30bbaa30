//! `kubectl-netdebug local` against the real probe in a network namespace this test creates,
//! with a TCP listener on an address inside it. Needs root (CI runs as root) and the probe
//! built (`cargo build -p probe`; found via $NETDEBUG_PROBE or target/debug beside this
//! test's binary). Independent oracles: `ss -ltn` in the namespace for which ports listen,
//! and `stat` of the namespace file for the namespace the probe reported.

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

const ADDR: &str = "10.199.77.1";
const OPEN_PORT: u16 = 18080;
const CLOSED_PORT: u16 = 18081;

fn require_root() {
    let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    assert_eq!(
        uid.trim(),
        "0",
        "local_mode tests need root (they create network namespaces); run them as root, as CI does"
    );
}

fn probe_path() -> PathBuf {
    if let Some(p) = std::env::var_os("NETDEBUG_PROBE") {
        return PathBuf::from(p);
    }
    // target/debug/deps/local_mode-xxxx -> target/debug/netdebug-probe
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("netdebug-probe");
    assert!(
        p.is_file(),
        "{} missing: run `cargo build -p probe` first",
        p.display()
    );
    p
}

fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .expect("iproute2 `ip` is needed");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A namespace with `ADDR` on its loopback and a listener on `ADDR:OPEN_PORT`; removed on drop.
struct Scenario {
    name: String,
    listener: Child,
}

impl Scenario {
    fn new(tag: &str) -> Scenario {
        require_root();
        let name = format!("ndt-lm-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{ADDR}/32"),
            "dev",
            "lo",
        ]);
        let script = format!(
            "import socket,sys,time\n\
             s=socket.socket(); s.bind(('{ADDR}',{OPEN_PORT})); s.listen(16)\n\
             print('ready', flush=True)\n\
             time.sleep(120)\n"
        );
        let mut listener = Command::new("ip")
            .args(["netns", "exec", &name, "python3", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the test listener");
        let mut line = String::new();
        BufReader::new(listener.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the listener did not start");
        Scenario { name, listener }
    }

    fn listening_ports(&self) -> String {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.name, "ss", "-Hltn"])
            .output()
            .expect("ss (iproute2) is needed");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn netns_inode(&self) -> u64 {
        let o = Command::new("stat")
            .args(["-L", "-c", "%i", &format!("/var/run/netns/{}", self.name)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = self.listener.kill();
        let _ = self.listener.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn netdebug(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-netdebug"))
        .args(args)
        .env("NETDEBUG_PROBE", probe_path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn tcp_outcome(out: &serde_json::Value, address: &str) -> String {
    out["probe"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["type"] == "evidence" && e["data"]["kind"] == "tcp" && e["data"]["address"] == address
        })
        .unwrap_or_else(|| panic!("no tcp evidence for {address}"))["data"]["outcome"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn healthy_listener_in_a_named_netns() {
    let s = Scenario::new("ok");
    let open = format!("{ADDR}:{OPEN_PORT}");
    // Oracle: the listener is there.
    assert!(
        s.listening_ports().contains(&open),
        "{}",
        s.listening_ports()
    );

    let o = netdebug(&["local", "--netns", &s.name, "--to", &open, "-o", "json"]);
    let out = json_of(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out["status"], "healthy");
    assert_eq!(out["exit_code"], 0);
    assert_eq!(out["title"]["source"], format!("netns/{}", s.name));
    assert_eq!(out["probe"]["stream_end"]["state"], "done");
    assert_eq!(tcp_outcome(&out, &open), "ok");
    // The probe ran in the namespace we made (oracle: the namespace file's inode).
    let hello = &out["probe"]["events"][0];
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["data"]["netns_inode"], s.netns_inode());
}

#[test]
fn refused_port_is_a_problem_found() {
    let s = Scenario::new("rst");
    let closed = format!("{ADDR}:{CLOSED_PORT}");
    let open = format!("{ADDR}:{OPEN_PORT}");
    // Oracle: nothing listens on the closed port.
    assert!(
        !s.listening_ports().contains(&closed),
        "{}",
        s.listening_ports()
    );

    let o = netdebug(&[
        "local", "--netns", &s.name, "--to", &open, "--to", &closed, "-o", "json",
    ]);
    let out = json_of(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out["status"], "failed");
    assert_eq!(tcp_outcome(&out, &open), "ok");
    assert_eq!(tcp_outcome(&out, &closed), "refused");
}

#[test]
fn pid_enters_the_listeners_namespace() {
    let s = Scenario::new("pid");
    let open = format!("{ADDR}:{OPEN_PORT}");
    // `ip netns exec` execs python3, so the child's pid is the listener's, inside the netns.
    let pid = s.listener.id().to_string();
    let o = netdebug(&["local", "--pid", &pid, "--to", &open, "-o", "json"]);
    let out = json_of(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out["title"]["source"], format!("pid/{pid}"));
    assert_eq!(tcp_outcome(&out, &open), "ok");
    assert_eq!(
        out["probe"]["events"][0]["data"]["netns_inode"],
        s.netns_inode()
    );
}

#[test]
fn probe_refusing_to_run_is_a_tool_failure_with_its_message() {
    require_root();
    // A pid that cannot exist (above pid_max): the probe fails to enter its namespace.
    let o = netdebug(&[
        "local",
        "--pid",
        "2147483647",
        "--to",
        "127.0.0.1:9",
        "-o",
        "json",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: netdebug-probe: "), "{err}");
    assert!(err.contains("2147483647"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn text_output_names_the_refused_port() {
    let s = Scenario::new("txt");
    let closed = format!("{ADDR}:{CLOSED_PORT}");
    let o = netdebug(&["local", "--netns", &s.name, "--to", &closed]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with(&format!("netdebug  netns/{} -> {closed}", s.name)),
        "{text}"
    );
    assert!(text.contains(&format!("{closed} refused")), "{text}");
}

/// `--repeat` reaches the probe as plan rounds and comes back as `tcp_rounds` evidence: one
/// per address, every attempt counted (10 fit in the listener's accept queue of 17, so all
/// connect even though it never accepts; oracle: ss shows them queued on the listener).
#[test]
fn repeat_runs_rounds_and_reports_their_counts() {
    let s = Scenario::new("rep");
    let open = format!("{ADDR}:{OPEN_PORT}");
    let o = netdebug(&[
        "local", "--netns", &s.name, "--to", &open, "--repeat", "10", "--rate", "100", "-o", "json",
    ]);
    let out = json_of(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rounds: Vec<&serde_json::Value> = out["probe"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "evidence" && e["data"]["kind"] == "tcp_rounds")
        .map(|e| &e["data"])
        .collect();
    assert_eq!(rounds.len(), 1, "{out:#}");
    assert_eq!(rounds[0]["address"], open.as_str());
    assert_eq!(rounds[0]["attempts"], 10);
    assert_eq!(rounds[0]["outcomes"]["ok"], 10);
    // The listener's accept queue holds the ten connections the probe made (Recv-Q).
    let queued: u64 = s
        .listening_ports()
        .lines()
        .find(|l| l.contains(&open))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|q| q.parse().ok())
        .unwrap_or(0);
    assert_eq!(queued, 10, "{}", s.listening_ports());
}

/// `--to http://ADDR:PORT/PATH` in local mode: the URL becomes a connect and one request, and
/// a listener that accepts connections but never answers (the test's listener never calls
/// accept(); the kernel completes the handshake) is a request that timed out, not a working
/// service.
#[test]
fn a_url_asks_for_a_request_and_silence_is_said() {
    let s = Scenario::new("http");
    let url = format!("http://{ADDR}:{OPEN_PORT}/health");
    let o = netdebug(&["local", "--netns", &s.name, "--to", &url, "-o", "json"]);
    let out = json_of(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(tcp_outcome(&out, &format!("{ADDR}:{OPEN_PORT}")), "ok");
    let http: Vec<&serde_json::Value> = out["probe"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["kind"] == "http")
        .map(|e| &e["data"])
        .collect();
    assert_eq!(http.len(), 1, "{out}");
    assert_eq!(http[0]["path"], "/health");
    assert_eq!(http[0]["host"], format!("{ADDR}:{OPEN_PORT}"));
    assert_eq!(http[0]["outcome"], "timeout", "{out}");
    assert_eq!(out["verdict"]["layer"], "application", "{out}");
}

/// One TLS/HTTP exchange per run: URLs for two hosts are refused before anything runs.
#[test]
fn urls_for_two_hosts_are_refused() {
    let o = netdebug(&[
        "local",
        "--to",
        "http://127.0.0.1:1/",
        "--to",
        "http://127.0.0.2:1/",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("give one host"), "{err}");
}
