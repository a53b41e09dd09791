//go:build !linux

package filewriter

import "errors"

// openUnnamed: only Linux has O_TMPFILE; elsewhere the temporary file is
// named from the start.
func (w *Writer) openUnnamed(string) (file, bool) { return nil, false }

var errNoLink = errors.New("cannot link an unnamed file")

func (w *Writer) linkUnnamed(file, string) (string, error) { return "", errNoLink }
