#!/usr/bin/env bash
# Starts what the client-stub tests need and runs client-stubs/test/run.sh against it:
#   a 1-cluster test bed (global etcd + etcd + kube-apiserver, testbed/testbed.sh),
#   the real election controller (//controller:mcl-controller) for that cluster,
#   two real sidecars (//sidecar:mcl-sidecar) in the same cluster and namespace (two "pods").
# Everything it started is stopped on exit (by PID), whatever happens.
#
#   client-stubs/test/with_testbed.sh [LANG...]     LANG as for run.sh (default: all)
#
# MCL_SKIP_BAZEL_BUILD=1 uses the binaries already in bazel-bin without building them.
# MCL_WITH_TESTBED_CMD="CMD" runs CMD instead of run.sh, with the same environment (debugging, and
# bench.sh). Besides the addresses and PIDs of the two sidecars, that environment has what a test
# needs to start a sidecar of its own: MCL_SIDECAR_BIN, MCL_SIDECAR_KUBECONFIG, MCL_CLUSTER_NAME,
# MCL_SIDECAR_LEASE, and MCL_TESTBED_SH (for `free-port`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
NAMESPACE=default
# The controller's etcd session TTL, and the sidecars' default Campaign lease duration. The sidecar
# renews every lease/4 and counts a confirmation valid for about one session TTL from the renewal
# it covers, so lease/4 must stay well below the TTL: with a 2 s TTL, a 15 s (or 6 s) lease makes
# LEADER and LOST alternate after every renewal (seen with the sidecar of 2026-11-23).
SESSION_TTL=2s
LEASE=4s

log() { echo "# with_testbed: $*"; }
die() { echo "# with_testbed: $*" >&2; exit 1; }

dir="$(mktemp -d "${TMPDIR:-/tmp}/mcl-stubs-testbed.XXXXXX")"
pids=()
stop_all() {
  local rc=$? p
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [[ -f "$dir/testbed.env" || -d "$dir/global-etcd" ]]; then
    MCL_TESTBED_QUIET=1 "$repo/testbed/testbed.sh" down --dir "$dir" >/dev/null 2>&1 || true
  fi
  if ((rc != 0)); then
    # Keep the controller's and sidecars' logs of a failed run for a look afterwards.
    keep="${TMPDIR:-/tmp}/mcl-client-stubs-failed-$(date +%s)"
    mkdir -p "$keep" && cp "$dir"/*.log "$keep"/ 2>/dev/null
    for f in "$dir"/controller.log "$dir"/sidecar-*.log; do
      [[ -f "$f" ]] && { echo "# --- last lines of $f (all of it in $keep)"; tail -n 8 "$f" | sed 's/^/#   /'; }
    done
  fi
  rm -rf "$dir"
  exit "$rc"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

free_port() { "$repo/testbed/testbed.sh" free-port; }  # below the ephemeral range, as the test bed's
wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local secs="$1" what="$2" deadline=$((SECONDS + $1)); shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what not ready within $secs s"
    sleep 0.2
  done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -z "${MCL_SKIP_BAZEL_BUILD:-}" ]]; then
  log "building //sidecar:mcl-sidecar and //controller:mcl-controller"
  (cd "$repo" && timeout 1800 bazel build //sidecar:mcl-sidecar //controller:mcl-controller) >"$dir/build.log" 2>&1 \
    || { tail -n 20 "$dir/build.log"; die "bazel build failed"; }
fi
# The default configuration's output folder: the bazel-bin link follows whatever configuration the
# workspace's last bazel command used (e.g. -c opt), which may not be ours.
bin="$repo/bazel-out/k8-fastbuild/bin"
SIDECAR="$bin/sidecar/mcl-sidecar"
CONTROLLER="$bin/controller/mcl-controller"
[[ -x "$SIDECAR" && -x "$CONTROLLER" ]] || die "missing $SIDECAR or $CONTROLLER (bazel build them)"

log "starting a 1-cluster test bed in $dir"
"$repo/testbed/testbed.sh" up --dir "$dir" --clusters 1 >"$dir/testbed.log" 2>&1 \
  || { tail -n 20 "$dir/testbed.log"; die "test bed did not come up"; }
# shellcheck disable=SC1091
source "$dir/testbed.env"
etcd_endpoint="${MCL_GLOBAL_ETCD#http://}"

log "starting mcl-controller for cluster-0"
"$CONTROLLER" --kubeconfig="$MCL_CLUSTER_0_KUBECONFIG_CONTROLLER" --cluster-name="$MCL_CLUSTER_0_NAME" \
  --etcd-endpoints="$etcd_endpoint" --session-ttl="$SESSION_TTL" --namespace="$NAMESPACE" \
  --watch-namespaces="$NAMESPACE" --metrics-address=127.0.0.1:0 >"$dir/controller.log" 2>&1 &
pids+=($!)
wait_for 30 "mcl-controller" grep -q "informer synced" "$dir/controller.log"

addrs=()
sidecar_pids=()
for s in a b; do
  port="$(free_port)"
  log "starting mcl-sidecar $s on 127.0.0.1:$port"
  "$SIDECAR" --kubeconfig="$MCL_CLUSTER_0_KUBECONFIG_SIDECAR" --listen="127.0.0.1:$port" \
    --namespace="$NAMESPACE" --cluster-name="$MCL_CLUSTER_0_NAME" --identity="client-stubs-$s" \
    --lease-duration="$LEASE" \
    >"$dir/sidecar-$s.log" 2>&1 &
  pids+=($!)
  sidecar_pids+=($!)
  wait_for 30 "mcl-sidecar $s" port_open "$port"
  addrs+=("127.0.0.1:$port")
done

# MCL_WITH_TESTBED_CMD, if set, runs instead of run.sh (for debugging: e.g. a shell).
log "running ${MCL_WITH_TESTBED_CMD:-client-stubs/test/run.sh}"
set +e
# The frozen-sidecar tests SIGSTOP (then SIGCONT) these sidecars; stop_all SIGCONTs them first.
MCL_SIDECAR_ADDR="${addrs[0]}" MCL_SIDECAR_ADDR_2="${addrs[1]}" MCL_NAMESPACE="$NAMESPACE" \
  MCL_SIDECAR_PID="${sidecar_pids[0]}" MCL_SIDECAR_PID_2="${sidecar_pids[1]}" \
  MCL_SIDECAR_BIN="$SIDECAR" MCL_SIDECAR_KUBECONFIG="$MCL_CLUSTER_0_KUBECONFIG_SIDECAR" \
  MCL_CLUSTER_NAME="$MCL_CLUSTER_0_NAME" MCL_SIDECAR_LEASE="$LEASE" MCL_TESTBED_SH="$repo/testbed/testbed.sh" \
  MCL_KUBECONFIG="$MCL_CLUSTER_0_KUBECONFIG_ADMIN" MCL_TESTBED_LOGS="$dir" \
  ${MCL_WITH_TESTBED_CMD:-"$here/run.sh"} "$@"
rc=$?
set -e
exit "$rc"
