#!/usr/bin/env bash
# Demo, stage 1: bring up the test bed (a global etcd and N simulated clusters) and show the
# MultiClusterLease CRD in every cluster. Ctrl-C (or the end) stops everything it started.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
clusters=3
while (($#)); do
  case "$1" in
    --clusters) clusters="$2"; shift 2 ;;
    -h|--help) echo "usage: demo.sh [--clusters N]"; exit 0 ;;
    *) echo "demo: unknown flag $1" >&2; exit 2 ;;
  esac
done
dir=$(mktemp -d /tmp/mcl-demo-XXXXXX)
trap 'bash "$here/testbed/testbed.sh" down --dir "$dir"' EXIT INT TERM
bash "$here/testbed/testbed.sh" up --dir "$dir" --clusters "$clusters"
# shellcheck disable=SC1091
source "$dir/testbed.env"
for ((i = 0; i < clusters; i++)); do
  kc="MCL_CLUSTER_${i}_KUBECONFIG_ADMIN"
  echo
  echo "== cluster-$i ($(sed -n 's/.*server: //p' "${!kc}"))"
  "$MCL_KUBECTL" --kubeconfig "${!kc}" get crd multiclusterleases.mcl.dev
  "$MCL_KUBECTL" --kubeconfig "${!kc}" get mcl -A 2>&1
done
