#!/usr/bin/env bash
# --via-node against the ephemeral-container path, time to verdict on the same pod, on the
# cluster named by KUBECONFIG with the probe image already on the node (e2e/run.sh loads it):
#   kubectl netdebug pod/client --to svc/web -o json             (ephemeral container in client)
#   kubectl netdebug pod/client --to svc/web --via-node -o json  (probe pod on client's node)
# each from command start to exit, taking turns (the order swapping every round) on a pod quiet
# for SETTLE seconds. Prints every run, the median of N runs of each and the ratio
# via-node / ephemeral. The probe pod of --via-node goes into the bench namespace (no Pod
# Security label, so it admits privileged pods); NODE_NS=NS sends it elsewhere
# (--node-namespace). Each ephemeral run adds a container to pod client for good: fine here, the
# namespace goes on exit.
# With CONTAINERD_LOG=PATH (the node's containerd log, readable from here) each run is also
# split into what containerd did and when, relative to the command's start: the sandbox of the
# probe pod (--via-node only), the probe container created, started and exited. Always: when the
# API first showed each probe pod's container running and terminated (a watch), and each run's
# status, event delivery, first event and the probe's own hello->done from its JSON.
# The plugin is taken from PLUGIN_DIR (default target/release), the image from NETDEBUG_E2E_IMAGE.
# Usage: [ROUNDS=5] [SETTLE=3] [NODE_NS=NS] [CONTAINERD_LOG=PATH] [PLUGIN_DIR=DIR]
#   e2e/bench-via-node.sh [N]   (N overrides ROUNDS)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-${ROUNDS:-5}}
SETTLE=${SETTLE:-3}
IMAGE=${NETDEBUG_E2E_IMAGE:-ghcr.io/netdebug/netdebug-probe:e2e}
NS=ndt-bench-vn-$$
# shellcheck source=e2e/bench-lib.sh
. e2e/bench-lib.sh
use_plugin
bench_namespace
web_and_client
node_ns=()
if [ -n "${NODE_NS:-}" ]; then node_ns=(--node-namespace "$NODE_NS"); fi

# When the API server showed each node probe pod's container running and terminated (what the
# client waits for before it reads the log): a watch, each line stamped on arrival (µs).
timeout $(( N * 2 * (SETTLE + 130) + 60 )) kubectl -n "${NODE_NS:-$NS}" get pods -l netdebug.io/node-probe -w \
  -o jsonpath='{.metadata.name}{" "}{.status.containerStatuses[0].state}{"\n"}' \
  > >(while IFS= read -r l; do echo "${EPOCHREALTIME/./} $l"; done >"$OUT/watch") 2>/dev/null &
watch=$!
trap 'kill "$watch" 2>/dev/null || true; kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true; rm -rf "$OUT"' EXIT

eph=(); node=(); starts=()
# Each command is bounded by timeout(1) on top of its own --timeout (default 15 s).
run_eph() {
  RUN=eph-$1
  starts+=("$RUN $(date +%s%N)")
  eph+=("$(ms timeout 120 kubectl netdebug -n "$NS" pod/client --to svc/web --image "$IMAGE" --image-pull-policy IfNotPresent -o json)")
}
run_node() {
  RUN=node-$1
  starts+=("$RUN $(date +%s%N)")
  node+=("$(ms timeout 120 kubectl netdebug -n "$NS" pod/client --to svc/web --via-node "${node_ns[@]}" --image "$IMAGE" --image-pull-policy IfNotPresent -o json)")
}
order=(run_eph run_node)
for i in $(seq "$N"); do
  for k in 0 1; do
    sleep "$SETTLE"
    "${order[$(( (i + k) % 2 ))]}" "$i"
  done
done
kill "$watch" 2>/dev/null || true
a=$(printf '%s\n' "${eph[@]}" | median)
b=$(printf '%s\n' "${node[@]}" | median)
printf '%s\n' "${starts[@]}" >"$OUT/starts"
for i in $(seq "$N"); do
  echo "eph-$i ${eph[$((i - 1))]}"
  echo "node-$i ${node[$((i - 1))]}"
done >"$OUT/wall"

# One line per run: wall time, status, how the events came and the first one's time (ms after
# the injection, or after the probe pod's creation), the probe's own hello->done, and with
# CONTAINERD_LOG the containerd steps (ms after the command's start).
python3 - "$OUT" "$NS" "${NODE_NS:-$NS}" "${CONTAINERD_LOG:-}" <<'PY'
import calendar, json, re, sys, time
out, ns, node_ns, clog = sys.argv[1:5]
starts = [l.split() for l in open(out + "/starts")]
wall = dict(l.split() for l in open(out + "/wall"))
# containerd's log: sandboxes (id -> (namespace, pod)), and per container: its sandbox, the
# pod's and container's names and when it was created, started and exited.
sandbox_asked, sandboxes, containers = [], {}, {}
if clog:
    line_re = re.compile(r'^time="([0-9T:-]{19})(?:\.(\d+))?Z" level=\w+ msg="(.*)')
    def at(m):
        frac = (m.group(2) or "0").ljust(9, "0")[:9]
        return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) * 10**9 + int(frac)
    q = r'\\"'  # containerd's log quotes inside msg as \"
    for line in open(clog, errors="replace"):
        m = line_re.match(line)
        if not m:
            continue
        t, msg = at(m), m.group(3)
        r = re.match(r'RunPodSandbox for &PodSandboxMetadata\{Name:([^,]+),Uid:[^,]*,Namespace:([^,]+),', msg)
        if r:
            s = re.search(r'returns sandbox id ' + q + r'(\w+)', msg)
            if s:
                sandboxes[s.group(1)] = dict(ns=r.group(2), pod=r.group(1), ready=t)
            else:
                sandbox_asked.append((t, r.group(2), r.group(1)))
            continue
        r = re.match(r'CreateContainer within sandbox ' + q + r'(\w+)' + q + r' for &ContainerMetadata\{Name:([^,]+),.*returns container id ' + q + r'(\w+)', msg)
        if r:
            containers[r.group(3)] = dict(sandbox=r.group(1), name=r.group(2), created=t)
            continue
        r = re.match(r'StartContainer for ' + q + r'(\w+)' + q + r' returns successfully', msg)
        if r and r.group(1) in containers:
            containers[r.group(1)]["started"] = t
            continue
        r = re.search(r'shim disconnected" id=(\w+)', line)
        if r and r.group(1) in containers:
            containers[r.group(1)].setdefault("exited", t)

# The watch: pod -> first time (ns) its container showed running, and terminated.
api = {}
for l in open(out + "/watch", errors="replace"):
    us, _, rest = l.partition(" ")
    pod, _, state = rest.strip().partition(" ")
    for k in ("running", "terminated"):
        if '"%s"' % k in state:
            api.setdefault(pod, {}).setdefault(k, int(us) * 1000)

def steps(run, t0, t1):
    rel = lambda t: "%d" % ((t - t0) // 10**6) if t is not None else "-"
    via_node = run.startswith("node")
    # The probe container this run made: in pod client (ephemeral) or in a netdebug-node-* pod.
    mine = []
    for cid, c in containers.items():
        sb = sandboxes.get(c["sandbox"]) or {}
        if not t0 <= c["created"] <= t1:
            continue
        if via_node and sb.get("ns") == node_ns and sb.get("pod", "").startswith("netdebug-node-"):
            mine.append(c)
        if not via_node and sb.get("ns") == ns and sb.get("pod") == "client" and c["name"].startswith("netdebug-"):
            mine.append(c)
    if len(mine) != 1:
        return "  containerd: %d probe containers in the run's window" % len(mine)
    c, parts = mine[0], []
    if via_node:
        sb = sandboxes[c["sandbox"]]
        asked = [t for t, n, p in sandbox_asked if n == node_ns and p == sb["pod"]]
        parts += ["sandbox asked +%s" % rel(asked[0] if asked else None), "ready +%s" % rel(sb["ready"])]
    parts += ["container created +%s" % rel(c["created"]), "started +%s" % rel(c.get("started")),
              "exited +%s" % rel(c.get("exited"))]
    return "  containerd (ms after start): " + ", ".join(parts)

for run, t0 in starts:
    t0, ms = int(t0), int(wall[run])
    d = json.load(open("%s/%s.out" % (out, run)))
    probe = d.get("probe") or {}
    dl = probe.get("delivery") or {}
    done = [e["data"].get("elapsed_ms") for e in probe.get("events") or [] if e.get("type") == "done"]
    line = "%-7s %5d ms  %s, events via %s, first event %s ms, probe hello->done %s ms" % (
        run, ms, d.get("status"), dl.get("via"), dl.get("first_event_ms"), done[0] if done else "-")
    if run.startswith("node"):
        pod = re.search(r"from pod \S+/(netdebug-node-\w+)", " ".join(d.get("client_notes") or []))
        seen = api.get(pod.group(1) if pod else "", {})
        rel = lambda k: "%d" % ((seen[k] - t0) // 10**6) if k in seen else "-"
        line += "  API (ms after start): running +%s, terminated +%s" % (rel("running"), rel("terminated"))
    if clog:
        line += steps(run, t0, t0 + ms * 10**6)
    print(line)
PY
echo "ephemeral containers in pod client: $(kubectl -n "$NS" get pod client -o jsonpath='{range .spec.ephemeralContainers[*]}{.name}{" "}{end}' | wc -w) (one per ephemeral run)"
echo "node probe pods left: $(kubectl -n "${NODE_NS:-$NS}" get pods -l netdebug.io/node-probe --no-headers 2>/dev/null | wc -l)"
echo "runs: $N, SETTLE=$SETTLE"
echo "ephemeral container: median ${a} ms   [${eph[*]}]"
echo "--via-node:          median ${b} ms   [${node[*]}]"
awk -v a="$a" -v b="$b" 'BEGIN { printf "ratio via-node / ephemeral: %.2f\n", b / a }'
