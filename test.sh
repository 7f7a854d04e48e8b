#!/usr/bin/env bash
# Sets everything up and runs every test of mcl: the C++ suites under Bazel (unit tests and
# integration tests on real etcd and kube-apiservers), the Helm chart tests on a real apiserver, and
# the client stubs against a real sidecar. Ends with one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

./setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0
add_counts() {  # add_counts "LINE with N passed, M failed"
  local line="$1" p f
  p=$(grep -oE '[0-9]+ passed' <<<"$line" | tail -n1 | cut -d' ' -f1)
  f=$(grep -oE '[0-9]+ failed' <<<"$line" | tail -n1 | cut -d' ' -f1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
}

run_suite() {  # run_suite NAME COMMAND...: a suite that prints "N passed, N failed" last
  local name="$1"; shift
  echo "=== $name"
  local log; log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]} line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
  if [[ -z "$line" ]]; then
    echo "$name: no result line (exit $rc): counted as 1 failure"
    failed=$((failed + 1))
  else
    add_counts "$line"
    if [[ $rc -ne 0 && "$line" == *" 0 failed"* ]]; then failed=$((failed + 1)); fi
  fi
  rm -f "$log"
}

echo "=== bazel test //..."
bep=$(mktemp)
CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
# The disk cache lets a fresh clone reuse compiled actions; a fresh machine simply fills it.
bazel test //... --disk_cache="$CACHE_DIR/bazel-disk" --build_event_json_file="$bep" "$@"
summary=$(python3 tools/count_bazel_results.py "$bep" "$(bazel info bazel-testlogs 2>/dev/null)")
echo "$summary"
add_counts "$(tail -n1 <<<"$summary")"
rm -f "$bep"

# The release binaries and the benchmarks are built with -c opt (bench/run.sh, the images), whose
# warnings differ from the default build's (-Werror=maybe-uninitialized once broke it unseen):
# one pass/fail case, cheap with the disk cache.
echo "=== bazel build -c opt (release binaries, benchmarks)"
if bazel build -c opt //controller:mcl-controller //sidecar:mcl-sidecar //bench:failover_bench \
    //controller/bench:controller_bench --disk_cache="$CACHE_DIR/bazel-disk"; then
  passed=$((passed + 1))
else
  echo "the optimized build failed: counted as 1 failure"; failed=$((failed + 1))
fi

run_suite "clang-format (Google style)" bash tools/lint.sh --format
# libFuzzer targets built with clang, a fixed seed and count each from the committed corpus
# (common/fuzz/README.md). One case per target.
run_suite "fuzz (short, fixed seed)" bash common/fuzz/run.sh
[[ -x helm/test/helm_test.sh ]] && run_suite "helm chart" bash helm/test/helm_test.sh
[[ -x bazel/images/images_test.sh ]] && run_suite "container images" bash bazel/images/images_test.sh
[[ -x testbed/kubelet/kubelet_test.sh ]] && run_suite "chart on a real kubelet" bash testbed/kubelet/kubelet_test.sh
[[ -x client-stubs/test/with_testbed.sh ]] && run_suite "client stubs" bash client-stubs/test/with_testbed.sh

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
