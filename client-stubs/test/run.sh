#!/usr/bin/env bash
# Runs the client libraries' unit tests (each against a fake sidecar of its own), every language's
# reference example, each library's frozen-sidecar test, and the Go resourcelock integration
# tests, against a REAL running sidecar (with a test bed and controller behind it, so leadership
# can be granted).
#
#   MCL_SIDECAR_ADDR=127.0.0.1:P MCL_SIDECAR_PID=N [MCL_SIDECAR_ADDR_2=127.0.0.1:Q] client-stubs/test/run.sh [LANG...]
#
# LANG is any of go python node java cpp resourcelock manager (default: all). MCL_SIDECAR_PID is
# the process of the sidecar at MCL_SIDECAR_ADDR: the frozen-sidecar tests SIGSTOP it (and SIGCONT
# it after), so it must be a sidecar of this test only. "manager" (seed 000:
# a controller-runtime manager electing through the sidecar) needs MCL_KUBECONFIG, a kubeconfig
# of the sidecar's cluster for the manager's own API access. MCL_SIDECAR_ADDR_2, a second
# sidecar in the same cluster and namespace (another "pod"), hosts the second candidate of each
# check; without it both candidates use MCL_SIDECAR_ADDR. MCL_NAMESPACE is passed through.
# MCL_GRANT_TIMEOUT (default 30 s) bounds every wait for an event. MCL_SKIP_BAZEL_BUILD=1 uses the
# C++ example already in bazel-bin instead of running bazel (which waits while another bazel
# command holds the workspace).
#
# Per language, on a fresh lock:
#   1. candidate A's first event states the current view (NO_LEADER, FOLLOWER or LEADER);
#   2. A receives LEADER with a positive fencing token, and does leader work only after it;
#   3. candidate B (same language) receives FOLLOWER naming A;
#   4. SIGTERM to A: it exits cleanly (status 0; 143 for the JVM, which reports SIGTERM that way
#      after its shutdown hooks ran), says "resigned, bye", and did no leader work after that;
#   5. B receives LEADER with a larger token (graceful handoff), then exits cleanly on SIGTERM.
# Then, for go python node java, the library's own test on a fresh lock: candidate A (on the
# first sidecar) leads, B (on the second) waits, the first sidecar is frozen (SIGSTOP); A's leader
# work must stop at or before the validity bound of its last LEADER and before B is granted the
# lock (all on CLOCK_MONOTONIC); its "FREEZE ..." line (the margins) is kept in $MCL_FREEZE_LOG if
# set. The manager check freezes the leader's sidecar too: its manager must exit before the other
# one leads.
# Prints "ok - NAME" / "not ok - NAME" per check and "N passed, N failed"; exits 1 on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stubs="$(cd "$here/.." && pwd)"
repo="$(cd "$stubs/.." && pwd)"
CACHE="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
: "${MCL_SIDECAR_ADDR:?set MCL_SIDECAR_ADDR to a running sidecar (or use client-stubs/test/with_testbed.sh)}"
ADDR_A="$MCL_SIDECAR_ADDR"
ADDR_B="${MCL_SIDECAR_ADDR_2:-$MCL_SIDECAR_ADDR}"
SIDECAR_PID="${MCL_SIDECAR_PID:-}"
SIDECAR_PID_B="${MCL_SIDECAR_PID_2:-}"
TIMEOUT="${MCL_GRANT_TIMEOUT:-30}"
# The default configuration's output (bazel-bin follows the workspace's last configuration).
CPP_EXAMPLE="$repo/bazel-out/k8-fastbuild/bin/client-stubs/cpp/election_example"
langs=("$@")
((${#langs[@]})) || langs=(go python node java cpp resourcelock manager)

work="$(mktemp -d "${TMPDIR:-/tmp}/mcl-client-stubs.XXXXXX")"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if ((failed == 0)); then rm -rf "$work"; else echo "# outputs and logs kept in $work"; fi
}
trap cleanup EXIT

passed=0; failed=0
ok()     { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); shift; local l; for l in "$@"; do echo "#   $l"; done; }
check()  { local name="$1"; shift; if "$@" >/dev/null; then ok "$name"; else not_ok "$name" "${why:-}"; fi; why=""; }
why=""

# --- build everything once --------------------------------------------------------------------
log() { echo "# $*"; }
build_failed=()
prepare() {
  log "installing pinned generators and runtimes (idempotent) and checking the committed stubs"
  if "$stubs/generate.sh" --check >"$work/generate.log" 2>&1; then ok "generated stubs match generate.sh"
  else not_ok "generated stubs match generate.sh" "$(tail -5 "$work/generate.log")"; fi
  VENV="$(ls -d "$CACHE"/client-stubs/venv-* | sort | tail -1)"
  NODE_PATH="$CACHE/client-stubs/node/node_modules"; export NODE_PATH

  log "building the Go example"
  (cd "$stubs/go" && timeout 600 go build -o "$work/go-example" ./example) >"$work/build-go.log" 2>&1 \
    || build_failed+=(go)
  log "building the controller-runtime manager example"
  (cd "$stubs/go/examples/manager" && timeout 600 go vet ./... && timeout 600 go build -o "$work/manager-example" .) \
    >"$work/build-manager.log" 2>&1 || build_failed+=(manager)
  log "Go: vet and unit tests (election and resourcelock against fake sidecars, client-go's elector)"
  if (cd "$stubs/go" && timeout 300 go vet ./... && timeout 300 go test -race -count=1 ./...) >"$work/go-unit.log" 2>&1
  then ok "go vet and unit tests"; else not_ok "go vet and unit tests" "$(grep -E '_test\.go:[0-9]+|^(---|ok|FAIL)|vet:' "$work/go-unit.log" | head -12 | tr '\n' '|')"; fi
  log "Python: unit tests (blocking and asyncio, against a fake sidecar) and the package installs"
  if (cd "$stubs/python" && timeout 120 "$VENV/bin/python" -m unittest -q tests.test_campaign tests.test_aio) >"$work/py-unit.log" 2>&1
  then ok "python unit tests"; else not_ok "python unit tests" "$(grep -E '^(FAIL|ERROR|AssertionError|Ran)' "$work/py-unit.log" | head -8 | tr '\n' '|')"; fi
  if (rm -rf "$work/py-install" && cd "$stubs/python" \
        && timeout 120 "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation --target "$work/py-install" . \
        && cd "$work" && PYTHONPATH="$work/py-install" "$VENV/bin/python" -c 'import mcl_election, mcl_election.aio, mcl_election.v1.election_pb2_grpc') \
        >"$work/py-install.log" 2>&1
  then ok "python: pip installs mcl-election (import mcl_election)"; else not_ok "python: pip installs mcl-election" "$(tail -5 "$work/py-install.log" | tr '\n' '|')"; fi
  rm -rf "$stubs/python/build" "$stubs/python"/*.egg-info

  log "Node.js: unit tests (against a fake sidecar), TypeScript declarations, npm pack"
  # A copy beside the pinned node_modules, as after `npm ci` in the folder.
  mkdir -p "$work/node" && cp -r "$stubs/node"/{index.js,index.d.ts,package.json,proto,test} "$work/node"/ \
    && ln -sfn "$NODE_PATH" "$work/node/node_modules"
  if (cd "$work/node" && timeout 120 node --test test/campaign.test.js) >"$work/node-unit.log" 2>&1
  then ok "node unit tests"; else not_ok "node unit tests" "$(grep -E '^not ok|error:|Error' "$work/node-unit.log" | head -8 | tr '\n' '|')"; fi
  if (cd "$work/node" && timeout 120 node_modules/.bin/tsc -p test/types && npm pack --dry-run --json 2>/dev/null \
        | grep -q '"path": "index.d.ts"') >"$work/node-types.log" 2>&1
  then ok "node: index.d.ts type-checks a typed use, and npm pack ships it"; else not_ok "node: TypeScript declarations" "$(head -8 "$work/node-types.log" | tr '\n' '|')"; fi

  log "Java: mvn package (stubs generated by protobuf-maven-plugin; unit tests against a fake sidecar)"
  if (cd "$stubs/java" && env -u MCL_SIDECAR_PID timeout 600 mvn -q -B -Dmaven.repo.local="$CACHE/m2" package \
       dependency:build-classpath -Dmdep.outputFile=target/classpath.txt) >"$work/build-java.log" 2>&1
  then ok "java: build, generated stubs and unit tests"
  else
    build_failed+=(java)
    not_ok "java: build, generated stubs and unit tests" "$(grep -E 'Tests run|FAIL|ERROR' "$work/build-java.log" | head -8 | tr '\n' '|')"
  fi
  if [[ -n "${MCL_SKIP_BAZEL_BUILD:-}" && -x "$CPP_EXAMPLE" ]]; then
    log "using the C++ example already built in bazel-bin (MCL_SKIP_BAZEL_BUILD)"
  else
    log "building the C++ example (bazel)"
    (cd "$repo" && timeout 900 bazel build //client-stubs/cpp:election_example) >"$work/build-cpp.log" 2>&1 \
      || build_failed+=(cpp)
  fi
  local l
  for l in go manager cpp; do
    if [[ " ${build_failed[*]} " == *" $l "* ]]; then not_ok "$l example builds" "$(tail -5 "$work/build-$l.log")"
    else ok "$l example builds"; fi
  done
}

# example_cmd LANG: the command that runs LANG's example
example_cmd() {
  case "$1" in
    go) echo "$work/go-example" ;;
    python) echo "env PYTHONPATH=$stubs/python $VENV/bin/python $stubs/python/example.py" ;;
    node) echo "node $stubs/node/example.js" ;;
    java) echo "java -cp $stubs/java/target/classes:$(cat "$stubs/java/target/classpath.txt") dev.mcl.example.ElectionExample" ;;
    cpp) echo "$CPP_EXAMPLE" ;;
    manager) echo "env KUBECONFIG=${MCL_KUBECONFIG:-} $work/manager-example" ;;
  esac
}

# start NAME LANG ADDR LOCK IDENTITY: runs the example in the background; output in $work/NAME.out
start() {
  local name="$1" lang="$2" addr="$3" lock="$4" id="$5"
  # shellcheck disable=SC2046
  MCL_SIDECAR_ADDR="$addr" MCL_LOCK="$lock" MCL_IDENTITY="$id" \
    $(example_cmd "$lang") >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  eval "pid_$name=$!"
}

# wait_line NAME REGEX: until a line of NAME's output matches (bounded by TIMEOUT); prints it
wait_line() {
  local file="$work/$1.out" re="$2" deadline=$((SECONDS + TIMEOUT)) line
  while ((SECONDS < deadline)); do
    line="$(grep -m1 -E "$re" "$file" 2>/dev/null)" && { echo "$line"; return 0; }
    sleep 0.1
  done
  why="no line matching /$re/ within ${TIMEOUT}s; output: $(tail -c 600 "$file" | tr '\n' '|') stderr: $(tail -c 400 "$work/$1.err" | tr '\n' '|')"
  echo "$why" >"$work/why"  # for callers that run this in a subshell
  return 1
}

# stop_clean NAME LANG [GOODBYE]: SIGTERM, then it must exit cleanly within 15 s and say goodbye
stop_clean() {
  local name="$1" lang="$2" bye="${3:-resigned, bye}" pid rc=0 want=0
  pid="$(eval echo "\$pid_$name")"
  kill -TERM "$pid" 2>/dev/null
  local deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then why="still running 15 s after SIGTERM"; kill -KILL "$pid"; return 1; fi
  wait "$pid"; rc=$?
  [[ "$lang" == java ]] && want=143
  ((rc == want)) || { why="exit status $rc, want $want; stderr: $(tail -c 400 "$work/$name.err" | tr '\n' '|')"; return 1; }
  [[ "$(tail -n1 "$work/$name.out")" == "$bye" ]] || { why="last line is not '$bye': $(tail -n2 "$work/$name.out" | tr '\n' '|')"; return 1; }
}

token_of() { sed -n 's/.*token=\([0-9-]*\).*/\1/p' <<<"$1"; }

# work_only_while_leading NAME: every "leader work" line comes after a LEADER event and before any
# later LOST event or the goodbye.
work_only_while_leading() {
  awk '/^event state=LEADER /{lead=1; next}
       /^event state=/{lead=0; next}
       /^resigned, bye$/{lead=0; next}
       /^leader work /{ if (!lead) { bad=NR": "$0; exit 1 } }
       END{ if (bad) { print bad; exit 1 } }' "$work/$1.out" >"$work/$1.awk" \
    || { why="leader work outside LEADER..LOST: $(cat "$work/$1.awk")"; return 1; }
}

run_lang() {
  local lang="$1" lock="cs-$1-$RANDOM$RANDOM" a="$1-a" b="$1-b" line token_a token_b
  if [[ " ${build_failed[*]} " == *" $lang "* ]]; then not_ok "$lang: example runs" "it did not build"; return; fi
  log "$lang: lock $lock"
  start "${lang}_a" "$lang" "$ADDR_A" "$lock" "$a"
  check "$lang: first event states the current view" \
    wait_line "${lang}_a" '^event state=(NO_LEADER|FOLLOWER|LEADER) '
  head -n1 "$work/${lang}_a.out" | grep -qE '^event state=(NO_LEADER|FOLLOWER|LEADER) ' \
    || { not_ok "$lang: the first line is that event" "$(head -n1 "$work/${lang}_a.out")"; }

  if line="$(wait_line "${lang}_a" "^event state=LEADER leader=$a cluster=[^ ]+ token=[0-9]+$")"; then
    token_a="$(token_of "$line")"
    if ((token_a > 0)); then ok "$lang: LEADER with a positive fencing token ($token_a)"
    else not_ok "$lang: LEADER with a positive fencing token" "token is $token_a"; fi
  else
    not_ok "$lang: LEADER with a positive fencing token" "$(cat "$work/why")"
    stop_clean "${lang}_a" "$lang"; return
  fi
  check "$lang: leader work starts after LEADER" wait_line "${lang}_a" "^leader work token=$token_a$"

  start "${lang}_b" "$lang" "$ADDR_B" "$lock" "$b"
  check "$lang: second candidate is FOLLOWER of the first" \
    wait_line "${lang}_b" "^event state=FOLLOWER leader=$a cluster=[^ ]+ token=$token_a$"
  check "$lang: SIGTERM exits cleanly and resigns" stop_clean "${lang}_a" "$lang"
  check "$lang: no leader work outside LEADER..LOST" work_only_while_leading "${lang}_a"

  if line="$(wait_line "${lang}_b" "^event state=LEADER leader=$b ")"; then
    token_b="$(token_of "$line")"
    if ((token_b > token_a)); then ok "$lang: handoff to the follower with a larger token ($token_a -> $token_b)"
    else not_ok "$lang: handoff to the follower with a larger token" "token $token_b after $token_a"; fi
  else
    not_ok "$lang: handoff to the follower with a larger token" "$(cat "$work/why")"
  fi
  check "$lang: follower exits cleanly on SIGTERM" stop_clean "${lang}_b" "$lang"
  check "$lang: follower did no leader work outside LEADER..LOST" work_only_while_leading "${lang}_b"
}

# run_freeze LANG: the library's frozen-sidecar test (see the header).
run_freeze() {
  local lang="$1" log="$work/freeze-$1.log" rc
  if [[ -z "$SIDECAR_PID" ]]; then not_ok "$lang: frozen sidecar" "set MCL_SIDECAR_PID (see the header)"; return; fi
  if [[ " ${build_failed[*]} " == *" $lang "* ]]; then not_ok "$lang: frozen sidecar" "it did not build"; return; fi
  log "$lang: frozen-sidecar test (SIGSTOP of the leader's sidecar, pid $SIDECAR_PID)"
  case "$lang" in
    go) (cd "$stubs/go" && timeout 120 go test -count=1 -tags integration -run IntegrationFrozen -v ./election) ;;
    python) (cd "$stubs/python" && timeout 120 "$VENV/bin/python" -m tests.integration_freeze) ;;
    node) (cd "$work/node" && timeout 120 node test/integration_freeze.js) ;;
    java) (cd "$stubs/java" && timeout 300 mvn -q -B -Dmaven.repo.local="$CACHE/m2" surefire:test \
             -Dtest=FrozenSidecarTest -Dsurefire.failIfNoSpecifiedTests=false) ;;
  esac >"$log" 2>&1
  rc=$?
  kill -CONT "$SIDECAR_PID" 2>/dev/null  # whatever happened to the test
  [[ -n "${MCL_FREEZE_LOG:-}" ]] && grep -h '^FREEZE ' "$log" >>"$MCL_FREEZE_LOG"
  if ((rc == 0)) && grep -q '^FREEZE lang=' "$log"; then
    ok "$lang: frozen sidecar: leader work stopped at its bound, before the next grant ($(sed -n 's/^FREEZE lang=[a-z]* //p' "$log" | head -1))"
  else
    not_ok "$lang: frozen sidecar: leader work stopped at its bound, before the next grant" \
      "$(grep -E '^(not ok|#)|_test\.go:[0-9]+|Error|FAIL|expected' "$log" | head -10 | tr '\n' '|')"
  fi
}

run_resourcelock() {
  log "resourcelock: client-go leaderelection against the real sidecar"
  if (cd "$stubs/go" && MCL_SIDECAR_ADDR="$ADDR_A" MCL_SIDECAR_ADDR_2="$ADDR_B" \
        timeout 300 go test -count=1 -tags integration -run Integration -v ./resourcelock) \
        >"$work/resourcelock.log" 2>&1; then
    grep -E '^\s*--- PASS' "$work/resourcelock.log" | sed 's/^ *--- PASS: \([^ ]*\).*/\1/' |
      while read -r t; do echo "ok - resourcelock: $t"; done
    passed=$((passed + $(grep -cE '^\s*--- PASS' "$work/resourcelock.log")))
  else
    grep -E '^\s*--- (PASS|FAIL)' "$work/resourcelock.log" | sed 's/^ *//' >&2
    not_ok "resourcelock: integration tests" "$(grep -E '_test\.go:[0-9]+|^(---|ok|FAIL)' "$work/resourcelock.log" | head -12 | tr '\n' '|')"
  fi
}

run_manager() {
  local lock="cs-manager-$RANDOM$RANDOM" a="manager-a" b="manager-b"
  if [[ -z "${MCL_KUBECONFIG:-}" ]]; then not_ok "manager: runs" "set MCL_KUBECONFIG (see the header)"; return; fi
  if [[ " ${build_failed[*]} " == *" manager "* ]]; then not_ok "manager: runs" "it did not build"; return; fi
  log "manager: lock $lock"
  start manager_a manager "$ADDR_A" "$lock" "$a"
  check "manager: the first replica's manager leads" wait_line manager_a "^leading as $a$"
  start manager_b manager "$ADDR_B" "$lock" "$b"
  sleep 3
  if grep -q '^leading' "$work/manager_b.out"; then not_ok "manager: the second replica waits while the first leads" "$(cat "$work/manager_b.out")"
  else ok "manager: the second replica waits while the first leads"; fi
  check "manager: SIGTERM stops the leader's manager cleanly (releases)" stop_clean manager_a manager "stopped, bye"
  check "manager: the second replica's manager leads after the handoff" wait_line manager_b "^leading as $b$"
  if [[ -z "$SIDECAR_PID_B" ]]; then
    check "manager: the second replica stops cleanly on SIGTERM" stop_clean manager_b manager "stopped, bye"
    not_ok "manager: a frozen sidecar stops its leader's manager" "set MCL_SIDECAR_PID_2 (see the header)"
  else
    # The leader is now b, on the second sidecar: a new replica on the first waits, then b's
    # sidecar freezes. b's lock must end b's process at its bound (the safe default), before the
    # new replica leads.
    start manager_c manager "$ADDR_A" "$lock" "manager-c"
    sleep 2
    kill -STOP "$SIDECAR_PID_B"
    local deadline=$((SECONDS + 20)) rc
    while kill -0 "$pid_manager_b" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    local c_led_first=no
    grep -q '^leading' "$work/manager_c.out" && c_led_first=yes
    wait_line manager_c "^leading as manager-c$" >/dev/null
    kill -CONT "$SIDECAR_PID_B"
    if kill -0 "$pid_manager_b" 2>/dev/null; then
      not_ok "manager: a frozen sidecar stops its leader's manager before the next grant" "still running 20 s after the freeze"
      kill -KILL "$pid_manager_b"
    else
      wait "$pid_manager_b"; rc=$?
      if ((rc == 1)) && [[ $c_led_first == no ]] && grep -q "lost leadership" "$work/manager_b.err"; then
        ok "manager: a frozen sidecar stops its leader's manager before the next grant"
      else
        not_ok "manager: a frozen sidecar stops its leader's manager before the next grant" \
          "exit $rc, other replica led first: $c_led_first; stderr: $(tail -c 300 "$work/manager_b.err" | tr '\n' '|')"
      fi
    fi
    check "manager: the waiting replica leads after the freeze" wait_line manager_c "^leading as manager-c$"
    check "manager: it stops cleanly on SIGTERM" stop_clean manager_c manager "stopped, bye"
  fi
}

prepare
for lang in "${langs[@]}"; do
  case "$lang" in
    go|python|node|java) run_lang "$lang"; run_freeze "$lang" ;;
    cpp) run_lang "$lang" ;;
    resourcelock) run_resourcelock ;;
    manager) run_manager ;;
    *) not_ok "unknown language '$lang'" ;;
  esac
done
echo "$passed passed, $failed failed"
((failed == 0))
