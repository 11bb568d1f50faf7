{{/*
Base name of the release's objects: fullnameOverride, else the release
name when it already contains the chart name, else "<release>-<chart>".
Truncated to leave room for the "-controller" and "-snapshot-ca" suffixes.
*/}}
{{- define "tollgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Name of the controller's Deployment, ServiceAccount, snapshot Service,
Lease and RBAC objects. For release "tollgate" it is "tollgate-controller",
the name the controller's own --snapshot-url default expects.
*/}}
{{- define "tollgate.controller" -}}
{{- printf "%s-controller" (include "tollgate.fullname" .) -}}
{{- end -}}

{{/* Labels on every object of the release (selector labels aside). */}}
{{- define "tollgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: tollgate
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels selecting the controller pods. */}}
{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: tollgate-controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Image reference of the controller. */}}
{{- define "tollgate.controllerImage" -}}
{{- printf "%s:%s" .Values.controller.image.repository (default .Chart.AppVersion .Values.controller.image.tag) -}}
{{- end -}}

{{/* Image reference the controller provisions data planes with. */}}
{{- define "tollgate.dataplaneImage" -}}
{{- printf "%s:%s" .Values.dataplane.image.repository (default .Chart.AppVersion .Values.dataplane.image.tag) -}}
{{- end -}}

{{/* Namespaces allowed to scrape the admin port, as a NetworkPolicy peer. */}}
{{- define "tollgate.metricsPeer" -}}
{{- if .Values.networkPolicy.metricsNamespaceSelector -}}
namespaceSelector:
  {{- toYaml .Values.networkPolicy.metricsNamespaceSelector | nindent 2 }}
{{- else -}}
namespaceSelector:
  matchLabels:
    kubernetes.io/metadata.name: {{ .Release.Namespace }}
{{- end -}}
{{- end -}}

{{/*
The standard OpenTelemetry variables of the controller. The controller
copies every OTEL_* variable it has but OTEL_SERVICE_NAME into the data
planes it provisions, so one setting covers both; each binary names
itself.
*/}}
{{- define "tollgate.otelEnv" -}}
{{- with .Values.telemetry.otlp.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $.Values.telemetry.otlp.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $.Values.telemetry.samplingRatio | toString | quote }}
{{- end }}
{{- with .Values.telemetry.resourceAttributes }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ include "tollgate.keyValues" . | quote }}
{{- end }}
{{- with .Values.telemetry.otlp.tls }}
{{- if .secretName }}
{{- if .ca }}
- name: OTEL_EXPORTER_OTLP_CERTIFICATE
  value: {{ include "tollgate.otlpTlsDir" $ }}/ca.crt
{{- end }}
{{- if .clientCertificate }}
- name: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE
  value: {{ include "tollgate.otlpTlsDir" $ }}/tls.crt
- name: OTEL_EXPORTER_OTLP_CLIENT_KEY
  value: {{ include "tollgate.otlpTlsDir" $ }}/tls.key
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Where the controller reads the OTLP TLS Secret. The controller copies the
files into each data plane's client Secret and points the data plane's
variables there, so the path matters only in the controller's pod.
*/}}
{{- define "tollgate.otlpTlsDir" -}}
/etc/tollgate/otlp-tls
{{- end -}}

{{/* A map as "k1=v1,k2=v2", keys sorted. */}}
{{- define "tollgate.keyValues" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $k (toString $v)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/*
Annotations of objects whose kinds are CRDs of this same release (the
default GatewayClass and GatewayConfig). Helm maps every template to an API
before creating anything, so such objects can't be plain templates on a
fresh cluster; as post-install/post-upgrade hooks they are applied after
the CRDs exist, and server-side apply makes each upgrade update them in
place, never delete them (a GatewayClass in use must not go away).
*/}}
{{- define "tollgate.afterCrds" -}}
helm.sh/hook: post-install,post-upgrade
{{- end -}}

{{/*
A GatewayClass name as the provisioned objects' label value, as the
controller writes it (tollgate_provision::names::label_value): whole up to
63 characters, else its first 38, "-", the first 8 hex digits of its
SHA-256 and "-tollgate".
*/}}
{{- define "tollgate.labelValue" -}}
{{- if le (len .) 63 -}}
{{- . -}}
{{- else -}}
{{- printf "%s-%s-tollgate" (trunc 38 .) (sha256sum . | trunc 8) -}}
{{- end -}}
{{- end -}}
