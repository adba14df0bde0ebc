{{/* The namespace both Deployments run in. */}}
{{- define "infergate.namespace" -}}
{{ .Values.namespace.name }}
{{- end }}

{{/* On every object (kustomize's `labels:` in deploy/base), plus who manages it. Never in selectors. */}}
{{- define "infergate.labels" -}}
app.kubernetes.io/part-of: infergate
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "infergate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The policy files: the shipped ones (files/policy, a link to deploy/base/policy), overridden by values. */}}
{{- define "infergate.policy" -}}
{{- $files := dict }}
{{- range $path, $_ := .Files.Glob "files/policy/*.yaml" }}
{{- $_ := set $files (base $path) ($.Files.Get $path) }}
{{- end }}
{{- range $name, $text := .Values.policy.files }}
{{- $_ := set $files $name $text }}
{{- end }}
{{- toYaml $files }}
{{- end }}

{{/* Pod template annotations: a change of policy or scheduler configuration rolls the pods (kustomize does
     it with a content hash in the ConfigMap's name). */}}
{{- define "infergate.checksums" -}}
checksum/policy: {{ include "infergate.policy" . | sha256sum }}
checksum/scheduler-config: {{ .Files.Get "files/kube-scheduler-config.yaml" | sha256sum }}
{{- end }}

{{/* caBundle of every webhook (self-signed mode): base64 of the CA, from values or from the Secret. */}}
{{- define "infergate.caBundle" -}}
{{- if .Values.tls.caCert }}
{{- .Values.tls.caCert | b64enc }}
{{- else }}
{{- $secret := lookup "v1" "Secret" (include "infergate.namespace" .) .Values.tls.secretName }}
{{- $ca := dig "data" "ca.crt" "" ($secret | default dict) }}
{{- if not $ca }}
{{- fail (printf "tls.mode self-signed needs the CA: pass --set-file tls.caCert=<ca.crt> (from `infergate certs`, see docs/install.md), or create the Secret %s/%s with ca.crt first" (include "infergate.namespace" .) .Values.tls.secretName) }}
{{- end }}
{{- $ca }}
{{- end }}
{{- end }}

{{/* Namespaces sent to the webhook: the user's selector, never this namespace or kube-system. */}}
{{- define "infergate.namespaceSelector" -}}
{{- with .Values.webhook.namespaceSelector.matchLabels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
matchExpressions:
  {{- with .Values.webhook.namespaceSelector.matchExpressions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: [{{ include "infergate.namespace" . }}, kube-system]
{{- end }}

{{/* What every webhook of both configurations shares after its rules. */}}
{{- define "infergate.webhookCommon" -}}
namespaceSelector:
  {{- include "infergate.namespaceSelector" . | trim | nindent 2 }}
objectSelector: {}
matchPolicy: Equivalent
sideEffects: None
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
failurePolicy: {{ .Values.webhook.failurePolicy }}
{{- end }}

{{- define "infergate.clientConfig" -}}
clientConfig:
  service:
    name: infergate-webhook
    namespace: {{ include "infergate.namespace" .root }}
    path: {{ .path }}
    port: 443
  {{- if eq .root.Values.tls.mode "self-signed" }}
  caBundle: {{ include "infergate.caBundle" .root }}
  {{- end }}
{{- end }}

{{- define "infergate.webhookAnnotations" -}}
{{- if eq .Values.tls.mode "cert-manager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ include "infergate.namespace" . }}/infergate-webhook
{{- end }}
{{- end }}

{{/* OME and KServe InferenceServices; a rule for a CRD that is not installed matches nothing. */}}
{{- define "infergate.inferenceServiceRules" -}}
- operations: [CREATE, UPDATE]
  apiGroups: [ome.io]
  apiVersions: [v1beta1]
  resources: [inferenceservices]
  scope: Namespaced
- operations: [CREATE, UPDATE]
  apiGroups: [serving.kserve.io]
  apiVersions: [v1beta1]
  resources: [inferenceservices]
  scope: Namespaced
{{- end }}
