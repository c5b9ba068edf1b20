{{/* Base name of every object: `<release>-controller` unless overridden. */}}
{{- define "blis.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (default "controller" .Values.nameOverride) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "blis.serviceAccountName" -}}
{{- default (include "blis.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "blis.selectorLabels" -}}
app.kubernetes.io/name: blis
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "blis.labels" -}}
{{ include "blis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Leader election is on when asked for or when more than one replica runs. */}}
{{- define "blis.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/*
The controller's rules on namespaced objects: what it reads (its CRDs, the ConfigMaps, Deployments,
LeaderWorkerSets and Gateway API Inference Extension objects a scenario may reference), what it writes
(status only, never spec; the Indexed Jobs of fanned-out sweeps and, once merged, the deletion of
their shard ConfigMaps; Events). Never Secrets, never wildcards.
*/}}
{{- define "blis.namespacedRules" -}}
- apiGroups: ["twin.blis.dev"]
  resources: ["simulationscenarios", "simulationsweeps"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["twin.blis.dev"]
  resources: ["simulationscenarios/status", "simulationsweeps/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["leaderworkerset.x-k8s.io"]
  resources: ["leaderworkersets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["disaggregatedset.x-k8s.io"]
  resources: ["disaggregatedsets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["inference.networking.x-k8s.io", "inference.networking.k8s.io"]
  resources: ["inferencepools", "inferenceobjectives", "inferencemodels"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* The cluster-scoped objects it reads: HardwareProfiles. */}}
{{- define "blis.clusterRules" -}}
- apiGroups: ["twin.blis.dev"]
  resources: ["hardwareprofiles"]
  verbs: ["get", "list", "watch"]
{{- end -}}

{{/* What a fanned-out sweep's shard pods do: read their sweep, write their result ConfigMap. */}}
{{- define "blis.sweepWorkerRules" -}}
- apiGroups: ["twin.blis.dev"]
  resources: ["simulationsweeps"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch"]
{{- end -}}

{{/* Namespaces that get the shard pods' ServiceAccount: the release's, the watched ones, the listed ones. */}}
{{- define "blis.sweepWorkerNamespaces" -}}
{{- concat (list .Release.Namespace) .Values.watchNamespaces .Values.sweepFanOut.namespaces | uniq | join "," -}}
{{- end -}}

{{/* The memory limit: resources.limits.memory when set, else the admission limits' worst case: every
permitted simulation at its budget (maxMemoryMib x maxConcurrent) plus the controller's base. */}}
{{- define "blis.memoryLimit" -}}
{{- if .Values.resources.limits.memory -}}
{{- .Values.resources.limits.memory -}}
{{- else -}}
{{- add (mul (int .Values.controller.maxMemoryMib) (int .Values.controller.maxConcurrent)) (int .Values.controller.baseMemoryMib) -}}Mi
{{- end -}}
{{- end -}}
