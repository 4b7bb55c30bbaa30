# Shared by the e2e benchmarks (sourced): timing one command, the median of a list, and
# waiting until a Service answers HTTP from a pod. Needs NS, OUT and RUN set by the caller.

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
