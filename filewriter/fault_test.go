//go:build unix

package filewriter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/afero"
	"go.uber.org/zap"
)

// faultFs wraps an afero.Fs and injects one failure: at the write, sync or
// close of a temporary file, at rename, or at mkdir.
type faultFs struct {
	afero.Fs
	op  string // "write", "sync", "rename", "mkdir", "create"
	err error
}

type faultFile struct {
	afero.File
	fs *faultFs
}

func (f *faultFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	isTemp := strings.HasPrefix(filepath.Base(name), tempPrefix)
	if isTemp && f.op == "create" {
		return nil, &os.PathError{Op: "open", Path: name, Err: f.err}
	}
	file, err := f.Fs.OpenFile(name, flag, perm)
	if err != nil || !isTemp {
		return file, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFs) Rename(o, n string) error {
	if f.op == "rename" {
		return &os.LinkError{Op: "rename", Old: o, New: n, Err: f.err}
	}
	return f.Fs.Rename(o, n)
}

func (f *faultFs) Mkdir(name string, perm os.FileMode) error {
	if f.op == "mkdir" {
		return &os.PathError{Op: "mkdir", Path: name, Err: f.err}
	}
	return f.Fs.Mkdir(name, perm)
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.fs.op == "write" {
		// A partial write, as a full disk produces.
		n, _ := f.File.Write(p[:len(p)/2])
		return n, f.fs.err
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	if f.fs.op == "sync" {
		return f.fs.err
	}
	return f.File.Sync()
}

func TestFaultsLeaveOldFileIntact(t *testing.T) {
	cases := []struct {
		op  string
		err error
	}{
		{"write", syscall.ENOSPC},
		{"write", syscall.EIO},
		{"sync", syscall.EIO},
		{"sync", syscall.ENOSPC},
		{"rename", syscall.EIO},
		{"create", syscall.EACCES}, // a read-only directory (root ignores modes, so it is injected)
		{"create", syscall.EROFS},
	}
	for _, c := range cases {
		t.Run(c.op+"/"+c.err.Error(), func(t *testing.T) {
			ffs := &faultFs{Fs: afero.NewOsFs()}
			w, home, _ := newOs(t, ffs)
			p := filepath.Join(home, "f")
			if err := os.WriteFile(p, []byte("old content"), 0o600); err != nil {
				t.Fatal(err)
			}
			ffs.op, ffs.err = c.op, c.err
			res := w.WriteAll(context.Background(), []File{
				{Secret: "victim", Path: "~/f", Content: []byte(canary)},
			})
			if res[0].Outcome != Failed || !errors.Is(res[0].Err, c.err) {
				t.Fatalf("%+v, want failed with %v", res[0], c.err)
			}
			if msg := res[0].Err.Error(); !strings.Contains(msg, "victim") || !strings.Contains(msg, p) || strings.Contains(msg, canary) {
				t.Errorf("error %q must name secret and path, not the value", msg)
			}
			if b, _ := os.ReadFile(p); string(b) != "old content" {
				t.Errorf("old file changed to %q", b)
			}
			noTemps(t, home)
		})
	}
}

func TestFaultOnlyFailsThatSecret(t *testing.T) {
	ffs := &faultFs{Fs: afero.NewOsFs(), op: "mkdir", err: syscall.ENOSPC}
	w, home, _ := newOs(t, ffs)
	res := w.WriteAll(context.Background(), []File{
		{Secret: "needs-dir", Path: "~/newdir/x", Content: []byte("1")},
		{Secret: "top", Path: "~/top", Content: []byte("2")},
	})
	if res[0].Outcome != Failed || res[1].Outcome != Written {
		t.Fatalf("%+v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "top")); string(b) != "2" {
		t.Errorf("top = %q", b)
	}
}

func TestMountPointWrittenInPlace(t *testing.T) {
	for _, e := range []error{syscall.EBUSY, syscall.EXDEV} {
		ffs := &faultFs{Fs: afero.NewOsFs()}
		w, home, logs := newOs(t, ffs)
		p := filepath.Join(home, "mounted")
		_ = os.WriteFile(p, []byte("old"), 0o644)
		ffs.op, ffs.err = "rename", e
		res := w.WriteAll(context.Background(), []File{{Secret: "m", Path: "~/mounted", Content: []byte("new")}})
		if res[0].Outcome != Written || !strings.Contains(res[0].InPlace, "mount point") {
			t.Fatalf("%v: %+v", e, res[0])
		}
		if b, _ := os.ReadFile(p); string(b) != "new" {
			t.Errorf("%v: content %q", e, b)
		}
		if logs.FilterMessageSnippet("written in place").FilterField(zap.String("path", p)).Len() != 1 {
			t.Errorf("%v: no in-place warning", e)
		}
		noTemps(t, home)
	}
}
