// Pins (with go.sum) the prometheus-operator module whose CRD manifests
// (example/prometheus-operator-crd/) tests/deploy/dry-run installs into the test control plane
// before it dry-runs the ServiceMonitor, PodMonitor and PrometheusRule objects. Nothing is built.
module stallwatch.test/deploy/crds

go 1.26.0

require github.com/prometheus-operator/prometheus-operator v0.85.0
