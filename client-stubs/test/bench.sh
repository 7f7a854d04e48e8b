#!/usr/bin/env bash
# Measures, with the client libraries in the loop, on a real 1-cluster test bed (with_testbed.sh):
# graceful handoff (SIGTERM of the leader app), crash failover (SIGKILL of the leader app; SIGKILL
# of the leader's sidecar), and how much earlier than the next grant a frozen leader's app stops
# (SIGSTOP of its sidecar). The leader
# app is the Go example (the demo's app); the next leader campaigns with the Go library. Prints
# one "BENCH ..." line per measurement (min/p50/p90/max in ms); docs/benchmarks.md has the results.
#
#   client-stubs/test/bench.sh [ROUNDS]        (default 20; about 15 s per round)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rounds="${1:-20}"
bin="$(mktemp -d "${TMPDIR:-/tmp}/mcl-client-bench.XXXXXX")"
trap 'rm -rf "$bin"' EXIT
(cd "$here/../go" && go build -o "$bin/example" ./example)
cat >"$bin/run" <<RUN
#!/usr/bin/env bash
cd "$here/../go" && MCL_BENCH_ROUNDS=$rounds MCL_GO_EXAMPLE="$bin/example" \
  go test -count=1 -tags integration -run 'IntegrationBench\$' -v -timeout 90m ./election \
  | grep -E '^(BENCH|FAIL|ok|---)|_test\.go:[0-9]+'
RUN
chmod +x "$bin/run"
MCL_WITH_TESTBED_CMD="$bin/run" "$here/with_testbed.sh"
