#!/usr/bin/env bash
# Record the verdict engine's test fixtures: run the real netdebug-probe inside network
# namespaces built for each scenario of the diagnosis catalog, and keep its JSON-lines output
# as verdict/tests/fixtures/<scenario>.jsonl.
#
#   sudo verdict/tests/record-fixtures.sh [SCENARIO...]     # default: all scenarios
#
# Needs root, iproute2, iptables, dnsmasq, python3, and a built probe
# (cargo build -p probe; PROBE=path overrides). Traffic stays inside the namespaces created
# here (10.199.0.0/16 addresses only). Every wait is bounded; the namespaces are removed on
# exit, also on failure. Re-running overwrites the fixtures; the snapshot tests then show
# what changed (cargo insta review, or INSTA_UPDATE=always).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PROBE="${PROBE:-$ROOT/target/debug/netdebug-probe}"
OUT="$HERE/fixtures"
# A fixed work directory: paths in the evidence (resolv.conf) stay the same between recordings.
WORK=/tmp/netdebug-fixtures
rm -rf "$WORK"; mkdir -p "$WORK"
C=vdr-client     # where the probe runs (the "pod")
S=vdr-server     # the destination(s)
R=vdr-router     # a hop in between, for MTU and next-hop scenarios
PIDS=()

die() { echo "record-fixtures: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, iptables)"
[ -x "$PROBE" ] || die "no probe at $PROBE (cargo build -p probe)"
for tool in ip iptables dnsmasq python3 ss setpriv; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done

cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for ns in $C $S $R; do ip netns del "$ns" 2>/dev/null || true; done
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

in_c() { ip netns exec $C "$@"; }
in_s() { ip netns exec $S "$@"; }

# Start a background process, remembered for cleanup; it is also bounded by `timeout`.
bg() { timeout 120 "$@" >"$WORK/bg.$RANDOM.log" 2>&1 & PIDS+=($!); }

# Wait (bounded) until a TCP port listens in a namespace.
wait_listen() { # ns addr:port
    local i
    for i in $(seq 1 50); do
        ip netns exec "$1" ss -ltnH "( sport = :${2##*:} )" | grep -q . && return 0
        sleep 0.1
    done
    die "nothing listens on $2 in $1 after 5 s"
}
wait_udp() { # ns port
    local i
    for i in $(seq 1 50); do
        ip netns exec "$1" ss -lunH "( sport = :$2 )" | grep -q . && return 0
        sleep 0.1
    done
    die "nothing listens on udp $2 in $1 after 5 s"
}

# Fresh client and server namespaces joined by a veth pair:
#   client vdr-c0 10.199.70.1/24  <->  server vdr-s0 10.199.70.2/24 (+ .3 .4 as more "pods")
base() {
    cleanup_ns
    ip netns add $C; ip netns add $S
    ip -n $C link set lo up; ip -n $S link set lo up
    ip link add vdr-c0 netns $C type veth peer name vdr-s0 netns $S
    ip -n $C addr add 10.199.70.1/24 dev vdr-c0
    ip -n $S addr add 10.199.70.2/24 dev vdr-s0
    ip -n $S addr add 10.199.70.3/24 dev vdr-s0
    ip -n $S addr add 10.199.70.4/24 dev vdr-s0
    ip -n $C link set vdr-c0 up; ip -n $S link set vdr-s0 up
    # The "cluster": ClusterIPs and the DNS service live in 10.199.96.0/24, reached via the
    # server side (as a pod reaches them through its gateway).
    ip -n $C route add default via 10.199.70.2
    ip -n $S addr add 10.199.96.53/32 dev lo
}

cleanup_ns() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    PIDS=()
    for ns in $C $S $R; do ip netns del "$ns" 2>/dev/null || true; done
}

http_server() { # addr port  (in the server namespace)
    bg ip netns exec $S python3 -m http.server --bind "$1" "$2"
    wait_listen $S "$1:$2"
}

# Cluster DNS: dnsmasq on 10.199.96.53 in the server namespace. Every name it does not know
# is NXDOMAIN (`--address=/#/`, as CoreDNS plus an upstream would answer), it knows
# web.shop's ClusterIP and one "external" name, and forwards upstream.test to UPSTREAM.
cluster_dns() { # [upstream spec for upstream.test]
    local extra=()
    [ -n "${1:-}" ] && extra+=("--server=/upstream.test/$1")
    bg ip netns exec $S dnsmasq --no-daemon --no-resolv --no-hosts --conf-file=/dev/null \
        --listen-address=10.199.96.53 --bind-interfaces --port=53 \
        --address=/#/ \
        --address=/web.shop.svc.cluster.local/10.199.96.10 \
        --address=/api.example.test/10.199.70.9 "${extra[@]}"
    wait_udp $S 53
}

resolv() { # nameserver [options]
    cat >"$WORK/resolv.conf" <<EOF
search shop.svc.cluster.local svc.cluster.local cluster.local
nameserver $1
options ndots:5 ${2:-}
EOF
}

# A ClusterIP 10.199.96.10:80 as kube-proxy makes it: DNAT in the client's namespace.
cluster_ip_dnat() { # endpoint addr:port
    in_c iptables -t nat -A OUTPUT -d 10.199.96.10 -p tcp --dport 80 -j DNAT --to-destination "$1"
}

# Run the probe in the client namespace (or $2) with a plan (JSON), keep its output.
record() { # name plan-json [netns]
    local name=$1 plan=$2 ns=${3:-$C}
    echo "$plan" >"$WORK/plan.json"
    local out="$OUT/$name.jsonl"
    set +e
    # WRAP: a command the probe runs under (setpriv to drop a capability).
    timeout 60 ${WRAP:-} "$PROBE" --netns "$ns" --plan-file "$WORK/plan.json" >"$out.tmp" 2>"$WORK/probe.err"
    local rc=$?
    set -e
    if [ $rc -ne 0 ] && [ "${ALLOW_KILL:-}" != 1 ]; then
        cat "$WORK/probe.err" >&2; die "probe failed ($rc) for $name"
    fi
    mv "$out.tmp" "$out"
    echo "recorded $name: $(wc -l <"$out") events" >&2
}

target() { # label host port role
    printf '{"label":"%s","host":"%s","port":%s,"role":"%s"}' "$1" "$2" "$3" "$4"
}
svc_targets() { # endpoints port
    local p=${1:-8080}
    echo "$(target svc/web:80 10.199.96.10 80 cluster_ip),$(target 10.199.70.2:$p 10.199.70.2 $p endpoint),$(target 10.199.70.3:$p 10.199.70.3 $p endpoint),$(target 10.199.70.4:$p 10.199.70.4 $p endpoint)"
}
plan() { # targets-json-list [extra json fields] [dns names, JSON strings]
    printf '{"v":1,"targets":[%s],"deadline_ms":12000,"connect_timeout_ms":1500,"dns":{"names":[%s],"resolv_conf":"%s","timeout_ms":1000}%s}' \
        "$1" "${3:-}" "$WORK/resolv.conf" "${2:-}"
}

# ---------------------------------------------------------------------------------------
# Scenarios. Each builds its namespaces from scratch.

scenario_healthy_service() {
    base; cluster_dns; resolv 10.199.96.53
    http_server 0.0.0.0 8080
    cluster_ip_dnat 10.199.70.2:8080
    record healthy_service "$(plan "$(svc_targets)" "" '"web"')"
}

# A healthy Service asked with --capture by a probe without CAP_NET_RAW: the healthy
# verdict's "look further" step must be a capture the user can run.
scenario_healthy_service_no_net_raw() {
    base; cluster_dns; resolv 10.199.96.53
    http_server 0.0.0.0 8080
    cluster_ip_dnat 10.199.70.2:8080
    WRAP="setpriv --bounding-set=-net_raw" record healthy_service_no_net_raw \
        "$(plan "$(svc_targets)" ',"capture":{"max_duration_ms":1000,"max_packets":200,"max_bytes":200000}' '"web"')"
}

scenario_tcp_refused() {
    base; resolv 10.199.96.53
    record tcp_refused "$(plan "$(target 10.199.70.2:8081 10.199.70.2 8081 direct)")"
}

scenario_tcp_timeout() {
    base; resolv 10.199.96.53
    http_server 0.0.0.0 8080
    in_s iptables -A INPUT -p tcp --dport 8080 -j DROP
    record tcp_timeout "$(plan "$(target 10.199.70.2:8080 10.199.70.2 8080 direct)" \
        ',"capture":{"max_duration_ms":2500,"max_packets":200,"max_bytes":200000}')"
}

# The same silent drop, seen by a probe without CAP_NET_RAW (a namespace enforcing Pod
# Security `restricted`): the capture is skipped, and no next step may ask for it again.
scenario_tcp_timeout_no_net_raw() {
    base; resolv 10.199.96.53
    http_server 0.0.0.0 8080
    in_s iptables -A INPUT -p tcp --dport 8080 -j DROP
    WRAP="setpriv --bounding-set=-net_raw" record tcp_timeout_no_net_raw \
        "$(plan "$(target 10.199.70.2:8080 10.199.70.2 8080 direct)" \
        ',"capture":{"max_duration_ms":2500,"max_packets":200,"max_bytes":200000}')"
}

scenario_tcp_rejected() {
    base; resolv 10.199.96.53
    http_server 0.0.0.0 8080
    in_s iptables -A INPUT -p tcp --dport 8080 -j REJECT --reject-with icmp-admin-prohibited
    record tcp_rejected "$(plan "$(target 10.199.70.2:8080 10.199.70.2 8080 direct)")"
}

# A router between client and server rejects the port with iptables' default
# --reject-with (icmp-port-unreachable): connect fails with ECONNREFUSED like a RST, but the
# error queue shows ICMP 3/3 from the router.
scenario_tcp_rejected_by_router() {
    routed
    http_server 0.0.0.0 8080
    ip netns exec $R iptables -A FORWARD -p tcp --dport 8080 -j REJECT --reject-with icmp-port-unreachable
    record tcp_rejected_by_router "$(plan "$(target 10.199.71.2:8080 10.199.71.2 8080 direct)")"
}

# Policy routing refuses two destinations: rule 1000 sends 10.199.75.0/24 to table 100,
# where a prohibit route covers it; rule 900 prohibits 10.199.76.0/24 itself.
scenario_policy_prohibit() {
    base; resolv 10.199.96.53
    in_c ip rule add to 10.199.75.0/24 table 100 prio 1000
    in_c ip route add prohibit 10.199.75.0/24 table 100
    in_c ip rule add to 10.199.76.0/24 prohibit prio 900
    record policy_prohibit "$(plan "$(target 10.199.75.5:80 10.199.75.5 80 direct),$(target 10.199.76.5:80 10.199.76.5 80 direct)")"
}

# The probe runs on the destination side, where the server listens on 127.0.0.1 only.
scenario_listener_loopback_only() {
    base; resolv 10.199.96.53
    http_server 127.0.0.1 8090
    record listener_loopback_only "$(plan "$(target 10.199.70.2:8090 10.199.70.2 8090 direct)")" $S
}

# `--sockets` in a "pod" (the server namespace) whose app listens on 127.0.0.1:8080 only,
# beside a sidecar on 0.0.0.0:9090: the stack checks only, no target.
scenario_sockets_loopback_listener() {
    base; resolv 10.199.96.53
    http_server 127.0.0.1 8080
    http_server 0.0.0.0 9090
    record sockets_loopback_listener \
        '{"v":1,"targets":[],"deadline_ms":12000,"connect_timeout_ms":1500,"checks":["links","sockets","counters","conntrack","sysctls"]}' $S
}

# --repeat 20 toward a Service whose third endpoint (10.199.70.4) drops every 4th SYN (the
# iptables statistic match), plus 20 rounds of lookups of the Service name through a
# nameserver that answers everything: the partial failure and the clean DNS of issue 10.
scenario_rounds_bad_endpoint() {
    base; cluster_dns; resolv 10.199.96.53 "timeout:1 attempts:2"
    http_server 0.0.0.0 8080
    cluster_ip_dnat 10.199.70.2:8080
    in_s iptables -A INPUT -d 10.199.70.4 -p tcp --syn --dport 8080 \
        -m statistic --mode nth --every 4 --packet 0 -j DROP
    # 400 ms: shorter than the SYN retransmission (1 s), so a dropped SYN is a timeout.
    record rounds_bad_endpoint "$(plan "$(svc_targets)" ',"rounds":{"repeat":20,"rate":100}' '"web"' \
        | sed 's/"connect_timeout_ms":1500/"connect_timeout_ms":400/')"
}

# kube-proxy's ClusterIP in the client's namespace, alternating between two endpoints (the
# statistic match, as kube-proxy writes it), the second of which drops every 4th SYN: each
# attempt's conntrack entry says which endpoint it went to.
scenario_rounds_clusterip_attributed() {
    base; resolv 10.199.96.53
    http_server 0.0.0.0 8080
    in_c iptables -t nat -A OUTPUT -d 10.199.96.10 -p tcp --dport 80 \
        -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.199.70.2:8080
    in_c iptables -t nat -A OUTPUT -d 10.199.96.10 -p tcp --dport 80 \
        -j DNAT --to-destination 10.199.70.4:8080
    in_s iptables -A INPUT -d 10.199.70.4 -p tcp --syn --dport 8080 \
        -m statistic --mode nth --every 4 --packet 0 -j DROP
    record rounds_clusterip_attributed "$(plan "$(target svc/web:80 10.199.96.10 80 cluster_ip)" \
        ',"checks":["tcp"],"rounds":{"repeat":40,"rate":100}' \
        | sed 's/"connect_timeout_ms":1500/"connect_timeout_ms":400/')"
}

# 20 rounds of lookups through a nameserver behind a rule that drops every 4th UDP query:
# one reply of a parallel A/AAAA pair goes missing and the lookup stalls for the timeout.
scenario_dns_stalls() {
    base; cluster_dns; resolv 10.199.96.53 "timeout:1 attempts:2"
    in_s iptables -A INPUT -p udp --dport 53 -m statistic --mode nth --every 4 --packet 0 -j DROP
    record dns_stalls "$(plan "" ',"checks":["dns","counters"],"rounds":{"repeat":20,"rate":50}' '"web.shop.svc.cluster.local."')"
}

# The first nameserver never answers (its queries are dropped); the second does: names still
# resolve, one timeout later. Slow DNS, not DNS down.
scenario_dns_first_nameserver_silent() {
    base; cluster_dns
    ip -n $S addr add 10.199.96.54/32 dev lo
    in_s iptables -A INPUT -d 10.199.96.54 -p udp --dport 53 -j DROP
    cat >"$WORK/resolv.conf" <<EOF2
search shop.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.199.96.54
nameserver 10.199.96.53
options ndots:5 timeout:1 attempts:1
EOF2
    record dns_first_nameserver_silent "$(plan "" ',"checks":["dns"]' '"web.shop.svc.cluster.local."')"
}

# kube-proxy lost its rules: the ClusterIP is not translated, endpoints answer directly.
scenario_service_dataplane() {
    base; cluster_dns; resolv 10.199.96.53
    http_server 0.0.0.0 8080
    record service_dataplane "$(plan "$(svc_targets)" "" '"web"')"
}

# One endpoint (10.199.70.4) silently drops; the others answer.
scenario_service_bad_endpoint() {
    base; resolv 10.199.96.53
    http_server 0.0.0.0 8080
    cluster_ip_dnat 10.199.70.2:8080
    in_s iptables -A INPUT -d 10.199.70.4 -p tcp --dport 8080 -j DROP
    record service_bad_endpoint "$(plan "$(svc_targets)")"
}

# No endpoints: kube-proxy rejects the ClusterIP (icmp port unreachable -> ECONNREFUSED).
scenario_service_no_endpoints() {
    base; resolv 10.199.96.53
    in_c iptables -A OUTPUT -d 10.199.96.10 -p tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
    record service_no_endpoints "$(plan "$(target svc/web:80 10.199.96.10 80 cluster_ip)")"
}

# targetPort 9090 is not exposed: the ClusterIP and every endpoint refuse on it.
scenario_service_target_port() {
    base; resolv 10.199.96.53
    http_server 0.0.0.0 8080
    cluster_ip_dnat 10.199.70.2:9090
    record service_target_port "$(plan "$(svc_targets 9090)")"
}

scenario_dns_nxdomain() {
    base; cluster_dns; resolv 10.199.96.53
    record dns_nxdomain "$(plan "" "" '"web.other"')"
}

scenario_dns_search_expansion() {
    base; cluster_dns; resolv 10.199.96.53
    record dns_search_expansion "$(plan "" "" '"api.example.test"')"
}

# The cluster DNS drops every query (its pods are gone, the Service still exists).
scenario_dns_unreachable() {
    base; cluster_dns; resolv 10.199.96.53 "timeout:1 attempts:2"
    in_s iptables -A INPUT -p udp --dport 53 -j DROP
    record dns_unreachable "$(plan "" "" '"web"')"
}

# The upstream resolver behind the cluster DNS fails: SERVFAIL relayed for external names.
scenario_dns_servfail() {
    base; resolv 10.199.96.53
    ip -n $S addr add 10.199.96.54/32 dev lo
    # A real UDP DNS server that answers every query with SERVFAIL (rcode 2).
    cat >"$WORK/servfail.py" <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.199.96.54", 53))
while True:
    q, peer = s.recvfrom(4096)
    # Echo id and question; QR=1, RD copied, RA=1, RCODE=2; no answers.
    flags = bytes([0x80 | (q[2] & 0x01), 0x82])
    s.sendto(q[:2] + flags + q[4:6] + b"\0\0\0\0\0\0" + q[12:], peer)
EOF
    bg ip netns exec $S python3 "$WORK/servfail.py"
    wait_udp $S 53
    cluster_dns 10.199.96.54
    record dns_servfail "$(plan "" "" '"api.upstream.test."')"
}

# resolv.conf points at a resolver that is not the cluster DNS (it knows no cluster names).
scenario_dns_not_cluster_dns() {
    base; cluster_dns
    ip -n $S addr add 10.199.96.99/32 dev lo
    bg ip netns exec $S dnsmasq --no-daemon --no-resolv --no-hosts --conf-file=/dev/null \
        --listen-address=10.199.96.99 --bind-interfaces --port=53 --address=/#/
    sleep 0.5
    resolv 10.199.96.99
    record dns_not_cluster_dns "$(plan "" "" '"web"')"
}

scenario_no_route() {
    base; resolv 10.199.96.53
    ip -n $C route del default
    record no_route "$(plan "$(target 10.199.99.9:80 10.199.99.9 80 direct)")"
}

# A second interface whose peer is down: no carrier, its route is unusable.
scenario_interface_down() {
    base; resolv 10.199.96.53
    ip link add vdr-c1 netns $C type veth peer name vdr-s1 netns $S
    ip -n $C addr add 10.199.72.1/24 dev vdr-c1
    ip -n $C link set vdr-c1 up     # the peer stays down
    record interface_down "$(plan "$(target 10.199.72.2:8080 10.199.72.2 8080 direct)")"
}

# The default gateway does not exist: its neighbor entry is FAILED.
scenario_neighbor_failed() {
    base; resolv 10.199.96.53
    ip -n $C route replace default via 10.199.70.254
    in_c ping -c 1 -W 1 10.199.99.9 >/dev/null 2>&1 || true   # resolve the gateway: FAILED
    sleep 3.5
    record neighbor_failed "$(plan "$(target 10.199.99.9:80 10.199.99.9 80 direct)")"
}

# Two interfaces; the route to 10.199.73.0/24 leaves via vdr-c0 with the source address of
# vdr-c1, so replies come back on vdr-c1 where strict rp_filter drops them.
scenario_rp_filter() {
    base; resolv 10.199.96.53
    ip link add vdr-c1 netns $C type veth peer name vdr-s1 netns $S
    ip -n $C addr add 10.199.72.1/24 dev vdr-c1
    ip -n $S addr add 10.199.72.2/24 dev vdr-s1
    ip -n $C link set vdr-c1 up; ip -n $S link set vdr-s1 up
    ip -n $S addr add 10.199.73.2/32 dev lo
    ip -n $C route add 10.199.73.0/24 via 10.199.70.2 dev vdr-c0 src 10.199.72.1
    in_c sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.vdr-c1.rp_filter=1
    http_server 0.0.0.0 8080
    record rp_filter "$(plan "$(target 10.199.73.2:8080 10.199.73.2 8080 direct)")"
}

# The same topology with loose rp_filter: it works, but leaves with the wrong source
# address (the pod IP is 10.199.70.1 on vdr-c0).
scenario_wrong_interface() {
    base; resolv 10.199.96.53
    ip link add vdr-c1 netns $C type veth peer name vdr-s1 netns $S
    ip -n $C addr add 10.199.72.1/24 dev vdr-c1
    ip -n $S addr add 10.199.72.2/24 dev vdr-s1
    ip -n $C link set vdr-c1 up; ip -n $S link set vdr-s1 up
    ip -n $S addr add 10.199.73.2/32 dev lo
    ip -n $C route add 10.199.73.0/24 via 10.199.70.2 dev vdr-c0 src 10.199.72.1
    in_c sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.vdr-c1.rp_filter=0
    in_s iptables -A INPUT -s 10.199.72.1 -p tcp --dport 8080 -j DROP
    http_server 0.0.0.0 8080
    record wrong_interface "$(plan "$(target 10.199.73.2:8080 10.199.73.2 8080 direct)")"
}

# Ephemeral ports: a range of two ports, both held in TIME-WAIT toward the target.
scenario_port_exhaustion() {
    base; resolv 10.199.96.53
    http_server 0.0.0.0 8080
    in_c sysctl -qw net.ipv4.ip_local_port_range="40000 40001" net.ipv4.tcp_tw_reuse=0
    cat >"$WORK/tw.py" <<'EOF'
import socket, time
for _ in range(2):
    c = socket.create_connection(("10.199.70.2", 8080), timeout=2)
    c.close()          # we close first: our side keeps TIME-WAIT
    time.sleep(0.1)
EOF
    in_c timeout 10 python3 "$WORK/tw.py"
    record port_exhaustion "$(plan "$(target 10.199.70.2:8080 10.199.70.2 8080 direct)")"
}

# The application never closes connections the server closed: CLOSE-WAIT accumulates.
scenario_close_wait() {
    base; resolv 10.199.96.53
    cat >"$WORK/closer.py" <<'EOF'
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.199.70.2", 8080)); s.listen(64)
while True:
    c, _ = s.accept(); c.close()
EOF
    cat >"$WORK/leaker.py" <<'EOF'
import socket, time
held = [socket.create_connection(("10.199.70.2", 8080), timeout=2) for _ in range(12)]
time.sleep(60)
EOF
    bg ip netns exec $S python3 "$WORK/closer.py"
    wait_listen $S 10.199.70.2:8080
    bg ip netns exec $C python3 "$WORK/leaker.py"
    sleep 1
    record close_wait "$(plan "$(target 10.199.70.2:8080 10.199.70.2 8080 direct)")"
}

# A server that never accept()s with a backlog of 1: the probe, on the server side, sees
# the full accept queue and ListenOverflows growing while clients keep retrying.
scenario_listen_overflow() {
    base; resolv 10.199.96.53
    cat >"$WORK/stuck.py" <<'EOF'
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.199.70.2", 8080)); s.listen(1)
time.sleep(60)
EOF
    cat >"$WORK/flood.py" <<'EOF'
import socket
socks = []
for _ in range(20):
    s = socket.socket(); s.setblocking(False)
    try: s.connect(("10.199.70.2", 8080))
    except BlockingIOError: pass
    socks.append(s)
import time; time.sleep(60)
EOF
    bg ip netns exec $S python3 "$WORK/stuck.py"
    wait_listen $S 10.199.70.2:8080
    bg ip netns exec $C python3 "$WORK/flood.py"
    sleep 1.5
    record listen_overflow "$(plan "$(target 10.199.70.2:8080 10.199.70.2 8080 direct)")" $S
}

# A lossy path: 5% of the client's outgoing full-size segments are dropped at random
# (iptables' statistic match; netem needs a kernel module not every host has) while the
# client uploads in bulk, so the client's kernel retransmits.
scenario_retransmissions() {
    base; resolv 10.199.96.53
    cat >"$WORK/sink.py" <<'EOF'
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(64)
def drain(c):
    while c.recv(65536): pass
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()
EOF
    cat >"$WORK/push.py" <<'EOF'
import socket, time
end = time.time() + 30
chunk = b"x" * 65536
while time.time() < end:
    try:
        c = socket.create_connection(("10.199.70.2", 8080), timeout=5)
        for _ in range(200): c.sendall(chunk)
        c.close()
    except OSError: time.sleep(0.2)
EOF
    bg ip netns exec $S python3 "$WORK/sink.py"
    wait_listen $S 10.199.70.2:8080
    in_c iptables -A OUTPUT -d 10.199.70.2 -p tcp --dport 8080 -m length --length 1000:65535 \
        -m statistic --mode random --probability 0.05 -j DROP
    # The probe's own connect (to .3) loses its first SYN, so the run lasts about a second
    # and the counters' interval covers plenty of the upload.
    in_c iptables -A OUTPUT -d 10.199.70.3 -p tcp --syn -m statistic --mode nth --every 2 --packet 0 -j DROP
    bg ip netns exec $C python3 "$WORK/push.py"
    sleep 2
    record retransmissions "$(plan "$(target 10.199.70.3:8080 10.199.70.3 8080 direct)")"
}

# Path MTU blackhole: client -> router -> server, the router's link to the server has MTU
# 1280 and the router drops the ICMP frag-needed it would send back.
# client 10.199.70.1 -- 10.199.70.254 router 10.199.71.254 -- 10.199.71.2 server: a hop in
# between that forwards (and whose firewall the scenario sets).
routed() {
    cleanup_ns
    ip netns add $C; ip netns add $S; ip netns add $R
    for ns in $C $S $R; do ip -n $ns link set lo up; done
    ip link add vdr-c0 netns $C type veth peer name vdr-r0 netns $R
    ip link add vdr-r1 netns $R type veth peer name vdr-s0 netns $S
    ip -n $C addr add 10.199.70.1/24 dev vdr-c0
    ip -n $R addr add 10.199.70.254/24 dev vdr-r0
    ip -n $R addr add 10.199.71.254/24 dev vdr-r1
    ip -n $S addr add 10.199.71.2/24 dev vdr-s0
    for l in "$C vdr-c0" "$R vdr-r0" "$R vdr-r1" "$S vdr-s0"; do ip -n ${l% *} link set ${l#* } up; done
    ip -n $C route add default via 10.199.70.254
    ip -n $S route add default via 10.199.71.254
    ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
    resolv 10.199.96.53
}

scenario_mtu_blackhole() {
    cleanup_ns
    ip netns add $C; ip netns add $S; ip netns add $R
    for ns in $C $S $R; do ip -n $ns link set lo up; done
    ip link add vdr-c0 netns $C type veth peer name vdr-r0 netns $R
    ip link add vdr-r1 netns $R type veth peer name vdr-s0 netns $S
    ip -n $C addr add 10.199.70.1/24 dev vdr-c0
    ip -n $R addr add 10.199.70.254/24 dev vdr-r0
    ip -n $R addr add 10.199.71.254/24 dev vdr-r1
    ip -n $S addr add 10.199.71.2/24 dev vdr-s0
    ip -n $R link set vdr-r1 mtu 1280; ip -n $S link set vdr-s0 mtu 1280
    for l in "$C vdr-c0" "$R vdr-r0" "$R vdr-r1" "$S vdr-s0"; do ip -n ${l% *} link set ${l#* } up; done
    ip -n $C route add default via 10.199.70.254
    ip -n $S route add default via 10.199.71.254
    ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
    ip netns exec $R iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP
    bg ip netns exec $S python3 -m http.server --bind 10.199.71.2 8080
    wait_listen $S 10.199.71.2:8080
    resolv 10.199.96.53
    record mtu_blackhole "$(plan "$(target 10.199.71.2:8080 10.199.71.2 8080 direct)" ',"mtu":{"wait_ms":300}')"
}

# The probe is killed mid-run (SIGKILL, as the OOM killer or a lost node would): the
# stream ends without `done`.
scenario_stopped_early() {
    base; cluster_dns; resolv 10.199.96.53 "timeout:2 attempts:2"
    in_s iptables -A INPUT -p udp --dport 53 -j DROP
    plan "$(target 10.199.70.2:8080 10.199.70.2 8080 direct)" "" '"web"' >"$WORK/plan.json"
    set +e
    timeout -s KILL 1.5 "$PROBE" --netns $C --plan-file "$WORK/plan.json" >"$OUT/stopped_early.jsonl" 2>/dev/null
    set -e
    echo "recorded stopped_early: $(wc -l <"$OUT/stopped_early.jsonl") events (killed)" >&2
}

# ---------------------------------------------------------------------------------------
# Many sources (issue 12): pairs of fixtures from two "pods" of one workload that differ in
# one thing, for the aggregate's "what differs" computation. Each pair is recorded in the
# same client namespace, one run after the other with the one setting changed between the
# runs, as two pods of one template share interface names and plan.

# (a) resolv.conf: one pod's dnsConfig points at a nameserver that never answers
# (10.199.96.99, queries dropped), the other's at the cluster DNS. The ClusterIP itself
# works from both (the client resolves it from the API, not through the pod's resolver).
scenario_sources_dns() {
    base; cluster_dns
    ip -n $S addr add 10.199.96.99/32 dev lo
    in_s iptables -A INPUT -d 10.199.96.99 -p udp --dport 53 -j DROP
    http_server 0.0.0.0 8080
    cluster_ip_dnat 10.199.70.2:8080
    local p
    p="$(plan "$(target svc/web:80 10.199.96.10 80 cluster_ip)" "" '"web"')"
    resolv 10.199.96.53 "timeout:1 attempts:1"
    record sources_dns_ok "$p"
    resolv 10.199.96.99 "timeout:1 attempts:1"
    record sources_dns_silent_nameserver "$p"
}

# (b) interface MTU: client -> router -> server with a 1280-byte link behind the router
# that drops the ICMP frag-needed it would send. The pod whose interface MTU is 1280 fits
# the path; the one left at 1500 sends segments that vanish.
scenario_sources_mtu() {
    routed
    ip -n $R link set vdr-r1 mtu 1280; ip -n $S link set vdr-s0 mtu 1280
    ip netns exec $R iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP
    bg ip netns exec $S python3 -m http.server --bind 10.199.71.2 8080
    wait_listen $S 10.199.71.2:8080
    local p
    p="$(plan "$(target 10.199.71.2:8080 10.199.71.2 8080 direct)" ',"mtu":{"wait_ms":300}')"
    ip -n $C link set vdr-c0 mtu 1280
    record sources_mtu_fits "$p"
    ip -n $C link set vdr-c0 mtu 1500
    ip -n $C route flush cache 2>/dev/null || true
    record sources_mtu_blackhole "$p"
}

# (c) a route: one pod has an extra route to 10.199.73.0/24 via a gateway that does not
# exist (its neighbor entry fails), the other reaches it by its default route.
scenario_sources_route() {
    base; resolv 10.199.96.53
    ip -n $S addr add 10.199.73.2/32 dev lo
    http_server 0.0.0.0 8080
    local p
    p="$(plan "$(target 10.199.73.2:8080 10.199.73.2 8080 direct)")"
    record sources_route_ok "$p"
    ip -n $C route add 10.199.73.0/24 via 10.199.70.254
    record sources_route_wrong_gateway "$p"
}

ALL="healthy_service healthy_service_no_net_raw rounds_bad_endpoint rounds_clusterip_attributed dns_stalls tcp_refused tcp_timeout tcp_timeout_no_net_raw tcp_rejected tcp_rejected_by_router listener_loopback_only
sockets_loopback_listener dns_first_nameserver_silent
service_dataplane service_bad_endpoint service_no_endpoints service_target_port
dns_nxdomain dns_search_expansion dns_unreachable dns_servfail dns_not_cluster_dns
no_route policy_prohibit interface_down neighbor_failed rp_filter wrong_interface port_exhaustion
close_wait listen_overflow retransmissions mtu_blackhole stopped_early
sources_dns sources_mtu sources_route"

mkdir -p "$OUT"
for s in ${@:-$ALL}; do
    declare -F "scenario_$s" >/dev/null || die "unknown scenario $s (known: $(echo $ALL))"
    "scenario_$s"
    cleanup_ns
done
