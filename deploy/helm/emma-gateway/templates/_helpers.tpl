{{/* The chart's name. */}}
{{- define "emma-gateway.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The objects' name: the release name when it already says emma-gateway
(so `helm install emma-gateway` names everything as deploy/kubernetes
does), else release-chart.
*/}}
{{- define "emma-gateway.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* What selects the pods: never changes over an upgrade. */}}
{{- define "emma-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "emma-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Every object's labels. */}}
{{- define "emma-gateway.labels" -}}
{{ include "emma-gateway.selectorLabels" . }}
app.kubernetes.io/part-of: emma-gateway
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "emma-gateway.secretName" -}}
{{- if .Values.secrets.create -}}
{{- include "emma-gateway.fullname" . -}}
{{- else -}}
{{- required "secrets.existingSecret is required when secrets.create is false" .Values.secrets.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "emma-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "emma-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
