{{/* Names: <release>-<chart> unless overridden, cut to the 63 characters Kubernetes allows. */}}
{{- define "todo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "todo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "todo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "todo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: todo-workflows
{{- end -}}

{{/* Selector labels of one role: (dict "root" $ "role" "api") */}}
{{- define "todo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "todo.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "todo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "todo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "todo.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Scope of a component: the app-ids of the roles named, e.g. (dict "root" $ "roles" (list "api")). */}}
{{- define "todo.scopes" -}}
scopes:
{{- range .roles }}
  - {{ index $.root.Values.dapr.appIds . }}
{{- end }}
{{- end -}}

{{/* Secret store the components read credentials from: Dapr's built-in store on Kubernetes. */}}
{{- define "todo.secretStoreName" -}}
{{- if eq .Values.dapr.secretStore.type "kubernetes" -}}
kubernetes
{{- else -}}
{{- .Values.dapr.secretStore.name -}}
{{- end -}}
{{- end -}}

{{- define "todo.kafkaBrokers" -}}
{{- if .Values.dapr.pubsub.brokers -}}
{{- .Values.dapr.pubsub.brokers -}}
{{- else if .Values.kafka.strimzi.enabled -}}
{{- printf "%s-kafka-bootstrap.%s.svc:9092" .Values.kafka.strimzi.clusterName .Release.Namespace -}}
{{- else -}}
{{- fail "dapr.pubsub.brokers is empty and kafka.strimzi.enabled is false: set the Kafka bootstrap brokers (host:port,...) or enable Strimzi." -}}
{{- end -}}
{{- end -}}

{{/* The hosts the MCP endpoint accepts: the configured ones plus the ingress host. */}}
{{- define "todo.mcpAllowedHosts" -}}
{{- $hosts := .Values.mcp.allowedHosts -}}
{{- if and .Values.ingress.enabled (not (has .Values.ingress.host $hosts)) -}}
{{- $hosts = append $hosts .Values.ingress.host -}}
{{- end -}}
{{- toJson $hosts -}}
{{- end -}}

{{/* Security context every container of the chart runs with. */}}
{{- define "todo.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "todo.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment both roles and the migration Job share. */}}
{{- define "todo.env" -}}
- name: TODO_ENV
  value: {{ .Values.environment | quote }}
- name: TODO_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.name }}
      key: {{ .Values.secrets.keys.databaseUrl }}
{{- if .Values.auth.jwksUrl }}
- name: TODO_JWKS_URL
  value: {{ .Values.auth.jwksUrl | quote }}
{{- else }}
- name: TODO_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.name }}
      key: {{ .Values.secrets.keys.jwtSecret }}
{{- end }}
{{- with .Values.auth.audience }}
- name: TODO_JWT_AUDIENCE
  value: {{ . | quote }}
{{- end }}
{{- with .Values.auth.issuer }}
- name: TODO_JWT_ISSUER
  value: {{ . | quote }}
{{- end }}
- name: TODO_APP_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.appTokenSecret }}
      key: token
- name: TODO_PUBSUB_NAME
  value: {{ .Values.dapr.pubsub.name | quote }}
- name: TODO_LOG_FORMAT
  value: {{ .Values.logging.format | quote }}
- name: TODO_LOG_LEVEL
  value: {{ .Values.logging.level | quote }}
{{- end -}}

{{/* checkov findings skipped on purpose, each with its reason, as checkov reads them:
(dict "root" $ "skips" (list "CKV_K8S_35=why")); the image checks are added per values. */}}
{{- define "todo.checkovSkips" -}}
{{- $skips := .skips -}}
{{- if .image -}}
{{- if not .root.Values.image.digest -}}
{{- $skips = append $skips "CKV_K8S_43=image.digest is set at rollout by the deploy workflow (--set image.digest); a values file cannot know it in advance" -}}
{{- end -}}
{{- if eq .root.Values.image.pullPolicy "Never" -}}
{{- $skips = append $skips "CKV_K8S_15=Minikube runs the image built into its own image store; there is no registry to pull from" -}}
{{- end -}}
{{- end -}}
{{- range $i, $skip := $skips }}
checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end -}}
{{- end -}}

{{/* Why the app's credentials are environment variables (checkov CKV_K8S_35). */}}
{{- define "todo.skipSecretEnv" -}}
CKV_K8S_35=the app's settings (pydantic-settings, todos/settings.py) are TODO_* environment variables; the values come from secretKeyRef, never from the chart
{{- end -}}

{{/* Egress rules shared by the NetworkPolicies: DNS, and PostgreSQL (in-cluster pods or CIDRs). */}}
{{- define "todo.egressDns" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end -}}

{{- define "todo.egressPostgres" -}}
# PostgreSQL: the app's database and the workflow state store.
- to:
    {{- with $.Values.postgres.podSelector }}
    - podSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
      {{- with $.Values.postgres.namespace }}
      namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ . }}
      {{- end }}
    {{- end }}
    {{- range $.Values.networkPolicy.egress.postgres.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - port: {{ $.Values.networkPolicy.egress.postgres.port }}
      protocol: TCP
{{- end -}}

{{/*
daprd's environment (the dapr.io/env annotation): GOMEMLIMIT as a share of its
memory limit, so its garbage collector tightens before the kernel kills it (daprd
keeps every active workflow it hosts in memory), then dapr.sidecar.extraEnv.
Call with (dict "root" $ "limit" "512Mi").
*/}}
{{- define "todo.sidecarEnv" -}}
{{- $sidecar := .root.Values.dapr.sidecar -}}
{{- $env := list -}}
{{- $percent := int $sidecar.goMemLimitPercent -}}
{{- if gt $percent 0 -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" .limit -}}
{{- $units := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 -}}
{{- $bytes := mulf (float64 $number) (get $units (trimPrefix $number .limit)) -}}
{{- $env = append $env (printf "GOMEMLIMIT=%dMiB" (int64 (floor (divf (mulf $bytes $percent) (mulf 100 1048576))))) -}}
{{- end -}}
{{- range $name, $value := $sidecar.extraEnv -}}
{{- $env = append $env (printf "%s=%s" $name $value) -}}
{{- end -}}
{{- join "," $env -}}
{{- end -}}
