//! The command line. `kubectl` does not forward its own connection flags to plugins, so the ones
//! a kubectl user types out of habit (`-n`, `--context`, `--kubeconfig`...) are declared here too.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration;
use crate::image::DEFAULT_PROBE_IMAGE;

#[derive(Debug, Parser)]
#[command(
    name = "kubectl-netdebug",
    bin_name = "kubectl netdebug",
    version,
    about = "From 'the network is broken' to a layered, evidence-backed verdict.",
    long_about = "Injects a small probe into a pod's network namespace (as an ephemeral \
                  container), runs DNS, route, TCP and socket checks toward a destination, and \
                  ends with a verdict: which layer failed, the evidence, and the next command.",
    after_help = "Examples:\n  \
        kubectl netdebug pod/checkout-7d9 --to svc/payments -n shop\n  \
        kubectl netdebug deploy/checkout --to svc/payments:443\n  \
        kubectl netdebug pod/x --dns api.example.com\n  \
        kubectl netdebug pod/x --to svc/y --capture -w trace.pcap\n  \
        kubectl-netdebug local --to 127.0.0.1:8080 --netns blue",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the probe on this Linux host (or in a network namespace of it): no Kubernetes.
    Local(Box<LocalArgs>),
    /// Print the client version, the protocol version and the default probe image.
    Version,
    /// Build the probe image from the installed probe (no Docker) and load it into a cluster
    /// that has no registry to pull it from (kind, a lab cluster, an air-gapped one).
    #[command(after_help = "Examples:\n  \
        kubectl netdebug image load --kind dev\n  \
        kubectl netdebug image load --containerd /run/containerd/containerd.sock\n  \
        kubectl netdebug image load --out netdebug-probe.tar   # then ctr images import on each node\n  \
        kubectl netdebug image build --probe ./netdebug-probe --out probe.tar")]
    Image(Box<ImageArgs>),
    /// Print a shell completion script for `kubectl-netdebug` (bash, zsh, fish, ...).
    #[command(after_help = "Examples:\n  \
        source <(kubectl-netdebug completion bash)\n  \
        kubectl-netdebug completion zsh > \"${fpath[1]}/_kubectl-netdebug\"\n  \
        kubectl-netdebug completion fish > ~/.config/fish/completions/kubectl-netdebug.fish\n\n\
        `kubectl netdebug <TAB>` (kubectl 1.26+) runs the kubectl_complete-netdebug helper \
        instead, which completes pod, workload, Service and namespace names from the cluster.")]
    Completion(CompletionArgs),
}

/// `kubectl netdebug image build|load`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Write the probe image as an OCI archive (for `kind load image-archive`,
    /// `ctr images import`, `skopeo copy oci-archive:...`) and print the --image to run with.
    Build(ImageBuildArgs),
    /// Build the image and load it where the cluster's nodes run it: into a kind cluster, into
    /// this machine's containerd, or as a file with the command to import it on each node.
    Load(ImageLoadArgs),
}

/// What the image is built from and named (both `image` subcommands).
#[derive(Debug, Clone, Args)]
pub struct ImageSourceArgs {
    /// The probe binary, statically linked [default: netdebug-probe beside this program,
    /// else on PATH, as local mode finds it].
    #[arg(long, value_name = "PATH")]
    pub probe: Option<std::path::PathBuf>,

    /// Image reference NAME:TAG [default: the probe repository, tagged with this client's
    /// version and the image digest, a tag no registry has].
    #[arg(long = "ref", value_name = "NAME:TAG")]
    pub reference: Option<String>,

    /// Architecture of the nodes (the probe binary must match it).
    #[arg(long, value_enum, default_value_t = ImageArch::Amd64)]
    pub arch: ImageArch,
}

/// `kubectl netdebug image build`
#[derive(Debug, Args)]
pub struct ImageBuildArgs {
    #[command(flatten)]
    pub source: ImageSourceArgs,

    /// Where to write the archive.
    #[arg(long, value_name = "FILE", default_value = "netdebug-probe-image.tar")]
    pub out: std::path::PathBuf,
}

/// `kubectl netdebug image load`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("destination").args(["kind", "containerd", "out"])))]
pub struct ImageLoadArgs {
    #[command(flatten)]
    pub source: ImageSourceArgs,

    /// Load into this kind cluster (`kind load image-archive`).
    #[arg(long, value_name = "CLUSTER")]
    pub kind: Option<String>,

    /// Import into the containerd behind this socket (`ctr -n k8s.io images import`): a
    /// single-node cluster whose containerd runs on this machine.
    #[arg(long, value_name = "SOCKET")]
    pub containerd: Option<std::path::PathBuf>,

    /// Write the archive to FILE and print, per node, the command that imports it there.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,

    /// Time limit for loading the image (kind or ctr).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// With none of --kind, --containerd, --out, the cluster of the current context is asked
    /// what it is (a kind cluster is loaded with kind).
    #[command(flatten)]
    pub kube: KubeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageArch {
    Amd64,
    Arm64,
}

impl ImageArch {
    pub fn oci(self) -> netdebug_oci::Arch {
        match self {
            ImageArch::Amd64 => netdebug_oci::Arch::Amd64,
            ImageArch::Arm64 => netdebug_oci::Arch::Arm64,
        }
    }
}

/// `kubectl netdebug completion SHELL`. (The hidden `kubectl-netdebug __complete ARGS... PARTIAL`,
/// cobra's protocol as kubectl plugin completion speaks it, is dispatched by `main.rs` before
/// parsing, so that it appears in neither `--help` nor the generated scripts.)
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to print the script for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `kubectl netdebug SOURCE ...`
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("what")
        .args(["to", "dns", "sockets"])
        .required(true)
        .multiple(true)
))]
pub struct RunArgs {
    /// The pod to probe from: pod/NAME, NAME, or deploy|sts|ds|rs|job/NAME (a Ready pod is
    /// picked; with --all-pods, every pod); or node/NAME, the node's own network namespace.
    #[arg(value_name = "SOURCE", required_unless_present = "selector")]
    pub source: Option<String>,

    /// Probe from every pod in the namespace that matches SELECTOR (kubectl's label selector
    /// syntax: app=web,tier!=cache), and compare them.
    #[arg(short = 'l', long, value_name = "SELECTOR", conflicts_with = "source")]
    pub selector: Option<String>,

    /// With deploy|sts|ds|rs|job/NAME: probe from every pod of the workload, and compare them.
    #[arg(long)]
    pub all_pods: bool,

    /// With several sources: one Ready pod per node (the others are skipped and counted).
    #[arg(long)]
    pub per_node: bool,

    /// With several sources: probe from at most N pods, spread across nodes.
    #[arg(long, value_name = "N", default_value = "20", value_parser = crate::sources::parse_max_sources)]
    pub max_sources: u16,

    /// With node/NAME or --via-node: the namespace the node probe pod is created in (it must
    /// admit privileged pods: host namespaces); default: the namespace of -n (of the pod,
    /// with --via-node).
    #[arg(long, value_name = "NAMESPACE")]
    pub node_namespace: Option<String>,

    /// Enter the pod's network namespace from its node (a short-lived probe pod there, with
    /// host PIDs) instead of adding an ephemeral container to the pod: nothing is added to
    /// the pod's spec, a `restricted` namespace does not limit the probe, and each connect to
    /// a ClusterIP is checked against the node's conntrack (was it translated, and where to).
    #[arg(long, conflicts_with_all = ["both_ends", "profile"])]
    pub via_node: bool,

    /// With several sources: how many probes are injected at once (the API server's load).
    #[arg(long, value_name = "N", default_value = "10", value_parser = crate::sources::parse_max_parallel)]
    pub max_parallel: u16,

    /// Destination: svc/NAME[.NS][:PORT|:PORTNAME], pod/NAME[.NS][:PORT], IP:PORT or HOST:PORT.
    #[arg(long, value_name = "DEST")]
    pub to: Option<String>,

    /// Also resolve NAME as the pod's resolver would (repeatable).
    #[arg(long, value_name = "NAME")]
    pub dns: Vec<String>,

    #[command(flatten)]
    pub capture: CaptureArgs,

    #[command(flatten)]
    pub rounds: RoundsArgs,

    /// Write the capture as pcap to FILE (`-` for stdout; implies --capture).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<String>,

    /// After each connect, one HTTP/1.1 GET of PATH (default /): status, time to first
    /// byte, Server. `--to http://...` or `https://...` says the same with the URL's path.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "/", requires = "to")]
    pub http: Option<String>,

    /// After each connect, a TLS handshake: version, the server's chain, whether it covers
    /// the name used and verifies (`--to https://...` implies it).
    #[arg(long, requires = "to")]
    pub tls: bool,

    /// Report socket health of the pod (states, TIME-WAIT, CLOSE-WAIT, listen queues).
    #[arg(long)]
    pub sockets: bool,

    /// Search the path MTU toward the destination (ICMP needs NET_RAW; TCP variant otherwise).
    #[arg(long)]
    pub mtu: bool,

    /// Probe the destination pods too (a Service's endpoints, at most --max-peers): each end
    /// captures the test traffic, and the verdict says where the packets die. Needs --to.
    #[arg(long, requires = "to")]
    pub both_ends: bool,

    /// With --both-ends: how many destination pods to probe (one per node first, failing
    /// ones first when known).
    #[arg(long, value_name = "N", default_value = "3", value_parser = crate::ends::parse_max_peers, requires = "both_ends")]
    pub max_peers: u8,

    #[command(flatten)]
    pub kube: KubeArgs,

    /// Container to attach the probe to (targetContainerName); default: the pod's
    /// kubectl.kubernetes.io/default-container annotation, else its first container.
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,

    /// Probe image to inject.
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_PROBE_IMAGE)]
    pub image: String,

    /// Image pull policy of the probe container.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub image_pull_policy: Option<PullPolicy>,

    /// Security profile of the probe; `auto` follows the namespace's Pod Security level.
    #[arg(long, value_enum, default_value_t = ProfileChoice::Auto)]
    pub profile: ProfileChoice,

    /// Overall time limit for the whole run (Go duration: 30s, 1m30s).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// How the probe's events reach this client. `auto`: through a port-forward to the probe
    /// as soon as it listens (needs create on pods/portforward), else from the container log;
    /// `logs`: only from the container log, which the kubelet serves once it reports the
    /// container, a second or two later.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = StreamVia::Auto)]
    pub stream: StreamVia,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where the client reads the probe's events from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamVia {
    Auto,
    Logs,
}

/// kubectl's connection flags.
#[derive(Debug, Args, Clone, Default)]
pub struct KubeArgs {
    /// Namespace of SOURCE (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Kubeconfig cluster to use.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,

    /// Kubeconfig user to use.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Path to the kubeconfig file (default: $KUBECONFIG, which may list several files, else
    /// ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,

    /// Time limit for a single API request (`0` = none), as in kubectl.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub request_timeout: Option<Duration>,
}

#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// Never colour the output (NO_COLOR is honoured too).
    #[arg(long)]
    pub no_color: bool,
}

/// `kubectl-netdebug local ...`
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("what")
        .args(["to", "dns", "sockets"])
        .required(true)
        .multiple(true)
))]
pub struct LocalArgs {
    /// Destination HOST:PORT ([v6]:PORT for IPv6 literals); repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    pub to: Vec<String>,

    /// Resolve NAME as this host's resolver would (repeatable).
    #[arg(long, value_name = "NAME")]
    pub dns: Vec<String>,

    /// After each connect, one HTTP/1.1 GET of PATH (default /): status, time to first
    /// byte, Server. `--to http://...` or `https://...` says the same with the URL's path.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "/", requires = "to")]
    pub http: Option<String>,

    /// After each connect, a TLS handshake: version, the server's chain, whether it covers
    /// the name used and verifies (`--to https://...` implies it).
    #[arg(long, requires = "to")]
    pub tls: bool,

    /// Report socket health (states, TIME-WAIT, CLOSE-WAIT, listen queues).
    #[arg(long)]
    pub sockets: bool,

    /// Search the path MTU toward the destinations.
    #[arg(long)]
    pub mtu: bool,

    #[command(flatten)]
    pub capture: CaptureArgs,

    #[command(flatten)]
    pub rounds: RoundsArgs,

    /// Write the capture as pcap to FILE (`-` for stdout; implies --capture).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<String>,

    /// Enter this network namespace first (a name under /var/run/netns, or a path).
    #[arg(long, value_name = "NAME", conflicts_with = "pid")]
    pub netns: Option<String>,

    /// Enter the network namespace of this process first.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Also probe the destination end in this network namespace (repeatable): it captures the
    /// traffic arriving from the source, and the verdict says where the packets die.
    #[arg(long, value_name = "NAME", requires = "to")]
    pub peer_netns: Vec<String>,

    /// Time limit for the probe run (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Repeated connect rounds (both modes): partial failures only show over many attempts.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Rounds")]
pub struct RoundsArgs {
    /// Connect to every target address N times, each a fresh connection (new source port);
    /// with --for, at most N rounds.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(protocol::MAX_REPEAT)))]
    pub repeat: Option<u32>,

    /// Keep running rounds for this long (e.g. 30s); must fit in --timeout.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub for_duration: Option<Duration>,

    /// How long one connect may wait for an answer (e.g. 500ms: below the kernel's 1 s SYN
    /// retransmission, a lost SYN is then a timeout, as for an application with a short
    /// connect timeout).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, help = format!(
        "How long one connect may wait for an answer [default: {}s]",
        protocol::DEFAULT_CONNECT_TIMEOUT_MS / 1000
    ))]
    pub connect_timeout: Option<Duration>,

    /// Connect attempts per second across all targets.
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u32).range(1..=i64::from(protocol::MAX_RATE)), help = format!(
        "Connect attempts per second across all targets [default: {}, at most {}]",
        protocol::DEFAULT_RATE,
        protocol::MAX_RATE
    ))]
    pub rate: Option<u32>,
}

impl RoundsArgs {
    /// The plan's rounds: None for one unpaced attempt per address (no --repeat above 1, no
    /// --for); a --rate alone changes nothing.
    pub fn plan(&self) -> Option<protocol::RoundsPlan> {
        let repeat = match (self.repeat, self.for_duration) {
            (Some(1) | None, None) => return None,
            (Some(n), _) => n,
            (None, Some(_)) => protocol::MAX_REPEAT,
        };
        Some(protocol::RoundsPlan {
            repeat,
            for_ms: self.for_duration.map(|d| d.as_millis() as u64),
            rate: self.rate.unwrap_or(protocol::DEFAULT_RATE),
            sample_cap: protocol::DEFAULT_SAMPLE_CAP,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileChoice {
    Auto,
    Restricted,
    Baseline,
    Netadmin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    #[value(name = "Always")]
    Always,
    #[value(name = "IfNotPresent")]
    IfNotPresent,
    #[value(name = "Never")]
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-netdebug").chain(args.iter().copied()))
    }

    #[test]
    fn full_run_line() {
        let cli = parse(&[
            "pod/x",
            "--to",
            "svc/y:443",
            "-n",
            "shop",
            "--context",
            "kind",
            "--dns",
            "a.example",
            "--dns",
            "b.example",
            "--profile",
            "restricted",
            "-o",
            "json",
            "--timeout",
            "1m",
            "--request-timeout",
            "5s",
            "--image-pull-policy",
            "IfNotPresent",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        let r = cli.run;
        assert_eq!(r.source.as_deref(), Some("pod/x"));
        assert_eq!(r.to.as_deref(), Some("svc/y:443"));
        assert_eq!(r.dns, ["a.example", "b.example"]);
        assert_eq!(r.kube.namespace.as_deref(), Some("shop"));
        assert_eq!(r.kube.context.as_deref(), Some("kind"));
        assert_eq!(r.kube.request_timeout, Some(Duration::from_secs(5)));
        assert_eq!(r.profile, ProfileChoice::Restricted);
        assert_eq!(r.output.format, OutputFormat::Json);
        assert_eq!(r.timeout, Duration::from_secs(60));
        assert_eq!(r.image, DEFAULT_PROBE_IMAGE);
        assert_eq!(r.image_pull_policy, Some(PullPolicy::IfNotPresent));
    }

    #[test]
    fn nothing_to_check_is_a_usage_error() {
        let err = parse(&["pod/x"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn both_ends_flags_are_checked_by_the_parser() {
        let r = parse(&["pod/x", "--to", "svc/y", "--both-ends"])
            .unwrap()
            .run;
        assert!(r.both_ends);
        assert_eq!(r.max_peers, 3, "the default");
        let r = parse(&["pod/x", "--to", "svc/y", "--both-ends", "--max-peers", "5"])
            .unwrap()
            .run;
        assert_eq!(r.max_peers, 5);
        let missing_to = parse(&["pod/x", "--dns", "a.example", "--both-ends"]).unwrap_err();
        assert!(missing_to.to_string().contains("--to"), "{missing_to}");
        for bad in ["0", "11", "5000", "x"] {
            let err = parse(&["pod/x", "--to", "svc/y", "--both-ends", "--max-peers", bad])
                .unwrap_err()
                .to_string();
            assert!(err.contains("--max-peers"), "{bad}: {err}");
        }
        let alone = parse(&["pod/x", "--to", "svc/y", "--max-peers", "2"]).unwrap_err();
        assert!(alone.to_string().contains("--both-ends"), "{alone}");
        let local = parse(&["local", "--dns", "a.example", "--peer-netns", "dst"]).unwrap_err();
        assert!(local.to_string().contains("--to"), "{local}");
    }

    #[test]
    fn local_subcommand() {
        let cli = parse(&[
            "local",
            "--to",
            "127.0.0.1:80",
            "--netns",
            "blue",
            "-o",
            "json",
        ])
        .unwrap();
        match cli.command {
            Some(Command::Local(l)) => {
                assert_eq!(l.to, ["127.0.0.1:80"]);
                assert_eq!(l.netns.as_deref(), Some("blue"));
                assert_eq!(l.output.format, OutputFormat::Json);
            }
            other => panic!("expected local, got {other:?}"),
        }
        let err = parse(&[
            "local",
            "--to",
            "127.0.0.1:80",
            "--netns",
            "a",
            "--pid",
            "1",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn completion_subcommands() {
        match parse(&["completion", "zsh"]).unwrap().command {
            Some(Command::Completion(c)) => assert_eq!(c.shell, clap_complete::Shell::Zsh),
            other => panic!("expected completion, got {other:?}"),
        }
        assert!(parse(&["completion", "tcsh"]).is_err());
        // `__complete` is not a clap subcommand: main.rs dispatches it before parsing, so it
        // stays out of --help and of the generated scripts.
        assert!(parse(&["__complete", "pod/x", ""]).is_err());
    }

    fn image_command(args: &[&str]) -> ImageCommand {
        match parse(args).unwrap().command {
            Some(Command::Image(i)) => i.command,
            other => panic!("expected image, got {other:?}"),
        }
    }

    #[test]
    fn image_subcommands() {
        match image_command(&["image", "load", "--kind", "dev", "--probe", "/p"]) {
            ImageCommand::Load(l) => {
                assert_eq!(l.kind.as_deref(), Some("dev"));
                assert_eq!(l.source.probe.as_deref(), Some(std::path::Path::new("/p")));
                assert_eq!(l.source.arch, ImageArch::Amd64);
                assert_eq!(l.timeout, Duration::from_secs(120));
            }
            other => panic!("expected image load, got {other:?}"),
        }
        let err = parse(&["image", "load", "--kind", "a", "--out", "f.tar"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        match image_command(&["image", "build", "--arch", "arm64"]) {
            ImageCommand::Build(b) => {
                assert_eq!(b.source.arch, ImageArch::Arm64);
                assert_eq!(b.out, std::path::Path::new("netdebug-probe-image.tar"));
            }
            other => panic!("expected image build, got {other:?}"),
        }
        assert!(parse(&["image", "build", "--arch", "riscv"]).is_err());
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(parse(&["pod/x", "--to", "a:1", "--timeout", "soon"]).is_err());
        assert!(parse(&["pod/x", "--to", "a:1", "--timeout", "0"]).is_err());
        assert!(parse(&["pod/x", "--to", "a:1", "--profile", "root"]).is_err());
        assert!(parse(&["pod/x", "--to", "a:1", "-o", "yaml"]).is_err());
    }
}

/// Packet capture (both modes). Any of these implies `--capture`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Capture")]
pub struct CaptureArgs {
    /// Capture packets (bounded) during the run; needs NET_RAW (profile netadmin, or baseline
    /// where the runtime grants it). Headers only unless --full-packets.
    #[arg(long)]
    pub capture: bool,

    /// tcpdump-style filter [default: traffic to and from the targets, and DNS to the
    /// nameservers].
    #[arg(long, value_name = "EXPR")]
    pub capture_filter: Option<String>,

    /// Capture on this interface only [default: all].
    #[arg(long, value_name = "IFACE")]
    pub capture_interface: Option<String>,

    /// Capture for this long (e.g. 20s) rather than stopping once the checks' own traffic is
    /// done; use it to watch the application's traffic.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub capture_duration: Option<Duration>,

    /// Stop capturing after this many packets (the default is the protocol's).
    #[arg(long, value_name = "N", help = format!(
        "Stop capturing after this many packets [default: {}]",
        protocol::DEFAULT_CAPTURE_PACKETS
    ))]
    pub capture_packets: Option<u64>,

    /// Stop capturing after this many bytes (the default is the protocol's).
    #[arg(long, value_name = "BYTES", help = format!(
        "Stop capturing after this many bytes [default: {} MiB]",
        protocol::DEFAULT_CAPTURE_BYTES >> 20
    ))]
    pub capture_bytes: Option<u64>,

    /// Keep whole packets, payloads included (default: headers only).
    #[arg(long)]
    pub full_packets: bool,
}

impl CaptureArgs {
    /// Whether any capture was asked for (`-w` asks too; the caller adds that).
    pub fn wanted(&self) -> bool {
        self.capture
            || self.capture_filter.is_some()
            || self.capture_interface.is_some()
            || self.capture_duration.is_some()
            || self.capture_packets.is_some()
            || self.capture_bytes.is_some()
            || self.full_packets
    }
}
