#!/usr/bin/env bash
# The fault campaign (README.md here): builds the binaries and runs N seeded runs on a fresh test
# bed, in bounded batches (one test bed per batch, so a long campaign never runs on one that has
# aged through hundreds of faults).
#
#   e2e/campaign/run.sh --runs N [--seed S] [--etcd-members 1|3] [--out DIR] [--batch B]
#                       [--fault-phase 15s] [--keep-logs]
#
# Prints a summary per batch and at the end (runs, faults by kind, violations by kind, time to a
# leader after the heal); a failing run's seed and log directory are printed and kept. Replay a run
# with --seed S --runs 1. Exit status 0 only when every run passed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
runs=10; seed=""; members=1; out=""; batch=25; phase=15s; keep=()
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --etcd-members) members="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --fault-phase) phase="$2"; shift 2 ;;
    --keep-logs) keep=(--keep-logs); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs must be a positive number" >&2; exit 2; }
[[ "$batch" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --batch must be a positive number" >&2; exit 2; }
[[ -n "$seed" ]] || seed=$(( (RANDOM << 15) | RANDOM ))
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "run.sh: --seed must be a number" >&2; exit 2; }
out="${out:-/tmp/mcl-campaign-$seed}"
mkdir -p "$out"
bazel build --disk_cache="${HOME}/.cache/mcl/bazel-disk" //e2e/campaign:mcl-campaign \
  //e2e/campaign:mcl-recorder //controller:mcl-controller //sidecar:mcl-sidecar >&2
bin="$(bazel info bazel-bin 2>/dev/null)"
status=0
for ((done = 0; done < runs; done += batch)); do
  n=$(( runs - done < batch ? runs - done : batch ))
  # A batch's runs take well under 2 minutes each; the bound only stops a hung batch.
  timeout --kill-after=30s $(( n * 180 + 300 ))s "$bin/e2e/campaign/mcl-campaign" \
    --runs="$n" --seed=$(( seed + done )) --etcd-members="$members" --out="$out" \
    --fault-phase="$phase" "${keep[@]}" \
    --controller="$bin/controller/mcl-controller" --sidecar="$bin/sidecar/mcl-sidecar" \
    --recorder="$bin/e2e/campaign/mcl-recorder" || status=1
done
python3 "e2e/campaign/summarize.py" "$out/runs.jsonl"
exit "$status"
