{{- define "shared" -}}from-a{{- end -}}
{{- define "recursive" -}}
{{- if gt (int .n) 0 -}}{{ .n }},{{ include "recursive" (dict "n" (sub .n 1)) }}{{- end -}}
{{- end -}}
{{- define "withargs" -}}
{{ .a }}-{{ .b }}-{{ $.a }}
{{- end -}}
