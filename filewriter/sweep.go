package filewriter

import (
	"encoding/hex"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/zap"
)

// staleTemp is how old a temporary file must be before a Writer removes it
// as left behind. A live write names its temporary file only from just
// before its fsync to its rename, so anything this old belongs to a write
// that was killed; the margin covers a very slow disk and a second agent
// writing into the same home.
const staleTemp = 2 * time.Minute

// sweepOnce removes, the first time this Writer writes into dir, the
// temporary files a killed write left there (see staleTemp). Only names
// the writer itself makes are touched: tempPrefix and 16 hex digits, a
// regular file. A failure leaves the file and is logged at debug level.
func (w *Writer) sweepOnce(dir string) {
	if _, done := w.swept.LoadOrStore(w.paths.key(dir), true); done {
		return
	}
	f, err := w.cfg.Fs.Open(dir)
	if err != nil {
		return
	}
	// Names only: a home may hold many files, and only the writer's own
	// are looked at further.
	names, err := f.Readdirnames(-1)
	_ = f.Close()
	if err != nil {
		return
	}
	for _, name := range names {
		if !isTempName(name) {
			continue
		}
		p := path.Join(dir, name)
		fi, err := lstat(w.cfg.Fs, p)
		if err != nil || !fi.Mode().IsRegular() || time.Since(fi.ModTime()) < staleTemp {
			continue
		}
		if err := w.cfg.Fs.Remove(p); err != nil {
			w.log.Debug("could not remove a temporary file left by an interrupted write", zap.String("path", p), zap.Error(err))
			continue
		}
		w.log.Info("removed a temporary file left by an interrupted write", zap.String("path", p))
	}
}

// lstat is fsys's Lstat where it has one, else its Stat.
func lstat(fsys afero.Fs, p string) (fs.FileInfo, error) {
	if l, ok := fsys.(afero.Lstater); ok {
		fi, _, err := l.LstatIfPossible(p)
		return fi, err
	}
	return fsys.Stat(p)
}

// isTempName reports whether name is one tempName makes.
func isTempName(name string) bool {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok || len(rest) != 16 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}
