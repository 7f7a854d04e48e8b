#!/usr/bin/env bash
# Builds the kubelet test bed's node and control-plane binaries -- kubelet, kube-scheduler and
# kube-controller-manager -- from the k8s.io/kubernetes Go module, exactly as
# testbed/build-kube-apiserver.sh builds the kube-apiserver: the same k8s.io/kubernetes version and
# the same replace lines for the staging modules (testbed/kubelet/kubebuild/go.mod is
# testbed/kubebuild/go.mod plus the requirements the three commands add; `--regenerate` redoes it).
# Cached next to the kube-apiserver in ~/.cache/mcl/kube-<version>/; idempotent.
#
#   testbed/kubelet/build-kube.sh [--regenerate] [COMMAND...]   default: all three; prints the paths
#
# Each build takes minutes and 1.5-2 GB of memory on 2 cores, so they run one after another, with
# one compile job (-p 1) when less than 4 GiB of memory is available.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
OUT_DIR="$CACHE_DIR/kube-$KUBE_VERSION"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/kubebuild"

regenerate=0
commands=()
for a in "$@"; do
  case "$a" in
    --regenerate) regenerate=1 ;;
    kubelet|kube-scheduler|kube-controller-manager) commands+=("$a") ;;
    *) echo "build-kube: unknown argument '$a' (kubelet, kube-scheduler, kube-controller-manager, --regenerate)" >&2; exit 2 ;;
  esac
done
((${#commands[@]})) || commands=(kubelet kube-scheduler kube-controller-manager)

built() { [[ -x "$OUT_DIR/$1" ]] && "$OUT_DIR/$1" --version 2>/dev/null | grep -q "$KUBE_VERSION"; }

todo=()
for c in "${commands[@]}"; do built "$c" || todo+=("$c"); done
if ((${#todo[@]} == 0 && regenerate == 0)); then
  for c in "${commands[@]}"; do echo "$OUT_DIR/$c"; done
  exit 0
fi

command -v go >/dev/null || { echo "build-kube: 'go' not found; install Go 1.22+" >&2; exit 1; }

if ((regenerate)); then
  # Same pin as the apiserver: start from its go.mod, add what the three commands import.
  sed 's#^module .*#module mcl.local/kubeletbuild#' "$here/../kubebuild/go.mod" >"$src/go.mod"
  cp "$here/../kubebuild/go.sum" "$src/go.sum"
  (cd "$src" && GOFLAGS=-mod=mod go mod tidy)
fi

work="$OUT_DIR/kubelet-src"
mkdir -p "$work"
cp "$src/go.mod" "$src/go.sum" "$src/tools.go" "$work/"

version_pkg=k8s.io/component-base/version
ldflags="-s -w -X $version_pkg.gitVersion=$KUBE_VERSION -X $version_pkg.gitMajor=1 -X $version_pkg.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)"
avail_kib=$(sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo)
jobs=()
((avail_kib < 4 * 1024 * 1024)) && jobs=(-p 1)

cd "$work"
for c in "${todo[@]}"; do
  echo "build-kube: building $c $KUBE_VERSION (minutes; cached in $OUT_DIR)" >&2
  if ! CGO_ENABLED=0 GOFLAGS=-mod=readonly go build "${jobs[@]}" -trimpath -ldflags "$ldflags" -o "$OUT_DIR/$c.tmp" "k8s.io/kubernetes/cmd/$c"; then
    echo "build-kube: retrying $c with -checklinkname=0 (an old dependency trips Go's linkname check)" >&2
    CGO_ENABLED=0 GOFLAGS=-mod=readonly go build "${jobs[@]}" -trimpath -ldflags "$ldflags -checklinkname=0" -o "$OUT_DIR/$c.tmp" "k8s.io/kubernetes/cmd/$c"
  fi
  mv "$OUT_DIR/$c.tmp" "$OUT_DIR/$c"
done
for c in "${commands[@]}"; do echo "$OUT_DIR/$c"; done
