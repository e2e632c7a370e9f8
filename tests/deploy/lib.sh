# shellcheck shell=bash
# shellcheck disable=SC2154  # repo, work, helm, kustomize come from the sourcing script
# Shared by tests/deploy/check and tests/deploy/dry-run (sourced; bash).
# Needs: $repo (repository root), $work (scratch dir), $helm, $kustomize.

passed=0
failed=0
skipped=0

ok() { passed=$((passed + 1)); echo "ok    $1"; }
bad() { failed=$((failed + 1)); echo "FAIL  $1"; }
skip() { skipped=$((skipped + 1)); echo "skip  $1"; }

# step NAME CMD...: run CMD; pass if it exits 0 (output shown only on failure).
step() {
  local name="$1"; shift
  if "$@" >"$work/log" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/      /' "$work/log" | tail -n 40; fi
}

# render NAME FILE CMD...: run CMD with stdout to FILE (removed when CMD fails).
render() {
  local name="$1" file="$2"; shift 2
  if "$@" >"$file" 2>"$work/log"; then ok "$name"; else bad "$name"; sed 's/^/      /' "$work/log" | tail -n 40; rm -f "$file"; fi
}

# summary PREFIX: the closing line; returns 1 when anything failed.
summary() {
  echo
  if ((skipped)); then
    echo "$1: $passed passed, $failed failed, $skipped skipped"
  else
    echo "$1: $passed passed, $failed failed"
  fi
  ((failed == 0))
}

chart=deploy/helm/stallwatch
kvalues="$chart/values-kubearmor.yaml"
tv="tests/deploy/values"

# render_all OUT: every manifest set deploy/ can produce, one file per set:
#   helm-default, helm-kubearmor, helm-generic, helm-sharded, helm-monitors, helm-monitoring,
#   kustomize-base, kustomize-<overlay>..., kustomize-<overlay>-monitoring...
# The PrometheusRule and dashboards are included once their sources exist (sets
# have_rules / have_dashboards for the caller).
render_all() {
  local out="$1"
  mkdir -p "$out"
  have_rules=false
  have_dashboards=false
  [[ -f alerts/stallwatch.rules.yml ]] && have_rules=true
  compgen -G "dashboards/*.json" >/dev/null && have_dashboards=true

  render "helm template (default)" "$out/helm-default.yaml" \
    "$helm" template stallwatch "$chart" --namespace stallwatch
  render "helm template (kubearmor)" "$out/helm-kubearmor.yaml" \
    "$helm" template stallwatch "$chart" --namespace stallwatch -f "$kvalues"
  render "helm template (generic targets)" "$out/helm-generic.yaml" \
    "$helm" template stallwatch "$chart" --namespace stallwatch -f "$tv/generic.yaml"
  render "helm template (StatefulSet mode: 3 shards x 2 replicas)" "$out/helm-sharded.yaml" \
    "$helm" template stallwatch "$chart" --namespace stallwatch -f "$tv/sharded.yaml"
  render "helm template (kubearmor, ServiceMonitor + PodMonitor)" "$out/helm-monitors.yaml" \
    "$helm" template stallwatch "$chart" --namespace stallwatch -f "$kvalues" -f "$tv/monitors-only.yaml"

  # Every optional object on; the PrometheusRule and dashboards only once their sources exist.
  optional=(-f "$tv/monitoring.yaml")
  optional_what="ServiceMonitor, PodMonitor, AlertmanagerConfig"
  if $have_rules; then
    optional_what="$optional_what, PrometheusRule"
  else
    optional+=(--set prometheusRule.enabled=false)
    skip "helm PrometheusRule (alerts/stallwatch.rules.yml not written yet)"
  fi
  if $have_dashboards; then
    optional_what="$optional_what, dashboards"
  else
    optional+=(--set dashboards.enabled=false)
    skip "helm dashboards (dashboards/*.json not written yet)"
  fi
  render "helm template (kubearmor, $optional_what)" "$out/helm-monitoring.yaml" \
    "$helm" template stallwatch "$chart" --namespace stallwatch -f "$kvalues" "${optional[@]}"

  render "kustomize build base" "$out/kustomize-base.yaml" "$kustomize" build deploy/kustomize/base
  local d n
  for d in deploy/kustomize/overlays/*/; do
    n="$(basename "$d")"
    render "kustomize build overlays/$n" "$out/kustomize-$n.yaml" "$kustomize" build "$d"
  done

  local rules_component=()
  if [[ -f deploy/kustomize/components/prometheus-rules/prometheusrule.yaml ]]; then
    rules_component=(prometheus-rules)
  else
    skip "kustomize components/prometheus-rules (generated from alerts/stallwatch.rules.yml, not written yet)"
  fi
  compose "$out" base-monitoring deploy/kustomize/base "" \
    prometheus-operator/service-monitor "${rules_component[@]}"
  compose "$out" standalone-kubearmor-monitoring deploy/kustomize/overlays/standalone-kubearmor "" \
    prometheus-operator/service-monitor "${rules_component[@]}"
  compose "$out" kubearmor-sidecar-monitoring deploy/kustomize/overlays/kubearmor-sidecar kubearmor \
    prometheus-operator/pod-monitor "${rules_component[@]}"
}

# compose OUT NAME DIR NAMESPACE COMPONENT...: DIR plus optional components, composed the way a
# user would, in a scratch kustomization; NAMESPACE ("" for none) as the sidecar overlay sets it.
# (A `namespace:` would also move the standalone overlays' Role out of the watched namespace.)
compose() {
  local out="$1" name="$2" overlay="$3" namespace="$4"; shift 4
  local dir="$work/compose/$name" up c
  mkdir -p "$dir"
  # kustomize wants relative paths (directories outside the root are fine).
  up="$(realpath --relative-to="$dir" "$repo")"
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    [[ -z "$namespace" ]] || echo "namespace: $namespace"
    echo "resources: [\"$up/$overlay\"]"
    echo "components:"
    for c in "$@"; do echo "  - \"$up/deploy/kustomize/components/$c\""; done
  } >"$dir/kustomization.yaml"
  render "kustomize build ${overlay#deploy/kustomize/} + components $*" "$out/kustomize-$name.yaml" \
    "$kustomize" build "$dir"
}
