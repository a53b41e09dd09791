package filewriter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) {
	if runChild() { // a re-executed binary writing as another user
		return
	}
	goleak.VerifyTestMain(m)
}

const canary = "CANARY-filewriter-91c2"

func newMem(t *testing.T) (*Writer, afero.Fs, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	fs := afero.NewMemMapFs()
	w, err := New(Config{Fs: fs, Home: "/home/dev", Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	return w, fs, logs
}

func TestResolve(t *testing.T) {
	w, _, _ := newMem(t)
	tests := []struct {
		in, want string
		err      error
	}{
		{"~/x", "/home/dev/x", nil},
		{"~/a/../b", "/home/dev/b", nil},
		{"~/.config//tool/./c.json", "/home/dev/.config/tool/c.json", nil},
		{"/etc/x", "/etc/x", nil},
		{"//x", "/x", nil},
		{"/a/b/../../../etc/passwd", "/etc/passwd", nil},
		{"../etc/passwd", "", ErrPath},
		{"relative/x", "", ErrPath},
		{"~root/x", "", ErrPath},
		{"~", "", ErrPath},
		{"", "", ErrPath},
		{"/x\x00y", "", ErrPath},
		{"/", "", ErrPath},
		{"~/", "", ErrPath},
		{"/" + strings.Repeat("a", 4097), "/" + strings.Repeat("a", 4097), nil},
	}
	for _, tt := range tests {
		got, err := w.Resolve(tt.in)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Resolve(%q) err = %v, want %v", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, {Home: "rel"}, {Home: "/h", Parallelism: -1}} {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) err = %v, want ErrConfig", c, err)
		}
	}
	if _, err := New(Config{Home: `C:\Users\dev`}); err != nil {
		t.Errorf("windows home refused: %v", err)
	}
}

func TestWriteAllMem(t *testing.T) {
	w, fs, logs := newMem(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	files := []File{
		{Secret: "a", Path: "~/cfg/a.json", Content: []byte(canary + "a"), UpdatedAt: t0},
		{Secret: "b", Path: "/abs/deep/b", Content: []byte(canary + "b"), UpdatedAt: t0},
		{Secret: "bad", Path: "relative", Content: []byte(canary), UpdatedAt: t0},
	}
	res := w.WriteAll(ctx, files)
	if len(res) != 3 {
		t.Fatalf("got %d results", len(res))
	}
	want := []Outcome{Written, Written, Failed}
	for i, r := range res {
		if r.Outcome != want[i] || r.Secret != files[i].Secret {
			t.Errorf("result %d = %+v, want %s", i, r, want[i])
		}
	}
	if res[2].Err == nil || !strings.Contains(res[2].Err.Error(), `secret "bad"`) || strings.Contains(res[2].Err.Error(), canary) {
		t.Errorf("bad path error %v should name the secret and not the value", res[2].Err)
	}
	got, _ := afero.ReadFile(fs, "/home/dev/cfg/a.json")
	if string(got) != canary+"a" {
		t.Errorf("a.json = %q", got)
	}
	fi, _ := fs.Stat("/abs/deep")
	if fi == nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("parent mode = %v, want 0700", fi)
	}
	fi, _ = fs.Stat("/abs/deep/b")
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, want 0600", fi.Mode())
	}
	// Second run with the same content: unchanged.
	res = w.WriteAll(ctx, files[:2])
	for _, r := range res {
		if r.Outcome != Unchanged {
			t.Errorf("second run %s = %s, want unchanged", r.Secret, r.Outcome)
		}
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message+toString(e.ContextMap()), canary) {
			t.Errorf("log leaks value: %v", e)
		}
	}
}

func TestCollisionRule(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		files  []File
		winner string
	}{
		{"newest wins", []File{
			{Secret: "old", Path: "~/config", UpdatedAt: t0},
			{Secret: "new", Path: "/home/dev/config", UpdatedAt: t0.Add(time.Second)},
		}, "new"},
		{"tie goes to smallest name", []File{
			{Secret: "zeta", Path: "~/config", UpdatedAt: t0},
			{Secret: "alpha", Path: "/home/dev/./config", UpdatedAt: t0},
		}, "alpha"},
		{"three-way, order independent", []File{
			{Secret: "c", Path: "/home/dev/x/../config", UpdatedAt: t0},
			{Secret: "b", Path: "~/config", UpdatedAt: t0.Add(time.Hour)},
			{Secret: "a", Path: "/home/dev/config", UpdatedAt: t0},
		}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, fs, logs := newMem(t)
			for i := range tt.files {
				tt.files[i].Content = []byte(canary + tt.files[i].Secret)
			}
			res := w.WriteAll(context.Background(), tt.files)
			for _, r := range res {
				if r.Secret == tt.winner {
					if r.Outcome != Written {
						t.Errorf("winner %s outcome %s", r.Secret, r.Outcome)
					}
				} else if r.Outcome != LostCollision || r.Winner != tt.winner {
					t.Errorf("loser %+v, want lost_collision to %s", r, tt.winner)
				}
			}
			got, _ := afero.ReadFile(fs, "/home/dev/config")
			if string(got) != canary+tt.winner {
				t.Errorf("file holds %q, want the winner's", got)
			}
			warns := logs.FilterMessageSnippet("collide").All()
			if len(warns) != 1 {
				t.Fatalf("%d collision warnings, want 1", len(warns))
			}
			ctx := toString(warns[0].ContextMap())
			for _, f := range tt.files {
				if !strings.Contains(ctx, f.Secret) {
					t.Errorf("warning %s does not name %s", ctx, f.Secret)
				}
			}
			if !strings.Contains(ctx, "/home/dev/config") || strings.Contains(ctx, canary) {
				t.Errorf("warning %s: want the path and no value", ctx)
			}
		})
	}
}

func TestParentIsFileAndDirInTheWay(t *testing.T) {
	w, fs, _ := newMem(t)
	_ = afero.WriteFile(fs, "/home/dev/afile", []byte("x"), 0o644)
	_ = fs.MkdirAll("/home/dev/adir", 0o755)
	res := w.WriteAll(context.Background(), []File{
		{Secret: "under-file", Path: "~/afile/x", Content: []byte(canary)},
		{Secret: "on-dir", Path: "~/adir", Content: []byte(canary)},
		{Secret: "fine", Path: "~/ok", Content: []byte("v")},
	})
	if res[0].Outcome != Failed || !errors.Is(res[0].Err, ErrNotDir) {
		t.Errorf("parent is a file: %+v", res[0])
	}
	if res[1].Outcome != Failed || !errors.Is(res[1].Err, ErrIsDir) {
		t.Errorf("dir in the way: %+v", res[1])
	}
	if res[2].Outcome != Written {
		t.Errorf("other secret not written: %+v", res[2])
	}
	if got, _ := afero.ReadFile(fs, "/home/dev/afile"); string(got) != "x" {
		t.Errorf("the file in the way was changed: %q", got)
	}
	for _, r := range res[:2] {
		if strings.Contains(r.Err.Error(), canary) || !strings.Contains(r.Err.Error(), r.Secret) {
			t.Errorf("error %q must name the secret, not the value", r.Err)
		}
	}
}

func TestContextCancelled(t *testing.T) {
	w, fs, _ := newMem(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := w.WriteAll(ctx, []File{{Secret: "a", Path: "~/a", Content: []byte("v")}})
	if res[0].Outcome != Failed || !errors.Is(res[0].Err, context.Canceled) {
		t.Errorf("cancelled write: %+v", res[0])
	}
	if ok, _ := afero.Exists(fs, "/home/dev/a"); ok {
		t.Error("a cancelled write created the file")
	}
}

func toString(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k + "=")
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				b.WriteString(" " + toStr(e))
			}
		default:
			b.WriteString(toStr(v))
		}
		b.WriteString(" ")
	}
	return b.String()
}

func toStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(fmtAny(v), "\n", " "), "\t", " "))
}

func TestFileStringHidesContent(t *testing.T) {
	f := File{Secret: "s", Path: "~/x", Content: []byte(canary)}
	for _, s := range []string{fmt.Sprint(f), fmt.Sprintf("%v %+v %#v", f, f, f), fmt.Sprint([]File{f})} {
		if strings.Contains(s, canary) {
			t.Fatalf("File formatting leaks content: %s", s)
		}
	}
}

// TestProtectedPaths: a target that is, or resolves through a symlink to,
// a protected file, or lies under a protected directory, fails with
// ErrProtected and leaves it as it was; a sibling that merely shares a
// prefix is written.
func TestProtectedPaths(t *testing.T) {
	dir := t.TempDir()
	home, own := dir+"/home", dir+"/agent"
	for _, d := range []string{home, own + "/data"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	token := own + "/token"
	if err := os.WriteFile(token, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(token, home+"/link"); err != nil {
		t.Fatal(err)
	}
	// The data directory is protected through a symlink to it as well.
	if err := os.Symlink(own+"/data", dir+"/data-link"); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Fs: afero.NewOsFs(), Home: home, UID: -1, GID: -1, Protected: []string{token, dir + "/data-link"}})
	if err != nil {
		t.Fatal(err)
	}
	res := w.WriteAll(context.Background(), []File{
		{Secret: "on-token", Path: token, Content: []byte(canary)},
		{Secret: "via-link", Path: "~/link", Content: []byte(canary)},
		{Secret: "into-data", Path: own + "/data/state.json", Content: []byte(canary)},
		{Secret: "dotted", Path: "~/../agent/./token", Content: []byte(canary)},
		{Secret: "sibling", Path: own + "/tokenized", Content: []byte("v")},
	})
	for _, r := range res[:4] {
		if r.Outcome != Failed || !errors.Is(r.Err, ErrProtected) {
			t.Errorf("%s: %+v, want failed with ErrProtected", r.Secret, r)
		} else if strings.Contains(r.Err.Error(), canary) {
			t.Errorf("%s: the error shows the value: %v", r.Secret, r.Err)
		}
	}
	if res[4].Outcome != Written {
		t.Errorf("sibling: %+v, want written", res[4])
	}
	if got, _ := os.ReadFile(token); string(got) != "tok" {
		t.Errorf("the token file was changed: %q", got)
	}
	if _, err := os.Stat(own + "/data/state.json"); !os.IsNotExist(err) {
		t.Errorf("a file was written into the protected directory: %v", err)
	}
	if _, err := New(Config{Home: "/h", Protected: []string{"relative/token"}}); !errors.Is(err, ErrConfig) {
		t.Errorf("a relative protected path: err = %v, want ErrConfig", err)
	}
}

// TestConfine: with Confine set, a target that resolves outside it (an
// absolute path, "~/..", a symlink out) fails with ErrOutside and nothing
// is written there; targets inside are written.
func TestConfine(t *testing.T) {
	dir := t.TempDir()
	box, outside := dir+"/box", dir+"/outside"
	for _, d := range []string{box + "/home", outside} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, box+"/home/out"); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Fs: afero.NewOsFs(), Home: box + "/home", UID: -1, GID: -1, Confine: box})
	if err != nil {
		t.Fatal(err)
	}
	res := w.WriteAll(context.Background(), []File{
		{Secret: "abs", Path: outside + "/a", Content: []byte(canary)},
		{Secret: "up", Path: "~/../../outside/b", Content: []byte(canary)},
		{Secret: "link", Path: "~/out/c", Content: []byte(canary)},
		{Secret: "box-itself", Path: box, Content: []byte(canary)},
		{Secret: "inside", Path: "~/.config/x", Content: []byte("v")},
		{Secret: "inside-abs", Path: box + "/other", Content: []byte("v")},
	})
	for _, r := range res[:3] {
		if r.Outcome != Failed || !errors.Is(r.Err, ErrOutside) {
			t.Errorf("%s: %+v, want failed with ErrOutside", r.Secret, r)
		}
	}
	if res[3].Outcome != Failed {
		t.Errorf("the confining directory itself: %+v", res[3])
	}
	for _, r := range res[4:] {
		if r.Outcome != Written {
			t.Errorf("%s: %+v, want written", r.Secret, r)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files were written outside: %v", entries)
	}
	if _, err := New(Config{Home: "/h", Confine: "box"}); !errors.Is(err, ErrConfig) {
		t.Errorf("a relative Confine: err = %v, want ErrConfig", err)
	}
}

// TestNestingPathsCollide: two secrets whose paths nest (one is a
// directory of the other) are settled as a collision by R8's rule, not by
// what the disk held: the most recently updated is written, the other
// loses to it, one warning names both, and the loser leaves nothing (no
// directory made for it).
func TestNestingPathsCollide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		outerNewer bool
	}{{"outer newer", true}, {"inner newer", false}} {
		t.Run(tc.name, func(t *testing.T) {
			w, fs, logs := newMem(t)
			outer := File{Secret: "npmrc", Path: "~/.npmrc", Content: []byte(canary + "o"), UpdatedAt: t0}
			inner := File{Secret: "npmrc-extra", Path: "/home/dev/.npmrc/extra", Content: []byte(canary + "i"), UpdatedAt: t0}
			winner, loser := &inner, &outer
			if tc.outerNewer {
				winner, loser = &outer, &inner
			}
			winner.UpdatedAt = t0.Add(time.Hour)
			res := w.WriteAll(context.Background(), []File{outer, inner})
			byName := map[string]Result{res[0].Secret: res[0], res[1].Secret: res[1]}
			if r := byName[winner.Secret]; r.Outcome != Written {
				t.Fatalf("winner %s: %+v", winner.Secret, r)
			}
			if r := byName[loser.Secret]; r.Outcome != LostCollision || r.Winner != winner.Secret {
				t.Fatalf("loser %s: %+v", loser.Secret, r)
			}
			fi, err := fs.Stat("/home/dev/.npmrc")
			if err != nil || fi.IsDir() != !tc.outerNewer {
				t.Fatalf("~/.npmrc after the apply: %v, %v", fi, err)
			}
			if n := logs.FilterMessageSnippet("file secrets collide").Len(); n != 1 {
				t.Errorf("%d collision warnings, want one", n)
			}
			for _, e := range logs.All() {
				if strings.Contains(e.Message+toString(e.ContextMap()), canary) {
					t.Errorf("log leaks value: %v", e)
				}
			}
		})
	}
}
