{{/* The pod template of the Deployment and of the StatefulSet mode: (dict "root" $ "sharded" BOOL "replica" N). */}}
{{- define "stallwatch.podTemplate" }}
{{- $root := .root }}
{{- $sharded := .sharded }}
{{- $replica := .replica }}
{{- with $root }}
    metadata:
      labels:
        {{- include "stallwatch.labels" . | nindent 8 }}
        {{- if $sharded }}
        stallwatch/replica: {{ $replica | quote }}
        {{- end }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if or .Values.configChecksumAnnotation .Values.podAnnotations }}
      annotations:
        {{- if .Values.configChecksumAnnotation }}
        checksum/config: {{ include "stallwatch.configYaml" . | sha256sum }}
        {{- end }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "stallwatch.serviceAccountName" . }}
      automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
      {{- with (include "stallwatch.imagePullSecrets" . | trim) }}
      imagePullSecrets:
        {{- . | nindent 8 }}
      {{- end }}
      {{- with .Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml .Values.podSecurityContext | nindent 8 }}
      containers:
        - name: stallwatch
          image: {{ include "stallwatch.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args:
            - run
            - --config
            - /etc/stallwatch/config.yaml
            - --listen
            - {{ printf "0.0.0.0:%d" (int .Values.containerPort) | quote }}
            {{- if $sharded }}
            - --total-shards
            - {{ .Values.sharding.shards | quote }}
            {{- end }}
            {{- range .Values.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          env:
            - name: STALLWATCH_LOG_FORMAT
              value: {{ .Values.logFormat | quote }}
            {{- if $sharded }}
            # The shard is the StatefulSet ordinal at the end of the pod name.
            - name: STALLWATCH_POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            {{- end }}
            {{- with .Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: metrics
              containerPort: {{ .Values.containerPort }}
              protocol: TCP
          {{- with .Values.livenessProbe }}
          livenessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .Values.readinessProbe }}
          readinessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          volumeMounts:
            # A directory mount (no subPath), so kubelet refreshes the file in place and
            # stallwatch hot-reloads it.
            - name: config
              mountPath: /etc/stallwatch
              readOnly: true
      volumes:
        - name: config
          configMap:
            name: {{ include "stallwatch.fullname" . }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if .Values.affinity }}
      affinity:
        {{- toYaml .Values.affinity | nindent 8 }}
      {{- else if and $sharded (gt (int .Values.sharding.replicasPerShard) 1) }}
      # Replicas of one shard (the same ordinal in each per-replica StatefulSet) on different
      # nodes, so that one node never takes a whole shard.
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "stallwatch.selectorLabels" . | nindent 20 }}
                matchLabelKeys:
                  - apps.kubernetes.io/pod-index
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- tpl (toYaml .) $root | nindent 8 }}
      {{- end }}
{{- end }}
{{- end }}
