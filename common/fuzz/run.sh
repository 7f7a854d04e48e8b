#!/usr/bin/env bash
# Builds mcl's libFuzzer targets with clang (bazel --config=fuzz, in an output base of its own so
# the g++ build's stays warm) and runs each. Ends with "N passed, M failed", one case per target: a
# target fails when libFuzzer reports a crash, a sanitizer error, a timeout or an out-of-memory;
# its reproducer is kept and named.
#
#   common/fuzz/run.sh                 # the test command's short run (below)
#   common/fuzz/run.sh --seconds 1200  # a long, exploratory run (docs/fuzzing.md)
#   common/fuzz/run.sh --seconds 60 //common/kube/fuzz:watch_stream_fuzzer
#
# The short run starts from the same place every time: a fixed seed and a fixed number of
# executions (--seed, --runs) over the committed corpus/<target>/ and regressions/<target>/ only,
# never over what an earlier run grew, so it does not go deeper with every run of the test command.
# A --seconds run explores: a random seed, and a corpus that grows across runs in
# $MCL_CACHE_DIR/fuzz/<target>/corpus. Either way <target>.dict is the target's libFuzzer
# dictionary and crash reproducers land in $MCL_CACHE_DIR/fuzz/<target>/artifacts/. Add a
# reproducer to regressions/<target>/ with the fix, so the replay test keeps it fixed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=""  # empty: the short run
runs=30000
seed=1
targets=()
positive() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: $1 needs a positive integer, got '$2'" >&2; exit 2; }; }
while (($#)); do
  case "$1" in
    --seconds) positive "$1" "${2:-}"; seconds="$2"; shift 2 ;;
    --runs) positive "$1" "${2:-}"; runs="$2"; shift 2 ;;
    --seed) positive "$1" "${2:-}"; seed="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "fuzz: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
BAZEL=(bazel --output_base="$CACHE_DIR/bazel-fuzz")
# No convenience symlinks: bazel-bin & co. stay those of the g++ build.
FLAGS=(--config=fuzz --disk_cache="$CACHE_DIR/bazel-disk" --symlink_prefix=/)

if ((${#targets[@]} == 0)); then
  # Every fuzz/ package (not `//...`: from this output base, the g++ build's bazel-* symlinks in
  # the workspace look like source folders).
  packages=$(find . -path './bazel-*' -prune -o -name BUILD.bazel -path '*/fuzz/*' -print |
    sed -E 's|^\./(.*)/BUILD.bazel$|//\1:all|' | sort | paste -sd+ -)
  [[ -n "$packages" ]] &&
    mapfile -t targets < <("${BAZEL[@]}" query "attr(tags, mcl_fuzzer, $packages)" 2>/dev/null)
fi
if ((${#targets[@]} == 0)); then
  echo "fuzz: no fuzz targets found"; echo "0 passed, 1 failed"; exit 1
fi

echo "fuzz: building ${#targets[@]} target(s) with clang (--config=fuzz)"
# (ld.gold's "cannot export local symbol" notes about the sanitizer runtimes are noise.)
if ! "${BAZEL[@]}" build "${FLAGS[@]}" "${targets[@]}" 2>&1 |
  grep -v "Cannot export local symbol" | tail -n 3; then
  echo "fuzz: the build failed"; echo "0 passed, ${#targets[@]} failed"; exit 1
fi
bin_dir=$("${BAZEL[@]}" info "${FLAGS[@]}" bazel-bin 2>/dev/null)

passed=0; failed=0
for t in "${targets[@]}"; do
  pkg="${t#//}"; pkg="${pkg%%:*}"; name="${t##*:}"
  work="$CACHE_DIR/fuzz/$name"
  mkdir -p "$work/corpus" "$work/artifacts"
  log="$work/last-run.log"
  seeds=()
  for d in "$pkg/corpus/$name" "$pkg/regressions/$name"; do [[ -d "$d" ]] && seeds+=("$d"); done
  dict=()
  [[ -f "$pkg/$name.dict" ]] && dict=(-dict="$pkg/$name.dict")
  if [[ -n "$seconds" ]]; then
    corpus_dir="$work/corpus"; budget=(-max_total_time="$seconds")
  else
    # libFuzzer writes what it finds into its first corpus folder: a fresh one, thrown away.
    corpus_dir=$(mktemp -d); budget=(-seed="$seed" -runs="$runs")
  fi
  start=$SECONDS
  "$bin_dir/$pkg/$name" "${budget[@]}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "${dict[@]}" \
    "$corpus_dir" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  executed=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$')
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1)
  corpus=$(find "$corpus_dir" -type f | wc -l)
  [[ -z "$seconds" ]] && rm -rf "$corpus_dir"
  if ((rc == 0)); then
    passed=$((passed + 1))
    printf 'fuzz: %-22s ok      %10s runs in %ss, %s, corpus %s\n' "$name" "${executed:-?}" "$((SECONDS - start))" "${cov:-cov: ?}" "$corpus"
  else
    failed=$((failed + 1))
    crash=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n1 | cut -d' ' -f5)
    printf 'fuzz: %-22s FAILED  (exit %s) %s\n' "$name" "$rc" "${crash:+reproducer: $crash}"
    grep -E "property failed|ERROR: (AddressSanitizer|libFuzzer|UndefinedBehavior)|runtime error|SUMMARY" "$log" | head -n 5 | sed 's/^/fuzz:   /'
    echo "fuzz:   log: $log"
  fi
done
# The clang build's Bazel server is not needed until the next run: free its memory.
"${BAZEL[@]}" shutdown >/dev/null 2>&1
echo "$passed passed, $failed failed"
((failed == 0))
