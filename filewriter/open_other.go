//go:build !unix

package filewriter

import "io/fs"

// openFile is w.cfg.Fs.OpenFile (see open_unix.go for why it is a method).
func (w *Writer) openFile(name string, flag int, perm fs.FileMode) (file, error) {
	return w.cfg.Fs.OpenFile(name, flag, perm)
}

// rename is w.cfg.Fs.Rename.
func (w *Writer) rename(from, to string) error { return w.cfg.Fs.Rename(from, to) }
