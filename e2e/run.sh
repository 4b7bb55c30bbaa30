#!/usr/bin/env bash
# The e2e suite against the cluster named by KUBECONFIG: the plugin, found by kubectl's plugin
# discovery, against real pods, Services, EndpointSlices and NetworkPolicies.
#
#   ./e2e/run.sh                   skipped loudly (exit 0) when no cluster answers
#   NETDEBUG_E2E_REQUIRED=1 ...    no cluster is a failure (the e2e workflow sets this)
#   NETDEBUG_E2E_IMAGE=ref         probe image already present on the nodes (else built and
#                                  imported into the local containerd of shared/cluster)
set -euo pipefail
cd "$(dirname "$0")/.."

reachable() { kubectl version --request-timeout=5s >/dev/null 2>&1; }

# The single-node cluster of ../shared/cluster (see its README): use it when it runs, start it
# when its binaries are here and no other cluster was named, stop it again if we started it.
SHARED_CLUSTER=${SHARED_CLUSTER:-$(cd .. && pwd)/shared/cluster}
K8S_BIN=${K8S_BIN:-/var/lib/netdebug-cluster/bin}
LOCAL_KUBECONFIG=/var/lib/netdebug-cluster/run/admin.kubeconfig
why="no reachable Kubernetes cluster (KUBECONFIG=${KUBECONFIG:-unset})"
if ! reachable && [ -z "${KUBECONFIG:-}" ]; then
  if [ -f "$LOCAL_KUBECONFIG" ] && KUBECONFIG=$LOCAL_KUBECONFIG reachable; then
    export KUBECONFIG=$LOCAL_KUBECONFIG
  elif [ -x "$SHARED_CLUSTER/up.sh" ] && [ -x "$K8S_BIN/kube-apiserver" ]; then
    echo "e2e: starting the local cluster ($SHARED_CLUSTER/up.sh)"
    start_cluster() {
      K8S_BIN=$K8S_BIN "$SHARED_CLUSTER/up.sh" >"${TMPDIR:-/tmp}/netdebug-e2e-up.log" 2>&1
    }
    if ! start_cluster; then
      # A socket left by a containerd that is gone makes up.sh talk to nothing: clean, retry.
      "$SHARED_CLUSTER/down.sh" >/dev/null 2>&1 || true
      rm -f /run/containerd-k8s/containerd.sock
      start_cluster || why="the local cluster did not start: see ${TMPDIR:-/tmp}/netdebug-e2e-up.log"
    fi
    export KUBECONFIG=$LOCAL_KUBECONFIG
    cluster_stop='"$SHARED_CLUSTER/down.sh" >/dev/null 2>&1 || true'
    trap "$cluster_stop" EXIT
    for _ in $(seq 90); do
      kubectl get nodes 2>/dev/null | grep -qw Ready \
        && kubectl -n kube-system get pods 2>/dev/null | grep -q Running && break
      sleep 2
    done
  else
    why="$why; no local cluster binaries in $K8S_BIN (see $SHARED_CLUSTER/README.md)"
  fi
fi

if ! reachable; then
  echo "################################################################################"
  echo "## E2E SKIPPED: $why."
  echo "## Start one (../shared/cluster/README.md or kind) and export KUBECONFIG to run it."
  echo "################################################################################"
  [ "${NETDEBUG_E2E_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
fi
echo "e2e: cluster $(kubectl config current-context 2>/dev/null || echo '?') ($KUBECONFIG)"

# The same build scripts/test made (a no-op after it); the plugin goes into a directory of its
# own so that kubectl's plugin discovery sees it and nothing else of target/debug.
cargo build --workspace --all-targets --locked
plugin_dir=$(mktemp -d)
trap_cmd="rm -rf '$plugin_dir'"
trap "$trap_cmd${cluster_stop:+; $cluster_stop}" EXIT
cp target/debug/kubectl-netdebug target/debug/kubectl_complete-netdebug "$plugin_dir/"
export PATH="$plugin_dir:$PATH"
plugins=$(kubectl plugin list 2>&1 || true)
case "$plugins" in
  *"$plugin_dir/kubectl-netdebug"*) ;;
  *) echo "e2e: kubectl plugin list does not find kubectl-netdebug:" >&2; echo "$plugins" >&2; exit 1 ;;
esac

# The static probe: the image below is built from it, and `kubectl netdebug image load` is
# tested with it (e2e/tests/image_load.rs).
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked -p probe \
  --target x86_64-unknown-linux-gnu
export NETDEBUG_E2E_STATIC_PROBE=${NETDEBUG_E2E_STATIC_PROBE:-${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-gnu/release/netdebug-probe}

if [ -z "${NETDEBUG_E2E_IMAGE:-}" ]; then
  export NETDEBUG_E2E_IMAGE=ghcr.io/netdebug/netdebug-probe:e2e
  cargo xtask image --probe target/x86_64-unknown-linux-gnu/release/netdebug-probe \
    --out target/netdebug-probe-e2e.tar --ref "$NETDEBUG_E2E_IMAGE"
  sock=${CONTAINERD_SOCK:-/run/containerd-k8s/containerd.sock}
  if [ -S "$sock" ]; then
    ctr -a "$sock" -n k8s.io images import target/netdebug-probe-e2e.tar >/dev/null
  elif command -v kind >/dev/null; then
    kind load image-archive target/netdebug-probe-e2e.tar
  else
    echo "e2e: cannot load the probe image: set NETDEBUG_E2E_IMAGE to an image the nodes have" >&2
    exit 1
  fi
fi

cargo test --locked -p netdebug-e2e -- --ignored --test-threads="${NETDEBUG_E2E_THREADS:-2}"
