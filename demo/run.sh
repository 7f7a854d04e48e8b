#!/usr/bin/env bash
# The main job: builds mcl and the Go example app, then runs the three-cluster failover demo
# (demo/mcl_demo.cc). Flags: --clusters N (default 3), --replicas R (2), --ttl SECONDS (2), --stay.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
echo "demo: building (first time: several minutes on 2 cores)..." >&2
bazel build --noshow_progress //controller:mcl-controller //sidecar:mcl-sidecar //demo:mcl_demo 2>&1 |
  grep -vE '^(INFO|Loading|Analyzing|Target|  bazel-bin)' >&2 || true
bin="$(bazel info bazel-bin 2>/dev/null)"
for b in controller/mcl-controller sidecar/mcl-sidecar demo/mcl_demo; do
  [[ -x "$bin/$b" ]] || { echo "demo: build failed: $bin/$b missing (run: bazel build //$(dirname $b):$(basename $b))" >&2; exit 1; }
done
(cd client-stubs/go && go build -o "$CACHE_DIR/mcl-example-go" ./example)
exec "$bin/demo/mcl_demo" --controller "$bin/controller/mcl-controller" \
  --sidecar "$bin/sidecar/mcl-sidecar" --app "$CACHE_DIR/mcl-example-go" "$@"
