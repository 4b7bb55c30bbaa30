# Shared by the e2e benchmarks (sourced): the namespace they run in, a Service with a client,
# timing one command, the median of a list, and waiting until a Service answers HTTP from a
# pod. Needs NS set by the caller (and RUN for ms).

# The plugin timed: the release build, as `cargo install` makes it (a debug build spends tens
# of ms more per TLS handshake, which many probes pay many times), from PLUGIN_DIR (default
# target/release) put first on PATH.
use_plugin() {
  local dir=${PLUGIN_DIR:-$PWD/target/release}
  if [ ! -x "$dir/kubectl-netdebug" ]; then
    echo "bench: no plugin in $dir: build it with 'cargo build --release -p kubectl-netdebug' (or set PLUGIN_DIR)" >&2
    exit 1
  fi
  export PATH="$dir:$PATH"
}

# CPU time in ms: the whole machine's busy time, and the container runtime's on this machine
# (containerd and its shims, with the runc processes the shims waited for; 0 when the node is
# elsewhere). Sampled around each timed command: on a small node the runtime's CPU for the
# containers a run starts sets a floor under its wall time.
cpu_now() {
  local hz
  hz=$(getconf CLK_TCK)
  awk -v hz="$hz" '/^cpu /{printf "%d ", ($2+$3+$4+$6+$7+$8+$9) * 1000 / hz; exit}' /proc/stat
  for p in $(pgrep -x 'containerd|containerd-shim'); do
    cat "/proc/$p/stat" 2>/dev/null
  done | sed 's/^.*) //' | awk -v hz="$hz" '{t += $12 + $13 + $14 + $15} END {printf "%d\n", t * 1000 / hz}'
}

# Runs "$@" with stdout to $OUT/$RUN.out and stderr to $OUT/$RUN.err; prints its wall time in ms
# and writes "busy_ms runtime_ms" of its CPU to $OUT/$RUN.cpu.
ms() {
  local s e c0 c1
  c0=$(cpu_now)
  s=$(date +%s%N)
  "$@" >"$OUT/$RUN.out" 2>"$OUT/$RUN.err" || { echo "bench: failed: $*" >&2; cat "$OUT/$RUN.err" >&2; kubectl -n "$NS" get pods --show-labels >&2; exit 1; }
  e=$(date +%s%N)
  c1=$(cpu_now)
  echo "$c0 $c1" | awk '{print $3 - $1, $4 - $2}' >"$OUT/$RUN.cpu"
  echo $(( (e - s) / 1000000 ))
}

# The median of the source probe's first event (ms after its injection: the container's start
# and the first answer through the port-forward) over the runs named PREFIX-*.
first_event_median() {
  local f
  for f in "$OUT/$1"-*.out; do
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(((d.get("probe") or {}).get("delivery") or {}).get("first_event_ms") or 0)' "$f"
  done | median
}

# "busy B ms, runtime R ms": the medians of the CPU of the runs named PREFIX-*.
cpu_medians() {
  local b r
  b=$(cat "$OUT/$1"-*.cpu | awk '{print $1}' | median)
  r=$(cat "$OUT/$1"-*.cpu | awk '{print $2}' | median)
  echo "CPU median: machine busy ${b} ms, container runtime ${r} ms"
}

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# Waits (at most 60 s) until pod client in $NS gets an answer from http://web.$NS...
wait_web() {
  for _ in $(seq 60); do
    kubectl -n "$NS" exec client -- wget -q -O /dev/null "http://web.$NS.svc.cluster.local/" \
      >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "bench: svc/web never answered from pod client" >&2
  exit 1
}

# Creates namespace $NS and a directory $OUT for the runs' output; both go on exit.
bench_namespace() {
  kubectl create namespace "$NS" >/dev/null
  OUT=$(mktemp -d)
  trap 'kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true; rm -rf "$OUT"' EXIT
}

# Pod server (busybox httpd on 8080, app=web), Service web (80 -> http) and pod client, in
# $NS; returns once both pods are Ready and svc/web answers from the client.
web_and_client() {
  kubectl -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: web}}
spec:
  containers:
  - {name: web, image: local/busybox:1, imagePullPolicy: IfNotPresent,
     command: [sh, -c, "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"],
     ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - {name: main, image: local/busybox:1, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}
YAML
  kubectl -n "$NS" wait --for=condition=Ready pod/server pod/client --timeout=90s >/dev/null
  wait_web
}
