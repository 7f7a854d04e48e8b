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

{{- define "mcl.etcdTLSSecretName" -}}
{{- default (printf "%s-etcd-tls" (include "mcl.fullname" .)) .Values.etcd.tls.secretName -}}
{{- end -}}

{{- define "mcl.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion (toString .image.tag)) -}}
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
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$" (toString .Values.controller.sessionTTL)) -}}
{{- fail (printf "controller.sessionTTL %q is not a duration like 10s or 1500ms" (toString .Values.controller.sessionTTL)) -}}
{{- end -}}
{{- if lt (int .Values.controller.replicas) 1 -}}
{{- fail "controller.replicas must be at least 1" -}}
{{- end -}}
{{- include "mcl.validateListen" .Values.sidecar.listen -}}
{{- if and .Values.sidecar.leaseDuration (not (regexMatch "^([0-9]+|([0-9]+(\\.[0-9]+)?(ms|s|m|h))+)$" (toString .Values.sidecar.leaseDuration))) -}}
{{- fail (printf "sidecar.leaseDuration %q is not a duration: give whole seconds (15) or a duration with a unit (15s, 1m30s); the sidecar accepts 2s to 3600s" (toString .Values.sidecar.leaseDuration)) -}}
{{- end -}}
{{- range .Values.sidecar.serviceAccounts -}}
{{- if not (and .namespace .name) -}}
{{- fail (printf "sidecar.serviceAccounts: every entry needs namespace and name, got %s" (toJson .)) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.injection.enabled (not (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy")) -}}
{{- fail "injection.enabled=true needs the admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicy API (Kubernetes 1.34+ with --feature-gates=MutatingAdmissionPolicy=true and --runtime-config=admissionregistration.k8s.io/v1beta1=true), which this cluster does not serve. Enable it, or set injection.enabled=false and add the sidecar with the mcl.sidecarContainer template. (With `helm template`, pass --api-versions admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy.)" -}}
{{- end -}}
{{- if not (has .Values.injection.failurePolicy (list "Fail" "Ignore")) -}}
{{- fail (printf "injection.failurePolicy must be Fail or Ignore, got %q" (toString .Values.injection.failurePolicy)) -}}
{{- end -}}
{{- end -}}

{{/* The config dict of this release's sidecar (from .Values.sidecar). */}}
{{- define "mcl.releaseSidecarConfig" -}}
{{- $s := .Values.sidecar -}}
image: {{ include "mcl.image" (dict "image" $s.image "root" .) | quote }}
imagePullPolicy: {{ $s.image.pullPolicy | quote }}
listen: {{ $s.listen | quote }}
leaseDuration: {{ $s.leaseDuration | quote }}
clusterName: {{ .Values.clusterName | quote }}
metricsPort: {{ int $s.metricsPort }}
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
