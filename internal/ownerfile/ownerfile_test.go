//go:build !windows

package ownerfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRestrict(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Restrict(p); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if err := Restrict(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file was restricted")
	}
}
