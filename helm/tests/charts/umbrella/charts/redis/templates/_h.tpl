{{- define "redis.fullname" -}}{{ .Release.Name }}-{{ .Chart.Name }}{{- end -}}
