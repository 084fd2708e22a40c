{{/* Names, labels and the values both programs' configurations are built from. */}}

{{- define "regionpulse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "regionpulse.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "regionpulse.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "regionpulse.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "regionpulse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "regionpulse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: regionpulse
{{- end -}}

{{- define "regionpulse.agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "regionpulse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{/* Selector of every aggregator of the release; a region's adds regionpulse.io/region. */}}
{{- define "regionpulse.aggregator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "regionpulse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: aggregator
{{- end -}}

{{- define "regionpulse.agent.fullname" -}}
{{- printf "%s-agent" (include "regionpulse.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "regionpulse.agent.image" -}}
{{- printf "%s:%s" .Values.agent.image.repository (default .Chart.AppVersion .Values.agent.image.tag) -}}
{{- end -}}

{{- define "regionpulse.aggregator.image" -}}
{{- printf "%s:%s" .Values.aggregator.image.repository (default .Chart.AppVersion .Values.aggregator.image.tag) -}}
{{- end -}}

{{- define "regionpulse.probeKeySecret" -}}
{{- default (printf "%s-probe-key" (include "regionpulse.fullname" .)) .Values.probeKey.existingSecret -}}
{{- end -}}

{{/*
The aggregators of this release as a JSON list of {name, region}: one per entry of
aggregator.regions, or one without a region. `name` is the StatefulSet's name; its headless
Service is NAME-headless and its replicas NAME-0, NAME-1, ...
*/}}
{{- define "regionpulse.aggregators" -}}
{{- $base := printf "%s-aggregator" (include "regionpulse.fullname" .) -}}
{{- $list := list -}}
{{- if .Values.aggregator.enabled -}}
{{- if .Values.aggregator.regions -}}
{{- range .Values.aggregator.regions -}}
{{- $list = append $list (dict "name" (printf "%s-%s" $base . | trunc 52 | trimSuffix "-") "region" .) -}}
{{- end -}}
{{- else -}}
{{- $list = append $list (dict "name" ($base | trunc 52 | trimSuffix "-") "region" "") -}}
{{- end -}}
{{- end -}}
{{- toJson $list -}}
{{- end -}}

{{/* HOST:PORT of every aggregator replica of the release, as the agents address them. */}}
{{- define "regionpulse.aggregatorEndpoints" -}}
{{- $out := list -}}
{{- range (include "regionpulse.aggregators" . | fromJsonArray) -}}
{{- $agg := . -}}
{{- range $i := until (int $.Values.aggregator.replicas) -}}
{{- $out = append $out (printf "%s-%d.%s-headless.%s.svc:%d" $agg.name $i $agg.name $.Release.Namespace (int $.Values.aggregator.grpcPort)) -}}
{{- end -}}
{{- end -}}
{{- toJson (concat $out .Values.agent.externalAggregators) -}}
{{- end -}}

{{/* Fails the render on region settings the programs would refuse, with the value's name. */}}
{{- define "regionpulse.checkRegions" -}}
{{- $names := list -}}
{{- range .Values.regions -}}{{- $names = append $names .name -}}{{- end -}}
{{- if and $names (not .Values.activeRegion) -}}
{{- fail "activeRegion: required once regions are listed" -}}
{{- end -}}
{{- if and .Values.activeRegion (not (has .Values.activeRegion $names)) -}}
{{- fail (printf "activeRegion: %q is not in regions" .Values.activeRegion) -}}
{{- end -}}
{{- range .Values.standbyRegions -}}
{{- if not (has . $names) -}}{{- fail (printf "standbyRegions: %q is not in regions" .) -}}{{- end -}}
{{- end -}}
{{- range .Values.aggregator.regions -}}
{{- if and $names (not (has . $names)) -}}{{- fail (printf "aggregator.regions: %q is not in regions" .) -}}{{- end -}}
{{- end -}}
{{- if and (eq .Values.agent.topologySource "values") (not .Values.agent.region) -}}
{{- fail "agent.region: required with agent.topologySource values" -}}
{{- end -}}
{{- if and .Values.tls.enabled (eq .Values.tls.source "secrets") (not .Values.tls.aggregatorSecret) -}}
{{- fail "tls.aggregatorSecret: required with tls.source secrets" -}}
{{- end -}}
{{- if and .Values.tls.readersCaSecret (not .Values.tls.enabled) -}}
{{- fail "tls.readersCaSecret: needs tls.enabled (readers are told apart by their client certificates)" -}}
{{- end -}}
{{- if and .Values.tls.enabled .Values.tls.mutual (eq .Values.tls.source "secrets") (not .Values.tls.agentSecret) -}}
{{- fail "tls.agentSecret: required with tls.source secrets and tls.mutual" -}}
{{- end -}}
{{- end -}}

{{- define "regionpulse.aggregatorTlsSecret" -}}
{{- if eq .Values.tls.source "secrets" -}}{{ .Values.tls.aggregatorSecret }}{{- else -}}{{ include "regionpulse.fullname" . }}-aggregator-tls{{- end -}}
{{- end -}}

{{- define "regionpulse.agentTlsSecret" -}}
{{- if eq .Values.tls.source "secrets" -}}{{ .Values.tls.agentSecret }}{{- else -}}{{ include "regionpulse.fullname" . }}-agent-tls{{- end -}}
{{- end -}}

{{/* The agent's downward-API environment (docs/configuration.md). */}}
{{- define "regionpulse.agent.env" -}}
- name: NODE_NAME
  valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
- name: HOST_IP
  valueFrom: {fieldRef: {fieldPath: status.hostIP}}
{{- if .Values.agent.region }}
- name: REGION
  value: {{ .Values.agent.region | quote }}
{{- end }}
{{- if .Values.agent.zone }}
- name: ZONE
  value: {{ .Values.agent.zone | quote }}
{{- end }}
{{- end -}}
