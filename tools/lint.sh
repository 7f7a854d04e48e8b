#!/usr/bin/env bash
# Lint mcl's C++: clang-format (Google style, .clang-format) and clang-tidy (.clang-tidy), both from
# Debian's packages. Prints one line per file checked ("ok - ..." / "not ok - ...") and ends with
# "N passed, N failed".
#   tools/lint.sh            format check + clang-tidy
#   tools/lint.sh --format   format check only (fast; test.sh runs this)
#   tools/lint.sh --fix      rewrite files with clang-format
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode="${1:-all}"
mapfile -t files < <(git ls-files '*.cc' '*.h' | grep -vE '^client-stubs/(go|python|java|node)/')
passed=0; failed=0
for f in "${files[@]}"; do
  if [[ "$mode" == "--fix" ]]; then clang-format -i "$f"; continue; fi
  if clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "not ok - clang-format $f (run: tools/lint.sh --fix)"
  fi
done
[[ "$mode" == "--fix" ]] && exit 0
if [[ "$mode" != "--format" ]]; then
  # Headers of generated protos and external repos come from Bazel's output tree.
  bazel build //proto:election_cc_grpc @etcd_api//:etcd_api @cpprestsdk//:cpprest >/dev/null 2>&1
  bin="$(bazel info bazel-bin)"; ext="$(bazel info output_base)/external"
  flags=(-std=c++17 -I. -I"$bin" -I"$bin/proto" -I"$bin/external/etcd_api" -I"$ext/etcd_api"
    -isystem "$ext/cpprestsdk/Release/include" -DCPPREST_EXCLUDE_WEBSOCKETS=1)
  for f in "${files[@]}"; do
    [[ "$f" == *.cc ]] || continue
    if out=$(clang-tidy --quiet "$f" -- "${flags[@]}" 2>&1) && ! grep -q 'warning:' <<<"$out"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1)); echo "not ok - clang-tidy $f"; grep -E 'warning:|error:' <<<"$out" | head -5
    fi
  done
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
