// Command krusty-harness turns the krusty test suite of the kustomize api module into
// cases driftless can replay (tests/krusty.rs runs it; nothing of kustomize is kept in
// the repository).
//
// Flow: find the api module this go.mod requires in the module cache (downloading it if
// needed), copy it to a scratch folder, put recorder/*.go in place of the tests' harness
// files, and run `go test ./krusty/` there with KRUSTY_DUMP_DIR set. Each build a test
// asks for lands in OUT/cases/<test>.<n>/ as tree/, meta.json, expected.yaml or
// expected.err, and test-status. OUT/go-test.log keeps go test's output.
package main

import (
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed recorder/harness.go
var recorderHarness []byte

//go:embed recorder/plugintestenv.go
var recorderPluginEnv []byte

const apiModule = "sigs.k8s.io/kustomize/api"

func main() {
	out := flag.String("out", "", "folder to write the cases into (must not exist)")
	flag.Parse()
	if *out == "" {
		fail("usage: krusty-harness -out DIR")
	}
	if err := run(*out); err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "krusty-harness:", msg)
	os.Exit(1)
}

func run(out string) error {
	modDir, version, err := locateModule()
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp("", "krusty-harness-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	work := filepath.Join(scratch, "api")
	if err := copyTree(modDir, work); err != nil {
		return fmt.Errorf("copying %s: %w", modDir, err)
	}
	for name, data := range map[string][]byte{
		"harness.go":       recorderHarness,
		"plugintestenv.go": recorderPluginEnv,
	} {
		if err := os.WriteFile(filepath.Join(work, "testutils/kusttest", name), data, 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(out, "cases"), 0o755); err != nil {
		return err
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(absOut, "go-test.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	// Test-only dependencies (testify, …) may be missing from the cache: -mod=mod lets the
	// go command fetch them through GOPROXY like any module download.
	cmd := exec.Command("go", "test", "-tags", "krustyrecord", "-count=1", "./krusty/")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "KRUSTY_DUMP_DIR="+absOut, "GOFLAGS=-mod=mod", "GOWORK=off")
	cmd.Stdout = log
	cmd.Stderr = log
	// Some krusty tests fail outside kustomize's CI (helm, network, plugins built with
	// another toolchain); each case's test-status says which, so a failing run is fine.
	// A run that recorded nothing is not.
	testErr := cmd.Run()
	entries, err := os.ReadDir(filepath.Join(absOut, "cases"))
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return fmt.Errorf("go test recorded no case (%v); see %s", testErr, log.Name())
	}
	return os.WriteFile(filepath.Join(absOut, "module"), []byte(apiModule+"@"+version+"\n"), 0o644)
}

// locateModule asks the go command where the required api module is, downloading it if
// the cache lacks it.
func locateModule() (string, string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", apiModule)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("go mod download %s: %w", apiModule, err)
	}
	var info struct {
		Dir     string
		Version string
		Error   string
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return "", "", fmt.Errorf("go mod download: %w", err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", "", fmt.Errorf("go mod download %s: %s", apiModule, info.Error)
	}
	return info.Dir, info.Version, nil
}

// copyTree copies a module from the read-only cache into a writable folder.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".sh") {
			return os.WriteFile(target, data, 0o755)
		}
		return os.WriteFile(target, data, 0o644)
	})
}
