#!/usr/bin/env bash
# Time of a many-sources run against a one-source run (issue 12), on the cluster named by
# KUBECONFIG with the probe image already on the node (e2e/run.sh loads it): a Service with one
# endpoint and SOURCES caller pods (default 20) labelled role=caller;
# `kubectl netdebug ... --to svc/web` from command start to exit, from one pod and from all of
# them (`-l set=manyI`, injections --max-parallel PARALLEL, default 10), taking turns on fresh pods (each run
# adds an ephemeral container to every source, which stays in its spec). Prints the median of N
# runs of each and the ratio. (The API requests per source are counted exactly by the mocked
# API server test kubectl-netdebug/tests/api_sources_pipeline.rs.)
# Usage: [SOURCES=20] [PARALLEL=10] e2e/bench-sources.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3}
SOURCES=${SOURCES:-20}
PARALLEL=${PARALLEL:-10}
IMAGE=${NETDEBUG_E2E_IMAGE:-ghcr.io/netdebug/netdebug-probe:e2e}
NS=ndt-bench-src-$$
# shellcheck source=e2e/bench-lib.sh
. e2e/bench-lib.sh
use_plugin
bench_namespace
# One set of callers per run of each kind: an ephemeral container can never be removed, so
# every timed run starts from pods that have none, like a first run would.
callers() { # $1: set name; $2: how many
  local i
  for i in $(seq "$2"); do
    cat <<YAML
---
apiVersion: v1
kind: Pod
metadata: {name: $1-$i, labels: {role: caller, set: "$1"}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {name: main, image: local/busybox:1, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}
YAML
  done
}
for i in $(seq "$N"); do
  callers "one$i" 1
  callers "many$i" "$SOURCES"
done | kubectl -n "$NS" apply -f - >/dev/null
kubectl -n "$NS" wait --for=condition=Ready pod --all --timeout=180s >/dev/null
web_and_client

one=(); many=()
SETTLE=${SETTLE:-3}
for i in $(seq "$N"); do
  sleep "$SETTLE"
  RUN=one-$i
  one+=("$(ms kubectl netdebug -n "$NS" "one$i-1" --to svc/web --image "$IMAGE" --image-pull-policy IfNotPresent -o json)")
  sleep "$SETTLE"
  RUN=many-$i
  many+=("$(ms kubectl netdebug -n "$NS" -l "set=many$i" --max-sources "$SOURCES" --max-parallel "$PARALLEL" --to svc/web --image "$IMAGE" --image-pull-policy IfNotPresent -o json)")
done
a=$(printf '%s\n' "${one[@]}" | median)
b=$(printf '%s\n' "${many[@]}" | median)
summary() {
  for i in $(seq "$N"); do
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
srcs = d.get("sources") or []
probes = [((s.get("document") or {}).get("probe") or {}) for s in srcs]
done = sum(1 for p in probes if (p.get("stream_end") or {}).get("state") == "done")
pf = sum((p.get("delivery") or {}).get("port_forward_requests") or 0 for p in probes)
print("%d/%d(%s, %d port-forward requests)" % (len(srcs), done, d.get("status"), pf))' "$OUT/many-$i.out"
  done | tr '\n' ' '
}
echo "runs: $N, sources: $SOURCES"
echo "one source: median ${a} ms   [${one[*]}]"
echo "  $(cpu_medians one)"
echo "$SOURCES sources (-l, --max-parallel $PARALLEL): median ${b} ms   [${many[*]}]"
echo "  $(cpu_medians many)"
echo "  sources/done(status, port-forward requests of all sources) per run: $(summary)"
awk -v a="$a" -v b="$b" 'BEGIN { printf "ratio many / one: %.2f\n", b / a }'
