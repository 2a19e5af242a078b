{{/* The chart's name (nameOverride): the pods' app.kubernetes.io/name is "<name>-operator". */}}
{{- define "controlplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 50 | trimSuffix "-" -}}
{{- end }}

{{/*
Prefix of the release's object names (fullnameOverride): "controlplane" for a release named
controlplane, so the defaults name everything as dist/install.yaml and config/ do.
*/}}
{{- define "controlplane.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "controlplane.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end }}

{{- define "controlplane.serviceAccountName" -}}
{{- default (printf "%s-operator" (include "controlplane.fullname" .)) .Values.serviceAccount.name -}}
{{- end }}

{{- define "controlplane.webhookServiceName" -}}
{{- printf "%s-webhook" (include "controlplane.fullname" .) -}}
{{- end }}

{{- define "controlplane.webhookCertSecretName" -}}
{{- printf "%s-webhook-cert" (include "controlplane.fullname" .) -}}
{{- end }}

{{/* Labels on every object of the release (commonLabels added). */}}
{{- define "controlplane.labels" -}}
app.kubernetes.io/part-of: controlplane
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The operator's pods: what the Deployment, Services, PDB and NetworkPolicy select. */}}
{{- define "controlplane.selector" -}}
app.kubernetes.io/name: {{ include "controlplane.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* repository@digest when a digest is given (the tag is then only informative), else repository:tag. */}}
{{- define "controlplane.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/*
PodDisruptionBudget's API: what the cluster serves (helm install/upgrade, Argo CD pass its resources);
without a cluster (helm template) the Kubernetes version decides: policy/v1 from 1.21 on.
*/}}
{{- define "controlplane.pdbApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" -}}
policy/v1
{{- else if .Capabilities.APIVersions.Has "policy/v1beta1/PodDisruptionBudget" -}}
policy/v1beta1
{{- else if semverCompare ">=1.21.0-0" .Capabilities.KubeVersion.Version -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end -}}
{{- end }}

{{/*
The documents of a file under files/ (copied there by `make manifests` from config/), parsed.
*/}}
{{- define "controlplane.documents" -}}
{{- $docs := list -}}
{{- range $raw := regexSplit "(?m)^---\\s*$" (.root.Files.Get .file) -1 -}}
{{- $o := fromYaml $raw -}}
{{- if and $o $o.kind -}}{{- $docs = append $docs $o -}}{{- end -}}
{{- end -}}
{{- toJson $docs -}}
{{- end }}
