#!/usr/bin/env bash
# Tests of the mcl Helm chart (helm/mcl): static checks with `helm lint` / `helm template`, then a
# real `helm install` into a one-cluster test bed (real etcd + kube-apiserver on 127.0.0.1, started
# here and stopped on exit), where RBAC is proven with `kubectl auth can-i` and sidecar injection
# with real Pods admitted by the apiserver (pods are stored, never run: there is no kubelet).
#
#   helm/test/helm_test.sh            prints "ok - NAME" / "not ok - NAME" per check, then
#                                     "N passed, N failed"; exits non-zero if any check failed.
#
# Needs what ./setup.sh installs: helm and kubectl (paths in ~/.cache/mcl/tools.env), etcd, a
# kube-apiserver v1.34, jq, python3 with PyYAML. MCL_KEEP_TESTBED=1 leaves the test bed running.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
chart="$repo/helm/mcl"
CACHE_DIR="${MCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcl}"

tool() {  # tool NAME VAR: from the environment, ~/.cache/mcl/tools.env, or PATH
  local name="$1" var="$2" path="${!2:-}"
  [[ -z "$path" && -f "$CACHE_DIR/tools.env" ]] && path="$(sed -n "s/^$var=//p" "$CACHE_DIR/tools.env")"
  [[ -n "$path" && -x "$path" ]] || path="$(command -v "$name" || true)"
  [[ -n "$path" ]] || { echo "helm_test: $name not found: run ./setup.sh" >&2; exit 2; }
  echo "$path"
}
HELM="$(tool helm MCL_HELM)"
KUBECTL_BIN="$(tool kubectl MCL_KUBECTL)"
command -v jq >/dev/null || { echo "helm_test: jq not found: apt-get install jq" >&2; exit 2; }
PY=/usr/bin/python3; [[ -x "$PY" ]] || PY="$(command -v python3)"
"$PY" -c 'import yaml' 2>/dev/null || { echo "helm_test: python3 PyYAML not found: apt-get install python3-yaml" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/mcl-helm-test.XXXXXX")"
tb="$work/testbed"
cleanup() {
  if [[ -z "${MCL_KEEP_TESTBED:-}" && -d "$tb" ]]; then
    MCL_TESTBED_QUIET=1 timeout 60 "$repo/testbed/testbed.sh" down --dir "$tb" >/dev/null 2>&1 || true
  fi
  if [[ -z "${MCL_KEEP_TESTBED:-}" ]]; then rm -rf "$work"
  else echo "helm_test: kept $work (stop the test bed with: testbed/testbed.sh down --dir $tb)" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0; failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() {
  echo "not ok - $1"; failed=$((failed + 1))
  [[ -n "${2:-}" ]] && printf '#   %s\n' "${2:0:2000}" | sed '2,$s/^/#   /' >&2
  return 0
}
# check NAME COMMAND...: ok if the command succeeds (commands are bounded by their own timeouts).
check() {
  local name="$1"; shift
  local out
  if out="$("$@" 2>&1)"; then ok "$name"; else not_ok "$name" "$out"; fi
}
# check_jq NAME JSON FILTER: ok if the jq filter yields true on the JSON.
check_jq() {
  local name="$1" json="$2" filter="$3" r
  r="$(jq -e "$filter" <<<"$json" 2>&1)"
  if [[ "$r" == "true" ]]; then ok "$name"; else not_ok "$name" "jq '$filter' gave: ${r:0:300}"; fi
}
# check_fails NAME PATTERN COMMAND...: ok if the command fails AND its output matches PATTERN.
check_fails() {
  local name="$1" pattern="$2"; shift 2
  local out
  if out="$("$@" 2>&1)"; then not_ok "$name" "expected a failure, command succeeded"; return; fi
  if grep -qE -- "$pattern" <<<"$out"; then ok "$name"; else not_ok "$name" "output did not match /$pattern/: $out"; fi
}

helm() { timeout 120 "$HELM" "$@"; }
yaml2json() { "$PY" "$here/yaml2json.py"; }
# render [HELM TEMPLATE ARGS...]: the chart rendered as a JSON array of objects.
render() { helm template t "$chart" --namespace mcl-system "$@" | yaml2json; }
REQ=(--set clusterName=c0 --set 'etcd.endpoints={https://etcd-0.example:2379,https://etcd-1.example:2379}')
MAP_API=(--api-versions admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy)
obj() {  # obj JSON KIND NAME: one object of a rendered array
  jq -c --arg k "$2" --arg n "$3" '[.[] | select(.kind == $k and .metadata.name == $n)] | first' <<<"$1"
}

# === static: lint and render ======================================================================

check "helm lint --strict (required values set)" helm lint --strict "$chart" "${REQ[@]}"
# (helm lint has no --api-versions, so the injection policy is linted by rendering it below and by
# the live apiserver accepting it.)
check "helm lint --strict with the optional features on" helm lint --strict "$chart" "${REQ[@]}" \
  --set etcd.auth.secretName=a --set 'controller.watchNamespaces={a,b}' \
  --set 'sidecar.serviceAccounts[0].namespace=apps,sidecar.serviceAccounts[0].name=app'

packaged() {
  helm package "$chart" -d "$work/pkg" >/dev/null &&
    tar tzf "$work/pkg/mcl-$(sed -n 's/^version: *//p' "$chart/Chart.yaml").tgz" | grep -qx 'mcl/crds/multiclusterleases.mcl.dev.yaml'
}
check "helm package: the chart packages with the CRD in crds/" packaged
check_fails "missing clusterName fails with a clear message" \
  'clusterName is required: set it to this cluster.s name' \
  helm template t "$chart" --set 'etcd.endpoints={https://e:2379}'
check_fails "missing etcd.endpoints fails with a clear message" \
  'etcd.endpoints is required: the global etcd.s client URLs' \
  helm template t "$chart" --set clusterName=c0
check_fails "clusterName that is not a DNS-1123 label is refused" \
  'clusterName "EU_West" is not a DNS-1123 label' \
  helm template t "$chart" --set clusterName=EU_West --set 'etcd.endpoints={https://e:2379}'
check_fails "http:// etcd endpoint is refused while TLS is on (the default)" \
  'etcd.endpoints: "http://e:2379" is not an https://host:port URL; TLS to etcd is on' \
  helm template t "$chart" --set clusterName=c0 --set 'etcd.endpoints={http://e:2379}'
check_fails "etcd.tls.insecureSkipVerify=true is refused" \
  'etcd.tls.insecureSkipVerify=true is refused: the controller always verifies' \
  helm template t "$chart" "${REQ[@]}" --set etcd.tls.insecureSkipVerify=true
check_fails "a non-loopback sidecar listen address is refused" \
  'sidecar listen address "0.0.0.0:7400" is refused: .*loopback only' \
  helm template t "$chart" "${REQ[@]}" --set sidecar.listen=0.0.0.0:7400
check_fails "injection without the MutatingAdmissionPolicy API fails and says what to do" \
  'injection.enabled=true needs the admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicy API' \
  helm template t "$chart" "${REQ[@]}" --set injection.enabled=true
check_fails "values.schema.json: a misspelt value is refused (clustername)" \
  'Additional property clustername is not allowed' \
  helm template t "$chart" "${REQ[@]}" --set clustername=c1
check_fails "values.schema.json: a value of the wrong type is refused (controller.replicas=two)" \
  'controller.replicas: Invalid type. Expected: integer' \
  helm template t "$chart" "${REQ[@]}" --set controller.replicas=two
check_fails "values.schema.json: injection.failurePolicy must be Fail or Ignore" \
  'injection.failurePolicy must be one of the following: "Fail", "Ignore"' \
  helm template t "$chart" "${REQ[@]}" --set injection.failurePolicy=Maybe
check_fails "a sidecar.serviceAccounts entry without a namespace is refused" \
  'sidecar.serviceAccounts: every entry needs namespace and name' \
  helm template t "$chart" "${REQ[@]}" --set 'sidecar.serviceAccounts[0].name=app'

if d="$(render "${REQ[@]}")" && [[ -n "$d" ]]; then ok "renders with only the required values"; else not_ok "renders with only the required values" "$d"; d="[]"; fi
check_jq "default render: exactly the expected objects (no injection policy by default)" "$d" \
  '[.[] | "\(.kind)/\(.metadata.name)"] | sort == ["ClusterRole/t-mcl-controller","ClusterRole/t-mcl-sidecar",
    "ClusterRoleBinding/t-mcl-controller","Deployment/t-mcl-controller","PodDisruptionBudget/t-mcl-controller",
    "Role/t-mcl-controller-leases","Role/t-mcl-sidecar-heartbeat","RoleBinding/t-mcl-controller-leases",
    "Service/t-mcl-controller-metrics","ServiceAccount/t-mcl-controller"]'

check_jq "release name mcl: the sidecar ClusterRole users bind is named mcl-sidecar" \
  "$(helm template mcl "$chart" "${REQ[@]}" | yaml2json)" \
  '[.[] | select(.kind == "ClusterRole") | .metadata.name] | sort == ["mcl-controller", "mcl-sidecar"]'
dep="$(obj "$d" Deployment t-mcl-controller)"
check_jq "controller: 2 replicas, rolling update keeps a standby (maxUnavailable 0)" "$dep" \
  '.spec.replicas == 2 and .spec.strategy.rollingUpdate.maxUnavailable == 0'
check_jq "controller pod: runAsNonRoot, numeric non-root user, seccomp RuntimeDefault" "$dep" \
  '.spec.template.spec.securityContext | .runAsNonRoot == true and .runAsUser > 0 and .seccompProfile.type == "RuntimeDefault"'
check_jq "controller container: read-only root fs, no privilege escalation, drops ALL capabilities" "$dep" \
  '.spec.template.spec.containers[0].securityContext | .readOnlyRootFilesystem == true and .allowPrivilegeEscalation == false and .capabilities.drop == ["ALL"] and .seccompProfile.type == "RuntimeDefault"'
check_jq "controller container: resource requests and limits" "$dep" \
  '.spec.template.spec.containers[0].resources | (.requests.cpu and .requests.memory and .limits.cpu and .limits.memory) != null'
check_jq "controller container: liveness on /healthz, readiness on /readyz (metrics port)" "$dep" \
  '.spec.template.spec.containers[0] | .livenessProbe.httpGet.path == "/healthz" and .readinessProbe.httpGet.path == "/readyz"
   and .livenessProbe.httpGet.port == "http-metrics" and (.ports[0] | .name == "http-metrics" and .containerPort == 8080)'
check_jq "controller container: POD_NAMESPACE from the downward API" "$dep" \
  '.spec.template.spec.containers[0].env | any(.name == "POD_NAMESPACE" and .valueFrom.fieldRef.fieldPath == "metadata.namespace")'
check_jq "controller args: cluster name, etcd endpoints, TLS CA/cert/key from the mounted secret" "$dep" \
  '.spec.template.spec.containers[0].args as $a | ["--cluster-name=c0",
    "--etcd-endpoints=https://etcd-0.example:2379,https://etcd-1.example:2379", "--key-prefix=/mcl/locks",
    "--session-ttl=10s", "--metrics-address=0.0.0.0:8080", "--etcd-ca=/etc/mcl/etcd-tls/ca.crt",
    "--etcd-cert=/etc/mcl/etcd-tls/tls.crt", "--etcd-key=/etc/mcl/etcd-tls/tls.key"] - $a == []'
check_jq "controller: etcd TLS secret (default name) mounted read-only; no auth unless asked" "$dep" \
  '.spec.template.spec as $s | ($s.volumes | any(.name == "etcd-tls" and .secret.secretName == "t-mcl-etcd-tls"))
   and ($s.containers[0].volumeMounts | any(.name == "etcd-tls" and .readOnly == true))
   and ($s.containers[0].args | any(startswith("--etcd-password-file") or startswith("--etcd-username")) | not)'

da="$(render "${REQ[@]}" --set etcd.auth.secretName=etcd-auth | jq -c '.[] | select(.kind == "Deployment")')"
check_jq "etcd auth: username from the secret by env, password as a mounted file only" "$da" \
  '.spec.template.spec as $s | ($s.containers[0].args | index("--etcd-username=$(MCL_ETCD_USERNAME)") != null
     and index("--etcd-password-file=/etc/mcl/etcd-auth/password") != null)
   and ($s.containers[0].env | any(.name == "MCL_ETCD_USERNAME" and .valueFrom.secretKeyRef.name == "etcd-auth"))
   and ($s.volumes | any(.name == "etcd-auth" and .secret.items == [{"key": "password", "path": "password"}]))'

dp="$(render --set clusterName=c0 --set 'etcd.endpoints={http://127.0.0.1:2379}' --set etcd.tls.enabled=false | jq -c '.[] | select(.kind == "Deployment")')"
check_jq "etcd.tls.enabled=false (explicit) allows http:// and mounts no TLS secret" "$dp" \
  '.spec.template.spec | (.volumes | any(.name == "etcd-tls") | not) and (.containers[0].args | any(startswith("--etcd-ca")) | not)'

check_jq "controller ClusterRole: exactly MCL read/update (finalizers), /status, events" "$(obj "$d" ClusterRole t-mcl-controller)" \
  '.rules == [{"apiGroups":["mcl.dev"],"resources":["multiclusterleases"],"verbs":["get","list","watch","update","patch"]},
    {"apiGroups":["mcl.dev"],"resources":["multiclusterleases/status"],"verbs":["get","update","patch"]},
    {"apiGroups":[""],"resources":["events"],"verbs":["create","patch"]}]'
check_jq "controller Role: leases in its namespace, writes only to its heartbeat and election Leases" "$(obj "$d" Role t-mcl-controller-leases)" \
  '.metadata.namespace == "mcl-system" and (.rules[] | select(.resourceNames) | .resourceNames == ["mcl-heartbeat-c0", "mcl-controller-c0"])
   and ([.rules[] | select(.resources == ["leases"] and (.resourceNames | not)) | .verbs] == [["create"]])'
check_jq "sidecar ClusterRole: MCL spec access, no /status, no delete" "$(obj "$d" ClusterRole t-mcl-sidecar)" \
  '.rules == [{"apiGroups":["mcl.dev"],"resources":["multiclusterleases"],"verbs":["get","list","watch","create","update","patch"]},
    {"apiGroups":[""],"resources":["events"],"verbs":["create","patch"]}]'
check_jq "sidecar heartbeat Role: read-only, only the heartbeat Lease" "$(obj "$d" Role t-mcl-sidecar-heartbeat)" \
  '.rules == [{"apiGroups":["coordination.k8s.io"],"resources":["leases"],"resourceNames":["mcl-heartbeat-c0"],"verbs":["get","list","watch"]}]'
# testbed/rbac.yaml gives the static test identities the rules the components' own tests run with;
# if a component needs more, that file changes first and this check says the chart must follow.
tbr="$(yaml2json <"$repo/testbed/rbac.yaml")"
rules_match() {  # rules_match CHART_ROLE_JSON TESTBED_ROLE_NAME: same non-Lease rules, same Lease verbs
  jq -e --argjson tb "$tbr" --arg n "$2" --argjson leaseRoles "$3" '
    ([$tb[] | select(.kind == "ClusterRole" and .metadata.name == $n) | .rules[]]) as $t
    | ([$t[] | select(.apiGroups != ["coordination.k8s.io"])] == [.rules[] | select(.apiGroups != ["coordination.k8s.io"])])
      and ([$t[] | select(.apiGroups == ["coordination.k8s.io"]) | .verbs[]] | unique) ==
          ([$leaseRoles[] | .rules[] | select(.apiGroups == ["coordination.k8s.io"]) | .verbs[]] | unique)' <<<"$1"
}
check "controller rules match testbed/rbac.yaml mcl-controller (Leases: same verbs, narrowed by name)" \
  rules_match "$(obj "$d" ClusterRole t-mcl-controller)" mcl-controller "[$(obj "$d" Role t-mcl-controller-leases)]"
check "sidecar rules match testbed/rbac.yaml mcl-sidecar (Leases: same verbs, narrowed by name)" \
  rules_match "$(obj "$d" ClusterRole t-mcl-sidecar)" mcl-sidecar "[$(obj "$d" Role t-mcl-sidecar-heartbeat)]"
check_jq "PodDisruptionBudget: at most one controller pod evicted at a time" "$(obj "$d" PodDisruptionBudget t-mcl-controller)" \
  '.spec.maxUnavailable == 1 and .spec.selector.matchLabels["app.kubernetes.io/component"] == "controller"'
check_jq "metrics Service targets the controller's metrics port" "$(obj "$d" Service t-mcl-controller-metrics)" \
  '.spec.ports == [{"name":"http-metrics","port":8080,"targetPort":"http-metrics","protocol":"TCP"}]
   and .spec.selector["app.kubernetes.io/component"] == "controller"'
check_jq "one replica: no PodDisruptionBudget (it would block drains)" "$(render "${REQ[@]}" --set controller.replicas=1)" \
  '[.[] | select(.kind == "PodDisruptionBudget")] == []'

dw="$(render "${REQ[@]}" --set 'controller.watchNamespaces={team-a}')"
check_jq "watchNamespaces with one namespace: controller bound only there, no ClusterRoleBinding" "$dw" \
  '([.[] | select(.kind == "ClusterRoleBinding")] == []) and
   ([.[] | select(.kind == "RoleBinding" and .roleRef.name == "t-mcl-controller") | .metadata.namespace] == ["team-a"]) and
   ((.[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].args) | index("--watch-namespaces=team-a") != null)'
dw="$(render "${REQ[@]}" --set 'controller.watchNamespaces={team-a,team-b}')"
check_jq "watchNamespaces with several: cluster-wide binding (the controller watches all and filters)" "$dw" \
  '([.[] | select(.kind == "ClusterRoleBinding") | .roleRef.name] == ["t-mcl-controller"]) and
   ([.[] | select(.kind == "RoleBinding" and .roleRef.name == "t-mcl-controller")] == []) and
   ((.[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].args) | index("--watch-namespaces=team-a,team-b") != null)'

ds="$(render "${REQ[@]}" --set 'sidecar.serviceAccounts[0].namespace=apps,sidecar.serviceAccounts[0].name=app' \
  --set 'sidecar.serviceAccounts[1].namespace=web,sidecar.serviceAccounts[1].name=front')"
check_jq "sidecar.serviceAccounts: a RoleBinding in each SA's namespace + heartbeat binding" "$ds" \
  '([.[] | select(.kind == "RoleBinding" and .roleRef.kind == "ClusterRole" and .roleRef.name == "t-mcl-sidecar")
     | "\(.metadata.namespace)/\(.subjects[0].name)"] == ["apps/app", "web/front"]) and
   ([.[] | select(.kind == "RoleBinding" and .roleRef.name == "t-mcl-sidecar-heartbeat") | .metadata.namespace] == ["mcl-system"]) and
   ([.[] | select(.kind == "ClusterRoleBinding" and .roleRef.name == "t-mcl-sidecar")] == [])'

di="$(render "${REQ[@]}" --set injection.enabled=true "${MAP_API[@]}")"
check_jq "injection.enabled: MutatingAdmissionPolicy v1beta1 + binding + annotation ValidatingAdmissionPolicy" "$di" \
  '[.[] | select(.kind | test("AdmissionPolicy")) | "\(.apiVersion) \(.kind)"] | sort == [
    "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy", "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding",
    "admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicy", "admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicyBinding"]'
check_jq "injection policy matches only Pod CREATE in labelled namespaces for labelled Pods" "$(obj "$di" MutatingAdmissionPolicy t-mcl-sidecar-injection)" \
  '.spec.matchConstraints | .resourceRules == [{"apiGroups":[""],"apiVersions":["v1"],"operations":["CREATE"],"resources":["pods"]}]
   and .namespaceSelector.matchLabels == {"mcl.dev/injection":"enabled"} and .objectSelector.matchLabels == {"mcl.dev/inject":"true"}'

# The named template, as a user's chart uses it (a copy of _sidecar.tpl in their templates/).
app="$work/app-chart"
cp -r "$here/fixtures/app-chart" "$app" && cp "$chart/templates/_sidecar.tpl" "$app/templates/"
appv="$(helm template a "$app" | yaml2json)"
sc="$(jq -c '.[0].spec.template.spec.initContainers[0]' <<<"${appv:-[]}")"
check_jq "mcl.sidecarContainer: a native sidecar (initContainer, restartPolicy Always) on loopback" "$sc" \
  '.name == "mcl-sidecar" and .restartPolicy == "Always" and .args[0] == "--listen=127.0.0.1:7400"'
check_jq "mcl.sidecarContainer: POD_NAME/POD_NAMESPACE/POD_UID from the downward API" "$sc" \
  '[.env[] | "\(.name)=\(.valueFrom.fieldRef.fieldPath)"] == ["POD_NAME=metadata.name", "POD_NAMESPACE=metadata.namespace", "POD_UID=metadata.uid"]'
check_jq "mcl.sidecarContainer: limits, non-root, read-only, no capabilities" "$sc" \
  '.resources.limits.cpu != null and .resources.limits.memory != null and (.securityContext | .runAsNonRoot == true
   and .readOnlyRootFilesystem == true and .allowPrivilegeEscalation == false and .capabilities.drop == ["ALL"])'
appversion="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$chart/Chart.yaml")"
check_jq "mcl.sidecarContainer default image tag is the chart's appVersion ($appversion)" "$sc" ".image == \"mcl-sidecar:$appversion\""
check_fails "mcl.sidecarContainer refuses a non-loopback listen address" 'must listen on loopback only' \
  helm template a "$app" --set sidecar.listen=10.0.0.1:7400

# === live: a real kube-apiserver =================================================================

if ! out="$(MCL_TESTBED_QUIET=1 timeout 240 "$repo/testbed/testbed.sh" up --dir "$tb" --clusters 1 2>&1)"; then
  not_ok "test bed starts (1 cluster)" "$out"
  echo "$passed passed, $failed failed"; exit 1
fi
ok "test bed starts (1 cluster)"
# shellcheck disable=SC1091
source "$tb/testbed.env"
export KUBECONFIG="$MCL_CLUSTER_0_KUBECONFIG_ADMIN"
kubectl() { timeout 60 "$KUBECTL_BIN" --request-timeout=30s "$@"; }
CLUSTER="$MCL_CLUSTER_0_NAME"
REL=mcl-helmtest     # fullname = the release name; avoids the test bed's own ClusterRole "mcl-sidecar"
NS=mcl-system
# can NAME EXPECT(yes|no) VERB RESOURCE [ARGS...] as SA (ns:name in $AS)
can() {
  local name="$1" want="$2"; shift 2
  local got err
  got="$(kubectl auth can-i "$@" --as="system:serviceaccount:$AS" 2>"$work/can-i.err")"
  err="$(cat "$work/can-i.err")"
  # A warning (e.g. an unknown resource type) would make "no" meaningless: it is a failure.
  if [[ "$got" == "$want" && -z "$err" ]]; then ok "$name"
  else not_ok "$name" "kubectl auth can-i $* as $AS: got '$got' (stderr: '$err'), want '$want'"; fi
}
# poll SECONDS COMMAND...: retry until it succeeds (admission policies take effect a moment after
# they are created).
poll() { local end=$((SECONDS + $1)); shift; until "$@" >/dev/null 2>&1; do ((SECONDS < end)) || return 1; sleep 0.5; done; }

# Helm installs the CRD from crds/: remove the test bed's copy first so the chart's is what is used.
check "the test bed's CRD is removed before the install" kubectl delete crd multiclusterleases.mcl.dev --wait=true --timeout=60s
prepare() {
  kubectl create namespace "$NS" && kubectl create namespace apps && kubectl create namespace other &&
    kubectl create namespace inject && kubectl label namespace inject mcl.dev/injection=enabled &&
    kubectl -n "$NS" create secret generic "$REL-etcd-tls" --from-literal=ca.crt=x --from-literal=tls.crt=x --from-literal=tls.key=x &&
    kubectl -n "$NS" create secret generic etcd-auth --from-literal=username=mcl --from-literal=password=x || return 1
  local sa
  for sa in apps/app-sa apps/unbound-sa inject/app-sa; do kubectl -n "${sa%/*}" create serviceaccount "${sa#*/}" || return 1; done
}
check "namespaces, ServiceAccounts and the etcd secrets exist before the install" prepare

check "helm install into the test bed (injection on)" helm install "$REL" "$chart" --namespace "$NS" \
  --wait=false --timeout 90s \
  --set clusterName="$CLUSTER" --set 'etcd.endpoints={https://127.0.0.1:2379}' --set etcd.auth.secretName=etcd-auth \
  --set injection.enabled=true \
  --set 'sidecar.serviceAccounts[0].namespace=apps,sidecar.serviceAccounts[0].name=app-sa' \
  --set 'sidecar.serviceAccounts[1].namespace=inject,sidecar.serviceAccounts[1].name=app-sa'
check_jq "NOTES.txt warns when etcd TLS is off (helm install --dry-run)" \
  "$(helm install notes-probe "$chart" --namespace "$NS" --dry-run -o json --set clusterName="$CLUSTER" \
       --set 'etcd.endpoints={http://127.0.0.1:2379}' --set etcd.tls.enabled=false 2>&1 || echo '{}')" \
  '.info.notes | contains("WARNING: etcd.tls.enabled=false: the controller talks to etcd in plaintext")'
# Other value combinations: the apiserver accepts every object (server-side dry run compiles the
# policies' CEL and validates the rest).
variant() {
  helm template variant "$chart" --namespace "$NS" --kube-version 1.34.0 "${MAP_API[@]}" --set clusterName="$CLUSTER" "$@" |
    kubectl apply --dry-run=server -f - >/dev/null
}
check "variant accepted: injection with metricsPort=0 (no probes), leaseDuration=30, extraArgs, Ignore" \
  variant --set 'etcd.endpoints={https://127.0.0.1:2379}' --set injection.enabled=true --set sidecar.metricsPort=0 \
  --set sidecar.leaseDuration=30 --set 'sidecar.extraArgs={--request-timeout=3s}' --set injection.failurePolicy=Ignore \
  --set injection.validateAnnotations=false --set 'sidecar.listen=[::1]:7400'
check "variant accepted: watchNamespaces, etcd auth, heartbeat readable namespace-wide, serviceAccounts" \
  variant --set 'etcd.endpoints={https://127.0.0.1:2379}' --set 'controller.watchNamespaces={apps,other}' \
  --set etcd.auth.secretName=etcd-auth --set sidecar.rbac.heartbeatByName=false \
  --set 'sidecar.serviceAccounts[0].namespace=other,sidecar.serviceAccounts[0].name=x'
check "variant accepted: plaintext etcd, 1 replica, no Service, existing ServiceAccount, CA from trust store" \
  variant --set 'etcd.endpoints={http://127.0.0.1:2379}' --set etcd.tls.enabled=false --set controller.replicas=1 \
  --set controller.service.enabled=false --set controller.serviceAccount.create=false --set controller.serviceAccount.name=existing
check "variant accepted: TLS with the system trust store and no client certificate" \
  variant --set 'etcd.endpoints={https://127.0.0.1:2379}' --set etcd.tls.caKey= --set etcd.tls.certKey=
check_jq "the release is deployed" "$(helm status "$REL" -n "$NS" -o json 2>&1 || echo '{}')" '.info.status == "deployed"'
check "the chart's CRD is installed and established" kubectl wait --for condition=established --timeout=60s crd/multiclusterleases.mcl.dev
check_jq "the controller Deployment is stored (2 replicas, its ServiceAccount)" \
  "$(kubectl -n "$NS" get deployment "$REL-controller" -o json 2>&1 || echo '{}')" \
  ".spec.replicas == 2 and .spec.template.spec.serviceAccountName == \"$REL-controller\""
check_jq "PodDisruptionBudget, metrics Service, ServiceAccount are stored" \
  "$(kubectl -n "$NS" get pdb,service,serviceaccount -l app.kubernetes.io/instance=$REL -o json 2>&1 || echo '{}')" \
  '[.items[] | .kind] | sort == ["PodDisruptionBudget", "Service", "ServiceAccount"]'

# --- RBAC, as the apiserver decides it -----------------------------------------------------------
AS="$NS:$REL-controller"
can "controller SA can update multiclusterleases/status" yes update multiclusterleases.mcl.dev --subresource=status -n apps
can "controller SA can update multiclusterleases (finalizers)" yes update multiclusterleases.mcl.dev -n apps
can "controller SA cannot delete multiclusterleases" no delete multiclusterleases.mcl.dev -n apps
can "controller SA cannot create multiclusterleases" no create multiclusterleases.mcl.dev -n apps
can "controller SA cannot read secrets in its own namespace" no get secrets -n "$NS"
can "controller SA cannot list secrets cluster-wide" no list secrets -A
can "controller SA can create events" yes create events -n apps
can "controller SA can update its heartbeat Lease" yes update "leases.coordination.k8s.io/mcl-heartbeat-$CLUSTER" -n "$NS"
can "controller SA can update its election Lease" yes update "leases.coordination.k8s.io/mcl-controller-$CLUSTER" -n "$NS"
can "controller SA cannot update another Lease in its namespace" no update leases.coordination.k8s.io/kube-scheduler -n "$NS"
can "controller SA cannot touch Leases outside its namespace" no create leases.coordination.k8s.io -n kube-system
can "controller SA cannot delete its Leases" no delete "leases.coordination.k8s.io/mcl-heartbeat-$CLUSTER" -n "$NS"

AS="apps:app-sa"
can "bound sidecar SA can update multiclusterleases in its namespace" yes update multiclusterleases.mcl.dev -n apps
can "bound sidecar SA can create and watch multiclusterleases" yes watch multiclusterleases.mcl.dev -n apps
can "bound sidecar SA cannot update multiclusterleases/status" no update multiclusterleases.mcl.dev --subresource=status -n apps
can "bound sidecar SA cannot delete multiclusterleases" no delete multiclusterleases.mcl.dev -n apps
can "bound sidecar SA cannot touch multiclusterleases in another namespace" no update multiclusterleases.mcl.dev -n other
can "bound sidecar SA can read the heartbeat Lease" yes get "leases.coordination.k8s.io/mcl-heartbeat-$CLUSTER" -n "$NS"
can "bound sidecar SA cannot read the controller's election Lease" no get "leases.coordination.k8s.io/mcl-controller-$CLUSTER" -n "$NS"
can "bound sidecar SA cannot write the heartbeat Lease" no update "leases.coordination.k8s.io/mcl-heartbeat-$CLUSTER" -n "$NS"
can "bound sidecar SA cannot read secrets" no get secrets -n apps
AS="apps:unbound-sa"
can "an unbound SA cannot update multiclusterleases" no update multiclusterleases.mcl.dev -n apps

# The same verdicts on real requests: the sidecar SA writes spec but gets 403 on /status.
sidecar_kubectl() { kubectl --as=system:serviceaccount:apps:app-sa -n apps "$@"; }
create_lock() {
  echo '{"apiVersion": "mcl.dev/v1alpha1", "kind": "MultiClusterLease", "metadata": {"name": "lock-a"},
         "spec": {"holderIdentity": "pod-a_uid", "leaseDurationSeconds": 10}}' | sidecar_kubectl create -f -
}
check "sidecar SA creates a MultiClusterLease (real request)" create_lock
check_fails "sidecar SA gets 403 writing /status (real request)" 'forbidden|Forbidden' \
  sidecar_kubectl patch multiclusterlease lock-a --subresource=status --type=merge -p '{"status":{"leader":"pod-a_uid"}}'
# The sidecar's heartbeat informer lists and watches with a metadata.name field selector
# (sidecar/watches.cc), which is what resourceNames-restricted list/watch allows.
hb_url="/apis/coordination.k8s.io/v1/namespaces/$NS/leases"
check "sidecar SA lists the heartbeat Lease by field selector (real request)" \
  kubectl --as=system:serviceaccount:apps:app-sa get --raw "$hb_url?fieldSelector=metadata.name%3Dmcl-heartbeat-$CLUSTER"
check "sidecar SA watches the heartbeat Lease by field selector (real request, 1 s watch)" \
  kubectl --as=system:serviceaccount:apps:app-sa get --raw "$hb_url?fieldSelector=metadata.name%3Dmcl-heartbeat-$CLUSTER&watch=1&timeoutSeconds=1"
check_fails "sidecar SA gets 403 listing all Leases of the release namespace (real request)" 'forbidden|Forbidden' \
  kubectl --as=system:serviceaccount:apps:app-sa get --raw "$hb_url"
check_jq "controller SA writes /status (real request)" \
  "$(kubectl --as="system:serviceaccount:$NS:$REL-controller" -n apps patch multiclusterlease lock-a --subresource=status --type=merge -p '{"status":{"leader":"pod-a_uid","leaderCluster":"'"$CLUSTER"'"}}' -o json 2>&1 || echo '{}')" \
  '.status.leader == "pod-a_uid"'

# --- the real controller, with exactly the chart's permissions ------------------------------------
# The binary runs here (no kubelet), authenticated with a token of the chart's controller
# ServiceAccount, against the test bed's apiserver and global etcd: it must take its election Lease,
# publish its heartbeat and grant a lock, with no request forbidden.
controller_bin="${MCL_CONTROLLER_BIN:-}"
build_controller() {
  [[ -n "$controller_bin" ]] && return 0
  (cd "$repo" && timeout 1800 bazel build //controller:mcl-controller) >"$work/bazel-build.log" 2>&1 || return 1
  controller_bin="$repo/bazel-bin/controller/mcl-controller"
  [[ -x "$controller_bin" ]]
}
# (run directly, not through `check`, whose command substitution would lose the variables)
if build_controller; then ok "mcl-controller binary is available (bazel build //controller:mcl-controller)"
else not_ok "mcl-controller binary is available (bazel build //controller:mcl-controller)" "$(tail -20 "$work/bazel-build.log")"; controller_bin=""; fi
sa_kubeconfig() {  # sa_kubeconfig NS SA FILE: a kubeconfig with a 10-minute token of that ServiceAccount
  local token
  token="$(kubectl -n "$1" create token "$2" --duration=10m)" || return 1
  kubectl config view --raw --minify -o json |
    jq --arg t "$token" --arg u "$1:$2" '.users = [{"name": $u, "user": {"token": $t}}] | .contexts[0].context.user = $u' >"$3"
}
controller_pid=""
start_controller() {
  sa_kubeconfig "$NS" "$REL-controller" "$work/controller.kubeconfig" || return 1
  "$controller_bin" --kubeconfig="$work/controller.kubeconfig" --cluster-name="$CLUSTER" \
    --etcd-endpoints="$MCL_GLOBAL_ETCD" --namespace="$NS" --session-ttl=3s \
    --metrics-address=127.0.0.1:0 >"$work/controller.log" 2>&1 &
  controller_pid=$!
}
stop_controller() {  # SIGTERM (it releases its locks), bounded; then SIGKILL
  [[ -n "$controller_pid" ]] || return 0
  kill -TERM "$controller_pid" 2>/dev/null
  local end=$((SECONDS + 20))
  while kill -0 "$controller_pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.2; done
  kill -KILL "$controller_pid" 2>/dev/null
  wait "$controller_pid" 2>/dev/null
  controller_pid=""
}
trap 'stop_controller; cleanup' EXIT
if [[ -n "$controller_bin" ]] && start_controller; then
  ok "mcl-controller starts as the chart's controller ServiceAccount"
  leases_published() {
    kubectl -n "$NS" get lease "mcl-controller-$CLUSTER" "mcl-heartbeat-$CLUSTER" -o json |
      jq -e '[.items[] | select(.spec.holderIdentity != null or .metadata.annotations["mcl.dev/session"] != null)] | length == 2'
  }
  check "the controller takes its election Lease and publishes its heartbeat Lease (within 30 s)" poll 30 leases_published
  create_lock_b() {
    echo '{"apiVersion": "mcl.dev/v1alpha1", "kind": "MultiClusterLease", "metadata": {"name": "lock-b"},
           "spec": {"holderIdentity": "pod-b_uid", "leaseDurationSeconds": 60}}' | sidecar_kubectl create -f -
  }
  check "sidecar SA campaigns: creates lock-b with itself as holder" create_lock_b
  granted() {
    kubectl -n apps get multiclusterlease lock-b -o json |
      jq -e --arg c "$CLUSTER" '.status.leader == "pod-b_uid" and .status.leaderCluster == $c and .status.fencingToken > 0
        and (.metadata.finalizers | index("mcl.dev/release") != null)'
  }
  check "the controller grants lock-b: status leader, cluster, fencing token, finalizer (within 30 s)" poll 30 granted
  no_forbidden() { ! grep -iE 'forbidden|\b403\b' "$work/controller.log"; }
  check "the controller's log shows no forbidden request" no_forbidden
  stop_controller
else
  not_ok "mcl-controller starts as the chart's controller ServiceAccount" "$(tail -20 "$work/controller.log" 2>/dev/null)"
fi

# --- sidecar injection ---------------------------------------------------------------------------
pod_json() {  # pod_json NS NAME LABELS_JSON ANNOTATIONS_JSON [EXTRA_SPEC_JSON]: a Pod manifest
  jq -nc --arg ns "$1" --arg n "$2" --argjson l "$3" --argjson a "$4" --argjson x "${5:-{\}}" \
    '{apiVersion: "v1", kind: "Pod", metadata: {name: $n, namespace: $ns, labels: $l, annotations: $a},
      spec: ({serviceAccountName: "app-sa", containers: [{name: "app", image: "example.invalid/app:1"}]} + $x)}'
}
injected_dry_run() {  # true once the policy is active: a server-side dry run shows the sidecar
  pod_json inject probe '{"mcl.dev/inject":"true"}' '{}' | kubectl create --dry-run=server -o json -f - |
    jq -e '.spec.initContainers[0].name == "mcl-sidecar"'
}
check "the injection policy takes effect (server-side dry run, within 30 s)" poll 30 injected_dry_run

# A Pod with its own init container, volume and env, and a container that sets the address itself.
p="$(pod_json inject injected '{"mcl.dev/inject":"true"}' '{"mcl.dev/lease-duration":"15s"}' \
  '{"initContainers": [{"name": "migrate", "image": "example.invalid/migrate:1"}],
    "volumes": [{"name": "data", "emptyDir": {}}],
    "containers": [{"name": "app", "image": "example.invalid/app:1", "env": [{"name": "FOO", "value": "bar"}]},
                   {"name": "tool", "image": "example.invalid/tool:1", "env": [{"name": "MCL_SIDECAR_ADDR", "value": "[::1]:9000"}]}]}' |
  kubectl create -o json -f - 2>&1 || echo '{}')"
check_jq "labelled Pod: sidecar is the first initContainer, a native sidecar (restartPolicy Always)" "$p" \
  '[.spec.initContainers[].name] == ["mcl-sidecar", "migrate"] and .spec.initContainers[0].restartPolicy == "Always"'
check_jq "labelled Pod: sidecar listens on loopback only (--listen=127.0.0.1:7400)" "$p" \
  '.spec.initContainers[0].args | index("--listen=127.0.0.1:7400") != null and (map(select(startswith("--listen="))) | length == 1)'
check_jq "labelled Pod: POD_NAME, POD_NAMESPACE, POD_UID from the downward API" "$p" \
  '[.spec.initContainers[0].env[] | "\(.name)=\(.valueFrom.fieldRef.fieldPath)"] == ["POD_NAME=metadata.name", "POD_NAMESPACE=metadata.namespace", "POD_UID=metadata.uid"]'
check_jq "labelled Pod: annotation mcl.dev/lease-duration=15s becomes --lease-duration=15s" "$p" \
  '.spec.initContainers[0].args | index("--lease-duration=15s") != null'
check_jq "labelled Pod: the sidecar is told the cluster name (--cluster-name=$CLUSTER)" "$p" \
  ".spec.initContainers[0].args | index(\"--cluster-name=$CLUSTER\") != null"
check_jq "labelled Pod: sidecar resource limits and restricted security context" "$p" \
  '.spec.initContainers[0] | .resources.limits == {"cpu": "200m", "memory": "64Mi"} and (.securityContext | .runAsNonRoot == true
   and .readOnlyRootFilesystem == true and .allowPrivilegeEscalation == false and .capabilities.drop == ["ALL"] and .seccompProfile.type == "RuntimeDefault")'
check_jq "labelled Pod: sidecar gets its own projected service-account token" "$p" \
  '(.spec.volumes | any(.name == "mcl-sidecar-kube-api-access" and (.projected.sources | any(.serviceAccountToken.path == "token"))))
   and (.spec.initContainers[0].volumeMounts == [{"name": "mcl-sidecar-kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}])'
check_jq "labelled Pod: app containers get MCL_SIDECAR_ADDR=127.0.0.1:7400 unless they set it" "$p" \
  '[.spec.containers[] | {(.name): .env}] == [{"app": [{"name": "FOO", "value": "bar"}, {"name": "MCL_SIDECAR_ADDR", "value": "127.0.0.1:7400"}]},
    {"tool": [{"name": "MCL_SIDECAR_ADDR", "value": "[::1]:9000"}]}]'
check_jq "labelled Pod: its own volumes are kept, the token volume is added after them" "$p" \
  '[.spec.volumes[].name] == ["data", "mcl-sidecar-kube-api-access"]'

u="$(pod_json inject unlabelled '{}' '{}' | kubectl create -o json -f - 2>&1 || echo '{"spec":{"initContainers":"error"}}')"
check_jq "unlabelled Pod in an injection namespace is untouched" "$u" \
  '.metadata.name == "unlabelled" and .spec.initContainers == null and .spec.volumes == null and .spec.containers[0].env == null'
o="$(pod_json apps not-opted-in '{"mcl.dev/inject":"true"}' '{}' | kubectl create -o json -f - 2>&1 || echo '{"spec":{"initContainers":"error"}}')"
check_jq "labelled Pod in a namespace without the injection label is untouched" "$o" \
  '.metadata.name == "not-opted-in" and .spec.initContainers == null and .spec.containers[0].env == null'
pod_json inject bad-annotation '{"mcl.dev/inject":"true"}' '{"mcl.dev/lease-duration":"soon"}' >"$work/bad-annotation.json"
check_fails "a malformed mcl.dev/lease-duration annotation is rejected with a clear message" \
  'annotation mcl.dev/lease-duration=soon is not a lease duration from 2s to 3600s' kubectl create -f "$work/bad-annotation.json"
pod_json inject long-lease '{"mcl.dev/inject":"true"}' '{"mcl.dev/lease-duration":"2h"}' >"$work/long-lease.json"
check_fails "an out-of-range mcl.dev/lease-duration (2h > 3600s) is rejected" \
  'annotation mcl.dev/lease-duration=2h is not a lease duration from 2s to 3600s' kubectl create -f "$work/long-lease.json"
secs="$(pod_json inject whole-seconds '{"mcl.dev/inject":"true"}' '{"mcl.dev/lease-duration":"30"}' | kubectl create -o json -f - 2>&1 || echo '{}')"
check_jq "mcl.dev/lease-duration in whole seconds (30) is accepted and passed on" "$secs" \
  '.spec.initContainers[0].args | index("--lease-duration=30") != null'
own="$(pod_json inject has-own '{"mcl.dev/inject":"true"}' '{}' \
  '{"initContainers":[{"name":"mcl-sidecar","image":"example.invalid/mcl-sidecar:custom","restartPolicy":"Always"}]}' |
  kubectl create -o json -f - 2>&1 || echo '{}')"
check_jq "a Pod that already has an mcl-sidecar container is not injected twice" "$own" \
  '[.spec.initContainers[].name] == ["mcl-sidecar"] and .spec.initContainers[0].image == "example.invalid/mcl-sidecar:custom" and .spec.volumes == null'

# The named template and the policy add the same container.
check "app chart with mcl.sidecarContainer installs (helm install)" helm install app "$app" --namespace apps --wait=false --timeout 60s \
  --set sidecar.clusterName="$CLUSTER"
dflt="$(pod_json inject defaults '{"mcl.dev/inject":"true"}' '{}' | kubectl create -o json -f - 2>&1 || echo '{}')"
tmpl="$(kubectl -n apps get deployment app -o json 2>&1 || echo '{}')"
same() { jq -c '.spec.initContainers[0] // .spec.template.spec.initContainers[0] | del(.volumeMounts)'; }
if [[ "$(same <<<"$dflt")" == "$(same <<<"$tmpl")" && "$(same <<<"$dflt")" != "null" ]]; then
  ok "mcl.sidecarContainer renders the same container as the injection policy (stored objects)"
else
  not_ok "mcl.sidecarContainer renders the same container as the injection policy (stored objects)" \
    "policy: $(same <<<"$dflt") template: $(same <<<"$tmpl")"
fi

# helm upgrade changes what new Pods get.
check "helm upgrade --set sidecar.listen=127.0.0.1:7500 --set sidecar.leaseDuration=20s" \
  helm upgrade "$REL" "$chart" --namespace "$NS" --reuse-values --wait=false --timeout 90s \
  --set sidecar.listen=127.0.0.1:7500 --set sidecar.leaseDuration=20s
upgraded() {
  pod_json inject probe '{"mcl.dev/inject":"true"}' '{}' | kubectl create --dry-run=server -o json -f - |
    jq -e '(.spec.initContainers[0].args | index("--listen=127.0.0.1:7500") != null and index("--lease-duration=20s") != null)
      and .spec.containers[0].env == [{"name": "MCL_SIDECAR_ADDR", "value": "127.0.0.1:7500"}]'
}
check "after the upgrade new Pods get the new listen address and default lease duration" poll 30 upgraded

# --- uninstall ----------------------------------------------------------------------------------
check "helm uninstall" helm uninstall "$REL" --namespace "$NS" --wait --timeout 90s
check_jq "uninstall removed the release's namespaced objects" \
  "$(kubectl -n "$NS" get deployment,pdb,service,serviceaccount,role,rolebinding -l app.kubernetes.io/instance=$REL -o json 2>&1 || echo '{}')" \
  '.items == []'
check_jq "uninstall removed the ClusterRoles, bindings and admission policies" \
  "$(kubectl get clusterrole,clusterrolebinding,mutatingadmissionpolicy,mutatingadmissionpolicybinding,validatingadmissionpolicy,validatingadmissionpolicybinding -l app.kubernetes.io/instance=$REL -o json 2>&1 || echo '{}')" \
  '.items == []'
check_jq "uninstall removed the sidecar RoleBindings in the users' namespaces" \
  "$(kubectl get rolebinding -A -l app.kubernetes.io/instance=$REL -o json 2>&1 || echo '{}')" '.items == []'
not_injected() {
  pod_json inject probe '{"mcl.dev/inject":"true"}' '{}' | kubectl create --dry-run=server -o json -f - |
    jq -e '.spec.initContainers == null'
}
check "after uninstall labelled Pods are no longer injected (within 30 s)" poll 30 not_injected
check_jq "the CRD and the locks survive uninstall (Helm never deletes crds/)" \
  "$(kubectl -n apps get multiclusterlease lock-a -o json 2>&1 || echo '{}')" '.spec.holderIdentity == "pod-a_uid"'
check "helm uninstall of the app chart" helm uninstall app --namespace apps --wait --timeout 60s

echo "$passed passed, $failed failed"
((failed == 0))
