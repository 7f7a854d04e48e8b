//go:build tools

// The node and control-plane binaries of the kubelet test bed, from the same k8s.io/kubernetes pin
// as testbed/kubebuild (which builds the kube-apiserver).
package kubeletbuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
