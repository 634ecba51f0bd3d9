{{- define "shared" -}}from-b{{- end -}}
{{- define "empty" -}}{{- end -}}
