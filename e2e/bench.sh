#!/usr/bin/env bash
# Time to verdict against kubectl debug (issues 4 and 15), on the cluster named by KUBECONFIG
# with the probe image already on the node (e2e/run.sh loads it):
#   kubectl netdebug pod -> Service, healthy, from command start to exit (after the last event),
#     as it runs by default (events through port-forward) and with --stream logs;
#   kubectl debug in the same pod, same image, running one trivial command and waiting for it.
# The three take turns on one pod. Prints the median of N runs of each and the ratios.
# Usage: e2e/bench.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
IMAGE=${NETDEBUG_E2E_IMAGE:-ghcr.io/netdebug/netdebug-probe:e2e}
NS=ndt-bench-$$
# shellcheck source=e2e/bench-lib.sh
. e2e/bench-lib.sh
use_plugin
bench_namespace
web_and_client


netdebug=(); logs=(); debug=()
run_netdebug() {
  RUN=netdebug-$1
  netdebug+=("$(ms kubectl netdebug -n "$NS" client --to svc/web --image "$IMAGE" --image-pull-policy IfNotPresent -o json)")
}
run_logs() {
  RUN=logs-$1
  logs+=("$(ms kubectl netdebug -n "$NS" client --to svc/web --image "$IMAGE" --image-pull-policy IfNotPresent -o json --stream logs)")
}
run_debug() {
  # The probe image is FROM scratch: its one binary printing its version is the trivial command.
  RUN=debug-$1
  debug+=("$(ms kubectl debug -n "$NS" client --image "$IMAGE" --image-pull-policy IfNotPresent --attach=true -q -- /netdebug-probe --version)")
}
# The kubelet starts a new container in its next pod sync, and a sync waits for a relist (every
# second) that began after the previous sync: on a pod that synced a moment ago (the previous
# command's container just started or ended) the start waits one or two relists. So each
# command gets a pod that has been quiet for SETTLE seconds, as a user's pod usually is
# (SETTLE=0 measures back-to-back runs), and the order rotates every round.
SETTLE=${SETTLE:-3}
order=(run_netdebug run_logs run_debug)
for i in $(seq "$N"); do
  for k in 0 1 2; do
    sleep "$SETTLE"
    "${order[$(( (i + k) % 3 ))]}" "$i"
  done
done
a=$(printf '%s\n' "${netdebug[@]}" | median)
b=$(printf '%s\n' "${debug[@]}" | median)
c=$(printf '%s\n' "${logs[@]}" | median)
# How each netdebug run got its events (JSON probe.delivery): port-forward or the log.
delivery() {
  for i in $(seq "$N"); do
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["probe"].get("delivery") or {}; print("%s/%s" % (d.get("via"), d.get("first_event_ms")))' "$OUT/$1-$i.out"
  done | tr '\n' ' '
}
echo "runs: $N"
echo "kubectl netdebug client --to svc/web (healthy): median ${a} ms   [${netdebug[*]}]"
echo "  delivery (via/first event ms after injection): $(delivery netdebug)"
echo "kubectl netdebug ... --stream logs: median ${c} ms   [${logs[*]}]"
echo "  delivery (via/first event ms after injection): $(delivery logs)"
echo "kubectl debug client -- /netdebug-probe --version: median ${b} ms   [${debug[*]}]"
awk -v a="$a" -v b="$b" 'BEGIN { printf "ratio netdebug / debug: %.2f\n", a / b }'
awk -v c="$c" -v b="$b" 'BEGIN { printf "ratio netdebug --stream logs / debug: %.2f\n", c / b }'
