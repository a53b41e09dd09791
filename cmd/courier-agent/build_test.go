package main_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Every end-to-end test needs the courier and courier-agent binaries. Each
// package is built once per test run into binDir, and build gives each
// test its own hard link (a copy across filesystems), so tests that put
// the binaries in a directory of their own (a PATH for an entrypoint, a
// directory the workspace user may read) keep doing so.
var (
	binMu    sync.Mutex
	binDir   string
	binBuilt = map[string]*builtBinary{}
)

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// build returns the binary of pkg in dir, built once per test run.
func build(t *testing.T, dir, pkg string) string {
	t.Helper()
	binMu.Lock()
	if binDir == "" {
		d, err := os.MkdirTemp("", "courier-e2e-bin-")
		if err != nil {
			binMu.Unlock()
			t.Fatal(err)
		}
		// Readable by the unprivileged test user, as the tests' own dirs are.
		_ = os.Chmod(d, 0o755)
		binDir = d
	}
	b, ok := binBuilt[pkg]
	if !ok {
		b = &builtBinary{}
		binBuilt[pkg] = b
	}
	binMu.Unlock()
	b.once.Do(func() {
		b.path = filepath.Join(binDir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Stderr = os.Stderr
		b.err = cmd.Run()
	})
	if b.err != nil {
		t.Fatalf("go build %s: %v", pkg, b.err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	if err := os.Link(b.path, out); err != nil {
		if err := copyFile(b.path, out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return err
	}
	return dst.Close()
}
