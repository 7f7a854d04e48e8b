#!/usr/bin/env bash
# The failover benchmarks, side by side on the same machine and test bed:
#   mcl:       graceful handoff (Resign), crash (SIGKILL of app+sidecar), whole-cluster loss,
#              control-plane loss (the leading cluster's apiserver stops); TTL 2 s
#   client-go: leaderelection with a coordination.k8s.io Lease, at its defaults (15s/10s/2s) and at
#              equal timing (2s/1.5s/0.5s), graceful (ReleaseOnCancel) and crash (stops renewing)
# Writes bench/results/failover.jsonl, docs/img/failover.png, and prints a Markdown table.
# Usage: bench/run.sh [--quick]   (--quick: few rounds, to check the harness)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./setup.sh
quick=0; [[ "${1:-}" == "--quick" ]] && quick=1
if ((quick)); then G=5 C=2 L=1 P=1 B=2 BD=1; else G=100 C=20 L=10 P=10 B=20 BD=5; fi

CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
venv="$CACHE_DIR/venv-bench"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import matplotlib' 2>/dev/null || "$venv/bin/pip" install -q 'matplotlib==3.9.2'

bazel build -c opt //controller:mcl-controller //sidecar:mcl-sidecar //bench:failover_bench
bin="$(bazel info -c opt bazel-bin)"
(cd bench/baseline && go build -o "$CACHE_DIR/baseline" .)

mkdir -p bench/results docs/img
out=bench/results/failover.jsonl
: >"$out"

echo "bench: mcl (graceful $G, crash $C, cluster-loss $L, control-plane-loss $P)" >&2
"$bin/bench/failover_bench" --controller "$bin/controller/mcl-controller" \
  --sidecar "$bin/sidecar/mcl-sidecar" --graceful "$G" --crash "$C" --cluster-loss "$L" \
  --control-plane-loss "$P" --ttl-seconds 2 | tee -a "$out"

dir=$(mktemp -d /tmp/mcl-bench-XXXXXX)
trap 'bash testbed/testbed.sh down --dir "$dir" && rm -rf "$dir"' EXIT
MCL_TESTBED_QUIET=1 bash testbed/testbed.sh up --dir "$dir" --clusters 1 --owner $$  # stopped even if this script is SIGKILLed
# shellcheck disable=SC1091
source "$dir/testbed.env"
kc="$MCL_CLUSTER_0_KUBECONFIG_ADMIN"
tag() { sed "s|\"system\":\"client-go\"|\"system\":\"client-go\",\"timing\":\"$1\"|"; }
for scenario in graceful crash; do
  echo "bench: client-go $scenario, equal timing" >&2
  "$CACHE_DIR/baseline" --kubeconfig "$kc" --scenario "$scenario" --rounds "$B" \
    --lease-duration 2s --renew-deadline 1500ms --retry-period 500ms 2>/dev/null | tag "2s/1.5s/0.5s" | tee -a "$out"
  echo "bench: client-go $scenario, defaults" >&2
  n=$B; [[ $scenario == crash ]] && n=$BD
  "$CACHE_DIR/baseline" --kubeconfig "$kc" --scenario "$scenario" --rounds "$n" \
    2>/dev/null | tag "defaults 15s/10s/2s" | tee -a "$out"
done

"$venv/bin/python" bench/plot.py "$out" docs/img
echo "bench: plot in docs/img/failover.png" >&2
