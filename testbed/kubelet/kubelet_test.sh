#!/usr/bin/env bash
# mcl as pods on a real cluster (testbed/kubelet/cluster.sh: two kubelets on containerd, a real
# scheduler and controller-manager), with candidates in two process-based clusters
# (testbed/testbed.sh) sharing the global etcd:
#   * images built here (bazel/images/build.sh) are imported and run; the chart refers to them by
#     tag and digest;
#   * `helm install --wait` with 2 controller replicas succeeds;
#   * an app Deployment (the Go example) labelled mcl.dev/inject=true gets the injected native
#     sidecar, talking over a unix socket in an emptyDir, and with the process-based candidates
#     too exactly one app leads;
#   * `helm upgrade` rolls the controller without the lock going holderless for longer than a
#     handoff;
#   * deleting the leading pod fails over;
#   * `kubectl drain` of a node is not blocked by the PodDisruptionBudgets;
#   * `helm uninstall` leaves no MultiClusterLease or namespace stuck on the finalizer;
#   * tear-down stops everything and restores every host setting (compared before/after).
#
#   testbed/kubelet/kubelet_test.sh      "ok - ..." / "not ok - ..." lines, then "N passed, N failed"
#
# Needs root and what ./setup.sh installs (the kube binaries, containerd, runc, CNI plugins).
# One kubelet test bed per machine: a second run waits for the first (flock). MCL_KEEP=1 keeps the
# work directory (logs) of a run.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
MODE="${MCL_IMAGES_MODE:-opt}"
TTL=3s
LOCK_KEY=/mcl/locks/apps/kubelet-lock

passed=0; failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); [[ -n "${2:-}" ]] && printf '#   %s\n' "${2:0:3000}" >&2; return 0; }
# check NAME COMMAND...: ok if the command succeeds. It runs in the background and is waited for,
# so a SIGTERM (e.g. from `timeout`) reaches the trap at once instead of after a 3-minute helm
# --wait; on_exit stops it.
check_pid=""
check() {
  local n="$1" rc; shift
  "$@" >"$work/check.out" 2>&1 &
  check_pid=$!
  wait "$check_pid"; rc=$?
  check_pid=""
  if ((rc == 0)); then ok "$n"; else not_ok "$n" "$(cat "$work/check.out")"; return 1; fi
}
finish() { echo "$passed passed, $failed failed"; ((failed == 0)); exit $?; }
# require NAME COMMAND...: a check the rest depends on; on failure the test ends here (tear-down
# still runs) instead of piling up failures that only repeat it.
require() { check "$@" || { echo "# the remaining checks depend on this one; stopping" >&2; finish; }; }
poll() {  # poll SECONDS COMMAND...: until the command succeeds (every 0.5 s), bounded
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do ((SECONDS < deadline)) || { "$@"; return 1; }; sleep 0.5; done
}
tool() { local p; p="$(sed -n "s/^$1=//p" "$CACHE_DIR/tools.env" 2>/dev/null)"; [[ -x "$p" ]] && echo "$p" || command -v "$2"; }
HELM="$(tool MCL_HELM helm)"; KUBECTL="$(tool MCL_KUBECTL kubectl)"
[[ -x "$HELM" && -x "$KUBECTL" ]] || { echo "kubelet_test: helm or kubectl missing: run ./setup.sh" >&2; echo "0 passed, 1 failed"; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "kubelet_test: needs root" >&2; echo "0 passed, 1 failed"; exit 1; }

# --- the host as it was, and one run at a time ---------------------------------------------------
host_state() {
  {
    sysctl vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
      kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
    ip -o link show | awk -F': ' '{print "link " $2}' | sed 's/@.*//'
    iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    awk '{print "mount " $2}' /proc/self/mounts
    for d in /var/lib/kubelet /var/lib/cni /var/log/containers /var/log/pods /run/netns /etc/cni; do
      [[ -e "$d" ]] && echo "path $d"
    done
    find /var/lib/cni/results /var/log/containers -mindepth 1 -maxdepth 1 2>/dev/null | sed 's/^/entry /'
    ls -d /sys/fs/cgroup/*/k8s.io /sys/fs/cgroup/*/kubepods* 2>/dev/null | sed 's/^/cgroup /'
    [[ -e /run/mcl-kubelet-testbed ]] && echo "owner-file"
  } | sort
}
# The lock is held by a helper process that lives exactly as long as this script (tail --pid), not
# by this shell: a daemon the test starts (a Bazel server for the images) would inherit the shell's
# descriptor and hold the machine after the test has ended.
coproc MACHINE_LOCK {
  exec 9>/run/mcl-kubelet-testbed.lock
  flock -w 900 9 && echo locked && exec tail --pid=$$ -f /dev/null
}
read -r -u "${MACHINE_LOCK[0]}" lock_state || true
if [[ "${lock_state:-}" != locked ]]; then echo "kubelet_test: another kubelet test held the machine for 15 minutes" >&2; echo "0 passed, 1 failed"; exit 1; fi
work="$(mktemp -d "${TMPDIR:-/tmp}/mcl-kubelet-test.XXXXXX")"
host_state >"$work/host-before"
host_pids=()
torn_down=""
teardown() {
  [[ -n "$torn_down" ]] && return 0
  torn_down=1
  local p
  for p in "${host_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${host_pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
  done
  MCL_TESTBED_QUIET=1 timeout 180 "$here/cluster.sh" down --dir "$work/kc" >"$work/down.log" 2>&1
  MCL_TESTBED_QUIET=1 timeout 60 "$repo/testbed/testbed.sh" down --dir "$work/tb" >>"$work/down.log" 2>&1
}
save_pod_logs() {  # every container's log of the kubelet cluster, for a failed run
  [[ -f "$work/kc/cluster.env" && -z "$torn_down" ]] || return 0
  mkdir -p "$work/pod-logs"
  local k="$KUBECTL --kubeconfig $work/kc/admin.kubeconfig" ns pod c
  $k get pods -A -o wide >"$work/pod-logs/pods.txt" 2>&1
  while read -r ns pod; do
    for c in $($k -n "$ns" get pod "$pod" -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}' 2>/dev/null); do
      timeout 20 $k -n "$ns" logs "$pod" -c "$c" >"$work/pod-logs/$ns.$pod.$c.log" 2>&1
    done
  done < <($k get pods -A --no-headers -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name 2>/dev/null)
}
on_exit() {
  if [[ -n "$check_pid" ]]; then pkill -TERM -P "$check_pid" 2>/dev/null; kill -TERM "$check_pid" 2>/dev/null; fi
  ((failed > 0)) && save_pod_logs
  teardown
  # A signal to our process group can end a check's subshell before its children (helm, kubectl,
  # each under `timeout` in a group of its own): stop whatever still names this run's directory.
  local p
  for p in $(pgrep -f -- "$work/"); do [[ "$p" != "$$" ]] && kill -TERM "$p" 2>/dev/null; done
  if [[ -n "${MCL_KEEP:-}" || $failed -gt 0 ]]; then echo "kubelet_test: logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM
start_time=$SECONDS

# --- bring-up ------------------------------------------------------------------------------------
if "$repo/bazel/images/build.sh" -c "$MODE" --out "$work/images" >"$work/images.log" 2>&1; then
  ok "images built (bazel/images/build.sh -c $MODE)"
else
  not_ok "images built (bazel/images/build.sh -c $MODE)" "$(tail -20 "$work/images.log")"; finish
fi
digest() { awk -v n="$1" '$1 == n {print $3}' "$work/images/images.txt"; }
if ! "$repo/testbed/testbed.sh" up --dir "$work/tb" --clusters 2 >"$work/tb-up.log" 2>&1; then
  not_ok "process-based clusters up (testbed.sh)" "$(tail -20 "$work/tb-up.log")"; finish
fi
# shellcheck disable=SC1091
source "$work/tb/testbed.env"
GLOBAL_PORT="${MCL_GLOBAL_ETCD##*:}"
if "$here/cluster.sh" up --dir "$work/kc" --nodes 2 --forward "$GLOBAL_PORT" \
    --image "$work/images/mcl-controller.tar" --image "$work/images/mcl-sidecar.tar" \
    --image "$work/images/mcl-example-go.tar" >"$work/kc-up.log" 2>&1; then
  ok "kubelet cluster up: 2 nodes Ready, images imported (cluster.sh, $((SECONDS - start_time)) s since start)"
else
  not_ok "kubelet cluster up" "$(tail -30 "$work/kc-up.log")"; finish
fi
# shellcheck disable=SC1091
source "$work/kc/cluster.env"
kk() { "$KUBECTL" --kubeconfig "$MCL_KCLUSTER_KUBECONFIG" "$@"; }
helm() { timeout 300 "$HELM" --kubeconfig "$MCL_KCLUSTER_KUBECONFIG" "$@"; }

# --- helm install --------------------------------------------------------------------------------
kk create namespace apps >/dev/null
CHART_ARGS=(--namespace mcl-system
  --set clusterName=kcluster
  --set "etcd.endpoints={$MCL_GLOBAL_ETCD}" --set etcd.tls.enabled=false
  --set controller.sessionTTL=$TTL
  --set controller.image.pullPolicy=Never --set "controller.image.digest=$(digest mcl-controller)"
  --set sidecar.image.pullPolicy=Never --set "sidecar.image.digest=$(digest mcl-sidecar)"
  --set 'sidecar.serviceAccounts[0].namespace=apps' --set 'sidecar.serviceAccounts[0].name=default')
t=$SECONDS
require "helm install --wait: 2 controller replicas and the injector ready" \
  helm install mcl "$repo/helm/mcl" --create-namespace --wait --timeout 180s "${CHART_ARGS[@]}"
echo "# helm install took $((SECONDS - t)) s" >&2
check_jq() { local n="$1" json="$2" f="$3" r; r="$(jq -e "$f" <<<"$json" 2>&1)"; if [[ "$r" == true ]]; then ok "$n"; else not_ok "$n" "jq '$f': ${r:0:500}"; fi; }
check_jq "controller: 2 ready replicas, pulled by digest, one active (the election Lease has a holder)" \
  "$( (kk -n mcl-system get deploy mcl-controller -o json; kk -n mcl-system get lease mcl-controller-kcluster -o json) | jq -s .)" \
  '(.[0] | .status.readyReplicas == 2 and (.spec.template.spec.containers[0].image | test("@sha256:[0-9a-f]{64}$")))
      and (.[1].spec.holderIdentity // "" | length > 0)'

# --- an app with the injected sidecar ------------------------------------------------------------
cat >"$work/app.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: example, namespace: apps}
spec:
  replicas: 2
  selector: {matchLabels: {app: example}}
  template:
    metadata:
      labels: {app: example, mcl.dev/inject: "true"}
      annotations: {mcl.dev/lease-duration: "10s"}
    spec:
      terminationGracePeriodSeconds: 20
      containers:
        - name: app
          image: mcl-example-go:0.1.0@$(digest mcl-example-go)
          imagePullPolicy: Never
          env: [{name: MCL_LOCK, value: kubelet-lock}]
          securityContext: {runAsNonRoot: true, runAsUser: 65532, allowPrivilegeEscalation: false,
                            readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
EOF
require "app Deployment (2 replicas, label mcl.dev/inject=true) created" kk apply -f "$work/app.yaml"
require "app pods become ready (sidecar started first, then the app)" \
  kk -n apps rollout status deploy/example --timeout=120s
pods_json() { kk -n apps get pods -l app=example -o json; }
check_jq "each app pod has the injected native sidecar first, unix socket shared through an emptyDir" "$(pods_json)" \
  '[.items[] | .spec as $s | ($s.initContainers[0] | .name == "mcl-sidecar" and .restartPolicy == "Always"
     and (.args | index("--listen=unix:///var/run/mcl/sidecar.sock") != null) and (.args | index("--lease-duration=10s") != null))
    and ($s.containers[0].env | any(.name == "MCL_SIDECAR_ADDR" and .value == "unix:///var/run/mcl/sidecar.sock"))
    and ($s.containers[0].volumeMounts | any(.mountPath == "/var/run/mcl"))
    and ($s.volumes | any(.name == "mcl-sidecar-socket" and .emptyDir != null))] | length == 2 and all'

# Who leads, as each app sees it: from its latest "event state=STATE leader=ID" line, unless its
# campaign ended after it ("resigned, bye", "campaign ended: ...").
last_state() {  # last_state LABEL < log: "LABEL STATE LEADER-ID"
  grep -E 'event state=|resigned, bye|campaign (stream )?ended' | tail -n1 |
    sed -n -e "s/.*state=\([A-Z_]*\) leader=\([^ ]*\).*/$1 \1 \2/p" -e "s/.*\(resigned\|campaign ended\|stream ended\).*/$1 ENDED -/p"
}
app_view() {  # prints "app state leader-identity" per app
  local p
  for p in $(kk -n apps get pods -l app=example -o jsonpath='{.items[*].metadata.name}'); do
    kk -n apps logs "$p" -c app 2>/dev/null | last_state "pod:$p"
  done
  for p in "$work"/proc-*.log; do
    [[ -f "$p" ]] && last_state "$(basename "$p" .log)" <"$p"
  done
}
etcd_holder() { etcdctl --endpoints="$MCL_GLOBAL_ETCD" get "$LOCK_KEY" --print-value-only | jq -r '"\(.cluster)/\(.holder)"'; }
# Exactly one app says LEADER, and etcd's key names that app's identity; prints "cluster/identity".
one_leader() {
  local view leaders h
  view="$(app_view)"
  leaders="$(awk '$2 == "LEADER" {print $3}' <<<"$view")"
  [[ "$(grep -c . <<<"$leaders")" == 1 ]] || { echo "apps that say LEADER: ${leaders:-none}; view: $view"; return 1; }
  h="$(etcd_holder)" || return 1
  [[ "${h#*/}" == "$leaders" ]] || { echo "etcd holder $h, app leader $leaders"; return 1; }
  echo "$h"
}
pod_leads() { [[ "$(one_leader)" == kcluster/* ]]; }
require "exactly one app leads, a pod (its own view and the etcd key agree)" poll 60 pod_leads
first="$(one_leader)"
check_jq "the MultiClusterLease shows the leader in cluster kcluster with a fencing token" \
  "$(kk -n apps get mcl kubelet-lock -o json)" \
  ".status.leader == \"${first#*/}\" and .status.leaderCluster == \"kcluster\" and .status.fencingToken > 0"

# --- candidates in the process-based clusters ----------------------------------------------------
bin="$(cd "$repo" && bazel info -c "$MODE" bazel-bin 2>/dev/null)"
(cd "$repo/client-stubs/go" && CGO_ENABLED=0 go build -trimpath -o "$work/example" ./example) >"$work/go-build.log" 2>&1
declare -A pid_of=() proc_port=()
start_host() {  # start_host NAME COMMAND...: a process of this test, logged to $work/NAME.log
  local name="$1"; shift
  "$@" >>"$work/$name.log" 2>&1 &
  host_pids+=($!)
  pid_of[$name]=$!
}
start_proc_app() {  # the Go example in process cluster $1, on its sidecar's port
  MCL_SIDECAR_ADDR="127.0.0.1:${proc_port[$1]}" MCL_LOCK=kubelet-lock start_host "proc-$1" "$work/example"
}
for i in 0 1; do
  kcv="MCL_CLUSTER_${i}_KUBECONFIG_ADMIN"; kc="${!kcv}"
  "$KUBECTL" --kubeconfig "$kc" create namespace apps >/dev/null
  "$KUBECTL" --kubeconfig "$kc" create namespace mcl-system >/dev/null
  ckv="MCL_CLUSTER_${i}_KUBECONFIG_CONTROLLER"; skv="MCL_CLUSTER_${i}_KUBECONFIG_SIDECAR"
  start_host "ctl-$i" "$bin/controller/mcl-controller" --kubeconfig="${!ckv}" --cluster-name="cluster-$i" \
    --etcd-endpoints="$MCL_GLOBAL_ETCD" --session-ttl=$TTL --namespace=mcl-system --metrics-address=127.0.0.1:0
  proc_port[$i]="$("$repo/testbed/testbed.sh" free-port)"
  start_host "sidecar-$i" "$bin/sidecar/mcl-sidecar" --kubeconfig="${!skv}" --listen="127.0.0.1:${proc_port[$i]}" \
    --namespace=apps --cluster-name="cluster-$i" --identity="proc-$i" --lease-duration=10s
  sleep 0.5
  start_proc_app "$i"
done
both_campaign() {
  local i; for i in 0 1; do grep -q 'event state=' "$work/proc-$i.log" || return 1; done
}
require "the process-based candidates campaign (cluster-0, cluster-1)" poll 60 both_campaign
same_leader() { [[ "$(one_leader)" == "$first" ]]; }
check "with candidates in three clusters, exactly one app leads, still the pod (no preemption)" poll 30 same_leader

# --- helm upgrade rolls the controller -----------------------------------------------------------
start_host keywatch python3 "$here/keywatch.py" record --endpoint "$MCL_GLOBAL_ETCD" --key "$LOCK_KEY" --out "$work/keywatch.txt"
poll 10 test -s "$work/keywatch.txt"
t0="$(python3 "$here/keywatch.py" now)"
old_pods="$(kk -n mcl-system get pods -l app.kubernetes.io/component=controller -o jsonpath='{.items[*].metadata.name}')"
check "helm upgrade --wait rolls the controller (a changed pod annotation)" \
  helm upgrade mcl "$repo/helm/mcl" --wait --timeout 180s "${CHART_ARGS[@]}" --set controller.podAnnotations.rolled=yes
rolled() {
  local now; now="$(kk -n mcl-system get pods -l app.kubernetes.io/component=controller -o jsonpath='{.items[*].metadata.name}')"
  for p in $old_pods; do grep -qw "$p" <<<"$now" && return 1; done
  [[ "$(kk -n mcl-system get deploy mcl-controller -o jsonpath='{.status.readyReplicas}')" == 2 ]]
}
check "both controller pods were replaced; 2 ready again" poll 60 rolled
check "after the rollout exactly one app leads" poll 60 one_leader
t1="$(python3 "$here/keywatch.py" now)"
read -r gap changes <<<"$(python3 "$here/keywatch.py" gaps "$work/keywatch.txt" --since "$t0" --until "$t1")"
# A graceful handoff moves the key in tens of milliseconds (docs/benchmarks.md); 2 s leaves room
# for a loaded machine. The bound that must never be reached is the session TTL (a crash).
check "during the rollout the lock was never holderless for more than a handoff (longest gap ${gap}s, $changes key changes; bound 2s)" \
  python3 -c "import sys; sys.exit(0 if $gap <= 2.0 else 1)"

# --- failover: delete the leading pod ------------------------------------------------------------
# The leader as everyone agrees on it for two seconds (a controller rollout can leave a sidecar
# briefly unconfirmed: its app hears LOST, then LEADER again with the same token).
stable_leader() { local a b; a="$(one_leader)" && sleep 2 && b="$(one_leader)" && [[ "$a" == "$b" ]] && echo "$a"; }
poll 60 stable_leader >/dev/null
leader_now="$(stable_leader)"
if [[ "$leader_now" != kcluster/* ]]; then
  # The rollout handed the lock to another cluster: bring it back to a pod, so that deleting the
  # leading pod means something. The process apps resign (SIGTERM), and campaign again after.
  for i in 0 1; do kill -TERM "${pid_of[proc-$i]}"; wait "${pid_of[proc-$i]}" 2>/dev/null; done
  require "the lock comes back to a pod once the process-based apps resign" poll 60 pod_leads
  for i in 0 1; do start_proc_app "$i"; done
  poll 60 stable_leader >/dev/null
fi
leader_now="$(stable_leader)"
[[ "$leader_now" == kcluster/* ]] || { not_ok "a pod leads before the failover test" "leader: ${leader_now:-none}: $(app_view)"; finish; }
leader_pod="$(sed 's#^kcluster/##; s#_[0-9a-f-]*$##' <<<"$leader_now")"
t0="$(python3 "$here/keywatch.py" now)"
check "delete the leading pod ($leader_pod)" kk -n apps delete pod "$leader_pod" --wait=false
new_leader() { local l; l="$(one_leader)" && [[ "$l" != "$leader_now" ]]; }
check "another app leads after the leader's pod is deleted" poll 60 new_leader
t1="$(python3 "$here/keywatch.py" now)"
read -r gap changes <<<"$(python3 "$here/keywatch.py" gaps "$work/keywatch.txt" --since "$t0" --until "$t1")"
check "the deleted leader handed over gracefully (longest holderless gap ${gap}s; bound 2s)" \
  python3 -c "import sys; sys.exit(0 if $gap <= 2.0 else 1)"
check "the Deployment replaces the deleted pod" kk -n apps rollout status deploy/example --timeout=120s

# --- drain a node --------------------------------------------------------------------------------
node="$(kk -n mcl-system get pods -l app.kubernetes.io/component=controller -o jsonpath='{.items[0].spec.nodeName}')"
t=$SECONDS
check "kubectl drain $node is not blocked by the PodDisruptionBudgets (controller and injector)" \
  kk drain "$node" --ignore-daemonsets --delete-emptydir-data --timeout=150s
echo "# drain took $((SECONDS - t)) s" >&2
check_jq "after the drain: 2 ready controller replicas, none on $node" \
  "$(kk -n mcl-system get pods -l app.kubernetes.io/component=controller -o json)" \
  "[.items[] | select(.status.phase == \"Running\")] | length == 2 and all(.spec.nodeName != \"$node\")"
check "after the drain exactly one app leads" poll 60 one_leader
check "uncordon $node" kk uncordon "$node"

# --- helm uninstall ------------------------------------------------------------------------------
t=$SECONDS
check "helm uninstall (its post-delete hook removes the controller's finalizers)" \
  helm uninstall mcl --namespace mcl-system --wait --timeout 180s
echo "# helm uninstall took $((SECONDS - t)) s" >&2
check_jq "no MultiClusterLease keeps the controller's finalizer" "$(kk get mcl -A -o json)" \
  '[.items[] | select((.metadata.finalizers // []) | index("mcl.dev/release"))] == []'
check "the app namespace (with its lock) deletes without hanging on a finalizer" \
  kk delete namespace apps --timeout=90s
check_jq "no MultiClusterLease left in the kubelet cluster" "$(kk get mcl -A -o json)" '.items == []'
check_jq "no object of the release left (webhook configuration, RBAC, hook)" \
  "$( (kk get mutatingwebhookconfiguration,clusterrole,clusterrolebinding -l app.kubernetes.io/instance=mcl -o json;
       kk -n mcl-system get all,secret,configmap,serviceaccount,role,rolebinding,pdb -l app.kubernetes.io/instance=mcl -o json) | jq -s .)" \
'map(.items) | add == []'

# --- tear-down -----------------------------------------------------------------------------------
echo "# test time before tear-down: $((SECONDS - start_time)) s" >&2
t=$SECONDS
teardown
echo "# tear-down took $((SECONDS - t)) s" >&2
host_state >"$work/host-after"
check "tear-down restored the host (sysctls, links, iptables, mounts, paths, cgroups)" \
  diff "$work/host-before" "$work/host-after"
nothing_left() {  # no process whose command line names the work directory (this script's does not)
  local p; p="$(pgrep -af -- "$work/" | grep -v " pgrep ")"; [[ -z "$p" ]] || { echo "$p"; return 1; }
}
check "nothing of the test is left running" nothing_left
echo "# total $((SECONDS - start_time)) s" >&2
finish
