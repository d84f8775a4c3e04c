{{/* Names, labels and the watched namespaces, spelt once. */}}

{{- define "tbo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tbo.fullname" -}}
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

{{- define "tbo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tbo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tbo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tbo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tradingbot
{{- end -}}

{{- define "tbo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tbo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tbo.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Watched namespaces in namespaced mode, as a JSON list (default: the release namespace). */}}
{{- define "tbo.namespaces" -}}
{{- if .Values.watch.namespaces -}}
{{- toJson .Values.watch.namespaces -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{/*
The RBAC rules the operator needs, in every watched namespace (namespaced mode) or cluster-wide.
tests/chart/test_rbac.py derives the same list from the operator's code and fails on any difference:
- children (builders.MANAGED_KINDS): list (prune/observe by label), patch (server-side apply,
  the control loop's replicas/restart writes), create (apply's 404 fallback), delete (prune);
- secrets: get (a production bot's credentials must exist before anything is applied);
- tradingbots: get (control loop), list/watch/patch (kopf: watch, progress annotations);
  tradingbots/status: patch; events: create (kopf's and our Events);
- kopf peering: list/watch/patch on KopfPeering (namespaced) or ClusterKopfPeering (cluster-wide).
*/}}
{{- define "tbo.rules" -}}
- apiGroups: ["tradingbot.io"]
  resources: ["tradingbots"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["tradingbot.io"]
  resources: ["tradingbots/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps", "serviceaccounts", "services"]
  verbs: ["list", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["list", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "create", "patch", "delete"]
{{- end -}}
