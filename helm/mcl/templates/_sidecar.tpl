{{/* ---------------------------------------------------------------------------------------------
_sidecar.tpl is self-contained: copy this one file into your own chart's templates/ to add the mcl
sidecar to your pods without the MutatingAdmissionPolicy (see helm/mcl/README.md). It uses no values
and no other template of the mcl chart.
--------------------------------------------------------------------------------------------- */}}

{{/* The sidecar's gRPC API is for its own pod only: a unix socket in a volume of the pod, or
loopback TCP. */}}
{{- define "mcl.validateListen" -}}
{{- if not (regexMatch "^(unix:///[^ ]*[^/ ]/[^/ ]+|(127\\.0\\.0\\.1|\\[::1\\]):[0-9]{1,5})$" (toString .)) -}}
{{- fail (printf "sidecar listen address %q is refused: the sidecar's gRPC API must listen on a unix socket in a directory of the pod, unix:///<dir>/<file> (e.g. unix:///var/run/mcl/sidecar.sock), or on loopback only, 127.0.0.1:<port> or [::1]:<port>" (toString .)) -}}
{{- end -}}
{{- end -}}

{{/* The directory of a unix:/// listen address ("" for TCP). */}}
{{- define "mcl.socketDir" -}}
{{- if hasPrefix "unix://" (toString .) -}}{{ dir (trimPrefix "unix://" (toString .)) }}{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------------
The sidecar container.

"mcl.sidecarContainerSpec" builds the container as a dict from a config dict; "mcl.sidecarContainer"
renders it as YAML for users' own charts, and the MutatingAdmissionPolicy renders the same dict as a
CEL object (mcl.toCEL), so both ways of adding the sidecar produce the same container.

Config keys (all optional; each one given replaces the default whole): name, image ("repo:tag"),
imagePullPolicy, listen (unix:///<dir>/<file> or 127.0.0.1:<port>), socketMode (of a unix socket),
socketVolume (name of the emptyDir that holds it), metricsHost (the metrics server's bind address,
0.0.0.0 or [::]), leaseDuration ("" = the sidecar's default, 15s), clusterName ("" = the
sidecar learns it from the controller's heartbeat Lease name), metricsPort (0 = no metrics
address and no probes), extraArgs (list), resources (dict), securityContext (dict), tokenVolume (name
of a projected service-account token volume to mount; "" = rely on the pod's automounted token), and,
for the policy only, argsCEL (a CEL list expression appended to the args).
--------------------------------------------------------------------------------------------- */}}
{{- define "mcl.sidecarDefaults" -}}
name: mcl-sidecar
image: mcl-sidecar:0.1.0
imagePullPolicy: IfNotPresent
listen: unix:///var/run/mcl/sidecar.sock
socketMode: "0666"
socketVolume: mcl-sidecar-socket
leaseDuration: ""
clusterName: ""
metricsPort: 7401
metricsHost: 0.0.0.0
extraArgs: []
tokenVolume: ""
resources:
  requests: {cpu: 10m, memory: 16Mi}
  limits: {cpu: 200m, memory: 64Mi}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  capabilities: {drop: ["ALL"]}
  seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "mcl.sidecarContainerSpec" -}}
{{- $cfg := fromYaml (include "mcl.sidecarDefaults" .) -}}
{{- range $k, $v := . -}}
{{- $_ := set $cfg $k $v -}}
{{- end -}}
{{- include "mcl.validateListen" $cfg.listen -}}
{{- $args := list (printf "--listen=%s" $cfg.listen) -}}
{{- $socketDir := include "mcl.socketDir" $cfg.listen -}}
{{- if $socketDir -}}
{{- $args = append $args (printf "--socket-mode=%s" (toString $cfg.socketMode)) -}}
{{- end -}}
{{- if $cfg.clusterName -}}
{{- $args = append $args (printf "--cluster-name=%s" $cfg.clusterName) -}}
{{- end -}}
{{- if $cfg.leaseDuration -}}
{{- $args = append $args (printf "--lease-duration=%v" $cfg.leaseDuration) -}}
{{- end -}}
{{- if gt (int $cfg.metricsPort) 0 -}}
{{- $args = append $args (printf "--metrics-address=%s:%d" $cfg.metricsHost (int $cfg.metricsPort)) -}}
{{- end -}}
{{- $args = concat $args $cfg.extraArgs -}}
{{- $env := list -}}
{{- range $var, $path := dict "POD_NAME" "metadata.name" "POD_NAMESPACE" "metadata.namespace" "POD_UID" "metadata.uid" -}}
{{- $env = append $env (dict "name" $var "valueFrom" (dict "fieldRef" (dict "apiVersion" "v1" "fieldPath" $path))) -}}
{{- end -}}
{{- $c := dict "name" $cfg.name "image" $cfg.image "imagePullPolicy" $cfg.imagePullPolicy "restartPolicy" "Always" "args" $args "env" $env "resources" $cfg.resources "securityContext" $cfg.securityContext -}}
{{- if $cfg.argsCEL -}}
{{- $_ := set $c "args" (dict "__cel" (printf "%s + %s" (include "mcl.toCEL" (dict "value" $args "type" "args")) $cfg.argsCEL)) -}}
{{- end -}}
{{- if gt (int $cfg.metricsPort) 0 -}}
{{- $_ := set $c "ports" (list (dict "name" "mcl-metrics" "containerPort" (int $cfg.metricsPort) "protocol" "TCP")) -}}
{{- $probe := dict "path" "/healthz" "port" (int $cfg.metricsPort) -}}
{{- $_ := set $c "startupProbe" (dict "httpGet" $probe "periodSeconds" 1 "timeoutSeconds" 1 "failureThreshold" 30) -}}
{{- $_ := set $c "livenessProbe" (dict "httpGet" $probe "periodSeconds" 10 "timeoutSeconds" 2 "failureThreshold" 3) -}}
{{- end -}}
{{- $mounts := list -}}
{{- if $socketDir -}}
{{- $mounts = append $mounts (dict "name" $cfg.socketVolume "mountPath" $socketDir) -}}
{{- end -}}
{{- if $cfg.tokenVolume -}}
{{- $mounts = append $mounts (dict "name" $cfg.tokenVolume "mountPath" "/var/run/secrets/kubernetes.io/serviceaccount" "readOnly" true) -}}
{{- end -}}
{{- if $mounts -}}
{{- $_ := set $c "volumeMounts" $mounts -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{/*
For your own chart (when the MutatingAdmissionPolicy API is not available): a native sidecar, to be
placed under the pod's initContainers (restartPolicy: Always: it starts before the app containers
and stops after them). Argument: a config dict (see above), e.g.
  initContainers:
    {{- include "mcl.sidecarContainer" (dict "image" "registry.example/mcl-sidecar:0.1.0") | nindent 4 }}
*/}}
{{- define "mcl.sidecarContainer" -}}
- {{ include "mcl.sidecarContainerSpec" . | nindent 2 | trim }}
{{- end -}}

{{/* The sidecar's environment for app containers: where to reach it. Argument: the same config
dict (only "listen" matters). */}}
{{- define "mcl.sidecarAddressEnv" -}}
- name: MCL_SIDECAR_ADDR
  value: {{ (default "unix:///var/run/mcl/sidecar.sock" .listen) | quote }}
{{- end -}}

{{/* The pod volume that holds the sidecar's unix socket (nothing for a TCP listen address), for
the pod's volumes. Argument: the config dict ("listen", "socketVolume"). */}}
{{- define "mcl.sidecarVolumes" -}}
{{- if include "mcl.socketDir" (default "unix:///var/run/mcl/sidecar.sock" .listen) -}}
- name: {{ default "mcl-sidecar-socket" .socketVolume }}
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end -}}
{{- end -}}

{{/* The socket directory's mount for an app container (nothing for a TCP listen address).
Argument: the config dict ("listen", "socketVolume"). */}}
{{- define "mcl.sidecarAppVolumeMounts" -}}
{{- $d := include "mcl.socketDir" (default "unix:///var/run/mcl/sidecar.sock" .listen) -}}
{{- if $d -}}
- name: {{ default "mcl-sidecar-socket" .socketVolume }}
  mountPath: {{ $d }}
{{- end -}}
{{- end -}}
