{{- define "umbrella.host" -}}{{ .Release.Name }}-redis{{- end -}}
