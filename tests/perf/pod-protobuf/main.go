// pod-protobuf writes a pod, read as JSON from stdin, in the protobuf form the API server
// serves (the "k8s\0" envelope and a runtime.Unknown holding the v1.Pod), encoded by
// Kubernetes' own serializer. It makes the golden files tests/fixtures/protobuf/*.pb, against
// which the bench's pods in protobuf (benches/support) are checked; see docs/benchmarks.md.
//
//	go run . < pod.json > pod.pb
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(in, &pod); err != nil {
		fail(fmt.Errorf("stdin is not a pod in JSON: %w", err))
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		fail(err)
	}
	pod.APIVersion, pod.Kind = "v1", "Pod"
	if err := protobuf.NewSerializer(scheme, scheme).Encode(&pod, os.Stdout); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pod-protobuf:", err)
	os.Exit(1)
}
