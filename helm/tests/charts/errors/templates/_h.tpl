{{- define "errors.req" -}}
{{ required "nested value needed" .Values.deep }}
{{- end -}}
