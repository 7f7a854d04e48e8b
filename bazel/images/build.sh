#!/usr/bin/env bash
# Builds mcl's container images without a container engine: the binaries (Bazel for the C++, the Go
# toolchain for the Go example), then one image archive per binary with bazel/images/oci_image.py.
#
#   bazel/images/build.sh [--out DIR] [--registry REG] [--tag TAG] [-c opt|fastbuild] [IMAGE...]
#
#   IMAGE      controller, sidecar, mcl, example (default: all of them; mcl only once the
#              //client-stubs/cpp:mcl target exists)
#   --out      where the archives go (default: out/images in the repository, git-ignored)
#   --registry prefix of the image names, e.g. registry.example.com/mcl (default: none, so the
#              images are docker.io/library/mcl-controller:TAG to containerd and the kubelet)
#   --tag      default: appVersion of helm/mcl/Chart.yaml
#   -c         Bazel compilation mode of the C++ binaries (default opt, the release build)
#
# Writes DIR/<image>.tar (an OCI layout that is also a docker-archive: `ctr images import`,
# `podman load`, `docker load`, `skopeo copy oci-archive:...` all read it) and DIR/images.txt, one
# line per image: "<name> <reference> <manifest digest> <archive>". Same commit, same Debian packages
# -> same bytes (bazel/images/images_test.sh builds twice and compares).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"

die() { echo "images: $*" >&2; exit 1; }
out="$repo/out/images"; registry=""; tag=""; mode=opt; images=()
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    -c|--compilation-mode) mode="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    controller|sidecar|mcl|example) images+=("$1"); shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$mode" == opt || "$mode" == fastbuild || "$mode" == dbg ]] || die "-c must be opt, fastbuild or dbg, got '$mode'"
[[ -n "$tag" ]] || tag="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$repo/helm/mcl/Chart.yaml")"
[[ -n "$tag" ]] || die "no --tag and no appVersion in helm/mcl/Chart.yaml"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

cd "$repo"
has_mcl_command() { [[ -f client-stubs/cpp/BUILD.bazel ]] && grep -q 'name = "mcl"' client-stubs/cpp/BUILD.bazel; }
if ((${#images[@]} == 0)); then
  images=(controller sidecar example)
  has_mcl_command && images+=(mcl)
fi

targets=()
for i in "${images[@]}"; do
  case "$i" in
    controller) targets+=(//controller:mcl-controller //controller/injector:mcl-injector //controller/injector:mcl-uninstall) ;;
    sidecar) targets+=(//sidecar:mcl-sidecar) ;;
    mcl) has_mcl_command || die "the mcl command (//client-stubs/cpp:mcl) does not exist in this checkout"
         targets+=(//client-stubs/cpp:mcl) ;;
  esac
done
bazel_flags=(-c "$mode" --disk_cache="$CACHE_DIR/bazel-disk")
if ((${#targets[@]})); then
  echo "images: bazel build ${bazel_flags[*]} ${targets[*]}" >&2
  bazel build "${bazel_flags[@]}" "${targets[@]}" >&2 || die "bazel build failed"
  bin="$(bazel info "${bazel_flags[@]}" bazel-bin 2>/dev/null)"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/mcl-images.XXXXXX")"
trap 'rm -rf "$work"' EXIT

: >"$work/images.txt"
image() {  # image NAME BINARY [oci_image.py flags...]
  local name="$1" binary="$2"; shift 2
  local line
  line="$(python3 "$here/oci_image.py" --binary "$binary" --name "$name" --tag "$tag" \
    --registry "$registry" --out "$out/$name.tar" "$@")" || die "writing the $name image failed"
  echo "$name $line" >>"$work/images.txt"
}
for i in "${images[@]}"; do
  case "$i" in
    controller) image mcl-controller "$bin/controller/mcl-controller" --ca-certificates \
                  --also "$bin/controller/injector/mcl-injector" --also "$bin/controller/injector/mcl-uninstall" ;;
    sidecar) image mcl-sidecar "$bin/sidecar/mcl-sidecar" ;;
    mcl) image mcl "$bin/client-stubs/cpp/mcl" ;;
    example)
      # Static (no cgo), with no paths, VCS stamp or build ID in it, so the bytes depend only on
      # the sources, the module versions and the Go release.
      echo "images: go build client-stubs/go/example (static)" >&2
      (cd client-stubs/go && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -buildvcs=false \
        -ldflags='-s -w -buildid=' -o "$work/mcl-example-go" ./example) || die "go build of the example failed"
      image mcl-example-go "$work/mcl-example-go" ;;
  esac
done
# Merge with the lines of images built earlier into the same directory (one line per image).
touch "$out/images.txt"
awk 'NR == FNR { new[$1] = 1; print; next } !($1 in new)' "$work/images.txt" "$out/images.txt" |
  sort >"$work/merged" && mv "$work/merged" "$out/images.txt"
column -t "$work/images.txt" >&2
echo "$out/images.txt"
