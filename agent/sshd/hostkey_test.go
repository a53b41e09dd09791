package sshd

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/afero"
)

func TestLoadOrCreateHostKeyPersists(t *testing.T) {
	fsys := afero.NewOsFs()
	path := filepath.Join(t.TempDir(), "state", "ssh_host_ed25519_key")
	k1, err := LoadOrCreateHostKey(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(filepath.Dir(path))
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, want 0700", di.Mode().Perm())
	}
	k2, err := LoadOrCreateHostKey(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.PublicKey().Marshal(), k2.PublicKey().Marshal()) {
		t.Fatal("second load returned a different key")
	}
	if k1.PublicKey().Type() != "ssh-ed25519" {
		t.Fatalf("key type %s", k1.PublicKey().Type())
	}
}

func TestLoadOrCreateHostKeyBadFiles(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(fsys afero.Fs)
		path    string
		content []byte // expected content left on disk, nil for none
	}{
		{
			name:    "garbage is not overwritten",
			setup:   func(fsys afero.Fs) { _ = afero.WriteFile(fsys, "/k", []byte("not a key"), 0o600) },
			path:    "/k",
			content: []byte("not a key"),
		},
		{
			name:  "path is a directory",
			setup: func(fsys afero.Fs) { _ = fsys.MkdirAll("/dir", 0o700) },
			path:  "/dir",
		},
		{
			name:  "parent is a file",
			setup: func(fsys afero.Fs) { _ = afero.WriteFile(fsys, "/file", []byte("x"), 0o600) },
			path:  "/file/key",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := afero.NewBasePathFs(afero.NewOsFs(), t.TempDir())
			c.setup(fsys)
			if _, err := LoadOrCreateHostKey(fsys, c.path); !errors.Is(err, ErrHostKey) {
				t.Fatalf("err = %v, want ErrHostKey", err)
			}
			if c.content != nil {
				got, _ := afero.ReadFile(fsys, c.path)
				if !bytes.Equal(got, c.content) {
					t.Fatalf("file changed to %q", got)
				}
			}
		})
	}
}

// TestLoadOrCreateHostKeyAfterKill: an agent killed while creating its key
// must not stop the next start. An empty key file (what an older agent left
// when killed between create and write) and a stale temporary file are both
// replaced by a whole key, which then persists.
func TestLoadOrCreateHostKeyAfterKill(t *testing.T) {
	fsys := afero.NewBasePathFs(afero.NewOsFs(), t.TempDir())
	if err := afero.WriteFile(fsys, "/k", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(fsys, "/k.courier-tmp", []byte("half a ke"), 0o600); err != nil {
		t.Fatal(err)
	}
	s1, err := LoadOrCreateHostKey(fsys, "/k")
	if err != nil {
		t.Fatalf("empty key file: %v", err)
	}
	s2, err := LoadOrCreateHostKey(fsys, "/k")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1.PublicKey().Marshal(), s2.PublicKey().Marshal()) {
		t.Fatal("the key written after an empty file did not persist")
	}
	if ok, _ := afero.Exists(fsys, "/k.courier-tmp"); ok {
		t.Error("the temporary file is still there")
	}
	if st, err := fsys.Stat("/k"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v", st.Mode().Perm(), err)
	}
}
