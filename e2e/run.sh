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

if ! kubectl version --request-timeout=5s >/dev/null 2>&1; then
  echo "################################################################################"
  echo "## E2E SKIPPED: no reachable Kubernetes cluster (KUBECONFIG=${KUBECONFIG:-unset})."
  echo "## Start one (../shared/cluster/README.md or kind) and export KUBECONFIG to run it."
  echo "################################################################################"
  [ "${NETDEBUG_E2E_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
fi

cargo build --locked -p kubectl-netdebug
export PATH="$PWD/target/debug:$PATH"
kubectl plugin list 2>/dev/null | grep -q kubectl-netdebug \
  || { echo "e2e: kubectl plugin list does not find kubectl-netdebug" >&2; exit 1; }

if [ -z "${NETDEBUG_E2E_IMAGE:-}" ]; then
  export NETDEBUG_E2E_IMAGE=ghcr.io/netdebug/netdebug-probe:e2e
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked -p probe \
    --target x86_64-unknown-linux-gnu
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
