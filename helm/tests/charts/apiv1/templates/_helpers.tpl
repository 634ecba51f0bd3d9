{{- define "apiv1.name" -}}{{ .Release.Name }}-{{ .Chart.Name }}{{- end -}}
