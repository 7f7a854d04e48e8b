{{/* ---------------------------------------------------------------------------------------------
Names and labels
--------------------------------------------------------------------------------------------- */}}

{{- define "mcl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mcl.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mcl.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mcl.labels" -}}
helm.sh/chart: {{ include "mcl.chart" . }}
app.kubernetes.io/name: {{ include "mcl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mcl
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mcl.controllerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "mcl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "mcl.controllerServiceAccountName" -}}
{{- if .Values.controller.serviceAccount.create -}}
{{- default (printf "%s-controller" (include "mcl.fullname" .)) .Values.controller.serviceAccount.name -}}
{{- else -}}
{{- required "controller.serviceAccount.name is required when controller.serviceAccount.create=false: name the existing ServiceAccount the controller runs as" .Values.controller.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The controller's coordination.k8s.io Leases, both in the release namespace (docs/design.md). */}}
{{- define "mcl.heartbeatLeaseName" -}}
mcl-heartbeat-{{ .Values.clusterName }}
{{- end -}}
{{- define "mcl.electionLeaseName" -}}
mcl-controller-{{ .Values.clusterName }}
{{- end -}}

{{/* sha256 of the etcd TLS and auth Secrets' data as the cluster has them now ("none" when
absent, e.g. under `helm template`). */}}
{{- define "mcl.etcdCredentialsChecksum" -}}
{{- $data := dict -}}
{{- if .Values.etcd.tls.enabled -}}
{{- with lookup "v1" "Secret" .Release.Namespace (include "mcl.etcdTLSSecretName" .) -}}
{{- $_ := set $data "tls" .data -}}
{{- end -}}
{{- end -}}
{{- with .Values.etcd.auth.secretName -}}
{{- with lookup "v1" "Secret" $.Release.Namespace . -}}
{{- $_ := set $data "auth" .data -}}
{{- end -}}
{{- end -}}
{{- if $data -}}{{ toJson $data | sha256sum | trunc 16 }}{{- else -}}none{{- end -}}
{{- end -}}

{{- define "mcl.etcdTLSSecretName" -}}
{{- default (printf "%s-etcd-tls" (include "mcl.fullname" .)) .Values.etcd.tls.secretName -}}
{{- end -}}

{{/* An image reference from {repository, tag, digest}: repo:tag, repo@digest or repo:tag@digest.
Argument: dict "image" V "root" $ "path" "controller.image" (for messages). */}}
{{- define "mcl.image" -}}
{{- $i := .image -}}
{{- $repo := toString $i.repository -}}
{{- $tag := toString (default "" $i.tag) -}}
{{- $digest := toString (default "" $i.digest) -}}
{{- if regexMatch "(@|:[^/]*$)" $repo -}}
{{- fail (printf "%s.repository %q contains a tag or digest: set the repository alone and the rest in %s.tag or %s.digest (e.g. repository: registry.example.com/mcl/mcl-controller, tag: \"0.1.0\")" .path $repo .path .path) -}}
{{- end -}}
{{- if not $tag -}}{{- $tag = toString (default "" .root.Chart.AppVersion) -}}{{- end -}}
{{- if and $tag (not (regexMatch "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$" $tag)) -}}
{{- fail (printf "%s.tag %q is not an image tag (letters, digits, '_', '.', '-'; at most 128)" .path $tag) -}}
{{- end -}}
{{- if and $digest (not (regexMatch "^sha256:[0-9a-f]{64}$" $digest)) -}}
{{- fail (printf "%s.digest %q is not a digest: give sha256:<64 hex digits> (skopeo inspect --format '{{.Digest}}' ... prints it)" .path $digest) -}}
{{- end -}}
{{- if and (not $tag) (not $digest) -}}
{{- fail (printf "%s has neither a tag nor a digest, and the chart has no appVersion to default to: set %s.tag or %s.digest" .path .path .path) -}}
{{- end -}}
{{- $repo -}}{{- if $tag -}}:{{ $tag }}{{- end -}}{{- if $digest -}}@{{ $digest }}{{- end -}}
{{- end -}}

{{/* A Go-style duration ("10s", "1500ms", "1m30s") in seconds, as a float string. */}}
{{- define "mcl.seconds" -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h)" (toString .) -1 -}}
{{- $n := float64 (regexReplaceAll "(ms|s|m|h)$" . "") -}}
{{- $u := regexFind "(ms|s|m|h)$" . -}}
{{- $total = addf $total (mulf $n (get (dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0) $u)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------------
Validation: every template includes this, so a bad value fails rendering with one clear message.
--------------------------------------------------------------------------------------------- */}}
{{- define "mcl.validate" -}}
{{- $c := required "clusterName is required: set it to this cluster's name, unique among the clusters that share the global etcd (e.g. --set clusterName=eu-west-1)" .Values.clusterName -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" (toString $c)) -}}
{{- fail (printf "clusterName %q is not a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit)" (toString $c)) -}}
{{- end -}}
{{- if not .Values.etcd.endpoints -}}
{{- fail "etcd.endpoints is required: the global etcd's client URLs, e.g. --set 'etcd.endpoints={https://etcd-0.example:2379,https://etcd-1.example:2379}'" -}}
{{- end -}}
{{- range .Values.etcd.endpoints -}}
{{- if $.Values.etcd.tls.enabled -}}
{{- if not (regexMatch "^https://[^/]+$" (toString .)) -}}
{{- fail (printf "etcd.endpoints: %q is not an https://host:port URL; TLS to etcd is on (etcd.tls.enabled=true). Use https endpoints, or set etcd.tls.enabled=false explicitly for a plaintext test etcd" (toString .)) -}}
{{- end -}}
{{- else if not (regexMatch "^https?://[^/]+$" (toString .)) -}}
{{- fail (printf "etcd.endpoints: %q is not an http(s)://host:port URL" (toString .)) -}}
{{- end -}}
{{- end -}}
{{- if .Values.etcd.tls.insecureSkipVerify -}}
{{- fail "etcd.tls.insecureSkipVerify=true is refused: the controller always verifies etcd's serving certificate. Put the CA that signed it in the TLS Secret (etcd.tls.secretName, key etcd.tls.caKey), or set etcd.tls.caKey=\"\" to use the image's system trust store" -}}
{{- end -}}
{{- if and .Values.etcd.tls.enabled .Values.etcd.tls.certKey (not .Values.etcd.tls.keyKey) -}}
{{- fail "etcd.tls.keyKey is required when etcd.tls.certKey is set (the client certificate needs its private key)" -}}
{{- end -}}
{{- if not (regexMatch "^/[^ ]*$" (toString .Values.etcd.keyPrefix)) -}}
{{- fail (printf "etcd.keyPrefix %q must start with '/' and contain no spaces" (toString .Values.etcd.keyPrefix)) -}}
{{- end -}}
{{- $c := .Values.controller -}}
{{- range $name, $v := dict "controller.sessionTTL" $c.sessionTTL "controller.electionLeaseDuration" $c.electionLeaseDuration "controller.shutdownTimeout" $c.shutdownTimeout -}}
{{- if and $v (not (regexMatch "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$" (toString $v))) -}}
{{- fail (printf "%s %q is not a duration like 10s, 1500ms or 1m30s" $name (toString $v)) -}}
{{- end -}}
{{- end -}}
{{- $ttl := float64 (include "mcl.seconds" $c.sessionTTL) -}}
{{- if lt $ttl 1.0 -}}
{{- fail (printf "controller.sessionTTL %q is shorter than 1s, which the controller refuses: the session is kept alive every TTL/3, and etcd needs time to answer between two keepalives. Set it to 1s or more (10s is the default)" (toString $c.sessionTTL)) -}}
{{- end -}}
{{- if gt $ttl 3600.0 -}}
{{- fail (printf "controller.sessionTTL %q is longer than 1h, which the controller refuses: sidecars believe no confirmation with a longer TTL (a forged heartbeat must not extend leadership without bound). Set it to 1h or less (10s is the default)" (toString $c.sessionTTL)) -}}
{{- end -}}
{{- if and $c.electionLeaseDuration (lt (float64 (include "mcl.seconds" $c.electionLeaseDuration)) 3.0) -}}
{{- fail (printf "controller.electionLeaseDuration %q is shorter than 3s: the active replica renews it every third of its duration, and a lease of less than two renewal periods plus a request timeout lets the standby take over from a healthy active replica. Set 3s or more, or \"\" for the default" (toString $c.electionLeaseDuration)) -}}
{{- end -}}
{{- $shutdown := addf (mulf $ttl 1.01) 0.15 -}}
{{- if $c.shutdownTimeout -}}{{- $shutdown = float64 (include "mcl.seconds" $c.shutdownTimeout) -}}{{- end -}}
{{- if lt (float64 $c.terminationGracePeriodSeconds) (addf $shutdown 5.0) -}}
{{- fail (printf "controller.terminationGracePeriodSeconds=%v is too short: a stopping controller needs up to %.2fs to hand its locks over (controller.shutdownTimeout, or sessionTTL x 1.01 + 0.15s), plus time to delete its keys; with less the kubelet kills it first and every rollout becomes a crash failover. Set it to at least %d, or lower controller.sessionTTL" $c.terminationGracePeriodSeconds $shutdown (int (ceil (addf $shutdown 5.0)))) -}}
{{- end -}}
{{- if lt (int .Values.controller.replicas) 1 -}}
{{- fail "controller.replicas must be at least 1" -}}
{{- end -}}
{{- include "mcl.validateListen" .Values.sidecar.listen -}}
{{- if and .Values.sidecar.leaseDuration (not (regexMatch "^([0-9]+|([0-9]+(\\.[0-9]+)?(ms|s|m|h))+)$" (toString .Values.sidecar.leaseDuration))) -}}
{{- fail (printf "sidecar.leaseDuration %q is not a duration: give whole seconds (15) or a duration with a unit (15s, 1m30s); the sidecar accepts 2s to 3600s" (toString .Values.sidecar.leaseDuration)) -}}
{{- end -}}
{{- with .Values.sidecar.leaseDuration -}}
{{- $l := ternary (float64 (toString .)) (float64 (include "mcl.seconds" .)) (regexMatch "^[0-9]+$" (toString .)) -}}
{{- if or (lt $l 2.0) (gt $l 3600.0) -}}
{{- fail (printf "sidecar.leaseDuration %q is outside 2s..3600s, the lease durations the sidecar accepts (the holder renews every quarter of its lease, so a shorter one would renew more often than an apiserver write can be trusted to take)" (toString .)) -}}
{{- end -}}
{{- end -}}
{{- range .Values.sidecar.serviceAccounts -}}
{{- if not (and .namespace .name) -}}
{{- fail (printf "sidecar.serviceAccounts: every entry needs namespace and name, got %s" (toJson .)) -}}
{{- end -}}
{{- end -}}
{{- $inj := .Values.injection -}}
{{- if and $inj.enabled (eq $inj.mode "policy") (not (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy")) -}}
{{- fail "injection.mode=policy needs the admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicy API (Kubernetes 1.34+ with --feature-gates=MutatingAdmissionPolicy=true and --runtime-config=admissionregistration.k8s.io/v1beta1=true), which this cluster does not serve. Enable it, or use injection.mode=webhook (the default). (With `helm template`, pass --api-versions admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy.)" -}}
{{- end -}}
{{- if and $inj.enabled (eq $inj.mode "webhook") (eq $inj.webhook.certificate.source "cert-manager") (not (.Capabilities.APIVersions.Has "cert-manager.io/v1/Certificate")) -}}
{{- fail "injection.webhook.certificate.source=cert-manager needs cert-manager (the cert-manager.io/v1 API), which this cluster does not serve. Install cert-manager, or use source=helm (the default)." -}}
{{- end -}}
{{- range $k, $api := dict "serviceMonitor" "monitoring.coreos.com/v1/ServiceMonitor" "podMonitor" "monitoring.coreos.com/v1/PodMonitor" "prometheusRule" "monitoring.coreos.com/v1/PrometheusRule" -}}
{{- if and (get $.Values.monitoring $k).enabled (not ($.Capabilities.APIVersions.Has $api)) -}}
{{- fail (printf "monitoring.%s.enabled=true needs the Prometheus Operator's %s API, which this cluster does not serve. Install the Prometheus Operator (its CRDs), or leave monitoring.%s off. (With `helm template`, pass --api-versions %s.)" $k $api $k $api) -}}
{{- end -}}
{{- end -}}
{{- $_ := include "mcl.image" (dict "image" .Values.controller.image "root" . "path" "controller.image") -}}
{{- $_ := include "mcl.image" (dict "image" .Values.sidecar.image "root" . "path" "sidecar.image") -}}
{{- if not (regexMatch "^0?[0-7]{3}$" (toString .Values.sidecar.socketMode)) -}}
{{- fail (printf "sidecar.socketMode %q is not an octal mode like 0666 or 0660" (toString .Values.sidecar.socketMode)) -}}
{{- end -}}
{{- if not (has $inj.mode (list "webhook" "policy")) -}}
{{- fail (printf "injection.mode must be webhook or policy, got %q" (toString $inj.mode)) -}}
{{- end -}}
{{- if not (has .Values.injection.failurePolicy (list "Fail" "Ignore")) -}}
{{- fail (printf "injection.failurePolicy must be Fail or Ignore, got %q" (toString .Values.injection.failurePolicy)) -}}
{{- end -}}
{{- end -}}

{{/* The config dict of this release's sidecar (from .Values.sidecar). */}}
{{- define "mcl.releaseSidecarConfig" -}}
{{- $s := .Values.sidecar -}}
image: {{ include "mcl.image" (dict "image" $s.image "root" . "path" "sidecar.image") | quote }}
imagePullPolicy: {{ $s.image.pullPolicy | quote }}
listen: {{ $s.listen | quote }}
socketMode: {{ $s.socketMode | quote }}
leaseDuration: {{ $s.leaseDuration | quote }}
clusterName: {{ .Values.clusterName | quote }}
metricsPort: {{ int $s.metricsPort }}
metricsHost: {{ $s.metricsHost | quote }}
extraArgs: {{ toJson $s.extraArgs }}
resources: {{ toJson $s.resources }}
securityContext: {{ toJson $s.securityContext }}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------------
mcl.toCEL: a value as a CEL literal typed for an apply configuration / JSON patch of a Pod.
Argument: dict "value" V "type" T, where T is the CEL type path of V (e.g. Object.spec.initContainers).
Maps become T{field: ...}, except string-keyed maps (resources.limits/requests), which become map
literals; lists become [...] whose items have type T; a dict {"__cel": expr} is emitted as expr.
--------------------------------------------------------------------------------------------- */}}
{{- define "mcl.toCEL" -}}
{{- $v := .value -}}
{{- $t := .type -}}
{{- if kindIs "map" $v -}}
{{- if hasKey $v "__cel" -}}
{{- $v.__cel -}}
{{- else if has (splitList "." $t | last) (list "limits" "requests") -}}
{ {{- range $i, $k := keys $v | sortAlpha }}{{ if $i }}, {{ end }}{{ toJson $k }}: {{ include "mcl.toCEL" (dict "value" (get $v $k) "type" (printf "%s.%s" $t $k)) }}{{ end -}} }
{{- else -}}
{{ $t }}{ {{- range $i, $k := keys $v | sortAlpha }}{{ if $i }}, {{ end }}{{ $k }}: {{ include "mcl.toCEL" (dict "value" (get $v $k) "type" (printf "%s.%s" $t $k)) }}{{ end -}} }
{{- end -}}
{{- else if kindIs "slice" $v -}}
[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "mcl.toCEL" (dict "value" $e "type" $t) }}{{ end }}]
{{- else if kindIs "string" $v -}}
{{- toJson $v -}}
{{- else if kindIs "bool" $v -}}
{{- $v -}}
{{- else if or (kindIs "float64" $v) (kindIs "int" $v) (kindIs "int64" $v) -}}
{{- int64 $v -}}
{{- else -}}
{{- fail (printf "mcl.toCEL: cannot express %v (%s) at %s" $v (kindOf $v) $t) -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------------
Injection: what both modes add to a Pod.
--------------------------------------------------------------------------------------------- */}}

{{/* The sidecar's own projected service-account token: the ServiceAccount admission plugin runs
before admission webhooks and policies, so it does not mount a token into an injected container. */}}
{{- define "mcl.sidecarTokenVolume" -}}
name: mcl-sidecar-kube-api-access
projected:
  defaultMode: 292
  sources:
    - serviceAccountToken: {path: token, expirationSeconds: 3607}
    - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
    - downwardAPI: {items: [{path: namespace, fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}]}
{{- end -}}

{{/* The injector's config file (controller/injector/mutate.h): the sidecar container exactly as the
mcl.sidecarContainer template renders it for this release, its volumes, and what app containers
get. */}}
{{- define "mcl.injectorConfig" -}}
{{- $cfg := fromYaml (include "mcl.releaseSidecarConfig" .) -}}
{{- $_ := set $cfg "tokenVolume" "mcl-sidecar-kube-api-access" -}}
{{- $sidecar := fromYaml (include "mcl.sidecarContainerSpec" $cfg) -}}
{{- $volumes := list (fromYaml (include "mcl.sidecarTokenVolume" .)) -}}
{{- $volumes = concat $volumes (fromYamlArray (include "mcl.sidecarVolumes" $cfg | default "[]")) -}}
{{- $out := dict "sidecar" $sidecar "volumes" $volumes "address" $cfg.listen -}}
{{- with fromYamlArray (include "mcl.sidecarAppVolumeMounts" $cfg | default "[]") -}}
{{- $_ := set $out "appVolumeMount" (first .) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{- define "mcl.injectorName" -}}
{{- include "mcl.fullname" . }}-injector
{{- end -}}

{{/* The namespaces where Pods may opt in: the configured selector, never the release namespace
(the injector's own Pods must not wait on the injector). */}}
{{- define "mcl.injectionNamespaceSelector" -}}
{{- $sel := deepCopy .Values.injection.namespaceSelector -}}
{{- $exprs := default list $sel.matchExpressions -}}
{{- $exprs = append $exprs (dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" (list .Release.Namespace)) -}}
{{- $_ := set $sel "matchExpressions" $exprs -}}
{{- toYaml $sel -}}
{{- end -}}

{{- define "mcl.injectorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "mcl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: injector
{{- end -}}
