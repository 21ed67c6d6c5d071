//go:build krustyrecord

// This file stands in for testutils/kusttest/harness.go in a scratch copy of the
// kustomize api module (see ../main.go). It offers the same API to the krusty tests, but
// every build a test asks for is also recorded as a case for driftless: the tree the test
// wrote, the folder it built, and what `kustomize build` (the CLI, not the test's own
// options) prints for it, or the error it fails with. Nothing here changes what a test
// sees, so a case counts as "passing under kustomize" exactly when its test passes.
package kusttest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/api/internal/konfig/builtinpluginconsts"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Harness is the krusty tests' view of a file system plus a *testing.T.
type Harness struct {
	t    *testing.T
	fSys filesys.FileSystem
}

// caseMeta is written next to each recorded tree as meta.json; tests/krusty.rs reads it.
type caseMeta struct {
	Test  string `json:"test"`
	Index int    `json:"index"`
	// Dir is the folder built, relative to tree/ ("" for the root).
	Dir string `json:"dir"`
	// ExpectError: the test itself wanted this build to fail (RunWithErr).
	ExpectError bool `json:"expectError"`
	// Options that `kustomize build` only honours with flags driftless does not take.
	PluginsEnabled       bool `json:"pluginsEnabled"`
	LoadRestrictionsNone bool `json:"loadRestrictionsNone"`
	ManagedByLabel       bool `json:"managedByLabel"`
	HelmEnabled          bool `json:"helmEnabled"`
	// Unrecordable names why the tree could not be written out (then tree/ is absent).
	Unrecordable string `json:"unrecordable,omitempty"`
}

var (
	recMu      sync.Mutex
	recCounter = map[string]int{}
)

func dumpRoot() string { return os.Getenv("KRUSTY_DUMP_DIR") }

func MakeHarness(t *testing.T) Harness {
	t.Helper()
	return MakeHarnessWithFs(t, filesys.MakeFsInMemory())
}

func MakeHarnessWithFs(t *testing.T, fSys filesys.FileSystem) Harness {
	t.Helper()
	return Harness{t: t, fSys: fSys}
}

func (th Harness) GetT() *testing.T { return th.t }

func (th Harness) GetFSys() filesys.FileSystem { return th.fSys }

func (th Harness) write(path, header, content string) {
	name := filepath.Join(path, konfig.DefaultKustomizationFileName())
	if err := th.fSys.WriteFile(name, []byte(header+content)); err != nil {
		th.t.Fatalf("writing %s: %v", name, err)
	}
}

func (th Harness) WriteK(path string, content string) {
	th.write(path, "\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n", content)
}

func (th Harness) WriteC(path string, content string) {
	th.write(path, "\napiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n", content)
}

func (th Harness) WriteF(path string, content string) {
	if err := th.fSys.WriteFile(path, []byte(content)); err != nil {
		th.t.Fatalf("writing %s: %v", path, err)
	}
}

func (th Harness) MakeDefaultOptions() krusty.Options { return th.MakeOptionsPluginsDisabled() }

func (th Harness) MakeOptionsPluginsDisabled() krusty.Options {
	return *krusty.MakeDefaultOptions()
}

// MakeOptionsPluginsEnabled links builtins in, as `kustomize build` does; the original
// loads them as compiled .so files from kustomize's source checkout.
func (th Harness) MakeOptionsPluginsEnabled() krusty.Options {
	o := *krusty.MakeDefaultOptions()
	o.PluginConfig = types.EnabledPluginConfig(types.BploUseStaticallyLinked)
	return o
}

func (th Harness) Run(path string, o krusty.Options) resmap.ResMap {
	th.record(path, o, false)
	m, err := krusty.MakeKustomizer(&o).Run(th.fSys, path)
	if err != nil {
		th.t.Fatal(err)
	}
	return m
}

func (th Harness) RunWithErr(path string, o krusty.Options) error {
	th.record(path, o, true)
	_, err := krusty.MakeKustomizer(&o).Run(th.fSys, path)
	if err == nil {
		th.t.Fatalf("expected error")
	}
	return err
}

func (th Harness) WriteLegacyConfigs(fName string) {
	var content []byte
	for _, c := range builtinpluginconsts.GetDefaultFieldSpecsAsMap() {
		content = append(content, []byte(c)...)
	}
	if err := th.fSys.WriteFile(fName, content); err != nil {
		th.t.Fatalf("unable to add file %s", fName)
	}
}

func (th Harness) AssertActualEqualsExpected(m resmap.ResMap, expected string) {
	th.AssertActualEqualsExpectedWithTweak(m, nil, expected)
}

func (th Harness) AssertActualEqualsExpectedNoIdAnnotations(m resmap.ResMap, expected string) {
	m.RemoveBuildAnnotations()
	th.AssertActualEqualsExpectedWithTweak(m, nil, expected)
}

func (th Harness) AssertActualEqualsExpectedWithTweak(
	m resmap.ResMap, tweaker func([]byte) []byte, expected string) {
	assertActualEqualsExpectedWithTweak(th, m, tweaker, expected)
}

// record writes one case: the tree as it stands now, and the CLI's verdict on it.
func (th Harness) record(path string, o krusty.Options, expectError bool) {
	root := dumpRoot()
	if root == "" {
		return
	}
	recMu.Lock()
	test := th.t.Name()
	index := recCounter[test]
	recCounter[test] = index + 1
	recMu.Unlock()

	caseDir := filepath.Join(root, "cases", safeName(test)+"."+fmt.Sprint(index))
	if err := os.MkdirAll(caseDir, 0o755); err != nil {
		th.t.Fatalf("krusty recorder: %v", err)
	}
	meta := caseMeta{
		Test:                 test,
		Index:                index,
		ExpectError:          expectError,
		PluginsEnabled:       o.PluginConfig != nil && o.PluginConfig.PluginRestrictions != types.PluginRestrictionsBuiltinsOnly,
		LoadRestrictionsNone: o.LoadRestrictions == types.LoadRestrictionsNone,
		ManagedByLabel:       o.AddManagedbyLabel,
		HelmEnabled:          o.PluginConfig != nil && o.PluginConfig.HelmConfig.Enabled,
	}
	meta.Dir, meta.Unrecordable = th.dumpTree(path, filepath.Join(caseDir, "tree"))

	// What `kustomize build DIR` prints with no flags, which is what driftless does: the
	// order left unspecified (legacy sort unless the kustomization sets sortOptions),
	// builtins only, loads restricted to the root, no managed-by label. A test that needs
	// more than that shows as an expected error with meta.json saying what it enabled.
	cli := *krusty.MakeDefaultOptions()
	cli.Reorder = krusty.ReorderOptionUnspecified
	m, err := krusty.MakeKustomizer(&cli).Run(th.fSys, path)
	if err == nil {
		var out []byte
		out, err = m.AsYaml()
		if err == nil {
			writeOrFail(th.t, filepath.Join(caseDir, "expected.yaml"), out)
		}
	}
	if err != nil {
		writeOrFail(th.t, filepath.Join(caseDir, "expected.err"), []byte(err.Error()))
	}
	js, _ := json.MarshalIndent(meta, "", "  ")
	writeOrFail(th.t, filepath.Join(caseDir, "meta.json"), js)

	// The test's own verdict is known only when it ends.
	t := th.t
	t.Cleanup(func() {
		status := "passed"
		if t.Failed() {
			status = "failed"
		} else if t.Skipped() {
			status = "skipped"
		}
		writeOrFail(t, filepath.Join(caseDir, "test-status"), []byte(status))
	})
}

// dumpTree copies the file system the build sees into dst and returns the build folder
// relative to it. In-memory file systems are copied whole; on-disk ones from the
// temporary folder the test made.
func (th Harness) dumpTree(path, dst string) (string, string) {
	if fmt.Sprintf("%T", th.fSys) == "*filesys.fsNode" {
		err := th.fSys.Walk(filesys.Separator, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel := strings.TrimPrefix(p, filesys.Separator)
			if info.IsDir() {
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			data, err := th.fSys.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
		})
		if err != nil {
			return "", "walk: " + err.Error()
		}
		abs := path
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(filesys.Separator, abs)
		}
		return strings.TrimPrefix(filepath.Clean(abs), filesys.Separator), ""
	}
	tmp := filepath.Clean(os.TempDir()) + string(filepath.Separator)
	abs, err := filepath.Abs(path)
	if err != nil || !strings.HasPrefix(abs, tmp) {
		return "", "on-disk tree outside the temporary folder"
	}
	first := strings.SplitN(strings.TrimPrefix(abs, tmp), string(filepath.Separator), 2)[0]
	src := filepath.Join(tmp, first)
	err = filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.IsDir():
			return os.MkdirAll(target, 0o755)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
	})
	if err != nil {
		return "", "walk: " + err.Error()
	}
	rel, _ := filepath.Rel(src, abs)
	if rel == "." {
		rel = ""
	}
	return rel, ""
}

func writeOrFail(t *testing.T, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("krusty recorder: %v", err)
	}
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
