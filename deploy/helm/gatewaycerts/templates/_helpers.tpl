{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "gatewaycerts.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, else RELEASE-CHART (or RELEASE when it already
contains the chart name).
*/}}
{{- define "gatewaycerts.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gatewaycerts.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "gatewaycerts.labels" -}}
helm.sh/chart: {{ include "gatewaycerts.chart" . }}
{{ include "gatewaycerts.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: api
app.kubernetes.io/part-of: gatewaycerts
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: immutable for the life of the Deployment, keep them minimal.
*/}}
{{- define "gatewaycerts.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatewaycerts.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gatewaycerts.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatewaycerts.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: repository@digest when a digest is given, else repository:tag (tag defaults to appVersion).
*/}}
{{- define "gatewaycerts.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The fewest pods the release runs: the HPA floor when autoscaling, else replicaCount.
*/}}
{{- define "gatewaycerts.minReplicas" -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) 0) }}
{{- int .Values.autoscaling.minReplicas }}
{{- else }}
{{- int .Values.replicaCount }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: long enough for the preStop sleep plus the service's own shutdown timeout.
*/}}
{{- define "gatewaycerts.terminationGracePeriodSeconds" -}}
{{- $needed := add (int .Values.preStopSeconds) (int .Values.shutdownTimeoutSeconds) }}
{{- if gt (int .Values.terminationGracePeriodSeconds) 0 }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- else }}
{{- add $needed 10 }}
{{- end }}
{{- end }}

{{/* Mount points of the secret files and the state directory. */}}
{{- define "gatewaycerts.stateDir" -}}/var/lib/gatewaycerts{{- end }}
{{- define "gatewaycerts.kekDir" -}}/var/run/secrets/gatewaycerts/kek{{- end }}
{{- define "gatewaycerts.jwtDir" -}}/var/run/secrets/gatewaycerts/jwt{{- end }}
{{- define "gatewaycerts.mongodbCADir" -}}/var/run/secrets/gatewaycerts/mongodb-ca{{- end }}
{{- define "gatewaycerts.tlsDir" -}}/var/run/secrets/gatewaycerts/tls{{- end }}
{{- define "gatewaycerts.scheme" -}}{{ ternary "https" "http" (ne .Values.tls.existingSecret "") }}{{- end }}

{{/*
Every check that the schema cannot express. Included by the Deployment and the ConfigMap, so that
`helm template`, `helm lint` and `helm install` all stop with one clear message instead of deploying a
service that would refuse to start (or, worse, fall back to development keys).
*/}}
{{- define "gatewaycerts.validate" -}}
{{- $v := .Values }}
{{- if not $v.publicUrl }}
{{- fail "publicUrl is required: the external http(s) URL relying parties use to reach the service (CRL distribution points point there)" }}
{{- end }}
{{- if not $v.mongodb.existingSecret }}
{{- fail "mongodb.existingSecret is required: name an existing Secret whose key mongodb.uriKey holds the MongoDB URI (mongodb://...replicaSet=...)" }}
{{- end }}
{{- if not $v.kek.existingSecret }}
{{- fail "kek.existingSecret is required: name an existing Secret whose key kek.key holds the key-encryption keys (one ID:BASE64 per line)" }}
{{- end }}
{{- if and (not $v.jwt.jwksUrl) (not $v.jwt.publicKey.existingSecret) }}
{{- fail "set jwt.jwksUrl or jwt.publicKey.existingSecret: without a token key source the service cannot verify tokens (and, with development keys off, refuses to start)" }}
{{- end }}
{{- if and $v.jwt.jwksUrl $v.jwt.publicKey.existingSecret }}
{{- fail "set only one of jwt.jwksUrl and jwt.publicKey.existingSecret" }}
{{- end }}
{{- if and (le (int $v.terminationGracePeriodSeconds) (add (int $v.preStopSeconds) (int $v.shutdownTimeoutSeconds))) (gt (int $v.terminationGracePeriodSeconds) 0) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be larger than preStopSeconds + shutdownTimeoutSeconds (%d), or 0 to compute it" (int $v.terminationGracePeriodSeconds) (add (int $v.preStopSeconds) (int $v.shutdownTimeoutSeconds))) }}
{{- end }}
{{- if and $v.autoscaling.enabled (lt (int $v.autoscaling.maxReplicas) (int (include "gatewaycerts.minReplicas" .))) }}
{{- fail (printf "autoscaling.maxReplicas (%d) must be at least the HPA floor (%s)" (int $v.autoscaling.maxReplicas) (include "gatewaycerts.minReplicas" .)) }}
{{- end }}
{{- if $v.podDisruptionBudget.enabled }}
{{- $min := toString (default "" $v.podDisruptionBudget.minAvailable) }}
{{- $max := toString (default "" $v.podDisruptionBudget.maxUnavailable) }}
{{- if and (eq $min "") (eq $max "") }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable (or disable it)" }}
{{- end }}
{{- if and (ne $min "") (ne $max "") }}
{{- fail "podDisruptionBudget: set only one of minAvailable and maxUnavailable (set the other to \"\")" }}
{{- end }}
{{- if and (ne $min "") (not (hasSuffix "%" $min)) (ge (int $min) (int (include "gatewaycerts.minReplicas" .))) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%s) must be below the fewest replicas (%s), or no node could be drained: lower it, or use maxUnavailable" $min (include "gatewaycerts.minReplicas" .)) }}
{{- end }}
{{- end }}
{{- if and $v.metrics.serviceMonitor.enabled (not $v.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled: the service only serves /metrics when metrics are on" }}
{{- end }}
{{- if and $v.networkPolicy.enabled (not $v.networkPolicy.gatewayNamespaces) }}
{{- fail "networkPolicy.gatewayNamespaces is empty: no gateway could reach the service (list their namespaces, or disable networkPolicy)" }}
{{- end }}
{{- if and $v.networkPolicy.enabled $v.networkPolicy.egress.restricted (not $v.networkPolicy.egress.mongodb.cidrs) }}
{{- fail "networkPolicy.egress.restricted needs networkPolicy.egress.mongodb.cidrs: the CIDRs of the MongoDB members" }}
{{- end }}
{{- if and $v.networkPolicy.enabled $v.networkPolicy.egress.restricted $v.jwt.jwksUrl (not $v.networkPolicy.egress.extraRules) }}
{{- fail "networkPolicy.egress.restricted blocks jwt.jwksUrl: add an egress rule for the JWKS endpoint to networkPolicy.egress.extraRules (or use jwt.publicKey)" }}
{{- end }}
{{- $managed := list "GATEWAYCERTS_HOST" "GATEWAYCERTS_PORT" "GATEWAYCERTS_STATE_DIR" "GATEWAYCERTS_DATABASE_URL" "GATEWAYCERTS_KEK" "GATEWAYCERTS_KEK_FILE" "GATEWAYCERTS_JWT_JWKS_URL" "GATEWAYCERTS_JWT_PUBLIC_KEY_FILE" "GATEWAYCERTS_JWT_ISSUER" "GATEWAYCERTS_JWT_AUDIENCE" "GATEWAYCERTS_JWT_ALGORITHMS" "GATEWAYCERTS_PUBLIC_URL" "GATEWAYCERTS_LOG_LEVEL" "GATEWAYCERTS_LOG_FORMAT" "GATEWAYCERTS_ALLOW_DEV_KEYS" "GATEWAYCERTS_METRICS_ENABLED" "GATEWAYCERTS_SHUTDOWN_TIMEOUT" "GATEWAYCERTS_WORKERS" "GATEWAYCERTS_MAX_BODY_BYTES" "GATEWAYCERTS_MONGODB_DATABASE" }}
{{- range $v.extraEnv }}
{{- if has .name $managed }}
{{- fail (printf "extraEnv must not set %s: the chart manages it (use the matching value, or a Secret for keys)" .name) }}
{{- end }}
{{- end }}
{{- end }}
