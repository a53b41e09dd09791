package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
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

	// logrotate empties the file ("create"), then the server restarts: the
	// export goes on after record 5 instead of starting again from 1.
	if err := fs.Rename(cfg.Path, cfg.Path+".2"); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(fs, cfg.Path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	recs = chain(6)
	upTo = 6
	e3, _ := NewExporter(cfg)
	if err := e3.start(ctx); err != nil {
		t.Fatal(err)
	}
	e3.export(ctx)
	e3.closeFile()
	if got, _ := seqs(cfg.Path); len(got) != 1 || got[0] != 6 {
		t.Fatalf("after rotation and a restart: seqs %v, want only 6", got)
	}
}

// TestExporterUnwritablePath: Check refuses a path that cannot be opened
// (the server does not start); Run with such a path still publishes the
// head and starts exporting once the path can be written.
func TestExporterUnwritablePath(t *testing.T) {
	fs := afero.NewMemMapFs()
	recs := chain(2)
	ro := afero.NewReadOnlyFs(fs)
	cfg := ExporterConfig{Path: "/var/log/courier/audit.jsonl", Fs: ro, Interval: 10 * time.Millisecond,
		Page: pageOf(recs),
		State: func(context.Context) (State, error) {
			return State{Head: Head{Seq: 2, Hash: recs[1].Hash}}, nil
		}}
	e, err := NewExporter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Check(); err == nil {
		t.Fatal("Check accepted a path that cannot be written")
	}

	// Run on a file system that becomes writable: the fs is swapped under
	// a lock-free pointer the test owns, as a directory created later.
	sw := &switchFs{Fs: ro}
	cfg.Fs = sw
	core, logs := observer.New(zap.InfoLevel)
	cfg.Log = zap.New(core)
	e, _ = NewExporter(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	waitUntil(t, "the head in the server log", func() bool { return logs.FilterMessage("audit chain head").Len() > 0 })
	sw.set(fs)
	waitUntil(t, "the export once the path is writable", func() bool {
		b, _ := afero.ReadFile(fs, cfg.Path)
		return bytes.Count(b, []byte(`"seq"`)) >= 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// switchFs is an afero.Fs whose backing file system can be replaced.
type switchFs struct {
	mu sync.Mutex
	afero.Fs
}

func (s *switchFs) set(fs afero.Fs) { s.mu.Lock(); s.Fs = fs; s.mu.Unlock() }
func (s *switchFs) get() afero.Fs   { s.mu.Lock(); defer s.mu.Unlock(); return s.Fs }
func (s *switchFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	return s.get().OpenFile(name, flag, perm)
}
func (s *switchFs) Open(name string) (afero.File, error) { return s.get().Open(name) }
func (s *switchFs) Rename(o, n string) error             { return s.get().Rename(o, n) }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
