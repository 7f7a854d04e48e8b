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
    tar tzf "$work/pkg/mcl-$(sed -n 's/^version: *//p' "$chart/Chart.yaml").tgz" | grep -x 'mcl/crds/multiclusterleases.mcl.dev.yaml' >/dev/null
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
check_fails "a unix socket outside a directory is refused (it needs a volume of its own)" \
  'sidecar listen address "unix:///sidecar.sock" is refused' \
  helm template t "$chart" "${REQ[@]}" --set sidecar.listen=unix:///sidecar.sock
check_fails "injection.mode=policy without the MutatingAdmissionPolicy API fails and says what to do" \
  'injection.mode=policy needs the admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicy API' \
  helm template t "$chart" "${REQ[@]}" --set injection.mode=policy
check_fails "cert-manager certificates without cert-manager fail and say what to do" \
  'injection.webhook.certificate.source=cert-manager needs cert-manager' \
  helm template t "$chart" "${REQ[@]}" --set injection.webhook.certificate.source=cert-manager
check_fails "a ServiceMonitor without the Prometheus Operator fails and says what to do" \
  'monitoring.serviceMonitor.enabled=true needs the Prometheus Operator' \
  helm template t "$chart" "${REQ[@]}" --set monitoring.serviceMonitor.enabled=true
# Values that cannot work: images without a usable reference, leases and grace periods too short.
check_fails "an image repository with a tag in it is refused, saying where the tag goes" \
  'controller.image.repository "registry.example/mcl-controller:latest" contains a tag or digest: set the repository alone and the rest in controller.image.tag or controller.image.digest' \
  helm template t "$chart" "${REQ[@]}" --set controller.image.repository=registry.example/mcl-controller:latest
check_fails "an image digest that is not sha256:<64 hex> is refused" \
  'sidecar.image.digest "sha256:abc" is not a digest: give sha256:<64 hex digits>' \
  helm template t "$chart" "${REQ[@]}" --set sidecar.image.digest=sha256:abc
check_fails "an image tag with a slash is refused" 'controller.image.tag "v1/x" is not an image tag' \
  helm template t "$chart" "${REQ[@]}" --set controller.image.tag=v1/x
noappversion="$work/chart-without-appversion"
cp -r "$chart" "$noappversion" && sed -i '/^appVersion:/d' "$noappversion/Chart.yaml"
check_fails "an image without a tag or digest (and no appVersion to default to) is refused" \
  'controller.image has neither a tag nor a digest, and the chart has no appVersion to default to: set controller.image.tag or controller.image.digest' \
  helm template t "$noappversion" "${REQ[@]}"
check_fails "controller.sessionTTL under 1s is refused with what to set" \
  'controller.sessionTTL "500ms" is shorter than 1s.*Set it to 1s or more' \
  helm template t "$chart" "${REQ[@]}" --set controller.sessionTTL=500ms
check_fails "controller.sessionTTL over 1h is refused with what to set" \
  'controller.sessionTTL "2h" is longer than 1h.*Set it to 1h or less' \
  helm template t "$chart" "${REQ[@]}" --set controller.sessionTTL=2h
check_fails "an election lease shorter than two renewal periods plus a request (under 3s) is refused" \
  'controller.electionLeaseDuration "2s" is shorter than 3s: the active replica renews it every third of its duration' \
  helm template t "$chart" "${REQ[@]}" --set controller.electionLeaseDuration=2s
check_fails "a termination grace period shorter than the controller's handover is refused" \
  'controller.terminationGracePeriodSeconds=12 is too short: a stopping controller needs up to 10.25s.*Set it to at least 16' \
  helm template t "$chart" "${REQ[@]}" --set controller.terminationGracePeriodSeconds=12
check_fails "an explicit shutdownTimeout counts instead of the TTL" \
  'controller.terminationGracePeriodSeconds=30 is too short: a stopping controller needs up to 40.00s' \
  helm template t "$chart" "${REQ[@]}" --set controller.shutdownTimeout=40s
check_fails "a sidecar lease under 2s is refused" 'sidecar.leaseDuration "1s"' \
  helm template t "$chart" "${REQ[@]}" --set sidecar.leaseDuration=1s
check_fails "a socket mode that is not octal is refused" 'sidecar.socketMode "rw" is not an octal mode' \
  helm template t "$chart" "${REQ[@]}" --set sidecar.socketMode=rw
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
check_jq "default render: exactly the expected objects (webhook injection, uninstall hook, no policy, no monitoring)" "$d" \
  '[.[] | "\(.kind)/\(.metadata.name)"] | sort == ["ClusterRole/t-mcl-controller","ClusterRole/t-mcl-sidecar",
    "ClusterRole/t-mcl-uninstall","ClusterRoleBinding/t-mcl-controller","ClusterRoleBinding/t-mcl-uninstall",
    "ConfigMap/t-mcl-injector","Deployment/t-mcl-controller","Deployment/t-mcl-injector","Job/t-mcl-uninstall",
    "MutatingWebhookConfiguration/t-mcl-sidecar-injection","PodDisruptionBudget/t-mcl-controller",
    "PodDisruptionBudget/t-mcl-injector","Role/t-mcl-controller-leases","Role/t-mcl-sidecar-heartbeat",
    "Role/t-mcl-uninstall","RoleBinding/t-mcl-controller-leases","RoleBinding/t-mcl-uninstall",
    "Secret/t-mcl-injector-tls","Service/t-mcl-controller-metrics","Service/t-mcl-injector",
    "ServiceAccount/t-mcl-controller","ServiceAccount/t-mcl-injector","ServiceAccount/t-mcl-uninstall"]'

check_jq "release name mcl: the sidecar ClusterRole users bind is named mcl-sidecar" \
  "$(helm template mcl "$chart" "${REQ[@]}" | yaml2json)" \
  '[.[] | select(.kind == "ClusterRole") | .metadata.name] | sort == ["mcl-controller", "mcl-sidecar", "mcl-uninstall"]'
dep="$(obj "$d" Deployment t-mcl-controller)"
check_jq "controller: 2 replicas, rolling update keeps a standby (maxSurge 1, maxUnavailable 0)" "$dep" \
  '.spec.replicas == 2 and .spec.strategy.rollingUpdate.maxUnavailable == 0 and .spec.strategy.rollingUpdate.maxSurge == 1'
check_jq "controller pod: runAsNonRoot, numeric non-root user, seccomp RuntimeDefault" "$dep" \
  '.spec.template.spec.securityContext | .runAsNonRoot == true and .runAsUser > 0 and .seccompProfile.type == "RuntimeDefault"'
check_jq "controller container: read-only root fs, no privilege escalation, drops ALL capabilities" "$dep" \
  '.spec.template.spec.containers[0].securityContext | .readOnlyRootFilesystem == true and .allowPrivilegeEscalation == false and .capabilities.drop == ["ALL"] and .seccompProfile.type == "RuntimeDefault"'
check_jq "controller container: resource requests and limits" "$dep" \
  '.spec.template.spec.containers[0].resources | (.requests.cpu and .requests.memory and .limits.cpu and .limits.memory) != null'
check_jq "controller: image is repository:appVersion; the etcd-credentials checksum annotation is there" "$dep" \
  '.spec.template.spec.containers[0].image == "mcl-controller:0.1.0" and .spec.template.metadata.annotations["checksum/etcd-credentials"] == "none"'
dd="$(render "${REQ[@]}" --set controller.image.repository=registry.example/mcl/mcl-controller \
  --set controller.image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \
  --set sidecar.image.tag=1.2.3 --set sidecar.image.digest=sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210)"
check_jq "images by tag and digest: controller, injector and hook use repo:tag@digest; the injected sidecar too" "$dd" \
  '([.[] | select(.kind == "Deployment" or .kind == "Job") | .spec.template.spec.containers[0].image] | unique ==
     ["registry.example/mcl/mcl-controller:0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"])
   and ((.[] | select(.kind == "ConfigMap") | .data["config.json"] | fromjson | .sidecar.image) ==
     "mcl-sidecar:1.2.3@sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210")'
check_jq "controller args: election lease, shutdown timeout and the metrics host when set" \
  "$(render "${REQ[@]}" --set controller.electionLeaseDuration=6s --set controller.shutdownTimeout=12s --set 'controller.metricsHost=[::]' |
     jq -c '.[] | select(.kind == "Deployment" and .metadata.name == "t-mcl-controller")')" \
  '.spec.template.spec.containers[0].args as $a | ["--election-lease-duration=6s", "--shutdown-timeout=12s",
    "--metrics-address=[::]:8080"] - $a == []'
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

controller_of() { jq -c '.[] | select(.kind == "Deployment" and .metadata.name == "t-mcl-controller")'; }
da="$(render "${REQ[@]}" --set etcd.auth.secretName=etcd-auth | controller_of)"
check_jq "etcd auth: username from the secret by env, password as a mounted file only" "$da" \
  '.spec.template.spec as $s | ($s.containers[0].args | index("--etcd-username=$(MCL_ETCD_USERNAME)") != null
     and index("--etcd-password-file=/etc/mcl/etcd-auth/password") != null)
   and ($s.containers[0].env | any(.name == "MCL_ETCD_USERNAME" and .valueFrom.secretKeyRef.name == "etcd-auth"))
   and ($s.volumes | any(.name == "etcd-auth" and .secret.items == [{"key": "password", "path": "password"}]))'

dp="$(render --set clusterName=c0 --set 'etcd.endpoints={http://127.0.0.1:2379}' --set etcd.tls.enabled=false | controller_of)"
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
check_jq "PodDisruptionBudget: at most one controller pod evicted at a time; unready ones always evictable" "$(obj "$d" PodDisruptionBudget t-mcl-controller)" \
  '.spec.maxUnavailable == 1 and .spec.unhealthyPodEvictionPolicy == "AlwaysAllow" and .spec.selector.matchLabels["app.kubernetes.io/component"] == "controller"'
check_jq "metrics Service targets the controller's metrics port" "$(obj "$d" Service t-mcl-controller-metrics)" \
  '.spec.ports == [{"name":"http-metrics","port":8080,"targetPort":"http-metrics","protocol":"TCP"}]
   and .spec.selector["app.kubernetes.io/component"] == "controller"'
check_jq "one controller replica: no controller PodDisruptionBudget (it would block drains)" "$(render "${REQ[@]}" --set controller.replicas=1)" \
  '[.[] | select(.kind == "PodDisruptionBudget") | .metadata.name] == ["t-mcl-injector"]'

dw="$(render "${REQ[@]}" --set 'controller.watchNamespaces={team-a}')"
check_jq "watchNamespaces with one namespace: controller bound only there, no ClusterRoleBinding" "$dw" \
  '([.[] | select(.kind == "ClusterRoleBinding" and .roleRef.name == "t-mcl-controller")] == []) and
   ([.[] | select(.kind == "RoleBinding" and .roleRef.name == "t-mcl-controller") | .metadata.namespace] == ["team-a"]) and
   ((.[] | select(.kind == "Deployment" and .metadata.name == "t-mcl-controller") | .spec.template.spec.containers[0].args) | index("--watch-namespaces=team-a") != null)'
dw="$(render "${REQ[@]}" --set 'controller.watchNamespaces={team-a,team-b}')"
check_jq "watchNamespaces with several: cluster-wide binding (the controller watches all and filters)" "$dw" \
  '([.[] | select(.kind == "ClusterRoleBinding" and .roleRef.name != "t-mcl-uninstall") | .roleRef.name] == ["t-mcl-controller"]) and
   ([.[] | select(.kind == "RoleBinding" and .roleRef.name == "t-mcl-controller")] == []) and
   ((.[] | select(.kind == "Deployment" and .metadata.name == "t-mcl-controller") | .spec.template.spec.containers[0].args) | index("--watch-namespaces=team-a,team-b") != null)'

ds="$(render "${REQ[@]}" --set 'sidecar.serviceAccounts[0].namespace=apps,sidecar.serviceAccounts[0].name=app' \
  --set 'sidecar.serviceAccounts[1].namespace=web,sidecar.serviceAccounts[1].name=front')"
check_jq "sidecar.serviceAccounts: a RoleBinding in each SA's namespace + heartbeat binding" "$ds" \
  '([.[] | select(.kind == "RoleBinding" and .roleRef.kind == "ClusterRole" and .roleRef.name == "t-mcl-sidecar")
     | "\(.metadata.namespace)/\(.subjects[0].name)"] == ["apps/app", "web/front"]) and
   ([.[] | select(.kind == "RoleBinding" and .roleRef.name == "t-mcl-sidecar-heartbeat") | .metadata.namespace] == ["mcl-system"]) and
   ([.[] | select(.kind == "ClusterRoleBinding" and .roleRef.name == "t-mcl-sidecar")] == [])'

# --- injection, webhook mode (the default) ---
wh="$(obj "$d" MutatingWebhookConfiguration t-mcl-sidecar-injection)"
check_jq "webhook: Pod CREATE only, opt-in by one Pod label, release and system namespaces excluded" "$wh" \
  '.webhooks[0] | .rules == [{"apiGroups":[""],"apiVersions":["v1"],"operations":["CREATE"],"resources":["pods"],"scope":"Namespaced"}]
   and .objectSelector == {"matchLabels": {"mcl.dev/inject": "true"}}
   and .namespaceSelector.matchExpressions == [
     {"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","kube-node-lease"]},
     {"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["mcl-system"]}]'
check_jq "webhook: failurePolicy Fail, no side effects, v1 reviews, 5 s timeout, reinvoked after other webhooks" "$wh" \
  '.webhooks[0] | .failurePolicy == "Fail" and .sideEffects == "None" and .admissionReviewVersions == ["v1"]
   and .timeoutSeconds == 5 and .reinvocationPolicy == "IfNeeded"'
check_jq "webhook: calls the injector Service's /mutate, trusting the CA of the generated Secret" \
  "$(jq -c --argjson s "$(obj "$d" Secret t-mcl-injector-tls)" '[., $s]' <<<"$wh")" \
  '.[0].webhooks[0].clientConfig as $c | .[1] as $s | $c.service == {"name":"t-mcl-injector","namespace":"mcl-system","path":"/mutate","port":443}
   and $c.caBundle == $s.data["ca.crt"] and ($s.data["tls.crt"] | length > 100) and ($s.data["tls.key"] | length > 100)'
certcheck() {  # the serving certificate is for the Service's DNS names and signed by the CA
  jq -r '.data["ca.crt"]' <<<"$(obj "$d" Secret t-mcl-injector-tls)" | base64 -d >"$work/ca.crt" &&
    jq -r '.data["tls.crt"]' <<<"$(obj "$d" Secret t-mcl-injector-tls)" | base64 -d >"$work/tls.crt" &&
    openssl verify -CAfile "$work/ca.crt" "$work/tls.crt" &&
    openssl x509 -in "$work/tls.crt" -noout -ext subjectAltName | grep -q 'DNS:t-mcl-injector.mcl-system.svc'
}
check "webhook: the generated certificate names t-mcl-injector.mcl-system.svc and chains to the CA" certcheck
inj="$(obj "$d" Deployment t-mcl-injector)"
check_jq "injector: the controller image's mcl-injector, no service-account token, non-root, read-only" "$inj" \
  '.spec.replicas == 2 and .spec.template.spec.automountServiceAccountToken == false
   and (.spec.template.spec.containers[0] | .image == "mcl-controller:0.1.0" and .command == ["/usr/bin/mcl-injector"]
     and .securityContext.readOnlyRootFilesystem == true and .securityContext.runAsNonRoot == true
     and .readinessProbe.httpGet.scheme == "HTTPS")
   and (.spec.template.metadata.annotations["checksum/config"] | length == 16)'
cfg="$(obj "$d" ConfigMap t-mcl-injector | jq -c '.data["config.json"] | fromjson')"
check_jq "injector config: the sidecar on the unix socket, its token and socket volumes, the address and mount for apps" "$cfg" \
  '.address == "unix:///var/run/mcl/sidecar.sock" and .appVolumeMount == {"name":"mcl-sidecar-socket","mountPath":"/var/run/mcl"}
   and [.volumes[].name] == ["mcl-sidecar-kube-api-access","mcl-sidecar-socket"] and .volumes[1].emptyDir.medium == "Memory"
   and (.sidecar | .name == "mcl-sidecar" and .restartPolicy == "Always"
     and (.args | index("--listen=unix:///var/run/mcl/sidecar.sock") != null and index("--socket-mode=0666") != null)
     and [.volumeMounts[].mountPath] == ["/var/run/mcl","/var/run/secrets/kubernetes.io/serviceaccount"])'
dcm="$(render "${REQ[@]}" --set injection.webhook.certificate.source=cert-manager --api-versions cert-manager.io/v1/Certificate)"
check_jq "cert-manager mode: a Certificate for the Service, CA injected by cert-manager, no chart-made Secret" "$dcm" \
  '([.[] | select(.kind == "Certificate") | .metadata.name] | sort == ["t-mcl-injector", "t-mcl-injector-ca"])
   and ([.[] | select(.kind == "Secret")] == [])
   and (.[] | select(.kind == "MutatingWebhookConfiguration") | .metadata.annotations["cert-manager.io/inject-ca-from"] == "mcl-system/t-mcl-injector"
        and (.webhooks[0].clientConfig.caBundle == null))'
check_jq "injection.enabled=false: no webhook, no injector" "$(render "${REQ[@]}" --set injection.enabled=false)" \
  '[.[] | select(.kind == "MutatingWebhookConfiguration" or (.metadata.name | test("injector")))] == []'
check_jq "uninstall hook: a post-delete Job (mcl-uninstall) whose RBAC exists only while it runs" "$d" \
  '[.[] | select(.metadata.name == "t-mcl-uninstall") | .metadata.annotations["helm.sh/hook"]] | length == 6 and all(. == "post-delete")'
check_jq "uninstall hook: may only get, list and update locks, and list pods in the release namespace" "$d" \
  '(.[] | select(.kind == "ClusterRole" and .metadata.name == "t-mcl-uninstall") | .rules) == [{"apiGroups":["mcl.dev"],"resources":["multiclusterleases"],"verbs":["get","list","update"]}]
   and (.[] | select(.kind == "Role" and .metadata.name == "t-mcl-uninstall") | .rules) == [{"apiGroups":[""],"resources":["pods"],"verbs":["list"]}]'

# --- injection, policy mode ---
di="$(render "${REQ[@]}" --set injection.mode=policy "${MAP_API[@]}")"
check_jq "injection.mode=policy: MutatingAdmissionPolicy v1beta1 + binding + annotation ValidatingAdmissionPolicy, no webhook" "$di" \
  '[.[] | select(.kind | test("AdmissionPolicy")) | "\(.apiVersion) \(.kind)"] | sort == [
    "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy", "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding",
    "admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicy", "admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicyBinding"]'
check_jq "injection policy matches only Pod CREATE for labelled Pods, with the webhook's namespace selector" "$(obj "$di" MutatingAdmissionPolicy t-mcl-sidecar-injection)" \
  '.spec.matchConstraints | .resourceRules == [{"apiGroups":[""],"apiVersions":["v1"],"operations":["CREATE"],"resources":["pods"]}]
   and (.namespaceSelector.matchExpressions | length == 2) and .objectSelector.matchLabels == {"mcl.dev/inject":"true"}'
check_jq "policy mode renders no webhook and no injector" "$di" \
  '[.[] | select(.kind == "MutatingWebhookConfiguration" or (.metadata.name | test("injector")))] == []'

# --- monitoring kit ---
MON=(--set monitoring.serviceMonitor.enabled=true --set monitoring.podMonitor.enabled=true
  --set monitoring.prometheusRule.enabled=true --set monitoring.grafanaDashboard.enabled=true
  --api-versions monitoring.coreos.com/v1/ServiceMonitor --api-versions monitoring.coreos.com/v1/PodMonitor
  --api-versions monitoring.coreos.com/v1/PrometheusRule)
dm="$(render "${REQ[@]}" "${MON[@]}")"
check_jq "monitoring: ServiceMonitor for the controller's metrics port, PodMonitor for injected sidecars" "$dm" \
  '(.[] | select(.kind == "ServiceMonitor") | .spec.endpoints[0].port == "http-metrics"
     and .spec.selector.matchLabels["app.kubernetes.io/component"] == "controller")
   and (.[] | select(.kind == "PodMonitor") | .spec.podMetricsEndpoints[0].port == "mcl-metrics"
     and .spec.selector.matchLabels == {"mcl.dev/inject": "true"} and .spec.namespaceSelector.any == true)'
check_jq "monitoring: the four alerts, and the Grafana dashboard as a labelled ConfigMap" "$dm" \
  '([.[] | select(.kind == "PrometheusRule") | .spec.groups[0].rules[].alert] ==
     ["MclLockWithoutLeader", "MclHeartbeatStale", "MclBackendUnreachable", "MclControllerNotActive"])
   and (.[] | select(.kind == "ConfigMap" and .metadata.name == "t-mcl-dashboard") | .metadata.labels.grafana_dashboard == "1"
     and (.data["mcl.json"] | fromjson | .uid == "mcl-overview" and (.panels | length > 10)))'
# (setup.sh puts promtool in the cache; tools.env may come from a checkout that predates it)
PROMTOOL="${MCL_PROMTOOL:-$(sed -n 's/^MCL_PROMTOOL=//p' "$CACHE_DIR/tools.env" 2>/dev/null)}"
[[ -x "$PROMTOOL" ]] || PROMTOOL="$CACHE_DIR/tools/promtool"
alert_tests() {  # promtool checks the rules and runs helm/test/alerts_test.yaml against them
  mkdir -p "$work/alerts" && cp "$here/alerts_test.yaml" "$work/alerts/" &&
    jq '.[] | select(.kind == "PrometheusRule") | .spec' <<<"$dm" >"$work/alerts/rules.yaml" &&
    "$PROMTOOL" check rules "$work/alerts/rules.yaml" && "$PROMTOOL" test rules "$work/alerts/alerts_test.yaml"
}
check "monitoring: promtool accepts the rules, and each alert fires (and only) when it should (alerts_test.yaml)" alert_tests

# The named template, as a user's chart uses it (a copy of _sidecar.tpl in their templates/).
app="$work/app-chart"
cp -r "$here/fixtures/app-chart" "$app" && cp "$chart/templates/_sidecar.tpl" "$app/templates/"
appv="$(helm template a "$app" | yaml2json)"
sc="$(jq -c '.[0].spec.template.spec.initContainers[0]' <<<"${appv:-[]}")"
check_jq "mcl.sidecarContainer: a native sidecar (initContainer, restartPolicy Always) on a unix socket in a volume" "$sc" \
  '.name == "mcl-sidecar" and .restartPolicy == "Always" and .args[0:2] == ["--listen=unix:///var/run/mcl/sidecar.sock", "--socket-mode=0666"]
   and .volumeMounts == [{"name": "mcl-sidecar-socket", "mountPath": "/var/run/mcl"}]'
check_jq "mcl.sidecarVolumes / mcl.sidecarAppVolumeMounts / mcl.sidecarAddressEnv: the app shares the socket directory" \
  "$(jq -c '.[0].spec.template.spec' <<<"${appv:-[]}")" \
  '.volumes == [{"name": "mcl-sidecar-socket", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}]
   and .containers[0].volumeMounts == [{"name": "mcl-sidecar-socket", "mountPath": "/var/run/mcl"}]
   and .containers[0].env == [{"name": "MCL_SIDECAR_ADDR", "value": "unix:///var/run/mcl/sidecar.sock"}]'
check_jq "mcl.sidecarContainer with a loopback listen address: no socket volume, no mounts" \
  "$(helm template a "$app" --set sidecar.listen=127.0.0.1:7400 | yaml2json | jq -c '.[0].spec.template.spec')" \
  '.volumes == null and .initContainers[0].volumeMounts == null and .containers[0].volumeMounts == null
   and .containers[0].env == [{"name": "MCL_SIDECAR_ADDR", "value": "127.0.0.1:7400"}]'
# The injector gets exactly the container a user's chart renders with the same settings.
tmpl="$(helm template a "$app" --set sidecar.clusterName=c0 --set sidecar.tokenVolume=mcl-sidecar-kube-api-access |
  yaml2json | jq -c '.[0].spec.template.spec.initContainers[0]')"
check "the injector's sidecar is the mcl.sidecarContainer template's, byte for byte (same settings)" \
  bash -c '[[ "$(jq -S -c .sidecar <<<"$0")" == "$(jq -S -c . <<<"$1")" ]] || { echo "injector: $(jq -S -c .sidecar <<<"$0")"; echo "template: $(jq -S -c . <<<"$1")"; exit 1; }' "$cfg" "$tmpl"
check_jq "mcl.sidecarContainer: POD_NAME/POD_NAMESPACE/POD_UID from the downward API" "$sc" \
  '[.env[] | "\(.name)=\(.valueFrom.fieldRef.fieldPath)"] == ["POD_NAME=metadata.name", "POD_NAMESPACE=metadata.namespace", "POD_UID=metadata.uid"]'
check_jq "mcl.sidecarContainer: limits, non-root, read-only, no capabilities" "$sc" \
  '.resources.limits.cpu != null and .resources.limits.memory != null and (.securityContext | .runAsNonRoot == true
   and .readOnlyRootFilesystem == true and .allowPrivilegeEscalation == false and .capabilities.drop == ["ALL"])'
appversion="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$chart/Chart.yaml")"
check_jq "mcl.sidecarContainer default image tag is the chart's appVersion ($appversion)" "$sc" ".image == \"mcl-sidecar:$appversion\""
check_fails "mcl.sidecarContainer refuses a non-loopback listen address" 'is refused: .*or on loopback only' \
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

# Policy mode here; webhook mode below, with mcl-injector run on this machine (no kubelet runs the
# injector's pods here; testbed/kubelet/kubelet_test.sh runs the chart's own). No uninstall hook:
# its Job would never run (mcl-uninstall is checked below too).
check "helm install into the test bed (policy injection)" helm install "$REL" "$chart" --namespace "$NS" \
  --wait=false --timeout 90s \
  --set clusterName="$CLUSTER" --set 'etcd.endpoints={https://127.0.0.1:2379}' --set etcd.auth.secretName=etcd-auth \
  --set injection.mode=policy --set uninstallHook.enabled=false \
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
  variant --set 'etcd.endpoints={https://127.0.0.1:2379}' --set injection.mode=policy --set sidecar.metricsPort=0 \
  --set sidecar.leaseDuration=30 --set 'sidecar.extraArgs={--request-timeout=3s}' --set injection.failurePolicy=Ignore \
  --set injection.validateAnnotations=false --set 'sidecar.listen=[::1]:7400'
check "variant accepted: policy injection on the default unix socket (the CEL with the socket volume compiles)" \
  variant --set 'etcd.endpoints={https://127.0.0.1:2379}' --set injection.mode=policy
check "variant accepted: webhook injection with Ignore, a 10 s timeout, one injector replica, digests" \
  variant --set 'etcd.endpoints={https://127.0.0.1:2379}' --set injection.failurePolicy=Ignore --set injection.timeoutSeconds=10 \
  --set injection.webhook.replicas=1 \
  --set controller.image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
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
# Rotating the etcd credentials rolls the controller at the next upgrade (checksum of the Secrets).
etcd_sum() { kubectl -n "$NS" get deployment "$REL-controller" -o jsonpath='{.spec.template.metadata.annotations.checksum/etcd-credentials}'; }
sum1="$(etcd_sum)"
rotate() {
  kubectl -n "$NS" create secret generic "$REL-etcd-tls" --from-literal=ca.crt=x --from-literal=tls.crt=rotated \
    --from-literal=tls.key=x --dry-run=client -o yaml | kubectl apply -f - >/dev/null &&
    helm upgrade "$REL" "$chart" --namespace "$NS" --reuse-values --wait=false --timeout 90s >/dev/null &&
    [[ -n "$sum1" && "$sum1" != none && "$(etcd_sum)" != "$sum1" ]] || { echo "before: $sum1, after: $(etcd_sum)"; return 1; }
}
check "a rotated etcd TLS Secret changes the controller's pod template at the next helm upgrade (checksum/etcd-credentials)" rotate
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
  (cd "$repo" && timeout 1800 bazel build //controller:mcl-controller //controller/injector:mcl-injector \
    //controller/injector:mcl-uninstall) >"$work/bazel-build.log" 2>&1 || return 1
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

# The same Pods through either injection path (MODE: "policy" or "webhook"); names get the suffix.
injection_checks() {
  local m="$1" x="-$1"
  # A Pod with its own init container, volume and env, and a container that sets the address itself.
  local p
  p="$(pod_json inject "injected$x" '{"mcl.dev/inject":"true"}' '{"mcl.dev/lease-duration":"15s"}' \
    '{"initContainers": [{"name": "migrate", "image": "example.invalid/migrate:1"}],
      "volumes": [{"name": "data", "emptyDir": {}}],
      "containers": [{"name": "app", "image": "example.invalid/app:1", "env": [{"name": "FOO", "value": "bar"}]},
                     {"name": "tool", "image": "example.invalid/tool:1", "env": [{"name": "MCL_SIDECAR_ADDR", "value": "[::1]:9000"}]}]}' |
    kubectl create -o json -f - 2>&1 || echo '{}')"
  check_jq "$m: labelled Pod: sidecar is the first initContainer, a native sidecar (restartPolicy Always)" "$p" \
    '[.spec.initContainers[].name] == ["mcl-sidecar", "migrate"] and .spec.initContainers[0].restartPolicy == "Always"'
  check_jq "$m: labelled Pod: sidecar serves on the unix socket in its volume only" "$p" \
    '.spec.initContainers[0].args | index("--listen=unix:///var/run/mcl/sidecar.sock") != null and (map(select(startswith("--listen="))) | length == 1)'
  check_jq "$m: labelled Pod: POD_NAME, POD_NAMESPACE, POD_UID from the downward API" "$p" \
    '[.spec.initContainers[0].env[] | "\(.name)=\(.valueFrom.fieldRef.fieldPath)"] == ["POD_NAME=metadata.name", "POD_NAMESPACE=metadata.namespace", "POD_UID=metadata.uid"]'
  check_jq "$m: labelled Pod: annotation mcl.dev/lease-duration=15s becomes --lease-duration=15s" "$p" \
    '.spec.initContainers[0].args | index("--lease-duration=15s") != null'
  check_jq "$m: labelled Pod: the sidecar is told the cluster name (--cluster-name=$CLUSTER)" "$p" \
    ".spec.initContainers[0].args | index(\"--cluster-name=$CLUSTER\") != null"
  check_jq "$m: labelled Pod: sidecar resource limits and restricted security context" "$p" \
    '.spec.initContainers[0] | .resources.limits == {"cpu": "200m", "memory": "64Mi"} and (.securityContext | .runAsNonRoot == true
     and .readOnlyRootFilesystem == true and .allowPrivilegeEscalation == false and .capabilities.drop == ["ALL"] and .seccompProfile.type == "RuntimeDefault")'
  check_jq "$m: labelled Pod: sidecar gets its own projected service-account token and the socket directory" "$p" \
    '(.spec.volumes | any(.name == "mcl-sidecar-kube-api-access" and (.projected.sources | any(.serviceAccountToken.path == "token"))))
     and (.spec.initContainers[0].volumeMounts == [{"name": "mcl-sidecar-socket", "mountPath": "/var/run/mcl"},
       {"name": "mcl-sidecar-kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}])'
  check_jq "$m: labelled Pod: app containers get MCL_SIDECAR_ADDR (unless they set it) and the socket directory" "$p" \
    '[.spec.containers[] | {(.name): [.env, .volumeMounts]}] == [
      {"app": [[{"name": "FOO", "value": "bar"}, {"name": "MCL_SIDECAR_ADDR", "value": "unix:///var/run/mcl/sidecar.sock"}],
               [{"name": "mcl-sidecar-socket", "mountPath": "/var/run/mcl"}]]},
      {"tool": [[{"name": "MCL_SIDECAR_ADDR", "value": "[::1]:9000"}], [{"name": "mcl-sidecar-socket", "mountPath": "/var/run/mcl"}]]}]'
  check_jq "$m: labelled Pod: its own volumes are kept, the token and socket volumes are added after them" "$p" \
    '[.spec.volumes[].name] == ["data", "mcl-sidecar-kube-api-access", "mcl-sidecar-socket"]'

  local u o own secs
  u="$(pod_json inject "unlabelled$x" '{}' '{}' | kubectl create -o json -f - 2>&1 || echo '{"spec":{"initContainers":"error"}}')"
  check_jq "$m: an unlabelled Pod is untouched" "$u" \
    '.spec.initContainers == null and .spec.volumes == null and .spec.containers[0].env == null'
  o="$(pod_json "$NS" "not-opted-in$x" '{"mcl.dev/inject":"true"}' '{}' '{"serviceAccountName": "default"}' |
    kubectl create -o json -f - 2>&1 || echo '{"spec":{"initContainers":"error"}}')"
  check_jq "$m: a labelled Pod in the release namespace is untouched (excluded)" "$o" \
    '.metadata.name != null and .spec.initContainers == null and .spec.containers[0].env == null'
  pod_json inject "bad-annotation$x" '{"mcl.dev/inject":"true"}' '{"mcl.dev/lease-duration":"soon"}' >"$work/bad-annotation.json"
  check_fails "$m: a malformed mcl.dev/lease-duration annotation is rejected with a clear message" \
    'annotation mcl.dev/lease-duration=soon is not a lease duration.* 2s to 3600s' kubectl create -f "$work/bad-annotation.json"
  pod_json inject "long-lease$x" '{"mcl.dev/inject":"true"}' '{"mcl.dev/lease-duration":"2h"}' >"$work/long-lease.json"
  check_fails "$m: an out-of-range mcl.dev/lease-duration (2h > 3600s) is rejected" \
    'annotation mcl.dev/lease-duration=2h is (not a lease duration|outside the lease durations).* 2s to 3600s' kubectl create -f "$work/long-lease.json"
  secs="$(pod_json inject "whole-seconds$x" '{"mcl.dev/inject":"true"}' '{"mcl.dev/lease-duration":"30"}' | kubectl create -o json -f - 2>&1 || echo '{}')"
  check_jq "$m: mcl.dev/lease-duration in whole seconds (30) is accepted and passed on" "$secs" \
    '.spec.initContainers[0].args | index("--lease-duration=30") != null'
  own="$(pod_json inject "has-own$x" '{"mcl.dev/inject":"true"}' '{}' \
    '{"initContainers":[{"name":"mcl-sidecar","image":"example.invalid/mcl-sidecar:custom","restartPolicy":"Always"}]}' |
    kubectl create -o json -f - 2>&1 || echo '{}')"
  check_jq "$m: a Pod that already has an mcl-sidecar container is not injected twice" "$own" \
    '[.spec.initContainers[].name] == ["mcl-sidecar"] and .spec.initContainers[0].image == "example.invalid/mcl-sidecar:custom" and .spec.volumes == null'
}
injection_checks policy

# The named template and the policy add the same container.
check "app chart with mcl.sidecarContainer installs (helm install)" helm install app "$app" --namespace apps --wait=false --timeout 60s \
  --set sidecar.clusterName="$CLUSTER"
dflt="$(pod_json inject defaults-policy '{"mcl.dev/inject":"true"}' '{}' | kubectl create -o json -f - 2>&1 || echo '{}')"
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

# --- webhook injection through the real apiserver, with mcl-injector run on this machine ---------
# The chart's own webhook configuration and injector config, with the Service reference replaced by
# the loopback URL of an mcl-injector started here (testbed/kubelet/kubelet_test.sh runs the chart's
# injector pods behind their Service).
injector_pid=""
stop_injector() { [[ -n "$injector_pid" ]] && { kill -TERM "$injector_pid" 2>/dev/null; wait "$injector_pid" 2>/dev/null; injector_pid=""; }; return 0; }
trap 'stop_injector; stop_controller; cleanup' EXIT
start_injector() {
  [[ -n "$controller_bin" ]] || return 1
  local inj; inj="$(dirname "$controller_bin")/injector/mcl-injector"
  local r; r="$(helm template "$REL" "$chart" --namespace "$NS" --set clusterName="$CLUSTER" \
    --set 'etcd.endpoints={https://127.0.0.1:2379}' | yaml2json)" || return 1
  jq -r '.[] | select(.kind == "ConfigMap" and .metadata.name == "'"$REL"'-injector") | .data["config.json"]' <<<"$r" >"$work/injector-config.json"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=helmtest-injector -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$work/injector.key" -out "$work/injector.crt" 2>/dev/null || return 1
  local port; port="$("$repo/testbed/testbed.sh" free-port)"
  "$inj" --listen="127.0.0.1:$port" --tls-cert="$work/injector.crt" --tls-key="$work/injector.key" \
    --config="$work/injector-config.json" --shutdown-delay=0s >"$work/injector.log" 2>&1 &
  injector_pid=$!
  jq --arg url "https://127.0.0.1:$port/mutate" --arg ca "$(base64 -w0 <"$work/injector.crt")" \
    '.[] | select(.kind == "MutatingWebhookConfiguration") | .metadata = {name: "helmtest-webhook"}
     | .webhooks[0].clientConfig = {url: $url, caBundle: $ca}' <<<"$r" | kubectl apply -f -
}
# (run directly, not through `check`, whose command substitution would lose injector_pid)
if start_injector >"$work/start-injector.log" 2>&1; then ok "mcl-injector serves the chart's webhook configuration (pointed at it on 127.0.0.1)"
else not_ok "mcl-injector serves the chart's webhook configuration (pointed at it on 127.0.0.1)" "$(cat "$work/start-injector.log")"; fi
injected_by_webhook() {
  pod_json inject probe '{"mcl.dev/inject":"true"}' '{}' | kubectl create --dry-run=server -o json -f - |
    jq -e '.spec.initContainers[0].name == "mcl-sidecar" and .metadata.annotations["mcl.dev/injected"] == "true"'
}
check "the webhook takes effect (server-side dry run, within 30 s)" poll 30 injected_by_webhook
injection_checks webhook
hn="$(pod_json inject host-network '{"mcl.dev/inject":"true"}' '{}' '{"hostNetwork": true}' | kubectl create -o json -f - 2>&1 || echo '{}')"
check_jq "webhook: a hostNetwork Pod's sidecar has no fixed metrics port or probes (they would collide)" "$hn" \
  '.spec.initContainers[0] | .name == "mcl-sidecar" and .ports == null and .livenessProbe == null
   and (.args | any(startswith("--metrics-address")) | not)'
hp="$(pod_json inject host-network-port '{"mcl.dev/inject":"true"}' '{"mcl.dev/sidecar-metrics-port":"9911"}' '{"hostNetwork": true}' |
  kubectl create -o json -f - 2>&1 || echo '{}')"
check_jq "webhook: mcl.dev/sidecar-metrics-port gives it a port of the Pod's choosing" "$hp" \
  '.spec.initContainers[0] | .ports[0].containerPort == 9911 and .livenessProbe.httpGet.port == 9911
   and (.args | index("--metrics-address=0.0.0.0:9911") != null)'
check "remove the test's webhook configuration" kubectl delete mutatingwebhookconfiguration helmtest-webhook
stop_injector

# --- mcl-uninstall (the post-delete hook's program) ------------------------------------------------
# lock-b carries the controller's finalizer (the real controller above added it); no controller
# runs now. Deleting the lock's namespace would hang without the hook.
check_jq "lock-b still carries the controller's finalizer after uninstall" \
  "$(kubectl -n apps get multiclusterlease lock-b -o json 2>&1 || echo '{}')" '.metadata.finalizers | index("mcl.dev/release") != null'
uninstall_tool() {
  [[ -n "$controller_bin" ]] && timeout 60 "$(dirname "$controller_bin")/injector/mcl-uninstall" \
    --kubeconfig="$KUBECONFIG" --timeout=30s
}
check "mcl-uninstall removes the finalizer from every lock" uninstall_tool
check_jq "no lock keeps the controller's finalizer" "$(kubectl get mcl -A -o json 2>&1 || echo '{}')" \
  '[.items[] | select((.metadata.finalizers // []) | index("mcl.dev/release"))] == []'
# (Namespaces never finish deleting here: this test bed runs no controller-manager. The kubelet test
# bed deletes one.)
check "the locks delete without hanging on the finalizer" kubectl -n apps delete multiclusterlease --all --timeout=30s

echo "$passed passed, $failed failed"
((failed == 0))
