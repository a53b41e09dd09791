//go:build unix

package filewriter

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func newOs(t *testing.T, fs afero.Fs) (*Writer, string, *observer.ObservedLogs) {
	t.Helper()
	home := t.TempDir()
	core, logs := observer.New(zap.DebugLevel)
	if fs == nil {
		fs = afero.NewOsFs()
	}
	w, err := New(Config{Fs: fs, Home: home, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	return w, home, logs
}

func write1(t *testing.T, w *Writer, p string, content string) Result {
	t.Helper()
	return w.WriteAll(context.Background(), []File{{Secret: "s", Path: p, Content: []byte(content)}})[0]
}

func noTemps(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestOsModes(t *testing.T) {
	w, home, _ := newOs(t, nil)
	syscall.Umask(0o022)
	if r := write1(t, w, "~/new/dir/f", "v1"); r.Outcome != Written {
		t.Fatalf("%+v", r)
	}
	st, _ := os.Stat(filepath.Join(home, "new/dir/f"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v", st.Mode().Perm())
	}
	for _, d := range []string{"new", "new/dir"} {
		st, _ := os.Stat(filepath.Join(home, d))
		if st.Mode().Perm() != 0o700 {
			t.Errorf("new dir %s mode %v", d, st.Mode().Perm())
		}
	}
	existing := filepath.Join(home, "existing")
	if err := os.WriteFile(existing, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(existing, 0o640)
	if os.Geteuid() == 0 {
		_ = os.Chown(existing, 4321, 4321)
	}
	if r := write1(t, w, "~/existing", "new"); r.Outcome != Written {
		t.Fatalf("%+v", r)
	}
	st, _ = os.Stat(existing)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("existing mode changed to %v", st.Mode().Perm())
	}
	if uid, _, _ := owner(st); os.Geteuid() == 0 && uid != 4321 {
		t.Errorf("owner changed to %d", uid)
	}
	if b, _ := os.ReadFile(existing); string(b) != "new" {
		t.Errorf("content %q", b)
	}
	noTemps(t, home)
}

func TestOsUnchangedKeepsMtime(t *testing.T) {
	w, home, _ := newOs(t, nil)
	p := filepath.Join(home, "f")
	write1(t, w, "~/f", "same")
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	_ = os.Chtimes(p, old, old)
	if r := write1(t, w, "~/f", "same"); r.Outcome != Unchanged {
		t.Fatalf("outcome %s", r.Outcome)
	}
	st, _ := os.Stat(p)
	if !st.ModTime().Equal(old) {
		t.Errorf("mtime changed: %v -> %v", old, st.ModTime())
	}
	if r := write1(t, w, "~/f", "diff"); r.Outcome != Written {
		t.Fatalf("outcome %s", r.Outcome)
	}
}

func TestOsSymlinks(t *testing.T) {
	w, home, logs := newOs(t, nil)
	real := filepath.Join(home, "real")
	_ = os.MkdirAll(real, 0o755)
	_ = os.WriteFile(filepath.Join(real, "target"), []byte("old"), 0o644)
	// A file symlink: the target is replaced, the link stays a link.
	_ = os.Symlink(filepath.Join(real, "target"), filepath.Join(home, "link"))
	if r := write1(t, w, "~/link", "new"); r.Outcome != Written || r.Path != filepath.Join(real, "target") {
		t.Fatalf("%+v", r)
	}
	if fi, _ := os.Lstat(filepath.Join(home, "link")); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced by a file")
	}
	if b, _ := os.ReadFile(filepath.Join(real, "target")); string(b) != "new" {
		t.Errorf("target holds %q", b)
	}
	if fi, _ := os.Stat(filepath.Join(real, "target")); fi.Mode().Perm() != 0o644 {
		t.Errorf("target mode changed: %v", fi.Mode().Perm())
	}
	// A symlinked parent directory: two spellings of one file collide.
	_ = os.Symlink(real, filepath.Join(home, "alias")) // relative-free absolute link
	_ = os.Symlink("real", filepath.Join(home, "rel")) // relative link
	t0 := time.Now()
	res := w.WriteAll(context.Background(), []File{
		{Secret: "one", Path: "~/alias/cfg", Content: []byte(canary + "1"), UpdatedAt: t0},
		{Secret: "two", Path: "~/real/cfg", Content: []byte(canary + "2"), UpdatedAt: t0},
		{Secret: "three", Path: "~/rel/cfg", Content: []byte(canary + "3"), UpdatedAt: t0},
	})
	if res[0].Outcome != Written || res[1].Outcome != LostCollision || res[2].Outcome != LostCollision {
		t.Fatalf("collision through symlinked parents: %+v", res)
	}
	if n := logs.FilterMessageSnippet("collide").Len(); n != 1 {
		t.Errorf("%d collision warnings, want 1", n)
	}
	// A loop is refused, not followed forever.
	_ = os.Symlink(filepath.Join(home, "loopb"), filepath.Join(home, "loopa"))
	_ = os.Symlink(filepath.Join(home, "loopa"), filepath.Join(home, "loopb"))
	if r := write1(t, w, "~/loopa/x", "v"); r.Outcome != Failed || !errors.Is(r.Err, ErrSymlinkLoop) {
		t.Errorf("symlink loop: %+v", r)
	}
}

// TestOsAtomicReplace: a concurrent reader never sees partial content.
func TestOsAtomicReplace(t *testing.T) {
	w, home, _ := newOs(t, nil)
	p := filepath.Join(home, "f")
	a := bytes.Repeat([]byte("A"), 64*1024)
	b := bytes.Repeat([]byte("B"), 64*1024)
	write1(t, w, "~/f", string(a))
	var stop atomic.Bool
	var bad atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			got, err := os.ReadFile(p)
			if err != nil || !(bytes.Equal(got, a) || bytes.Equal(got, b)) {
				bad.Add(1)
			}
		}
	}()
	for i := range 200 {
		c := a
		if i%2 == 0 {
			c = b
		}
		if r := write1(t, w, "~/f", string(c)); r.Outcome != Written {
			t.Fatalf("write %d: %+v", i, r)
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("reader saw partial or missing content %d times", bad.Load())
	}
	noTemps(t, home)
}

func TestOsNeverDeletes(t *testing.T) {
	w, home, _ := newOs(t, nil)
	write1(t, w, "~/a", "1")
	// A later run without the file (path changed) leaves it on disk (R7).
	w.WriteAll(context.Background(), []File{{Secret: "s", Path: "~/b", Content: []byte("2")}})
	for _, n := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(home, n)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}
