//go:build tools

// Package main's go.mod must keep requiring the kustomize api module even though the
// helper itself never imports it: the module's source is what gets copied and tested.
package main

import _ "sigs.k8s.io/kustomize/api/krusty"
