# Shared by the e2e benchmarks (sourced): the namespace they run in, a Service with a client,
# timing one command, the median of a list, and waiting until a Service answers HTTP from a
# pod. Needs NS set by the caller (and RUN for ms).

# Runs "$@" with stdout to $OUT/$RUN.out and stderr to $OUT/$RUN.err; prints its wall time in ms.
ms() {
  local s e
  s=$(date +%s%N)
  "$@" >"$OUT/$RUN.out" 2>"$OUT/$RUN.err" || { echo "bench: failed: $*" >&2; cat "$OUT/$RUN.err" >&2; kubectl -n "$NS" get pods --show-labels >&2; exit 1; }
  e=$(date +%s%N)
  echo $(( (e - s) / 1000000 ))
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
