//! Servers and clients running as child processes inside a namespace: TCP listeners and
//! connection sets (the `ndt-sock` helper binary of this crate) and dnsmasq.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::cmd::Drain;
use crate::netns::{read_ready_line, Netns, Process, Started};

/// How long a helper may take to report `ready` (50,000 connections take a few seconds).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a TCP server does with incoming connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accept {
    /// Accept and keep every connection open without reading (ESTAB on both sides).
    #[default]
    Hold,
    /// Accept and close at once: the client side goes to CLOSE-WAIT if it does not close.
    Close,
    /// Never call accept(): connections wait in the accept queue (the listener's Recv-Q).
    Never,
    /// Accept, read until the client closes, then close (a closing client ends in TIME-WAIT).
    Drain,
}

impl Accept {
    fn arg(self) -> &'static str {
        match self {
            Accept::Hold => "hold",
            Accept::Close => "close",
            Accept::Never => "never",
            Accept::Drain => "drain",
        }
    }
}

/// Options of [`Netns::spawn_tcp_server_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpServerOptions {
    /// listen() backlog: the accept queue holds backlog + 1 connections.
    pub backlog: u32,
    pub accept: Accept,
}

impl Default for TcpServerOptions {
    fn default() -> Self {
        TcpServerOptions {
            backlog: 128,
            accept: Accept::Hold,
        }
    }
}

/// A listening TCP server in a namespace; it stops when the namespace drops (or `process.stop()`).
#[derive(Debug, Clone)]
pub struct TcpServer {
    /// The bound address (the real port when port 0 was asked).
    pub addr: SocketAddr,
    pub process: Process,
}

/// What a set of client connections does after connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientClose {
    /// Keep open, never read: if the server closes, the client side sits in CLOSE-WAIT.
    Hold,
    /// Close right after connecting (active close: TIME-WAIT on the client side once the
    /// server closes too, e.g. with [`Accept::Drain`]; FIN-WAIT-2 with [`Accept::Hold`]).
    Close,
    /// Wait for the server's FIN, then close (passive close: TIME-WAIT on the server side).
    AfterPeer,
}

impl ClientClose {
    fn arg(self) -> &'static str {
        match self {
            ClientClose::Hold => "hold",
            ClientClose::Close => "close",
            ClientClose::AfterPeer => "eof-close",
        }
    }
}

/// A set of client connections made from a namespace, all established when returned.
#[derive(Debug, Clone)]
pub struct TcpClients {
    pub count: usize,
    pub process: Process,
}

/// dnsmasq serving fixed records in a namespace.
pub struct Dnsmasq {
    pub addr: IpAddr,
    pub process: Process,
    log: Drain,
}

impl Dnsmasq {
    /// dnsmasq's log so far (every query and its answer), for failure messages.
    pub fn log(&self) -> String {
        self.log.text()
    }
}

/// The `ndt-sock` helper binary: env `NDT_SOCK`, else next to the running test or bench
/// (cargo builds it with this crate's tests and benches).
pub fn ndt_sock_path() -> PathBuf {
    if let Ok(p) = std::env::var("NDT_SOCK") {
        return PathBuf::from(p);
    }
    let path = crate::probe::target_dir().join("ndt-sock");
    assert!(
        path.is_file(),
        "{} not found: it is built by `cargo test -p netdebug-scenarios` / `cargo bench -p netdebug-scenarios`, or set NDT_SOCK",
        path.display()
    );
    path
}

impl Netns {
    /// Starts `argv` in the namespace and waits (bounded) for the first line it prints, which
    /// it returns; stdin stays an open pipe until the namespace drops. Panics with the
    /// program's stderr if it exits or stays silent for `timeout`.
    #[track_caller]
    pub fn spawn_ready(&self, argv: &[&str], timeout: Duration) -> (Process, String) {
        let Started {
            mut child,
            command,
            stderr,
        } = self.start(argv, Stdio::piped(), Stdio::piped());
        match read_ready_line(&mut child, timeout) {
            Ok(line) => (self.adopt(child, command), line),
            Err(why) => {
                kill_and_reap(&mut child);
                stderr.finish(Duration::from_secs(1));
                panic!(
                    "`{command}` in {}: {why}; stderr: {}",
                    self.name(),
                    stderr.text().trim_end()
                );
            }
        }
    }

    /// A TCP server on `addr` (port 0 picks one) that accepts and holds connections.
    #[track_caller]
    pub fn spawn_tcp_server(&self, addr: SocketAddr) -> TcpServer {
        self.spawn_tcp_server_with(addr, TcpServerOptions::default())
    }

    /// A TCP server on `addr` with the given backlog and accept behaviour. Returns once the
    /// socket is listening.
    #[track_caller]
    pub fn spawn_tcp_server_with(&self, addr: SocketAddr, options: TcpServerOptions) -> TcpServer {
        let helper = ndt_sock_path();
        let (process, line) = self.spawn_ready(
            &[
                &helper.to_string_lossy(),
                "serve",
                &addr.to_string(),
                &options.backlog.to_string(),
                options.accept.arg(),
            ],
            READY_TIMEOUT,
        );
        let bound = line
            .strip_prefix("ready ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("ndt-sock serve printed `{line}`"));
        TcpServer {
            addr: bound,
            process,
        }
    }

    /// Opens `count` TCP connections from this namespace to `addr`; returns once all are
    /// established (each connect has a 5 s deadline; failure panics with the reason).
    #[track_caller]
    pub fn connect_clients(
        &self,
        addr: SocketAddr,
        count: usize,
        close: ClientClose,
    ) -> TcpClients {
        let helper = ndt_sock_path();
        let (process, _) = self.spawn_ready(
            &[
                &helper.to_string_lossy(),
                "connect",
                &addr.to_string(),
                &count.to_string(),
                close.arg(),
            ],
            READY_TIMEOUT,
        );
        TcpClients { count, process }
    }

    /// dnsmasq listening on `listen` port 53 (UDP and TCP) inside the namespace, answering
    /// exactly the `(name, ip)` records given (A or AAAA by the address family; several
    /// records per name allowed) and NXDOMAIN for every other name. Nothing is forwarded
    /// upstream. Returns once port 53 is bound.
    #[track_caller]
    pub fn spawn_dnsmasq(&self, listen: IpAddr, records: &[(&str, &str)]) -> Dnsmasq {
        // Every name not given as a record is local and therefore NXDOMAIN.
        let mut options = vec!["--local=/#/".to_string()];
        for (name, ip) in records {
            assert!(
                ip.parse::<IpAddr>().is_ok(),
                "dnsmasq record {name}: `{ip}` is not an IP address"
            );
            options.push(format!("--host-record={name},{ip}"));
        }
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        self.spawn_dnsmasq_with(listen, &options)
    }

    /// dnsmasq listening on `listen` port 53 (UDP and TCP) with no configuration of its own
    /// (no config file, resolv.conf or hosts file; queries logged, to [`Dnsmasq::log`]) plus
    /// the raw dnsmasq `options` given, e.g. `["--local=/corp.test/", "--server=10.199.1.6"]`.
    /// Without options it has no data and no upstream: it answers REFUSED. Returns once port
    /// 53 is bound for both UDP and TCP.
    #[track_caller]
    pub fn spawn_dnsmasq_with(&self, listen: IpAddr, options: &[&str]) -> Dnsmasq {
        let listen_opt = format!("--listen-address={listen}");
        let mut argv = vec![
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--pid-file=",
            "--log-facility=-",
            "--log-queries",
            &listen_opt,
        ];
        argv.extend_from_slice(options);
        let port = SocketAddr::new(listen, 53);
        let started = self.spawn_until_ready(&argv, &format!("bind {port}"), |_| {
            self.is_listening("udp", port) && self.is_listening("tcp", port)
        });
        Dnsmasq {
            addr: listen,
            process: self.adopt(started.child, started.command),
            log: started.stderr,
        }
    }

    /// Whether a socket of `proto` (`tcp` or `udp`) is bound to `addr` in the namespace and,
    /// for TCP, listening (`ss -H -l`).
    pub fn is_listening(&self, proto: &str, addr: SocketAddr) -> bool {
        let flag = if proto == "udp" { "-lun" } else { "-ltn" };
        let want = addr.to_string();
        let out = self.try_exec(&["ss", "-H", flag]);
        out.stdout
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3))
            .any(|local| local == want || local.replace('%', "") == want)
    }
}

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
