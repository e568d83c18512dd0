{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "charterflow-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name: release-name + chart name, unless the release already contains it. */}}
{{- define "charterflow-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object of the chart. */}}
{{- define "charterflow-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "charterflow-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: charterflow
{{- end }}

{{/* Labels that select the operator's pods; never change them after the first release. */}}
{{- define "charterflow-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "charterflow-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "charterflow-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "charterflow-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "charterflow-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The namespaces the operator is limited to; empty means the whole cluster. */}}
{{- define "charterflow-operator.watchNamespaces" -}}
{{- join "," .Values.watchNamespaces }}
{{- end }}

{{/* RBAC rules the operator needs in each namespace it manages (see rbac.yaml). */}}
{{- define "charterflow-operator.namespacedRules" -}}
# The CharterFlow resources themselves: read, and write status and Kopf's annotations.
- apiGroups: [charterflow.app]
  resources: [charterflows]
  verbs: [get, list, watch, patch]
- apiGroups: [charterflow.app]
  resources: [charterflows/status]
  verbs: [patch]
# Children, applied with server-side apply (patch; create when the object is new).
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch]
# The app's ServiceAccount; deleted when spec.serviceAccount.name names another (only if ours).
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch]
# Optional children are also deleted when their feature is turned off.
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, list, watch, create, patch, delete]
# spec.monitoring: the Prometheus Operator's kinds, when the cluster has them (not watched).
- apiGroups: [monitoring.coreos.com]
  resources: [podmonitors, prometheusrules]
  verbs: [get, create, patch, delete]
# The migration Job that gates a version change (replaced by the next version's).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
# Secrets: read the referenced ones (to checksum them and to notice when they appear), create
# the generated JWT secret once and set its owner (spec.deletionPolicy). Never delete one.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch]
# Pods of finished backup Jobs: read-only, for the key (or the error) in their termination
# message, which status.lastBackup reports. Once per Job; never create, change or delete pods.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Kubernetes Events for status transitions (Kopf posts core/v1 Events).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}
