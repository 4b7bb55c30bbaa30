#!/usr/bin/env bash
# Time of --both-ends against a single-ended run (issue 11), on the cluster named by KUBECONFIG
# with the probe image already on the node (e2e/run.sh loads it): a client pod and a Service
# with three endpoint pods; `kubectl netdebug client --to svc/web` from command start to exit,
# single-ended, single-ended with --capture (both ends always capture at the source), and with
# --both-ends --max-peers 3 (four probes injected in parallel), taking turns on quiet pods. Prints the median of N runs of each, the ratio, and each both-ends run's
# peers (how many armed and reported).
# Usage: e2e/bench-both-ends.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
IMAGE=${NETDEBUG_E2E_IMAGE:-ghcr.io/netdebug/netdebug-probe:e2e}
NS=ndt-bench-ends-$$
# shellcheck source=e2e/bench-lib.sh
. e2e/bench-lib.sh
use_plugin
bench_namespace
for i in 1 2 3; do
kubectl -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: server-$i, labels: {app: web}}
spec:
  containers:
  - {name: web, image: local/busybox:1, imagePullPolicy: IfNotPresent,
     command: [sh, -c, "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"],
     ports: [{name: http, containerPort: 8080}]}
YAML
done
kubectl -n "$NS" apply -f - >/dev/null <<YAML
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
kubectl -n "$NS" wait --for=condition=Ready pod/server-1 pod/server-2 pod/server-3 pod/client \
  --timeout=90s >/dev/null
wait_web


single=(); captured=(); both=()
run_single() {
  RUN=single-$1
  single+=("$(ms kubectl netdebug -n "$NS" client --to svc/web --image "$IMAGE" --image-pull-policy IfNotPresent -o json)")
}
run_captured() {
  RUN=captured-$1
  captured+=("$(ms kubectl netdebug -n "$NS" client --to svc/web --capture --image "$IMAGE" --image-pull-policy IfNotPresent -o json)")
}
run_both() {
  RUN=both-$1
  both+=("$(ms kubectl netdebug -n "$NS" client --to svc/web --both-ends --max-peers 3 --image "$IMAGE" --image-pull-policy IfNotPresent -o json)")
}
SETTLE=${SETTLE:-3}
order=(run_single run_captured run_both)
for i in $(seq "$N"); do
  for k in 0 1 2; do
    sleep "$SETTLE"
    "${order[$(( (i + k) % 3 ))]}" "$i"
  done
done
a=$(printf '%s\n' "${single[@]}" | median)
b=$(printf '%s\n' "${both[@]}" | median)
c=$(printf '%s\n' "${captured[@]}" | median)
peers() {
  for i in $(seq "$N"); do
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
peers = d.get("peers") or []
armed = sum(1 for p in peers if any(e.get("type") == "armed" for e in p.get("events", [])))
done = sum(1 for p in peers if (p.get("stream_end") or {}).get("state") == "done")
pf = ((d.get("probe") or {}).get("delivery") or {}).get("port_forward_requests")
print("%d/%d/%d(%s, source %s port-forward requests)" % (len(peers), armed, done, d["status"], pf))' "$OUT/both-$i.out"
  done | tr '\n' ' '
}
echo "runs: $N"
echo "single-ended: median ${a} ms   [${single[*]}]"
echo "  $(cpu_medians single); the source's first event: median $(first_event_median single) ms after its injection"
echo "single-ended --capture: median ${c} ms   [${captured[*]}]"
echo "  $(cpu_medians captured); the source's first event: median $(first_event_median captured) ms after its injection"
echo "--both-ends --max-peers 3: median ${b} ms   [${both[*]}]"
echo "  $(cpu_medians both); the source's first event: median $(first_event_median both) ms after its injection"
echo "  peers/armed/reported(status) per run: $(peers)"
awk -v a="$a" -v b="$b" 'BEGIN { printf "ratio both-ends / single-ended: %.2f\n", b / a }'
awk -v c="$c" -v b="$b" 'BEGIN { printf "ratio both-ends / single-ended --capture: %.2f\n", b / c }'
