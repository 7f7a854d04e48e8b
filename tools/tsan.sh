#!/usr/bin/env bash
# ThreadSanitizer runs of mcl's tests (docs/tsan.md). TSan sees only instrumented code, and Debian's
# libabsl is not: every absl::Mutex hand-off would be reported as a race. So this script first
# builds abseil 20220623 with -fsanitize=thread from Debian's own source package (the tarball and
# patches of the installed libabsl-dev, sha256-checked, built like Debian's static build: same
# options.h, same inline namespace, so Debian's uninstrumented gRPC and protobuf archives link
# against it unchanged) into $MCL_CACHE_DIR/tsan, once (~95 CPU-seconds). Then it runs
# `bazel test --config=tsan` in an output base of its own (copts do not change Bazel's output
# directory, so sharing the g++ build's would rebuild everything at every switch), with the linker
# finding the instrumented archives first (LIBRARY_PATH is searched before the system directories,
# and pkg-config gives abseil no -L).
#
#   tools/tsan.sh                      # the default set: pure state machines and the informer
#   tools/tsan.sh //common/kube:silent_watch_test ...
#
# gRPC and protobuf stay uninstrumented (docs/tsan.md says why and what it would take): tests whose
# threads meet inside gRPC can report races that are not there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
PREFIX="$CACHE_DIR/tsan"

ABSL_VERSION=20220623.1
ABSL_DEBIAN=1+deb12u2
ABSL_ORIG_SHA256=abfe2897f3a30edaa74bc34365afe3c2a3cd012091a97dc7e008f7016adcd5fe
ABSL_DEBIAN_SHA256=e08490fc7b6f3beca1925953b0c4fb92df2de5e2a01295e4641e2a3d4e528eeb

fetch() {  # fetch FILE SHA256: Debian's archive -> $CACHE_DIR/src, checked
  local file="$1" sha="$2" dest="$CACHE_DIR/src/$1"
  if ! echo "$sha  $dest" | sha256sum -c --status 2>/dev/null; then
    mkdir -p "$CACHE_DIR/src"
    curl -fsSL --retry 3 -o "$dest.tmp" "http://deb.debian.org/debian/pool/main/a/abseil/$file"
    echo "$sha  $dest.tmp" | sha256sum -c --status || { echo "tsan: $file does not match Debian's sha256" >&2; exit 1; }
    mv "$dest.tmp" "$dest"
  fi
}

build_absl() {
  echo "tsan: building abseil $ABSL_VERSION with -fsanitize=thread into $PREFIX" >&2
  fetch "abseil_$ABSL_VERSION.orig.tar.gz" "$ABSL_ORIG_SHA256"
  fetch "abseil_$ABSL_VERSION-$ABSL_DEBIAN.debian.tar.xz" "$ABSL_DEBIAN_SHA256"
  local work; work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  tar xzf "$CACHE_DIR/src/abseil_$ABSL_VERSION.orig.tar.gz" -C "$work"
  local src="$work/abseil-$ABSL_VERSION"
  tar xJf "$CACHE_DIR/src/abseil_$ABSL_VERSION-$ABSL_DEBIAN.debian.tar.xz" -C "$src"
  local p
  while read -r p; do
    [[ -z "$p" || "$p" == \#* ]] || patch -d "$src" -p1 -s <"$src/debian/patches/$p"
  done <"$src/debian/patches/series"
  # The ABI must be the installed one: Debian's gRPC archives refer to its symbols.
  diff <(grep '#define ABSL_OPTION' "$src/absl/base/options.h") \
    <(grep '#define ABSL_OPTION' /usr/include/absl/base/options.h) >/dev/null ||
    { echo "tsan: abseil's options differ from the installed libabsl-dev's" >&2; exit 1; }
  cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_CXX_FLAGS=-fsanitize=thread \
    -DCMAKE_INSTALL_PREFIX="$PREFIX.tmp" >/dev/null
  ninja -C "$work/build" install >/dev/null
  rm -rf "$PREFIX" && mv "$PREFIX.tmp" "$PREFIX"
}

[[ -f "$PREFIX/lib/libabsl_synchronization.a" ]] || build_absl

targets=("$@")
if ((${#targets[@]} == 0)); then
  # Everything that is clean under TSan without gRPC instrumented (docs/tsan.md): the pure state
  # machines and their timer threads, and the Kubernetes client and informer (unit and real-server
  # tests). Not service_test & co.: their threads meet inside gRPC.
  targets=(
    //common:clock_test //common:stop_flag_test //common:backoff_test //common:contract_test
    //sidecar:leadership_test //sidecar:candidacy_test //sidecar:election_test
    //sidecar:deadline_timer_test //sidecar:watches_test //sidecar:validate_test
    //controller:lock_reconciler_test //controller:liveness_test //controller:work_queue_test
    //controller:lock_table_test //controller:replica_election_test //controller:executor_test
    //common:http_server_test
    //common/kube:informer_test //common/kube:silent_watch_test //common/kube:bad_input_test
    //common/kube:events_test //common/kube:wall_clock_step_test //common/kube:codec_test
    //common/kube:informer_integration_test //common/kube:watch_faults_integration_test
    //common/kube:client_integration_test
  )
fi
exec bazel --output_base="$CACHE_DIR/bazel-tsan" test --config=tsan \
  --action_env=LIBRARY_PATH="$PREFIX/lib" --disk_cache="$CACHE_DIR/bazel-disk" \
  --test_env=TSAN_OPTIONS="suppressions=$PWD/tools/tsan_suppressions.txt halt_on_error=0 second_deadlock_stack=1" \
  --symlink_prefix=/ "${targets[@]}"
