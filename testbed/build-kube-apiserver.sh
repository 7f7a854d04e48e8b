#!/usr/bin/env bash
# Builds a real kube-apiserver from the k8s.io/kubernetes Go module (through the Go module proxy) and
# caches it outside the repo. Idempotent: a cached binary of the pinned version is reused.
#
# k8s.io/kubernetes is not meant to be imported as a module: its go.mod points the k8s.io/* staging
# modules at ./staging/src/..., which the module zip does not resolve for a consumer. We write a
# go.mod of our own that replaces every staging module with its published v0.x.y twin
# (kubernetes/kubernetes#79384 describes the pattern). The replace list is derived from the
# kubernetes go.mod itself, so a version bump needs no hand edits.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
OUT="$CACHE_DIR/kube-$KUBE_VERSION/kube-apiserver"

if [[ -x "$OUT" ]] && "$OUT" --version 2>/dev/null | grep -q "$KUBE_VERSION"; then
  echo "$OUT"
  exit 0
fi

command -v go >/dev/null || { echo "build-kube-apiserver: 'go' not found; install Go 1.22+ (golang-go)" >&2; exit 1; }

work="$CACHE_DIR/kube-$KUBE_VERSION/src"
mkdir -p "$work"

# testbed/kubebuild holds our go.mod (k8s.io/kubernetes plus a replace line per staging module,
# derived from kubernetes' own go.mod by --regenerate) and its go.sum, so the build is pinned.
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kubebuild"
if [[ "${1:-}" == "--regenerate" ]]; then
  staging_version="v0${KUBE_VERSION#v1}"
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  [[ -f "$gomod" ]] || { echo "build-kube-apiserver: could not download k8s.io/kubernetes@$KUBE_VERSION" >&2; exit 1; }
  {
    echo "module mcl.local/kubebuild"
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    grep -oE 'k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" |
      awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } > "$src/go.mod"
  (cd "$src" && GOFLAGS=-mod=mod go mod tidy)
fi
cp "$src/go.mod" "$src/go.sum" "$src/tools.go" "$work/"

version_pkg=k8s.io/component-base/version
ldflags="-s -w -X $version_pkg.gitVersion=$KUBE_VERSION -X $version_pkg.gitMajor=1 -X $version_pkg.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)"
cd "$work"
if ! CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" -o "$OUT.tmp" k8s.io/kubernetes/cmd/kube-apiserver; then
  echo "build-kube-apiserver: retrying with -checklinkname=0 (an old dependency trips Go's linkname check)" >&2
  CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags -checklinkname=0" -o "$OUT.tmp" k8s.io/kubernetes/cmd/kube-apiserver
fi
mv "$OUT.tmp" "$OUT"
echo "$OUT"
