#!/usr/bin/env bash
# The mcl test bed: a global etcd plus N simulated clusters, each a real etcd and a real
# kube-apiserver, all on 127.0.0.1. Everything it starts is recorded by PID in DIR and stopped by
# `down`; nothing listens on any other address.
#
#   testbed.sh up   --dir DIR [--clusters N] [--etcd-members 1|3] [--owner PID]
#                       start, apply the CRD and RBAC, wait for /readyz; with --owner, a guard
#                       runs `down` when process PID exits, however it exits (even SIGKILL)
#   testbed.sh down --dir DIR                  stop everything started in DIR (by PID)
#   testbed.sh stop  --dir DIR COMPONENT       stop one component (global-etcd[-J], apiserver-I, etcd-I)
#   testbed.sh kill  --dir DIR COMPONENT       SIGKILL it
#   testbed.sh start --dir DIR COMPONENT       start it again, on the same port and data
#   testbed.sh free-port                       print a free 127.0.0.1 port, chosen as `up` chooses
#
# `up` writes DIR/testbed.env (shell syntax, read by tests and scripts):
#   MCL_TESTBED_DIR, MCL_CLUSTERS, MCL_GLOBAL_ETCD (http://127.0.0.1:P, the first member),
#   MCL_GLOBAL_ETCD_MEMBERS, MCL_GLOBAL_ETCD_ENDPOINTS (every member's URL, comma-separated),
#   MCL_GLOBAL_ETCD_J (member J's URL; members are the components global-etcd, global-etcd-1, ...),
#   MCL_CA (the apiservers' CA),
#   and for each cluster I in 0..N-1: MCL_CLUSTER_I_NAME, MCL_CLUSTER_I_APISERVER (https URL),
#   MCL_CLUSTER_I_ETCD, MCL_CLUSTER_I_KUBECONFIG_{ADMIN,SIDECAR,CONTROLLER},
#   MCL_CLUSTER_I_TOKEN_{ADMIN,SIDECAR,CONTROLLER}.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
CRD="$repo/helm/mcl/crds/multiclusterleases.mcl.dev.yaml"
RBAC="$here/rbac.yaml"

die() { echo "testbed: $*" >&2; exit 1; }
usage() { sed -n '2,24p' "$0"; exit 0; }
log() { [[ -n "${MCL_TESTBED_QUIET:-}" ]] || echo "testbed: $*" >&2; }

cmd="${1:-}"; shift || true
dir=""; clusters=2; component=""; owner=""; etcd_members=1
while (($#)); do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --clusters) clusters="$2"; shift 2 ;;
    --owner) owner="$2"; shift 2 ;;
    --etcd-members) etcd_members="$2"; shift 2 ;;
    -h|--help) usage ;;
    -*) die "unknown flag $1 (see --help)" ;;
    *) component="$1"; shift ;;
  esac
done
[[ -n "$cmd" ]] || die "usage: testbed.sh up|down|stop|start --dir DIR [--clusters N], or free-port (see --help)"
case "$cmd" in up|down|stop|kill|start|free-port|guard) ;; -h|--help) usage ;; *) die "unknown command '$cmd': up, down, stop, kill, start or free-port" ;; esac
[[ -n "$dir" || "$cmd" == free-port ]] || die "--dir DIR is required"
[[ "$clusters" =~ ^[1-9][0-9]?$ ]] || die "--clusters must be a number from 1 to 99, got '$clusters'"
[[ "$etcd_members" == 1 || "$etcd_members" == 3 ]] || die "--etcd-members must be 1 or 3, got '$etcd_members'"
[[ -z "$owner" || "$owner" =~ ^[1-9][0-9]*$ ]] || die "--owner must be a process ID, got '$owner'"

find_tool() {  # find_tool NAME ENVVAR: the cached tool from setup.sh, else PATH
  local name="$1" var="$2" path=""
  if [[ -n "${!var:-}" ]]; then path="${!var}"
  elif [[ -f "$CACHE_DIR/tools.env" ]]; then path="$(sed -n "s/^$var=//p" "$CACHE_DIR/tools.env")"; fi
  [[ -n "$path" && -x "$path" ]] || path="$(command -v "$name" || true)"
  [[ -n "$path" ]] || die "$name not found: run ./setup.sh (it installs or builds it)"
  echo "$path"
}

# A free loopback port, chosen at random *below* the kernel's ephemeral range
# (net.ipv4.ip_local_port_range) and checked by binding it. All ports are chosen before the
# components start, and those components open many client connections; a port from the ephemeral
# range (what binding port 0 returns) could meanwhile become the local end of one of them, and the
# component it was meant for would then fail to bind. Ports handed out in this run are remembered
# so two components never get the same one.
declare -A taken=()
free_port() {
  local p
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    p=$(python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(100):
    # Below the ephemeral range when there is room for it; otherwise let the kernel choose.
    port = random.randint(10000, low - 1) if low > 11000 else 0
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print(s.getsockname()[1])
        break
    except OSError:
        pass
    finally:
        s.close()
PY
)
    [[ -n "$p" && -z "${taken[$p]:-}" ]] && { taken[$p]=1; echo "$p"; return; }
  done
  die "could not find a free port on 127.0.0.1"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll a readiness probe, bounded
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
  log "$what ready"
}

# --- components -------------------------------------------------------------------------------

start_etcd() {  # start_etcd NAME CLIENT_PORT PEER_PORT [INITIAL_CLUSTER]
  local name="$1" cport="$2" pport="$3" d="$dir/$1" initial="${4:-$1=http://127.0.0.1:$3}"
  mkdir -p "$d"
  if port_in_use "$cport"; then die "port $cport (for $name) is already in use on 127.0.0.1; stop what holds it or run 'down' first"; fi
  "$ETCD" --name "$name" --data-dir "$d/data" \
    --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "$initial" --initial-cluster-state new \
    --listen-metrics-urls "" --log-level warn \
    >>"$d/etcd.log" 2>&1 &
  echo $! >"$dir/pids/$name"
}

etcd_healthy() { curl -fsS "http://127.0.0.1:$1/health" | grep -q '"health":"true"'; }

start_apiserver() {  # start_apiserver INDEX
  local i="$1" d="$dir/cluster-$1"
  local port="${APISERVER_PORT[$i]}"
  if port_in_use "$port"; then die "port $port (for apiserver-$i) is already in use on 127.0.0.1; stop what holds it or run 'down' first"; fi
  "$KUBE_APISERVER" \
    --etcd-servers "http://127.0.0.1:${ETCD_PORT[$i]}" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --endpoint-reconciler-type none \
    --secure-port "$port" \
    --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" \
    --cert-dir "$d/certs" \
    --client-ca-file "$dir/pki/ca.crt" \
    --token-auth-file "$d/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer "https://kubernetes.default.svc" \
    --service-account-key-file "$dir/pki/sa.pub" \
    --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --disable-admission-plugins ServiceAccount \
    --feature-gates MutatingAdmissionPolicy=true \
    --runtime-config admissionregistration.k8s.io/v1beta1=true \
    --watch-cache=true \
    >>"$d/apiserver.log" 2>&1 &
  echo $! >"$dir/pids/apiserver-$i"
}

apiserver_ready() {
  curl -fsS --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer ${TOKEN_ADMIN[$1]}" \
    "https://127.0.0.1:${APISERVER_PORT[$1]}/readyz" | grep -q ok
}

stop_pid_file() {  # stop_pid_file FILE: SIGTERM, then SIGKILL after 10 s; waits until it is gone
  local f="$1" pid
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    # SIGCONT too: a process paused by a fault test would not act on SIGTERM.
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}

kubeconfig() {  # kubeconfig INDEX USER TOKEN FILE
  local i="$1" user="$2" token="$3" file="$4"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cluster-$i
  cluster:
    server: https://127.0.0.1:${APISERVER_PORT[$i]}
    certificate-authority: $dir/pki/ca.crt
users:
- name: $user
  user:
    token: $token
contexts:
- name: $user@cluster-$i
  context:
    cluster: cluster-$i
    user: $user
    namespace: default
current-context: $user@cluster-$i
EOF
}

pki() {
  local p="$dir/pki"
  mkdir -p "$p"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=mcl-testbed-ca" \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
}

serving_cert() {  # serving_cert DIR: a serving certificate for 127.0.0.1/localhost, signed by the CA
  local d="$1"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$d/apiserver.key" \
    -out "$d/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/apiserver.csr" -CA "$dir/pki/ca.crt" -CAkey "$dir/pki/ca.key" \
    -CAcreateserial -days 30 -extfile "$d/ext.cnf" -out "$d/apiserver.crt" 2>/dev/null
}

random_token() { openssl rand -hex 16; }

# --- state ------------------------------------------------------------------------------------

declare -a APISERVER_PORT ETCD_PORT ETCD_PEER_PORT TOKEN_ADMIN GLOBAL_PORTS GLOBAL_PEER_PORTS
load_env() {
  [[ -f "$dir/testbed.env" ]] || die "$dir/testbed.env not found: run 'testbed.sh up --dir $dir' first"
  # shellcheck disable=SC1091
  source "$dir/testbed.env"
  clusters="$MCL_CLUSTERS"
  for ((i = 0; i < clusters; i++)); do
    local a="MCL_CLUSTER_${i}_APISERVER" e="MCL_CLUSTER_${i}_ETCD" pp="MCL_CLUSTER_${i}_ETCD_PEER" t="MCL_CLUSTER_${i}_TOKEN_ADMIN"
    APISERVER_PORT[$i]="${!a##*:}"; ETCD_PORT[$i]="${!e##*:}"; ETCD_PEER_PORT[$i]="${!pp##*:}"; TOKEN_ADMIN[$i]="${!t}"
  done
  GLOBAL_PORT="${MCL_GLOBAL_ETCD##*:}"; GLOBAL_PEER_PORT="${MCL_GLOBAL_ETCD_PEER##*:}"
  etcd_members="${MCL_GLOBAL_ETCD_MEMBERS:-1}"
  GLOBAL_CLUSTER="${MCL_GLOBAL_ETCD_CLUSTER:-global-etcd=$MCL_GLOBAL_ETCD_PEER}"
  for ((j = 0; j < etcd_members; j++)); do
    local u="MCL_GLOBAL_ETCD_$j" pu="MCL_GLOBAL_ETCD_${j}_PEER"
    GLOBAL_PORTS[$j]="${!u:-$MCL_GLOBAL_ETCD}"; GLOBAL_PORTS[$j]="${GLOBAL_PORTS[$j]##*:}"
    GLOBAL_PEER_PORTS[$j]="${!pu:-$MCL_GLOBAL_ETCD_PEER}"; GLOBAL_PEER_PORTS[$j]="${GLOBAL_PEER_PORTS[$j]##*:}"
  done
}

global_member() { if (($1 == 0)); then echo global-etcd; else echo "global-etcd-$1"; fi; }

# The guard: a process in its own session (so a signal to the owner's process group does not reach
# it) that waits for the owner to exit, for any reason, and then runs `down`. Tests pass their own
# PID (testbed/cc/testbed.cc), so a test killed by `timeout` or SIGKILL never leaves its servers
# running. tail --pid checks the owner every 0.2 s.
start_guard() {
  [[ -n "$owner" ]] || return 0
  kill -0 "$owner" 2>/dev/null || die "--owner $owner is not a running process"
  setsid bash "$0" guard --dir "$dir" --owner "$owner" </dev/null >>"$dir/guard.log" 2>&1 &
}

cmd_guard() {
  [[ -n "$owner" ]] || die "guard needs --owner PID"
  echo $$ >"$dir/guard.pid"
  IN_GUARD=1
  tail --pid="$owner" -s 0.2 -f /dev/null
  log "owner $owner exited: stopping the test bed"
  cmd_down
  rm -f "$dir/guard.pid"
}

stop_guard() {  # the owner stopped the test bed itself: the guard has nothing left to do
  [[ -z "${IN_GUARD:-}" && -f "$dir/guard.pid" ]] || return 0
  kill -TERM -- "-$(cat "$dir/guard.pid")" 2>/dev/null || true
  rm -f "$dir/guard.pid"
}

cmd_down() {
  [[ -d "$dir/pids" ]] || { stop_guard; return 0; }
  local f
  # apiservers first, so they do not log a storm of errors about their etcd going away
  for f in "$dir"/pids/apiserver-*; do [[ -e "$f" ]] && stop_pid_file "$f"; done
  for f in "$dir"/pids/*; do [[ -e "$f" ]] && stop_pid_file "$f"; done
  stop_guard
  log "stopped everything in $dir"
}

cmd_up() {
  ETCD="$(find_tool etcd MCL_ETCD)"
  KUBE_APISERVER="$(find_tool kube-apiserver MCL_KUBE_APISERVER)"
  KUBECTL="$(find_tool kubectl MCL_KUBECTL)"
  command -v openssl >/dev/null || die "openssl not found: apt-get install openssl"
  command -v curl >/dev/null || die "curl not found: apt-get install curl"
  command -v python3 >/dev/null || die "python3 not found: apt-get install python3"

  mkdir -p "$dir/pids"
  dir="$(cd "$dir" && pwd)"
  if compgen -G "$dir/pids/*" >/dev/null; then die "$dir already has running components; run 'down' first"; fi
  start_guard
  # If anything fails half-way, or `up` itself is told to stop, stop what was started.
  trap 'cmd_down' ERR
  trap 'cmd_down; exit 143' TERM INT HUP

  pki
  local j endpoints="" initial=""
  for ((j = 0; j < etcd_members; j++)); do
    GLOBAL_PORTS[$j]=$(free_port); GLOBAL_PEER_PORTS[$j]=$(free_port)
    initial+="${initial:+,}$(global_member "$j")=http://127.0.0.1:${GLOBAL_PEER_PORTS[$j]}"
    endpoints+="${endpoints:+,}http://127.0.0.1:${GLOBAL_PORTS[$j]}"
  done
  GLOBAL_PORT="${GLOBAL_PORTS[0]}"; GLOBAL_PEER_PORT="${GLOBAL_PEER_PORTS[0]}"
  for ((j = 0; j < etcd_members; j++)); do
    start_etcd "$(global_member "$j")" "${GLOBAL_PORTS[$j]}" "${GLOBAL_PEER_PORTS[$j]}" "$initial"
  done

  local env="$dir/testbed.env.tmp"
  {
    echo "MCL_TESTBED_DIR=$dir"
    echo "MCL_CLUSTERS=$clusters"
    echo "MCL_GLOBAL_ETCD=http://127.0.0.1:$GLOBAL_PORT"
    echo "MCL_GLOBAL_ETCD_PEER=http://127.0.0.1:$GLOBAL_PEER_PORT"
    echo "MCL_GLOBAL_ETCD_MEMBERS=$etcd_members"
    echo "MCL_GLOBAL_ETCD_ENDPOINTS=$endpoints"
    echo "MCL_GLOBAL_ETCD_CLUSTER=$initial"
    for ((j = 0; j < etcd_members; j++)); do
      echo "MCL_GLOBAL_ETCD_$j=http://127.0.0.1:${GLOBAL_PORTS[$j]}"
      echo "MCL_GLOBAL_ETCD_${j}_PEER=http://127.0.0.1:${GLOBAL_PEER_PORTS[$j]}"
    done
    echo "MCL_CA=$dir/pki/ca.crt"
    echo "MCL_KUBECTL=$KUBECTL"
  } >"$env"

  for ((i = 0; i < clusters; i++)); do
    local d="$dir/cluster-$i"
    mkdir -p "$d/certs"
    ETCD_PORT[$i]=$(free_port); ETCD_PEER_PORT[$i]=$(free_port); APISERVER_PORT[$i]=$(free_port)
    TOKEN_ADMIN[$i]=$(random_token)
    local tsidecar tcontroller
    tsidecar=$(random_token); tcontroller=$(random_token)
    {
      echo "${TOKEN_ADMIN[$i]},mcl-admin,uid-admin,system:masters"
      echo "$tsidecar,mcl-sidecar,uid-sidecar,mcl:sidecars"
      echo "$tcontroller,mcl-controller,uid-controller,mcl:controllers"
    } >"$d/tokens.csv"
    serving_cert "$d"
    start_etcd "etcd-$i" "${ETCD_PORT[$i]}" "${ETCD_PEER_PORT[$i]}"
    kubeconfig "$i" mcl-admin "${TOKEN_ADMIN[$i]}" "$d/admin.kubeconfig"
    kubeconfig "$i" mcl-sidecar "$tsidecar" "$d/sidecar.kubeconfig"
    kubeconfig "$i" mcl-controller "$tcontroller" "$d/controller.kubeconfig"
    {
      echo "MCL_CLUSTER_${i}_NAME=cluster-$i"
      echo "MCL_CLUSTER_${i}_APISERVER=https://127.0.0.1:${APISERVER_PORT[$i]}"
      echo "MCL_CLUSTER_${i}_ETCD=http://127.0.0.1:${ETCD_PORT[$i]}"
      echo "MCL_CLUSTER_${i}_ETCD_PEER=http://127.0.0.1:${ETCD_PEER_PORT[$i]}"
      echo "MCL_CLUSTER_${i}_KUBECONFIG_ADMIN=$d/admin.kubeconfig"
      echo "MCL_CLUSTER_${i}_KUBECONFIG_SIDECAR=$d/sidecar.kubeconfig"
      echo "MCL_CLUSTER_${i}_KUBECONFIG_CONTROLLER=$d/controller.kubeconfig"
      echo "MCL_CLUSTER_${i}_TOKEN_ADMIN=${TOKEN_ADMIN[$i]}"
      echo "MCL_CLUSTER_${i}_TOKEN_SIDECAR=$tsidecar"
      echo "MCL_CLUSTER_${i}_TOKEN_CONTROLLER=$tcontroller"
    } >>"$env"
  done

  for ((j = 0; j < etcd_members; j++)); do
    local m; m="$(global_member "$j")"
    wait_for 30 "$m (:${GLOBAL_PORTS[$j]})" etcd_healthy "${GLOBAL_PORTS[$j]}" || die "$m did not become healthy; see $dir/$m/etcd.log"
  done
  for ((i = 0; i < clusters; i++)); do
    wait_for 30 "etcd-$i (:${ETCD_PORT[$i]})" etcd_healthy "${ETCD_PORT[$i]}" || die "etcd-$i did not become healthy; see $dir/etcd-$i/etcd.log"
    start_apiserver "$i"
  done
  for ((i = 0; i < clusters; i++)); do
    wait_for 90 "apiserver-$i (:${APISERVER_PORT[$i]})" apiserver_ready "$i" ||
      die "apiserver-$i did not become ready in 90 s; see $dir/cluster-$i/apiserver.log"
  done
  for ((i = 0; i < clusters; i++)); do
    local kc="$dir/cluster-$i/admin.kubeconfig"
    "$KUBECTL" --kubeconfig "$kc" apply -f "$CRD" -f "$RBAC" >/dev/null
    "$KUBECTL" --kubeconfig "$kc" wait --for condition=established --timeout=60s \
      crd/multiclusterleases.mcl.dev >/dev/null
  done
  mv "$env" "$dir/testbed.env"
  trap - ERR TERM INT HUP
  log "up: $clusters cluster(s) and a global etcd; environment in $dir/testbed.env"
}

cmd_stop() {
  load_env
  [[ -n "$component" ]] || die "stop needs a component: global-etcd, etcd-I or apiserver-I"
  [[ -f "$dir/pids/$component" ]] || die "$component is not running (no $dir/pids/$component)"
  stop_pid_file "$dir/pids/$component"
  log "stopped $component"
}

cmd_kill() {  # SIGKILL, for crash tests
  load_env
  [[ -f "$dir/pids/$component" ]] || die "$component is not running (no $dir/pids/$component)"
  kill -KILL "$(cat "$dir/pids/$component")" 2>/dev/null || true
  rm -f "$dir/pids/$component"
  log "killed $component"
}

cmd_start() {
  load_env
  ETCD="$(find_tool etcd MCL_ETCD)"
  KUBE_APISERVER="$(find_tool kube-apiserver MCL_KUBE_APISERVER)"
  [[ ! -f "$dir/pids/$component" ]] || die "$component is already running"
  case "$component" in
    global-etcd|global-etcd-[0-9]*)
      local j=0
      [[ "$component" == global-etcd ]] || j="${component#global-etcd-}"
      ((j < etcd_members)) || die "unknown component '$component': the global etcd has $etcd_members member(s)"
      start_etcd "$component" "${GLOBAL_PORTS[$j]}" "${GLOBAL_PEER_PORTS[$j]}" "$GLOBAL_CLUSTER"
      # A lone restarted member of three is healthy only once it has rejoined a quorum.
      wait_for 30 "$component" etcd_healthy "${GLOBAL_PORTS[$j]}" || die "$component did not come back; see $dir/$component/etcd.log" ;;
    etcd-[0-9]*)
      local i="${component#etcd-}"
      start_etcd "$component" "${ETCD_PORT[$i]}" "${ETCD_PEER_PORT[$i]}"
      wait_for 30 "$component" etcd_healthy "${ETCD_PORT[$i]}" || die "$component did not come back" ;;
    apiserver-[0-9]*)
      local i="${component#apiserver-}"
      start_apiserver "$i"
      wait_for 90 "$component" apiserver_ready "$i" || die "$component did not become ready; see $dir/cluster-$i/apiserver.log" ;;
    *) die "unknown component '$component': global-etcd, etcd-I or apiserver-I" ;;
  esac
}

case "$cmd" in
  up) cmd_up ;;
  down) cmd_down ;;
  stop) cmd_stop ;;
  kill) cmd_kill ;;
  start) cmd_start ;;
  guard) cmd_guard ;;
  free-port) free_port ;;
  *) die "unknown command '$cmd': up, down, stop, kill, start or free-port" ;;
esac
