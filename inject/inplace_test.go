package inject

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/afero"

	"github.com/courierhq/courier/filewriter"
)

// mountFs refuses every rename as a bind-mounted target does (EBUSY).
type mountFs struct{ afero.Fs }

func (m mountFs) Rename(o, n string) error {
	return &os.LinkError{Op: "rename", Old: o, New: n, Err: syscall.EBUSY}
}

// TestInPlaceReachesTheReport: a file the writer rewrote in place is
// "written" with the reason in the report and on the wire; one it replaced
// has no reason.
func TestInPlaceReachesTheReport(t *testing.T) {
	mem := afero.NewMemMapFs()
	_ = afero.WriteFile(mem, "/home/dev/mounted", []byte("old"), 0o644)
	p, err := NewPlan(Manifest{Home: "/home/dev"}, []Secret{
		{Name: "mounted", Value: canary, FilePath: "~/mounted"},
		{Name: "fresh", Value: canary, FilePath: "~/fresh"},
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := filewriter.New(filewriter.Config{Fs: mountFs{mem}, Home: "/home/dev"})
	if err != nil {
		t.Fatal(err)
	}
	rep := Apply(context.Background(), p, w)
	wire := map[string]SecretOutcome{}
	for _, o := range rep.Outcomes {
		wire[o.Name] = o
	}
	if o := wire["mounted"]; o.Outcome != OutcomeWritten || !strings.Contains(o.InPlace, "mount point") {
		t.Errorf("mounted: %+v", o)
	}
	// A new file cannot be written in place: with every rename refused, it
	// fails, and has no in-place reason.
	if o := wire["fresh"]; o.Outcome != OutcomeFailed || o.InPlace != "" {
		t.Errorf("fresh: %+v", o)
	}
}
