#!/usr/bin/env bash
# A real Kubernetes cluster on this machine for mcl's tests: its own etcd and kube-apiserver, a
# kube-controller-manager, a kube-scheduler, and NODES kubelets, each on a containerd of its own
# (Debian's containerd and runc, started here with their own config, root, state and socket). All
# built from the same k8s.io/kubernetes pin as the process-based test bed (testbed/kubelet/build-kube.sh).
#
#   cluster.sh up   --dir DIR [--nodes N] [--forward PORT]... [--image ARCHIVE]...
#   cluster.sh import --dir DIR ARCHIVE...     ctr -n k8s.io images import on every node
#   cluster.sh down --dir DIR                  stop everything, restore every host setting
#
# Network: pods sit on a private bridge (mclkbr0, 10.177.77.0/24) with no gateway, no masquerade,
# ip_forward left 0 and no route anywhere but that subnet, so nothing a pod sends can leave the
# machine; an iptables chain drops connections pods open to the host (replies to the host's
# probes and webhook calls pass). Every listener on the host is on 127.0.0.1; pods reach the
# host's 127.0.0.1 services (the apiserver, and each --forward PORT, e.g. the global etcd) through
# testbed/kubelet/netns_relay.py, which listens inside each pod's own loopback. The `kubernetes`
# Service's ClusterIP is 127.77.0.1 (the apiserver's service range is loopback), relayed too, so
# in-cluster clients work unchanged.
#
# Host settings it changes, all undone by `down` (also from a trap if `up` fails half-way): the
# sysctls the kubelet sets (saved first), the bridge, the iptables chain, the mounts containerd and
# the kubelets make, /var/log/containers symlinks, /var/lib/kubelet/device-plugins (a path the
# kubelet does not let us move). One such cluster per machine: /run/mcl-kubelet-testbed names the
# DIR of the running one; `up` cleans up after a previous run that did not get to `down`.
#
# `up` writes DIR/cluster.env: MCL_KCLUSTER_DIR, MCL_KCLUSTER_APISERVER, MCL_KCLUSTER_KUBECONFIG
# (admin), MCL_KCLUSTER_CA, MCL_KCLUSTER_NODES (node names), MCL_KCLUSTER_SERVICE_HOST.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"
OWNER_FILE=/run/mcl-kubelet-testbed
BRIDGE=mclkbr0
POD_SUBNET=10.177.77.0/24
HOST_POD_IP=10.177.77.1
SERVICE_RANGE=127.77.0.0/24
SERVICE_HOST=127.77.0.1
CHAIN=MCL-KUBELET-TESTBED
# Sysctls the kubelet sets at start (pkg/kubelet/cm/container_manager_linux.go), and ip_forward,
# which nothing here may change (checked by `down`).
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
         kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward)

die() { echo "kubelet-testbed: $*" >&2; exit 1; }
log() { [[ -n "${MCL_TESTBED_QUIET:-}" ]] || echo "kubelet-testbed: $*" >&2; }

cmd="${1:-}"; shift || true
dir=""; nodes=2; forwards=(); images=()
while (($#)); do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --forward) forwards+=("$2"); shift 2 ;;
    --image) images+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) die "unknown flag $1 (see --help)" ;;
    *) images+=("$1"); shift ;;
  esac
done
case "$cmd" in up|down|import) ;; *) die "usage: cluster.sh up|import|down --dir DIR (see --help)" ;; esac
[[ -n "$dir" ]] || die "--dir DIR is required"
[[ "$nodes" =~ ^[1-4]$ ]] || die "--nodes must be 1 to 4, got '$nodes'"
[[ $(id -u) -eq 0 ]] || die "needs root (containerd, runc, a bridge, mounts)"

tool() {  # tool NAME: a kube binary from build-kube.sh's cache, or a command on PATH
  case "$1" in
    kubelet|kube-scheduler|kube-controller-manager)
      "$here/build-kube.sh" "$1" 2>/dev/null | tail -n1 ;;
    kube-apiserver)
      local p; p="$(sed -n 's/^MCL_KUBE_APISERVER=//p' "$CACHE_DIR/tools.env" 2>/dev/null)"
      [[ -x "$p" ]] || p="$("$repo/testbed/build-kube-apiserver.sh")"; echo "$p" ;;
    kubectl)
      local p; p="$(sed -n 's/^MCL_KUBECTL=//p' "$CACHE_DIR/tools.env" 2>/dev/null)"
      [[ -x "$p" ]] || p="$(command -v kubectl)"; echo "$p" ;;
    *) command -v "$1" ;;
  esac
}

free_ports() {  # free_ports N: N distinct free 127.0.0.1 ports below the ephemeral range
  python3 - "$1" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
want, got, socks = int(sys.argv[1]), [], []
while len(got) < want:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randint(10000, low - 1)))
    except OSError:
        s.close(); continue
    socks.append(s); got.append(s.getsockname()[1])
print(" ".join(map(str, got)))
PY
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { log "$what: not ready after $1 s"; return 1; }
    sleep 0.2
  done
  log "$what ready"
}

start() {  # start NAME LOG COMMAND...: a background process recorded by PID in DIR/pids/NAME
  local name="$1" logf="$2"; shift 2
  "$@" >>"$logf" 2>&1 &
  echo $! >"$dir/pids/$name"
}

stop_pid() {  # stop_pid FILE [SECONDS]: SIGTERM, SIGKILL after SECONDS (default 10); waits
  local f="$1" secs="${2:-10}" pid
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}

# --- PKI and credentials ---------------------------------------------------------------------

pki() {
  local p="$dir/pki"
  mkdir -p "$p"
  openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=mcl-kubelet-testbed-ca" \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  # apiserver serving: 127.0.0.1 for the host, the Service IP and names for pods.
  cert "$p/apiserver" "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,IP:$SERVICE_HOST,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # apiserver -> kubelet (logs, exec): system:masters, so the kubelets' webhook authz allows it.
  cert "$p/apiserver-kubelet-client" "/CN=kube-apiserver-kubelet-client/O=system:masters" clientAuth ""
}

cert() {  # cert PREFIX SUBJECT EKU SANS
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  { echo "extendedKeyUsage=$3"; [[ -n "$4" ]] && echo "subjectAltName=$4"; } >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$dir/pki/ca.crt" -CAkey "$dir/pki/ca.key" -CAcreateserial \
    -days 7 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}

kubeconfig() {  # kubeconfig USER TOKEN FILE
  cat >"$3" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mcl-kubelet
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $dir/pki/ca.crt
users:
- name: $1
  user:
    token: $2
contexts:
- name: $1
  context: {cluster: mcl-kubelet, user: $1, namespace: default}
current-context: $1
EOF
}

# --- host settings (saved before they change, restored by down) ---------------------------------

save_host_state() {
  local s
  mkdir -p "$dir/host"
  for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$dir/host/sysctls"
  [[ -d /var/lib/kubelet ]] || touch "$dir/host/created-var-lib-kubelet"
  [[ -d /var/lib/kubelet/device-plugins ]] || touch "$dir/host/created-device-plugins"
  [[ -d /var/log/containers ]] || touch "$dir/host/created-var-log-containers"
  [[ -d /var/lib/cni ]] || touch "$dir/host/created-var-lib-cni"
  # The cgroup parents runc creates for the pods' containers (cgroupsPerQOS is off, so the kubelet
  # makes no kubepods tree): removed by `down` only if they did not exist before.
  local c
  for c in /sys/fs/cgroup/*/; do
    [[ -e "${c}k8s.io" ]] || echo "${c}k8s.io"
  done >"$dir/host/created-cgroups"
}

network_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "bridge $BRIDGE exists already: another kubelet test bed, or a leftover ('cluster.sh down --dir ...')"
  ip link add "$BRIDGE" type bridge
  touch "$dir/host/bridge"
  sysctl -qw "net.ipv6.conf.$BRIDGE.disable_ipv6=1"
  ip addr add "$HOST_POD_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Pods may answer the host (kubelet probes, the apiserver's webhook calls) but never open a
  # connection to it: host services listening on 0.0.0.0 stay out of their reach.
  # On a host with no filter table yet (nf_tables backend, nothing loaded), `iptables -N` creates
  # one; tear-down deletes it again, so the host ends as it began.
  iptables-save 2>/dev/null | grep -q '^\*filter$' || touch "$dir/host/iptables-filter-table"
  iptables -w -N "$CHAIN"
  touch "$dir/host/iptables"
  iptables -w -A "$CHAIN" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  iptables -w -A "$CHAIN" -j DROP
  iptables -w -I INPUT -i "$BRIDGE" -j "$CHAIN"

  mkdir -p "$dir/cni/bin" "$dir/cni/net.d" "$dir/cni/ipam" "$dir/cni/cache"
  local p
  for p in bridge host-local loopback; do
    [[ -x "/usr/lib/cni/$p" ]] || die "/usr/lib/cni/$p not found: apt-get install containernetworking-plugins"
    ln -sf "/usr/lib/cni/$p" "$dir/cni/bin/$p"
  done
  install -m 0755 "$here/cni-mcl-relay" "$dir/cni/bin/mcl-relay"
  cat >"$dir/cni/net.d/10-mcl.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "mcl-kubelet",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "isDefaultGateway": false,
     "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$dir/cni/ipam",
              "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$HOST_POD_IP"}]]}},
    {"type": "mcl-relay", "control": "$dir/relay.sock"}
  ]
}
EOF
}

# --- components --------------------------------------------------------------------------------

start_control_plane() {
  local d="$dir/control-plane"
  mkdir -p "$d"
  start etcd "$d/etcd.log" etcd --name kcluster --data-dir "$d/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "kcluster=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" --log-level warn
  wait_for 30 etcd curl -fsS "http://127.0.0.1:$ETCD_PORT/health" || die "etcd did not start; see $d/etcd.log"
  start apiserver "$d/apiserver.log" "$(tool kube-apiserver)" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --endpoint-reconciler-type none \
    --secure-port "$API_PORT" \
    --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" --token-auth-file "$dir/pki/tokens.csv" \
    --kubelet-client-certificate "$dir/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$dir/pki/apiserver-kubelet-client.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-cluster-ip-range "$SERVICE_RANGE" \
    --enable-aggregator-routing=true \
    --feature-gates MutatingAdmissionPolicy=true --runtime-config admissionregistration.k8s.io/v1beta1=true \
    --cert-dir "$d/apiserver-certs"
  wait_for 90 kube-apiserver curl -fsS --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $TOKEN_ADMIN" \
    "https://127.0.0.1:$API_PORT/readyz" || die "kube-apiserver did not become ready; see $d/apiserver.log"
  start kube-controller-manager "$d/kube-controller-manager.log" "$(tool kube-controller-manager)" \
    --kubeconfig "$dir/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --cert-dir "$d/kcm-certs" \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file "$dir/pki/sa.key" --root-ca-file "$dir/pki/ca.crt" \
    --cluster-name mcl-kubelet --controllers '*,-csrsigning,-bootstrapsigner,-tokencleaner'
  start kube-scheduler "$d/kube-scheduler.log" "$(tool kube-scheduler)" \
    --kubeconfig "$dir/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$dir/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$dir/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --leader-elect=false
  wait_for 60 kube-controller-manager curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz" ||
    die "kube-controller-manager did not start; see $d/kube-controller-manager.log"
  wait_for 60 kube-scheduler curl -fsSk "https://127.0.0.1:$SCHED_PORT/healthz" ||
    die "kube-scheduler did not start; see $d/kube-scheduler.log"
}

pause_image() {  # the sandbox ("pause") image, from the pause.c in the kubernetes module
  local out="$CACHE_DIR/kube-$KUBE_VERSION/pause.tar" src
  if [[ ! -f "$out" ]]; then
    src="$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBE_VERSION/build/pause/linux/pause.c"
    [[ -f "$src" ]] || (cd "$CACHE_DIR/kube-$KUBE_VERSION/kubelet-src" && go mod download k8s.io/kubernetes) >/dev/null
    gcc -Os -static -DVERSION=mcl -o "$dir/pause" "$src" || die "could not compile $src"
    python3 "$repo/bazel/images/oci_image.py" --binary "$dir/pause" --name mcl.local/pause --tag 3.10 \
      --dest /pause --out "$out.tmp" >/dev/null || die "could not write the pause image"
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

# import_image SOCKET ARCHIVE: ctr images import, then also name the image by its digest
# (repo@sha256:...), as a pull by digest would: the kubelet asks for repo@digest when a pod gives
# one, and containerd finds images only by the names it has.
import_image() {
  ctr -a "$1" -n k8s.io images import "$2" >/dev/null || die "ctr images import $2 failed"
  local name digest
  name="$(tar -xOf "$2" index.json | jq -r '.manifests[0].annotations["io.containerd.image.name"] // empty')"
  digest="$(tar -xOf "$2" index.json | jq -r '.manifests[0].digest')"
  [[ -n "$name" ]] || return 0
  ctr -a "$1" -n k8s.io images tag --force "$name" "${name%:*}@$digest" >/dev/null ||
    die "ctr images tag $name ${name%:*}@$digest failed"
}

start_node() {  # start_node INDEX
  local i="$1" n="$dir/node-$1" name="${NODE_NAMES[$1]}"
  mkdir -p "$n/containerd" "$n/kubelet" "$n/pod-logs" "$n/runc"
  cat >"$n/containerd/config.toml" <<EOF
version = 2
root = "$n/containerd/root"
state = "$n/containerd/state"
[grpc]
  address = "$n/containerd/containerd.sock"
[ttrpc]
  address = "$n/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$n/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "mcl.local/pause:3.10"
  # This VM withholds CAP_SYS_RESOURCE: without this every sandbox fails ("can't get final
  # child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$n/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$dir/cni/bin"
    conf_dir = "$dir/cni/net.d"
    max_conf_num = 1
EOF
  start "containerd-$i" "$n/containerd.log" containerd --config "$n/containerd/config.toml"
  wait_for 30 "containerd-$i" ctr -a "$n/containerd/containerd.sock" version || die "containerd-$i did not start; see $n/containerd.log"
  local a; for a in "$PAUSE" "${images[@]}"; do import_image "$n/containerd/containerd.sock" "$a"; done
  cat >"$n/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $name
port: ${KUBELET_PORT[$i]}
healthzBindAddress: 127.0.0.1
healthzPort: ${KUBELET_HEALTHZ_PORT[$i]}
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $dir/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
makeIPTablesUtilChains: false
containerRuntimeEndpoint: unix://$n/containerd/containerd.sock
podLogsDir: $n/pod-logs
staticPodPath: ""
resolvConf: ""
clusterDomain: cluster.local
serializeImagePulls: false
# Imported images are not pulled again: never garbage-collect them, never evict for disk space on
# a shared, busy machine.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
nodeStatusReportFrequency: 10s
shutdownGracePeriod: 0s
EOF
  kubeconfig "system:node:$name" "${TOKEN_NODE[$i]}" "$n/kubelet.kubeconfig"
  start "kubelet-$i" "$n/kubelet.log" "$KUBELET" --config "$n/kubelet/config.yaml" \
    --kubeconfig "$n/kubelet.kubeconfig" --hostname-override "$name" \
    --root-dir "$n/kubelet/root" --cert-dir "$n/kubelet/pki" -v 1
}

any_alive() {  # any_alive DIR: whether a process recorded in DIR/pids runs
  local f
  for f in "$1"/pids/*; do [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null && return 0; done
  return 1
}

node_ready() {
  "$KUBECTL" --kubeconfig "$dir/admin.kubeconfig" get node "$1" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

cmd_up() {
  for t in etcd containerd runc ctr iptables nft openssl curl python3 gcc go jq; do
    command -v "$t" >/dev/null || die "$t not found: run ./setup.sh"
  done
  KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
  KUBELET="$(tool kubelet)"; KUBECTL="$(tool kubectl)"
  [[ -x "$KUBELET" && -x "$(tool kube-scheduler)" && -x "$(tool kube-controller-manager)" ]] ||
    die "kubelet, kube-scheduler or kube-controller-manager missing: run ./setup.sh (testbed/kubelet/build-kube.sh)"
  if [[ -f "$OWNER_FILE" ]]; then
    local other; other="$(cat "$OWNER_FILE")"
    if any_alive "$other"; then
      die "a kubelet test bed is running in $other (one per machine); stop it with: $0 down --dir $other"
    fi
    log "cleaning up after an earlier run in $other that did not finish"
    "$0" down --dir "$other" || true
  fi
  mkdir -p "$dir/pids"
  dir="$(cd "$dir" && pwd)"
  compgen -G "$dir/pids/*" >/dev/null && die "$dir already has running components; run 'down' first"
  echo "$dir" >"$OWNER_FILE"
  trap 'log "up failed: tearing down"; cmd_down' ERR EXIT

  read -r ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT <<<"$(free_ports 5)"
  local ports; read -ra ports <<<"$(free_ports $((2 * nodes)))"
  NODE_NAMES=(); KUBELET_PORT=(); KUBELET_HEALTHZ_PORT=(); TOKEN_NODE=()
  TOKEN_ADMIN="$(openssl rand -hex 16)"
  local tkcm tsched i
  tkcm="$(openssl rand -hex 16)"; tsched="$(openssl rand -hex 16)"
  pki
  {
    echo "$TOKEN_ADMIN,mcl-admin,uid-admin,system:masters"
    echo "$tkcm,system:kube-controller-manager,uid-kcm"
    echo "$tsched,system:kube-scheduler,uid-scheduler"
  } >"$dir/pki/tokens.csv"
  for ((i = 0; i < nodes; i++)); do
    # A node's name is its address: the kubelet reports it as the node's InternalIP (which must
    # not come from --node-ip: it refuses loopback there), so the apiserver reaches each kubelet
    # (logs, exec) on the loopback: 127.0.0.1, 127.0.0.2, ...
    NODE_NAMES[$i]="127.0.0.$((i + 1))"
    KUBELET_PORT[$i]="${ports[$((2 * i))]}"; KUBELET_HEALTHZ_PORT[$i]="${ports[$((2 * i + 1))]}"
    TOKEN_NODE[$i]="$(openssl rand -hex 16)"
    echo "${TOKEN_NODE[$i]},system:node:${NODE_NAMES[$i]},uid-node-$i,system:nodes" >>"$dir/pki/tokens.csv"
  done
  kubeconfig mcl-admin "$TOKEN_ADMIN" "$dir/admin.kubeconfig"
  kubeconfig system:kube-controller-manager "$tkcm" "$dir/kube-controller-manager.kubeconfig"
  kubeconfig system:kube-scheduler "$tsched" "$dir/kube-scheduler.kubeconfig"

  save_host_state
  network_up
  local fw=(--forward "$SERVICE_HOST:443=$API_PORT" --forward "127.0.0.1:$API_PORT=$API_PORT")
  local p; for p in "${forwards[@]}"; do fw+=(--forward "127.0.0.1:$p=$p"); done
  start relay "$dir/relay.log" python3 "$here/netns_relay.py" --control "$dir/relay.sock" "${fw[@]}"
  wait_for 10 netns-relay test -S "$dir/relay.sock" || die "netns_relay did not start; see $dir/relay.log"

  start_control_plane
  PAUSE="$(pause_image)"
  for ((i = 0; i < nodes; i++)); do start_node "$i"; done
  for ((i = 0; i < nodes; i++)); do
    wait_for 90 "node ${NODE_NAMES[$i]}" node_ready "${NODE_NAMES[$i]}" ||
      die "node ${NODE_NAMES[$i]} did not become Ready; see $dir/node-$i/kubelet.log"
  done
  # The ServiceAccount "default" appears once the controller-manager's serviceaccount controller
  # has run; pods in a new namespace wait for it, so wait here once.
  wait_for 60 "service accounts" "$KUBECTL" --kubeconfig "$dir/admin.kubeconfig" get serviceaccount default -n default
  {
    echo "MCL_KCLUSTER_DIR=$dir"
    echo "MCL_KCLUSTER_APISERVER=https://127.0.0.1:$API_PORT"
    echo "MCL_KCLUSTER_KUBECONFIG=$dir/admin.kubeconfig"
    echo "MCL_KCLUSTER_CA=$dir/pki/ca.crt"
    echo "MCL_KCLUSTER_TOKEN_ADMIN=$TOKEN_ADMIN"
    echo "MCL_KCLUSTER_NODES=\"${NODE_NAMES[*]}\""
    echo "MCL_KCLUSTER_SERVICE_HOST=$SERVICE_HOST"
    echo "MCL_KCLUSTER_POD_SUBNET=$POD_SUBNET"
  } >"$dir/cluster.env"
  trap - ERR EXIT
  log "up: ${NODE_NAMES[*]} Ready; environment in $dir/cluster.env"
}

cmd_import() {
  local n a
  for n in "$dir"/node-*/; do
    for a in "${images[@]}"; do
      import_image "$n/containerd/containerd.sock" "$a"
    done
  done
}

# --- down: stop everything, restore everything; safe to run twice and after a crash -------------

stop_pods() {  # ask the kubelets to stop every pod, bounded, while the control plane still runs
  [[ -f "$dir/admin.kubeconfig" && -f "$dir/pids/apiserver" ]] || return 0
  local k; k="$(tool kubectl)"
  timeout 20 "$k" --kubeconfig "$dir/admin.kubeconfig" delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1 || true
  local deadline=$((SECONDS + 15)) n
  while ((SECONDS < deadline)); do
    n=0
    for s in "$dir"/node-*/containerd/containerd.sock; do
      [[ -S "$s" ]] || continue
      n=$((n + $(timeout 5 ctr -a "$s" -n k8s.io tasks ls -q 2>/dev/null | wc -l)))
    done
    ((n == 0)) && return 0
    sleep 0.5
  done
}

cmd_down() {
  trap - ERR EXIT
  [[ -d "$dir" ]] || { rm -f "$OWNER_FILE"; return 0; }
  dir="$(cd "$dir" && pwd)"
  set +e
  stop_pods
  local f n
  for f in "$dir"/pids/kubelet-*; do [[ -e "$f" ]] && stop_pid "$f"; done
  # Whatever still runs: runc kills and deletes it (its cgroups go with it).
  for n in "$dir"/node-*/; do
    [[ -d "$n/runc/k8s.io" ]] || continue
    for c in $(runc --root "$n/runc/k8s.io" list -q 2>/dev/null); do
      runc --root "$n/runc/k8s.io" delete --force "$c" >/dev/null 2>&1
    done
  done
  for f in "$dir"/pids/containerd-*; do [[ -e "$f" ]] && stop_pid "$f"; done
  # containerd's shims outlive it by design: stop those of this test bed, by PID.
  local pid
  for pid in $(grep -lsa -- "$dir/node-" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [[ "$pid" == "$$" ]] && continue
    grep -qa containerd-shim "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  for f in kube-scheduler kube-controller-manager apiserver etcd relay; do stop_pid "$dir/pids/$f"; done
  # Mounts (overlay snapshots, shm, netns, kubelet volumes), deepest first.
  awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  # Network: the bridge (its veths went with the pods' namespaces) and the iptables chain.
  if [[ -f "$dir/host/bridge" ]]; then
    for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$v" 2>/dev/null; done
    ip link del "$BRIDGE" 2>/dev/null
    rm -f "$dir/host/bridge"
  fi
  if [[ -f "$dir/host/iptables" ]]; then
    while iptables -w -D INPUT -i "$BRIDGE" -j "$CHAIN" 2>/dev/null; do :; done
    iptables -w -F "$CHAIN" 2>/dev/null; iptables -w -X "$CHAIN" 2>/dev/null
    rm -f "$dir/host/iptables"
  fi
  if [[ -f "$dir/host/iptables-filter-table" ]]; then
    # Deleted only while it holds nothing but the built-in chains with their default policy: a
    # rule someone else added meanwhile stays.
    if ! iptables-save -t filter 2>/dev/null |
      grep -vE '^(#|\*filter$|COMMIT$|:(INPUT|FORWARD|OUTPUT) ACCEPT )' | grep -q .; then
      nft delete table ip filter 2>/dev/null || echo "kubelet-testbed: could not delete the filter table it created (nft missing?)" >&2
    fi
    rm -f "$dir/host/iptables-filter-table"
  fi
  # Sysctls the kubelet set.
  if [[ -f "$dir/host/sysctls" ]]; then
    local kv
    while IFS= read -r kv; do
      [[ "$(sysctl -n "${kv%%=*}")" == "${kv#*=}" ]] || sysctl -qw "$kv" || log "could not restore $kv"
    done <"$dir/host/sysctls"
  fi
  # Paths outside DIR that the kubelet insists on.
  find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -delete 2>/dev/null
  [[ -f "$dir/host/created-var-log-containers" ]] && rmdir /var/log/containers 2>/dev/null
  if [[ -f "$dir/host/created-device-plugins" ]]; then rm -rf /var/lib/kubelet/device-plugins; fi
  [[ -f "$dir/host/created-var-lib-kubelet" ]] && rmdir /var/lib/kubelet 2>/dev/null
  # libcni's result cache (containerd does not let us move it): the entries of this test bed's
  # sandboxes -- its network's, and containerd's own loopback ones, which outlive sandboxes that
  # were deleted under the kubelet rather than by it.
  find /var/lib/cni/results -maxdepth 1 -name 'mcl-kubelet-*' -delete 2>/dev/null
  local sb
  for sb in "$dir"/node-*/containerd/root/io.containerd.grpc.v1.cri/sandboxes/*/; do
    [[ -d "$sb" ]] && rm -f /var/lib/cni/results/*-"$(basename "$sb")"-*
  done
  [[ -f "$dir/host/created-var-lib-cni" ]] && { rmdir /var/lib/cni/results 2>/dev/null; rmdir /var/lib/cni 2>/dev/null; }
  # Cgroup parents created while the test bed ran, and only those (empty once runc deleted its
  # containers: rmdir never removes a cgroup that still has processes).
  if [[ -f "$dir/host/created-cgroups" ]]; then
    local c
    while read -r c; do
      [[ "$c" == /sys/fs/cgroup/*/k8s.io && -d "$c" ]] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
    done <"$dir/host/created-cgroups"
  fi
  [[ "$(cat "$OWNER_FILE" 2>/dev/null)" == "$dir" ]] && rm -f "$OWNER_FILE"
  set -e
  log "down: stopped everything in $dir and restored the host settings"
}

case "$cmd" in
  up) cmd_up ;;
  import) cmd_import ;;
  down) cmd_down ;;
esac
