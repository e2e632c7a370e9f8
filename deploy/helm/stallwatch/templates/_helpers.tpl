{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "stallwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-name-stallwatch, or the release name when it already contains the chart name. */}}
{{- define "stallwatch.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The namespace of every namespaced object of the release (namespaceOverride for umbrella charts). */}}
{{- define "stallwatch.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stallwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stallwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stallwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stallwatch.labels" -}}
helm.sh/chart: {{ include "stallwatch.chart" . }}
{{ include "stallwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: exporter
app.kubernetes.io/part-of: stallwatch
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.customLabels }}
{{ tpl (toYaml .) $ }}
{{- end }}
{{- if .Values.releaseLabel }}
release: {{ .Release.Name }}
{{- end }}
{{- end -}}

{{/*
Labels of the objects Prometheus selects (ServiceMonitor, PodMonitor, PrometheusRule):
the common labels, `release: <prometheusRelease>` when set (kube-prometheus-stack's default
selectors), then the object's own additionalLabels (passed as .extra).
*/}}
{{- define "stallwatch.monitoringLabels" -}}
{{- $labels := include "stallwatch.labels" .ctx | fromYaml -}}
{{- with .ctx.Values.prometheusRelease -}}
{{- $_ := set $labels "release" . -}}
{{- end -}}
{{- range $k, $v := (.extra | default (dict)) -}}
{{- $_ := set $labels $k $v -}}
{{- end -}}
{{- toYaml $labels -}}
{{- end -}}

{{- define "stallwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stallwatch.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The image reference: [registry/]repository then @digest (wins) or :tag (default appVersion).
global.imageRegistry wins over image.registry; an empty registry leaves the repository as is.
*/}}
{{- define "stallwatch.image" -}}
{{- $registry := .Values.global.imageRegistry | default .Values.image.registry -}}
{{- $repo := .Values.image.repository -}}
{{- if $registry -}}{{- $repo = printf "%s/%s" (trimSuffix "/" $registry) $repo -}}{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets: global.imagePullSecrets then imagePullSecrets; names or {name: ...}. */}}
{{- define "stallwatch.imagePullSecrets" -}}
{{- range (concat .Values.global.imagePullSecrets .Values.imagePullSecrets) }}
{{- if kindIs "map" . }}
- {{ toYaml . | trim }}
{{- else }}
- name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The rendered config file (the ConfigMap's only key). */}}
{{- define "stallwatch.configYaml" -}}
{{- toYaml (required "config is required" .Values.config) -}}
{{- end -}}

{{/*
RBAC derivation.

stallwatch.rbac.grant adds resources of one API group to one scope of an accumulator:
  acc:   dict scope -> dict apiGroup -> list of resources
  scope: a namespace name, or "_cluster" (a namespace name never contains "_")
  group: API group, "core" for the core ("") group
Dicts are shared by reference, so the caller's accumulator is updated in place.
*/}}
{{- define "stallwatch.rbac.grant" -}}
{{- $scope := get .acc .scope | default (dict) -}}
{{- $have := get $scope .group | default (list) -}}
{{- $_ := set $scope .group (concat $have .resources | uniq | sortAlpha) -}}
{{- $_ := set .acc .scope $scope -}}
{{- end -}}

{{/* Workload kinds that `images[].workloads.kind` may name. */}}
{{- define "stallwatch.rbac.workloadPlural" -}}
{{- $plurals := dict "Deployment" "deployments" "DaemonSet" "daemonsets" "StatefulSet" "statefulsets" -}}
{{- $p := get $plurals .kind -}}
{{- if not $p -}}
{{- fail (printf "config.targets[%s]: workload kind %q is not one of Deployment, DaemonSet, StatefulSet" .target .kind) -}}
{{- end -}}
{{- $p -}}
{{- end -}}

{{/*
The plural RBAC names a target's resource by, as `stallwatch rbac` computes it: the plural of a
built-in kind, else resource.plural, else the kind lowercased with the CRD default rule (-s, -x,
-z, -ch, -sh take "es"; consonant + y becomes "ies"; otherwise "s").
*/}}
{{- define "stallwatch.rbac.plural" -}}
{{- $builtin := dict "apps/v1/Deployment" "deployments" "apps/v1/DaemonSet" "daemonsets" "apps/v1/StatefulSet" "statefulsets" "apps/v1/ReplicaSet" "replicasets" "/v1/Pod" "pods" "/v1/Node" "nodes" "/v1/Event" "events" "coordination.k8s.io/v1/Lease" "leases" "apiregistration.k8s.io/v1/APIService" "apiservices" -}}
{{- $b := get $builtin (printf "%s/%s/%s" (.group | default "") .version .kind) -}}
{{- if $b -}}{{- $b -}}
{{- else if .plural -}}{{- .plural -}}
{{- else -}}
{{- $k := lower .kind -}}
{{- $n := len $k -}}
{{- if or (hasSuffix "s" $k) (hasSuffix "x" $k) (hasSuffix "z" $k) (hasSuffix "ch" $k) (hasSuffix "sh" $k) -}}{{- printf "%ses" $k -}}
{{- else if and (hasSuffix "y" $k) (gt $n 1) (not (has (substr (int (sub $n 2)) (int (sub $n 1)) $k) (list "a" "e" "i" "o" "u"))) -}}{{- printf "%sies" (trimSuffix "y" $k) -}}
{{- else -}}{{- printf "%ss" $k -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
stallwatch.rbac.scopes renders (as YAML) the accumulator for .Values.config:
  {<scope>: {<group>: [resources...]}}
It follows the exporter's watch plan (`stallwatch rbac --config F` prints the same rules;
tests/deploy/check compares them for every test values file and example config):
  target resource in each of its namespaces (or cluster-wide); pods there for workload kinds,
  and replicasets for Deployments (their current pod-template-hash);
  Warning events there with `events: true` (always for the kubearmor preset);
  images[].workloads and their pods (and replicasets for Deployments) in workloads.namespace,
  else the target's only namespace, else cluster-wide; overriddenBy (per slot, else the target's) Deployments in its namespace,
  else the workloads'; controller.lease leases and controller.pods pods in their namespaces;
  context.nodes nodes (default: on with the kubearmor preset); context.apiServices apiservices.
*/}}
{{- define "stallwatch.rbac.scopes" -}}
{{- $acc := dict -}}
{{- $config := .Values.config | default (dict) -}}
{{- $kubearmor := false -}}
{{- range $i, $t := ($config.targets | default (list)) -}}
{{- $id := printf "%d" $i -}}
{{- if $t.name -}}{{- $id = printf "%d (%s)" $i $t.name -}}{{- end -}}
{{- if $t.preset -}}
  {{- if eq $t.preset "kubearmor" -}}
    {{- $kubearmor = true -}}
    {{- $ns := $t.namespace | default "kubearmor" -}}
    {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $ns "group" "operator.kubearmor.com" "resources" (list "kubearmorconfigs")) -}}
    {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $ns "group" "apps" "resources" (list "daemonsets" "deployments" "replicasets")) -}}
    {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $ns "group" "core" "resources" (list "pods" "events")) -}}
  {{- else if eq $t.preset "workloads" -}}
    {{- range $ns := ($t.namespaces | default (list "_cluster")) -}}
      {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $ns "group" "apps" "resources" (list "deployments" "daemonsets" "statefulsets" "replicasets")) -}}
      {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $ns "group" "core" "resources" (list "pods")) -}}
      {{- if $t.events -}}
        {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $ns "group" "core" "resources" (list "events")) -}}
      {{- end -}}
    {{- end -}}
  {{- else -}}
    {{- fail (printf "config.targets[%s]: the chart cannot derive RBAC for preset %q (known: kubearmor, workloads); list its resources as generic targets or in rbac.additionalReadRules" $id $t.preset) -}}
  {{- end -}}
{{- else if $t.resource -}}
  {{- $r := $t.resource -}}
  {{- $plural := include "stallwatch.rbac.plural" $r -}}
  {{- $group := $r.group | default "core" -}}
  {{- $workload := and (eq ($r.group | default "") "apps") (eq $r.version "v1") (has $r.kind (list "Deployment" "DaemonSet" "StatefulSet")) -}}
  {{- $scopes := $t.namespaces | default (list "_cluster") -}}
  {{- range $ns := $scopes -}}
    {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $ns "group" $group "resources" (list $plural)) -}}
    {{- if $workload -}}
      {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $ns "group" "core" "resources" (list "pods")) -}}
      {{- if eq $r.kind "Deployment" -}}
        {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $ns "group" "apps" "resources" (list "replicasets")) -}}
      {{- end -}}
    {{- end -}}
    {{- if $t.events -}}
      {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $ns "group" "core" "resources" (list "events")) -}}
    {{- end -}}
  {{- end -}}
  {{- $linkScope := "_cluster" -}}
  {{- if eq (len ($t.namespaces | default (list))) 1 -}}{{- $linkScope = first $t.namespaces -}}{{- end -}}
  {{- range $img := ($t.images | default (list)) -}}
    {{- $wl := $img.workloads | default (dict) -}}
    {{- $wlNs := $wl.namespace | default $linkScope -}}
    {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $wlNs "group" "core" "resources" (list "pods")) -}}
    {{- if $wl.kind -}}
      {{- $p := include "stallwatch.rbac.workloadPlural" (dict "kind" $wl.kind "target" $id) -}}
      {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $wlNs "group" "apps" "resources" (list $p)) -}}
      {{- if eq $wl.kind "Deployment" -}}
        {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $wlNs "group" "apps" "resources" (list "replicasets")) -}}
      {{- end -}}
    {{- end -}}
    {{- with ($img.overriddenBy | default $t.overriddenBy) -}}
      {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" (.namespace | default $wlNs) "group" "apps" "resources" (list "deployments")) -}}
    {{- end -}}
  {{- end -}}
{{- else -}}
  {{- fail (printf "config.targets[%s]: needs `preset` or `resource`" $id) -}}
{{- end -}}
{{- with $t.controller -}}
  {{- with .lease -}}
    {{- $leaseNs := required (printf "config.targets[%s].controller.lease.namespace is required" $id) .namespace -}}
    {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $leaseNs "group" "coordination.k8s.io" "resources" (list "leases")) -}}
  {{- end -}}
  {{- with .pods -}}
    {{- $podsNs := required (printf "config.targets[%s].controller.pods.namespace is required" $id) .namespace -}}
    {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $podsNs "group" "core" "resources" (list "pods")) -}}
  {{- end -}}
{{- end -}}
{{- end -}}
{{- $ctx := $config.context | default (dict) -}}
{{- if ternary $ctx.nodes $kubearmor (hasKey $ctx "nodes") -}}
  {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" "_cluster" "group" "core" "resources" (list "nodes")) -}}
{{- end -}}
{{- if $ctx.apiServices -}}
  {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" "_cluster" "group" "apiregistration.k8s.io" "resources" (list "apiservices")) -}}
{{- end -}}
{{- range $i, $r := .Values.rbac.additionalReadRules -}}
  {{- range $g := (required (printf "rbac.additionalReadRules[%d].apiGroups is required" $i) $r.apiGroups) -}}
    {{- range $ns := ($r.namespaces | default (list "_cluster")) -}}
      {{- include "stallwatch.rbac.grant" (dict "acc" $acc "scope" $ns "group" (ternary "core" $g (eq $g "")) "resources" (required (printf "rbac.additionalReadRules[%d].resources is required" $i) $r.resources)) -}}
    {{- end -}}
  {{- end -}}
{{- end -}}
{{- /* Never secrets, whatever the config or extra rules say. */ -}}
{{- range $scope, $groups := $acc -}}
  {{- if has "secrets" (get $groups "core" | default (list)) -}}
    {{- fail "stallwatch never reads Secrets: remove secrets from the config/rbac.additionalReadRules" -}}
  {{- end -}}
  {{- range $g, $res := $groups -}}
    {{- if or (has "*" $res) (eq $g "*") -}}
      {{- fail "stallwatch RBAC is least privilege: wildcards are not allowed" -}}
    {{- end -}}
  {{- end -}}
{{- end -}}
{{- toYaml $acc -}}
{{- end -}}

{{/* Rules of one scope: one rule per API group, resources sorted, read-only verbs. */}}
{{- define "stallwatch.rbac.rules" -}}
{{- range $g := (keys . | sortAlpha) }}
- apiGroups: [{{ ternary "" $g (eq $g "core") | quote }}]
  resources: {{ get $ $g | toJson }}
  verbs: ["get", "list", "watch"]
{{- end -}}
{{- end -}}
