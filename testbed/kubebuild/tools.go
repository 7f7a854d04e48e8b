//go:build tools

package kubebuild

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
