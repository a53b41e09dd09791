package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/afero"
)

// TestExporterAppendsResumesAndReopens: records go to the file as JSON
// lines with the head published beside them; a new exporter resumes after
// the last record in the file; after the file is moved away (logrotate)
// and Reopen, new records go to a new file at the same path.
func TestExporterAppendsResumesAndReopens(t *testing.T) {
	ctx := context.Background()
	fs := afero.NewMemMapFs()
	recs := chain(5)
	upTo := 3
	cfg := ExporterConfig{Path: "/var/log/courier/audit.jsonl", Fs: fs,
		Page: func(ctx context.Context, after int64, limit int) ([]Record, error) {
			return pageOf(recs[:upTo])(ctx, after, limit)
		},
		State: func(context.Context) (State, error) {
			return State{Head: Head{Seq: int64(upTo), Hash: recs[upTo-1].Hash}}, nil
		}}
	seqs := func(path string) (got []int64, heads int) {
		t.Helper()
		b, err := afero.ReadFile(fs, path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"audit_head"`) {
				heads++
				continue
			}
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			if !bytes.Equal(r.Hash, recs[r.Seq-1].Hash) {
				t.Fatalf("record %d's hash changed on the way", r.Seq)
			}
			got = append(got, r.Seq)
		}
		return got, heads
	}
	e, err := NewExporter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.start(ctx); err != nil {
		t.Fatal(err)
	}
	e.export(ctx)
	e.publishHead(ctx)
	e.closeFile()
	if got, heads := seqs(cfg.Path); len(got) != 3 || got[2] != 3 || heads != 1 {
		t.Fatalf("first export: seqs %v, %d heads", got, heads)
	}

	// A restart resumes after record 3.
	upTo = 4
	e2, _ := NewExporter(cfg)
	if err := e2.start(ctx); err != nil {
		t.Fatal(err)
	}
	e2.export(ctx)
	if got, _ := seqs(cfg.Path); len(got) != 4 || got[3] != 4 {
		t.Fatalf("after restart: seqs %v", got)
	}

	// logrotate moves the file, then SIGHUP.
	if err := fs.Rename(cfg.Path, cfg.Path+".1"); err != nil {
		t.Fatal(err)
	}
	upTo = 5
	e2.Reopen()
	e2.export(ctx)
	e2.closeFile()
	if got, _ := seqs(cfg.Path); len(got) != 1 || got[0] != 5 {
		t.Fatalf("after reopen: seqs %v in the new file", got)
	}
}
