package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/zap"
)

// StdoutPath is the export path that means standard output.
const StdoutPath = "-"

// ExporterConfig configures an Exporter.
type ExporterConfig struct {
	// Path is the file records are appended to as JSON lines, or
	// StdoutPath. "" exports nothing (only the head is published).
	Path string
	// Fs opens Path. Default: the OS file system.
	Fs afero.Fs
	// Stdout is where StdoutPath writes. Default os.Stdout.
	Stdout io.Writer
	// Page reads records after a sequence number, oldest first. Required.
	Page Page
	// State reads the chain's head. Required.
	State func(ctx context.Context) (State, error)
	// Interval is how often new records are looked for. Default 1s.
	Interval time.Duration
	// HeadEvery is how often the head is published to the log and the
	// file. Default 10 minutes.
	HeadEvery time.Duration
	// Log receives the published head and errors. Default: nop.
	Log *zap.Logger
}

// HeadLine is the line an Exporter writes to publish the chain's head.
type HeadLine struct {
	AuditHead struct {
		Seq  int64     `json:"seq"`
		Hash string    `json:"hash"`
		Time time.Time `json:"time"`
	} `json:"audit_head"`
}

// Exporter tails the chain and appends each new record to a file as one
// JSON line, for a SIEM; it also publishes the chain's head periodically
// to the server log and the file, so that a chain rewritten by someone
// with write access to the database no longer matches what was published.
// It reads the database rather than hooking the writers, so it exports
// the records of every replica in chain order, and resumes after the last
// record already in the file.
type Exporter struct {
	cfg    ExporterConfig
	reopen atomic.Bool
	out    io.Writer
	closer io.Closer
	pos    int64
}

// NewExporter checks cfg; it opens nothing and starts no goroutine.
func NewExporter(cfg ExporterConfig) (*Exporter, error) {
	if cfg.Fs == nil {
		cfg.Fs = afero.NewOsFs()
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.HeadEvery <= 0 {
		cfg.HeadEvery = 10 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Page == nil || cfg.State == nil {
		return nil, errors.New("audit: ExporterConfig needs Page and State")
	}
	return &Exporter{cfg: cfg}, nil
}

// Reopen makes the exporter reopen its file before its next write (after
// logrotate moved it; the server calls it on SIGHUP).
func (e *Exporter) Reopen() { e.reopen.Store(true) }

// Check opens the file (creating it) and closes it again, so that a path
// that cannot be written stops the server's start instead of leaving it
// running with no export.
func (e *Exporter) Check() error {
	if e.cfg.Path == "" || e.cfg.Path == StdoutPath {
		return nil
	}
	f, err := e.cfg.Fs.OpenFile(e.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log file: %w", err)
	}
	return f.Close()
}

// Run exports until ctx ends, then closes the file. A file that cannot be
// opened is tried again at every poll (as after a failed reopen), and the
// head is published to the server log all the same.
func (e *Exporter) Run(ctx context.Context) error {
	defer e.closeFile()
	if err := e.start(ctx); err != nil {
		if e.cfg.Path == StdoutPath {
			return err
		}
		e.cfg.Log.Error("could not open the audit log file; trying again every poll", zap.String("path", e.cfg.Path), zap.Error(err))
		e.reopen.Store(true)
	}
	e.publishHead(ctx)
	poll := time.NewTicker(e.cfg.Interval)
	defer poll.Stop()
	head := time.NewTicker(e.cfg.HeadEvery)
	defer head.Stop()
	for {
		select {
		case <-ctx.Done():
			e.export(context.WithoutCancel(ctx))
			return nil
		case <-poll.C:
			e.export(ctx)
		case <-head.C:
			e.export(ctx)
			e.publishHead(ctx)
		}
	}
}

// start opens the file and finds where to resume: after the last record
// in the file (a new file gets every record kept), or, for standard
// output, at the current head.
func (e *Exporter) start(ctx context.Context) error {
	if e.cfg.Path == StdoutPath {
		st, err := e.cfg.State(ctx)
		if err != nil {
			return err
		}
		e.pos = st.Head.Seq
		e.out = e.cfg.Stdout
		return nil
	}
	if e.cfg.Path == "" {
		return nil
	}
	e.pos = max(lastSeq(e.cfg.Fs, e.cfg.Path), e.savedPos())
	return e.openFile()
}

// positionPath is the file beside the export that remembers the last
// record exported, so that a file logrotate emptied ("create") or moved
// away is not filled again with every record from the first at the next
// start. Deleting it (with the export) exports everything again.
func (e *Exporter) positionPath() string { return e.cfg.Path + ".position" }

// savedPos reads positionPath (0 when absent or unreadable).
func (e *Exporter) savedPos() int64 {
	b, err := afero.ReadFile(e.cfg.Fs, e.positionPath())
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// savePos writes pos to positionPath, replacing it whole.
func (e *Exporter) savePos() {
	if e.cfg.Path == "" || e.cfg.Path == StdoutPath {
		return
	}
	tmp := e.positionPath() + ".tmp"
	err := afero.WriteFile(e.cfg.Fs, tmp, []byte(strconv.FormatInt(e.pos, 10)+"\n"), 0o600)
	if err == nil {
		err = e.cfg.Fs.Rename(tmp, e.positionPath())
	}
	if err != nil {
		e.cfg.Log.Warn("could not save the audit export's position", zap.String("path", e.positionPath()), zap.Error(err))
	}
}

func (e *Exporter) openFile() error {
	f, err := e.cfg.Fs.OpenFile(e.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	e.out, e.closer = f, f
	return nil
}

func (e *Exporter) closeFile() {
	if e.closer != nil {
		_ = e.closer.Close()
		e.closer = nil
	}
}

// lastSeq returns the seq of the last record line of the file at path
// (0 when none).
func lastSeq(fs afero.Fs, path string) int64 {
	f, err := fs.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var last int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r struct {
			Seq int64 `json:"seq"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Seq > last && !bytes.Contains(sc.Bytes(), []byte(`"audit_head"`)) {
			last = r.Seq
		}
	}
	return last
}

func (e *Exporter) writable() bool {
	if e.reopen.Swap(false) && e.cfg.Path != StdoutPath && e.cfg.Path != "" {
		e.closeFile()
		if err := e.openFile(); err != nil {
			e.cfg.Log.Error("could not reopen the audit log file", zap.String("path", e.cfg.Path), zap.Error(err))
			e.reopen.Store(true)
			return false
		}
	}
	return e.out != nil
}

// export appends the records after pos.
func (e *Exporter) export(ctx context.Context) {
	if !e.writable() {
		return
	}
	wrote := false
	for {
		recs, err := e.cfg.Page(ctx, e.pos, 500)
		if err != nil {
			e.cfg.Log.Warn("could not read audit records to export", zap.Error(err))
			return
		}
		var buf bytes.Buffer
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				continue
			}
			buf.Write(append(b, '\n'))
		}
		if buf.Len() > 0 {
			if _, err := e.out.Write(buf.Bytes()); err != nil {
				e.cfg.Log.Error("could not write the audit log file", zap.Error(err))
				return
			}
			e.pos, wrote = recs[len(recs)-1].Seq, true
		}
		if len(recs) < 500 {
			if wrote {
				e.savePos()
			}
			return
		}
	}
}

// publishHead logs the chain's head and writes it to the file.
func (e *Exporter) publishHead(ctx context.Context) {
	st, err := e.cfg.State(ctx)
	if err != nil {
		e.cfg.Log.Warn("could not read the audit chain's head", zap.Error(err))
		return
	}
	var h HeadLine
	h.AuditHead.Seq, h.AuditHead.Hash, h.AuditHead.Time = st.Head.Seq, hex.EncodeToString(st.Head.Hash), time.Now().UTC()
	e.cfg.Log.Info("audit chain head", zap.Int64("seq", st.Head.Seq), zap.String("hash", h.AuditHead.Hash))
	if e.writable() {
		b, _ := json.Marshal(h)
		if _, err := e.out.Write(append(b, '\n')); err != nil {
			e.cfg.Log.Error("could not write the audit log file", zap.Error(err))
		}
	}
}
