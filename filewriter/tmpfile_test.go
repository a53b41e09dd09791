//go:build linux

package filewriter

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
	"golang.org/x/sys/unix"
)

// An unnamed temporary file is invisible until it is linked: a write
// killed before that leaves nothing in the directory.
func TestUnnamedTempHasNoNameUntilLinked(t *testing.T) {
	w, home, _ := newOs(t, nil)
	f, ok := w.openUnnamed(home)
	if !ok {
		t.Fatal("O_TMPFILE refused on the test filesystem (ext4 and tmpfs support it)")
	}
	if _, err := f.Write([]byte("canary-unnamed")); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(home); len(ents) != 0 {
		t.Fatalf("the directory shows %v before the link", ents)
	}
	name, err := w.linkUnnamed(f, home)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !isTempName(filepath.Base(name)) {
		t.Errorf("linked as %q", name)
	}
	if b, _ := os.ReadFile(name); string(b) != "canary-unnamed" {
		t.Errorf("linked file holds %q", b)
	}
	st, _ := os.Stat(name)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	// Dropped unlinked, it is gone with its descriptor.
	g, _ := w.openUnnamed(home)
	_, _ = g.Write([]byte("x"))
	_ = g.Close()
	if ents, _ := os.ReadDir(home); len(ents) != 1 {
		t.Errorf("after an unlinked file was closed: %v", ents)
	}
}

// Where unnamed files cannot be linked, the writer uses named temporary
// files from then on, and writes still work.
func TestNamedTempFallback(t *testing.T) {
	w, home, _ := newOs(t, nil)
	w.noTmpfile.Store(true)
	if _, ok := w.openUnnamed(home); ok {
		t.Fatal("openUnnamed ignored noTmpfile")
	}
	for _, v := range []string{"one", "two"} {
		if r := write1(t, w, "~/d/f", v); r.Outcome != Written {
			t.Fatalf("%+v", r)
		}
		if b, _ := os.ReadFile(filepath.Join(home, "d/f")); string(b) != v {
			t.Fatalf("holds %q, want %q", b, v)
		}
	}
	noTemps(t, filepath.Join(home, "d"))
}

func TestSweepRemovesStaleTempsOnly(t *testing.T) {
	w, home, logs := newOs(t, nil)
	old := time.Now().Add(-staleTemp - time.Minute)
	mk := func(name string, age time.Time) string {
		p := filepath.Join(home, name)
		if err := os.WriteFile(p, []byte("left"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, age, age); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := mk(tempPrefix+"0123456789abcdef", old)
	fresh := mk(tempPrefix+"fedcba9876543210", time.Now())
	notOurs := mk(tempPrefix+"notours", old)
	userFile := mk("courier-tmp-0123456789abcdef", old)
	// A link with our naming, to a file of the user's: neither is touched.
	linkTemp := filepath.Join(home, tempPrefix+"bbbbbbbbbbbbbbbb")
	if err := os.Symlink(userFile, linkTemp); err != nil {
		t.Fatal(err)
	}
	tv := []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}
	if err := unix.Lutimes(linkTemp, tv); err != nil {
		t.Fatal(err)
	}
	dirTemp := filepath.Join(home, tempPrefix+"aaaaaaaaaaaaaaaa")
	if err := os.Mkdir(dirTemp, 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(dirTemp, old, old)

	if r := write1(t, w, "~/f", "v"); r.Outcome != Written {
		t.Fatalf("%+v", r)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	for _, p := range []string{fresh, notOurs, userFile, dirTemp, linkTemp} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", filepath.Base(p), err)
		}
	}
	if n := logs.FilterMessage("removed a temporary file left by an interrupted write").Len(); n != 1 {
		t.Errorf("%d removal lines", n)
	}
	// Once per directory per Writer: a later write does not list it again.
	again := mk(tempPrefix+"1111111111111111", old)
	if r := write1(t, w, "~/f", "w"); r.Outcome != Written {
		t.Fatalf("%+v", r)
	}
	if _, err := os.Stat(again); err != nil {
		t.Errorf("swept twice: %v", err)
	}
}

// batch.resolve shares a directory's resolution between its files; it
// must resolve every path exactly as Resolve does.
func TestBatchResolveMatchesResolve(t *testing.T) {
	w, home, _ := newOs(t, nil)
	other := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(home, "real/sub"), 0o700))
	must(os.WriteFile(filepath.Join(home, "real/file"), nil, 0o600))
	must(os.Symlink(filepath.Join(home, "real"), filepath.Join(home, "linkdir")))
	must(os.Symlink("file", filepath.Join(home, "real/rel")))
	must(os.Symlink(filepath.Join(other, "target"), filepath.Join(home, "real/abs")))
	must(os.Symlink("nowhere/x", filepath.Join(home, "real/dangling")))
	must(os.Symlink("loop2", filepath.Join(home, "loop1")))
	must(os.Symlink("loop1", filepath.Join(home, "loop2")))
	must(os.Symlink(other, filepath.Join(home, "real/sub/up")))
	paths := []string{
		"~/real/file", "~/real/new", "~/linkdir/file", "~/linkdir/rel", "~/real/rel",
		"~/linkdir/abs", "~/real/dangling", "~/missing/a/b", "~/linkdir/sub/up/x",
		"~/loop1/x", "~/loop1", "~/f", "/etc/courier-none", "~/real/../linkdir/rel", "relative", "",
	}
	b := newBatch(w)
	for range 2 { // the second pass runs on the filled cache
		for _, p := range paths {
			want, werr := w.Resolve(p)
			got, gerr := b.resolve(p)
			if got != want || (werr == nil) != (gerr == nil) {
				t.Errorf("%q: batch %q, %v; Resolve %q, %v", p, got, gerr, want, werr)
			}
		}
	}
}

func TestSameContentReadsExactly(t *testing.T) {
	w, home, _ := newOs(t, nil)
	p := filepath.Join(home, "f")
	big := strings.Repeat("z", 1<<20)
	for _, c := range []struct {
		disk, content string
		size          int64
		want          bool
	}{
		{"abc", "abc", 3, true},
		{"abd", "abc", 3, false},
		{"abcd", "abc", 3, false}, // grew since its stat
		{"ab", "abc", 3, false},   // shrank since its stat
		{"", "", 0, true},
		{big, big, int64(len(big)), true},
		{big + "!", big, int64(len(big)), false},
	} {
		if err := os.WriteFile(p, []byte(c.disk), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := w.sameContent(p, c.size, []byte(c.content))
		if err != nil || got != c.want {
			t.Errorf("disk %d bytes, content %d: %v, %v", len(c.disk), len(c.content), got, err)
		}
	}
}

func TestFdFile(t *testing.T) {
	w, home, _ := newOs(t, nil)
	p := filepath.Join(home, "f")
	_ = os.WriteFile(p, []byte("hello"), 0o600)
	f, err := w.openFile(p, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "hello" {
		t.Errorf("read %q, %v", b, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second close: %v", err)
	}
	if _, err := w.openFile(filepath.Join(home, "none"), os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := w.openFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("O_EXCL on an existing file: %v", err)
	}
	var pe *fs.PathError
	if _, err := w.openFile(filepath.Join(home, "none"), os.O_RDONLY, 0); !errors.As(err, &pe) || pe.Path == "" {
		t.Errorf("error is not a PathError naming the file: %v", err)
	}
	// A MemMapFs keeps its own files.
	wm, _ := New(Config{Fs: afero.NewMemMapFs(), Home: "/h"})
	if _, err := wm.openFile("/h/x", os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("MemMapFs: %v", err)
	}
}

// newFile learns, from the first new file of a directory, what new files
// there get by themselves: the owner, the group (the directory's under
// set-group-ID), the mode after the umask, and whether they have xattrs.
func TestNewFileProfile(t *testing.T) {
	w, home, _ := newOs(t, nil)
	sg := filepath.Join(home, "sg")
	_ = os.Mkdir(sg, 0o700)
	sgGid := os.Getegid()
	if os.Geteuid() == 0 {
		sgGid = 4242
		if err := os.Chown(sg, -1, sgGid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sg, 0o700|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o277) // new files come out 0400
	defer syscall.Umask(old)
	euid, egid := os.Geteuid(), os.Getegid()
	b := newBatch(w)
	for _, c := range []struct {
		dir  string
		want newFile
	}{
		{home, newFile{uid: euid, gid: egid, mode: 0o400}},
		{sg, newFile{uid: euid, gid: sgGid, mode: 0o400}},
	} {
		if err := b.mkdirAll(c.dir); err != nil {
			t.Fatal(err)
		}
		f, ok := w.openUnnamed(c.dir)
		if !ok {
			t.Fatal("no O_TMPFILE")
		}
		got, ok := b.newFile(c.dir, f)
		if !ok || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", filepath.Base(c.dir), got, ok, c.want)
		}
		_ = f.Close()
		// Learnt once: a second file is not looked at.
		if again, ok := b.newFile(c.dir, nil); !ok || again != got {
			t.Errorf("%s: second look %+v, %v", filepath.Base(c.dir), again, ok)
		}
	}
	if _, ok := b.newFile(filepath.Join(home, "never-made"), nil); ok {
		t.Error("a directory the batch never made is known")
	}
	// With a umask that narrows 0600, a new file is still 0600 and a
	// replaced one keeps its mode: the chmod is not skipped.
	if r := write1(t, w, "~/n/new", "v"); r.Outcome != Written {
		t.Fatalf("%+v", r)
	}
	_ = os.WriteFile(filepath.Join(home, "n/kept"), []byte("old"), 0o640)
	_ = os.Chmod(filepath.Join(home, "n/kept"), 0o640)
	if r := write1(t, w, "~/n/kept", "v"); r.Outcome != Written {
		t.Fatalf("%+v", r)
	}
	for name, want := range map[string]os.FileMode{"new": 0o600, "kept": 0o640} {
		if st, _ := os.Stat(filepath.Join(home, "n", name)); st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, st.Mode().Perm(), want)
		}
	}
}

// In a directory whose new files inherit an ACL, a replacement of a file
// without one must not keep the inherited ACL: the new file's xattrs are
// listed, not assumed away.
func TestNewFileInheritedACLRemoved(t *testing.T) {
	setfacl, getfacl := lookPath(t, "setfacl", "acl"), lookPath(t, "getfacl", "acl")
	w, home, _ := newOs(t, nil)
	dir := filepath.Join(home, "acl")
	_ = os.Mkdir(dir, 0o700)
	target := filepath.Join(dir, "f")
	_ = os.WriteFile(target, []byte("old"), 0o600)
	if out, err := exec.Command(setfacl, "-d", "-m", "u:nobody:r", dir).CombinedOutput(); err != nil {
		t.Fatalf("setfacl: %v %s", err, out)
	}
	for _, v := range []string{"one", "two"} { // the second write uses what the first learnt
		if r := write1(t, w, "~/acl/f", v); r.Outcome != Written || r.InPlace != "" {
			t.Fatalf("%+v", r)
		}
		out, _ := exec.Command(getfacl, "-p", target).CombinedOutput()
		if strings.Contains(string(out), "nobody") {
			t.Fatalf("the replacement kept the inherited ACL:\n%s", out)
		}
	}
	b := newBatch(w)
	_ = b.mkdirAll(dir)
	f, _ := w.openUnnamed(dir)
	defer f.Close()
	if nf, ok := b.newFile(dir, f); !ok || !nf.xattrs {
		t.Errorf("a new file under a default ACL: %+v, %v", nf, ok)
	}
}

func TestLinkRefused(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{syscall.EPERM, true}, {syscall.EACCES, true}, {syscall.EOPNOTSUPP, true}, {syscall.EXDEV, true},
		{syscall.EINVAL, true}, {&os.LinkError{Op: "link", Err: syscall.EPERM}, true},
		{syscall.ENOSPC, false}, {syscall.EDQUOT, false}, {syscall.EIO, false}, {syscall.ENOENT, false},
		{syscall.EEXIST, false}, {nil, false},
	} {
		if got := linkRefused(c.err); got != c.want {
			t.Errorf("%v: %v, want %v", c.err, got, c.want)
		}
	}
}
