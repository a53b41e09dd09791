package filewriter

import (
	"path"
	"strings"
	"testing"

	"github.com/spf13/afero"
)

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"~/x", "/etc/passwd", "../etc/passwd", "~root/x", "~/a/../../..", "//", "/a/./b//c/", "~", "", "/x\x00"} {
		f.Add(s)
	}
	w, err := New(Config{Fs: afero.NewMemMapFs(), Home: "/home/dev"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := w.Resolve(p)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "/") || path.Clean(got) != got {
			t.Fatalf("Resolve(%q) = %q: not absolute and clean", p, got)
		}
		if strings.HasPrefix(p, "~/") && !strings.HasPrefix(got, "/home/") && !strings.HasPrefix(got, "/home") && got != "/" {
			// "~/../.." may climb out of home; it must still be clean.
			if path.Clean(got) != got {
				t.Fatalf("escaped and unclean: %q", got)
			}
		}
		again, err2 := w.Resolve(got)
		if err2 != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", p, got, again, err2)
		}
	})
}
