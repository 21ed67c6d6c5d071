//go:build krustyrecord

// This file stands in for testutils/kusttest/plugintestenv.go (see ../main.go). The
// original compiles builtin plugins from kustomize's repository checkout, which the
// module cache does not hold; `kustomize build` links builtins in, and so does this
// harness (MakeOptionsPluginsEnabled), so preparing a builtin is a no-op here. Tests that
// need a plugin that is not builtin fail, and their cases are reported as not passing.
package kusttest_test

import (
	"os"
	"testing"

	"sigs.k8s.io/kustomize/api/internal/plugins/utils"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

type pluginTestEnv struct {
	t          *testing.T
	pluginRoot string
	oldHome    string
	wasSet     bool
}

func newPluginTestEnv(t *testing.T) *pluginTestEnv {
	t.Helper()
	return &pluginTestEnv{t: t}
}

func (x *pluginTestEnv) set() *pluginTestEnv {
	// Without kustomize's source checkout there is no plugin root; exec and Go plugins
	// then fail to load, which fails only the tests that use them.
	x.pluginRoot, _ = utils.DeterminePluginSrcRoot(filesys.MakeFsOnDisk())
	x.oldHome, x.wasSet = os.LookupEnv(konfig.KustomizePluginHomeEnv)
	if x.pluginRoot != "" {
		os.Setenv(konfig.KustomizePluginHomeEnv, x.pluginRoot)
	}
	return x
}

func (x *pluginTestEnv) reset() {
	if x.wasSet {
		os.Setenv(konfig.KustomizePluginHomeEnv, x.oldHome)
	} else {
		os.Unsetenv(konfig.KustomizePluginHomeEnv)
	}
}

func (x *pluginTestEnv) prepareGoPlugin(g, _, k string) {
	if g != konfig.BuiltinPluginPackage {
		x.t.Errorf("krusty recorder: Go plugin %s/%s needs kustomize's source checkout", g, k)
	}
}

func (x *pluginTestEnv) prepareExecPlugin(_, _, _ string) {}
