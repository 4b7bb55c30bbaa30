//! The fixed-value vocabularies of the protocol: every field that stands for one of a known
//! set of values is one of these, wrapped in [`Open`](crate::Open) on the wire so that a value a
//! newer probe sends is kept as text rather than making the line unreadable.

use crate::{spelled, Open};

spelled! {
    /// What a target stands for. Set by the client in the plan and echoed by the probe in
    /// every piece of evidence about the target, so a reader never re-derives it from
    /// addresses.
    #[derive(Default)]
    pub enum TargetRole {
        /// An address or host name given directly.
        #[default]
        Direct = "direct",
        /// A Service's ClusterIP (a DNAT done by kube-proxy or the CNI, not an interface
        /// address).
        ClusterIp = "cluster_ip",
        /// One endpoint of a Service (a pod IP and the resolved targetPort).
        Endpoint = "endpoint",
        /// A pod's IP.
        Pod = "pod",
        /// The source a peer watches (protocol minor 4): a route to it is the way back.
        Source = "source",
    }
}

spelled! {
    /// Linux capabilities, in `capabilities(7)` order, lower-case without `cap_`.
    pub enum Capability {
        Chown = "chown",
        DacOverride = "dac_override",
        DacReadSearch = "dac_read_search",
        Fowner = "fowner",
        Fsetid = "fsetid",
        Kill = "kill",
        Setgid = "setgid",
        Setuid = "setuid",
        Setpcap = "setpcap",
        LinuxImmutable = "linux_immutable",
        NetBindService = "net_bind_service",
        NetBroadcast = "net_broadcast",
        NetAdmin = "net_admin",
        NetRaw = "net_raw",
        IpcLock = "ipc_lock",
        IpcOwner = "ipc_owner",
        SysModule = "sys_module",
        SysRawio = "sys_rawio",
        SysChroot = "sys_chroot",
        SysPtrace = "sys_ptrace",
        SysPacct = "sys_pacct",
        SysAdmin = "sys_admin",
        SysBoot = "sys_boot",
        SysNice = "sys_nice",
        SysResource = "sys_resource",
        SysTime = "sys_time",
        SysTtyConfig = "sys_tty_config",
        Mknod = "mknod",
        Lease = "lease",
        AuditWrite = "audit_write",
        AuditControl = "audit_control",
        Setfcap = "setfcap",
        MacOverride = "mac_override",
        MacAdmin = "mac_admin",
        Syslog = "syslog",
        WakeAlarm = "wake_alarm",
        BlockSuspend = "block_suspend",
        AuditRead = "audit_read",
        Perfmon = "perfmon",
        Bpf = "bpf",
        CheckpointRestore = "checkpoint_restore",
    }
}

impl Capability {
    /// The capability with bit number `bit` (`capabilities(7)`), if this version knows it.
    pub fn from_bit(bit: u32) -> Option<Capability> {
        <Capability as crate::Spelled>::ALL
            .get(bit as usize)
            .copied()
    }
}

spelled! {
    /// Operational state of a link (IFLA_OPERSTATE, RFC 2863).
    pub enum OperState {
        /// The driver does not report one (loopback, many virtual devices): not a problem.
        Unknown = "unknown",
        NotPresent = "notpresent",
        Down = "down",
        LowerLayerDown = "lowerlayerdown",
        Testing = "testing",
        Dormant = "dormant",
        Up = "up",
    }
}

spelled! {
    /// Link kind (IFLA_INFO_KIND).
    pub enum LinkKind {
        Veth = "veth",
        Bridge = "bridge",
        Vlan = "vlan",
        Vxlan = "vxlan",
        Geneve = "geneve",
        Ipip = "ipip",
        Sit = "sit",
        Gre = "gre",
        Gretap = "gretap",
        Ip6tnl = "ip6tnl",
        Wireguard = "wireguard",
        Macvlan = "macvlan",
        Ipvlan = "ipvlan",
        Bond = "bond",
        Team = "team",
        Dummy = "dummy",
        Tun = "tun",
        Vrf = "vrf",
        Ifb = "ifb",
        Nlmon = "nlmon",
        Netkit = "netkit",
    }
}

spelled! {
    /// Address scope in `ip addr` spelling.
    pub enum AddressScope {
        Global = "global",
        Site = "site",
        Link = "link",
        Host = "host",
        Nowhere = "nowhere",
    }
}

spelled! {
    /// Route type in `ip route` spelling.
    pub enum RouteType {
        Unspec = "unspec",
        Unicast = "unicast",
        Local = "local",
        Broadcast = "broadcast",
        Anycast = "anycast",
        Multicast = "multicast",
        Blackhole = "blackhole",
        Unreachable = "unreachable",
        Prohibit = "prohibit",
        Throw = "throw",
        Nat = "nat",
        Xresolve = "xresolve",
    }
}

spelled! {
    /// Why the kernel found no usable route.
    pub enum NoRouteReason {
        /// ENETUNREACH: no route at all, or an `unreachable` route to a network.
        NetworkUnreachable = "network_unreachable",
        /// EHOSTUNREACH: an `unreachable` route.
        HostUnreachable = "host_unreachable",
        /// EACCES: a `prohibit` route.
        Prohibited = "prohibited",
        /// EINVAL: a `blackhole` route.
        Blackhole = "blackhole",
    }
}

spelled! {
    /// Neighbor (ARP/ND) state in `ip neigh` spelling.
    pub enum NudState {
        Incomplete = "INCOMPLETE",
        Reachable = "REACHABLE",
        Stale = "STALE",
        Delay = "DELAY",
        Probe = "PROBE",
        Failed = "FAILED",
        Noarp = "NOARP",
        Permanent = "PERMANENT",
        /// No neighbor entry exists.
        None = "NONE",
    }
}

spelled! {
    /// Address family in `ip -f` spelling.
    pub enum Family {
        Inet = "inet",
        Inet6 = "inet6",
    }
}

spelled! {
    /// What a policy routing rule does (`ip rule` spelling).
    pub enum RuleAction {
        Lookup = "lookup",
        Unreachable = "unreachable",
        Prohibit = "prohibit",
        Blackhole = "blackhole",
        Goto = "goto",
        Nop = "nop",
    }
}

impl RuleAction {
    /// Does the rule end the lookup with an error instead of a route?
    pub fn refuses(self) -> bool {
        matches!(
            self,
            RuleAction::Unreachable | RuleAction::Prohibit | RuleAction::Blackhole
        )
    }
}

spelled! {
    /// DNS record types the probe names (others travel as their `TYPEnnn` text).
    pub enum RecordType {
        A = "A",
        Aaaa = "AAAA",
        Cname = "CNAME",
        Ns = "NS",
        Soa = "SOA",
        Ptr = "PTR",
        Mx = "MX",
        Txt = "TXT",
        Srv = "SRV",
        Opt = "OPT",
        Https = "HTTPS",
        Svcb = "SVCB",
        Caa = "CAA",
        Any = "ANY",
    }
}

spelled! {
    /// DNS response code in RFC spelling.
    pub enum Rcode {
        NoError = "NOERROR",
        FormErr = "FORMERR",
        ServFail = "SERVFAIL",
        NxDomain = "NXDOMAIN",
        NotImp = "NOTIMP",
        Refused = "REFUSED",
        YxDomain = "YXDOMAIN",
        YxRrset = "YXRRSET",
        NxRrset = "NXRRSET",
        NotAuth = "NOTAUTH",
        NotZone = "NOTZONE",
        BadVers = "BADVERS",
    }
}

impl Rcode {
    /// The response code with number `code` (RFC 1035, 2136, 6891), if this version names it.
    pub fn from_code(code: u16) -> Option<Rcode> {
        match code {
            0..=10 => <Rcode as crate::Spelled>::ALL
                .get(usize::from(code))
                .copied(),
            16 => Some(Rcode::BadVers),
            _ => None,
        }
    }

    /// The server could not or would not answer (as opposed to an answer about the name).
    pub fn is_server_failure(self) -> bool {
        matches!(self, Rcode::ServFail | Rcode::Refused)
    }
}

spelled! {
    /// How an application's resolver sends the A and AAAA questions of one lookup (glibc's
    /// send_dg, from resolv.conf's options).
    pub enum DnsSendMode {
        /// Both at once from one UDP socket (one source port): glibc's default.
        Parallel = "parallel",
        /// One after the other on one socket (`single-request`).
        SingleRequest = "single_request",
        /// Both at once; when only one reply comes back, the other is asked again from a new
        /// socket (`single-request-reopen`).
        SingleRequestReopen = "single_request_reopen",
        /// Over TCP (`use-vc`).
        UseVc = "use_vc",
    }
}

spelled! {
    /// How one application-style lookup (all candidates of the search list) ended.
    pub enum DnsLookupOutcome {
        /// A candidate answered with at least one address (or a CNAME-only answer).
        Answered = "answered",
        /// Every candidate was NXDOMAIN (or NODATA).
        NotFound = "not_found",
        /// A SERVFAIL, REFUSED or NOTIMP ended the lookup.
        ServerFailure = "server_failure",
        /// No reply from any nameserver within the timeouts and attempts.
        Timeout = "timeout",
        /// A socket error (e.g. ICMP port unreachable).
        Error = "error",
    }
}

spelled! {
    /// Where a name's addresses came from (nsswitch's source).
    pub enum NameSource {
        /// The hosts file (`/etc/hosts`): no DNS query is sent.
        Files = "files",
        /// The nameservers of resolv.conf.
        Dns = "dns",
    }
}

// `spelled!` derives no Default, so it cannot take `#[default]` on a variant.
#[allow(clippy::derivable_impls)]
impl Default for NameSource {
    fn default() -> Self {
        NameSource::Dns
    }
}

spelled! {
    /// Transport of a DNS query.
    pub enum DnsTransport {
        Udp = "udp",
        Tcp = "tcp",
    }
}

spelled! {
    /// `options` of resolv.conf that change how glibc's resolver behaves (ndots, timeout and
    /// attempts have fields of their own).
    pub enum ResolverOption {
        Rotate = "rotate",
        SingleRequest = "single-request",
        SingleRequestReopen = "single-request-reopen",
        UseVc = "use-vc",
        Edns0 = "edns0",
        Inet6 = "inet6",
        NoTldQuery = "no-tld-query",
        TrustAd = "trust-ad",
        NoReload = "no-reload",
        NoAaaa = "no-aaaa",
        NoCheckNames = "no-check-names",
        Debug = "debug",
        Ip6Bytestring = "ip6-bytestring",
        Ip6Dotint = "ip6-dotint",
        NoIp6Dotint = "no-ip6-dotint",
    }
}

spelled! {
    /// TCP socket state in `ss` spelling.
    pub enum SocketState {
        Established = "ESTAB",
        SynSent = "SYN-SENT",
        SynRecv = "SYN-RECV",
        FinWait1 = "FIN-WAIT-1",
        FinWait2 = "FIN-WAIT-2",
        TimeWait = "TIME-WAIT",
        Unconn = "UNCONN",
        CloseWait = "CLOSE-WAIT",
        LastAck = "LAST-ACK",
        Listen = "LISTEN",
        Closing = "CLOSING",
        BoundInactive = "BOUND-INACTIVE",
    }
}

impl SocketState {
    /// The state for the kernel's `TCP_*` number (`include/net/tcp_states.h`).
    pub fn from_kernel(state: u8) -> Option<SocketState> {
        Some(match state {
            1 => SocketState::Established,
            2 => SocketState::SynSent,
            // 12 is TCP_NEW_SYN_RECV (request sockets); the kernel reports those as SYN_RECV.
            3 | 12 => SocketState::SynRecv,
            4 => SocketState::FinWait1,
            5 => SocketState::FinWait2,
            6 => SocketState::TimeWait,
            7 => SocketState::Unconn,
            8 => SocketState::CloseWait,
            9 => SocketState::LastAck,
            10 => SocketState::Listen,
            11 => SocketState::Closing,
            13 => SocketState::BoundInactive,
            _ => return None,
        })
    }
}

spelled! {
    /// Which MTU search ran.
    pub enum MtuVariant {
        /// Echo requests with DF (needs NET_RAW or a ping socket).
        Icmp = "icmp",
        /// Unprivileged: DF segments toward the target's port, acknowledged bytes read from
        /// TCP_INFO.
        Tcp = "tcp",
    }
}

spelled! {
    /// The result of one MTU probe size.
    pub enum MtuProbeResult {
        Ok = "ok",
        Lost = "lost",
        /// An ICMP frag-needed / packet-too-big came back.
        FragNeeded = "frag_needed",
        /// EMSGSIZE before sending: above the interface MTU or a learned path MTU.
        TooBigLocally = "too_big_locally",
        /// The peer's MSS keeps TCP segments below this size.
        Capped = "capped",
        Failed = "failed",
    }
}

spelled! {
    /// Which limit ended a capture.
    pub enum CaptureStop {
        Duration = "duration",
        Packets = "packets",
        Bytes = "bytes",
        Deadline = "deadline",
        /// The plan's traffic checks had finished and a short linger passed.
        TrafficDone = "traffic_done",
        /// The client sent `stop` (a peer, once the source was done; protocol minor 4).
        Stopped = "stopped",
    }
}

spelled! {
    /// How a captured TCP handshake went.
    pub enum Handshake {
        /// SYN answered by SYN-ACK.
        Established = "established",
        /// SYN answered by RST.
        Refused = "refused",
        /// An ICMP error quoting the flow came back (see `icmp_errors`).
        Unreachable = "unreachable",
        /// SYN never answered.
        Unanswered = "unanswered",
        /// No SYN seen: the capture started mid-connection.
        Midstream = "midstream",
    }
}

spelled! {
    /// Which way a captured packet went at the interface it was seen on.
    pub enum PacketDirection {
        /// Received by this network namespace.
        In = "in",
        /// Sent by this network namespace.
        Out = "out",
    }
}

spelled! {
    /// One side of a captured flow.
    pub enum FlowSide {
        Client = "client",
        Server = "server",
    }
}

spelled! {
    /// ICMP errors a capture names (others travel as `type/code`).
    pub enum IcmpKind {
        FragNeeded = "frag_needed",
        PacketTooBig = "packet_too_big",
        PortUnreachable = "port_unreachable",
        HostUnreachable = "host_unreachable",
        NetUnreachable = "net_unreachable",
        ProtocolUnreachable = "protocol_unreachable",
        AdminProhibited = "admin_prohibited",
        TimeExceeded = "time_exceeded",
    }
}

spelled! {
    /// What an ICMP or ICMPv6 error says, by type and code (RFC 792, 1812, 4443). One name
    /// per distinct claim: `net_prohibited` (3/9) is not `admin_prohibited` (3/13). A
    /// type/code this version does not name travels as `icmp_TYPE_CODE` /
    /// `icmp6_TYPE_CODE` (see [`IcmpMeaning::spelling_of`]).
    pub enum IcmpMeaning {
        /// ICMP 3/0, ICMPv6 1/0 (no route to destination).
        NetUnreachable = "net_unreachable",
        /// ICMP 3/1, ICMPv6 1/3 (address unreachable).
        HostUnreachable = "host_unreachable",
        /// ICMP 3/2, ICMPv6 4/1 (unrecognized next header).
        ProtocolUnreachable = "protocol_unreachable",
        /// ICMP 3/3, ICMPv6 1/4. For TCP a host answers a closed port with RST: an ICMP port
        /// unreachable is a firewall's REJECT (iptables' default `--reject-with`).
        PortUnreachable = "port_unreachable",
        /// ICMP 3/4 (fragmentation needed and DF set), ICMPv6 2/0 (packet too big).
        FragNeeded = "frag_needed",
        /// ICMP 3/5.
        SourceRouteFailed = "source_route_failed",
        /// ICMP 3/6.
        NetUnknown = "net_unknown",
        /// ICMP 3/7.
        HostUnknown = "host_unknown",
        /// ICMP 3/8.
        HostIsolated = "host_isolated",
        /// ICMP 3/9: communication with the destination network administratively prohibited.
        NetProhibited = "net_prohibited",
        /// ICMP 3/10: communication with the destination host administratively prohibited.
        HostProhibited = "host_prohibited",
        /// ICMP 3/11.
        NetTosUnreachable = "net_tos_unreachable",
        /// ICMP 3/12.
        HostTosUnreachable = "host_tos_unreachable",
        /// ICMP 3/13 (communication administratively prohibited, RFC 1812), ICMPv6 1/1.
        AdminProhibited = "admin_prohibited",
        /// ICMP 3/14.
        HostPrecedenceViolation = "host_precedence_violation",
        /// ICMP 3/15.
        PrecedenceCutoff = "precedence_cutoff",
        /// ICMPv6 1/2: beyond the scope of the source address.
        BeyondScope = "beyond_scope",
        /// ICMPv6 1/5: source address failed ingress/egress policy.
        SourcePolicyFailed = "source_policy_failed",
        /// ICMPv6 1/6: reject route to destination.
        RejectRoute = "reject_route",
        /// ICMP 11/0, ICMPv6 3/0: TTL / hop limit exceeded in transit (a routing loop, or a
        /// path longer than the TTL).
        TtlExceeded = "ttl_exceeded",
        /// ICMP 11/1, ICMPv6 3/1.
        ReassemblyTimeExceeded = "reassembly_time_exceeded",
        /// ICMP 12, ICMPv6 4 (other codes than 4/1).
        ParameterProblem = "parameter_problem",
    }
}

impl IcmpMeaning {
    /// The meaning of ICMP (`v6` false) or ICMPv6 (`v6` true) type/code, if it is one this
    /// version names.
    pub fn of(v6: bool, icmp_type: u8, code: u8) -> Option<IcmpMeaning> {
        use IcmpMeaning::*;
        let m = if v6 {
            match (icmp_type, code) {
                (1, 0) => NetUnreachable,
                (1, 1) => AdminProhibited,
                (1, 2) => BeyondScope,
                (1, 3) => HostUnreachable,
                (1, 4) => PortUnreachable,
                (1, 5) => SourcePolicyFailed,
                (1, 6) => RejectRoute,
                (2, 0) => FragNeeded,
                (3, 0) => TtlExceeded,
                (3, 1) => ReassemblyTimeExceeded,
                (4, 1) => ProtocolUnreachable,
                (4, _) => ParameterProblem,
                _ => return None,
            }
        } else {
            match (icmp_type, code) {
                (3, 0) => NetUnreachable,
                (3, 1) => HostUnreachable,
                (3, 2) => ProtocolUnreachable,
                (3, 3) => PortUnreachable,
                (3, 4) => FragNeeded,
                (3, 5) => SourceRouteFailed,
                (3, 6) => NetUnknown,
                (3, 7) => HostUnknown,
                (3, 8) => HostIsolated,
                (3, 9) => NetProhibited,
                (3, 10) => HostProhibited,
                (3, 11) => NetTosUnreachable,
                (3, 12) => HostTosUnreachable,
                (3, 13) => AdminProhibited,
                (3, 14) => HostPrecedenceViolation,
                (3, 15) => PrecedenceCutoff,
                (11, 0) => TtlExceeded,
                (11, 1) => ReassemblyTimeExceeded,
                (12, _) => ParameterProblem,
                _ => return None,
            }
        };
        Some(m)
    }

    /// The wire value for a type/code: its name, or `icmp_TYPE_CODE` (`icmp6_TYPE_CODE`) for
    /// one this version does not name, so a reader can still show the numbers.
    pub fn spelling_of(v6: bool, icmp_type: u8, code: u8) -> Open<IcmpMeaning> {
        match IcmpMeaning::of(v6, icmp_type, code) {
            Some(m) => m.into(),
            None => Open::Unknown(format!(
                "{}_{icmp_type}_{code}",
                if v6 { "icmp6" } else { "icmp" }
            )),
        }
    }
}

spelled! {
    /// The /proc/net/snmp, /proc/net/netstat and /proc/net/snmp6 counters the probe reports,
    /// `Group.Name` as nstat prints them.
    pub enum Counter {
        TcpActiveOpens = "Tcp.ActiveOpens",
        TcpPassiveOpens = "Tcp.PassiveOpens",
        TcpAttemptFails = "Tcp.AttemptFails",
        TcpEstabResets = "Tcp.EstabResets",
        TcpInSegs = "Tcp.InSegs",
        TcpOutSegs = "Tcp.OutSegs",
        TcpRetransSegs = "Tcp.RetransSegs",
        TcpInErrs = "Tcp.InErrs",
        TcpOutRsts = "Tcp.OutRsts",
        TcpInCsumErrors = "Tcp.InCsumErrors",
        ListenOverflows = "TcpExt.ListenOverflows",
        ListenDrops = "TcpExt.ListenDrops",
        TimeWaitOverflow = "TcpExt.TCPTimeWaitOverflow",
        TimeWaitRecycled = "TcpExt.TW",
        PawsEstab = "TcpExt.PAWSEstab",
        SynRetrans = "TcpExt.TCPSynRetrans",
        LostRetransmit = "TcpExt.TCPLostRetransmit",
        Timeouts = "TcpExt.TCPTimeouts",
        AbortOnTimeout = "TcpExt.TCPAbortOnTimeout",
        AbortOnData = "TcpExt.TCPAbortOnData",
        AbortOnClose = "TcpExt.TCPAbortOnClose",
        AbortOnMemory = "TcpExt.TCPAbortOnMemory",
        BacklogDrop = "TcpExt.TCPBacklogDrop",
        RcvQDrop = "TcpExt.TCPRcvQDrop",
        ReqQFullDrop = "TcpExt.TCPReqQFullDrop",
        ReqQFullDoCookies = "TcpExt.TCPReqQFullDoCookies",
        SyncookiesSent = "TcpExt.SyncookiesSent",
        MtuProbeFail = "TcpExt.TCPMTUPFail",
        MtuProbeSuccess = "TcpExt.TCPMTUPSuccess",
        /// /proc/net/stat/nf_conntrack, summed over CPUs: a new connection's entry lost the
        /// race to be inserted (the parallel A/AAAA DNS signature).
        ConntrackInsertFailed = "Conntrack.insert_failed",
        /// Packets dropped because the table was full.
        ConntrackDrop = "Conntrack.drop",
        /// Entries evicted early to make room.
        ConntrackEarlyDrop = "Conntrack.early_drop",
        UdpInErrors = "Udp.InErrors",
        UdpRcvbufErrors = "Udp.RcvbufErrors",
        UdpSndbufErrors = "Udp.SndbufErrors",
        UdpNoPorts = "Udp.NoPorts",
        UdpInCsumErrors = "Udp.InCsumErrors",
        IpInDiscards = "Ip.InDiscards",
        IpOutDiscards = "Ip.OutDiscards",
        IpOutNoRoutes = "Ip.OutNoRoutes",
        IpInAddrErrors = "Ip.InAddrErrors",
        IpReasmFails = "Ip.ReasmFails",
        IpFragFails = "Ip.FragFails",
        IcmpInDestUnreachs = "Icmp.InDestUnreachs",
        IcmpOutDestUnreachs = "Icmp.OutDestUnreachs",
        IcmpInErrors = "Icmp.InErrors",
        Ip6InDiscards = "Ip6.InDiscards",
        Ip6OutNoRoutes = "Ip6.OutNoRoutes",
        Icmp6InDestUnreachs = "Icmp6.InDestUnreachs",
        Icmp6InPktTooBigs = "Icmp6.InPktTooBigs",
        Icmp6OutDestUnreachs = "Icmp6.OutDestUnreachs",
        Udp6InErrors = "Udp6.InErrors",
        Udp6RcvbufErrors = "Udp6.RcvbufErrors",
        Udp6SndbufErrors = "Udp6.SndbufErrors",
        Udp6NoPorts = "Udp6.NoPorts",
        /// Packets the reverse-path filter (rp_filter) dropped (minor 6).
        IpReversePathFilter = "TcpExt.IPReversePathFilter",
        /// Packets forwarded (a node's routing of pod traffic; minor 6).
        IpForwDatagrams = "Ip.ForwDatagrams",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_meanings_follow_the_rfcs() {
        let v4 = |t, c| IcmpMeaning::of(false, t, c);
        let v6 = |t, c| IcmpMeaning::of(true, t, c);
        // What iptables' --reject-with sends: net/host/port/proto unreachable, net/host/admin
        // prohibited.
        assert_eq!(v4(3, 0), Some(IcmpMeaning::NetUnreachable));
        assert_eq!(v4(3, 1), Some(IcmpMeaning::HostUnreachable));
        assert_eq!(v4(3, 2), Some(IcmpMeaning::ProtocolUnreachable));
        assert_eq!(v4(3, 3), Some(IcmpMeaning::PortUnreachable));
        assert_eq!(v4(3, 9), Some(IcmpMeaning::NetProhibited));
        assert_eq!(v4(3, 10), Some(IcmpMeaning::HostProhibited));
        assert_eq!(v4(3, 13), Some(IcmpMeaning::AdminProhibited));
        assert_eq!(v4(11, 0), Some(IcmpMeaning::TtlExceeded));
        assert_eq!(v4(12, 2), Some(IcmpMeaning::ParameterProblem));
        // Every destination-unreachable code of RFC 792/1812 has a name.
        assert!((0..=15).all(|c| v4(3, c).is_some()));
        assert_eq!(v4(3, 16), None);
        assert_eq!(
            v4(5, 1),
            None,
            "a redirect is not an error about the connect"
        );
        // ip6tables' icmp6-no-route, -adm-prohibited, -addr-unreachable, -port-unreachable.
        assert_eq!(v6(1, 0), Some(IcmpMeaning::NetUnreachable));
        assert_eq!(v6(1, 1), Some(IcmpMeaning::AdminProhibited));
        assert_eq!(v6(1, 3), Some(IcmpMeaning::HostUnreachable));
        assert_eq!(v6(1, 4), Some(IcmpMeaning::PortUnreachable));
        assert_eq!(v6(1, 6), Some(IcmpMeaning::RejectRoute));
        assert_eq!(v6(2, 0), Some(IcmpMeaning::FragNeeded));
        assert_eq!(v6(4, 1), Some(IcmpMeaning::ProtocolUnreachable));
        assert_eq!(v6(4, 0), Some(IcmpMeaning::ParameterProblem));
        // The same numbers mean different things in the two protocols.
        assert_eq!(v6(3, 3), None);
        assert_eq!(v4(1, 1), None);
    }

    #[test]
    fn unnamed_icmp_errors_keep_their_numbers() {
        assert_eq!(
            IcmpMeaning::spelling_of(false, 3, 13),
            IcmpMeaning::AdminProhibited
        );
        assert_eq!(
            IcmpMeaning::spelling_of(false, 3, 42),
            Open::<IcmpMeaning>::Unknown("icmp_3_42".into())
        );
        assert_eq!(IcmpMeaning::spelling_of(true, 1, 9).as_str(), "icmp6_1_9");
    }
}

/// TCP flags of one segment, spelled as tcpdump prints them between brackets: `S` SYN, `F`
/// FIN, `P` PSH, `R` RST, `U` URG, `E` ECE, `W` CWR, `.` ACK (so `S.` is a SYN-ACK, `R.` a
/// RST-ACK, `.` a bare ACK). A letter this version does not know is ignored when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
    /// tcpdump's order of letters.
    const LETTERS: [(u8, char); 8] = [
        (Self::SYN, 'S'),
        (Self::FIN, 'F'),
        (Self::PSH, 'P'),
        (Self::RST, 'R'),
        (Self::URG, 'U'),
        (Self::ECE, 'E'),
        (Self::CWR, 'W'),
        (Self::ACK, '.'),
    ];

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    /// A SYN without ACK: a connection attempt.
    pub fn is_syn(self) -> bool {
        self.has(Self::SYN) && !self.has(Self::ACK)
    }
    pub fn is_syn_ack(self) -> bool {
        self.has(Self::SYN) && self.has(Self::ACK)
    }
    pub fn is_rst(self) -> bool {
        self.has(Self::RST)
    }
}

impl std::fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (bit, letter) in Self::LETTERS {
            if self.has(bit) {
                write!(f, "{letter}")?;
            }
        }
        if self.0 == 0 {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for TcpFlags {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bits = s
            .chars()
            .filter_map(|c| Self::LETTERS.iter().find(|(_, l)| *l == c).map(|(b, _)| *b))
            .fold(0u8, |acc, b| acc | b);
        Ok(TcpFlags(bits))
    }
}

impl serde::Serialize for TcpFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TcpFlags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(text.parse().expect("infallible"))
    }
}

#[cfg(test)]
mod tcp_flags_tests {
    use super::TcpFlags;

    #[test]
    fn tcpdump_spelling_round_trips() {
        for (bits, text) in [
            (TcpFlags::SYN, "S"),
            (TcpFlags::SYN | TcpFlags::ACK, "S."),
            (TcpFlags::RST | TcpFlags::ACK, "R."),
            (TcpFlags::PSH | TcpFlags::ACK, "P."),
            (TcpFlags::ACK, "."),
            (TcpFlags::FIN | TcpFlags::ACK, "F."),
        ] {
            assert_eq!(TcpFlags(bits).to_string(), text);
            assert_eq!(text.parse::<TcpFlags>().unwrap(), TcpFlags(bits));
        }
        assert!(TcpFlags(TcpFlags::SYN).is_syn());
        assert!(!TcpFlags(TcpFlags::SYN | TcpFlags::ACK).is_syn());
        assert!("S.".parse::<TcpFlags>().unwrap().is_syn_ack());
    }
}
