#!/usr/bin/env bash
# What the app check (TLS handshake + one HTTP request per target) adds to a probe run, and
# the probe's peak memory (issue 13), on the cluster named by KUBECONFIG, run on its node as
# root: three `openssl s_server -www` pods (the node's own openssl, mounted read-only, with a
# P-256 certificate made here), then the static release probe run directly on the node
# against the three pod IPs, checks ["tcp"] against ["tcp","app"], N runs each, taking turns.
# Prints the medians of the probe's own hello->done time and its peak RSS (/usr/bin/time).
# Usage: e2e/bench-app.sh [N]   (builds nothing: needs the static release probe)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
PROBE=${PROBE:-target/x86_64-unknown-linux-gnu/release/netdebug-probe}
[ -x "$PROBE" ] || { echo "bench: no static probe at $PROBE (see BENCHMARKS.md)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }
NS=ndt-bench-app-$$
# shellcheck source=e2e/bench-lib.sh
. e2e/bench-lib.sh
bench_namespace
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=web.bench" -addext "subjectAltName=DNS:web.bench" \
  -keyout "$OUT/tls.key" -out "$OUT/tls.crt" 2>/dev/null
kubectl -n "$NS" create secret generic cert --from-file="$OUT/tls.crt" --from-file="$OUT/tls.key" >/dev/null
for i in 1 2 3; do
kubectl -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: tls-$i, labels: {app: tls}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: tls
    image: local/busybox:1
    imagePullPolicy: IfNotPresent
    command: ["/host/openssl", "s_server", "-accept", "8443", "-cert", "/certs/tls.crt", "-key", "/certs/tls.key", "-www", "-quiet"]
    volumeMounts:
    - {name: openssl, mountPath: /host/openssl, readOnly: true}
    - {name: libs, mountPath: /lib/x86_64-linux-gnu, readOnly: true}
    - {name: lib64, mountPath: /lib64, readOnly: true}
    - {name: certs, mountPath: /certs, readOnly: true}
  volumes:
  - {name: openssl, hostPath: {path: /usr/bin/openssl, type: File}}
  - {name: libs, hostPath: {path: /usr/lib/x86_64-linux-gnu, type: Directory}}
  - {name: lib64, hostPath: {path: /usr/lib64, type: Directory}}
  - {name: certs, secret: {secretName: cert}}
YAML
done
kubectl -n "$NS" wait --for=condition=Ready pod -l app=tls --timeout=90s >/dev/null
targets=$(kubectl -n "$NS" get pods -l app=tls -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}' |
  awk '{printf "%s{\"label\":\"t%d\",\"host\":\"%s\",\"port\":8443,\"role\":\"endpoint\"}", (NR>1?",":""), NR, $1}')
tcp_plan="{\"v\":1,\"targets\":[$targets],\"checks\":[\"tcp\"]}"
app_plan="{\"v\":1,\"targets\":[$targets],\"checks\":[\"tcp\",\"app\"],\"app\":{\"tls\":{\"server_name\":\"web.bench\",\"alpn\":[\"http/1.1\"]},\"http\":{\"path\":\"/\",\"host\":\"web.bench\"},\"timeout_ms\":3000}}"
# One run: "<hello->done ms> <peak RSS KB> <http answers>".
one() {
  /usr/bin/time -f "%M" -o "$OUT/rss" "$PROBE" "$1" >"$OUT/run.jsonl"
  python3 -c '
import json, sys
done = answers = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d["type"] == "done": done = d["data"]["elapsed_ms"]
    if d["type"] == "evidence" and d["data"]["kind"] == "http" and d["data"].get("status") == 200: answers += 1
print(done, open(sys.argv[2]).read().strip(), answers)' "$OUT/run.jsonl" "$OUT/rss"
}
tcp_ms=(); app_ms=(); tcp_rss=(); app_rss=(); answered=()
for _ in $(seq "$N"); do
  read -r ms rss _ < <(one "$tcp_plan"); tcp_ms+=("$ms"); tcp_rss+=("$rss")
  read -r ms rss n < <(one "$app_plan"); app_ms+=("$ms"); app_rss+=("$rss"); answered+=("$n")
done
a=$(printf '%s\n' "${tcp_ms[@]}" | median); b=$(printf '%s\n' "${app_ms[@]}" | median)
echo "runs: $N, 3 HTTPS endpoints (HTTP 200 answers per app run: ${answered[*]})"
echo "tcp only: median ${a} ms   [${tcp_ms[*]}]   peak RSS KB [${tcp_rss[*]}]"
echo "tcp + TLS + HTTP: median ${b} ms   [${app_ms[*]}]   peak RSS KB [${app_rss[*]}]"
awk -v a="$a" -v b="$b" 'BEGIN { printf "added by the app check: %.1f ms\n", b - a }'
