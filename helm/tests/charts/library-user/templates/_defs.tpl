{{- define "lib.base" -}}
apiVersion: v1
kind: Secret
metadata:
  name: base
type: Opaque
{{- end -}}
{{- define "lib.override" -}}
metadata:
  name: overridden
  labels:
    x: "1"
{{- end -}}
