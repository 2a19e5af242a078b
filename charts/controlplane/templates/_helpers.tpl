{{/* Labels on every object of the release. */}}
{{- define "controlplane.labels" -}}
app.kubernetes.io/part-of: controlplane
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The operator's pods: what the Deployment, Services, PDB and NetworkPolicy select. */}}
{{- define "controlplane.selector" -}}
app.kubernetes.io/name: controlplane-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "controlplane.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
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
